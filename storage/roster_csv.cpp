#include "storage/roster_csv.h"

#include <iconv.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <tuple>

#include "storage/utf8.h"

namespace storage {
namespace {

// --- encoding --------------------------------------------------------------------------------

// Owns an iconv conversion descriptor.
class Iconv {
 public:
  Iconv(const char* to, const char* from) : cd_(iconv_open(to, from)) {}
  ~Iconv() {
    if (ok()) iconv_close(cd_);
  }
  Iconv(const Iconv&) = delete;
  Iconv& operator=(const Iconv&) = delete;
  bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }
  iconv_t get() const { return cd_; }

 private:
  iconv_t cd_;
};

struct Converted {
  std::string text;
  std::optional<size_t> bad_offset;  // first input byte that could not be converted
};

Converted gb18030_to_utf8(std::string_view in) {
  Iconv cd("UTF-8", "GB18030");
  if (!cd.ok()) return {{}, 0};
  std::string out(in.size() * 2 + 16, '\0');
  // iconv's input parameter is not const-qualified but it only reads through it.
  char* src = const_cast<char*>(in.data());
  size_t src_left = in.size();
  size_t used = 0;
  while (src_left > 0) {
    char* dst = out.data() + used;
    size_t dst_left = out.size() - used;
    const size_t r = iconv(cd.get(), &src, &src_left, &dst, &dst_left);
    used = static_cast<size_t>(dst - out.data());
    if (r != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
      continue;
    }
    return {{}, static_cast<size_t>(src - in.data())};  // EILSEQ, or EINVAL: truncated at end
  }
  out.resize(used);
  return {std::move(out), std::nullopt};
}

// Physical line (1-based) of byte `offset`; CRLF, LF and a lone CR each end a line.
int line_at(std::string_view s, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < s.size(); ++i) {
    if (s[i] == '\n' || (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n'))) ++line;
  }
  return line;
}

std::string at_line(int line, std::string_view msg) {
  return "第" + std::to_string(line) + "行：" + std::string(msg);
}

// --- CSV tokenizer ---------------------------------------------------------------------------

struct Record {
  int line = 0;  // where the record starts
  std::vector<std::string> fields;
};

struct Tokenized {
  std::vector<Record> records;
  std::optional<RosterError> error;
};

bool is_break(char c) {
  return c == '\r' || c == '\n';
}

// RFC 4180, leniently: spaces around a quoted field are allowed, a quote inside an unquoted field
// is kept as text. A line break inside quotes becomes "\n".
Tokenized tokenize(std::string_view s) {
  Tokenized t;
  const size_t n = s.size();
  size_t i = 0;
  int line = 1;
  auto skip_break = [&] {
    i += (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
    ++line;
  };
  while (i < n) {
    Record rec{line, {}};
    while (true) {
      std::string field;
      size_t j = i;
      while (j < n && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j < n && s[j] == '"') {
        const int quote_line = line;
        i = j + 1;
        bool closed = false;
        while (i < n) {
          if (s[i] == '"') {
            if (i + 1 < n && s[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (is_break(s[i])) {
            field += '\n';
            skip_break();
            continue;
          }
          field += s[i++];
        }
        if (!closed) {
          t.error = RosterError{
              quote_line, at_line(quote_line,
                                  "这一行有一个双引号没有配对，直到文件末尾都没有找到结束的引号；"
                                  "请检查该行的引号（单元格里的引号要写成两个 \"\"）")};
          return t;
        }
        while (i < n && (s[i] == ' ' || s[i] == '\t')) ++i;
        if (i < n && s[i] != ',' && !is_break(s[i])) {
          t.error = RosterError{
              line, at_line(line,
                            "引号用法不对：结束的引号后面紧跟着其他文字；单元格里的引号要写成两个 "
                            "\"\"")};
          return t;
        }
      } else {
        while (i < n && s[i] != ',' && !is_break(s[i])) field += s[i++];
      }
      rec.fields.push_back(std::move(field));
      if (i >= n) break;
      if (s[i] == ',') {
        if (++i < n) continue;
        rec.fields.emplace_back();  // "a," at the very end: the last field is empty
        break;
      }
      skip_break();
      break;
    }
    t.records.push_back(std::move(rec));
  }
  return t;
}

// --- values ----------------------------------------------------------------------------------

// Trims ASCII whitespace, U+3000 (ideographic space), U+00A0 and a stray U+FEFF at both ends.
std::string trim(std::string_view s) {
  static constexpr std::string_view kWide[] = {"\xE3\x80\x80", "\xC2\xA0", "\xEF\xBB\xBF"};
  bool changed = true;
  while (changed && !s.empty()) {
    changed = false;
    const char c = s.front();
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f') {
      s.remove_prefix(1);
      changed = true;
      continue;
    }
    for (auto w : kWide) {
      if (s.starts_with(w)) {
        s.remove_prefix(w.size());
        changed = true;
        break;
      }
    }
  }
  changed = true;
  while (changed && !s.empty()) {
    changed = false;
    const char c = s.back();
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f') {
      s.remove_suffix(1);
      changed = true;
      continue;
    }
    for (auto w : kWide) {
      if (s.ends_with(w)) {
        s.remove_suffix(w.size());
        changed = true;
        break;
      }
    }
  }
  return std::string(s);
}

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads N digits (min..max) at s[i]; advances i.
std::optional<int> read_number(std::string_view s, size_t& i, size_t min_len, size_t max_len) {
  size_t start = i;
  int v = 0;
  while (i < s.size() && is_digit(s[i]) && i - start < max_len) v = v * 10 + (s[i++] - '0');
  if (i - start < min_len) return std::nullopt;
  return v;
}

// 2026-11-01, and what Excel writes for a date cell in a Chinese locale: 2026/11/1, 2026.11.1,
// 2026-1-5, 2026年11月1日.
std::optional<Date> parse_roster_date(std::string_view s) {
  if (auto d = Date::parse_iso(s)) return d;
  size_t i = 0;
  auto y = read_number(s, i, 4, 4);
  if (!y) return std::nullopt;
  std::string_view sep1, sep2, tail;
  if (s.substr(i).starts_with("年")) {
    sep1 = "年", sep2 = "月", tail = "日";
  } else if (i < s.size() && (s[i] == '-' || s[i] == '/' || s[i] == '.')) {
    sep1 = sep2 = s.substr(i, 1);
  } else {
    return std::nullopt;
  }
  i += sep1.size();
  auto m = read_number(s, i, 1, 2);
  if (!m || !s.substr(i).starts_with(sep2)) return std::nullopt;
  i += sep2.size();
  auto d = read_number(s, i, 1, 2);
  if (!d) return std::nullopt;
  if (!tail.empty() && s.substr(i).starts_with(tail)) i += tail.size();
  if (i != s.size()) return std::nullopt;
  return Date::make(*y, *m, *d);
}

// "4.1E+17", "1.23457E+11": what Excel shows (and saves) for a long number in a General cell.
bool excel_scientific(std::string_view s) {
  size_t e = s.find_first_of("Ee");
  if (e == std::string_view::npos || e == 0 || e + 2 > s.size()) return false;
  auto mant = s.substr(0, e), exp = s.substr(e + 1);
  if (exp[0] == '+') exp.remove_prefix(1);
  if (exp.empty()) return false;
  for (char c : exp)
    if (!is_digit(c)) return false;
  bool dot = false;
  for (char c : mant) {
    if (c == '.' && !dot) {
      dot = true;
    } else if (!is_digit(c)) {
      return false;
    }
  }
  return true;
}

// --- columns ---------------------------------------------------------------------------------

enum class Col {
  HelperId,
  HelperName,
  Phone,
  Ledger,
  Unit,
  HouseholdId,
  HouseholdHead,
  Person,
  PersonCategory,
  Village,
  Street,
  StartDate,
  EndDate,
};
constexpr int kColCount = 13;

struct ColSpec {
  Col col;
  std::string_view label;  // as the error messages name it
  std::string_view code;   // English header
  bool required;
  std::string_view aliases[4];  // normalised (see header_key); unused slots empty
};

const ColSpec kCols[] = {
    {Col::HelperId, "帮扶人ID", "helper_id", true, {"帮扶人id", "userid", "企业微信id"}},
    {Col::HelperName, "帮扶人", "helper_name", true, {"帮扶人", "帮扶人姓名", "帮扶责任人"}},
    {Col::Phone, "手机", "phone", false, {"手机", "手机号", "手机号码", "联系电话"}},
    {Col::Ledger, "台账", "ledger", true, {"台账", "台账类别"}},
    {Col::Unit, "单位", "unit", true, {"单位", "帮扶单位"}},
    {Col::HouseholdId, "户编号", "household_id", true, {"户编号", "户号"}},
    {Col::HouseholdHead, "户主", "household_head", true, {"户主", "户主姓名"}},
    {Col::Person, "帮扶对象", "person", false, {"帮扶对象"}},
    {Col::PersonCategory, "对象类别", "person_category", false, {"对象类别"}},
    {Col::Village, "村居", "village", true, {"村居", "村"}},
    {Col::Street, "街道", "street", false, {"街道", "镇街"}},
    {Col::StartDate, "结对日期", "start_date", false, {"结对日期", "开始日期"}},
    {Col::EndDate, "结束日期", "end_date", false, {"结束日期"}},
};

const ColSpec& spec(Col c) {
  return kCols[static_cast<int>(c)];
}

// Trimmed, ASCII lower-cased, without inner spaces or the "*" templates put on required columns.
std::string header_key(std::string_view raw) {
  std::string t = ascii_lower(trim(raw));
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t[i] == ' ' || t[i] == '*') {
      ++i;
    } else if (t.compare(i, 3, "\xE3\x80\x80") == 0 || t.compare(i, 3, "\xEF\xBC\x8A") == 0) {
      i += 3;  // U+3000 ideographic space, U+FF0A full-width asterisk
    } else {
      out += t[i++];
    }
  }
  return out;
}

std::optional<Col> column_of(std::string_view header) {
  const std::string key = header_key(header);
  for (const ColSpec& c : kCols) {
    if (key == c.code) return c.col;
    for (auto a : c.aliases)
      if (!a.empty() && key == a) return c.col;
  }
  return std::nullopt;
}

std::string quoted(std::string_view v) {
  return "“" + std::string(v) + "”";
}

constexpr std::string_view kCategories[] = {"患病", "残疾", "学生"};

RosterParse fail(RosterParse r, int line, std::string_view msg) {
  r.errors.push_back({line, at_line(line, msg)});
  return r;
}

}  // namespace

RosterParse parse_roster_csv(std::string_view bytes) {
  RosterParse result;

  // 1. Encoding.
  std::string text;
  if (bytes.starts_with("\xEF\xBB\xBF")) {
    bytes.remove_prefix(3);
    result.encoding = "utf-8-bom";
  } else if (bytes.starts_with("\xFF\xFE") || bytes.starts_with("\xFE\xFF")) {
    return fail(std::move(result), 1,
                "文件是 UTF-16（Unicode 文本）编码，请在 Excel 中另存为“CSV（逗号分隔）”或"
                "“CSV UTF-8（逗号分隔）”");
  } else if (bytes.starts_with(std::string_view("PK\x03\x04", 4))) {
    return fail(
        std::move(result), 1,
        "这是 Excel 工作簿（.xlsx），不是 CSV；请在 Excel 中另存为“CSV（逗号分隔）”后再导入");
  }
  if (auto bad_utf8 = invalid_utf8_at(bytes); !bad_utf8) {
    if (result.encoding.empty()) result.encoding = "utf-8";
    text.assign(bytes);
  } else {
    Converted c = gb18030_to_utf8(bytes);
    if (c.bad_offset) {
      // Each reading fails early on text in the other encoding, so the later failure is where
      // the file really breaks: a UTF-8 file with one bad byte, or a GBK file with one.
      return fail(std::move(result), line_at(bytes, std::max(*bad_utf8, *c.bad_offset)),
                  "文件编码无法识别（既不是 UTF-8 也不是 GBK），请在 Excel 中另存为“CSV UTF-8（逗号"
                  "分隔）”");
    }
    result.encoding = "gbk";
    text = std::move(c.text);
    if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);  // GB18030's own BOM
  }

