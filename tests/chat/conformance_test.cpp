// Every case of ../shared/testdata/templates{,2026}/cases.json: rendered by Python's jinja2 in
// the environment transformers uses. Each case must render byte-identically, or raise where
// Python raises.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>

#include <nlohmann/json.hpp>

#include "chat/template.h"
#include "common/testdata.h"

namespace loupe::chat {
namespace {

using nlohmann::ordered_json;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The fixed clock of the reference renderings (datetime(2024, 7, 26, 12, 0, 0)).
RenderOptions reference_options() {
  RenderOptions o;
  o.now = DateTime{2024, 7, 26, 12, 0, 0};
  return o;
}

void run_suite(const std::string& cases_file, size_t min_cases) {
  ordered_json doc = ordered_json::parse(read_text(loupe::testing::testdata_path(cases_file)));
  const auto& cases = doc["cases"];
  ASSERT_GE(cases.size(), min_cases);
  std::map<std::string, Expected<Template>> templates;
  size_t n_pass = 0, n_render = 0, n_raise = 0;
  for (const auto& c : cases) {
    std::string id = c["id"].get<std::string>();
    std::string path = c["template"].get<std::string>();
    auto it = templates.find(path);
    if (it == templates.end())
      it = templates.emplace(path, Template::parse(read_text(loupe::testing::testdata_path(path))))
               .first;
    ASSERT_TRUE(it->second.has_value()) << path << ": " << it->second.status().message();

    ordered_json ctx = ordered_json::object();
    ctx["messages"] = c["messages"];
    ctx["tools"] = c["tools"];
    ctx["documents"] = nullptr;
    ctx["add_generation_prompt"] = c["add_generation_prompt"];
    ctx["continue_final_message"] = false;
    for (auto kv = c["context"].begin(); kv != c["context"].end(); ++kv) ctx[kv.key()] = kv.value();

    TemplateError error;
    Expected<std::string> out = it->second->render(ctx, reference_options(), &error);
    if (!c["expected"].is_null()) {
      ++n_render;
      if (!out.has_value()) {
        ADD_FAILURE() << id << ": expected a rendering, got " << out.status().message();
        continue;
      }
      if (*out != c["expected"].get<std::string>()) {
        ADD_FAILURE() << id << ": rendering differs\n--- expected\n"
                      << c["expected"].get<std::string>() << "\n--- got\n"
                      << *out;
        continue;
      }
    } else {
      ++n_raise;
      const auto& ex = c["expected_exception"];
      if (out.has_value()) {
        ADD_FAILURE() << id << ": expected " << ex["type"].get<std::string>() << " ("
                      << ex["message"].get<std::string>() << "), got a rendering";
        continue;
      }
      // The message is Python's wherever this engine reports the same kind of error.
      if (template_error_kind_name(error.kind) == ex["type"].get<std::string>()) {
        EXPECT_EQ(error.message, ex["message"].get<std::string>()) << id;
      }
      EXPECT_GT(error.line, 0) << id << ": " << error.to_string();
    }
    ++n_pass;
  }
  std::printf("%s: %zu/%zu cases pass (%zu renderings, %zu expected exceptions)\n",
              cases_file.c_str(), n_pass, cases.size(), n_render, n_raise);
  EXPECT_EQ(n_pass, cases.size());
}

TEST(ChatTemplateConformance, Templates) {
  LOUPE_REQUIRE_TESTDATA();
  run_suite("templates/cases.json", 169);
}

TEST(ChatTemplateConformance, Templates2026) {
  LOUPE_REQUIRE_TESTDATA();
  run_suite("templates2026/cases.json", 232);
}

}  // namespace
}  // namespace loupe::chat
