// `loupe bench` through the CLI: the JSON that tools reading llama-bench read. Timings
// are never asserted (they depend on the machine), only the shape and the counts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/testdata.h"

namespace loupe {
namespace {

using loupe::testing::run_loupe;

TEST(Bench, JsonHasLlamaBenchFields) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string model = loupe::testing::testdata_path("models/stories260K.gguf");
  auto r = run_loupe({"bench", "-m", model, "-p", "16", "-n", "4", "-r", "2", "-t", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // stdout carries only the JSON array; logs go to stderr.
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  for (const char* field :
       {"build_commit", "build_number", "cpu_info", "gpu_info", "backends", "model_filename",
        "model_type", "model_size", "model_n_params", "n_batch", "n_ubatch", "n_threads",
        "type_k", "type_v", "n_gpu_layers", "use_mmap", "n_prompt", "n_gen", "test_time",
        "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts"})
    for (const auto& t : j) EXPECT_TRUE(t.contains(field)) << field;
  const auto& pp = j[0];
  const auto& tg = j[1];
  EXPECT_EQ(pp["n_prompt"], 16);
  EXPECT_EQ(pp["n_gen"], 0);
  EXPECT_EQ(tg["n_prompt"], 0);
  EXPECT_EQ(tg["n_gen"], 4);
  for (const auto& t : j) {
    EXPECT_EQ(t["n_threads"], 2);
    EXPECT_EQ(t["backends"], "CPU");
    EXPECT_EQ(t["samples_ns"].size(), 2u);
    EXPECT_EQ(t["samples_ts"].size(), 2u);
    EXPECT_GT(t["avg_ts"].get<double>(), 0.0);
    EXPECT_GE(t["stddev_ts"].get<double>(), 0.0);
    EXPECT_GT(t["model_size"].get<int64_t>(), 0);
    EXPECT_GT(t["model_n_params"].get<int64_t>(), 200000);
    EXPECT_EQ(t["model_type"].get<std::string>().rfind("llama ", 0), 0u) << t["model_type"];
  }
}

TEST(Bench, MarkdownTableAndBadOptions) {
  LOUPE_REQUIRE_TESTDATA();
  const std::string model = loupe::testing::testdata_path("models/stories260K.gguf");
  auto r = run_loupe({"bench", "-m", model, "-p", "8", "-n", "2", "-r", "1", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| model"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pp8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tg2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("features:"), std::string::npos) << r.out;
  auto bad = run_loupe({"bench", "-m", model, "-o", "xml"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("-o xml"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace loupe
