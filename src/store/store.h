// The session store: every served exchange in SQLite at <data>/loupe.db (WAL mode), with its
// provenance. Conversations are found again by content: a request whose messages extend a
// stored conversation (all of its messages, in order, then new ones) continues it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

struct sqlite3;

namespace loupe::store {

struct StoredMessage {
  StoredMessage() = default;
  StoredMessage(std::string r, std::string c, std::string e = {})
      : role(std::move(r)), content(std::move(c)), extra(std::move(e)) {}

  std::string role;
  std::string content;
  // What else the message carried, as a JSON object text (tool_calls, tool_call_id, name,
  // reasoning_content), or empty. Part of the conversation hash when not empty, so writers
  // must serialize it the same way each time (the server dumps one ordered_json).
  std::string extra;
};

// One request and its answer, as the server records it.
struct Exchange {
  std::vector<StoredMessage> messages;  // the request's messages, in order
  StoredMessage reply;                  // the assistant's answer
  std::string model;                    // model id as served
  std::string model_sha256;
  std::string template_hash;  // sha256 of the chat template text used
  std::string sampler_json;   // every sampler setting, JSON
  int64_t seed = 0;
  std::string loupe_version;
  std::string timings_json;
  std::string finish_reason;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct ConversationSummary {
  int64_t id = 0;
  int64_t created_at = 0;  // unix seconds
  int64_t updated_at = 0;
  std::string model;
  int64_t n_messages = 0;
  std::string title;  // the first user message, shortened
};

struct ExchangeRecord {
  int64_t id = 0;
  int64_t created_at = 0;
  std::string model, model_sha256, template_hash, sampler_json, loupe_version, timings_json,
      finish_reason;
  int64_t seed = 0, prompt_tokens = 0, completion_tokens = 0;
};

struct Conversation {
  ConversationSummary summary;
  std::vector<StoredMessage> messages;
  std::vector<ExchangeRecord> exchanges;
};

// $XDG_DATA_HOME/loupe, else $HOME/.local/share/loupe.
std::string default_data_dir();

class Store {
 public:
  // Creates the directory and the database as needed, applies migrations, sets WAL.
  static Expected<std::unique_ptr<Store>> open(const std::string& data_dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // Records an exchange in one transaction (committed when this returns OK); returns the
  // conversation id (continued or new).
  Expected<int64_t> record(const Exchange& exchange);

  // Newest first (by last update).
  Expected<std::vector<ConversationSummary>> list();
  // Conversations with a message (or title) containing `text`, ASCII case-insensitively;
  // newest first.
  Expected<std::vector<ConversationSummary>> search(const std::string& text);
  Expected<std::optional<Conversation>> get(int64_t id);
  // False when there was no such conversation.
  Expected<bool> remove(int64_t id);
  // PRAGMA integrity_check: "ok", or what is wrong.
  Expected<std::string> integrity_check();

 private:
  explicit Store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status exec(const char* sql);
  Status migrate();

  sqlite3* db_;
  std::string path_;
  std::mutex mutex_;
};

// Hash of a message sequence (role and content of each, in order): how a conversation is found
// again from the messages of a later request.
std::string messages_hash(const std::vector<StoredMessage>& messages, size_t count);

}  // namespace loupe::store
