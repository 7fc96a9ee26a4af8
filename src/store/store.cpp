#include "store/store.h"

#include <sqlite3.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "base/sha256.h"

namespace loupe::store {
namespace {

// Schema versions, applied in order; each runs once, recorded in schema_migrations.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE conversations (
  id INTEGER PRIMARY KEY,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  model TEXT NOT NULL,
  title TEXT NOT NULL,
  n_messages INTEGER NOT NULL,
  head_hash TEXT NOT NULL
);
CREATE INDEX conversations_head ON conversations(head_hash);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  exchange_id INTEGER REFERENCES exchanges(id) ON DELETE CASCADE,
  UNIQUE(conversation_id, seq)
);
CREATE TABLE exchanges (
  id INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  model TEXT NOT NULL,
  model_sha256 TEXT NOT NULL,
  template_hash TEXT NOT NULL,
  sampler TEXT NOT NULL,
  seed INTEGER NOT NULL,
  loupe_version TEXT NOT NULL,
  timings TEXT NOT NULL,
  finish_reason TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL
);
CREATE INDEX exchanges_conversation ON exchanges(conversation_id);
)sql",
    R"sql(
ALTER TABLE messages ADD COLUMN extra TEXT NOT NULL DEFAULT '';
)sql",
};

Status sql_error(sqlite3* db, const char* what) {
  return make_error(ErrorCode::kIo, "session store: {}: {}", what, sqlite3_errmsg(db));
}

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  int step() { return sqlite3_step(stmt_); }
  int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

void hash_message(Sha256& h, const StoredMessage& m) {
  const std::string head = m.role + '\0' + std::to_string(m.content.size()) + '\0';
  h.update({reinterpret_cast<const uint8_t*>(head.data()), head.size()});
  h.update({reinterpret_cast<const uint8_t*>(m.content.data()), m.content.size()});
  if (!m.extra.empty()) {  // absent from version-1 rows: their hashes stay valid
    const std::string extra = '\0' + std::to_string(m.extra.size()) + '\0' + m.extra;
    h.update({reinterpret_cast<const uint8_t*>(extra.data()), extra.size()});
  }
}

// `text` as a LIKE pattern matching it anywhere, with %, _ and \ escaped.
std::string like_pattern(const std::string& text) {
  std::string p = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') p += '\\';
    p += c;
  }
  return p + "%";
}

std::string title_of(const std::vector<StoredMessage>& messages) {
  for (const auto& m : messages)
    if (m.role == "user" || m.role == "prompt") {
      std::string t = m.content.substr(0, 60);
      for (char& c : t)
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
      return t;
    }
  return "";
}

}  // namespace

std::string messages_hash(const std::vector<StoredMessage>& messages, size_t count) {
  Sha256 h;
  for (size_t i = 0; i < count && i < messages.size(); ++i) hash_message(h, messages[i]);
  return h.hex_digest();
}

std::string default_data_dir() {
  if (const char* x = std::getenv("XDG_DATA_HOME"); x != nullptr && *x != '\0')
    return std::string(x) + "/loupe";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/share/loupe";
}

Expected<std::unique_ptr<Store>> Store::open(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec)
    return make_error(ErrorCode::kIo, "cannot create the data directory {}: {}", data_dir,
                      ec.message());
  const std::string path = data_dir + "/loupe.db";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    Status s = make_error(ErrorCode::kIo, "cannot open {}: {}", path,
                          db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Store> store(new Store(db, path));
  LOUPE_TRY(store->exec("PRAGMA journal_mode=WAL"));
  // FULL: a committed exchange survives power loss too, not only a killed process.
  LOUPE_TRY(store->exec("PRAGMA synchronous=FULL"));
  LOUPE_TRY(store->exec("PRAGMA foreign_keys=ON"));
  LOUPE_TRY(store->migrate());
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = make_error(ErrorCode::kIo, "session store {}: {}", path_, err ? err : "?");
    sqlite3_free(err);
    return s;
  }
  return Status::ok_status();
}

