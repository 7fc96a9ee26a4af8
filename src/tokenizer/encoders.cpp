// The three encoders, each the algorithm llama.cpp runs (llm_tokenizer_*_session), so that ids
// match bit for bit, ties included.
#include <algorithm>
#include <queue>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace loupe::tokenizer {
namespace {

// A run of bytes in a doubly linked list of symbols being merged.
struct Symbol {
  int prev;
  int next;
  size_t offset;  // into the text being encoded
  size_t n;       // 0 once merged into its left neighbour
};

// Splits `text` into one symbol per UTF-8 character (by its lead byte, as llama.cpp).
void split_chars(std::string_view text, std::vector<Symbol>& symbols) {
  size_t offset = 0;
  int index = 0;
  while (offset < text.size()) {
    size_t n = std::min(utf8_len(static_cast<uint8_t>(text[offset])), text.size() - offset);
    symbols.push_back({index - 1, offset + n == text.size() ? -1 : index + 1, offset, n});
    offset += n;
    ++index;
  }
}

}  // namespace

int32_t Tokenizer::Impl::spm_byte_token(uint8_t byte) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char buf[6] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
  int32_t id = find(std::string_view(buf, 6));
  if (id != kNoToken) return id;
  id = find(std::string_view(reinterpret_cast<const char*>(&byte), 1));
  return id != kNoToken ? id : unk;  // llama.cpp throws here; the unknown token is kinder
}

// SentencePiece BPE: repeatedly merge the adjacent pair whose union is the highest-scoring
// token (leftmost on ties); what never became a token falls back to byte tokens.
void Tokenizer::Impl::encode_spm(const std::string& text, std::vector<int32_t>& out) const {
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  auto lower_priority = [](const Bigram& l, const Bigram& r) {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(lower_priority)> queue(lower_priority);
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  split_chars(text, symbols);
  if (symbols.empty()) return;

  auto try_add = [&](int left, int right) {
    if (left == -1 || right == -1) return;
    std::string_view s(text.data() + symbols[left].offset, symbols[left].n + symbols[right].n);
    int32_t id = find(s);
    if (id == kNoToken) return;
    queue.push({left, right, tokens[id].score, s.size()});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int i = 0; i != -1; i = symbols[i].next) {
    std::string_view s(text.data() + symbols[i].offset, symbols[i].n);
    int32_t id = find(s);
    if (id != kNoToken) {
      out.push_back(id);
      continue;
    }
    for (unsigned char c : s) {
      int32_t b = spm_byte_token(c);
      if (b != kNoToken) out.push_back(b);
    }
  }
}

// BPE with ranked merges over each pre-tokenized word: repeatedly apply the lowest-ranked
// merge among adjacent pairs (leftmost on ties).
void Tokenizer::Impl::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  struct Bigram {
    int left, right;
    int32_t rank;
    std::string text;
  };
  auto lower_priority = [](const Bigram& l, const Bigram& r) {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  };
  std::vector<Symbol> symbols;
  std::vector<Bigram> heap;
  const std::vector<std::string> words = pretokenizer->split(text, byte_encode);
  for (const std::string& word : words) {
    symbols.clear();
    heap.clear();
    bool whole = false;
    if (ignore_merges && find(word) != kNoToken)
      whole = true;
    else if (gemma4 && word.find_first_not_of('\n') == std::string::npos && find(word) != kNoToken)
      whole = true;
    if (whole)
      symbols.push_back({-1, -1, 0, word.size()});
    else
      split_chars(word, symbols);

    auto try_add = [&](int left, int right) {
      if (left == -1 || right == -1) return;
      std::string_view ls(word.data() + symbols[left].offset, symbols[left].n);
      std::string_view rs(word.data() + symbols[right].offset, symbols[right].n);
      int32_t rank = find_rank(ls, rs);
      if (rank < 0) return;
      std::string joined;
      joined.reserve(ls.size() + rs.size());
      joined.append(ls).append(rs);
      heap.push_back({left, right, rank, std::move(joined)});
      std::push_heap(heap.begin(), heap.end(), lower_priority);
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), lower_priority);
      Bigram b = std::move(heap.back());
      heap.pop_back();
      Symbol& l = symbols[b.left];
      Symbol& r = symbols[b.right];
      if (l.n == 0 || r.n == 0) continue;
      // Stale when either side changed since the pair was queued.
      if (l.n + r.n != b.text.size() ||
          std::string_view(word.data() + l.offset, l.n + r.n) != b.text ||
          l.offset + l.n != r.offset)
        continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }

    for (const Symbol& sym : symbols) {
      if (sym.n == 0) continue;
      std::string_view s(word.data() + sym.offset, sym.n);
      int32_t id = find(s);
      if (id != kNoToken) {
        out.push_back(id);
        continue;
      }
      // No token for this piece: one token per byte, where the vocabulary has one.
      for (unsigned char c : s) {
        int32_t b;
        if (byte_encode) {
          b = find(std::string_view(reinterpret_cast<const char*>(&c), 1));
        } else {
          static constexpr char kHex[] = "0123456789ABCDEF";
          const char buf[6] = {'<', '0', 'x', kHex[c >> 4], kHex[c & 15], '>'};
          b = find(std::string_view(buf, 6));
        }
        if (b != kNoToken) out.push_back(b);
      }
    }
  }
}

namespace {

bool is_chinese_char(uint32_t c) {
  // As Hugging Face's BertPreTokenizer (its 0x2B920 lower bound included).
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace

// WordPiece: normalize (lower-case, strip accents via NFD), split on whitespace, punctuation
// and CJK characters, then take the longest vocabulary prefix of each "▁word" repeatedly.
void Tokenizer::Impl::encode_wpm(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<uint32_t> cpts = decode_utf8(text);
  if (strip_accents)
    for (uint32_t& c : cpts) c = nfd_first(c);
  std::vector<std::string> words(1);
  for (uint32_t c : cpts) {
    if (is_whitespace(c)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    CharClass k = char_class(c);
    if (c == 0 || c == kReplacementChar || k == CharClass::kControl) continue;
    if (strip_accents && k == CharClass::kMark) continue;
    std::string s;
    append_utf8(lowercase ? to_lower(c) : c, s);
    if (k == CharClass::kPunctuation || (c < 0x7F && k == CharClass::kSymbol) ||
        is_chinese_char(c)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = std::move(s);
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }

  for (const std::string& word : words) {
    if (word.empty()) continue;
    const std::string w = "\xE2\x96\x81" + word;  // the phantom space
    const size_t n = w.size();
    const size_t start_size = out.size();
    for (size_t i = 0; i < n; ++i) {
      bool match = false;
      for (size_t j = std::min(n, i + max_token_len + 1); j > i; --j) {
        int32_t id = find(std::string_view(w).substr(i, j - i));
        if (id != kNoToken) {
          out.push_back(id);
          match = true;
          i = j - 1;
          break;
        }
      }
      if (!match) {  // the word cannot be spelled: it becomes [UNK] as a whole
        out.resize(start_size);
        break;
      }
    }
    if (out.size() == start_size) out.push_back(unk);
  }
}

}  // namespace loupe::tokenizer
