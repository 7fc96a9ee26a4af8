// `loupe template` through the CLI: the stdout contract (exactly the prompt), the context it
// builds, exit statuses, and every GGUF under ../shared/testdata that carries a chat template.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/testdata.h"

namespace loupe {
namespace {

using loupe::testing::run_loupe;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string write_text(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(TemplateCli, RendersExactlyThePrompt) {
  std::string dir = loupe::testing::temp_dir();
  std::string tmpl = write_text(
      dir, "t.jinja",
      "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}{{ tools is none }}{{ documents }}"
      "{{ continue_final_message }}\n");
  std::string msgs = write_text(dir, "m.json", R"([{"role": "user", "content": "Grüß dich"}])");
  std::string vars = write_text(dir, "v.json", R"({"bos_token": "<s>"})");
  auto r = run_loupe({"template", "--template-file", tmpl, "--messages", msgs, "--vars", vars});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "<s><user>Grüß dich\nTrueNoneFalse");  // no newline added, the template's last one dropped
  r = run_loupe(
      {"template", "--template-file", tmpl, "--messages", msgs, "--add-generation-prompt"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<user>Grüß dich\n<assistant>TrueNoneFalse");
}

TEST(TemplateCli, ToolsVarsAndClock) {
  std::string dir = loupe::testing::temp_dir();
  std::string tmpl = write_text(dir, "t.jinja",
                                "{{ tools|map(attribute='name')|join(',') }}|{{ enable_thinking }}|"
                                "{{ strftime_now('%d %b %Y') }}");
  std::string msgs = write_text(dir, "m.json", "[]");
  std::string tools = write_text(dir, "tools.json", R"([{"name": "a"}, {"name": "b"}])");
  std::string vars = write_text(dir, "v.json", R"({"enable_thinking": false})");
  auto r = run_loupe({"template", "--template-file", tmpl, "--messages", msgs, "--tools", tools,
                      "--vars", vars, "--now", "2024-07-26T12:00:00"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "a,b|False|26 Jul 2024");
}

TEST(TemplateCli, TemplateRaiseExitsThree) {
  std::string dir = loupe::testing::temp_dir();
  std::string msgs = write_text(dir, "m.json", R"([{"role": "system", "content": "x"}])");
  std::string raises =
      write_text(dir, "r.jinja", "{{ raise_exception('System role not supported') }}");
  auto r = run_loupe({"template", "--template-file", raises, "--messages", msgs});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("System role not supported"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 1"), std::string::npos) << r.err;

  std::string type_error = write_text(dir, "t.jinja", "{% for t in tools %}{% endfor %}");
  r = run_loupe({"template", "--template-file", type_error, "--messages", msgs});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("TypeError: 'NoneType' object is not iterable"), std::string::npos) << r.err;

  std::string syntax = write_text(dir, "s.jinja", "{% if %}");
  r = run_loupe({"template", "--template-file", syntax, "--messages", msgs});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("TemplateSyntaxError"), std::string::npos) << r.err;
}

TEST(TemplateCli, BadInputIsExitOne) {
  std::string dir = loupe::testing::temp_dir();
  std::string tmpl = write_text(dir, "t.jinja", "x");
  std::string not_json = write_text(dir, "bad.json", "[{");
  std::string object = write_text(dir, "obj.json", "{}");
  EXPECT_EQ(run_loupe({"template", "--template-file", tmpl, "--messages", dir + "/missing.json"})
                .exit_code,
            1);
  EXPECT_EQ(run_loupe({"template", "--template-file", tmpl, "--messages", not_json}).exit_code, 1);
  EXPECT_EQ(run_loupe({"template", "--template-file", tmpl, "--messages", object}).exit_code, 1);
  std::string msgs = write_text(dir, "m.json", "[]");
  EXPECT_EQ(run_loupe({"template", "--template-file", tmpl, "--messages", msgs, "--vars", msgs})
                .exit_code,
            1);
  EXPECT_EQ(run_loupe({"template", "--template-file", tmpl, "--messages", msgs, "--now", "noon"})
                .exit_code,
            1);
  EXPECT_EQ(
      run_loupe({"template", "--template-file", dir + "/none.jinja", "--messages", msgs}).exit_code,
      1);
  EXPECT_EQ(run_loupe({"template", "--messages", msgs}).exit_code, 2);
  EXPECT_NE(run_loupe({"template", "-m", "a.gguf", "--template-file", tmpl, "--messages", msgs})
                .exit_code,
            0);
}

TEST(TemplateCli, ShowSpecial) {
  std::string dir = loupe::testing::temp_dir();
  std::string tmpl =
      write_text(dir, "t.jinja", "<|im_start|>user\n\t{{ messages[0].content }}  <|im_end|>");
  std::string msgs = write_text(dir, "m.json", R"([{"role": "user", "content": "hi"}])");
  auto r = run_loupe({"template", "--template-file", tmpl, "--messages", msgs, "--show-special"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "«<|im_start|>»user↵\n→hi  «<|im_end|>»\n");
}

// Every case of both conformance suites, through the CLI's own context building.
TEST(TemplateCli, ConformanceCasesThroughTheCli) {
  LOUPE_REQUIRE_TESTDATA();
  std::string dir = loupe::testing::temp_dir();
  size_t n_cases = 0;
  for (const char* suite : {"templates/cases.json", "templates2026/cases.json"}) {
    ordered_json doc = ordered_json::parse(read_text(loupe::testing::testdata_path(suite)));
    for (const auto& c : doc["cases"]) {
      std::vector<std::string> args = {
          "template",
          "--template-file",
          loupe::testing::testdata_path(c["template"].get<std::string>()),
          "--messages",
          write_text(dir, "m.json", c["messages"].dump()),
          "--vars",
          write_text(dir, "v.json", c["context"].dump()),
          "--now",
          "2024-07-26T12:00:00"};
      if (!c["tools"].is_null()) {
        args.push_back("--tools");
        args.push_back(write_text(dir, "tools.json", c["tools"].dump()));
      }
      if (c["add_generation_prompt"].get<bool>()) args.push_back("--add-generation-prompt");
      auto r = run_loupe(args);
      std::string id = c["id"].get<std::string>();
      if (c["expected"].is_null()) {
        EXPECT_EQ(r.exit_code, 3) << id;
        EXPECT_NE(r.err.find(c["expected_exception"]["message"].get<std::string>()),
                  std::string::npos)
            << id << ": " << r.err;
      } else {
        EXPECT_EQ(r.exit_code, 0) << id << ": " << r.err;
        EXPECT_EQ(r.out, c["expected"].get<std::string>()) << id;
      }
      ++n_cases;
    }
  }
  EXPECT_EQ(n_cases, 401u);
}

// `loupe template -m` on every model file that carries tokenizer.chat_template.
TEST(TemplateCli, EveryModelWithATemplate) {
  LOUPE_REQUIRE_TESTDATA();
  std::string dir = loupe::testing::temp_dir();
  std::string msgs = write_text(
      dir, "m.json",
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},)"
      R"( {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Again"}])");
  size_t n_models = 0;
  for (const auto& e : fs::recursive_directory_iterator(loupe::testing::testdata_dir())) {
    if (e.path().extension() != ".gguf") continue;
    std::string path = e.path().string();
    auto tmpl = run_loupe({"inspect", "--template", path});
    if (tmpl.exit_code != 0) {
      // No template: -m says so and exits 1.
      EXPECT_EQ(run_loupe({"template", "-m", path, "--messages", msgs}).exit_code, 1) << path;
      continue;
    }
    ++n_models;
    auto r = run_loupe({"template", "-m", path, "--messages", msgs, "--add-generation-prompt"});
    ASSERT_EQ(r.exit_code, 0) << path << ": " << r.err;
    EXPECT_NE(r.out.find("Again"), std::string::npos) << path;
    // The same template from a file, with the model's special tokens as --vars, renders the same.
    auto j = ordered_json::parse(run_loupe({"inspect", "--json", path}).out, nullptr, false);
    ordered_json vars = ordered_json::object();
    if (!j.is_discarded()) {
      const auto& special = j["tokenizer"]["special"];
      if (special.contains("bos") && special["bos"].contains("text"))
        vars["bos_token"] = special["bos"]["text"];
      if (special.contains("eos") && special["eos"].contains("text"))
        vars["eos_token"] = special["eos"]["text"];
    }
    auto same = run_loupe({"template", "--template-file", write_text(dir, "t.jinja", tmpl.out),
                           "--messages", msgs, "--vars", write_text(dir, "v.json", vars.dump()),
                           "--add-generation-prompt"});
    EXPECT_EQ(same.out, r.out) << path;
  }
  std::printf("%zu model files carry a chat template\n", n_models);
}

}  // namespace
}  // namespace loupe
