// Synthesis and re-quantization round trips through the GGUF reader.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <set>
#include <span>

#include "common/testdata.h"
#include "model/synth.h"
#include "tensor/quant.h"

namespace loupe::model {
namespace {

// A small model of every family: a few layers, widths that are multiples of 256 so the
// K-quants apply, plus one 128-wide tensor family (experts) to exercise the fallbacks.
const char* const kTinyConfigs[] = {
    R"({"arch":"llama","n_vocab":300,"n_embd":256,"n_layer":3,"n_ff":512,"n_head":4,"n_head_kv":2,
        "rope_scaling":"llama3","rope_scaling_factor":8,"rope_orig_ctx":1024})",
    R"({"arch":"qwen3","n_vocab":300,"n_embd":256,"n_layer":2,"n_ff":256,"n_head":4,"n_head_kv":2,
        "head_dim":64,"tied_embeddings":true})",
    R"({"arch":"qwen35moe","n_vocab":300,"n_embd":256,"n_layer":2,"n_head":4,"n_head_kv":2,
        "head_dim":64,"n_rot":16,"full_attention_interval":2,"ssm_head_dim":64,"ssm_n_k_heads":2,
        "ssm_n_v_heads":4,"rope_sections":[3,3,2,0],"n_expert":4,"n_expert_used":2,"n_ff_exp":128})",
    R"({"arch":"gemma4","n_vocab":300,"n_embd":256,"n_layer":2,"n_ff":256,"n_head":4,"n_head_kv":1,
        "head_dim":128,"n_swa":32,"swa_period":2,"head_dim_swa":64,"n_head_kv_swa":2,
        "rope_partial_factor":0.25,"k_eq_v":true,"tied_embeddings":true})",
    R"({"arch":"gpt-oss","n_vocab":300,"n_embd":256,"n_layer":2,"n_head":8,"n_head_kv":2,
        "head_dim":64,"rope_scaling":"yarn","rope_scaling_factor":32,"rope_orig_ctx":4096,
        "n_swa":32,"n_expert":4,"n_expert_used":2,"n_ff_exp":256})",
};

SynthSpec tiny_spec(int index) {
  auto params = shape_from_json(kTinyConfigs[index], "tiny");
  EXPECT_TRUE(params.has_value()) << params.status().message();
  auto spec = build_spec(*params);
  EXPECT_TRUE(spec.has_value()) << spec.status().message();
  return *spec;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Synth, SyntheticVocabularyIsSentencePieceWithByteFallback) {
  const VocabSource v = synthetic_spm_vocab(1000);
  EXPECT_EQ(v.n_vocab, 1000);
  const gguf::Value* tokens = nullptr;
  for (const gguf::KeyValue& kv : v.tokenizer)
    if (kv.key == "tokenizer.ggml.tokens") tokens = &kv.value;
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->array().size(), 1000u);
  EXPECT_EQ(*tokens->array()[3].as_string(), "<0x00>");
  EXPECT_EQ(*tokens->array()[258].as_string(), "<0xFF>");
  std::set<std::string> unique;
  for (const gguf::Value& t : tokens->array()) unique.insert(*t.as_string());
  EXPECT_EQ(unique.size(), 1000u);
}

