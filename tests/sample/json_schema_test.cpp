// JSON Schema -> GBNF -> constrained sampling on a real 151k-token vocabulary (Qwen2): for every
// schema of the suite and several seeds, random logits drive generation under the grammar with a
// token budget; every output must parse as JSON and validate against its schema. Also prints the
// cost of constrained sampling in ms per token.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <regex>

#include "common/testdata.h"
#include "gguf/file.h"
#include "model/vocab_load.h"
#include "sample_options.h"
#include "sample/json_schema.h"
#include "sample/sampler.h"

namespace loupe::sample {
namespace {

using testing::opts;

using Json = nlohmann::ordered_json;

// ---- a validator for the subset the converter supports ----

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool validate(const Json& schema, const nlohmann::json& v, const Json& root,
              const std::string& path, std::string& err, bool in_all_of = false);

bool fail(std::string& err, const std::string& path, const std::string& what) {
  err = path + ": " + what;
  return false;
}

bool validate_format(const std::string& format, const std::string& s) {
  static const std::string date = R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))";
  static const std::string time =
      R"(([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))";
  if (format == "date") return std::regex_match(s, std::regex(date));
  if (format == "time") return std::regex_match(s, std::regex(time));
  if (format == "date-time") return std::regex_match(s, std::regex(date + "T" + time));
  if (format == "uuid") {
    return std::regex_match(s, std::regex("[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"));
  }
  return true;
}

bool type_ok(const std::string& t, const nlohmann::json& v) {
  if (t == "string") return v.is_string();
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  return false;
}

bool validate(const Json& schema, const nlohmann::json& v, const Json& root,
              const std::string& path, std::string& err, bool in_all_of) {
  if (schema.is_boolean()) return schema.get<bool>() || fail(err, path, "false schema");
  if (schema.contains("$ref")) {
    const auto ref = schema["$ref"].get<std::string>();
    return validate(root.at(Json::json_pointer(ref.substr(1))), v, root, path, err);
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (schema.contains(key)) {
      std::string why;
      for (const auto& alt : schema[key]) {
        if (validate(alt, v, root, path, why)) return true;
      }
      return fail(err, path, std::string("no ") + key + " alternative matches: " + why);
    }
  }
  if (schema.contains("allOf")) {
    for (const auto& part : schema["allOf"]) {
      if (!validate(part, v, root, path, err, true)) return false;
    }
  }
  if (schema.contains("const") && nlohmann::json::parse(schema["const"].dump()) != v) {
    return fail(err, path, "const mismatch");
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || nlohmann::json::parse(e.dump()) == v;
    if (!found) return fail(err, path, "not in enum");
  }
  if (schema.contains("type")) {
    const auto& t = schema["type"];
    bool ok = false;
    if (t.is_array()) {
      for (const auto& one : t) ok = ok || type_ok(one.get<std::string>(), v);
    } else {
      ok = type_ok(t.get<std::string>(), v);
    }
    if (!ok) return fail(err, path, "wrong type, expected " + t.dump());
  }
  if (v.is_object()) {
    const Json empty = Json::object();
    const Json& props = schema.contains("properties") ? schema["properties"] : empty;
    for (const auto& [key, value] : v.items()) {
      if (props.contains(key)) {
        if (!validate(props[key], value, root, path + "/" + key, err)) return false;
      } else if (schema.contains("additionalProperties")) {
        if (!validate(schema["additionalProperties"], value, root, path + "/" + key, err))
          return false;
      } else if (schema.contains("properties") && !schema.contains("allOf") && !in_all_of) {
        // Our converter treats absent additionalProperties as false, like llama.cpp.
        return fail(err, path, "unexpected member '" + key + "'");
      }
    }
    if (schema.contains("required")) {
      for (const auto& r : schema["required"]) {
        if (!v.contains(r.get<std::string>())) return fail(err, path, "missing " + r.dump());
      }
    }
  }
  if (v.is_array()) {
    if (schema.contains("prefixItems")) {
      const auto& items = schema["prefixItems"];
      if (v.size() != items.size()) return fail(err, path, "tuple length");
      for (size_t i = 0; i < items.size(); ++i) {
        if (!validate(items[i], v[i], root, path + "/" + std::to_string(i), err)) return false;
      }
    } else if (schema.contains("items")) {
      for (size_t i = 0; i < v.size(); ++i) {
        if (!validate(schema["items"], v[i], root, path + "/" + std::to_string(i), err))
          return false;
      }
    }
    if (schema.contains("minItems") && v.size() < schema["minItems"].get<size_t>()) {
      return fail(err, path, "too few items");
    }
    if (schema.contains("maxItems") && v.size() > schema["maxItems"].get<size_t>()) {
      return fail(err, path, "too many items");
    }
  }
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (schema.contains("minLength") && utf8_length(s) < schema["minLength"].get<size_t>()) {
      return fail(err, path, "too short");
    }
    if (schema.contains("maxLength") && utf8_length(s) > schema["maxLength"].get<size_t>()) {
      return fail(err, path, "too long");
    }
    if (schema.contains("format") && !validate_format(schema["format"].get<std::string>(), s)) {
      return fail(err, path, "bad " + schema["format"].dump() + ": " + s);
    }
  }
  if (v.is_number()) {
    if (schema.contains("minimum") && v.get<double>() < schema["minimum"].get<double>()) {
      return fail(err, path, "below minimum");
    }
    if (schema.contains("exclusiveMinimum") &&
        v.get<double>() <= schema["exclusiveMinimum"].get<double>()) {
      return fail(err, path, "not above exclusiveMinimum");
    }
  }
  return true;
}

