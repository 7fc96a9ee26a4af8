#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>

#include "tokenizer/unicode.h"

namespace loupe::tokenizer {
namespace {

// Bytes that stand for a class in collapsed text (llama.cpp's k_ucat_cpt).
constexpr char kCollapsedFallback = '\xD0';
char collapsed_byte(CharClass c) {
  switch (c) {
    case CharClass::kNumber:
      return '\xD1';
    case CharClass::kLetter:
      return '\xD2';
    case CharClass::kPunctuation:
      return '\xD3';
    case CharClass::kMark:
      return '\xD4';
    case CharClass::kSymbol:
      return '\xD5';
    default:
      return kCollapsedFallback;
  }
}

struct ClassEscape {
  const char* escape;
  CharClass char_class;
  const char* ascii;  // the ASCII members, as class-body text
};
// llama.cpp's k_ucat_enum / k_ucat_map. The letter subclasses collapse to all letters.
constexpr ClassEscape kClassEscapes[] = {
    {"\\p{N}", CharClass::kNumber, "0-9"},
    {"\\p{L}", CharClass::kLetter, "A-Za-z"},
    {"\\p{P}", CharClass::kPunctuation, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", CharClass::kMark, ""},
    {"\\p{S}", CharClass::kSymbol, "\\$\\+<->^`\\|"},
    {"\\p{Lu}", CharClass::kLetter, "A-Za-z"},
    {"\\p{Ll}", CharClass::kLetter, "A-Za-z"},
    {"\\p{Lt}", CharClass::kLetter, "A-Za-z"},
    {"\\p{Lm}", CharClass::kLetter, "A-Za-z"},
    {"\\p{Lo}", CharClass::kLetter, "A-Za-z"},
};

bool uses_classes(const std::string& regex) {
  for (const ClassEscape& e : kClassEscapes)
    if (regex.find(e.escape) != std::string::npos) return true;
  return false;
}

// The regex rewritten for collapsed text, as llama.cpp's unicode_regex_split does it.
Expected<std::string> collapse_regex(const std::string& regex) {
  for (unsigned char c : regex)
    if (c >= 0x80)
      return make_error(ErrorCode::kUnsupported,
                        "regex mixes Unicode classes and non-ASCII characters: {}", regex);
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < regex.size(); ++i) {
    if (regex[i] == '[' && (i == 0 || regex[i - 1] != '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && regex[i] == ']' && regex[i - 1] != '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (regex.compare(i, 3, "\\p{") == 0) {
      size_t close = regex.find('}', i + 3);
      if (close != std::string::npos && close <= i + 10) {
        std::string_view name(regex.data() + i, close - i + 1);
        const ClassEscape* e = nullptr;
        for (const ClassEscape& c : kClassEscapes)
          if (name == c.escape) e = &c;
        if (e != nullptr) {
          if (!inside) out += '[';
          out += collapsed_byte(e->char_class);
          out += e->ascii;
          if (!inside) out += ']';
          i = close;
          continue;
        }
      }
    }
    out += regex[i];
  }
  return out;
}

// A JIT stack per thread: the default 32 KiB overflows on long words with patterns that
// repeat groups (gpt-4o's letter-case lookaheads).
struct JitContext {
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  JitContext() {
    if (stack != nullptr && context != nullptr) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~JitContext() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

}  // namespace

struct PreTokenizer::Pattern {
  pcre2_code* code = nullptr;
  bool collapsed = false;
  bool jit = false;
  ~Pattern() { pcre2_code_free(code); }

  int match(const char* subject, size_t length, size_t pos, uint32_t options,
            pcre2_match_data* md) const {
    auto s = reinterpret_cast<PCRE2_SPTR>(subject);
    if (!collapsed) options |= PCRE2_NO_UTF_CHECK;
    if (jit && (options & PCRE2_ANCHORED) == 0) {
      thread_local JitContext jit_context;
      int rc = pcre2_jit_match(code, s, length, pos, options, md, jit_context.context);
      if (rc != PCRE2_ERROR_JIT_STACKLIMIT) return rc;
    }
    return pcre2_match(code, s, length, pos, options | PCRE2_NO_JIT, md, nullptr);
  }
};

Expected<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& regexes) {
  PreTokenizer p;
  for (const std::string& regex : regexes) {
    auto pattern = std::make_shared<Pattern>();
    pattern->collapsed = uses_classes(regex);
    std::string source = regex;
    // $ means the end of the piece only (ECMAScript), never "before a final newline".
    uint32_t options = PCRE2_DOLLAR_ENDONLY;
    if (pattern->collapsed) {
      LOUPE_ASSIGN_OR_RETURN(source, collapse_regex(regex));
    } else {
      options |= PCRE2_UTF | PCRE2_NO_UTF_CHECK;
    }
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pattern->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                  options, &error, &error_offset, nullptr);
    if (pattern->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return make_error(ErrorCode::kInternal, "pre-tokenizer regex {:?} does not compile at {}: {}",
                        regex, error_offset, reinterpret_cast<const char*>(message));
    }
    pattern->jit = pcre2_jit_compile(pattern->code, PCRE2_JIT_COMPLETE) == 0;
    (pattern->collapsed ? p.any_collapsed_ : p.any_wide_) = true;
    p.patterns_.push_back(std::move(pattern));
  }
  return p;
}

std::vector<std::string> PreTokenizer::split(std::string_view text, bool byte_encode) const {
  const std::vector<uint32_t> cpts = decode_utf8(text);
  const size_t n = cpts.size();

  std::string collapsed;
  if (any_collapsed_) {
    collapsed.resize(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t c = cpts[i];
      if (c < 0x80)
        collapsed[i] = static_cast<char>(c);
      else if (is_whitespace(c))
        collapsed[i] = '\x0B';
      else
        collapsed[i] = collapsed_byte(char_class(c));
    }
  }
  // Code points as UTF-8 for the regexes without classes; byte_at[i] = offset of code point i.
  std::string wide;
  std::vector<uint32_t> byte_at;
  if (any_wide_) {
    byte_at.resize(n + 1);
    for (size_t i = 0; i < n; ++i) {
      byte_at[i] = static_cast<uint32_t>(wide.size());
      uint32_t c = cpts[i];
      if (c >= 0xD800 && c <= 0xDFFF)
        c = kReplacementChar;  // keep the subject valid UTF-8
      else if (c > 0x7F && is_whitespace(c))
        c = 0x0B;
      append_utf8(c, wide);
    }
    byte_at[n] = static_cast<uint32_t>(wide.size());
  }

  std::vector<size_t> offsets = {n};  // lengths of consecutive pieces, in code points
  if (n == 0) offsets.clear();
  std::vector<size_t> next;
  for (const auto& pattern : patterns_) {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(pattern->code, nullptr);
    next.clear();
    size_t start = 0;
    for (size_t len : offsets) {
      const char* subject;
      size_t subject_len;
      if (pattern->collapsed) {
        subject = collapsed.data() + start;
        subject_len = len;
      } else {
        subject = wide.data() + byte_at[start];
        subject_len = byte_at[start + len] - byte_at[start];
      }
      // Subject offset -> code points from the piece start.
      auto to_cpt = [&](size_t off) -> size_t {
        if (pattern->collapsed) return off;
        auto it = std::lower_bound(byte_at.begin() + start, byte_at.begin() + start + len + 1,
                                   static_cast<uint32_t>(byte_at[start] + off));
        return static_cast<size_t>(it - (byte_at.begin() + start));
      };
      size_t prev_end = 0;  // in code points from the piece start
      size_t pos = 0;       // search offset in the subject
      uint32_t flags = 0;
      while (pos <= subject_len) {
        int rc = pattern->match(subject, subject_len, pos, flags, md);
        if (rc < 0) {
          if (flags != 0 && rc == PCRE2_ERROR_NOMATCH && pos < subject_len) {
            // After an empty match: no non-empty match here, so search on from the next char.
            flags = 0;
            pos += pattern->collapsed ? 1 : utf8_len(static_cast<uint8_t>(subject[pos]));
            continue;
          }
          break;  // no more matches (or a matching limit): the rest stays one piece
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t m_begin = to_cpt(ov[0]), m_end = to_cpt(ov[1]);
        if (m_begin > prev_end) next.push_back(m_begin - prev_end);
        if (m_end > m_begin) next.push_back(m_end - m_begin);
        prev_end = m_end;
        pos = ov[1];
        // std::regex_iterator: after an empty match, retry here for a non-empty one.
        flags = ov[0] == ov[1] ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
        if (flags != 0 && pos >= subject_len) break;
      }
      if (prev_end < len) next.push_back(len - prev_end);
      start += len;
    }
    pcre2_match_data_free(md);
    offsets.swap(next);
  }

  std::vector<std::string> words;
  words.reserve(offsets.size());
  size_t start = 0;
  std::string utf8;
  for (size_t len : offsets) {
    utf8.clear();
    for (size_t i = start; i < start + len; ++i) append_utf8(cpts[i], utf8);
    if (byte_encode) {
      std::string encoded;
      encoded.reserve(utf8.size() * 2);
      for (unsigned char b : utf8) append_utf8(byte_to_codepoint(b), encoded);
      words.push_back(std::move(encoded));
    } else {
      words.push_back(utf8);
    }
    start += len;
  }
  return words;
}

}  // namespace loupe::tokenizer
