// `loupe inspect` through the CLI: every reference model, JSON output, corrupted files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/testdata.h"

namespace loupe {
namespace {

using loupe::testing::run_loupe;
namespace fs = std::filesystem;

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                              static_cast<std::streamsize>(b.size()));
}

// (model path, architecture, tensor count) for every model that has a reference manifest.
std::vector<std::tuple<std::string, std::string, size_t>> reference_models() {
  std::vector<std::tuple<std::string, std::string, size_t>> out;
  for (const char* dir : {"ref", "ref2026"}) {
    for (const auto& e : fs::directory_iterator(loupe::testing::testdata_path(dir))) {
      fs::path m = e.path() / "manifest.json";
      if (!fs::exists(m)) continue;
      auto j = nlohmann::json::parse(read_file(m.string()));
      out.emplace_back(loupe::testing::testdata_path(j["model_file"].get<std::string>()),
                       j["gguf_metadata"]["general.architecture"].get<std::string>(),
                       j["tensors"].size());
    }
  }
  return out;
}

TEST(Inspect, EveryReferenceModelJson) {
  LOUPE_REQUIRE_TESTDATA();
  auto models = reference_models();
  ASSERT_GE(models.size(), 40u);
  for (const auto& [path, arch, n_tensors] : models) {
    auto r = run_loupe({"inspect", "--json", path});
    ASSERT_EQ(r.exit_code, 0) << path << "\n" << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["architecture"], arch) << path;
    EXPECT_EQ(j["n_tensors"].get<size_t>(), n_tensors) << path;
    EXPECT_TRUE(j.contains("hparams")) << path << ": " << j.value("hparams_error", "");
    EXPECT_GT(j["n_params"].get<int64_t>(), 0);
    EXPECT_GT(j["memory"]["total"].get<uint64_t>(), j["memory"]["weights"].get<uint64_t>());
    uint64_t mix_bytes = 0;
    for (const auto& m : j["quant_mix"]) mix_bytes += m["bytes"].get<uint64_t>();
    EXPECT_EQ(mix_bytes, j["tensor_bytes"].get<uint64_t>());
  }
}

TEST(Inspect, EveryModelFileText) {
  LOUPE_REQUIRE_TESTDATA();
  for (const char* dir : {"models", "models2026"}) {
    for (const std::string& path : loupe::testing::testdata_files(dir, ".gguf")) {
      auto r = run_loupe({"inspect", path});
      ASSERT_EQ(r.exit_code, 0) << path << "\n" << r.err;
      EXPECT_NE(r.out.find("architecture"), std::string::npos);
      EXPECT_NE(r.out.find("memory"), std::string::npos) << path;
    }
  }
}

TEST(Inspect, StoriesDetailsAndTensorsAndHash) {
  LOUPE_REQUIRE_TESTDATA();
  std::string path = loupe::testing::testdata_path("models/stories260K.gguf");
  auto r = run_loupe({"inspect", "--json", "--tensors", "--hash", "--ctx", "128", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["hparams"]["n_embd"], 64);
  EXPECT_EQ(j["hparams"]["n_layer"], 5);
  EXPECT_EQ(j["hparams"]["n_head"], 8);
  EXPECT_EQ(j["hparams"]["n_head_kv"], 4);
  EXPECT_EQ(j["hparams"]["n_ff"], 172);
  EXPECT_EQ(j["hparams"]["n_vocab"], 512);
  EXPECT_EQ(j["context_length"], 512);
  EXPECT_EQ(j["tokenizer"]["model"], "llama");
  EXPECT_EQ(j["tokenizer"]["special"]["bos"]["id"], 1);
  EXPECT_EQ(j["tokenizer"]["special"]["bos"]["text"], "<s>");
  EXPECT_EQ(j["chat_template"], false);
  // KV cache at ctx 128, F16: 5 layers x 128 cells x 4 kv heads x (8 + 8) dims x 2 bytes.
  EXPECT_EQ(j["memory"]["kv_cache"].get<uint64_t>(), 5u * 128 * 4 * 16 * 2);
  auto models = nlohmann::json::parse(read_file(loupe::testing::testdata_path("models/models.json")));
  for (const auto& m : models["models"]) {
    if (m["file"] == "models/stories260K.gguf") {
      EXPECT_EQ(j["sha256"], m["sha256"]);
    }
  }
  ASSERT_EQ(j["tensors"].size(), j["n_tensors"].get<size_t>());
  EXPECT_EQ(j["tensors"][0]["name"], "output.weight");  // non-layer tensors come first
}

TEST(Inspect, TemplateFlag) {
  LOUPE_REQUIRE_TESTDATA();
  auto none = run_loupe({"inspect", "--template", loupe::testing::testdata_path("models/stories260K.gguf")});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no chat template"), std::string::npos);
  for (const std::string& path : loupe::testing::testdata_files("vocab", ".gguf")) {
    auto j = nlohmann::json::parse(run_loupe({"inspect", "--json", path}).out);
    if (!j["chat_template"].get<bool>()) continue;
    auto r = run_loupe({"inspect", "--template", path});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("{%"), std::string::npos) << path;
    return;
  }
}

// Corrupted copies of a real model: each must exit 1 with a message naming the offset,
// never die from a signal.
TEST(Inspect, CorruptedFilesFailCleanly) {
  LOUPE_REQUIRE_TESTDATA();
  auto good = read_file(loupe::testing::testdata_path("models/llama-tok512.Q4_K_M.gguf"));
  ASSERT_GT(good.size(), 4096u);
  std::string dir = loupe::testing::temp_dir();
  auto poke64 = [](std::vector<uint8_t> b, size_t at, uint64_t v) {
    std::memcpy(b.data() + at, &v, 8);
    return b;
  };
  // Offset of the first tensor info: find the name "token_embd.weight" after the metadata.
  auto find = [&](const std::string& needle) {
    auto it = std::search(good.begin(), good.end(), needle.begin(), needle.end());
    return static_cast<size_t>(it - good.begin());
  };
  size_t tinfo = find("token_embd.weight") + std::strlen("token_embd.weight");
  std::vector<std::pair<std::string, std::vector<uint8_t>>> cases = {
      {"truncated-header", std::vector<uint8_t>(good.begin(), good.begin() + 100)},
      {"truncated-data", std::vector<uint8_t>(good.begin(), good.end() - 1000)},
      {"bad-tensor-count", poke64(good, 8, 1ull << 50)},
      {"bad-kv-count", poke64(good, 16, 1ull << 40)},
      {"huge-key-length", poke64(good, 24, 1ull << 62)},
      {"bad-offset", poke64(good, tinfo + 4 + 16 + 4, 1ull << 40)},
      {"misaligned-offset", poke64(good, tinfo + 4 + 16 + 4, 3)},
      {"unknown-type", [&] { auto b = good; uint32_t t = 77; std::memcpy(b.data() + tinfo + 4 + 16, &t, 4); return b; }()},
  };
  for (const auto& [name, bytes] : cases) {
    std::string path = dir + "/" + name + ".gguf";
    write_file(path, bytes);
    auto r = run_loupe({"inspect", path});
    EXPECT_FALSE(r.signaled) << name << " died with signal " << r.signal;
    EXPECT_EQ(r.exit_code, 1) << name;
    EXPECT_NE(r.err.find("offset"), std::string::npos) << name << ": " << r.err;
    EXPECT_NE(r.err.find(name + ".gguf"), std::string::npos) << name << ": " << r.err;
  }
  auto missing = run_loupe({"inspect", dir + "/does-not-exist.gguf"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace loupe