// ---- the suite ----

const char* const kSchemas[] = {
    R"({"type": "string"})",
    R"({"type": "integer"})",
    R"({"type": "number"})",
    R"({"type": "boolean"})",
    R"({"type": "null"})",
    R"({})",
    R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"]})",
    R"({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"},
        "c": {"type": "boolean"}}})",
    R"({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"},
        "c": {"type": "boolean"}}, "required": ["b"]})",
    R"({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
        "additionalProperties": true})",
    R"({"type": "object", "additionalProperties": {"type": "integer"}})",
    R"({"type": "object"})",
    R"({"type": "array", "items": {"type": "integer"}})",
    R"({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3})",
    R"({"type": "array", "items": {"type": "boolean"}, "minItems": 2})",
    R"({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]})",
    R"({"enum": ["red", "green", "blue"]})",
    R"({"enum": [1, "two", null, true, {"a": [1, 2]}]})",
    R"({"const": "fixed"})",
    R"({"const": {"x": [1, 2], "y": "z"}})",
    R"({"anyOf": [{"type": "string"}, {"type": "integer"}]})",
    R"({"oneOf": [{"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                  {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}]})",
    R"({"type": ["string", "null"]})",
    R"({"$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"},
        "y": {"type": "number"}}, "required": ["x", "y"]}},
        "type": "array", "items": {"$ref": "#/$defs/point"}, "maxItems": 3})",
    R"({"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
        "required": ["value"]}}, "$ref": "#/$defs/node"})",
    R"({"definitions": {"color": {"enum": ["r", "g"]}}, "type": "object",
        "properties": {"fg": {"$ref": "#/definitions/color"}, "bg": {"$ref": "#/definitions/color"}},
        "required": ["fg"]})",
    R"({"type": "string", "format": "date"})",
    R"({"type": "string", "format": "date-time"})",
    R"({"type": "string", "format": "uuid"})",
    R"({"type": "string", "format": "time"})",
    R"({"type": "string", "minLength": 3, "maxLength": 8})",
    R"({"type": "string", "maxLength": 0})",
    R"({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                  {"properties": {"b": {"type": "string"}}, "required": ["b"]}]})",
    R"({"type": "object", "properties": {"user": {"type": "object", "properties": {
        "id": {"type": "integer", "minimum": 0}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["id"]}}, "required": ["user"]})",
    R"({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1},
        "m": {"type": "integer", "exclusiveMinimum": 0}, "x": {"type": "number", "minimum": 0}},
        "required": ["n", "m", "x"]})",
    R"({"type": "object", "properties": {"名前": {"type": "string"}}, "required": ["名前"]})",
    R"({"type": "object", "properties": {"a\"b": {"type": "integer"}, "with space": {"type": "boolean"},
        "nl\n": {"type": "null"}}, "required": ["a\"b", "with space", "nl\n"]})",
    R"({"type": "object", "properties": {"name": {"const": "get_weather"}, "arguments": {"type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]}},
        "required": ["name", "arguments"]})",
    R"({"type": "object", "properties": {}, "additionalProperties": false})",
    R"({"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "null"},
        {"type": "array", "items": {"type": "integer"}, "maxItems": 2}]}, "maxItems": 4})",
};