TEST(Synth, RoundTripEveryFamilyAndFileType) {
  const std::string dir = testing::temp_dir();
  ThreadPool pool(2);
  const FileType kTypes[] = {FileType::kF32, FileType::kF16, FileType::kBF16, FileType::kQ8_0,
                             FileType::kQ4_0, FileType::kQ4_1, FileType::kQ5_0, FileType::kQ5_1,
                             FileType::kQ2_K, FileType::kQ3_K_M, FileType::kQ4_K_M,
                             FileType::kQ5_K_M, FileType::kQ6_K, FileType::kIQ4_NL,
                             FileType::kIQ4_XS, FileType::kMXFP4_MOE};
  // Every file type on the llama shape; the main ones on the other families.
  const FileType kMain[] = {FileType::kF16, FileType::kQ8_0, FileType::kQ4_K_M,
                            FileType::kMXFP4_MOE};
  for (int c = 0; c < static_cast<int>(std::size(kTinyConfigs)); ++c) {
    const SynthSpec spec = tiny_spec(c);
    for (FileType ft : c == 0 ? std::span<const FileType>(kTypes) : std::span<const FileType>(kMain)) {
      SCOPED_TRACE(spec.arch + " " + std::string(file_type_name(ft)));
      const std::string path = dir + "/" + spec.arch + "." + std::string(file_type_name(ft)) + ".gguf";
      auto plan = plan_synth(spec, ft);
      ASSERT_TRUE(plan.has_value()) << plan.status().message();
      Status s = synthesize(spec, ft, 7, nullptr, path, pool);
      ASSERT_TRUE(s.ok()) << s.message();
      auto file = gguf::File::open(path);
      ASSERT_TRUE(file.has_value()) << file.status().message();
      ASSERT_EQ(file->tensors().size(), spec.tensors.size());
      for (size_t i = 0; i < spec.tensors.size(); ++i) {
        const gguf::TensorInfo& t = file->tensors()[i];
        EXPECT_EQ(t.name, spec.tensors[i].name);
        EXPECT_EQ(t.ne, spec.tensors[i].ne);
        EXPECT_EQ(t.type, plan->tensors[i].type) << t.name;
        EXPECT_EQ(t.n_bytes, plan->tensors[i].n_bytes) << t.name;
      }
      EXPECT_EQ(file->get_int_or("general.file_type", -1), static_cast<int64_t>(ft));
      EXPECT_EQ(file->get_string_or("tokenizer.ggml.model", ""), "llama");
      EXPECT_EQ(file->architecture(), spec.arch);
    }
  }
}

TEST(Synth, DeterministicForASeedAndAnyThreadCount) {
  const std::string dir = testing::temp_dir();
  const SynthSpec spec = tiny_spec(0);
  ThreadPool one(1), two(2);
  ASSERT_TRUE(synthesize(spec, FileType::kQ4_K_M, 42, nullptr, dir + "/a.gguf", one).ok());
  ASSERT_TRUE(synthesize(spec, FileType::kQ4_K_M, 42, nullptr, dir + "/b.gguf", two).ok());
  ASSERT_TRUE(synthesize(spec, FileType::kQ4_K_M, 43, nullptr, dir + "/c.gguf", two).ok());
  const std::string a = slurp(dir + "/a.gguf"), b = slurp(dir + "/b.gguf"), c = slurp(dir + "/c.gguf");
  EXPECT_GT(a.size(), 100000u);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.size(), c.size());
  EXPECT_FALSE(a == c);
}

TEST(Synth, WeightsHaveTheIntendedDistribution) {
  const std::string dir = testing::temp_dir();
  const SynthSpec spec = tiny_spec(0);
  ThreadPool pool(2);
  ASSERT_TRUE(synthesize(spec, FileType::kF32, 1, nullptr, dir + "/f32.gguf", pool).ok());
  auto file = gguf::File::open(dir + "/f32.gguf");
  ASSERT_TRUE(file.has_value());
  auto stats = [&](const char* name) {
    const gguf::TensorInfo* t = file->find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    const float* x = reinterpret_cast<const float*>(t->data);
    double sum = 0, sq = 0;
    const int64_t n = t->n_elements();
    for (int64_t i = 0; i < n; ++i) sum += x[i], sq += static_cast<double>(x[i]) * x[i];
    const double mean = sum / n;
    return std::pair{mean, std::sqrt(sq / n - mean * mean)};
  };
  auto [m_q, s_q] = stats("blk.0.attn_q.weight");
  EXPECT_NEAR(m_q, 0.0, 1e-3);
  EXPECT_NEAR(s_q, 0.02, 1e-3);
  auto [m_n, s_n] = stats("blk.1.ffn_norm.weight");
  EXPECT_NEAR(m_n, 1.0, 0.01);
  const gguf::TensorInfo* rope = file->find_tensor("rope_freqs.weight");
  ASSERT_NE(rope, nullptr);
  EXPECT_EQ(reinterpret_cast<const float*>(rope->data)[0], 1.0f);
}

