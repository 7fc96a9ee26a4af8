// `loupe inspect MODEL`: what is in a GGUF file and what it needs to run.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "commands.h"
#include "format.h"
#include "gguf/file.h"
#include "model/hparams.h"

namespace loupe::cli {
namespace {

struct InspectOptions {
  std::string model;
  bool json = false;
  bool tensors = false;
  bool hash = false;
  bool template_only = false;
  int64_t n_ctx = 0;  // 0 = the model's training context
  std::string cache_type = "f16";
};

using nlohmann::ordered_json;

// llama.cpp's display names of `general.file_type` (llama_model_ftype_name).
std::string file_type_display_name(int64_t ftype) {
  static const std::map<int64_t, const char*> kNames = {
      {0, "all F32"}, {1, "F16"}, {2, "Q4_0"}, {3, "Q4_1"}, {7, "Q8_0"}, {8, "Q5_0"}, {9, "Q5_1"},
      {10, "Q2_K - Medium"}, {11, "Q3_K - Small"}, {12, "Q3_K - Medium"}, {13, "Q3_K - Large"},
      {14, "Q4_K - Small"}, {15, "Q4_K - Medium"}, {16, "Q5_K - Small"}, {17, "Q5_K - Medium"},
      {18, "Q6_K"}, {19, "IQ2_XXS - 2.0625 bpw"}, {20, "IQ2_XS - 2.3125 bpw"}, {21, "Q2_K - Small"},
      {22, "IQ3_XS - 3.3 bpw"}, {23, "IQ3_XXS - 3.0625 bpw"}, {24, "IQ1_S - 1.5625 bpw"},
      {25, "IQ4_NL - 4.5 bpw"}, {26, "IQ3_S - 3.4375 bpw"}, {27, "IQ3_S mix - 3.66 bpw"},
      {28, "IQ2_S - 2.5 bpw"}, {29, "IQ2_M - 2.7 bpw"}, {30, "IQ4_XS - 4.25 bpw"},
      {31, "IQ1_M - 1.75 bpw"}, {32, "BF16"}, {36, "TQ1_0 - 1.69 bpw ternary"},
      {37, "TQ2_0 - 2.06 bpw ternary"}, {38, "MXFP4 MoE"}};
  auto it = kNames.find(ftype & ~1024);  // 1024: LLAMA_FTYPE_GUESSED
  return it == kNames.end() ? "unknown" : it->second;
}

struct SpecialToken {
  const char* role;
  const char* key;
};
constexpr SpecialToken kSpecialTokens[] = {
    {"bos", "tokenizer.ggml.bos_token_id"},   {"eos", "tokenizer.ggml.eos_token_id"},
    {"eot", "tokenizer.ggml.eot_token_id"},   {"eom", "tokenizer.ggml.eom_token_id"},
    {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
    {"pad", "tokenizer.ggml.padding_token_id"}, {"mask", "tokenizer.ggml.mask_token_id"},
};

// Sort key that puts per-layer tensors in layer order: blk.10 after blk.9.
std::pair<int64_t, std::string> tensor_order(const std::string& name) {
  static const std::regex kBlk(R"(^blk\.(\d+)\.(.*)$)");
  std::smatch m;
  if (std::regex_match(name, m, kBlk)) return {std::stoll(m[1]), m[2]};
  return {-1, name};
}

std::string shape_string(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// Everything `inspect` reports, as one JSON object with stable keys (docs/cli.md).
Expected<ordered_json> describe(const gguf::File& f, const InspectOptions& opt) {
  ordered_json j;
  j["file"] = f.path();
  j["n_splits"] = f.n_splits();
  j["gguf_version"] = f.version();
  j["alignment"] = f.alignment();
  j["file_size"] = f.file_size();
  j["architecture"] = f.architecture();
  j["name"] = f.get_string_or("general.name", "");
  int64_t ftype = f.get_int_or("general.file_type", -1);
  j["file_type"] = ftype;
  j["file_type_name"] = ftype >= 0 ? file_type_display_name(ftype) : "";
  j["n_tensors"] = f.tensors().size();
  j["n_metadata"] = f.metadata().size();

  int64_t n_params = 0;
  uint64_t tensor_bytes = 0;
  std::map<std::string, std::pair<uint64_t, int64_t>> by_type;  // name -> (bytes, count)
  for (const gguf::TensorInfo& t : f.tensors()) {
    n_params += t.n_elements();
    tensor_bytes += t.n_bytes;
    auto& e = by_type[std::string(dtype_name(t.type))];
    e.first += t.n_bytes;
    e.second += 1;
  }
  j["n_params"] = n_params;
  j["tensor_bytes"] = tensor_bytes;
  ordered_json mix = ordered_json::array();
  std::vector<std::pair<std::string, std::pair<uint64_t, int64_t>>> sorted(by_type.begin(), by_type.end());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
  for (auto& [type, e] : sorted)
    mix.push_back({{"type", type}, {"bytes", e.first}, {"n_tensors", e.second},
                   {"fraction", tensor_bytes ? static_cast<double>(e.first) / tensor_bytes : 0.0}});
  j["quant_mix"] = mix;
  j["bits_per_weight"] = n_params ? 8.0 * static_cast<double>(tensor_bytes) / n_params : 0.0;

  auto hp = model::read_hparams(f);
  if (hp) {
    const model::Hparams& h = *hp;
    ordered_json hj;
    hj["n_embd"] = h.n_embd;
    hj["n_layer"] = h.n_layer;
    auto uniform = [](const std::vector<int64_t>& v) -> ordered_json {
      if (!v.empty() && std::all_of(v.begin(), v.end(), [&](int64_t x) { return x == v[0]; })) return v[0];
      return v;
    };
    hj["n_head"] = uniform(h.n_head);
    hj["n_head_kv"] = uniform(h.n_head_kv);
    hj["head_dim_k"] = h.head_dim_k;
    hj["head_dim_v"] = h.head_dim_v;
    if (h.head_dim_k_swa != h.head_dim_k) hj["head_dim_k_swa"] = h.head_dim_k_swa;
    hj["n_ff"] = uniform(h.n_ff);
    hj["n_vocab"] = h.n_vocab;
    hj["norm"] = h.norm_is_rms ? "rms" : "layer";
    hj["norm_eps"] = h.norm_eps;
    if (h.n_expert > 0) {
      hj["n_expert"] = h.n_expert;
      hj["n_expert_used"] = h.n_expert_used;
      hj["n_ff_expert"] = h.n_ff_expert;
      if (h.n_ff_shared_expert) hj["n_ff_shared_expert"] = h.n_ff_shared_expert;
    }
    if (h.sliding_window > 0) hj["sliding_window"] = h.sliding_window;
    if (h.attn_softcap > 0) hj["attn_softcap"] = h.attn_softcap;
    if (h.final_softcap > 0) hj["final_softcap"] = h.final_softcap;
    std::map<std::string, int> kinds;
    for (auto k : h.layer_kind) kinds[model::layer_kind_name(k)]++;
    hj["layer_kinds"] = kinds;
    int n_shared = static_cast<int>(std::count(h.kv_shared.begin(), h.kv_shared.end(), true));
    if (n_shared) hj["n_kv_shared_layers"] = n_shared;
    j["hparams"] = hj;
    j["context_length"] = h.n_ctx_train;
    ordered_json rope;
    rope["dims"] = h.rope_dims;
    rope["freq_base"] = h.rope_freq_base;
    if (h.rope_freq_base_swa > 0) rope["freq_base_swa"] = h.rope_freq_base_swa;
    rope["scaling"] = h.rope_scaling.empty() ? "none" : h.rope_scaling;
    if (h.rope_scaling_factor > 0) rope["scaling_factor"] = h.rope_scaling_factor;
    if (h.rope_orig_ctx > 0) rope["original_context_length"] = h.rope_orig_ctx;
    j["rope"] = rope;

    int64_t n_ctx = opt.n_ctx > 0 ? opt.n_ctx : (h.n_ctx_train > 0 ? h.n_ctx_train : 4096);
    double kv_bytes = opt.cache_type == "f32" ? 4.0 : opt.cache_type == "q8_0" ? 34.0 / 32 : 2.0;
    model::MemoryEstimate m = model::estimate_memory(h, tensor_bytes, n_ctx, 512, kv_bytes);
    j["memory"] = {{"n_ctx", n_ctx}, {"cache_type", opt.cache_type}, {"weights", m.weights},
                   {"kv_cache", m.kv_cache}, {"recurrent_state", m.recurrent_state},
                   {"compute", m.compute}, {"total", m.total()}};
  } else {
    j["hparams_error"] = hp.status().message();
  }

  ordered_json tok;
  tok["model"] = f.get_string_or("tokenizer.ggml.model", "");
  tok["pre"] = f.get_string_or("tokenizer.ggml.pre", "");
  const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
  size_t n_tokens = tokens && tokens->is_array() ? tokens->array().size() : 0;
  tok["n_tokens"] = n_tokens;
  const gguf::Value* merges = f.find("tokenizer.ggml.merges");
  tok["n_merges"] = merges && merges->is_array() ? merges->array().size() : 0;
  if (const gguf::Value* v = f.find("tokenizer.ggml.add_bos_token"); v && v->as_bool()) tok["add_bos"] = *v->as_bool();
  if (const gguf::Value* v = f.find("tokenizer.ggml.add_eos_token"); v && v->as_bool()) tok["add_eos"] = *v->as_bool();
  ordered_json special = ordered_json::object();
  for (const SpecialToken& s : kSpecialTokens) {
    const gguf::Value* v = f.find(s.key);
    if (v == nullptr || !v->as_int()) continue;
    int64_t id = *v->as_int();
    ordered_json e = {{"id", id}};
    if (id >= 0 && static_cast<size_t>(id) < n_tokens && tokens->array()[id].is_string())
      e["text"] = *tokens->array()[id].as_string();
    special[s.role] = e;
  }
  tok["special"] = special;
  j["tokenizer"] = tok;

  const gguf::Value* tmpl = f.find("tokenizer.chat_template");
  j["chat_template"] = tmpl != nullptr && tmpl->is_string();
  ordered_json named = ordered_json::array();
  for (const gguf::KeyValue& kv : f.metadata())
    if (kv.key.rfind("tokenizer.chat_template.", 0) == 0) named.push_back(kv.key.substr(24));
  if (!named.empty()) j["chat_template_names"] = named;

  if (opt.hash) {
    ordered_json hashes = ordered_json::array();
    for (const std::string& part : f.part_paths()) {
      LOUPE_ASSIGN_OR_RETURN(std::string h, sha256_file(part));
      hashes.push_back(h);
    }
    j["sha256"] = hashes.size() == 1 ? hashes[0] : hashes;
  }

  if (opt.tensors) {
    std::vector<const gguf::TensorInfo*> ts;
    for (const gguf::TensorInfo& t : f.tensors()) ts.push_back(&t);
    std::stable_sort(ts.begin(), ts.end(), [](auto* a, auto* b) {
      return tensor_order(a->name) < tensor_order(b->name);
    });
    ordered_json arr = ordered_json::array();
    for (auto* t : ts)
      arr.push_back({{"name", t->name}, {"type", std::string(dtype_name(t->type))}, {"ne", t->ne},
                     {"n_elements", t->n_elements()}, {"bytes", t->n_bytes}, {"split", t->split},
                     {"offset", t->offset}});
    j["tensors"] = arr;
  }
  return j;
}

void print_text(const ordered_json& j) {
  auto line = [](const char* label, const std::string& value) {
    std::printf("%-14s %s\n", label, value.c_str());
  };
  line("file", j["file"].get<std::string>() +
                   (j["n_splits"].get<int>() > 1 ? fmt::format(" ({} parts)", j["n_splits"].get<int>()) : ""));
  line("format", fmt::format("GGUF v{}, alignment {}, {} tensors, {} metadata keys",
                             j["gguf_version"].get<int>(), j["alignment"].get<int>(),
                             j["n_tensors"].get<size_t>(), j["n_metadata"].get<size_t>()));
  line("architecture", j["architecture"].get<std::string>());
  if (!j["name"].get<std::string>().empty()) line("name", j["name"].get<std::string>());
  if (j["file_type"].get<int64_t>() >= 0)
    line("file type", fmt::format("{} ({})", j["file_type_name"].get<std::string>(), j["file_type"].get<int64_t>()));
  line("parameters", fmt::format("{} ({})", human_count(j["n_params"].get<int64_t>()), j["n_params"].get<int64_t>()));
  line("file size", fmt::format("{} ({} bytes; tensors {}, {:.2f} bits/weight)",
                                human_bytes(j["file_size"].get<uint64_t>()), j["file_size"].get<uint64_t>(),
                                human_bytes(j["tensor_bytes"].get<uint64_t>()), j["bits_per_weight"].get<double>()));
  bool first = true;
  for (const auto& m : j["quant_mix"]) {
    line(first ? "quant mix" : "", fmt::format("{:<7} {:>5.1f}%  {:>12}  {} tensors", m["type"].get<std::string>(),
                                               100 * m["fraction"].get<double>(),
                                               human_bytes(m["bytes"].get<uint64_t>()), m["n_tensors"].get<int64_t>()));
    first = false;
  }
  if (j.contains("hparams")) {
    const auto& h = j["hparams"];
    line("context", fmt::format("{} tokens (trained)", j["context_length"].get<int64_t>()));
    line("shape", fmt::format("n_embd {}, n_layer {}, n_head {}, n_head_kv {}, head_dim {}/{}, n_ff {}, vocab {}",
                              h["n_embd"].dump(), h["n_layer"].dump(), h["n_head"].dump(), h["n_head_kv"].dump(),
                              h["head_dim_k"].dump(), h["head_dim_v"].dump(), h["n_ff"].dump(), h["n_vocab"].dump()));
    std::string kinds;
    for (auto it = h["layer_kinds"].begin(); it != h["layer_kinds"].end(); ++it)
      kinds += (kinds.empty() ? "" : ", ") + fmt::format("{} × {}", it.value().get<int>(), it.key());
    if (h.contains("sliding_window")) kinds += fmt::format(" (window {})", h["sliding_window"].get<int64_t>());
    if (h.contains("n_kv_shared_layers")) kinds += fmt::format("; {} reuse earlier KV", h["n_kv_shared_layers"].get<int>());
    line("layers", kinds);
    if (h.contains("n_expert"))
      line("experts", fmt::format("{} experts, {} used per token, expert n_ff {}{}", h["n_expert"].dump(),
                                  h["n_expert_used"].dump(), h["n_ff_expert"].dump(),
                                  h.contains("n_ff_shared_expert") ? ", shared expert n_ff " + h["n_ff_shared_expert"].dump() : ""));
    line("norm", fmt::format("{} eps {:g}", h["norm"].get<std::string>(), h["norm_eps"].get<double>()));
    const auto& r = j["rope"];
    std::string rope = fmt::format("dims {}, base {}", r["dims"].dump(), r["freq_base"].get<double>());
    if (r.contains("freq_base_swa")) rope += fmt::format(" (sliding layers {})", r["freq_base_swa"].get<double>());
    rope += ", scaling " + r["scaling"].get<std::string>();
    if (r.contains("scaling_factor")) rope += fmt::format(" ×{}", r["scaling_factor"].get<double>());
    if (r.contains("original_context_length")) rope += fmt::format(" from {}", r["original_context_length"].get<int64_t>());
    line("rope", rope);
    if (h.contains("attn_softcap") || h.contains("final_softcap"))
      line("softcap", fmt::format("attention {}, final {}", h.value("attn_softcap", 0.0), h.value("final_softcap", 0.0)));
  } else {
    line("hparams", "unavailable: " + j["hparams_error"].get<std::string>());
  }
  const auto& t = j["tokenizer"];
  line("tokenizer", fmt::format("{}{}, {} tokens, {} merges{}", t["model"].get<std::string>(),
                                t["pre"].get<std::string>().empty() ? "" : " (pre " + t["pre"].get<std::string>() + ")",
                                t["n_tokens"].get<size_t>(), t["n_merges"].get<size_t>(),
                                t.value("add_bos", false) ? ", adds BOS" : ""));
  std::string special;
  for (auto it = t["special"].begin(); it != t["special"].end(); ++it)
    special += (special.empty() ? "" : ", ") +
               fmt::format("{} {}{}", it.key(), it.value()["id"].get<int64_t>(),
                           it.value().contains("text") ? " " + it.value()["text"].dump() : "");
  if (!special.empty()) line("special", special);
  line("chat template", j["chat_template"].get<bool>() ? "present (print it with --template)" : "none");
  if (j.contains("memory")) {
    const auto& m = j["memory"];
    line("memory", fmt::format("{} at ctx {} = weights {} + KV cache {} ({}) + {}compute {}",
                               human_bytes(m["total"].get<uint64_t>()), m["n_ctx"].get<int64_t>(),
                               human_bytes(m["weights"].get<uint64_t>()), human_bytes(m["kv_cache"].get<uint64_t>()),
                               m["cache_type"].get<std::string>(),
                               m["recurrent_state"].get<uint64_t>() ? "recurrent state " + human_bytes(m["recurrent_state"].get<uint64_t>()) + " + " : "",
                               human_bytes(m["compute"].get<uint64_t>())));
  }
  if (j.contains("sha256")) line("sha256", j["sha256"].is_string() ? j["sha256"].get<std::string>() : j["sha256"].dump());
  if (j.contains("tensors")) {
    std::printf("\n%-40s %-7s %-24s %12s\n", "tensor", "type", "shape (ne)", "bytes");
    for (const auto& e : j["tensors"])
      std::printf("%-40s %-7s %-24s %12s\n", e["name"].get<std::string>().c_str(),
                  e["type"].get<std::string>().c_str(), shape_string(e["ne"].get<std::vector<int64_t>>()).c_str(),
                  human_bytes(e["bytes"].get<uint64_t>()).c_str());
  }
}

int run_inspect(const InspectOptions& opt) {
  auto file = gguf::File::open(opt.model);
  if (!file) return report(file.status());
  if (opt.template_only) {
    const gguf::Value* tmpl = file->find("tokenizer.chat_template");
    if (tmpl == nullptr || !tmpl->is_string())
      return report(make_error(ErrorCode::kNotFound, "{}: no chat template (tokenizer.chat_template)", opt.model));
    std::fwrite(tmpl->as_string()->data(), 1, tmpl->as_string()->size(), stdout);
    return kExitOk;
  }
  auto j = describe(*file, opt);
  if (!j) return report(j.status());
  if (opt.json) {
    std::cout << j->dump(2) << "\n";
  } else {
    print_text(*j);
  }
  return kExitOk;
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show a GGUF model's metadata, quant mix and memory needs");
  cmd->add_option("model", opt->model, "GGUF file (first part of a split model)")->required();
  cmd->add_flag("--json", opt->json, "Print one JSON object (keys documented in docs/cli.md)");
  cmd->add_flag("--tensors", opt->tensors, "List every tensor: type, shape, bytes (layer order)");
  cmd->add_flag("--hash", opt->hash, "Compute the file's sha256 (reads the whole file)");
  cmd->add_flag("--template", opt->template_only, "Print the chat template verbatim and exit");
  cmd->add_option("-c,--ctx", opt->n_ctx, "Context length for the memory estimate (default: trained context)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cache-type", opt->cache_type, "KV cache type for the memory estimate")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}));
  cmd->callback([opt] { exit_status() = run_inspect(*opt); });
}

}  // namespace loupe::cli
