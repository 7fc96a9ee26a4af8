// The quantization plan against ground truth: for every model llama-quantize produced in
// testdata ref/ (llama.cpp b4748) and ref2026/ (June-2026 llama.cpp), the plan must pick
// exactly the type llama-quantize chose for each tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/testdata.h"
#include "model/quant_plan.h"

namespace loupe::model {
namespace {

using Json = nlohmann::json;

TEST(FileTypes, NamesAndIdsRoundTrip) {
  for (const FileTypeInfo& info : file_types()) {
    EXPECT_EQ(file_type_from_name(info.name), info.type);
    EXPECT_EQ(file_type_from_id(static_cast<uint32_t>(info.type)), info.type);
  }
  EXPECT_EQ(file_type_from_name("Q4_K_M"), FileType::kQ4_K_M);
  EXPECT_EQ(static_cast<uint32_t>(FileType::kQ4_K_M), 15u);  // llama.h LLAMA_FTYPE_MOSTLY_Q4_K_M
  EXPECT_EQ(static_cast<uint32_t>(FileType::kMXFP4_MOE), 38u);
  EXPECT_FALSE(file_type_from_name("q4_k_x").has_value());
  EXPECT_EQ(file_type_info(FileType::kQ3_K_M).default_type, DType::kQ3_K);
}

int64_t first_int(const Json& v) { return v.is_array() ? v.at(0).get<int64_t>() : v.get<int64_t>(); }

struct RefCase {
  std::string dir;
  QuantRules rules;
};

std::vector<RefCase> reference_manifests() {
  std::vector<RefCase> out;
  for (auto [sub, rules] : {std::pair{"ref", QuantRules::kB4748}, std::pair{"ref2026", QuantRules::kCurrent}}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(testing::testdata_path(sub), ec))
      if (std::filesystem::exists(e.path() / "manifest.json")) out.push_back({e.path().string(), rules});
  }
  std::sort(out.begin(), out.end(), [](const RefCase& a, const RefCase& b) { return a.dir < b.dir; });
  return out;
}

TEST(QuantPlan, ReproducesLlamaQuantizeOnEveryReferenceModel) {
  LOUPE_REQUIRE_TESTDATA();
  int n_models = 0, n_tensors = 0;
  for (const RefCase& c : reference_manifests()) {
    std::ifstream in(c.dir + "/manifest.json");
    const Json m = Json::parse(in);
    const Json& meta = m.at("gguf_metadata");
    // stories260K has no file type; *-embQ4_0 were written with a manual token_embd type.
    if (!meta.contains("general.file_type") || c.dir.find("embQ4_0") != std::string::npos) continue;
    const auto ftype = file_type_from_id(meta.at("general.file_type").get<uint32_t>());
    ASSERT_TRUE(ftype.has_value()) << c.dir;

    PlanModel model;
    model.arch = meta.at("general.architecture").get<std::string>();
    const std::string a = model.arch + ".";
    model.n_layer = meta.at(a + "block_count").get<int64_t>();
    model.n_head = first_int(meta.at(a + "attention.head_count"));
    model.n_head_kv = meta.contains(a + "attention.head_count_kv")
                          ? first_int(meta.at(a + "attention.head_count_kv"))
                          : model.n_head;
    model.n_expert = meta.value(a + "expert_count", int64_t{0});

    std::vector<PlanTensor> tensors;
    std::vector<std::string> want;
    for (const auto& [name, row] : m.at("tensors").items()) {
      // The originals were F32 files; tensors llama-quantize leaves alone stay F32.
      tensors.push_back({name, row.at(1).get<std::vector<int64_t>>(), DType::kF32});
      want.push_back(row.at(0).get<std::string>());
    }
    auto types = plan_tensor_types(tensors, model, *ftype, c.rules);
    ASSERT_TRUE(types.has_value()) << c.dir << ": " << types.status().message();
    for (size_t i = 0; i < tensors.size(); ++i)
      EXPECT_EQ(dtype_name((*types)[i]), want[i]) << c.dir << " " << tensors[i].name;
    ++n_models;
    n_tensors += static_cast<int>(tensors.size());
  }
  EXPECT_GE(n_models, 35);  // 16 ref + 22 ref2026 models minus the skipped ones
  EXPECT_GT(n_tensors, 1000);
}

TEST(QuantPlan, FallbackWhenRowsDoNotFitSuperBlocks) {
  const PlanModel model{"llama", 4, 8, 8, 0};
  const std::vector<PlanTensor> tensors = {
      {"blk.0.ffn_down.weight", {96, 64}, DType::kF32},   // 96 % 256 != 0, 96 % 32 == 0
      {"blk.0.attn_q.weight", {48, 64}, DType::kF32},     // 48 % 32 != 0 either -> F16
      {"blk.0.attn_norm.weight", {96}, DType::kF32},      // 1-D stays
      {"token_embd.weight", {96, 512}, DType::kF32},      // tied: output rule -> Q8_0
  };
  auto q4 = plan_tensor_types(tensors, model, FileType::kQ4_K_M);
  ASSERT_TRUE(q4.has_value());
  EXPECT_EQ((*q4)[0], DType::kQ5_0);  // Q4_K (layer 0 of 4 gets no extra bits) -> Q5_0
  EXPECT_EQ((*q4)[1], DType::kF16);
  EXPECT_EQ((*q4)[2], DType::kF32);
  EXPECT_EQ((*q4)[3], DType::kQ8_0);
  auto q2 = plan_tensor_types(tensors, model, FileType::kQ2_K);
  ASSERT_TRUE(q2.has_value());
  EXPECT_EQ((*q2)[0], DType::kQ4_0);  // Q3_K -> Q4_0 (current rules)
  auto q2_old = plan_tensor_types(tensors, model, FileType::kQ2_K, QuantRules::kB4748);
  ASSERT_TRUE(q2_old.has_value());
  EXPECT_EQ((*q2_old)[0], DType::kIQ4_NL);
  // Q8_0 has no fallback in llama-quantize: a 48-wide row is an error there too.
  auto q8 = plan_tensor_types(tensors, model, FileType::kQ8_0);
  EXPECT_FALSE(q8.has_value());
}

TEST(QuantPlan, MxFp4MoeAndUnquantizedFileTypes) {
  const PlanModel model{"gpt-oss", 2, 8, 2, 4};
  const std::vector<PlanTensor> tensors = {
      {"blk.0.ffn_up_exps.weight", {256, 128, 4}, DType::kF32},
      {"blk.0.attn_q.weight", {256, 512}, DType::kF32},
      {"blk.0.ffn_gate_inp.weight", {256, 4}, DType::kF32},
      {"output.weight", {256, 512}, DType::kF32},
  };
  auto mx = plan_tensor_types(tensors, model, FileType::kMXFP4_MOE);
  ASSERT_TRUE(mx.has_value());
  EXPECT_EQ((*mx)[0], DType::kMXFP4);
  EXPECT_EQ((*mx)[1], DType::kQ8_0);
  EXPECT_EQ((*mx)[2], DType::kF32);
  EXPECT_EQ((*mx)[3], DType::kQ8_0);
  auto bf = plan_tensor_types(tensors, model, FileType::kBF16);
  ASSERT_TRUE(bf.has_value());
  EXPECT_EQ((*bf)[0], DType::kBF16);
  EXPECT_EQ((*bf)[2], DType::kF32);
  EXPECT_EQ((*bf)[3], DType::kBF16);
}

}  // namespace
}  // namespace loupe::model
