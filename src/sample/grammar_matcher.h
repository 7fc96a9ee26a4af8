// Grammar-constrained decoding over a whole vocabulary.
//
// The matcher is llama.cpp's pushdown recogniser (llama-grammar.cpp: a set of stacks of rule
// positions, advanced one UTF-8 code point at a time, partial code points carried between
// tokens) with three changes that make it fast on 150k-token vocabularies:
//   - stacks are hash-consed persistent lists, so a stack is an int and stack sets are small
//     sorted int vectors; the expansion of each stack is computed once;
//   - stack sets are interned as states with a memoised transition per code point (a lazily
//     built DFA over the grammar's reachable configurations);
//   - the vocabulary is a byte trie walked once per state, pruning a whole subtree as soon as its
//     prefix is rejected; the allowed-token set of each state is cached.
// Budget steering: each stack knows the fewest bytes that complete it, so every candidate token
// is also judged by whether the remaining token budget can still finish the grammar.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "sample/candidates.h"
#include "sample/grammar.h"

namespace loupe::sample {

// The token strings a grammar is matched against, indexed once per vocabulary.
class TokenVocab {
 public:
  // pieces[id]: the bytes token `id` appends to the output. Pass the detokenized piece without
  // special rendering (Tokenizer::token_to_piece(id, false)): control tokens then have an empty
  // piece and a grammar never emits them. eog_ids: end-of-generation tokens, allowed exactly
  // when the grammar accepts.
  static std::shared_ptr<const TokenVocab> create(std::vector<std::string> pieces,
                                                  std::span<const int32_t> eog_ids);

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  bool is_eog(int32_t id) const { return eog_[static_cast<size_t>(id)] != 0; }
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }

  struct TrieNode {
    uint32_t child_begin, child_end;  // children are contiguous in the node array
    uint32_t token_begin, token_end;  // tokens whose piece ends here, in token_order()
    uint8_t byte;
  };
  const std::vector<TrieNode>& trie() const { return trie_; }
  const std::vector<int32_t>& token_order() const { return order_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<uint8_t> eog_;
  std::vector<int32_t> eog_ids_;
  std::vector<TrieNode> trie_;
  std::vector<int32_t> order_;
};

struct GrammarStats {
  int64_t n_stacks = 0;
  int64_t n_states = 0;
  int64_t n_mask_computed = 0;  // trie walks (cache misses)
  int64_t n_mask_cached = 0;    // cache hits
  int64_t n_trie_nodes_visited = 0;
};

class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocab> vocab);

  // Removes the candidates the grammar rejects. n_remaining: tokens left in the budget including
  // this one (-1: unlimited); with a budget only tokens after which the grammar can still be
  // completed in time stay. Error (kOutOfRange) if the budget cannot be met, (kInvalidArgument)
  // if the grammar admits no token at all.
  Status filter(Candidates& candidates, int32_t n_remaining);
  // Whether `token` may come next (same rules as filter).
  bool allows(int32_t token, int32_t n_remaining);
  // Advances past `token`; error if the grammar rejects it.
  Status accept(int32_t token);
  // Back to the start of the grammar.
  void reset();

  bool accepting() const;  // the text so far is a complete sentence (end-of-generation allowed)
  bool finished() const;   // nothing but end-of-generation may follow
  // Fewest bytes that complete the grammar from here.
  uint32_t min_remaining_bytes();
  // One shortest completion (UTF-8), e.g. for error messages.
  std::string shortest_completion() const;

  const GrammarStats& stats() const { return stats_; }
  const Grammar& grammar() const { return *grammar_; }

 private:
  struct StackNode {
    uint32_t pos;    // element index of the stack's top
    int32_t parent;  // 0: empty stack
    uint32_t min_bytes;
  };
  struct State {
    std::vector<int32_t> stacks;  // sorted stack ids; 0 is the empty (accepting) stack
    uint32_t min_bytes;
  };
  struct Mask {
    // Allowed tokens with, for each, the fewest bytes that complete the grammar after it
    // (saturated at 0xFFFE). Dense when large, sorted by id when small.
    std::vector<uint16_t> dense;                       // [n_vocab], 0xFFFF = rejected
    std::vector<std::pair<int32_t, uint16_t>> sparse;  // [n_allowed]
    uint16_t lookup(int32_t id) const;
  };
  struct Partial {
    uint32_t value = 0;
    int32_t n_remain = 0;  // continuation bytes still expected
    int32_t len = 0;       // bytes of the character being decoded
  };

  int32_t push(uint32_t pos, int32_t parent);
  void advance(int32_t stack, std::vector<int32_t>& out);
  const std::vector<int32_t>& step(int32_t stack);
  int32_t intern(std::vector<int32_t>& stacks);
  int32_t transition(int32_t state, uint32_t cp);
  struct PartialInfo {
    bool possible;
    uint32_t min_bytes;
  };
  PartialInfo partial_info(int32_t state, const Partial& partial);
  // One byte: returns the new state (0: rejected) and updates `partial`.
  int32_t feed(int32_t state, Partial& partial, uint8_t byte);
  const Mask& mask(int32_t state, const Partial& partial);
  // Allowed tokens when the budget is below the byte bound: prefixes of a shortest completion.
  Status forced_tokens(int32_t n_remaining, std::vector<int32_t>& out);
  int32_t greedy_token_count(std::string_view text) const;
  bool state_accepting(int32_t state) const;

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const TokenVocab> vocab_;
  std::span<const GrammarElem> elems_;

  std::vector<StackNode> nodes_;
  std::unordered_map<uint64_t, int32_t> node_index_;
  std::vector<int32_t> advance_cache_;  // per stack: index into advance_lists_ or -1
  std::vector<int32_t> step_cache_;     // per stack: index into step_lists_ or -1
  std::vector<std::vector<int32_t>> advance_lists_;
  std::vector<std::vector<int32_t>> step_lists_;

  std::vector<State> states_;
  std::unordered_map<std::string, int32_t> state_index_;
  std::vector<int32_t> ascii_next_;  // [n_states * 128], -1 unknown
  std::unordered_map<uint64_t, int32_t> other_next_;
  std::unordered_map<uint64_t, std::unique_ptr<Mask>> masks_;
  size_t mask_bytes_ = 0;

  int32_t start_state_ = 0;
  int32_t state_ = 0;
  Partial partial_;
  bool ended_ = false;  // an end-of-generation token was accepted
  GrammarStats stats_;
};

}  // namespace loupe::sample
