// `loupe serve`: the OpenAI-compatible HTTP API over a model (src/server).
//
//   loupe serve -m MODEL [-m MODEL ...] [--alias NAME ...] [--host 127.0.0.1] [--port 8080]
//               [--parallel N] [-c N] [-t N] [--api-key KEY] [--cors-origin ORIGIN]
//               [--data DIR] [--no-store] [--max-body BYTES] [--max-tokens N]
//               [--pooling mean|last|cls]
//
// `loupe sessions list|show ID|search TEXT|export ID|check|delete ID [--data DIR]`: the
// conversations it stored.
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "server/server.h"
#include "store/store.h"

namespace loupe::cli {
namespace {

std::string iso_time(int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm = {};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct SessionsOptions {
  std::string data;
  int64_t id = 0;
  std::string text;
};

void print_summaries(const std::vector<store::ConversationSummary>& list) {
  for (const auto& c : list)
    std::printf("%lld\t%s\t%s\t%lld messages\t%s\n", static_cast<long long>(c.id),
                iso_time(c.updated_at).c_str(), c.model.c_str(),
                static_cast<long long>(c.n_messages), c.title.c_str());
}

// A stored JSON text as a value (null when empty, the text itself if it does not parse).
nlohmann::ordered_json json_field(const std::string& text) {
  if (text.empty()) return nullptr;
  auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::ordered_json(text) : j;
}

Expected<std::unique_ptr<store::Store>> open_store(const std::string& data) {
  return store::Store::open(data.empty() ? store::default_data_dir() : data);
}

int run_list(const SessionsOptions& o) {
  auto st = open_store(o.data);
  if (!st) return report(st.status());
  auto list = (*st)->list();
  if (!list) return report(list.status());
  print_summaries(*list);
  return kExitOk;
}

// PRAGMA integrity_check: prints "ok" (exit 0) or what is wrong (exit 1).
int run_check(const SessionsOptions& o) {
  auto st = open_store(o.data);
  if (!st) return report(st.status());
  auto check = (*st)->integrity_check();
  if (!check) return report(check.status());
  std::printf("%s\n", check->c_str());
  return *check == "ok" ? kExitOk : kExitError;
}

// Conversation o.id, or kNotFound naming the store.
Expected<store::Conversation> load_conversation(const SessionsOptions& o) {
  LOUPE_ASSIGN_OR_RETURN(auto st, open_store(o.data));
  LOUPE_ASSIGN_OR_RETURN(std::optional<store::Conversation> c, st->get(o.id));
  if (!c.has_value())
    return make_error(ErrorCode::kNotFound, "no conversation {} in {}", o.id, st->path());
  return std::move(*c);
}

int run_search(const SessionsOptions& o) {
  auto st = open_store(o.data);
  if (!st) return report(st.status());
  auto list = (*st)->search(o.text);
  if (!list) return report(list.status());
  print_summaries(*list);
  return kExitOk;
}

// The whole conversation as one JSON document: messages (with their extras: tool calls,
// reasoning) and every exchange's provenance.
int run_export(const SessionsOptions& o) {
  auto c = load_conversation(o);
  if (!c) return report(c.status());
  const store::Conversation& conv = *c;
  using json = nlohmann::ordered_json;
  json messages = json::array();
  for (const auto& m : conv.messages) {
    json j = {{"role", m.role}, {"content", m.content}};
    json extra = json_field(m.extra);
    if (extra.is_object())
      for (auto& [k, v] : extra.items()) j[k] = v;
    messages.push_back(std::move(j));
  }
  json exchanges = json::array();
  for (const auto& e : conv.exchanges)
    exchanges.push_back({{"id", e.id},
                         {"created_at", iso_time(e.created_at)},
                         {"model", e.model},
                         {"model_sha256", e.model_sha256},
                         {"template_hash", e.template_hash},
                         {"sampler", json_field(e.sampler_json)},
                         {"seed", e.seed},
                         {"loupe_version", e.loupe_version},
                         {"timings", json_field(e.timings_json)},
                         {"finish_reason", e.finish_reason},
                         {"prompt_tokens", e.prompt_tokens},
                         {"completion_tokens", e.completion_tokens}});
  json out = {{"id", conv.summary.id},
              {"created_at", iso_time(conv.summary.created_at)},
              {"updated_at", iso_time(conv.summary.updated_at)},
              {"model", conv.summary.model},
              {"title", conv.summary.title},
              {"messages", std::move(messages)},
              {"exchanges", std::move(exchanges)}};
  std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return kExitOk;
}

int run_show(const SessionsOptions& o) {
  auto c = load_conversation(o);
  if (!c) return report(c.status());
  const store::Conversation& conv = *c;
  std::printf("conversation %lld  model %s  created %s  updated %s\n",
              static_cast<long long>(conv.summary.id), conv.summary.model.c_str(),
              iso_time(conv.summary.created_at).c_str(),
              iso_time(conv.summary.updated_at).c_str());
  for (const auto& m : conv.messages) {
    std::printf("\n[%s]\n%s\n", m.role.c_str(), m.content.c_str());
    if (!m.extra.empty()) std::printf("  %s\n", m.extra.c_str());
  }
  for (const auto& e : conv.exchanges)
    std::printf("\nexchange %lld  %s  model_sha256 %s  template %s  seed %lld  finish %s  "
                "prompt %lld  completion %lld  loupe %s\n  sampler %s\n  timings %s\n",
                static_cast<long long>(e.id), iso_time(e.created_at).c_str(),
                e.model_sha256.c_str(), e.template_hash.c_str(), static_cast<long long>(e.seed),
                e.finish_reason.c_str(), static_cast<long long>(e.prompt_tokens),
                static_cast<long long>(e.completion_tokens), e.loupe_version.c_str(),
                e.sampler_json.c_str(), e.timings_json.c_str());
  return kExitOk;
}

int run_delete(const SessionsOptions& o) {
  auto st = open_store(o.data);
  if (!st) return report(st.status());
  auto deleted = (*st)->remove(o.id);
  if (!deleted) return report(deleted.status());
  if (!*deleted)
    return report(make_error(ErrorCode::kNotFound, "no conversation {} in {}", o.id,
                             (*st)->path()));
  return kExitOk;
}

}  // namespace

void add_serve(CLI::App& app) {
  auto opt = std::make_shared<server::ServerOptions>();
  CLI::App* c = app.add_subcommand(
      "serve", "Serve a model over the OpenAI API on loopback, storing every exchange");
  c->add_option("-m,--model", opt->model_paths, "GGUF model (repeat for several)")->required();
  c->add_option("--alias", opt->aliases,
                "Model id of the -m in the same place (default: the file name without .gguf)");
  c->add_option("--host", opt->host, "Address to bind (non-loopback needs --api-key)")
      ->capture_default_str();
  c->add_option("--port", opt->port, "TCP port")->capture_default_str();
  c->add_option("-c,--ctx-size", opt->n_ctx,
                "Context size in tokens, 0 = min(training context, 4096)")
      ->capture_default_str();
  c->add_option("-t,--threads", opt->threads, "Threads (default: all cores)");
  c->add_option("--parallel", opt->parallel,
                "Sequences decoded together per model (continuous batching; -np)")
      ->capture_default_str();
  c->add_option("--max-queue", opt->max_queue,
                "Requests that may wait for a slot per model; more are answered 503")
      ->capture_default_str();
  c->add_option("--cors-origin", opt->cors_origin,
                "Send CORS headers allowing this origin (default: none)");
  c->add_option("--max-tokens", opt->max_tokens,
                "Largest max_tokens / num_predict a request may ask for")
      ->capture_default_str();
  c->add_option("--pooling", opt->pooling, "Embedding pooling (default: the model's, else mean)")
      ->check(CLI::IsMember({"mean", "last", "cls"}));
  c->add_option("--api-key", opt->api_key, "Require Authorization: Bearer KEY");
  c->add_option("--data", opt->data_dir,
                "Session store directory (default $XDG_DATA_HOME/loupe)");
  c->add_flag("--no-store", opt->no_store, "Do not store exchanges");
  c->add_option("--max-body", opt->max_body, "Largest request body in bytes")
      ->capture_default_str();
  c->callback([opt] {
    opt->version = LOUPE_VERSION;
    Status s = server::serve(*opt);
    exit_status() = s.ok() ? kExitOk : report(s);
  });

  auto so = std::make_shared<SessionsOptions>();
  CLI::App* s = app.add_subcommand("sessions", "Conversations stored by `loupe serve`");
  s->require_subcommand(1);
  CLI::App* list = s->add_subcommand("list", "One line per conversation, newest first");
  list->add_option("--data", so->data, "Session store directory");
  list->callback([so] { exit_status() = run_list(*so); });
  CLI::App* show = s->add_subcommand("show", "Messages and provenance of a conversation");
  show->add_option("id", so->id, "Conversation id")->required();
  show->add_option("--data", so->data, "Session store directory");
  show->callback([so] { exit_status() = run_show(*so); });
  CLI::App* search = s->add_subcommand(
      "search", "Conversations with a message containing TEXT (case-insensitive), newest first");
  search->add_option("text", so->text, "Text to look for")->required();
  search->add_option("--data", so->data, "Session store directory");
  search->callback([so] { exit_status() = run_search(*so); });
  CLI::App* exp = s->add_subcommand("export", "A conversation as JSON (messages + provenance)");
  exp->add_option("id", so->id, "Conversation id")->required();
  exp->add_option("--data", so->data, "Session store directory");
  exp->callback([so] { exit_status() = run_export(*so); });
  CLI::App* check = s->add_subcommand("check", "SQLite integrity check of the store");
  check->add_option("--data", so->data, "Session store directory");
  check->callback([so] { exit_status() = run_check(*so); });
  CLI::App* del = s->add_subcommand("delete", "Delete a conversation");
  del->add_option("id", so->id, "Conversation id")->required();
  del->add_option("--data", so->data, "Session store directory");
  del->callback([so] { exit_status() = run_delete(*so); });
}

}  // namespace loupe::cli
