// `loupe sessions search|export` over a store written through the store API.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "store/store.h"

namespace loupe {
namespace {

using testing::run_loupe;

class SessionsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "loupe-sessions-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto st = store::Store::open(dir_);
    ASSERT_TRUE(st.has_value()) << st.status().message();
    store::Exchange ex;
    ex.messages = {{"system", "be brief"}, {"user", "What do owls eat?"}};
    ex.reply = {"assistant", "",
                R"({"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"owls\"}"}}]})"};
    ex.model = "tiny";
    ex.model_sha256 = std::string(64, 'c');
    ex.template_hash = std::string(64, 'd');
    ex.sampler_json = R"({"temperature":0.5,"seed":3})";
    ex.seed = 3;
    ex.loupe_version = "9.9";
    ex.timings_json = R"({"prompt_n":4})";
    ex.finish_reason = "tool_calls";
    auto a = (*st)->record(ex);
    ASSERT_TRUE(a.has_value());
    owls_ = *a;
    ex.messages = {{"user", "Tell me a story"}};
    ex.reply = {"assistant", "Once upon a time"};
    auto b = (*st)->record(ex);
    ASSERT_TRUE(b.has_value());
    story_ = *b;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  int64_t owls_ = 0, story_ = 0;
};

TEST_F(SessionsCli, SearchPrintsMatchingConversationsOnly) {
  auto r = run_loupe({"sessions", "search", "OWLS", "--data", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(std::to_string(owls_) + "\t", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("Tell me a story"), std::string::npos);
  auto upon = run_loupe({"sessions", "search", "upon a", "--data", dir_});
  ASSERT_EQ(upon.exit_code, 0);
  EXPECT_EQ(upon.out.rfind(std::to_string(story_) + "\t", 0), 0u) << upon.out;
  auto none = run_loupe({"sessions", "search", "zebra", "--data", dir_});
  ASSERT_EQ(none.exit_code, 0);
  EXPECT_TRUE(none.out.empty());
}

TEST_F(SessionsCli, ExportIsOneJsonDocumentWithMessagesExtrasAndProvenance) {
  auto r = run_loupe({"sessions", "export", std::to_string(owls_), "--data", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["id"], owls_);
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["messages"].size(), 3u);
  EXPECT_EQ(j["messages"][0]["role"], "system");
  EXPECT_EQ(j["messages"][1]["content"], "What do owls eat?");
  EXPECT_EQ(j["messages"][2]["tool_calls"][0]["function"]["name"], "lookup");
  ASSERT_EQ(j["exchanges"].size(), 1u);
  EXPECT_EQ(j["exchanges"][0]["sampler"]["temperature"], 0.5);
  EXPECT_EQ(j["exchanges"][0]["timings"]["prompt_n"], 4);
  EXPECT_EQ(j["exchanges"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(j["exchanges"][0]["model_sha256"], std::string(64, 'c'));
  auto missing = run_loupe({"sessions", "export", "12345", "--data", dir_});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no conversation 12345"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace loupe
