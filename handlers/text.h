#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace handlers {

/// Byte length of the UTF-8 sequence at s[i] (i < s.size()). An invalid or truncated sequence
/// counts as one byte, so loops that advance by it always terminate and never read past the end.
constexpr std::size_t utf8_len(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  const std::size_t n = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (n == 1 || i + n > s.size()) return 1;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  return n;
}

/// The code point at s[i]; an invalid byte decodes to itself.
constexpr char32_t utf8_at(std::string_view s, std::size_t i) {
  const std::size_t n = utf8_len(s, i);
  const auto b = [&](std::size_t k) {
    return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]));
  };
  switch (n) {
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    case 4:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    default:
      return b(0);
  }
}

/// s.starts_with(w), byte by byte. The word tables are tried at every character of a message
/// and nearly every try fails on the first or second byte; std::string_view would call memcmp
/// for each (the length is not known at compile time), which was most of the parser's time.
constexpr bool has_prefix(std::string_view s, std::string_view w) noexcept {
  if (s.size() < w.size()) return false;
  for (std::size_t k = 0; k < w.size(); ++k)
    if (s[k] != w[k]) return false;
  return true;
}

/// s.ends_with(w), the same way.
constexpr bool has_suffix(std::string_view s, std::string_view w) noexcept {
  return s.size() >= w.size() && has_prefix(s.substr(s.size() - w.size()), w);
}

/// A set of characters given as a UTF-8 string ("王李张…"), decoded and sorted at compile time:
/// a lookup is a binary search over code points, not a search through the string's bytes.
class CharSet {
 public:
  static constexpr std::size_t kMax = 512;
  consteval explicit CharSet(std::string_view chars) {
    for (std::size_t i = 0; i < chars.size(); i += utf8_len(chars, i)) {
      if (n_ == kMax) throw "CharSet: too many characters";  // a compile error, being consteval
      cps_[n_++] = utf8_at(chars, i);
    }
    std::sort(cps_.begin(), cps_.begin() + n_);
  }
  /// The first characters of `words`.
  template <std::size_t N>
  static consteval CharSet first_chars_of(const std::string_view (&words)[N]) {
    CharSet set("");
    for (std::string_view w : words) {
      if (set.n_ == kMax) throw "CharSet: too many characters";
      set.cps_[set.n_++] = utf8_at(w, 0);
    }
    std::sort(set.cps_.begin(), set.cps_.begin() + set.n_);
    return set;
  }
  constexpr bool contains(char32_t c) const {
    return std::binary_search(cps_.begin(), cps_.begin() + n_, c);
  }

 private:
  std::array<char32_t, kMax> cps_{};
  std::size_t n_ = 0;
};

/// Start of the code point before byte i (i > 0).
inline std::size_t utf8_prev(std::string_view s, std::size_t i) {
  std::size_t j = i - 1;
  while (j > 0 && i - j < 4 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) --j;
  return utf8_len(s, j) == i - j ? j : i - 1;
}

/// A Han ideograph (CJK Unified Ideographs and Extension A, compatibility ideographs).
inline bool is_han(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0xF900 && c <= 0xFAFF);
}

inline bool is_ascii_digit(char32_t c) {
  return c >= '0' && c <= '9';
}
inline bool is_ascii_alnum(char32_t c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// Punctuation and spaces that separate phrases: space , ， . 。 ; ； : ： ! ！ ? ？ 、
bool is_separator(char32_t c);

/// Number of code points.
std::size_t code_points(std::string_view s);

/// Levenshtein distance counted in code points.
int edit_distance(std::string_view a, std::string_view b);

/// How many code points of `a` also occur in `b`, each occurrence in `b` used once.
int shared_chars(std::string_view a, std::string_view b);

/// `s` without leading and trailing separators.
std::string_view trim_separators(std::string_view s);

/// Case-insensitive (ASCII) search for `needle` in `hay` from `from`; npos when absent.
std::size_t find_ascii_ci(std::string_view hay, std::string_view needle, std::size_t from = 0);

/// The items with `sep` between them, "" for none. A separator follows only text: empty items
/// at the start add none.
std::string join(const std::vector<std::string>& items, std::string_view sep);

}  // namespace handlers