struct Qwen {
  tokenizer::Tokenizer tok;
  std::shared_ptr<const TokenVocab> vocab;
};

const Qwen* qwen() {
  static const std::unique_ptr<Qwen> q = []() -> std::unique_ptr<Qwen> {
    auto file = gguf::File::open(loupe::testing::testdata_path("vocab/ggml-vocab-qwen2.gguf"));
    if (!file.has_value()) return nullptr;
    auto tok = model::load_tokenizer(*file);
    if (!tok.has_value()) return nullptr;
    std::vector<std::string> pieces;
    for (int32_t id = 0; id < tok->n_vocab(); ++id)
      pieces.push_back(tok->token_to_piece(id, false));
    auto vocab = TokenVocab::create(std::move(pieces), tok->eog_ids());
    return std::make_unique<Qwen>(Qwen{std::move(*tok), std::move(vocab)});
  }();
  return q.get();
}

// A pool of random logits; each step reads a window at a random offset (cheap, reproducible).
struct LogitSource {
  explicit LogitSource(size_t n_vocab) : pool(n_vocab * 8) {
    std::mt19937 rng(99);
    std::uniform_real_distribution<float> u(0.0f, 8.0f);
    for (auto& x : pool) x = u(rng);
  }
  std::span<const float> next(std::mt19937& rng, size_t n_vocab) {
    std::uniform_int_distribution<size_t> off(0, pool.size() - n_vocab);
    return std::span<const float>(pool).subspan(off(rng), n_vocab);
  }
  std::vector<float> pool;
};

struct Generated {
  std::string text;
  int n_tokens = 0;
  bool ended = false;
  double ms = 0;
};

Generated generate(const Qwen& q, const std::shared_ptr<const Grammar>& grammar, uint32_t seed,
                   int budget, bool grammar_first, LogitSource& logits) {
  SamplerParams p;
  p.seed = seed;
  ChainSetup setup;
  setup.n_vocab = q.vocab->n_vocab();
  setup.vocab = q.vocab;
  setup.grammar = grammar;
  auto chain = SamplerChain::create(p, setup);
  EXPECT_TRUE(chain.has_value()) << chain.status().message();
  std::mt19937 rng(seed * 7919u + 1);
  Generated g;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < budget; ++i) {
    auto r = chain->sample(logits.next(rng, static_cast<size_t>(q.vocab->n_vocab())),
                           opts(false, 0, budget - i, grammar_first));
    if (!r.has_value()) {
      ADD_FAILURE() << "step " << i << ": " << r.status().message() << "\nso far: " << g.text;
      break;
    }
    const Status s = chain->accept(r->token);
    if (!s.ok()) {
      ADD_FAILURE() << "the grammar rejected the sampled token: " << s.message();
      break;
    }
    ++g.n_tokens;
    if (q.vocab->is_eog(r->token)) {
      g.ended = true;
      break;
    }
    g.text += q.vocab->piece(r->token);
  }
  g.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(chain->grammar()->accepting()) << "incomplete: " << g.text;
  return g;
}