Status Store::migrate() {
  LOUPE_TRY(exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "applied_at INTEGER NOT NULL)"));
  int64_t have = 0;
  {
    Stmt q(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!q.ok() || q.step() != SQLITE_ROW) return sql_error(db_, "reading the schema version");
    have = q.i64(0);
  }
  const int64_t n = static_cast<int64_t>(std::size(kMigrations));
  if (have > n)
    return make_error(ErrorCode::kUnsupported,
                      "{} has schema version {}, newer than this loupe knows ({}); upgrade loupe",
                      path_, have, n);
  for (int64_t v = have + 1; v <= n; ++v) {
    LOUPE_TRY(exec("BEGIN IMMEDIATE"));
    Status s = exec(kMigrations[v - 1]);
    if (s.ok()) {
      Stmt ins(db_, "INSERT INTO schema_migrations(version, applied_at) VALUES(?, ?)");
      ins.bind(1, v).bind(2, static_cast<int64_t>(std::time(nullptr)));
      if (!ins.ok() || ins.step() != SQLITE_DONE) s = sql_error(db_, "recording a migration");
    }
    if (!s.ok()) {
      (void)exec("ROLLBACK");
      return s;
    }
    LOUPE_TRY(exec("COMMIT"));
  }
  return Status::ok_status();
}

Expected<int64_t> Store::record(const Exchange& ex) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  // Prefix hashes of the request's messages: the longest one that is a stored conversation's
  // whole history is the conversation this request continues.
  std::vector<std::string> prefix(ex.messages.size() + 1);
  {
    for (size_t k = 1; k <= ex.messages.size(); ++k) prefix[k] = messages_hash(ex.messages, k);
  }
  LOUPE_TRY(exec("BEGIN IMMEDIATE"));
  auto fail = [&](const char* what) {
    Status s = sql_error(db_, what);
    (void)exec("ROLLBACK");
    return s;
  };
  int64_t conv = 0;
  size_t have = 0;
  for (size_t k = ex.messages.size(); k >= 1 && conv == 0; --k) {
    Stmt q(db_, "SELECT id FROM conversations WHERE head_hash = ? AND n_messages = ? "
                "ORDER BY updated_at DESC, id DESC LIMIT 1");
    if (!q.ok()) return fail("finding the conversation");
    q.bind(1, prefix[k]).bind(2, static_cast<int64_t>(k));
    if (q.step() == SQLITE_ROW) {
      conv = q.i64(0);
      have = k;
    }
  }
  if (conv == 0) {
    Stmt ins(db_, "INSERT INTO conversations(created_at, updated_at, model, title, n_messages, "
                  "head_hash) VALUES(?, ?, ?, ?, 0, '')");
    if (!ins.ok()) return fail("creating a conversation");
    ins.bind(1, now).bind(2, now).bind(3, ex.model).bind(4, title_of(ex.messages));
    if (ins.step() != SQLITE_DONE) return fail("creating a conversation");
    conv = sqlite3_last_insert_rowid(db_);
  }
  int64_t exchange_id = 0;
  {
    Stmt ins(db_, "INSERT INTO exchanges(conversation_id, created_at, model, model_sha256, "
                  "template_hash, sampler, seed, loupe_version, timings, finish_reason, "
                  "prompt_tokens, completion_tokens) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!ins.ok()) return fail("recording the exchange");
    ins.bind(1, conv).bind(2, now).bind(3, ex.model).bind(4, ex.model_sha256)
        .bind(5, ex.template_hash).bind(6, ex.sampler_json).bind(7, ex.seed)
        .bind(8, ex.loupe_version).bind(9, ex.timings_json).bind(10, ex.finish_reason)
        .bind(11, ex.prompt_tokens).bind(12, ex.completion_tokens);
    if (ins.step() != SQLITE_DONE) return fail("recording the exchange");
    exchange_id = sqlite3_last_insert_rowid(db_);
  }
  std::vector<StoredMessage> all = ex.messages;
  all.push_back(ex.reply);
  for (size_t i = have; i < all.size(); ++i) {
    Stmt ins(db_, "INSERT INTO messages(conversation_id, seq, role, content, exchange_id, "
                  "extra) VALUES(?,?,?,?,?,?)");
    if (!ins.ok()) return fail("recording a message");
    ins.bind(1, conv).bind(2, static_cast<int64_t>(i)).bind(3, all[i].role)
        .bind(4, all[i].content).bind(5, exchange_id).bind(6, all[i].extra);
    if (ins.step() != SQLITE_DONE) return fail("recording a message");
  }
  {
    Stmt up(db_, "UPDATE conversations SET updated_at = ?, n_messages = ?, head_hash = ?, "
                 "model = ? WHERE id = ?");
    if (!up.ok()) return fail("updating the conversation");
    up.bind(1, now).bind(2, static_cast<int64_t>(all.size()))
        .bind(3, messages_hash(all, all.size())).bind(4, ex.model).bind(5, conv);
    if (up.step() != SQLITE_DONE) return fail("updating the conversation");
  }
  LOUPE_TRY(exec("COMMIT"));
  return conv;
}

