// The shape catalog: published parameter counts, internal consistency, and (the strong
// check) JSON configs of the tiny ref2026/ref models expanding to exactly the tensors and
// keys of files that llama.cpp loads.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/testdata.h"
#include "model/shapes.h"

namespace loupe::model {
namespace {

using Json = nlohmann::json;

SynthSpec spec_of(std::string_view shape) {
  auto params = find_shape(shape);
  EXPECT_TRUE(params.has_value()) << params.status().message();
  auto spec = build_spec(*params);
  EXPECT_TRUE(spec.has_value()) << spec.status().message();
  return *spec;
}

// Published totals (model cards / config-derived counts):
//   TinyLlama-1.1B 1.10B (model card "1.1B"), Llama-3.2-1B 1.24B (Meta model card 1.23B),
//   Llama-3.1-8B 8.03B (Meta model card), Qwen3-0.6B 0.6B and Qwen3-8B 8.2B (Qwen3 model
//   cards: 0.6B / 8.2B), Qwen3.6-27B 27B and Qwen3.6-35B-A3B 35B (Qwen model cards),
//   gemma-4-31B 31B (Google model card), gpt-oss-20b 20.9B (OpenAI model card: 20.91B).
// The text-only counts here exclude vision towers and MTP heads, hence the tolerance.
TEST(ShapeCatalog, ParameterCountsMatchPublishedSizes) {
  const std::map<std::string, double> published_b = {
      {"tinyllama-1.1b", 1.10}, {"llama-3.2-1b", 1.236}, {"llama-3.1-8b", 8.03},
      {"qwen3-0.6b", 0.596},    {"qwen3-8b", 8.19},      {"qwen3.6-27b", 27.0},
      {"qwen3.6-35b-a3b", 35.0}, {"gemma-4-31b", 31.0},  {"gpt-oss-20b", 20.91},
      {"stories-15m", 0.015191712}};  // llama2.c stories15M, shared classifier
  ASSERT_EQ(shape_catalog().size(), published_b.size());
  for (const CatalogEntry& e : shape_catalog()) {
    const double got = static_cast<double>(spec_of(e.name).n_params()) * 1e-9;
    const double want = published_b.at(std::string(e.name));
    EXPECT_NEAR(got, want, 0.04 * want) << e.name << ": " << got << "B";
  }
}

TEST(ShapeCatalog, ExactCountsOfWellKnownModels) {
  // Exact totals of the Hugging Face checkpoints (sum of safetensors shapes).
  EXPECT_EQ(spec_of("tinyllama-1.1b").n_params(), 1100048384);
  EXPECT_EQ(spec_of("llama-3.1-8b").n_params() - 64, 8030261248);  // minus rope_freqs
  EXPECT_EQ(spec_of("qwen3-8b").n_params(), 8190735360);
  EXPECT_EQ(spec_of("stories-15m").n_params(), 15191712);  // llama2.c stories15M.bin
}

TEST(ShapeCatalog, EveryShapeIsConsistent) {
  for (const CatalogEntry& e : shape_catalog()) {
    const SynthSpec spec = spec_of(e.name);
    std::set<std::string> names;
    for (const TensorSpec& t : spec.tensors) {
      EXPECT_TRUE(names.insert(t.name).second) << e.name << ": duplicate " << t.name;
      for (int64_t d : t.ne) EXPECT_GT(d, 0) << e.name << " " << t.name;
      if (t.init.kind == InitKind::kValues) {
        EXPECT_EQ(static_cast<int64_t>(t.values.size()), t.n_elements()) << t.name;
      }
    }
    EXPECT_TRUE(names.count("token_embd.weight")) << e.name;
    EXPECT_TRUE(names.count("output_norm.weight")) << e.name;
    EXPECT_EQ(names.count("output.weight") == 0, spec.params.tied_embeddings) << e.name;
    // Every layer has its attention-input norm.
    for (int64_t il = 0; il < spec.params.n_layer; ++il)
      EXPECT_TRUE(names.count("blk." + std::to_string(il) + ".attn_norm.weight")) << e.name;
    EXPECT_EQ(spec.metadata.at(0).key, "general.architecture");
  }
}

TEST(ShapeCatalog, Llama3RopeFactorsFollowTheConverter) {
  const SynthSpec spec = spec_of("llama-3.1-8b");
  const TensorSpec* rope = nullptr;
  for (const TensorSpec& t : spec.tensors)
    if (t.name == "rope_freqs.weight") rope = &t;
  ASSERT_NE(rope, nullptr);
  ASSERT_EQ(rope->values.size(), 64u);
  EXPECT_FLOAT_EQ(rope->values.front(), 1.0f);  // high frequencies untouched
  EXPECT_FLOAT_EQ(rope->values.back(), 8.0f);   // low frequencies scaled by the factor
}

TEST(ShapeCatalog, UnknownShapeListsTheKnownOnes) {
  auto r = find_shape("llama-9b");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("tinyllama-1.1b"), std::string::npos);
}

TEST(ShapeJson, UnknownFieldIsNamed) {
  auto r = shape_from_json(R"({"arch":"llama","n_embd":64,"n_layer":1,"n_ff":128,"n_head":2,"n_vocab":300,"colour":"red"})",
                           "cfg.json");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.status().message().find("'colour'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("cfg.json"), std::string::npos);
}

TEST(ShapeJson, MissingAndMistypedFields) {
  auto no_arch = shape_from_json(R"({"n_embd":64})", "a.json");
  EXPECT_FALSE(no_arch.has_value());
  auto bad_type = shape_from_json(R"({"arch":"llama","n_embd":"64"})", "b.json");
  ASSERT_FALSE(bad_type.has_value());
  EXPECT_NE(bad_type.status().message().find("n_embd"), std::string::npos);
  auto missing = shape_from_json(R"({"arch":"qwen35","n_embd":64,"n_layer":4,"n_ff":64,"n_head":2})", "c.json");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.status().message().find("ssm_"), std::string::npos) << missing.status().message();
  auto not_json = shape_from_json("{", "d.json");
  EXPECT_FALSE(not_json.has_value());
}

// JSON configs of the tiny reference models (values from their manifests / READMEs).
struct TinyCase {
  const char* manifest;
  const char* config;
};

const TinyCase kTinyCases[] = {
    {"ref/llama-tok512.F32",
     R"({"arch":"llama","name":"llama-tok512","n_vocab":512,"n_ctx":512,"n_embd":256,"n_layer":2,
         "n_ff":512,"n_head":4,"n_head_kv":2,"rms_eps":1e-5,"tied_embeddings":true})"},
    {"ref2026/qwen3-tok512.F16",
     R"({"arch":"qwen3","n_vocab":512,"n_ctx":512,"n_embd":256,"n_layer":4,"n_ff":256,"n_head":4,
         "n_head_kv":2,"head_dim":64,"rope_base":1e6,"tied_embeddings":true})"},
    {"ref2026/qwen35-tok512.F16",
     R"({"arch":"qwen35","n_vocab":512,"n_ctx":512,"n_embd":256,"n_layer":4,"n_ff":256,"n_head":4,
         "n_head_kv":2,"head_dim":64,"n_rot":16,"rope_base":1e7,"tied_embeddings":true,
         "full_attention_interval":4,"ssm_head_dim":64,"ssm_n_k_heads":2,"ssm_n_v_heads":4,
         "rope_sections":[3,3,2,0]})"},
    {"ref2026/qwen35moe-tok512.F16",
     R"({"arch":"qwen35moe","n_vocab":512,"n_ctx":512,"n_embd":256,"n_layer":2,"n_ff":512,"n_head":4,
         "n_head_kv":2,"head_dim":64,"n_rot":16,"rope_base":1e7,"tied_embeddings":true,
         "full_attention_interval":2,"ssm_head_dim":64,"ssm_n_k_heads":2,"ssm_n_v_heads":4,
         "rope_sections":[3,3,2,0],"n_expert":4,"n_expert_used":2,"n_ff_exp":128,"n_ff_shexp":256})"},
    {"ref2026/gemma4-tok512.F16",
     R"({"arch":"gemma4","n_vocab":512,"n_ctx":512,"n_embd":256,"n_layer":4,"n_ff":256,"n_head":4,
         "n_head_kv":1,"head_dim":128,"rope_base":1e6,"tied_embeddings":true,"n_swa":32,
         "swa_period":2,"head_dim_swa":64,"n_head_kv_swa":2,"rope_base_swa":1e4,
         "rope_partial_factor":0.25,"k_eq_v":true,"n_kv_shared":2,"n_embd_per_layer":64,
         "double_wide_mlp":true,"final_logit_softcap":30,"n_expert":4,"n_expert_used":2,
         "n_ff_exp":128,"moe_layers":[1]})"},
    {"ref2026/gpt-oss-tok512.F16",
     R"({"arch":"gpt-oss","n_vocab":512,"n_ctx":512,"n_embd":256,"n_layer":2,"n_ff":128,"n_head":8,
         "n_head_kv":2,"head_dim":64,"rms_eps":1e-5,"rope_base":150000,"rope_scaling":"yarn",
         "rope_scaling_factor":32,"rope_orig_ctx":4096,"n_swa":32,"n_expert":4,"n_expert_used":2,
         "n_ff_exp":128})"},
};

