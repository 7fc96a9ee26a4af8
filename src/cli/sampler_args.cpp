#include "sampler_args.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>

#include "sample/json_schema.h"

namespace loupe::cli {
namespace {

using sample::SamplerParams;

// One sampler parameter: its llama-server JSON name, the other names /set accepts (dashes and
// underscores are interchangeable), and where it lives.
struct ParamDef {
  const char* json_name;
  std::vector<const char*> aliases;
  float SamplerParams::*f = nullptr;
  int32_t SamplerParams::*i = nullptr;
};

const std::vector<ParamDef>& param_defs() {
  static const std::vector<ParamDef> kDefs = {
      {"temperature", {"temp"}, &SamplerParams::temp},
      {"top_k", {}, nullptr, &SamplerParams::top_k},
      {"top_p", {}, &SamplerParams::top_p},
      {"min_p", {}, &SamplerParams::min_p},
      {"typical_p", {"typical", "typ_p"}, &SamplerParams::typ_p},
      {"top_n_sigma", {"top_nsigma"}, &SamplerParams::top_n_sigma},
      {"repeat_last_n", {}, nullptr, &SamplerParams::penalty_last_n},
      {"repeat_penalty", {}, &SamplerParams::penalty_repeat},
      {"presence_penalty", {}, &SamplerParams::penalty_present},
      {"frequency_penalty", {}, &SamplerParams::penalty_freq},
      {"dry_multiplier", {}, &SamplerParams::dry_multiplier},
      {"dry_base", {}, &SamplerParams::dry_base},
      {"dry_allowed_length", {}, nullptr, &SamplerParams::dry_allowed_length},
      {"dry_penalty_last_n", {}, nullptr, &SamplerParams::dry_penalty_last_n},
      {"xtc_probability", {}, &SamplerParams::xtc_probability},
      {"xtc_threshold", {}, &SamplerParams::xtc_threshold},
      {"dynatemp_range", {}, &SamplerParams::dynatemp_range},
      {"dynatemp_exponent", {"dynatemp_exp"}, &SamplerParams::dynatemp_exponent},
      {"mirostat", {}, nullptr, &SamplerParams::mirostat},
      {"mirostat_tau", {"mirostat_ent"}, &SamplerParams::mirostat_tau},
      {"mirostat_eta", {"mirostat_lr"}, &SamplerParams::mirostat_eta},
      {"min_keep", {}, nullptr, &SamplerParams::min_keep},
  };
  return kDefs;
}

std::string normalize(std::string name) {
  for (char& c : name) {
    if (c == '-') c = '_';
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return name;
}

Expected<double> parse_number(const std::string& name, const std::string& value) {
  double v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size())
    return make_error(ErrorCode::kInvalidArgument, "{} {}: expected a number", name, value);
  return v;
}

Expected<uint32_t> parse_seed(int64_t seed) {
  if (seed == -1) return sample::kRandomSeed;
  if (seed < 0 || seed > 0xFFFFFFFFll)
    return make_error(ErrorCode::kInvalidArgument,
                      "--seed {}: use -1 (random) or a number from 0 to 4294967295", seed);
  return static_cast<uint32_t>(seed);
}

Expected<std::string> read_text_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "{} {}: cannot open file", flag, path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// "TOKEN_ID(+/-)BIAS" as llama.cpp's -l: 15043+1, 15043-1, 15043-inf.
Expected<sample::LogitBias> parse_logit_bias(const std::string& text) {
  const size_t sign = text.find_first_of("+-", 1);
  auto bad = [&] {
    return make_error(ErrorCode::kInvalidArgument,
                      "--logit-bias {}: expected TOKEN_ID(+/-)BIAS, e.g. 15043+1 or 15043-inf",
                      text);
  };
  if (sign == std::string::npos) return bad();
  int32_t id = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + sign, id);
  if (ec != std::errc() || p != text.data() + sign || id < 0) return bad();
  const std::string rest = text.substr(sign + 1);
  float bias = 0;
  if (rest == "inf") {
    bias = INFINITY;
  } else {
    auto [q, ec2] = std::from_chars(rest.data(), rest.data() + rest.size(), bias);
    if (ec2 != std::errc() || q != rest.data() + rest.size()) return bad();
  }
  return sample::LogitBias{id, text[sign] == '-' ? -bias : bias};
}

}  // namespace