  // 2. Records.
  Tokenized tok = tokenize(text);
  if (tok.error) {
    result.errors.push_back(std::move(*tok.error));
    return result;
  }
  std::vector<Record> records;
  for (Record& r : tok.records) {
    bool blank = true;
    for (auto& f : r.fields) {
      f = trim(f);
      if (!f.empty()) blank = false;
    }
    if (!blank) records.push_back(std::move(r));
  }
  if (records.empty()) return fail(std::move(result), 1, "文件是空的，第一行应是表头");

  // 3. Header.
  const Record& header = records.front();
  if (header.fields.size() == 1 && header.fields[0].find_first_of("\t;") != std::string::npos) {
    return fail(std::move(result), header.line,
                "列之间不是用逗号分隔的；请在 Excel 中另存为“CSV（逗号分隔）”");
  }
  int index_of[kColCount];
  std::fill(std::begin(index_of), std::end(index_of), -1);
  for (size_t i = 0; i < header.fields.size(); ++i) {
    auto col = column_of(header.fields[i]);
    if (!col) continue;  // unknown columns are ignored
    int& slot = index_of[static_cast<int>(*col)];
    if (slot >= 0) {
      return fail(std::move(result), header.line,
                  "列" + quoted(spec(*col).label) + "出现了两次，请只保留一列");
    }
    slot = static_cast<int>(i);
  }
  std::string missing;
  for (const ColSpec& c : kCols) {
    if (!c.required || index_of[static_cast<int>(c.col)] >= 0) continue;
    if (!missing.empty()) missing += "、";
    missing += std::string(c.label) + "（" + std::string(c.code) + "）";
  }
  if (!missing.empty()) return fail(std::move(result), header.line, "缺少必填的列：" + missing);