bool same_value(const gguf::Value& v, const Json& j) {
  if (j.is_array()) {
    if (!v.is_array() || v.array().size() != j.size()) return false;
    for (size_t i = 0; i < j.size(); ++i)
      if (!same_value(v.array()[i], j[i])) return false;
    return true;
  }
  if (j.is_boolean()) return v.as_bool() == j.get<bool>();
  if (j.is_string()) return v.as_string() != nullptr && *v.as_string() == j.get<std::string>();
  if (j.is_number_integer()) return v.is_integer() && v.as_int() == j.get<int64_t>();
  if (j.is_number_float())
    return v.is_float() && static_cast<float>(*v.as_double()) == static_cast<float>(j.get<double>());
  return false;
}

TEST(ShapeJson, TinyConfigsReproduceFilesLlamaCppLoads) {
  LOUPE_REQUIRE_TESTDATA();
  for (const TinyCase& c : kTinyCases) {
    SCOPED_TRACE(c.manifest);
    std::ifstream in(testing::testdata_path(std::string(c.manifest) + "/manifest.json"));
    const Json m = Json::parse(in);
    auto params = shape_from_json(c.config, c.manifest);
    ASSERT_TRUE(params.has_value()) << params.status().message();
    auto spec = build_spec(*params);
    ASSERT_TRUE(spec.has_value()) << spec.status().message();

    std::map<std::string, std::vector<int64_t>> want, got;
    for (const auto& [name, row] : m.at("tensors").items())
      want[name] = row.at(1).get<std::vector<int64_t>>();
    for (const TensorSpec& t : spec->tensors) got[t.name] = t.ne;
    EXPECT_EQ(got, want);

    std::set<std::string> want_keys, got_keys;
    for (const auto& [key, value] : m.at("gguf_metadata").items())
      if (!key.starts_with("general.")) want_keys.insert(key);
    for (const gguf::KeyValue& kv : spec->metadata) {
      if (kv.key.starts_with("general.")) continue;
      got_keys.insert(kv.key);
      const Json& meta = m.at("gguf_metadata");
      if (meta.contains(kv.key)) {
        EXPECT_TRUE(same_value(kv.value, meta.at(kv.key)))
            << kv.key << ": " << kv.value.to_display() << " vs " << meta.at(kv.key).dump();
      }
    }
    EXPECT_EQ(got_keys, want_keys);
  }
}

TEST(ShapeJson, Gemma4ProportionalRopeFactors) {
  auto params = shape_from_json(kTinyCases[4].config, "gemma4");
  ASSERT_TRUE(params.has_value());
  auto spec = build_spec(*params);
  ASSERT_TRUE(spec.has_value());
  for (const TensorSpec& t : spec->tensors) {
    if (t.name != "rope_freqs.weight") continue;
    ASSERT_EQ(t.values.size(), 64u);  // README: 16 x 1.0 then 48 x 1e30
    EXPECT_EQ(t.values[15], 1.0f);
    EXPECT_EQ(t.values[16], 1e30f);
    return;
  }
  FAIL() << "no rope_freqs.weight";
}

}  // namespace
}  // namespace loupe::model
