#include "handlers/text.h"

#include <algorithm>
#include <string>
#include <vector>

#include "handlers/understanding.h"

namespace handlers {
namespace {

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); i += utf8_len(s, i)) out.push_back(utf8_at(s, i));
  return out;
}

// Characters that WeCom and phone keyboards put where a plain space is meant.
bool is_space_like(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0x00A0 ||
         c == 0x3000 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F;
}

bool is_invisible(char32_t c) {
  return c == 0x200B || c == 0x200C || c == 0x200D || c == 0xFEFF;
}

// Full-width punctuation that is ordinary in Chinese prose; it is kept as typed so that notes
// read naturally in the ledger ("送去棉被，老人腿疼已联系村医"). Every other full-width form
// (letters, digits, ＠＃．／－ …) is folded to ASCII.
bool is_kept_fullwidth(char32_t c) {
  return c == U'，' || c == U'：' || c == U'；' || c == U'！' || c == U'？' || c == U'（' ||
         c == U'）';
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
char upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

}  // namespace

bool is_separator(char32_t c) {
  switch (c) {
    case ' ':
    case ',':
    case U'，':
    case '.':
    case U'。':
    case ';':
    case U'；':
    case ':':
    case U'：':
    case '!':
    case U'！':
    case '?':
    case U'？':
    case U'、':
      return true;
    default:
      return false;
  }
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); i += utf8_len(s, i)) ++n;
  return n;
}

int edit_distance(std::string_view a, std::string_view b) {
  const std::u32string x = decode(a), y = decode(b);
  std::vector<int> row(y.size() + 1);
  for (std::size_t j = 0; j <= y.size(); ++j) row[j] = static_cast<int>(j);
  for (std::size_t i = 1; i <= x.size(); ++i) {
    int diag = row[0];
    row[0] = static_cast<int>(i);
    for (std::size_t j = 1; j <= y.size(); ++j) {
      const int up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (x[i - 1] == y[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[y.size()];
}

int shared_chars(std::string_view a, std::string_view b) {
  std::u32string pool = decode(b);
  int n = 0;
  for (char32_t c : decode(a)) {
    if (auto it = std::find(pool.begin(), pool.end(), c); it != pool.end()) {
      *it = 0;
      ++n;
    }
  }
  return n;
}

std::string_view trim_separators(std::string_view s) {
  std::size_t b = 0;
  while (b < s.size() && is_separator(utf8_at(s, b))) b += utf8_len(s, b);
  std::size_t e = s.size();
  while (e > b) {
    const std::size_t p = utf8_prev(s, e);
    if (!is_separator(utf8_at(s, p))) break;
    e = p;
  }
  return s.substr(b, e - b);
}

std::size_t find_ascii_ci(std::string_view hay, std::string_view needle, std::size_t from) {
  if (needle.empty() || needle.size() > hay.size()) return std::string_view::npos;
  const char lo = lower(needle[0]), up = upper(needle[0]);
  for (std::size_t i = from; i + needle.size() <= hay.size(); ++i) {
    if (hay[i] != lo && hay[i] != up) continue;
    std::size_t k = 1;
    while (k < needle.size() && lower(hay[i + k]) == lower(needle[k])) ++k;
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

std::string normalize(std::string_view text, std::string_view bot_name) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = utf8_len(text, i);
    const char32_t c = utf8_at(text, i);
    if (is_space_like(c)) {
      out.push_back(' ');
    } else if (is_invisible(c)) {
      // dropped
    } else if (c >= 0xFF01 && c <= 0xFF5E && !is_kept_fullwidth(c)) {
      out.push_back(static_cast<char>(c - 0xFEE0));
    } else if (len == 1 && c >= 0x80) {
      append_utf8(out, 0xFFFD);  // a stray byte; keeps the result valid UTF-8
    } else {
      out.append(text, i, len);
    }
    i += len;
  }

  // The bot's own mention may stand anywhere ("走访 王秀英户 @帮扶助手") and may be glued to
  // the next word, so it is cut by name; other mentions are cut only at the start, up to a space.
  if (!bot_name.empty()) {
    for (std::size_t p = out.find(bot_name); p != std::string::npos;
         p = out.find(bot_name, p + bot_name.size())) {
      if (p > 0 && out[p - 1] == '@')
        std::fill(out.begin() + static_cast<std::ptrdiff_t>(p - 1),
                  out.begin() + static_cast<std::ptrdiff_t>(p + bot_name.size()), ' ');
    }
  }
  std::size_t start = 0;
  for (;;) {
    while (start < out.size() && out[start] == ' ') ++start;
    if (start >= out.size() || out[start] != '@') break;
    start = std::min(out.find(' ', start), out.size());
  }

  std::size_t w = 0;
  for (std::size_t r = start; r < out.size(); ++r) {
    if (out[r] == ' ' && (w == 0 || out[w - 1] == ' ')) continue;
    out[w++] = out[r];
  }
  if (w > 0 && out[w - 1] == ' ') --w;
  out.resize(w);
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

}  // namespace handlers
