// Conformance with llama.cpp: every vocab in testdata/vocab against its .inp/.out golden files
// (llama_tokenize(add_special=false, parse_special=false)), and the tokens recorded in the
// reference manifests (ref/, ref2026/: add_special=true, parse_special=false, a prefix).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/testdata.h"
#include "model/vocab_load.h"
#include "tokenizer/tokenizer.h"

namespace loupe::tokenizer {
namespace {

namespace fs = std::filesystem;
using loupe::testing::testdata_files;
using loupe::testing::testdata_path;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Tokenizer load(const std::string& path) {
  auto file = gguf::File::open(path);
  EXPECT_TRUE(file.has_value()) << file.status().message();
  auto tok = model::load_tokenizer(*file);
  EXPECT_TRUE(tok.has_value()) << tok.status().message();
  return std::move(tok).value();
}

// test-tokenizer-0's reader: inputs separated (and terminated) by the marker.
std::vector<std::string> read_inputs(const std::string& path) {
  const std::string raw = read_all(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return inputs;
}

std::vector<std::vector<int32_t>> read_outputs(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<int32_t>> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ss(line);
    std::vector<int32_t> ids;
    for (int32_t id; ss >> id;) ids.push_back(id);
    out.push_back(ids);
  }
  return out;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += fmt::format(" {}", id);
  return s;
}

TEST(TokenizerConformance, VocabGoldenFiles) {
  LOUPE_REQUIRE_TESTDATA();
  auto vocabs = testdata_files("vocab", ".gguf");
  ASSERT_FALSE(vocabs.empty());
  std::string table = "\n  vocab                          cases  exact\n";
  size_t n_files = 0;
  for (const std::string& path : vocabs) {
    if (!fs::exists(path + ".inp")) continue;
    ++n_files;
    Tokenizer tok = load(path);
    auto inputs = read_inputs(path + ".inp");
    auto outputs = read_outputs(path + ".out");
    ASSERT_EQ(inputs.size(), outputs.size()) << path;
    size_t exact = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      auto ids = tok.tokenize(inputs[i], false, false);
      if (ids == outputs[i])
        ++exact;
      else
        ADD_FAILURE() << fs::path(path).filename() << " input #" << i << " '" << inputs[i]
                      << "'\n  expected" << show(outputs[i]) << "\n  got     " << show(ids);
    }
    table += fmt::format("  {:<30} {:>5}  {:>5}\n", fs::path(path).filename().string(),
                         inputs.size(), exact);
  }
  std::cout << table;
  EXPECT_GE(n_files, 12u);
}

}  // namespace
}  // namespace loupe::tokenizer

namespace loupe::tokenizer {
namespace {

// The reference manifests record llama.cpp's tokens for each prompt (the first n_tokens of
// llama_tokenize(text, add_special=true, parse_special=false)) and their pieces.
TEST(TokenizerConformance, ReferenceManifests) {
  LOUPE_REQUIRE_TESTDATA();
  std::string table = "\n  manifest                              seqs  exact\n";
  size_t n_manifests = 0;
  for (const char* dir : {"ref", "ref2026"}) {
    for (const auto& e : fs::directory_iterator(testdata_path(dir))) {
      fs::path m = e.path() / "manifest.json";
      if (!fs::exists(m)) continue;
      auto j = nlohmann::json::parse(read_all(m.string()));
      Tokenizer tok = load(testdata_path(j["model_file"].get<std::string>()));
      size_t exact = 0, n = 0;
      for (const auto& seq : j["sequences"]) {
        ++n;
        auto ids = tok.tokenize(seq["text"].get<std::string>(), true, false);
        auto expected = seq["tokens"].get<std::vector<int32_t>>();
        ASSERT_EQ(seq["n_tokens"].get<size_t>(), expected.size());
        std::vector<int32_t> prefix(ids.begin(),
                                    ids.begin() + std::min(ids.size(), expected.size()));
        bool ok = prefix == expected;
        if (seq.contains("text_n_tokens_full"))
          ok = ok && ids.size() == seq["text_n_tokens_full"].get<size_t>();
        EXPECT_TRUE(ok) << m << " " << seq["name"] << "\n  expected" << show(expected)
                        << "\n  got     " << show(prefix) << " (of " << ids.size() << ")";
        if (seq.contains("prompt_pieces")) {
          auto pieces = seq["prompt_pieces"].get<std::vector<std::string>>();
          for (size_t i = 0; i < pieces.size() && i < expected.size(); ++i) {
            if (pieces[i].find("\xEF\xBF\xBD") != std::string::npos) continue;  // a partial char
            EXPECT_EQ(tok.token_to_piece(expected[i], true), pieces[i]) << m << " #" << i;
          }
        }
        exact += ok;
      }
      ++n_manifests;
      table += fmt::format("  {:<38} {:>4}  {:>5}\n",
                           std::string(dir) + "/" + e.path().filename().string(), n, exact);
    }
  }
  std::cout << table;
  EXPECT_GE(n_manifests, 40u);
}

}  // namespace
}  // namespace loupe::tokenizer
