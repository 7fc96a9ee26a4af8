#include "gen_view.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "token_view.h"

namespace loupe::cli {

const char* prob_color(double p) {
  if (p >= 0.8) return "\x1b[92m";         // bright green
  if (p >= 0.5) return "\x1b[32m";         // green
  if (p >= 0.2) return "\x1b[33m";         // yellow
  if (p >= 0.05) return "\x1b[38;5;208m";  // orange
  return "\x1b[31m";                       // red
}

std::string colored(std::string_view text, double p, bool color) {
  if (!color || text.empty()) return std::string(text);
  return fmt::format("{}{}{}", prob_color(p), text, kReset);
}

std::string color_legend() {
  return fmt::format(
      "token colour = the model's probability: {}>=80%{} {}>=50%{} {}>=20%{} "
      "{}>=5%{} {}<5%{}",
      prob_color(0.9), kReset, prob_color(0.6), kReset, prob_color(0.3), kReset, prob_color(0.1),
      kReset, prob_color(0.0), kReset);
}

namespace {

std::string quoted(const tokenizer::Tokenizer& tok, int32_t id) {
  return fmt::format("'{}'", readable(tok.token_to_piece(id, /*special=*/true), false));
}

std::string percent(double p) {
  if (p >= 0.995) return fmt::format("{:.0f}%", 100.0 * p);
  if (p >= 0.001) return fmt::format("{:.1f}%", 100.0 * p);
  if (p >= 0.0001) return fmt::format("{:.2f}%", 100.0 * p);
  return "<0.01%";
}

}  // namespace

std::string alternatives_line(const tokenizer::Tokenizer& tok, const sample::TokenLogprobs& lp,
                              bool color) {
  const double p = std::exp(lp.logprob);
  std::string head = fmt::format("{:<18} {:>6}", quoted(tok, lp.token), percent(p));
  std::string out = fmt::format("  {}", colored(head, p, color));
  if (std::fabs(lp.post_prob - p) > 0.0005)
    out += fmt::format(" -> {:>6}", percent(lp.post_prob));
  else
    out += "          ";
  out += fmt::format("  H {:.2f} ", lp.entropy);
  out += color ? fmt::format("{}|{}", kDim, kReset) : std::string("|");
  for (size_t k = 0; k < lp.top.size(); ++k) {
    const double q = std::exp(lp.top[k].logprob);
    out += k == 0 ? " " : " · ";
    out += fmt::format("{} {}", colored(quoted(tok, lp.top[k].token), q, color), percent(q));
  }
  return out;
}

std::string stats_line(const engine::GenerateResult& r) {
  const engine::Timings& t = r.timings;
  std::string cached = t.cache_n > 0 ? fmt::format(" ({} cached)", t.cache_n) : "";
  return fmt::format(
      "{} prompt tokens{}, {} generated ({}); prefill {:.1f} t/s, decode {:.1f} t/s; seed {}",
      r.n_prompt, cached, r.tokens.size(), engine::stop_reason_name(r.stop_reason),
      t.prompt_per_second(), t.predicted_per_second(), r.seed);
}

bool stdout_color() {
  const char* no_color = std::getenv("NO_COLOR");
  return isatty(STDOUT_FILENO) != 0 && (no_color == nullptr || *no_color == '\0');
}

bool stdin_is_tty() {
  return isatty(STDIN_FILENO) != 0;
}

}  // namespace loupe::cli