void add_sampler_options(CLI::App* cmd, SamplerArgs& a) {
  SamplerParams& p = a.params;
  const std::string g = "Sampling";
  cmd->add_option("-s,--seed", a.seed, "RNG seed, -1 for a random one (reported)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--temp", p.temp, "Temperature; 0 = greedy")->capture_default_str()->group(g);
  cmd->add_option("--top-k", p.top_k, "Top-k, <= 0 off")->capture_default_str()->group(g);
  cmd->add_option("--top-p", p.top_p, "Top-p (nucleus), 1.0 off")->capture_default_str()->group(g);
  cmd->add_option("--min-p", p.min_p, "Min-p, 0.0 off")->capture_default_str()->group(g);
  cmd->add_option("--typical", p.typ_p, "Locally typical sampling p, 1.0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--top-nsigma", p.top_n_sigma, "Top-n-sigma, <= 0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--repeat-last-n", p.penalty_last_n,
                  "Tokens the penalties look back at, 0 off, -1 context size")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--repeat-penalty", p.penalty_repeat, "Repetition penalty, 1.0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--presence-penalty", p.penalty_present, "Presence penalty, 0.0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--frequency-penalty", p.penalty_freq, "Frequency penalty, 0.0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--dry-multiplier", p.dry_multiplier, "DRY multiplier, 0.0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--dry-base", p.dry_base, "DRY base")->capture_default_str()->group(g);
  cmd->add_option("--dry-allowed-length", p.dry_allowed_length, "DRY allowed length")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--dry-penalty-last-n", p.dry_penalty_last_n,
                  "DRY look-back, 0 off, -1 context size")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--dry-sequence-breaker", a.dry_breakers,
                  "DRY sequence breaker (repeatable; replaces the defaults; 'none' for none)")
      ->allow_extra_args(false)
      ->group(g);
  cmd->add_option("--xtc-probability", p.xtc_probability, "XTC probability, 0.0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--xtc-threshold", p.xtc_threshold, "XTC threshold, > 0.5 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--dynatemp-range", p.dynatemp_range, "Dynamic temperature range, 0.0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--dynatemp-exp", p.dynatemp_exponent, "Dynamic temperature exponent")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--mirostat", p.mirostat, "Mirostat: 0 off, 1, or 2 (2.0)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--mirostat-lr", p.mirostat_eta, "Mirostat learning rate (eta)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--mirostat-ent", p.mirostat_tau, "Mirostat target entropy (tau)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--min-keep", p.min_keep, "Candidates every stage keeps at least, 0 off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("-l,--logit-bias", a.logit_bias,
                  "TOKEN_ID(+/-)BIAS, e.g. 15043+1 or 15043-inf (repeatable)")
      ->allow_extra_args(false)
      ->group(g);
  cmd->add_option("--samplers", a.samplers,
                  "Stage order, ';'-separated (default "
                  "penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature)")
      ->group(g);
  cmd->add_flag("--ignore-eos", p.ignore_eos, "Do not stop at end-of-generation tokens")->group(g);
  const std::string gg = "Grammar";
  auto* grammar =
      cmd->add_option("--grammar", a.grammar, "GBNF grammar the output must match")->group(gg);
  auto* grammar_file =
      cmd->add_option("--grammar-file", a.grammar_file, "GBNF grammar file")->group(gg);
  auto* schema = cmd->add_option("-j,--json-schema", a.json_schema,
                                 "JSON Schema the output must match (as JSON text)")
                     ->group(gg);
  auto* schema_file =
      cmd->add_option("--json-schema-file", a.json_schema_file, "JSON Schema file (also -jf)")
          ->group(gg);
  std::vector<CLI::Option*> all = {grammar, grammar_file, schema, schema_file};
  for (CLI::Option* x : all)
    for (CLI::Option* y : all)
      if (x != y) x->excludes(y);
}

Expected<SamplerParams> resolve_sampler(const SamplerArgs& a) {
  SamplerParams p = a.params;
  LOUPE_ASSIGN_OR_RETURN(p.seed, parse_seed(a.seed));
  if (!a.samplers.empty()) {
    LOUPE_ASSIGN_OR_RETURN(p.samplers, sample::parse_sampler_order(a.samplers));
  }
  for (const std::string& b : a.logit_bias) {
    LOUPE_ASSIGN_OR_RETURN(sample::LogitBias bias, parse_logit_bias(b));
    p.logit_bias.push_back(bias);
  }
  if (!a.dry_breakers.empty()) {
    p.dry_sequence_breakers.clear();
    for (const std::string& b : a.dry_breakers)
      if (b != "none") p.dry_sequence_breakers.push_back(b);
  }
  return p;
}

Expected<std::string> resolve_grammar(const SamplerArgs& a) {
  if (!a.grammar.empty()) return a.grammar;
  if (!a.grammar_file.empty()) return read_text_file(a.grammar_file, "--grammar-file");
  std::string schema = a.json_schema;
  if (!a.json_schema_file.empty()) {
    LOUPE_ASSIGN_OR_RETURN(schema, read_text_file(a.json_schema_file, "--json-schema-file"));
  }
  if (schema.empty()) return std::string();
  auto g = sample::json_schema_to_grammar(std::string_view(schema));
  if (!g) return g.status().with_context("--json-schema");
  return g;
}

