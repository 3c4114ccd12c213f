#include "handlers/chinese_date.h"

#include <algorithm>

#include "handlers/text.h"

namespace handlers {
namespace {

using storage::Date;
using Status = DateToken::Status;

struct Relative {
  std::string_view word;
  int offset;
};

// Longer words first: 大前天 must win over 前天 at the same position.
constexpr Relative kRelative[] = {
    {"大前天", -3}, {"大前日", -3}, {"前天", -2}, {"前日", -2}, {"前儿", -2}, {"昨天", -1},
    {"昨日", -1},   {"昨晚", -1},   {"昨儿", -1}, {"今天", 0},  {"今日", 0},  {"今早", 0},
    {"今晚", 0},    {"今儿", 0},    {"明天", 1},  {"明日", 1},  {"后天", 2},
};

// Characters that make 前/后 part of another word (之前天气, 以后天天, 目前天冷).
constexpr std::string_view kBeforeAfterWords[] = {"之", "以", "提", "从", "日", "年", "月", "目",
                                                  "此", "向", "眼", "面", "跟", "门", "当", "空",
                                                  "然", "最", "而", "先", "落", "午", "饭"};

enum class Week { TwoBack, Last, This, Next, Recent };

struct WeekPrefix {
  std::string_view word;
  Week week;
};

constexpr WeekPrefix kWeekPrefixes[] = {
    {"上上星期", Week::TwoBack}, {"上上礼拜", Week::TwoBack}, {"上上周", Week::TwoBack},
    {"上个星期", Week::Last},    {"上个礼拜", Week::Last},    {"这个星期", Week::This},
    {"下个星期", Week::Next},    {"下个礼拜", Week::Next},    {"上星期", Week::Last},
    {"上礼拜", Week::Last},      {"上周", Week::Last},        {"本星期", Week::This},
    {"这星期", Week::This},      {"本周", Week::This},        {"这周", Week::This},
    {"下星期", Week::Next},      {"下礼拜", Week::Next},      {"下周", Week::Next},
    {"星期", Week::Recent},      {"礼拜", Week::Recent},      {"周", Week::Recent},
};

// Before a bare 周X these make it a count or frequency (每周三, 一周两次), not a day.
constexpr std::string_view kNotBareWeek[] = {"每", "一", "两", "几", "半", "个", "整",
                                             "上", "下", "本", "这", "隔", "数"};

// A number followed by one of these is a quantity, not a date (1.5小时, 11.20元, 3/4斤).
constexpr std::string_view kUnits[] = {
    "小时", "个", "分钟", "分", "秒", "天", "斤", "公斤", "千克", "克", "元", "块", "万",
    "千",   "百", "次",   "岁", "人", "亩", "米", "公里", "里",   "吨", "袋", "箱", "桶",
    "件",   "床", "度",   "倍", "份", "包", "瓶", "盒",   "支",   "片", "粒", "户", "口",
    "间",   "套", "只",   "头", "株", "棵", "本", "升",   "毫",   "年", "周", "%",
};

// Words that start with a unit but are no quantity (7.9 升学考试, 11.20 元宵节, 11.20 户主).
constexpr std::string_view kNotUnits[] = {"升学", "升旗", "升级", "升入", "元宵", "元旦", "户主",
                                          "本人", "本周", "本月", "天气", "次日", "分别", "只是",
                                          "头疼", "包括", "支持", "米面", "人在", "人不"};

// A number right after one of these is a reading, a score or a clock time (血糖7.8, 下午2.30).
constexpr std::string_view kMeasurements[] = {
    "血压", "血糖", "体温", "心率", "脉搏", "体重", "身高", "血氧", "血脂", "尿酸", "视力", "收入",
    "成绩", "分数", "得分", "考了", "花了", "用了", "价格", "单价", "共计", "合计", "约",   "共",
    "第",   "上午", "下午", "早上", "晚上", "中午", "凌晨", "傍晚", "早",   "晚",
};

// 3号楼, 5号床: a number, not a day.
constexpr std::string_view kPlaces[] = {"楼", "房", "床", "院", "门", "线", "车", "机", "室", "屋",
                                        "位", "窗", "柜", "码", "桌", "台", "栋", "单", "地", "井",
                                        "桥", "路", "街", "巷", "组", "铺", "箱", "线"};

template <std::size_t N>
bool starts_with_any(std::string_view s, const std::string_view (&words)[N]) {
  return std::any_of(std::begin(words), std::end(words),
                     [&](std::string_view w) { return has_prefix(s, w); });
}

template <std::size_t N>
bool ends_with_any(std::string_view s, const std::string_view (&words)[N]) {
  return std::any_of(std::begin(words), std::end(words),
                     [&](std::string_view w) { return has_suffix(s, w); });
}

int cn_digit(char32_t c) {
  switch (c) {
    case U'〇':
    case U'零':
      return 0;
    case U'一':
      return 1;
    case U'二':
      return 2;
    case U'三':
      return 3;
    case U'四':
      return 4;
    case U'五':
      return 5;
    case U'六':
      return 6;
    case U'七':
      return 7;
    case U'八':
      return 8;
    case U'九':
      return 9;
    default:
      return -1;
  }
}

bool is_cn_numeral(char32_t c) {
  return cn_digit(c) >= 0 || c == U'十' || c == U'廿' || c == U'卅';
}

struct Number {
  int value = 0;
  std::size_t end = 0;  // byte after the number
  bool ascii = false;
  int digits = 0;  // ASCII digits, or Chinese digits when written digit by digit (二〇二六)
};

// The number at s[i], ASCII (26) or Chinese (二十六, 廿, 十一, 二〇二六).
std::optional<Number> read_number(std::string_view s, std::size_t i) {
  if (i >= s.size()) return std::nullopt;
  Number n;
  if (is_ascii_digit(s[i])) {
    n.ascii = true;
    std::size_t k = i;
    for (; k < s.size() && is_ascii_digit(s[k]); ++k) {
      if (n.digits < 9) n.value = n.value * 10 + (s[k] - '0');
      ++n.digits;
    }
    n.end = k;
    return n;
  }
  char32_t cps[8];
  int count = 0;
  std::size_t k = i;
  while (k < s.size() && count < 8) {
    const char32_t c = utf8_at(s, k);
    if (!is_cn_numeral(c)) break;
    cps[count++] = c;
    k += utf8_len(s, k);
  }
  if (count == 0) return std::nullopt;
  n.end = k;
  const bool positional =
      std::none_of(cps, cps + count, [](char32_t c) { return cn_digit(c) < 0; });
  if (positional) {
    if (count != 1 && count != 4) return std::nullopt;
    for (int j = 0; j < count; ++j) n.value = n.value * 10 + cn_digit(cps[j]);
    n.digits = count;
    return n;
  }
  int idx = 0, tens = 0;
  if (cps[0] == U'十') {
    tens = 1, idx = 1;
  } else if (cps[0] == U'廿') {
    tens = 2, idx = 1;
  } else if (cps[0] == U'卅') {
    tens = 3, idx = 1;
  } else if (count >= 2 && cn_digit(cps[0]) >= 1 && cps[1] == U'十') {
    tens = cn_digit(cps[0]), idx = 2;
  } else {
    return std::nullopt;
  }
  int units = 0;
  if (idx < count) {
    units = cn_digit(cps[idx++]);
    if (units < 1) return std::nullopt;
  }
  if (idx != count) return std::nullopt;
  n.value = tens * 10 + units;
  return n;
}

char32_t cp_at(std::string_view s, std::size_t i) {
  return i < s.size() ? utf8_at(s, i) : 0;
}

char32_t cp_before(std::string_view s, std::size_t i) {
  return i == 0 ? 0 : utf8_at(s, utf8_prev(s, i));
}

bool unit_follows(std::string_view s, std::size_t i) {
  if (i < s.size() && s[i] == ' ') ++i;  // one space at most: a masked name is a run of them
  const std::string_view rest = s.substr(i);
  return starts_with_any(rest, kUnits) && !starts_with_any(rest, kNotUnits);
}

bool measured_before(std::string_view s, std::size_t i) {
  for (;;) {
    if (i > 0 && (s[i - 1] == ' ' || s[i - 1] == ':')) {
      --i;
    } else if (std::string_view head = s.substr(0, i);
               head.ends_with("：") || head.ends_with("为") || head.ends_with("是")) {
      i -= 3;
    } else {
      break;
    }
  }
  return ends_with_any(s.substr(0, i), kMeasurements);
}

DateToken invalid(std::size_t b, std::size_t e, int y, int m, int d) {
  DateToken t;
  t.begin = b, t.end = e, t.status = Status::Invalid, t.year = y, t.month = m, t.day = d;
  return t;
}

DateToken resolved(std::size_t b, std::size_t e, Date d, Date today) {
  DateToken t;
  t.begin = b, t.end = e, t.date = d, t.year = d.year, t.month = d.month, t.day = d.day;
  t.status = d > today ? Status::Future : Status::Ok;
  return t;
}

DateToken month_day(std::size_t b, std::size_t e, std::optional<int> year, int m, int d,
                    Date today) {
  const int y = year ? *year : (m > today.month ? today.year - 1 : today.year);
  if (auto date = Date::make(y, m, d)) return resolved(b, e, *date, today);
  return invalid(b, e, y, m, d);
}

std::optional<DateToken> bare_day(std::string_view s, std::size_t b, std::size_t e, int day,
                                  Date today) {
  const char32_t before = cp_before(s, b);
  if (before == U'月' || before == U'每' || day < 1 || day > 31) return std::nullopt;
  // 3组12号, 幸福路8号: an address.
  constexpr std::u32string_view kAddress = U"组路街巷弄栋楼元村社区队";
  if (kAddress.find(before) != std::u32string_view::npos) return std::nullopt;
  // 门牌28号, 床号25号, 门牌号是18号, 房间号：302号: the number of a door, bed or room.
  constexpr std::u32string_view kNumbered = U"牌床房室号码卡证幢层排座院";
  char32_t named = before;
  if (named == U'是' || named == U'为' || named == U'：' || named == ':' || named == ' ')
    named = b > 0 ? cp_before(s, utf8_prev(s, b)) : 0;
  if (kNumbered.find(named) != std::u32string_view::npos) return std::nullopt;
  const storage::Month m =
      day <= today.day ? storage::Month::of(today) : storage::Month::of(today).prev();
  if (auto date = Date::make(m.year, m.month, day)) return resolved(b, e, *date, today);
  return invalid(b, e, m.year, m.month, day);
}

DateToken marked(std::size_t b, std::size_t e, Status status, int y = 0, int m = 0) {
  DateToken t;
  t.begin = b, t.end = e, t.status = status, t.year = y, t.month = m;
  return t;
}

bool is_range_mark(char32_t c) {
  return c == U'至' || c == U'到' || c == '~' || c == U'～' || c == '-' || c == U'—' || c == U'–' ||
         c == U'、';
}

bool is_day_suffix(char32_t c) {
  return c == U'日' || c == U'号';
}

// 11月 / 11月份 with no day: the month is known, the day is not.
std::optional<DateToken> month_only(std::string_view s, std::size_t b, std::size_t e,
                                    const Number& num, Date today) {
  const char32_t before = cp_before(s, b);
  if (num.value < 1 || num.value > 12 || before == U'个' || before == U'几' || before == U'每' ||
      before == U'两' || before == U'半' || before == U'第')
    return std::nullopt;
  if (s.substr(e).starts_with("份")) e += 3;
  const int y = num.value > today.month ? today.year - 1 : today.year;
  return marked(b, e, Status::Vague, y, num.value);
}

// A date whose first number starts at `b` and was read as `num`.
std::optional<DateToken> numeric_date(std::string_view s, std::size_t b, const Number& num,
                                      Date today) {
  const std::size_t j = num.end;
  const char32_t c = cp_at(s, j);

  if (num.digits == 4) {
    const bool ascii_sep = num.ascii && (c == '-' || c == '.' || c == '/');
    if (c != U'年' && !ascii_sep) return std::nullopt;
    const auto m = read_number(s, j + utf8_len(s, j));
    if (!m || (ascii_sep && !m->ascii) || (m->ascii && m->digits > 2)) return std::nullopt;
    const char32_t c2 = cp_at(s, m->end);
    if (c == U'年' ? c2 != U'月' : c2 != c) return std::nullopt;
    const auto d = read_number(s, m->end + utf8_len(s, m->end));
    if (!d || (ascii_sep && !d->ascii) || (d->ascii && d->digits > 2)) return std::nullopt;
    std::size_t e = d->end;
    const char32_t suffix = cp_at(s, e);
    if (suffix == U'日' || suffix == U'号') {
      e += utf8_len(s, e);
    } else if (!d->ascii) {
      return std::nullopt;
    }
    if (m->value < 1 || m->value > 12) return invalid(b, e, num.value, m->value, d->value);
    return month_day(b, e, num.value, m->value, d->value, today);
  }
  if ((num.ascii && num.digits > 2) || num.value == 0) return std::nullopt;

  if (c == U'月') {
    const auto d = read_number(s, j + utf8_len(s, j));
    if (!d) return month_only(s, b, j + utf8_len(s, j), num, today);
    if (d->ascii && d->digits > 2) return std::nullopt;
    std::size_t e = d->end;
    const char32_t suffix = cp_at(s, e);
    if (suffix == U'日' || suffix == U'号') {
      e += utf8_len(s, e);
      if (suffix == U'号' && starts_with_any(s.substr(e), kPlaces)) return std::nullopt;
    } else if (!d->ascii || num.value > 12 || d->value > 31 || unit_follows(s, e)) {
      return std::nullopt;
    }
    std::optional<int> year;
    std::size_t begin = b;
    if (s.substr(0, b).ends_with("去年")) {
      year = today.year - 1, begin = b - 6;
    } else if (s.substr(0, b).ends_with("今年")) {
      year = today.year, begin = b - 6;
    }
    if (num.value > 12) return invalid(begin, e, year.value_or(today.year), num.value, d->value);
    return month_day(begin, e, year, num.value, d->value, today);
  }

  // 1至3号, 1到3日: several days.
  if (c == U'至' || c == U'到' || c == '~' || c == U'～') {
    const std::size_t k = j + utf8_len(s, j);
    const auto d = read_number(s, k);
    if (d && num.value <= 31 && is_day_suffix(cp_at(s, d->end)))
      return marked(b, d->end + utf8_len(s, d->end), Status::Range);
    return std::nullopt;
  }

  if (c == U'日' || c == U'号') {
    // 一日三餐, 三日 are counts; Chinese single digits count as a day only with 号.
    if (!num.ascii && c == U'日' && num.value < 10) return std::nullopt;
    const std::size_t e = j + utf8_len(s, j);
    if (c == U'号' && starts_with_any(s.substr(e), kPlaces)) return std::nullopt;
    return bare_day(s, b, e, num.value, today);
  }

  if (num.ascii && (c == '.' || c == '/' || c == '-')) {
    const auto d = read_number(s, j + 1);
    if (!d || !d->ascii || d->digits > 2) return std::nullopt;
    const std::size_t e = d->end;
    // 1-3号: days of one month, not January 3rd.
    if (c == '-' && is_day_suffix(cp_at(s, e)) && num.value <= 31)
      return marked(b, e + utf8_len(s, e), Status::Range);
    // 11.20-11.22, 11.20~22: a range of days.
    if (e + 1 < s.size() && (s[e] == '-' || s[e] == '~') && is_ascii_digit(s[e + 1]) &&
        num.value <= 12 && d->value >= 1 && d->value <= 31) {
      std::size_t k = e + 1;
      while (k < s.size() && (is_ascii_digit(s[k]) || s[k] == '.' || s[k] == '/')) ++k;
      return marked(b, k, Status::Range);
    }
    if (e < s.size()) {
      const char n = s[e];
      if (is_ascii_alnum(static_cast<unsigned char>(n)) || n == '.' || n == '/' || n == '-' ||
          n == '%' || n == ':')
        return std::nullopt;
    }
    if (unit_follows(s, e) || measured_before(s, b)) return std::nullopt;
    if (num.value > 12 || d->value < 1 || d->value > 31) return std::nullopt;
    auto t = month_day(b, e, std::nullopt, num.value, d->value, today);
    if (t.status == Status::Invalid) return std::nullopt;  // 2.30 is a time or a price
    return t;
  }
  return std::nullopt;
}

std::optional<DateToken> relative_at(std::string_view s, std::size_t i, Date today) {
  const std::string_view rest = s.substr(i);
  for (const auto& r : kRelative) {
    if (!has_prefix(rest, r.word)) continue;
    if ((r.word == "前天" || r.word == "后天" || r.word == "前日" || r.word == "前儿") &&
        ends_with_any(s.substr(0, i), kBeforeAfterWords))
      return std::nullopt;
    return resolved(i, i + r.word.size(), today.plus_days(r.offset), today);
  }
  return std::nullopt;
}

std::optional<DateToken> weekday_at(std::string_view s, std::size_t i, Date today) {
  const std::string_view rest = s.substr(i);
  for (const auto& p : kWeekPrefixes) {
    if (!has_prefix(rest, p.word)) continue;
    const std::size_t k = i + p.word.size();
    const char32_t c = cp_at(s, k);
    int wd = -1;
    switch (c) {
      case U'一':
        wd = 0;
        break;
      case U'二':
        wd = 1;
        break;
      case U'三':
        wd = 2;
        break;
      case U'四':
        wd = 3;
        break;
      case U'五':
        wd = 4;
        break;
      case U'六':
        wd = 5;
        break;
      case U'日':
      case U'天':
        wd = 6;
        break;
      default:
        break;
    }
    if (wd < 0) return std::nullopt;
    const std::size_t e = k + utf8_len(s, k);
    const char32_t after = cp_at(s, e);
    if (after == U'次' || after == U'个') return std::nullopt;
    if (p.week == Week::Recent && ends_with_any(s.substr(0, i), kNotBareWeek)) return std::nullopt;
    const Date monday = today.plus_days(-weekday(today));
    Date d = monday.plus_days(wd);
    switch (p.week) {
      case Week::TwoBack:
        d = d.plus_days(-14);
        break;
      case Week::Last:
        d = d.plus_days(-7);
        break;
      case Week::Next:
        d = d.plus_days(7);
        break;
      case Week::This:
        break;
      case Week::Recent:
        if (d > today) d = d.plus_days(-7);
        break;
    }
    return resolved(i, e, d, today);
  }
  return std::nullopt;
}

struct MonthWord {
  std::string_view word;
  int offset;  // months back from today's
  bool alone_is_vague;
};

// 上个月15号, 上月底, 本月3日. 本月/这个月 alone is no date (本月第二次走访); 上个月 alone is.
constexpr MonthWord kMonthWords[] = {
    {"上上个月", -2, true}, {"上个月", -1, true}, {"上月", -1, true},
    {"本月", 0, false},     {"这个月", 0, false}, {"这月", 0, false},
};

std::optional<DateToken> month_relative_at(std::string_view s, std::size_t i, Date today) {
  const std::string_view rest = s.substr(i);
  for (const auto& w : kMonthWords) {
    if (!has_prefix(rest, w.word)) continue;
    storage::Month m = storage::Month::of(today);
    for (int k = 0; k < -w.offset; ++k) m = m.prev();
    std::size_t k = i + w.word.size();
    while (k < s.size() && s[k] == ' ') ++k;
    if (const auto d = read_number(s, k); d && (!d->ascii || d->digits <= 2)) {
      const char32_t suffix = cp_at(s, d->end);
      if (!is_day_suffix(suffix)) return std::nullopt;  // 上个月3次
      const std::size_t e = d->end + utf8_len(s, d->end);
      if (suffix == U'号' && starts_with_any(s.substr(e), kPlaces)) return std::nullopt;
      if (auto date = Date::make(m.year, m.month, d->value)) return resolved(i, e, *date, today);
      return invalid(i, e, m.year, m.month, d->value);
    }
    const std::string_view tail = s.substr(k);
    for (std::string_view part : {"底", "末", "初", "中旬", "上旬", "下旬", "中"}) {
      if (has_prefix(tail, part)) return marked(i, k + part.size(), Status::Vague, m.year, m.month);
    }
    if (w.alone_is_vague) return marked(i, i + w.word.size(), Status::Vague, m.year, m.month);
    return std::nullopt;
  }
  return std::nullopt;
}

// Words that place a visit in time without saying the day.
constexpr std::string_view kVagueWords[] = {
    "前几天", "前两天", "前些天",   "前些日子", "前段时间", "前阵子", "这几天", "这两天",
    "那几天", "那天",   "近日",     "日前",     "月初",     "月中",   "月底",   "月末",
    "上旬",   "中旬",   "下旬",     "上周末",   "这周末",   "周末",   "上周",   "上星期",
    "上礼拜", "这周",   "这个星期", "本周",     "年底",     "年初",   "过几天", "改天",
};

constexpr CharSet kVagueFirst = CharSet::first_chars_of(kVagueWords);

// Several days joined: 12月1日至3日, 周一到周三, 11月30日、12月1日, 1号和3号, 昨天和今天. Returns
// the end of the range (0 when no other day follows `e`).
std::size_t range_follows(std::string_view s, std::size_t e, Date today) {
  while (e < s.size() && s[e] == ' ') ++e;
  if (e >= s.size()) return 0;
  const char32_t mark = utf8_at(s, e);
  // 和/与/及/跟 join two days as well as a day and a person (今天和村干部一起): only a day
  // written right after makes it several days.
  const bool joiner = mark == U'和' || mark == U'与' || mark == U'及' || mark == U'跟';
  if (!is_range_mark(mark) && !joiner) return 0;
  std::size_t k = e + utf8_len(s, e);
  while (k < s.size() && s[k] == ' ') ++k;
  if (const auto w = weekday_at(s, k, today)) return w->end;
  if (const auto r = relative_at(s, k, today)) return r->end;
  const auto n = read_number(s, k);
  if (!n) return 0;
  const char32_t c = cp_at(s, n->end);
  if (!is_day_suffix(c) && c != U'月' && !(n->ascii && (c == '.' || c == '/'))) return 0;
  // The rest of the second day: 3日, 12月3日, 11.30.
  std::size_t end = n->end;
  while (end < s.size() && (is_ascii_digit(static_cast<unsigned char>(s[end])) || s[end] == '.' ||
                            s[end] == '/' || is_cn_numeral(utf8_at(s, end)) ||
                            utf8_at(s, end) == U'月' || is_day_suffix(utf8_at(s, end))))
    end += utf8_len(s, end);
  return end;
}

// First characters of kRelative and kWeekPrefixes; a cheap filter before comparing words.
bool starts_relative_or_week(char32_t c) {
  switch (c) {
    case U'大':
    case U'前':
    case U'昨':
    case U'今':
    case U'明':
    case U'后':
    case U'上':
    case U'本':
    case U'这':
    case U'下':
    case U'星':
    case U'礼':
    case U'周':
      return true;
    default:
      return false;
  }
}

bool blocks_ascii_number(char32_t before) {
  return is_ascii_alnum(before) || before == '.' || before == '/' || before == '-' ||
         before == ':' || before == '+' || before == '#';
}

bool blocks_cn_number(char32_t before) {
  return before == U'第' || before == U'每' || before == U'初' || before == U'周' ||
         before == U'期' || before == U'拜' || before == U'星';
}

}  // namespace

int weekday(Date d) {
  const int64_t w = (d.days() + 3) % 7;  // 1970-01-01 was a Thursday
  return static_cast<int>(w < 0 ? w + 7 : w);
}

std::optional<DateToken> find_date(std::string_view s, Date today) {
  std::optional<DateToken> vague;
  // An exact date, unless more days follow it (a range).
  const auto exact = [&](DateToken t) {
    if (t.status != Status::Range) {
      if (const std::size_t end = range_follows(s, t.end, today)) {
        t.status = Status::Range;
        t.end = end;
      }
    }
    return t;
  };
  std::size_t i = 0;
  while (i < s.size()) {
    const char32_t c = utf8_at(s, i);
    if (starts_relative_or_week(c)) {
      if (auto t = relative_at(s, i, today)) return exact(*t);
      if (auto t = weekday_at(s, i, today)) return exact(*t);
      if (auto t = month_relative_at(s, i, today)) {
        if (t->status != Status::Vague) return exact(*t);
        if (!vague) vague = t;
        i = t->end;
        continue;
      }
    }
    if (!vague && kVagueFirst.contains(c)) {
      for (std::string_view w : kVagueWords) {
        if (has_prefix(s.substr(i), w)) {
          vague = marked(i, i + w.size(), Status::Vague);
          break;
        }
      }
    }
    const bool ascii = is_ascii_digit(c);
    if (ascii || is_cn_numeral(c)) {
      const char32_t before = cp_before(s, i);
      // 日期:12月2日 is a date; 10:30 is a time.
      const bool label_colon =
          before == ':' && i >= 2 && !is_ascii_digit(static_cast<unsigned char>(s[i - 2]));
      const bool blocked =
          ascii ? blocks_ascii_number(before) && !label_colon : blocks_cn_number(before);
      const auto num = blocked ? std::nullopt : read_number(s, i);
      if (num) {
        if (auto t = numeric_date(s, i, *num, today)) {
          if (t->status != Status::Vague) return exact(*t);
          if (!vague) vague = t;
        }
      }
      // Skip the whole run so that its tail is not read as a number of its own.
      while (i < s.size()) {
        const char32_t r = utf8_at(s, i);
        if (ascii ? !is_ascii_digit(r) : !is_cn_numeral(r)) break;
        i += utf8_len(s, i);
      }
      continue;
    }
    i += utf8_len(s, i);
  }
  return vague;
}

}  // namespace handlers
