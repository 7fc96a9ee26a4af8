// Generated tokens for people: text coloured by the probability the model gave each token,
// a compact line of alternatives per token, and the one-line stats summary. Shared by
// `loupe run`, `loupe chat` and `loupe demo`.
#pragma once

#include <string>
#include <string_view>

#include "engine/generator.h"
#include "sample/logprobs.h"
#include "tokenizer/tokenizer.h"

namespace loupe::cli {

// ANSI colour for a probability: green (likely) through yellow to red (surprising).
const char* prob_color(double p);
inline constexpr const char* kReset = "\x1b[0m";
inline constexpr const char* kDim = "\x1b[2m";
inline constexpr const char* kBold = "\x1b[1m";

// `text` wrapped in the colour of probability p (unchanged when !color).
std::string colored(std::string_view text, double p, bool color);
// One line explaining the colours.
std::string color_legend();

// "  ' there'   91.2%  H 0.41  │ ' there' 91.2% · ' was' 3.1% · ' a' 1.0%" (no newline).
// Pieces are shown quoted with whitespace escaped; post-transform probability when it differs.
std::string alternatives_line(const tokenizer::Tokenizer& tok, const sample::TokenLogprobs& lp,
                              bool color);

// "12 prompt tokens (3 cached), 64 generated (length); prefill 850.3 t/s, decode 120.4 t/s"
std::string stats_line(const engine::GenerateResult& r);

// Whether stdout / stdin is a terminal (and colours are not disabled with NO_COLOR).
bool stdout_color();
bool stdin_is_tty();

}  // namespace loupe::cli
