#include "sample/grammar_matcher.h"

#include <algorithm>
#include <deque>

namespace loupe::sample {
namespace {

using T = GrammarElemType;

constexpr uint16_t kRejected = 0xFFFF;
constexpr uint16_t kFar = 0xFFFE;
// Cached masks are dropped all at once past this size (a dense mask of a 152k vocab is 300 KB).
constexpr size_t kMaxMaskBytes = size_t{256} << 20;

uint32_t sat_add(uint32_t a, uint32_t b) {
  return (a == Grammar::kUnreachable || b == Grammar::kUnreachable || a + b < a)
             ? Grammar::kUnreachable
             : a + b;
}

uint16_t clamp16(uint32_t v) {
  return v >= kFar ? kFar : static_cast<uint16_t>(v);
}

std::string quoted(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<const TokenVocab> TokenVocab::create(std::vector<std::string> pieces,
                                                     std::span<const int32_t> eog_ids) {
  std::shared_ptr<TokenVocab> v(new TokenVocab());
  v->pieces_ = std::move(pieces);
  v->eog_.assign(v->pieces_.size(), 0);
  for (int32_t id : eog_ids) {
    if (id >= 0 && static_cast<size_t>(id) < v->pieces_.size() &&
        !v->eog_[static_cast<size_t>(id)]) {
      v->eog_[static_cast<size_t>(id)] = 1;
      v->eog_ids_.push_back(id);
    }
  }
  const auto& pieces_ref = v->pieces_;
  for (int32_t id = 0; id < v->n_vocab(); ++id) {
    const std::string& p = pieces_ref[static_cast<size_t>(id)];
    if (!v->eog_[static_cast<size_t>(id)] && !p.empty() && p[0] != '\0') v->order_.push_back(id);
  }
  std::sort(v->order_.begin(), v->order_.end(), [&](int32_t a, int32_t b) {
    const int c = pieces_ref[static_cast<size_t>(a)].compare(pieces_ref[static_cast<size_t>(b)]);
    return c != 0 ? c < 0 : a < b;
  });
  // Breadth-first, so that the children of a node are contiguous.
  struct Pending {
    uint32_t node, lo, hi, depth;
  };
  std::deque<Pending> queue;
  v->trie_.push_back({0, 0, 0, 0, 0});
  queue.push_back({0, 0, static_cast<uint32_t>(v->order_.size()), 0});
  while (!queue.empty()) {
    const Pending cur = queue.front();
    queue.pop_front();
    uint32_t i = cur.lo;
    while (i < cur.hi && pieces_ref[static_cast<size_t>(v->order_[i])].size() == cur.depth) ++i;
    v->trie_[cur.node].token_begin = cur.lo;
    v->trie_[cur.node].token_end = i;
    v->trie_[cur.node].child_begin = static_cast<uint32_t>(v->trie_.size());
    while (i < cur.hi) {
      const uint8_t b =
          static_cast<uint8_t>(pieces_ref[static_cast<size_t>(v->order_[i])][cur.depth]);
      uint32_t j = i;
      while (j < cur.hi &&
             static_cast<uint8_t>(pieces_ref[static_cast<size_t>(v->order_[j])][cur.depth]) == b) {
        ++j;
      }
      const uint32_t child = static_cast<uint32_t>(v->trie_.size());
      v->trie_.push_back({0, 0, 0, 0, b});
      queue.push_back({child, i, j, cur.depth + 1});
      i = j;
    }
    v->trie_[cur.node].child_end = static_cast<uint32_t>(v->trie_.size());
  }
  return v;
}

uint16_t GrammarMatcher::Mask::lookup(int32_t id) const {
  if (!dense.empty()) return dense[static_cast<size_t>(id)];
  auto it = std::lower_bound(sparse.begin(), sparse.end(), std::make_pair(id, uint16_t{0}));
  return (it != sparse.end() && it->first == id) ? it->second : kRejected;
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar,
                               std::shared_ptr<const TokenVocab> vocab)
    : grammar_(std::move(grammar)), vocab_(std::move(vocab)), elems_(grammar_->elems()) {
  nodes_.push_back({0, 0, 0});  // the empty stack
  advance_cache_.push_back(-1);
  step_cache_.push_back(-1);
  states_.push_back({{}, Grammar::kUnreachable});  // the dead state
  ascii_next_.assign(128, 0);
  std::vector<int32_t> start;
  uint32_t a = grammar_->rule_start(grammar_->root());
  while (true) {
    advance(grammar_is_end(elems_[a]) ? 0 : push(a, 0), start);
    while (!grammar_is_end(elems_[a])) ++a;
    if (elems_[a].type == T::kEnd) break;
    ++a;
  }
  start_state_ = intern(start);
  state_ = start_state_;
}

int32_t GrammarMatcher::push(uint32_t pos, int32_t parent) {
  const uint64_t key = (uint64_t{pos} << 32) | static_cast<uint32_t>(parent);
  auto [it, inserted] = node_index_.emplace(key, static_cast<int32_t>(nodes_.size()));
  if (inserted) {
    nodes_.push_back(
        {pos, parent,
         sat_add(grammar_->suffix_min_bytes(pos), nodes_[static_cast<size_t>(parent)].min_bytes)});
    advance_cache_.push_back(-1);
    step_cache_.push_back(-1);
    ++stats_.n_stacks;
  }
  return it->second;
}

// Expands rule references on top of `stack` until every resulting stack has a character class
// on top (or is empty, i.e. accepting): llama_grammar_advance_stack.
void GrammarMatcher::advance(int32_t stack, std::vector<int32_t>& out) {
  if (stack == 0) {
    out.push_back(0);
    return;
  }
  if (advance_cache_[static_cast<size_t>(stack)] < 0) {
    std::vector<int32_t> result;
    const uint32_t pos = nodes_[static_cast<size_t>(stack)].pos;
    const GrammarElem e = elems_[pos];
    if (e.type == T::kRuleRef) {
      const int32_t parent = nodes_[static_cast<size_t>(stack)].parent;
      const int32_t rest = grammar_is_end(elems_[pos + 1]) ? parent : push(pos + 1, parent);
      uint32_t a = grammar_->rule_start(e.value);
      while (true) {
        advance(grammar_is_end(elems_[a]) ? rest : push(a, rest), result);
        while (!grammar_is_end(elems_[a])) ++a;
        if (elems_[a].type == T::kEnd) break;
        ++a;
      }
      std::sort(result.begin(), result.end());
      result.erase(std::unique(result.begin(), result.end()), result.end());
    } else {
      result.push_back(stack);
    }
    advance_cache_[static_cast<size_t>(stack)] = static_cast<int32_t>(advance_lists_.size());
    advance_lists_.push_back(std::move(result));
  }
  const auto& list =
      advance_lists_[static_cast<size_t>(advance_cache_[static_cast<size_t>(stack)])];
  out.insert(out.end(), list.begin(), list.end());
}

// The stacks after the class on top of `stack` matched a code point (which one does not matter).
const std::vector<int32_t>& GrammarMatcher::step(int32_t stack) {
  if (step_cache_[static_cast<size_t>(stack)] < 0) {
    const uint32_t pos = nodes_[static_cast<size_t>(stack)].pos;
    const int32_t parent = nodes_[static_cast<size_t>(stack)].parent;
    const uint32_t next = grammar_class_end(elems_, pos);
    std::vector<int32_t> result;
    advance(grammar_is_end(elems_[next]) ? parent : push(next, parent), result);
    step_cache_[static_cast<size_t>(stack)] = static_cast<int32_t>(step_lists_.size());
    step_lists_.push_back(std::move(result));
  }
  return step_lists_[static_cast<size_t>(step_cache_[static_cast<size_t>(stack)])];
}

int32_t GrammarMatcher::intern(std::vector<int32_t>& stacks) {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  if (stacks.empty()) return 0;
  std::string key(reinterpret_cast<const char*>(stacks.data()), stacks.size() * sizeof(int32_t));
  auto [it, inserted] = state_index_.emplace(std::move(key), static_cast<int32_t>(states_.size()));
  if (inserted) {
    uint32_t min_bytes = Grammar::kUnreachable;
    for (int32_t s : stacks)
      min_bytes = std::min(min_bytes, nodes_[static_cast<size_t>(s)].min_bytes);
    states_.push_back({stacks, min_bytes});
    ascii_next_.resize(ascii_next_.size() + 128, -1);
    ++stats_.n_states;
  }
  return it->second;
}

int32_t GrammarMatcher::transition(int32_t state, uint32_t cp) {
  if (state == 0) return 0;
  const size_t slot = static_cast<size_t>(state) * 128 + cp;
  if (cp < 128 && ascii_next_[slot] >= 0) return ascii_next_[slot];
  const uint64_t key = (uint64_t{static_cast<uint32_t>(state)} << 32) | cp;
  if (cp >= 128) {
    auto it = other_next_.find(key);
    if (it != other_next_.end()) return it->second;
  }
  std::vector<int32_t> next;
  const std::vector<int32_t> stacks = states_[static_cast<size_t>(state)].stacks;
  for (int32_t s : stacks) {
    if (s != 0 && grammar_match_char(elems_, nodes_[static_cast<size_t>(s)].pos, cp)) {
      const auto& after = step(s);
      next.insert(next.end(), after.begin(), after.end());
    }
  }
  const int32_t result = intern(next);
  if (cp < 128) {
    ascii_next_[slot] = result;
  } else {
    other_next_.emplace(key, result);
  }
  return result;
}

// Code points a well-formed UTF-8 sequence of `len` bytes may encode (no overlong forms, no
// surrogates): the output must parse as UTF-8, so the matcher never lets an invalid one through.
static bool utf8_range_ok(int32_t len, uint32_t cp) {
  switch (len) {
    case 2:
      return cp >= 0x80;
    case 3:
      return cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
    case 4:
      return cp >= 0x10000 && cp <= 0x10FFFF;
    default:
      return true;
  }
}

// For a character still being decoded: whether some stack can take a code point that starts
// with these bytes, and the fewest bytes that then finish the grammar (the rest of the character
// plus the cheapest completion after it).
GrammarMatcher::PartialInfo GrammarMatcher::partial_info(int32_t state, const Partial& partial) {
  if (partial.n_remain == 0) return {true, states_[static_cast<size_t>(state)].min_bytes};
  const uint32_t shift = 6 * static_cast<uint32_t>(partial.n_remain);
  uint32_t low = partial.value << shift;
  uint32_t high = low | ((1u << shift) - 1);
  // Clip to what a valid sequence of this length can encode; surrogates split the 3-byte range.
  const uint32_t min_cp = partial.len == 2 ? 0x80 : partial.len == 3 ? 0x800 : 0x10000;
  low = std::max(low, min_cp);
  high = std::min(high, 0x10FFFFu);
  uint32_t ranges[2][2] = {{low, high}, {1, 0}};
  if (partial.len == 3 && low <= 0xDFFF && high >= 0xD800) {
    ranges[0][1] = std::min(high, 0xD7FFu);
    ranges[1][0] = std::max(low, 0xE000u);
    ranges[1][1] = high;
  }
  PartialInfo info{false, Grammar::kUnreachable};
  const std::vector<int32_t> stacks = states_[static_cast<size_t>(state)].stacks;
  for (int32_t s : stacks) {
    if (s == 0) continue;
    const uint32_t pos = nodes_[static_cast<size_t>(s)].pos;
    bool match = false;
    for (const auto& r : ranges)
      match = match || (r[0] <= r[1] && grammar_match_range(elems_, pos, r[0], r[1]));
    if (!match) continue;
    info.possible = true;
    for (int32_t t : step(s))
      info.min_bytes = std::min(info.min_bytes, nodes_[static_cast<size_t>(t)].min_bytes);
  }
  info.min_bytes = sat_add(info.min_bytes, static_cast<uint32_t>(partial.n_remain));
  return info;
}

int32_t GrammarMatcher::feed(int32_t state, Partial& partial, uint8_t byte) {
  if (partial.n_remain == 0) {
    if (byte < 0x80) return transition(state, byte);
    if (byte >= 0xC2 && byte <= 0xDF) {
      partial = {byte & 0x1Fu, 1, 2};
    } else if ((byte & 0xF0) == 0xE0) {
      partial = {byte & 0x0Fu, 2, 3};
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      partial = {byte & 0x07u, 3, 4};
    } else {
      return 0;  // a continuation byte with nothing to continue, or never valid in UTF-8
    }
    return state;
  }
  if ((byte & 0xC0) != 0x80) return 0;
  partial.value = (partial.value << 6) | (byte & 0x3Fu);
  if (--partial.n_remain > 0) return state;
  const uint32_t cp = partial.value;
  const int32_t len = partial.len;
  partial = {};
  if (!utf8_range_ok(len, cp)) return 0;
  return transition(state, cp);
}

bool GrammarMatcher::state_accepting(int32_t state) const {
  const auto& stacks = states_[static_cast<size_t>(state)].stacks;
  return !stacks.empty() && stacks.front() == 0;
}

const GrammarMatcher::Mask& GrammarMatcher::mask(int32_t state, const Partial& partial) {
  const uint64_t key = (uint64_t{static_cast<uint32_t>(state)} << 32) |
                       (uint64_t{static_cast<uint32_t>(partial.n_remain) & 3u} << 24) |
                       (uint64_t{static_cast<uint32_t>(partial.len) & 7u} << 26) |
                       (partial.value & 0xFFFFFFu);
  auto it = masks_.find(key);
  if (it != masks_.end()) {
    ++stats_.n_mask_cached;
    return *it->second;
  }
  ++stats_.n_mask_computed;
  std::vector<std::pair<int32_t, uint16_t>> allowed;
  const auto& trie = vocab_->trie();
  const auto& order = vocab_->token_order();
  struct Frame {
    uint32_t node;
    int32_t state;
    Partial partial;
  };
  std::vector<Frame> frames{{0, state, partial}};
  while (!frames.empty()) {
    const Frame f = frames.back();
    frames.pop_back();
    const TokenVocab::TrieNode& node = trie[f.node];
    for (uint32_t c = node.child_begin; c < node.child_end; ++c) {
      ++stats_.n_trie_nodes_visited;
      Partial p = f.partial;
      const int32_t s = feed(f.state, p, trie[c].byte);
      if (s == 0) continue;
      const PartialInfo info = partial_info(s, p);
      if (!info.possible) continue;
      const uint16_t d = clamp16(info.min_bytes);
      for (uint32_t t = trie[c].token_begin; t < trie[c].token_end; ++t) {
        allowed.push_back({order[t], d});
      }
      if (trie[c].child_begin < trie[c].child_end) frames.push_back({c, s, p});
    }
  }
  auto m = std::make_unique<Mask>();
  const size_t n_vocab = static_cast<size_t>(vocab_->n_vocab());
  if (allowed.size() * 16 > n_vocab) {
    m->dense.assign(n_vocab, kRejected);
    for (const auto& [id, d] : allowed) m->dense[static_cast<size_t>(id)] = d;
  } else {
    std::sort(allowed.begin(), allowed.end());
    m->sparse = std::move(allowed);
  }
  const size_t bytes = m->dense.size() * sizeof(uint16_t) + m->sparse.size() * 8 + 64;
  if (mask_bytes_ + bytes > kMaxMaskBytes) {
    masks_.clear();
    mask_bytes_ = 0;
  }
  mask_bytes_ += bytes;
  return *masks_.emplace(key, std::move(m)).first->second;
}

int32_t GrammarMatcher::greedy_token_count(std::string_view text) const {
  const auto& trie = vocab_->trie();
  int32_t count = 0;
  size_t i = 0;
  while (i < text.size()) {
    uint32_t node = 0;
    size_t best = 0;
    for (size_t j = i; j < text.size(); ++j) {
      const TokenVocab::TrieNode& n = trie[node];
      uint32_t next = 0;
      for (uint32_t c = n.child_begin; c < n.child_end; ++c) {
        if (trie[c].byte == static_cast<uint8_t>(text[j])) {
          next = c;
          break;
        }
      }
      if (next == 0) break;
      node = next;
      if (trie[node].token_begin < trie[node].token_end) best = j + 1 - i;
    }
    if (best == 0) return -1;
    i += best;
    ++count;
  }
  return count;
}

Status GrammarMatcher::forced_tokens(int32_t n_remaining, std::vector<int32_t>& out) {
  const std::string w = shortest_completion();
  if (partial_.n_remain == 0) {
    const auto& trie = vocab_->trie();
    const auto& order = vocab_->token_order();
    uint32_t node = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      uint32_t next = 0;
      for (uint32_t c = trie[node].child_begin; c < trie[node].child_end; ++c) {
        if (trie[c].byte == static_cast<uint8_t>(w[i])) {
          next = c;
          break;
        }
      }
      if (next == 0) break;
      node = next;
      if (trie[node].token_begin == trie[node].token_end) continue;
      const int32_t rest = greedy_token_count(std::string_view(w).substr(i + 1));
      if (rest < 0 || rest > n_remaining - 1) continue;
      for (uint32_t t = trie[node].token_begin; t < trie[node].token_end; ++t)
        out.push_back(order[t]);
    }
  }
  if (out.empty()) {
    const int32_t need = greedy_token_count(w);
    return make_error(ErrorCode::kOutOfRange,
                      "the grammar cannot be completed within the token budget: {} token(s) left, "
                      "the shortest completion \"{}\" needs {}",
                      n_remaining, quoted(w),
                      need < 0 ? std::string("more") : std::to_string(need));
  }
  std::sort(out.begin(), out.end());
  return Status();
}

Status GrammarMatcher::filter(Candidates& candidates, int32_t n_remaining) {
  if (ended_) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the grammar already ended with an end-of-generation token");
  }
  const bool eog_ok = accepting();
  auto& data = candidates.data;
  const auto keep_if = [&](auto pred) {
    data.erase(
        std::remove_if(data.begin(), data.end(), [&](const Candidate& c) { return !pred(c); }),
        data.end());
  };
  const std::vector<Candidate> before = n_remaining >= 0 ? data : std::vector<Candidate>();
  bool forced = n_remaining >= 0 && min_remaining_bytes() > static_cast<uint32_t>(n_remaining);
  if (!forced) {
    const Mask& m = mask(state_, partial_);
    keep_if([&](const Candidate& c) {
      if (vocab_->is_eog(c.id)) return eog_ok;
      const uint16_t d = m.lookup(c.id);
      return d != kRejected && (n_remaining < 0 || d <= n_remaining - 1);
    });
    // Without single-byte tokens the byte bound can strand us; fall back to steering.
    if (data.empty() && n_remaining >= 0) {
      data = before;
      forced = true;
    }
  }
  if (forced) {
    std::vector<int32_t> allowed;
    LOUPE_TRY(forced_tokens(n_remaining, allowed));
    keep_if([&](const Candidate& c) {
      return std::binary_search(allowed.begin(), allowed.end(), c.id);
    });
  }
  if (data.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the grammar admits none of the candidate tokens here (the shortest valid "
                      "continuation is \"{}\")",
                      quoted(shortest_completion()));
  }
  return Status();
}

bool GrammarMatcher::allows(int32_t token, int32_t n_remaining) {
  if (ended_ || token < 0 || token >= vocab_->n_vocab()) return false;
  if (vocab_->is_eog(token)) return accepting();
  if (n_remaining >= 0 && min_remaining_bytes() > static_cast<uint32_t>(n_remaining)) {
    std::vector<int32_t> allowed;
    if (!forced_tokens(n_remaining, allowed).ok()) return false;
    return std::binary_search(allowed.begin(), allowed.end(), token);
  }
  const std::string& piece = vocab_->piece(token);
  if (piece.empty() || piece[0] == '\0') return false;
  int32_t s = state_;
  Partial p = partial_;
  for (char b : piece) {
    s = feed(s, p, static_cast<uint8_t>(b));
    if (s == 0) return false;
  }
  const PartialInfo info = partial_info(s, p);
  if (!info.possible) return false;
  if (n_remaining < 0 || info.min_bytes <= static_cast<uint32_t>(n_remaining - 1)) return true;
  // Over the byte bound: filter() then steers along a shortest completion if no token at all
  // fits the bound; mirror that.
  const Mask& m = mask(state_, partial_);
  for (int32_t id = 0; id < vocab_->n_vocab(); ++id) {
    const uint16_t d = m.lookup(id);
    if (d != kRejected && d <= n_remaining - 1) return false;
  }
  std::vector<int32_t> forced;
  if (!forced_tokens(n_remaining, forced).ok()) return false;
  return std::binary_search(forced.begin(), forced.end(), token);
}

Status GrammarMatcher::accept(int32_t token) {
  if (token < 0 || token >= vocab_->n_vocab()) {
    return make_error(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary", token);
  }
  if (ended_) {
    return make_error(ErrorCode::kInvalidArgument,
                      "token {} follows the end of the grammar (an end-of-generation token)",
                      token);
  }
  if (vocab_->is_eog(token)) {
    if (!accepting()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "end-of-generation token {} before the grammar is complete (still needs "
                        "\"{}\")",
                        token, quoted(shortest_completion()));
    }
    ended_ = true;
    return Status();
  }
  const std::string& piece = vocab_->piece(token);
  int32_t s = piece.empty() || piece[0] == '\0' ? 0 : state_;
  Partial p = partial_;
  for (char b : piece) {
    if (s == 0) break;
    s = feed(s, p, static_cast<uint8_t>(b));
  }
  if (s == 0 || !partial_info(s, p).possible) {
    return make_error(ErrorCode::kInvalidArgument,
                      "token {} \"{}\" is not allowed by the grammar here (expected e.g. \"{}\")",
                      token, quoted(piece), quoted(shortest_completion()));
  }
  state_ = s;
  partial_ = p;
  return Status();
}

void GrammarMatcher::reset() {
  state_ = start_state_;
  partial_ = {};
  ended_ = false;
}

bool GrammarMatcher::accepting() const {
  return partial_.n_remain == 0 && state_accepting(state_);
}

bool GrammarMatcher::finished() const {
  const auto& stacks = states_[static_cast<size_t>(state_)].stacks;
  return ended_ || (stacks.size() == 1 && stacks[0] == 0);
}

uint32_t GrammarMatcher::min_remaining_bytes() {
  return partial_info(state_, partial_).min_bytes;
}

std::string GrammarMatcher::shortest_completion() const {
  int32_t best = -1;
  for (int32_t s : states_[static_cast<size_t>(state_)].stacks) {
    if (best < 0 ||
        nodes_[static_cast<size_t>(s)].min_bytes < nodes_[static_cast<size_t>(best)].min_bytes) {
      best = s;
    }
  }
  std::string out;
  if (best < 0 || nodes_[static_cast<size_t>(best)].min_bytes > Grammar::kMaxShortest) return out;
  for (int32_t s = best; s > 0; s = nodes_[static_cast<size_t>(s)].parent) {
    grammar_->shortest_suffix(nodes_[static_cast<size_t>(s)].pos, out);
  }
  return out;
}

}  // namespace loupe::sample