TEST(Synth, VocabFromAnotherModelSizesTheEmbeddings) {
  LOUPE_REQUIRE_TESTDATA();
  auto donor = gguf::File::open(testing::testdata_path("models2026/qwen3-tok512.F16.gguf"));
  ASSERT_TRUE(donor.has_value()) << donor.status().message();
  auto vocab = vocab_from_gguf(*donor);
  ASSERT_TRUE(vocab.has_value()) << vocab.status().message();
  EXPECT_EQ(vocab->n_vocab, 512);
  auto params = shape_from_json(kTinyConfigs[1], "tiny");
  ASSERT_TRUE(params.has_value());
  auto mismatched = build_spec(*params);
  ASSERT_TRUE(mismatched.has_value());
  const std::string dir = testing::temp_dir();
  ThreadPool pool(1);
  EXPECT_FALSE(synthesize(*mismatched, FileType::kQ8_0, 1, &*vocab, dir + "/x.gguf", pool).ok());
  params->n_vocab = vocab->n_vocab;
  auto spec = build_spec(*params);
  ASSERT_TRUE(spec.has_value());
  ASSERT_TRUE(synthesize(*spec, FileType::kQ8_0, 1, &*vocab, dir + "/v.gguf", pool).ok());
  auto file = gguf::File::open(dir + "/v.gguf");
  ASSERT_TRUE(file.has_value());
  EXPECT_EQ(file->get_string_or("tokenizer.ggml.model", ""), "gpt2");
  EXPECT_EQ(file->get_string_or("tokenizer.ggml.pre", ""), "qwen2");
  EXPECT_EQ(file->find_tensor("token_embd.weight")->ne[1], 512);
}

TEST(Requantize, FollowsThePlanAndKeepsValuesClose) {
  const std::string dir = testing::temp_dir();
  const SynthSpec spec = tiny_spec(0);
  ThreadPool pool(2);
  ASSERT_TRUE(synthesize(spec, FileType::kF32, 3, nullptr, dir + "/f32.gguf", pool).ok());
  auto f32 = gguf::File::open(dir + "/f32.gguf");
  ASSERT_TRUE(f32.has_value());
  Status s = requantize(*f32, FileType::kQ8_0, dir + "/q8.gguf", pool);
  ASSERT_TRUE(s.ok()) << s.message();
  auto q8 = gguf::File::open(dir + "/q8.gguf");
  ASSERT_TRUE(q8.has_value());
  auto synth_plan = plan_synth(spec, FileType::kQ8_0);
  ASSERT_TRUE(synth_plan.has_value());
  ASSERT_EQ(q8->tensors().size(), f32->tensors().size());
  for (size_t i = 0; i < q8->tensors().size(); ++i) {
    const gguf::TensorInfo& t = q8->tensors()[i];
    EXPECT_EQ(t.type, synth_plan->tensors[i].type) << t.name;
    if (t.name != "blk.0.ffn_up.weight") continue;
    std::vector<float> back(static_cast<size_t>(t.n_elements()));
    dequantize_row_ref(t.type, t.data, back.data(), t.n_elements());
    const float* orig = reinterpret_cast<const float*>(f32->find_tensor(t.name)->data);
    for (size_t k = 0; k < back.size(); ++k) ASSERT_NEAR(back[k], orig[k], 1e-3f);
  }
  EXPECT_EQ(q8->get_int_or("general.file_type", -1), 7);
  EXPECT_EQ(q8->get_int_or("llama.block_count", -1), 3);
  EXPECT_EQ(q8->get_string_or("tokenizer.ggml.model", ""), "llama");
  // Synthesizing Q8_0 directly gives the same bytes as F32 then requantize (both quantize
  // the same F32 values with the same reference quantizer).
  ASSERT_TRUE(synthesize(spec, FileType::kQ8_0, 3, nullptr, dir + "/direct.gguf", pool).ok());
  EXPECT_TRUE(slurp(dir + "/direct.gguf") == slurp(dir + "/q8.gguf"));
}

// Timing of the 1.1B shape; run with --gtest_also_run_disabled_tests.
TEST(Synth, DISABLED_TinyLlamaQ4KMTiming) {
  auto params = find_shape("tinyllama-1.1b");
  ASSERT_TRUE(params.has_value());
  auto spec = build_spec(*params);
  ASSERT_TRUE(spec.has_value());
  ThreadPool pool(ThreadPool::default_threads());
  const std::string path = testing::temp_dir() + "/tinyllama.q4_k_m.gguf";
  const auto t0 = std::chrono::steady_clock::now();
  Status s = synthesize(*spec, FileType::kQ4_K_M, 1, nullptr, path, pool);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(s.ok()) << s.message();
  std::printf("tinyllama-1.1b q4_k_m: %.1f s with %d threads\n", secs, pool.n_threads());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace loupe::model
