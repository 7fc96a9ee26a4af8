// `loupe synth`: a random-weight GGUF of a real model's shape, to measure speed and
// memory before downloading the real weights.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "base/thread_pool.h"
#include "commands.h"
#include "format.h"
#include "gguf/file.h"
#include "model/quant_plan.h"
#include "model/shapes.h"
#include "model/synth.h"

namespace loupe::cli {
namespace {

struct SynthOptions {
  std::string shape;
  std::string config;
  std::string type = "q4_k_m";
  std::string out;
  std::string vocab_from;
  uint64_t seed = 42;
  int threads = 0;
  int64_t layers = 0;
  bool list = false;
  bool dry_run = false;
};

void print_catalog() {
  std::printf("%-18s %-10s %12s  %s\n", "shape", "arch", "parameters", "from");
  for (const model::CatalogEntry& e : model::shape_catalog()) {
    auto spec = model::build_spec(e.params);
    std::string n = spec ? human_count(spec->n_params()) : "?";
    std::printf("%-18s %-10s %12s  %.*s\n", std::string(e.name).c_str(), e.params.arch.c_str(),
                n.c_str(), static_cast<int>(e.reference.size()), e.reference.data());
  }
}

Status run(const SynthOptions& opt) {
  auto file_type = model::file_type_from_name(opt.type);
  if (!file_type)
    return make_error(ErrorCode::kInvalidArgument, "unknown --type '{}'; one of: {}", opt.type,
                      model::file_type_names());
  if (opt.shape.empty() == opt.config.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "give exactly one of --shape NAME (see --list) or --config FILE.json");
  Expected<model::ShapeParams> params = opt.shape.empty() ? model::shape_from_json_file(opt.config)
                                                          : model::find_shape(opt.shape);
  if (!params) return params.status();
  if (opt.layers > 0) {
    // Keep every layer's shape but only the first N layers: a cheap stand-in that a
    // runtime loads exactly like the full model.
    if (opt.layers > params->n_layer)
      return make_error(ErrorCode::kInvalidArgument, "--layers {} exceeds the shape's {} layers",
                        opt.layers, params->n_layer);
    params->n_layer = opt.layers;
    std::erase_if(params->moe_layers, [&](int64_t il) { return il >= opt.layers; });
    params->n_kv_shared = std::min(params->n_kv_shared, std::max<int64_t>(0, opt.layers - 2));
  }

  std::unique_ptr<model::VocabSource> vocab;
  if (!opt.vocab_from.empty()) {
    LOUPE_ASSIGN_OR_RETURN(gguf::File vf, gguf::File::open(opt.vocab_from));
    LOUPE_ASSIGN_OR_RETURN(model::VocabSource v, model::vocab_from_gguf(vf));
    vocab = std::make_unique<model::VocabSource>(std::move(v));
    params->n_vocab = vocab->n_vocab;
  }
  LOUPE_ASSIGN_OR_RETURN(model::SynthSpec spec, model::build_spec(*params));
  LOUPE_ASSIGN_OR_RETURN(model::FilePlan plan, model::plan_synth(spec, *file_type));
  std::fprintf(stderr, "loupe synth: %s (%s), %s parameters, %s as %s, vocab %lld%s\n",
               spec.params.name.c_str(), spec.arch.c_str(), human_count(plan.n_params).c_str(),
               human_bytes(plan.tensor_bytes).c_str(), std::string(model::file_type_name(*file_type)).c_str(),
               static_cast<long long>(spec.n_vocab), vocab ? " (copied)" : " (synthetic SPM)");
  if (opt.dry_run) {
    std::printf("%-44s %-7s %14s\n", "tensor", "type", "bytes");
    for (const model::TensorPlanRow& row : plan.tensors)
      std::printf("%-44s %-7s %14llu\n", row.name.c_str(), std::string(dtype_name(row.type)).c_str(),
                  static_cast<unsigned long long>(row.n_bytes));
    std::printf("total: %lld parameters, %llu tensor bytes (%s)\n", static_cast<long long>(plan.n_params),
                static_cast<unsigned long long>(plan.tensor_bytes), human_bytes(plan.tensor_bytes).c_str());
    return Status();
  }
  if (opt.out.empty()) return make_error(ErrorCode::kInvalidArgument, "-o OUT.gguf is required");
  ThreadPool pool(opt.threads > 0 ? opt.threads : ThreadPool::default_threads());
  auto t0 = std::chrono::steady_clock::now();
  LOUPE_TRY(model::synthesize(spec, *file_type, opt.seed, vocab.get(), opt.out, pool));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "loupe synth: wrote %s in %.1f s (%d threads, seed %llu); weights are random: "
               "use it to measure speed and memory, not quality\n",
               opt.out.c_str(), seconds, pool.n_threads(), static_cast<unsigned long long>(opt.seed));
  return Status();
}

}  // namespace

void add_synth(CLI::App& app) {
  auto opt = std::make_shared<SynthOptions>();
  CLI::App* cmd = app.add_subcommand(
      "synth", "Write a random-weight GGUF of a real model's shape (measure before you download)");
  cmd->add_option("--shape", opt->shape, "Named shape (see --list)");
  cmd->add_option("--config", opt->config, "Shape from a JSON file (fields: docs/cli.md)");
  cmd->add_option("--type", opt->type, "llama-quantize file type: f32, f16, bf16, q8_0, q4_0, q4_1, "
                  "q5_0, q5_1, q2_k, q3_k_m, q4_k_m, q5_k_m, q6_k, iq4_nl, iq4_xs, mxfp4_moe")
      ->capture_default_str();
  cmd->add_option("-o,--output", opt->out, "Output GGUF file");
  cmd->add_option("--seed", opt->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  cmd->add_option("--vocab-from", opt->vocab_from, "Copy the tokenizer of this GGUF (vocab-only files work)");
  cmd->add_option("-t,--threads", opt->threads, "Threads (default: all cores)");
  cmd->add_option("--layers", opt->layers, "Keep only the first N layers (same per-layer shapes)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--list", opt->list, "List the named shapes");
  cmd->add_flag("--dry-run", opt->dry_run, "Print the tensor plan and size without writing");
  cmd->callback([opt] {
    if (opt->list) {
      print_catalog();
      exit_status() = kExitOk;
      return;
    }
    Status s = run(*opt);
    exit_status() = s.ok() ? kExitOk : report(s);
  });
}

}  // namespace loupe::cli