Expected<std::vector<ConversationSummary>> Store::list() {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt q(db_, "SELECT id, created_at, updated_at, model, n_messages, title FROM conversations "
              "ORDER BY updated_at DESC, id DESC");
  if (!q.ok()) return sql_error(db_, "listing conversations");
  std::vector<ConversationSummary> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW)
    out.push_back({q.i64(0), q.i64(1), q.i64(2), q.text(3), q.i64(4), q.text(5)});
  if (rc != SQLITE_DONE) return sql_error(db_, "listing conversations");
  return out;
}

Expected<std::vector<ConversationSummary>> Store::search(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt q(db_, "SELECT id, created_at, updated_at, model, n_messages, title FROM conversations c "
              "WHERE c.title LIKE ?1 ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m WHERE "
              "m.conversation_id = c.id AND m.content LIKE ?1 ESCAPE '\\') "
              "ORDER BY updated_at DESC, id DESC");
  if (!q.ok()) return sql_error(db_, "searching conversations");
  q.bind(1, like_pattern(text));
  std::vector<ConversationSummary> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW)
    out.push_back({q.i64(0), q.i64(1), q.i64(2), q.text(3), q.i64(4), q.text(5)});
  if (rc != SQLITE_DONE) return sql_error(db_, "searching conversations");
  return out;
}

Expected<std::optional<Conversation>> Store::get(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  Conversation c;
  {
    Stmt q(db_, "SELECT id, created_at, updated_at, model, n_messages, title FROM conversations "
                "WHERE id = ?");
    if (!q.ok()) return sql_error(db_, "reading a conversation");
    q.bind(1, id);
    if (q.step() != SQLITE_ROW) return std::optional<Conversation>();
    c.summary = {q.i64(0), q.i64(1), q.i64(2), q.text(3), q.i64(4), q.text(5)};
  }
  {
    Stmt q(db_, "SELECT role, content, extra FROM messages WHERE conversation_id = ? "
                "ORDER BY seq");
    if (!q.ok()) return sql_error(db_, "reading messages");
    q.bind(1, id);
    while (q.step() == SQLITE_ROW) c.messages.push_back({q.text(0), q.text(1), q.text(2)});
  }
  {
    Stmt q(db_, "SELECT id, created_at, model, model_sha256, template_hash, sampler, "
                "loupe_version, timings, finish_reason, seed, prompt_tokens, completion_tokens "
                "FROM exchanges WHERE conversation_id = ? ORDER BY id");
    if (!q.ok()) return sql_error(db_, "reading exchanges");
    q.bind(1, id);
    while (q.step() == SQLITE_ROW) {
      ExchangeRecord r;
      r.id = q.i64(0);
      r.created_at = q.i64(1);
      r.model = q.text(2);
      r.model_sha256 = q.text(3);
      r.template_hash = q.text(4);
      r.sampler_json = q.text(5);
      r.loupe_version = q.text(6);
      r.timings_json = q.text(7);
      r.finish_reason = q.text(8);
      r.seed = q.i64(9);
      r.prompt_tokens = q.i64(10);
      r.completion_tokens = q.i64(11);
      c.exchanges.push_back(std::move(r));
    }
  }
  return std::optional<Conversation>(std::move(c));
}

Expected<bool> Store::remove(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  LOUPE_TRY(exec("BEGIN IMMEDIATE"));
  for (const char* sql : {"DELETE FROM messages WHERE conversation_id = ?",
                          "DELETE FROM exchanges WHERE conversation_id = ?",
                          "DELETE FROM conversations WHERE id = ?"}) {
    Stmt q(db_, sql);
    if (!q.ok()) {
      Status s = sql_error(db_, "deleting a conversation");
      (void)exec("ROLLBACK");
      return s;
    }
    q.bind(1, id);
    if (q.step() != SQLITE_DONE) {
      Status s = sql_error(db_, "deleting a conversation");
      (void)exec("ROLLBACK");
      return s;
    }
  }
  const bool deleted = sqlite3_changes(db_) > 0;
  LOUPE_TRY(exec("COMMIT"));
  return deleted;
}

Expected<std::string> Store::integrity_check() {
  std::lock_guard<std::mutex> lock(mutex_);
  Stmt q(db_, "PRAGMA integrity_check");
  if (!q.ok()) return sql_error(db_, "integrity check");
  std::string out;
  while (q.step() == SQLITE_ROW) {
    if (!out.empty()) out += '\n';
    out += q.text(0);
  }
  return out;
}

}  // namespace loupe::store
