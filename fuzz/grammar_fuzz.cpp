// libFuzzer target for the GBNF parser, the JSON Schema converter and the grammar matcher.
//
// Input: 'J' + JSON schema text, or GBNF text, optionally followed by "\0" and bytes to feed the
// matcher. Properties checked: nothing crashes or hangs; every grammar the converter emits parses;
// a parsed grammar's print() parses again; the matcher never accepts a token its filter removed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "sample/grammar.h"
#include "sample/grammar_matcher.h"
#include "sample/json_schema.h"

namespace {

using namespace loupe::sample;

// Single bytes 1..255, a few multi-byte pieces, and an end-of-generation token.
std::shared_ptr<const TokenVocab> vocab() {
  static const auto v = [] {
    std::vector<std::string> pieces;
    pieces.push_back("");
    for (int b = 1; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
    for (const char* p :
         {"{\"", "\":", "\",", "true", "null", "ab", "\xC3\xA9", " \"", "}]", "</s>"}) {
      pieces.push_back(p);
    }
    const int32_t eog = static_cast<int32_t>(pieces.size()) - 1;
    return TokenVocab::create(std::move(pieces), std::vector<int32_t>{eog});
  }();
  return v;
}

void exercise(const std::shared_ptr<const Grammar>& grammar, std::string_view feed) {
  GrammarMatcher m(grammar, vocab());
  const int32_t n_vocab = vocab()->n_vocab();
  (void)m.shortest_completion();
  for (size_t i = 0; i < feed.size() && i < 64; ++i) {
    // Budget from the input too, so steering paths get coverage.
    const int32_t budget =
        (static_cast<uint8_t>(feed[i]) % 5 == 0) ? -1 : static_cast<uint8_t>(feed[i]) % 17;
    Candidates c;
    for (int32_t id = 0; id < n_vocab; ++id) c.data.push_back({id, 0.0f, 0.0f});
    if (!m.filter(c, budget).ok()) return;
    if (c.data.empty()) abort();
    const int32_t token = c.data[static_cast<uint8_t>(feed[i]) % c.data.size()].id;
    if (!m.allows(token, budget)) abort();  // filter and allows must agree
    if (!m.accept(token).ok()) abort();
    if (m.finished()) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view feed;
  if (const size_t nul = input.find('\0'); nul != std::string_view::npos) {
    feed = input.substr(nul + 1);
    input = input.substr(0, nul);
  }
  std::string text;
  if (!input.empty() && input[0] == 'J') {
    auto gbnf = json_schema_to_grammar(input.substr(1));
    if (!gbnf.has_value()) return 0;
    text = std::move(*gbnf);
    if (!Grammar::parse(text).has_value()) abort();  // the converter must emit valid GBNF
  } else {
    text = std::string(input);
  }
  auto parsed = Grammar::parse(text);
  if (!parsed.has_value()) return 0;
  if (!Grammar::parse(parsed->print()).has_value()) abort();
  exercise(std::make_shared<const Grammar>(std::move(*parsed)), feed);
  return 0;
}
