// Python str semantics over UTF-8 std::string: code-point indexing, whitespace and case rules,
// split/strip/replace/splitlines, repr() and json.dumps string escaping, float repr.
// Invalid UTF-8 bytes decode to U+DC80..U+DCFF (Python's surrogateescape) and encode back to
// the same bytes, so rendering never loses or invents bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::chat::py {

std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
bool is_ascii(std::string_view s);
size_t length(std::string_view s);  // code points

bool isspace(char32_t c);  // str.isspace
bool isalpha(char32_t c);  // letters of the scripts we know case rules for, plus CJK/other letters
bool isdigit(char32_t c);
bool isalnum(char32_t c);
bool isupper(char32_t c);
bool islower(char32_t c);
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);  // str.capitalize
std::string title(std::string_view s);       // str.title
std::string swapcase(std::string_view s);

// str.strip / lstrip / rstrip; `chars` unset = whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right);
// str.split / rsplit; `sep` unset = runs of whitespace. maxsplit < 0 = no limit.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep,
                                int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
// str.replace; count < 0 = all.
std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
// Counts non-overlapping occurrences (str.count).
int64_t count(std::string_view s, std::string_view sub);

// repr(str): single quotes unless the text has ' and no ", escapes as Python does.
std::string repr(std::string_view s);
// json.dumps(str): double-quoted, \" \\ \n \r \t \b \f, other controls as \u00XX;
// non-ASCII as-is unless ensure_ascii.
std::string json_quote(std::string_view s, bool ensure_ascii);
// repr(float) / json.dumps(float): shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string float_repr(double d);
// Python's round(x, ndigits) (correctly rounded, ties to even).
double round_half_even(double x, int64_t ndigits);

}  // namespace loupe::chat::py
