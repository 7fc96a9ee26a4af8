// Sampling and grammar flags under llama.cpp's names, shared by `loupe run` and `loupe chat`,
// and the `/set NAME VALUE` table of the chat REPL (llama.cpp's flag names and Ollama's
// parameter names both work there).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/status.h"
#include "sample/sampler.h"

namespace loupe::cli {

struct SamplerArgs {
  sample::SamplerParams params;
  int64_t seed = -1;                    // -1: random (llama.cpp's LLAMA_DEFAULT_SEED)
  std::string samplers;                 // --samplers; empty: the default order
  std::vector<std::string> logit_bias;  // -l TOKEN_ID(+/-)BIAS
  std::vector<std::string> dry_breakers;
  std::string grammar, grammar_file, json_schema, json_schema_file;
};

// Registers --temp, --top-k, ..., --grammar, -j/--json-schema and friends on `cmd`.
void add_sampler_options(CLI::App* cmd, SamplerArgs& args);

// The sampler parameters the flags describe (seed, order and logit biases resolved).
Expected<sample::SamplerParams> resolve_sampler(const SamplerArgs& args);
// GBNF text from --grammar / --grammar-file / -j / -jf (empty: unconstrained). At most one.
Expected<std::string> resolve_grammar(const SamplerArgs& args);

// `/set NAME VALUE` for a sampler parameter; names as the flags (temp, top-k, top_k,
// repeat-penalty, temperature, num_predict is not a sampler parameter). Returns false
// (with no change) when NAME is not a sampler parameter; an error for a bad value.
Expected<bool> set_sampler_param(sample::SamplerParams& params, const std::string& name,
                                 const std::string& value);
// Every parameter with its value, in a stable order (for /show params and saved sessions).
nlohmann::ordered_json sampler_params_to_json(const sample::SamplerParams& params);
// The inverse of sampler_params_to_json; unknown keys are errors naming them.
Status sampler_params_from_json(const nlohmann::ordered_json& j, sample::SamplerParams& params);

}  // namespace loupe::cli
