#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <memory>

namespace loupe::tokenizer {
namespace {

// One byte per code point, expanded once from the generated range table.
const uint8_t* class_table() {
  static const std::unique_ptr<uint8_t[]> table = [] {
    auto t = std::make_unique<uint8_t[]>(kMaxCodepoint + 1);
    using unicode_data::kClassRanges;
    for (size_t i = 0; i < unicode_data::kNumClassRanges; ++i) {
      uint32_t end =
          i + 1 < unicode_data::kNumClassRanges ? kClassRanges[i + 1].start : kMaxCodepoint + 1;
      std::fill(t.get() + kClassRanges[i].start, t.get() + end, kClassRanges[i].char_class);
    }
    return t;
  }();
  return table.get();
}

struct ByteAlphabet {
  std::array<uint32_t, 256> to_cpt{};
  std::array<int16_t, 324> to_byte{};  // the alphabet lives in U+0000..U+0143
};

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes
// to U+0100 onwards in byte order.
const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet a = [] {
    ByteAlphabet r;
    r.to_byte.fill(-1);
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      r.to_cpt[b] = printable ? static_cast<uint32_t>(b) : 256 + n++;
      r.to_byte[r.to_cpt[b]] = static_cast<int16_t>(b);
    }
    return r;
  }();
  return a;
}

}  // namespace

CharClass char_class(uint32_t cpt) {
  if (cpt > kMaxCodepoint) return CharClass::kUndefined;
  return static_cast<CharClass>(class_table()[cpt]);
}

bool is_whitespace(uint32_t cpt) {
  if (cpt < 0x80) return (cpt >= 0x09 && cpt <= 0x0D) || cpt == 0x20;
  switch (cpt) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cpt >= 0x2000 && cpt <= 0x200A;
  }
}

uint32_t to_lower(uint32_t cpt) {
  const auto* begin = unicode_data::kLowercase;
  const auto* end = begin + unicode_data::kNumLowercase;
  const auto* it =
      std::lower_bound(begin, end, cpt, [](const auto& p, uint32_t c) { return p.from < c; });
  return it != end && it->from == cpt ? it->to : cpt;
}

uint32_t nfd_first(uint32_t cpt) {
  const auto* begin = unicode_data::kNfdRanges;
  const auto* end = begin + unicode_data::kNumNfdRanges;
  const auto* it =
      std::upper_bound(begin, end, cpt, [](uint32_t c, const auto& r) { return c < r.first; });
  if (it == begin) return cpt;
  --it;
  return cpt <= it->last ? it->nfd : cpt;
}

std::vector<uint32_t> decode_utf8(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
  while (i < n) {
    uint8_t b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      i += 1;
    } else if ((b & 0xE0) == 0xC0 && cont(1)) {
      out.push_back((uint32_t(b & 0x1F) << 6) | (s[i + 1] & 0x3F));
      i += 2;
    } else if ((b & 0xF0) == 0xE0 && cont(1) && cont(2)) {
      out.push_back((uint32_t(b & 0x0F) << 12) | (uint32_t(s[i + 1] & 0x3F) << 6) |
                    (s[i + 2] & 0x3F));
      i += 3;
    } else if ((b & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
      uint32_t c = (uint32_t(b & 0x07) << 18) | (uint32_t(s[i + 1] & 0x3F) << 12) |
                   (uint32_t(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
      if (c <= kMaxCodepoint) {
        out.push_back(c);
        i += 4;
      } else {
        out.push_back(kReplacementChar);
        i += 1;
      }
    } else {
      out.push_back(kReplacementChar);
      i += 1;
    }
  }
  return out;
}

void append_utf8(uint32_t cpt, std::string& out) {
  if (cpt < 0x80) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    assert(cpt <= kMaxCodepoint);
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

namespace {
// Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF); 0 when ill-formed, -k when it is a valid but incomplete
// prefix of k bytes (only possible when it reaches the end).
int utf8_sequence(const uint8_t* s, size_t n) {
  uint8_t b = s[0];
  if (b < 0x80) return 1;
  int len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k < len; ++k) {
    if (static_cast<size_t>(k) >= n) return -k;
    uint8_t c = s[k];
    if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) return 0;
  }
  return len;
}
}  // namespace

size_t complete_utf8_prefix(std::string_view bytes) {
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    int len = utf8_sequence(s + i, bytes.size() - i);
    if (len < 0) return i;
    i += len > 0 ? static_cast<size_t>(len) : 1;
  }
  return i;
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    int len = utf8_sequence(s + i, bytes.size() - i);
    if (len > 0) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      append_utf8(kReplacementChar, out);
      i += len < 0 ? static_cast<size_t>(-len) : 1;  // an incomplete tail counts once
    }
  }
  return out;
}

uint32_t byte_to_codepoint(uint8_t byte) {
  return byte_alphabet().to_cpt[byte];
}

int codepoint_to_byte(uint32_t cpt) {
  const auto& a = byte_alphabet();
  return cpt < a.to_byte.size() ? a.to_byte[cpt] : -1;
}

}  // namespace loupe::tokenizer