  // 4. Rows.
  using Key = std::tuple<std::string, std::string, std::string>;
  std::map<Key, int> pairing_line;
  std::map<std::string, std::pair<std::string, int>> helper_seen;  // id -> (name, line)

  for (size_t r = 1; r < records.size(); ++r) {
    const Record& rec = records[r];
    const size_t before = result.errors.size();
    auto error = [&](const std::string& msg) {
      result.errors.push_back({rec.line, at_line(rec.line, msg)});
    };
    auto get = [&](Col c) -> const std::string& {
      static const std::string kEmpty;
      const int i = index_of[static_cast<int>(c)];
      return i >= 0 && static_cast<size_t>(i) < rec.fields.size() ? rec.fields[i] : kEmpty;
    };

    Pairing p;
    p.helper_id = get(Col::HelperId);
    p.helper_name = get(Col::HelperName);
    p.phone = get(Col::Phone);
    p.unit = get(Col::Unit);
    p.household_id = get(Col::HouseholdId);
    p.household_head = get(Col::HouseholdHead);
    p.person = get(Col::Person);
    p.person_category = get(Col::PersonCategory);
    p.village = get(Col::Village);
    p.street = get(Col::Street);

    for (const ColSpec& c : kCols)
      if (c.required && get(c.col).empty()) error(quoted(c.label) + "为空，请填写");

    for (Col c : {Col::HelperId, Col::HouseholdId, Col::Phone}) {
      if (excel_scientific(get(c))) {
        error(std::string(spec(c).label) + quoted(get(c)) +
              "被 Excel 变成了科学计数法，原号码已丢失；请把该列设为“文本”格式、重新填写后再导出");
      }
    }

    const std::string& ledger_text = get(Col::Ledger);
    if (!ledger_text.empty()) {
      if (auto l = ledger_from(ascii_lower(ledger_text)))
        p.ledger = *l;
      else
        error("台账" + quoted(ledger_text) + "无法识别，应填 区直、卫生 或 教育");
    }

    if (!p.person_category.empty() && std::find(std::begin(kCategories), std::end(kCategories),
                                                p.person_category) == std::end(kCategories)) {
      error("对象类别" + quoted(p.person_category) +
            "无法识别，应填 患病、残疾 或 学生（也可不填）");
    }

    bool dates_ok = true;
    for (auto [col, out] :
         {std::pair{Col::StartDate, &p.start_date}, std::pair{Col::EndDate, &p.end_date}}) {
      const std::string& v = get(col);
      if (v.empty()) continue;
      *out = parse_roster_date(v);
      if (!*out) {
        dates_ok = false;
        error(std::string(spec(col).label) + quoted(v) + "不是有效日期，格式应为 2026-11-01");
      }
    }
    if (dates_ok && p.start_date && p.end_date && *p.end_date < *p.start_date) {
      error("结束日期 " + p.end_date->iso() + " 早于结对日期 " + p.start_date->iso() + "，请检查");
    }

    if (!p.helper_id.empty() && !p.household_id.empty()) {
      auto [it, fresh] =
          pairing_line.try_emplace({p.helper_id, p.household_id, p.person}, rec.line);
      if (!fresh) {
        std::string who = "帮扶人ID " + p.helper_id + "、户编号 " + p.household_id;
        if (!p.person.empty()) who += "、帮扶对象 " + p.person;
        error("与第" + std::to_string(it->second) + "行是同一个结对（" + who +
              "），请删去重复的一行");
      }
    }
    if (!p.helper_id.empty() && !p.helper_name.empty()) {
      auto [it, fresh] = helper_seen.try_emplace(p.helper_id, p.helper_name, rec.line);
      if (!fresh && it->second.first != p.helper_name) {
        error("帮扶人ID" + quoted(p.helper_id) + "在第" + std::to_string(it->second.second) +
              "行的姓名是" + quoted(it->second.first) + "，这里是" + quoted(p.helper_name) +
              "；同一个人请写同一个姓名");
      }
    }

    if (result.errors.size() == before) result.rows.push_back(std::move(p));
  }
  return result;
}

std::string csv_quote(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace storage