Expected<bool> set_sampler_param(SamplerParams& p, const std::string& raw_name,
                                 const std::string& value) {
  const std::string name = normalize(raw_name);
  if (name == "seed") {
    LOUPE_ASSIGN_OR_RETURN(double v, parse_number(raw_name, value));
    if (v != std::floor(v))
      return make_error(ErrorCode::kInvalidArgument, "seed {}: not an integer", value);
    LOUPE_ASSIGN_OR_RETURN(p.seed, parse_seed(static_cast<int64_t>(v)));
    return true;
  }
  if (name == "samplers") {
    LOUPE_ASSIGN_OR_RETURN(p.samplers, sample::parse_sampler_order(value));
    return true;
  }
  if (name == "ignore_eos") {
    if (value != "on" && value != "off" && value != "true" && value != "false" && value != "1" &&
        value != "0")
      return make_error(ErrorCode::kInvalidArgument, "ignore_eos {}: use on or off", value);
    p.ignore_eos = value == "on" || value == "true" || value == "1";
    return true;
  }
  for (const ParamDef& d : param_defs()) {
    bool match = name == d.json_name;
    for (const char* alias : d.aliases) match = match || name == alias;
    if (!match) continue;
    LOUPE_ASSIGN_OR_RETURN(double v, parse_number(raw_name, value));
    if (d.f != nullptr) {
      p.*d.f = static_cast<float>(v);
    } else {
      if (v != std::floor(v) || std::fabs(v) > 2e9)
        return make_error(ErrorCode::kInvalidArgument, "{} {}: expected an integer", raw_name,
                          value);
      p.*d.i = static_cast<int32_t>(v);
    }
    return true;
  }
  return false;
}

nlohmann::ordered_json sampler_params_to_json(const SamplerParams& p) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["seed"] = p.seed == sample::kRandomSeed ? int64_t{-1} : static_cast<int64_t>(p.seed);
  for (const ParamDef& d : param_defs()) {
    if (d.f != nullptr)  // the float's shortest decimal form: 0.95, not 0.949999988079071
      j[d.json_name] = std::stod(fmt::format("{}", p.*d.f));
    else
      j[d.json_name] = p.*d.i;
  }
  j["dry_sequence_breakers"] = p.dry_sequence_breakers;
  j["ignore_eos"] = p.ignore_eos;
  nlohmann::ordered_json bias = nlohmann::ordered_json::array();
  for (const auto& b : p.logit_bias)
    bias.push_back({b.token, std::isinf(b.bias)
                                 ? nlohmann::ordered_json(b.bias < 0 ? "-inf" : "inf")
                                 : nlohmann::ordered_json(std::stod(fmt::format("{}", b.bias)))});
  j["logit_bias"] = std::move(bias);
  j["samplers"] = sample::sampler_order_string(p.samplers);
  return j;
}

Status sampler_params_from_json(const nlohmann::ordered_json& j, SamplerParams& p) {
  if (!j.is_object())
    return make_error(ErrorCode::kInvalidArgument, "sampler settings must be a JSON object");
  SamplerParams out = p;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "dry_sequence_breakers") {
      if (!v.is_array())
        return make_error(ErrorCode::kInvalidArgument, "{}: expected an array", key);
      out.dry_sequence_breakers.clear();
      for (const auto& s : v) {
        if (!s.is_string())
          return make_error(ErrorCode::kInvalidArgument, "{}: expected strings", key);
        out.dry_sequence_breakers.push_back(s.get<std::string>());
      }
    } else if (key == "logit_bias") {
      if (!v.is_array())
        return make_error(ErrorCode::kInvalidArgument, "{}: expected an array", key);
      out.logit_bias.clear();
      for (const auto& e : v) {
        if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer())
          return make_error(ErrorCode::kInvalidArgument, "{}: expected [token, bias] pairs", key);
        float bias = 0;
        if (e[1].is_string()) {
          bias = e[1].get<std::string>() == "-inf" ? -INFINITY : INFINITY;
        } else if (e[1].is_number()) {
          bias = e[1].get<float>();
        } else {
          return make_error(ErrorCode::kInvalidArgument, "{}: a bias must be a number", key);
        }
        out.logit_bias.push_back({e[0].get<int32_t>(), bias});
      }
    } else if (key == "ignore_eos") {
      if (!v.is_boolean())
        return make_error(ErrorCode::kInvalidArgument, "{}: expected true or false", key);
      out.ignore_eos = v.get<bool>();
    } else {
      std::string text;
      if (v.is_string()) {
        text = v.get<std::string>();
      } else if (v.is_number_integer()) {
        text = std::to_string(v.get<int64_t>());
      } else if (v.is_number()) {
        text = fmt::format("{}", v.get<double>());
      } else {
        return make_error(ErrorCode::kInvalidArgument, "{}: unexpected {}", key, v.type_name());
      }
      auto known = set_sampler_param(out, key, text);
      if (!known) return known.status();
      if (!*known)
        return make_error(ErrorCode::kInvalidArgument, "unknown sampler setting '{}'", key);
    }
  }
  p = std::move(out);
  return Status();
}

}  // namespace loupe::cli
