// `loupe quantize IN OUT TYPE`: re-quantize a model with llama-quantize's type mix.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "base/thread_pool.h"
#include "commands.h"
#include "format.h"
#include "gguf/file.h"
#include "model/quant_plan.h"
#include "model/synth.h"

namespace loupe::cli {
namespace {

struct QuantizeOptions {
  std::string in;
  std::string out;
  std::string type;
  int threads = 0;
};

Status run(const QuantizeOptions& opt) {
  auto file_type = model::file_type_from_name(opt.type);
  if (!file_type)
    return make_error(ErrorCode::kInvalidArgument, "unknown type '{}'; one of: {}", opt.type,
                      model::file_type_names());
  std::error_code ec;
  if (std::filesystem::equivalent(opt.in, opt.out, ec))
    return make_error(ErrorCode::kInvalidArgument, "output {} is the input file", opt.out);
  LOUPE_ASSIGN_OR_RETURN(gguf::File in, gguf::File::open(opt.in));
  ThreadPool pool(opt.threads > 0 ? opt.threads : ThreadPool::default_threads());
  auto t0 = std::chrono::steady_clock::now();
  LOUPE_TRY(model::requantize(in, *file_type, opt.out, pool));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto out = gguf::File::open(opt.out);
  if (!out) return out.status();
  std::fprintf(stderr, "loupe quantize: %s (%s) -> %s (%s, %s) in %.1f s\n", opt.in.c_str(),
               human_bytes(in.file_size()).c_str(), opt.out.c_str(), human_bytes(out->file_size()).c_str(),
               std::string(model::file_type_name(*file_type)).c_str(), seconds);
  return Status();
}

}  // namespace

void add_quantize(CLI::App& app) {
  auto opt = std::make_shared<QuantizeOptions>();
  CLI::App* cmd = app.add_subcommand("quantize", "Re-quantize a GGUF model (llama-quantize's per-tensor mix)");
  cmd->add_option("input", opt->in, "Input GGUF")->required();
  cmd->add_option("output", opt->out, "Output GGUF")->required();
  cmd->add_option("type", opt->type, "File type: f32, f16, bf16, q8_0, q4_0, q4_k_m, ...")->required();
  cmd->add_option("-t,--threads", opt->threads, "Threads (default: all cores)");
  cmd->callback([opt] {
    Status s = run(*opt);
    exit_status() = s.ok() ? kExitOk : report(s);
  });
}

}  // namespace loupe::cli