TEST(JsonSchema, SuiteConvertsToValidGrammars) {
  EXPECT_GE(std::size(kSchemas), 30u);
  for (const char* text : kSchemas) {
    auto gbnf = json_schema_to_grammar(text);
    ASSERT_TRUE(gbnf.has_value()) << text << "\n" << gbnf.status().message();
    auto g = Grammar::parse(*gbnf);
    EXPECT_TRUE(g.has_value()) << text << "\n" << *gbnf << "\n" << g.status().message();
  }
}

TEST(JsonSchema, GrammarText) {
  auto g = json_schema_to_grammar(
      R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
          "required": ["a"]})");
  ASSERT_TRUE(g.has_value());
  EXPECT_NE(g->find("root ::= "), std::string::npos);
  EXPECT_NE(g->find(R"(root-a-kv ::= "\"a\"" space ":" space integer)"), std::string::npos) << *g;
  EXPECT_NE(g->find(R"("{" space root-a-kv ( "," space root-b-kv )? "}" space)"), std::string::npos)
      << *g;
}

TEST(JsonSchema, UnsupportedKeywordsAreErrorsWithPaths) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type": "string", "pattern": "^a+$"})",
       "JSON schema at '/pattern': keyword 'pattern' is not supported"},
      {R"({"properties": {"x": {"type": "integer", "maximum": 3}}})", "at '/properties/x'"},
      {R"({"$ref": "https://example.com/s.json"})", "is not local"},
      {R"({"$ref": "#/$defs/missing"})", "points nowhere"},
      {R"({"not": {"type": "string"}})", "keyword 'not' is not supported"},
      {R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})",
       "'b' is not in properties"},
      {R"({"type": "strin"})", "unknown type 'strin'"},
      {R"({"type": "array", "minItems": 3, "maxItems": 1})", "maxItems < minItems"},
      {R"({"type": "string", "maxLength": 1000000})", "must be between 0 and 10000"},
      {R"(false)", "matches nothing"},
      {R"({"type": "object",)", "not valid JSON"},
      {R"([4444444444444444444444444E4444444444444444444arr])", "not usable"},  // fuzzer regression
  };
  for (const auto& [schema, expected] : cases) {
    auto g = json_schema_to_grammar(schema);
    ASSERT_FALSE(g.has_value()) << schema;
    EXPECT_NE(g.status().message().find(expected), std::string::npos) << schema << "\n"
                                                                      << g.status().message();
  }
}

TEST(JsonSchema, ConstrainedGenerationIsAlwaysValid) {
  LOUPE_REQUIRE_TESTDATA();
  const Qwen* q = qwen();
  ASSERT_NE(q, nullptr);
  LogitSource logits(static_cast<size_t>(q->vocab->n_vocab()));
  int n_outputs = 0, n_tokens = 0, n_ended = 0;
  double ms = 0;
  for (size_t i = 0; i < std::size(kSchemas); ++i) {
    const Json schema = Json::parse(kSchemas[i]);
    auto gbnf = json_value_to_grammar(schema);
    ASSERT_TRUE(gbnf.has_value());
    auto parsed = Grammar::parse(*gbnf);
    ASSERT_TRUE(parsed.has_value());
    auto grammar = std::make_shared<const Grammar>(std::move(*parsed));
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      SCOPED_TRACE(::testing::Message()
                   << "schema " << i << " " << kSchemas[i] << " seed " << seed);
      const int budget = 24 + 40 * static_cast<int>(seed);  // 64, 104, 144 tokens
      const Generated g = generate(*q, grammar, seed, budget, seed == 2, logits);
      EXPECT_LE(g.n_tokens, budget);
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(g.text);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "not JSON: " << e.what() << "\n" << g.text;
        continue;
      }
      std::string err;
      EXPECT_TRUE(validate(schema, value, schema, "", err)) << err << "\n" << g.text;
      ++n_outputs;
      n_tokens += g.n_tokens;
      n_ended += g.ended;
      ms += g.ms;
    }
  }
  std::printf(
      "[json-schema suite] %zu schemas, %d outputs, %d tokens (%d ended by end-of-generation),"
      " %.3f ms/token (Qwen2 vocab, %d tokens)\n",
      std::size(kSchemas), n_outputs, n_tokens, n_ended, ms / n_tokens, q->vocab->n_vocab());
}

