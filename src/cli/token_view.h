// Token lists for people: one line per token, pieces escaped so every token stays on one line.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace loupe::cli {

// A piece made readable on one line: control characters and stray bytes escaped; with
// `visible_space`, spaces, tabs and newlines drawn as ·, → and ↵.
std::string readable(std::string_view s, bool visible_space);

// "     id  piece" per token; with `show_special`, visible whitespace and a [control],
// [byte], ... label for non-normal tokens.
std::string token_lines(const tokenizer::Tokenizer& tok, std::span<const int32_t> ids,
                        bool show_special);

}  // namespace loupe::cli
