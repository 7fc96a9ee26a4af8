// The session store on its own: recording, continuing, searching, extras, schema upgrades.
#include <sqlite3.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "store/store.h"

namespace loupe::store {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "loupe-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static Exchange exchange(std::vector<StoredMessage> messages, StoredMessage reply) {
    Exchange ex;
    ex.messages = std::move(messages);
    ex.reply = std::move(reply);
    ex.model = "m";
    ex.model_sha256 = std::string(64, 'a');
    ex.template_hash = std::string(64, 'b');
    ex.sampler_json = R"({"temperature":0})";
    ex.seed = 7;
    ex.loupe_version = "test";
    ex.timings_json = "{}";
    ex.finish_reason = "stop";
    ex.prompt_tokens = 3;
    ex.completion_tokens = 2;
    return ex;
  }

  std::string dir_;
};

TEST_F(StoreTest, ContinuesAConversationWhoseWholeHistoryIsRepeated) {
  auto st = Store::open(dir_);
  ASSERT_TRUE(st.has_value()) << st.status().message();
  auto a = (*st)->record(exchange({{"user", "hello"}}, {"assistant", "hi"}));
  ASSERT_TRUE(a.has_value());
  auto b = (*st)->record(
      exchange({{"user", "hello"}, {"assistant", "hi"}, {"user", "more"}}, {"assistant", "ok"}));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*a, *b);
  // A different first message starts a new conversation.
  auto c = (*st)->record(exchange({{"user", "other"}}, {"assistant", "x"}));
  ASSERT_TRUE(c.has_value());
  EXPECT_NE(*a, *c);
  auto conv = (*st)->get(*a);
  ASSERT_TRUE(conv.has_value() && conv->has_value());
  ASSERT_EQ((*conv)->messages.size(), 4u);
  EXPECT_EQ((*conv)->messages[3].content, "ok");
  EXPECT_EQ((*conv)->exchanges.size(), 2u);
  auto list = (*st)->list();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ(list->front().id, *c);  // newest first
}

TEST_F(StoreTest, ExtrasRoundTripAndTellToolCallsApart) {
  auto st = Store::open(dir_);
  ASSERT_TRUE(st.has_value());
  const std::string call_a = R"({"tool_calls":[{"id":"call_1","name":"f","arguments":"{}"}]})";
  const std::string call_b = R"({"tool_calls":[{"id":"call_2","name":"g","arguments":"{}"}]})";
  auto a = (*st)->record(exchange({{"user", "q"}}, {"assistant", "", call_a}));
  ASSERT_TRUE(a.has_value());
  // Same role and content, different tool call: not the stored history, so a new conversation.
  auto b = (*st)->record(
      exchange({{"user", "q"}, {"assistant", "", call_b}, {"tool", "1", R"({"tool_call_id":"call_2"})"}},
               {"assistant", "done"}));
  ASSERT_TRUE(b.has_value());
  EXPECT_NE(*a, *b);
  auto c = (*st)->record(
      exchange({{"user", "q"}, {"assistant", "", call_a}, {"tool", "1", R"({"tool_call_id":"call_1"})"}},
               {"assistant", "done"}));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(*a, *c);
  auto conv = (*st)->get(*a);
  ASSERT_TRUE(conv.has_value() && conv->has_value());
  ASSERT_EQ((*conv)->messages.size(), 4u);
  EXPECT_EQ((*conv)->messages[1].extra, call_a);
  EXPECT_EQ((*conv)->messages[2].extra, R"({"tool_call_id":"call_1"})");
  EXPECT_EQ((*conv)->messages[3].extra, "");
}

TEST_F(StoreTest, SearchFindsTextAnywhereCaseInsensitivelyWithLiteralWildcards) {
  auto st = Store::open(dir_);
  ASSERT_TRUE(st.has_value());
  auto a = (*st)->record(exchange({{"user", "Tell me about Owls"}}, {"assistant", "They hoot."}));
  auto b = (*st)->record(exchange({{"user", "100% sure?"}}, {"assistant", "a_b"}));
  ASSERT_TRUE(a.has_value() && b.has_value());
  auto owls = (*st)->search("owls");
  ASSERT_TRUE(owls.has_value());
  ASSERT_EQ(owls->size(), 1u);
  EXPECT_EQ(owls->front().id, *a);
  auto hoot = (*st)->search("HOOT");  // in the reply
  ASSERT_TRUE(hoot.has_value());
  ASSERT_EQ(hoot->size(), 1u);
  auto pct = (*st)->search("0% s");  // % is literal
  ASSERT_TRUE(pct.has_value());
  ASSERT_EQ(pct->size(), 1u);
  EXPECT_EQ(pct->front().id, *b);
  auto underscore = (*st)->search("a_b");
  ASSERT_TRUE(underscore.has_value());
  EXPECT_EQ(underscore->size(), 1u);
  auto none = (*st)->search("a%b");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

TEST_F(StoreTest, UpgradesAVersionOneDatabaseKeepingItsConversations) {
  // A database as the first schema left it: no `extra` column, version 1 recorded.
  const std::string path = dir_ + "/loupe.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const char* v1 = R"sql(
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
INSERT INTO schema_migrations VALUES(1, 0);
CREATE TABLE conversations (id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, model TEXT NOT NULL, title TEXT NOT NULL,
  n_messages INTEGER NOT NULL, head_hash TEXT NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, seq INTEGER
  NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, exchange_id INTEGER,
  UNIQUE(conversation_id, seq));
CREATE TABLE exchanges (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL, model TEXT NOT NULL, model_sha256 TEXT NOT NULL,
  template_hash TEXT NOT NULL, sampler TEXT NOT NULL, seed INTEGER NOT NULL,
  loupe_version TEXT NOT NULL, timings TEXT NOT NULL, finish_reason TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL);
)sql";
  ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK);
  const std::vector<StoredMessage> old = {{"user", "old"}, {"assistant", "reply"}};
  const std::string ins = "INSERT INTO conversations VALUES(1, 0, 0, 'm', 'old', 2, '" +
                          messages_hash(old, 2) +
                          "'); INSERT INTO messages VALUES(1, 1, 0, 'user', 'old', NULL);"
                          "INSERT INTO messages VALUES(2, 1, 1, 'assistant', 'reply', NULL);";
  ASSERT_EQ(sqlite3_exec(db, ins.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  auto st = Store::open(dir_);
  ASSERT_TRUE(st.has_value()) << st.status().message();
  auto conv = (*st)->get(1);
  ASSERT_TRUE(conv.has_value() && conv->has_value());
  EXPECT_EQ((*conv)->messages.size(), 2u);
  // The old conversation is still found by its messages: continuing it appends.
  auto id = (*st)->record(exchange({{"user", "old"}, {"assistant", "reply"}, {"user", "new"}},
                                   {"assistant", "fine"}));
  ASSERT_TRUE(id.has_value()) << id.status().message();
  EXPECT_EQ(*id, 1);
  auto check = (*st)->integrity_check();
  ASSERT_TRUE(check.has_value());
  EXPECT_EQ(*check, "ok");
}

TEST_F(StoreTest, RefusesADatabaseFromANewerLoupe) {
  {
    auto st = Store::open(dir_);
    ASSERT_TRUE(st.has_value());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/loupe.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES(99, 0)", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto st = Store::open(dir_);
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.status().message().find("newer"), std::string::npos);
}

}  // namespace
}  // namespace loupe::store