TEST(JsonSchema, SpeedOnQwenVocabulary) {
  LOUPE_REQUIRE_TESTDATA();
  const Qwen* q = qwen();
  ASSERT_NE(q, nullptr);
  const int32_t n_vocab = q->vocab->n_vocab();
  LogitSource logits(static_cast<size_t>(n_vocab));
  auto gbnf = json_schema_to_grammar(kSchemas[37]);  // the tool-call shape
  ASSERT_TRUE(gbnf.has_value());
  auto grammar = std::make_shared<const Grammar>(std::move(*Grammar::parse(*gbnf)));
  constexpr int kTokens = 400;
  const auto per_token = [&](bool use_grammar, bool grammar_first) {
    SamplerParams p;
    p.seed = 11;
    ChainSetup setup;
    setup.n_vocab = n_vocab;
    setup.vocab = q->vocab;
    if (use_grammar) setup.grammar = grammar;
    auto chain = SamplerChain::create(p, setup);
    std::mt19937 rng(5);
    int n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kTokens; ++i) {
      auto r = chain->sample(logits.next(rng, static_cast<size_t>(n_vocab)),
                             opts(false, 0, use_grammar ? kTokens - i : -1, grammar_first));
      EXPECT_TRUE(r.has_value());
      if (!r.has_value()) break;
      ++n;
      EXPECT_TRUE(chain->accept(r->token).ok());
      if (q->vocab->is_eog(r->token)) break;
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return std::make_pair(ms / n, chain->grammar() ? chain->grammar()->stats() : GrammarStats{});
  };
  const auto [plain, s0] = per_token(false, false);
  const auto [rejection, s1] = per_token(true, false);
  const auto [first, s2] = per_token(true, true);
  // A cold mask: the first trie walk of a permissive state (inside a JSON string).
  auto string_grammar = std::make_shared<const Grammar>(
      std::move(*Grammar::parse(*json_schema_to_grammar(R"({"type": "string"})"))));
  GrammarMatcher m(string_grammar, q->vocab);
  ASSERT_TRUE(m.accept(1).ok() || m.accept(q->tok.tokenize("\"", false, false)[0]).ok());
  Candidates c;
  for (int32_t i = 0; i < n_vocab; ++i) c.data.push_back({i, 0.0f, 0.0f});
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(m.filter(c, -1).ok());
  const double cold =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "[speed, %d-token Qwen2 vocab] unconstrained %.3f ms/token; JSON-schema grammar: "
      "%.3f ms/token (llama.cpp-style draw then check), %.3f ms/token (grammar first); "
      "cold mask of a string state %.2f ms (%zu of %d tokens allowed, %lld trie nodes); "
      "grammar-first run: %lld masks computed, %lld from cache\n",
      n_vocab, plain, rejection, first, cold, c.data.size(), n_vocab,
      static_cast<long long>(m.stats().n_trie_nodes_visited),
      static_cast<long long>(s2.n_mask_computed), static_cast<long long>(s2.n_mask_cached));
  // Generous bounds (a loaded CI machine): the point is "milliseconds, not seconds".
  EXPECT_LT(first, 50.0);
  EXPECT_LT(rejection, 50.0);
  (void)s0;
  (void)s1;
}

}  // namespace
}  // namespace loupe::sample
