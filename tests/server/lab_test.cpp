// `loupe serve`'s lab endpoints (/loupe/v1/*) end to end, through a child process serving
// stories260K.
#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/testdata.h"
#include "serve_process.h"

namespace loupe {
namespace {

using json = nlohmann::json;

class LabTest : public testing::SharedServerTest<LabTest> {
 public:
  static std::vector<std::string> server_args() { return {"-c", "256", "--no-store"}; }

 protected:
  static json ok(const std::string& path, const json& body) {
    auto r = post(path, body);
    EXPECT_TRUE(r) << httplib::to_string(r.error());
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body, nullptr, false);
  }
  static void bad(const std::string& path, const json& body, int status = 400) {
    auto r = post(path, body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    EXPECT_TRUE(j["error"].contains("code"));
  }
};

TEST_F(LabTest, TokenizeDetokenizeRoundTrip) {
  for (const std::string text : {"Once upon a time, there was a little cat.",
                                 "Lily said: \"Hi!\"\nTom smiled.", "é ü 😀"}) {
    const json t = ok("/loupe/v1/tokenize", {{"model", "stories260K"}, {"content", text}});
    ASSERT_TRUE(t["tokens"].is_array());
    ASSERT_FALSE(t["tokens"].empty());
    EXPECT_TRUE(t["tokens"][0].is_number_integer());
    const json d = ok("/loupe/v1/detokenize", {{"model", "stories260K"}, {"tokens", t["tokens"]}});
    EXPECT_EQ(d["content"], text);
  }
  // With the special tokens: BOS (id 1 in this vocabulary) first; with pieces.
  const json s = ok("/loupe/v1/tokenize", {{"content", "Once"},
                                           {"add_special", true},
                                           {"with_pieces", true}});
  ASSERT_GE(s["tokens"].size(), 2u);
  EXPECT_EQ(s["tokens"][0]["id"], 1);
  EXPECT_EQ(s["tokens"][0]["piece"], "<s>");
  EXPECT_TRUE(s["tokens"][1]["piece"].is_string());
}

TEST_F(LabTest, TemplateMatchesTokenizeOfItsPrompt) {
  const json messages = {{{"role", "system"}, {"content", "You tell stories."}},
                         {{"role", "user"}, {"content", "Hello"}}};
  const json t = ok("/loupe/v1/template", {{"model", "stories260K"}, {"messages", messages}});
  EXPECT_EQ(t["chat_template"], "chatml-fallback");
  const std::string prompt = t["prompt"];
  EXPECT_EQ(prompt,
            "<|im_start|>system\nYou tell stories.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\n");
  ASSERT_EQ(t["n_tokens"], t["tokens"].size());
  const json k = ok("/loupe/v1/tokenize", {{"model", "stories260K"},
                                           {"content", prompt},
                                           {"add_special", true},
                                           {"parse_special", true}});
  ASSERT_EQ(k["tokens"].size(), t["tokens"].size());
  for (size_t i = 0; i < k["tokens"].size(); ++i) {
    EXPECT_EQ(t["tokens"][i]["id"], k["tokens"][i]) << i;
    EXPECT_TRUE(t["tokens"][i].contains("piece"));
  }
  // Without the generation prompt.
  const json n = ok("/loupe/v1/template", {{"messages", messages},
                                           {"add_generation_prompt", false}});
  EXPECT_EQ(n["prompt"].get<std::string>() + "<|im_start|>assistant\n", prompt);
}

TEST_F(LabTest, Inspect) {
  const json j = ok("/loupe/v1/inspect", {{"model", "stories260K"}});
  EXPECT_EQ(j["model"], "stories260K");
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_GT(j["n_params"].get<int64_t>(), 0);
  EXPECT_GT(j["file_size"].get<int64_t>(), 0);
  ASSERT_FALSE(j["quant_mix"].empty());
  EXPECT_EQ(j["quant_mix"][0]["type"], "F32");
  EXPECT_GT(j["quant_mix"][0]["n_tensors"].get<int>(), 0);
  EXPECT_EQ(j["hparams"]["n_embd"], 64);
  EXPECT_EQ(j["hparams"]["n_layer"], 5);
  EXPECT_EQ(j["tokenizer"]["special"]["bos"]["id"], 1);
  EXPECT_EQ(j["chat_template"]["kind"], "chatml-fallback");
  EXPECT_EQ(j["chat_template"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["context"]["n_ctx"], 256);
  EXPECT_GT(j["memory"]["kv_cache"].get<int64_t>(), 0);
  EXPECT_GT(j["memory"]["total"].get<int64_t>(), j["memory"]["weights"].get<int64_t>());
  EXPECT_EQ(j["sha256"].get<std::string>().size(), 64u);
}

TEST_F(LabTest, BadInputIs400) {
  bad("/loupe/v1/tokenize", {{"model", "stories260K"}});
  bad("/loupe/v1/tokenize", {{"content", "x"}, {"add_special", "yes"}});
  bad("/loupe/v1/detokenize", {{"tokens", {1, 2, 512}}});
  bad("/loupe/v1/detokenize", {{"tokens", "1 2"}});
  bad("/loupe/v1/template", {{"messages", "hi"}});
  bad("/loupe/v1/inspect", {{"model", "nope"}}, 404);
  auto c = server_->client();
  auto r = c.Post("/loupe/v1/tokenize", "{not json", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
}

}  // namespace
}  // namespace loupe
