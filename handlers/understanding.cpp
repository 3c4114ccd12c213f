#include "handlers/understanding.h"

#include "handlers/templates.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "handlers/chinese_date.h"
#include "handlers/keywords.h"
#include "handlers/text.h"

namespace handlers {
namespace {

using storage::Date;
using storage::Ledger;
using storage::Mode;
using storage::Pairing;

template <std::size_t N>
bool starts_with_any(std::string_view s, const std::string_view (&words)[N]) {
  return std::any_of(std::begin(words), std::end(words),
                     [&](std::string_view w) { return s.starts_with(w); });
}

// The longest of `words` that `s` starts with ("" when none).
template <std::size_t N>
std::string_view longest_prefix(std::string_view s, const std::string_view (&words)[N]) {
  std::string_view best;
  for (std::string_view w : words)
    if (w.size() > best.size() && s.starts_with(w)) best = w;
  return best;
}

// The longest of `words` that `s` ends with ("" when none).
template <std::size_t N>
std::string_view longest_suffix(std::string_view s, const std::string_view (&words)[N]) {
  std::string_view best;
  for (std::string_view w : words)
    if (w.size() > best.size() && s.ends_with(w)) best = w;
  return best;
}

// Whether the character at s[i] is one of `chars` (a string of Chinese characters).
bool is_one_of(std::string_view chars, std::string_view s, std::size_t i) {
  const std::size_t len = utf8_len(s, i);
  return len > 1 && chars.find(s.substr(i, len)) != std::string_view::npos;
}

// ---------------------------------------------------------------------------------------------
// Commands

struct CommandWord {
  std::string_view word;
  Command command;
  bool takes_argument;
};

constexpr CommandWord kCommands[] = {
    {"帮助", Command::Help, false},          {"help", Command::Help, false},
    {"我的结对", Command::MyPairings, true}, {"本月进度", Command::Progress, true},
    {"进度", Command::Progress, true},       {"撤销", Command::Undo, true},
    {"撤回", Command::Undo, true},           {"通报", Command::Bulletin, true},
    {"点评", Command::Review, true},
};

bool equals_ascii_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && find_ascii_ci(a, b) == 0;
}

std::optional<CommandMsg> parse_command(std::string_view text) {
  if (text.empty()) return std::nullopt;
  bool only_question_marks = true;
  for (std::size_t i = 0; i < text.size(); i += utf8_len(text, i)) {
    const char32_t c = utf8_at(text, i);
    if (c != '?' && c != U'？') only_question_marks = false;
  }
  if (only_question_marks) return CommandMsg{Command::Help, {}};

  std::string_view t = text;
  while (!t.empty()) {
    const std::size_t p = utf8_prev(t, t.size());
    const char32_t c = utf8_at(t, p);
    if (c != '.' && c != U'。' && c != '!' && c != U'！' && c != '?' && c != U'？' && c != '~' &&
        c != ' ')
      break;
    t = t.substr(0, p);
  }
  std::size_t split = t.size();
  for (std::size_t i = 0; i < t.size(); i += utf8_len(t, i)) {
    const char32_t c = utf8_at(t, i);
    if (c == ' ' || c == ':' || c == U'：') {
      split = i;
      break;
    }
  }
  const std::string_view head = t.substr(0, split);
  const std::string_view argument = trim_separators(t.substr(split));
  for (const auto& c : kCommands) {
    if (!equals_ascii_ci(head, c.word)) continue;
    if (!argument.empty() && !c.takes_argument) return std::nullopt;
    return CommandMsg{c.command, std::string(argument)};
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Names
//
// A pairing is named by its person or household head appearing anywhere in the text, or by its
// household number (H0012, any case). Rules, in order:
//  1. An appearance directly followed by 村/镇/乡/屯 is a place, not the person.
//  2. An appearance followed by one more Han character and then 户/家 belongs to someone else
//     ("王秀英华家" is not 王秀英), unless that character makes a common word (老家, 在家 …).
//  3. An appearance inside a longer appearance of another name is dropped (刘洋 in 刘洋洋).
//  4. Each remaining appearance stands for the pairings with that name; the pairing meant is
//     the one all appearances agree on. Several left over (two 王秀英) are narrowed to those
//     whose village or household number is written in the text.
//  5. Then a pairing whose person (帮扶对象) was named wins over pairings named only through
//     their household head: a doctor serving 王秀英 and her husband in the household she heads
//     means 王秀英 by "王秀英".
// With no appearance, an explicitly marked name (X户, X家, 户主X, 学生X, 患者X, 病人X, 看望X)
// that starts with a common surname is someone the sender is not paired with; a weekday word
// (周四家访) is a date, never a name.

constexpr std::string_view kPlaceSuffixes[] = {"村", "镇", "乡", "屯"};

// X in "X家"/"X户" that makes an ordinary word, so a name before it is still the name.
constexpr std::string_view kHomeWordHeads =
    "老在回到一全娘婆人大我他她你们的住农搬离成安养专国管这那每各该入贫困保里";

constexpr std::string_view kSurnames =
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺"
    "顾毛郝龚邵万钱严覃武戴莫孔汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿兰"
    "焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕季裴霍涂成苗谷盛曲翁冉骆蓝游辛靳柴蒙鲍华喻祁蒲滕屈"
    "饶牟艾尤阳穆农卓古吉缪简项芦麦褚娄窦戚岑景宫费卜冷晏席卫米柏宗瞿桂佟臧闵苟邬边卞姬仇栾"
    "隋刁沙荣巫寇桑郎甄丛仲虞敖巩佘池查苑迟邝";

// Characters that do not occur inside a name in check-ins: particles, verbs of visiting,
// place and date words.
constexpr std::string_view kNotInName =
    "了到去在的和与及给帮为访望村镇乡户家今昨前天日号月年说是有也都又再把被让对们这那个位名里上"
    "下同送看问时已并";

constexpr std::string_view kHonorifics[] = {"大爷", "大娘", "大妈", "大伯", "大叔", "大哥",
                                            "大姐", "奶奶", "爷爷", "老人", "阿姨", "婆婆",
                                            "叔叔", "婶婶", "老师", "同学", "医生", "某"};

struct Occurrence {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t pairing = 0;
  bool by_id = false;
  bool by_person = false;  // the pairing's 帮扶对象, not only its household head
};

bool is_someone_else(std::string_view text, std::size_t e) {
  if (e >= text.size()) return false;
  if (starts_with_any(text.substr(e), kPlaceSuffixes)) return true;
  const char32_t c1 = utf8_at(text, e);
  if (!is_han(c1) || c1 == U'户' || c1 == U'家' || is_one_of(kHomeWordHeads, text, e)) return false;
  const std::size_t e2 = e + utf8_len(text, e);
  if (e2 >= text.size()) return false;
  const char32_t c2 = utf8_at(text, e2);
  return c2 == U'户' || c2 == U'家';
}

bool id_boundary(std::string_view text, std::size_t b, std::size_t e) {
  const bool left = b == 0 || !is_ascii_alnum(static_cast<unsigned char>(text[b - 1]));
  const bool right = e >= text.size() || !is_ascii_alnum(static_cast<unsigned char>(text[e]));
  return left && right;
}

struct Occurrences {
  std::vector<Occurrence> kept;   // sorted by span
  std::string_view someone_else;  // the first name rejected by rule 2 ("王秀英华")
};

Occurrences find_occurrences(std::string_view text, const std::vector<Pairing>& pairings) {
  Occurrences out;
  std::vector<Occurrence> all;
  for (std::size_t i = 0; i < pairings.size(); ++i) {
    const Pairing& p = pairings[i];
    const auto add_name = [&](std::string_view name, bool by_person) {
      if (code_points(name) < 2) return;
      for (std::size_t pos = text.find(name); pos != std::string_view::npos;
           pos = text.find(name, pos + 1)) {
        const std::size_t e = pos + name.size();
        if (!is_someone_else(text, e)) {
          all.push_back({pos, e, i, false, by_person});
        } else if (out.someone_else.empty()) {
          out.someone_else = text.substr(pos, e + utf8_len(text, e) - pos);
        }
      }
    };
    add_name(p.person, true);
    if (p.household_head != p.person) add_name(p.household_head, false);
    if (p.household_id.size() >= 2) {
      for (std::size_t pos = find_ascii_ci(text, p.household_id); pos != std::string_view::npos;
           pos = find_ascii_ci(text, p.household_id, pos + 1)) {
        if (id_boundary(text, pos, pos + p.household_id.size()))
          all.push_back({pos, pos + p.household_id.size(), i, true, false});
      }
    }
  }
  out.kept.reserve(all.size());
  for (const Occurrence& a : all) {
    const bool inside_longer = std::any_of(all.begin(), all.end(), [&](const Occurrence& b) {
      return b.begin <= a.begin && a.end <= b.end && b.end - b.begin > a.end - a.begin;
    });
    if (!inside_longer) out.kept.push_back(a);
  }
  std::sort(out.kept.begin(), out.kept.end(), [](const Occurrence& x, const Occurrence& y) {
    return std::tie(x.begin, x.end, x.pairing) < std::tie(y.begin, y.end, y.pairing);
  });
  return out;
}

// The pairings every appearance agrees on (rule 4); `occ` sorted by span.
std::vector<std::size_t> agreed_pairings(const std::vector<Occurrence>& occ) {
  std::vector<std::size_t> agreed;
  bool first = true;
  for (std::size_t g = 0; g < occ.size();) {
    std::size_t h = g;
    std::vector<std::size_t> here;
    while (h < occ.size() && occ[h].begin == occ[g].begin && occ[h].end == occ[g].end)
      here.push_back(occ[h++].pairing);
    if (first) {
      agreed = here;
      first = false;
    } else {
      std::erase_if(agreed, [&](std::size_t p) {
        return std::find(here.begin(), here.end(), p) == here.end();
      });
    }
    g = h;
  }
  std::sort(agreed.begin(), agreed.end());
  agreed.erase(std::unique(agreed.begin(), agreed.end()), agreed.end());
  return agreed;
}

// "张庄村" → "张庄": people often leave the suffix out.
std::string_view village_stem(std::string_view village) {
  for (std::string_view suffix : {"社区", "村", "居委会"}) {
    if (village.ends_with(suffix) && code_points(village) - code_points(suffix) >= 2)
      return village.substr(0, village.size() - suffix.size());
  }
  return village;
}

bool mentions_place_or_id(std::string_view text, const Pairing& p) {
  const std::string_view stem = village_stem(p.village);
  return (!stem.empty() && text.find(stem) != std::string_view::npos) ||
         (p.household_id.size() >= 2 &&
          find_ascii_ci(text, p.household_id) != std::string_view::npos);
}

// The pairings the text can mean by its appearances (rules 4 and 5), in roster order; empty
// when the appearances disagree (two people in one message). `occ` is non-empty.
std::vector<std::size_t> candidates(std::string_view text, const std::vector<Occurrence>& occ,
                                    const std::vector<Pairing>& pairings) {
  std::vector<std::size_t> agreed = agreed_pairings(occ);
  const auto narrow = [&](auto keep) {
    std::vector<std::size_t> kept;
    for (std::size_t i : agreed)
      if (keep(i)) kept.push_back(i);
    if (!kept.empty()) agreed = std::move(kept);
  };
  if (agreed.size() > 1)
    narrow([&](std::size_t i) { return mentions_place_or_id(text, pairings[i]); });
  if (agreed.size() > 1) {
    narrow([&](std::size_t i) {
      return std::any_of(occ.begin(), occ.end(),
                         [&](const Occurrence& o) { return o.pairing == i && o.by_person; });
    });
  }
  return agreed;
}

bool surname_at(std::string_view s, std::size_t i) {
  return kSurnames.find(s.substr(i, utf8_len(s, i))) != std::string_view::npos;
}

bool name_char_at(std::string_view s, std::size_t i) {
  const char32_t c = utf8_at(s, i);
  return is_han(c) && !is_one_of(kNotInName, s, i);
}

// Words that start with a surname character but name a relative or a thing.
constexpr std::string_view kNotNames[] = {"孙子", "孙女", "孙辈", "高中", "房子", "车子",
                                          "叶子", "金子", "高龄", "程序", "曾孙"};

// 周一 … 周日, 周天 (and 星期X, 礼拜X, whose first characters are no surnames): a date.
bool is_weekday_word(std::string_view w) {
  return w.size() == 6 && w.starts_with("周") && is_one_of("一二三四五六日天", w, 3);
}

bool plausible_name(std::string_view s, std::size_t b, std::size_t e) {
  if (!surname_at(s, b)) return false;
  const std::string_view whole = s.substr(b, e - b);
  if (std::find(std::begin(kNotNames), std::end(kNotNames), whole) != std::end(kNotNames) ||
      is_weekday_word(whole))
    return false;
  const std::string_view given = s.substr(b + utf8_len(s, b), e - b - utf8_len(s, b));
  return !starts_with_any(given, kHonorifics) && given.find("某") == std::string_view::npos;
}

bool name_ends_at(std::string_view s, std::size_t i) {
  return i >= s.size() || !name_char_at(s, i) || keyword_at(s, i) != nullptr;
}

// A name written after a marker (户主李德明): two or three name characters followed by
// something that cannot continue a name.
std::optional<std::string_view> name_after(std::string_view s, std::size_t k) {
  std::size_t ends[3];
  std::size_t e = k;
  int n = 0;
  while (n < 3 && e < s.size() && name_char_at(s, e)) {
    e += utf8_len(s, e);
    ends[n++] = e;
  }
  for (int len = n; len >= 2; --len) {
    if (name_ends_at(s, ends[len - 1]) && plausible_name(s, k, ends[len - 1]))
      return s.substr(k, ends[len - 1] - k);
  }
  return std::nullopt;
}

// A name written before 户 or 家 at byte `m` (孙大海家, 王秀英户).
std::optional<std::string_view> name_before(std::string_view s, std::size_t m) {
  std::size_t starts[3];
  std::size_t b = m;
  int n = 0;
  while (n < 3 && b > 0) {
    const std::size_t p = utf8_prev(s, b);
    if (!name_char_at(s, p)) break;
    starts[n++] = b = p;
  }
  for (int len = n; len >= 2; --len) {
    if (plausible_name(s, starts[len - 1], m))
      return s.substr(starts[len - 1], m - starts[len - 1]);
  }
  return std::nullopt;
}

constexpr std::string_view kNameMarkers[] = {"帮扶对象", "户主", "学生", "患者", "病人"};
constexpr std::string_view kSeeMarkers[] = {"看望", "探望"};

std::optional<std::string_view> find_unpaired_name(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); i += utf8_len(s, i)) {
    const std::string_view rest = s.substr(i);
    std::string_view marker = longest_prefix(rest, kNameMarkers);
    if (marker.empty()) marker = longest_prefix(rest, kSeeMarkers);
    if (!marker.empty()) {
      std::size_t k = i + marker.size();
      if (s.substr(k).starts_with("了")) k += 3;
      if (k < s.size() && (s[k] == ' ' || s[k] == ':')) ++k;
      if (s.substr(k).starts_with("：")) k += 3;
      if (auto name = name_after(s, k)) return name;
    }
    const char32_t c = utf8_at(s, i);
    // 入户 is a way of visiting (周四入户走访), not somebody's household.
    if ((c == U'户' && !s.substr(0, i).ends_with("入")) || c == U'家') {
      if (auto name = name_before(s, i)) return name;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The note: the text without the leading command/mode words, the phrase naming the pairing
// (with its marker, village, the verb before it and the 户/家 after it) and the date.

constexpr std::string_view kPrefixWords[] = {
    "打卡", "入户走访", "走访",     "入户",     "看望",     "探望",     "慰问",     "家访",
    "校访", "上门服务", "入户服务", "上门",     "电话随访", "电话联系", "电话回访", "电话慰问",
    "电话", "电联",     "视频通话", "微信联系", "随访",     "回访",
};

constexpr std::string_view kVerbsBeforeName[] = {
    "走访了",   "看望了",   "探望了",   "慰问了", "家访了", "入户走访", "上门服务",
    "电话随访", "电话联系", "视频通话", "走访",   "看望",   "探望",     "慰问",
    "家访",     "校访",     "入户",     "上门",   "去了",   "到了",     "来到",
    "电话",     "去",       "到",       "给",
};
constexpr std::string_view kGoingVerbs[] = {"去了", "到了", "来到", "去", "到"};
constexpr std::string_view kHomeSuffixes[] = {"家里", "家中", "户", "家"};
constexpr std::string_view kNameSuffixes[] = {"家里", "家中", "同学", "户", "家"};

std::size_t skip_separators(std::string_view s, std::size_t p) {
  while (p < s.size() && is_separator(utf8_at(s, p))) p += utf8_len(s, p);
  return p;
}

// End of the leading words that only say "this is a check-in" (打卡：, #家访, 走访 …).
std::size_t prefix_end(std::string_view s) {
  std::size_t p = 0;
  for (;;) {
    p = skip_separators(s, p);
    if (p < s.size() && s[p] == '#') {
      std::size_t q = p + 1;
      while (q < s.size() && s[q] != '#' && !is_separator(utf8_at(s, q))) q += utf8_len(s, q);
      if (q < s.size() && s[q] == '#') ++q;
      p = q;
      continue;
    }
    const std::string_view word = longest_prefix(s.substr(p), kPrefixWords);
    if (word.empty()) break;
    const std::size_t q = p + word.size();
    if (q < s.size() && !is_separator(utf8_at(s, q)) &&
        longest_prefix(s.substr(q), kPrefixWords).empty())
      break;
    p = q;
  }
  return p;
}

struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
};

struct NamePhrase {
  Span span;
  bool going_home = false;  // 去了陈玉兰家, 到王秀英家里: a visit
};

NamePhrase name_phrase(std::string_view s, const Occurrence& o, const Pairing& p) {
  std::size_t b = o.begin, e = o.end;
  std::string_view suffix;
  if (!o.by_id) {
    suffix = longest_prefix(s.substr(e), kNameSuffixes);
    const std::string_view after = s.substr(e + suffix.size());
    if ((suffix == "家" &&
         (after.starts_with("访") || after.starts_with("长") || after.starts_with("属") ||
          after.starts_with("人") || after.starts_with("庭"))) ||
        (suffix == "户" && after.starts_with("主")))
      suffix = {};
    e += suffix.size();
  }
  // Eats `word` ending at b, optionally across one space or colon when `gap` allows.
  const auto eat = [&](auto pick, bool gap) -> std::string_view {
    std::size_t at = b;
    std::string_view w = pick(s.substr(0, at));
    if (w.empty() && gap && at > 0 && (s[at - 1] == ' ' || s[at - 1] == ':')) {
      --at;
      w = pick(s.substr(0, at));
    }
    if (w.empty() && gap && s.substr(0, b).ends_with("：")) {
      at = b - 3;
      w = pick(s.substr(0, at));
    }
    if (!w.empty()) b = at - w.size();
    return w;
  };
  const auto markers = [](std::string_view h) { return longest_suffix(h, kNameMarkers); };
  const auto village = [&](std::string_view h) -> std::string_view {
    if (!p.village.empty() && h.ends_with(p.village)) return p.village;
    const std::string_view stem = village_stem(p.village);
    if (!stem.empty() && h.ends_with(stem)) return stem;
    return {};
  };
  const auto verbs = [](std::string_view h) { return longest_suffix(h, kVerbsBeforeName); };

  const bool had_marker = !eat(markers, true).empty();
  if (!eat(village, true).empty() && !had_marker) eat(markers, true);
  const std::string_view verb = eat(verbs, true);

  NamePhrase out;
  out.span = {b, e};
  out.going_home =
      !suffix.empty() &&
      std::find(std::begin(kHomeSuffixes), std::end(kHomeSuffixes), suffix) !=
          std::end(kHomeSuffixes) &&
      std::find(std::begin(kGoingVerbs), std::end(kGoingVerbs), verb) != std::end(kGoingVerbs);
  return out;
}

// Joins `s` without `cut`, then reduces each run of separators to one (the first punctuation
// mark in it, else a space) and trims separators at both ends.
std::string text_without(std::string_view s, std::vector<Span> cut) {
  std::sort(cut.begin(), cut.end(), [](Span x, Span y) { return x.begin < y.begin; });
  std::string joined;
  joined.reserve(s.size());
  std::size_t at = 0;
  for (const Span& c : cut) {
    if (c.begin > at) joined.append(s, at, c.begin - at);
    at = std::max(at, c.end);
  }
  if (at < s.size()) joined.append(s, at);

  const std::string_view j = trim_separators(joined);
  std::string out;
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size();) {
    if (!is_separator(utf8_at(j, i))) {
      out.append(j, i, utf8_len(j, i));
      i += utf8_len(j, i);
      continue;
    }
    std::string_view mark;
    for (; i < j.size() && is_separator(utf8_at(j, i)); i += utf8_len(j, i)) {
      if (mark.empty() && j[i] != ' ') mark = j.substr(i, utf8_len(j, i));
    }
    out.append(mark.empty() ? std::string_view(" ") : mark);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Problems: the note is cut into clauses at ，。；,; ！!？? and spaces; a clause holding a
// problem word (应享未享, 未落实, 困难, 问题, 需要, 急需, 缺 …, but not 困难户, 没问题, 不缺) is
// one problem, given as the clause without a leading 发现/了解到/反映/反馈/得知/存在.
// Deterministic.

constexpr std::string_view kProblemLeadIns[] = {"发现", "经了解", "了解到", "反映",
                                                "反馈", "得知",   "存在"};

bool is_clause_break(char32_t c) {
  return is_separator(c) && c != U'、' && c != ':' && c != U'：' && c != '.';
}

std::vector<std::string> find_problems(std::string_view note) {
  std::vector<std::string> problems;
  std::size_t i = 0;
  while (i < note.size()) {
    std::size_t e = i;
    while (e < note.size() && !is_clause_break(utf8_at(note, e))) e += utf8_len(note, e);
    std::string_view clause = note.substr(i, e - i);
    bool problem = false;
    for (std::size_t k = 0; k < clause.size();) {
      if (const Keyword* kw = keyword_at(clause, k)) {
        problem = problem || kw->kind == KeywordKind::Problem;
        k += kw->text.size();
      } else {
        k += utf8_len(clause, k);
      }
    }
    if (problem) {
      std::string_view phrase = clause;
      for (std::string_view lead = longest_prefix(phrase, kProblemLeadIns); !lead.empty();
           lead = longest_prefix(phrase, kProblemLeadIns))
        phrase.remove_prefix(lead.size());
      phrase = trim_separators(phrase);
      if (phrase.empty()) phrase = clause;
      if (std::find(problems.begin(), problems.end(), phrase) == problems.end())
        problems.emplace_back(phrase);
    }
    i = e < note.size() ? e + utf8_len(note, e) : e;
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Keywords of the whole message (names masked out, so 李中秋 is no festival).

struct Findings {
  bool visit = false, home = false, school = false, service = false, action = false, phone = false,
       signal = false, question = false;
  unsigned occasions = 0;  // bit i: kOccasionCodes[i]
  unsigned policies = 0;   // bit i: kPolicyCodes[i]

  bool any_mode_word() const {
    return visit || home || school || service || action || phone || signal;
  }
};

Findings scan(std::string_view s) {
  Findings f;
  for (std::size_t i = 0; i < s.size();) {
    const Keyword* kw = keyword_at(s, i);
    if (!kw) {
      i += utf8_len(s, i);
      continue;
    }
    switch (kw->kind) {
      case KeywordKind::Visit:
        f.visit = true;
        break;
      case KeywordKind::HomeVisit:
        f.home = true;
        break;
      case KeywordKind::SchoolVisit:
        f.school = true;
        break;
      case KeywordKind::Service:
        f.service = true;
        break;
      case KeywordKind::ServiceAction:
        f.action = true;
        break;
      case KeywordKind::Phone:
        f.phone = true;
        break;
      case KeywordKind::Signal:
        f.signal = true;
        break;
      case KeywordKind::Question:
        f.question = true;
        break;
      case KeywordKind::Occasion:
        f.occasions |= 1u << kw->code;
        break;
      case KeywordKind::Policy:
        f.policies |= 1u << kw->code;
        break;
      case KeywordKind::Ignore:
      case KeywordKind::Problem:
        break;
    }
    i += kw->text.size();
  }
  return f;
}

// Explicit in-person words win over phone words (a visit that also phoned a relative is a
// visit); a doctor's actions mean service only when nothing else is said; else the ledger's.
Mode choose_mode(const Findings& f, bool going_home, Ledger ledger) {
  if (f.service) return Mode::Service;
  if (f.school) return Mode::SchoolVisit;
  if (f.home) return Mode::HomeVisit;
  if (f.visit || going_home) return Mode::Visit;
  if (f.phone) return Mode::Phone;
  if (f.action) return Mode::Service;
  switch (ledger) {
    case Ledger::Health:
      return Mode::Service;
    case Ledger::Education:
      return Mode::HomeVisit;
    case Ledger::Cadre:
      return Mode::Visit;
  }
  return Mode::Visit;
}

// ---------------------------------------------------------------------------------------------
// Errors

ParseError error(std::string code, std::string message, std::vector<std::string> suggestions = {}) {
  return ParseError{std::move(code), std::move(message), std::move(suggestions)};
}

std::string label(const Pairing& p) {
  std::string out = p.display_name();
  out += "（";
  out += p.village;
  if (!p.village.empty() && !p.household_id.empty()) out += ' ';
  out += p.household_id;
  out += "）";
  return out;
}

// How to write a check-in for `p`, in the words of its ledger; `place` is put before the name.
std::string example_for(const Pairing& p, std::string_view place = {}) {
  std::string out;
  switch (p.ledger) {
    case Ledger::Cadre:
      out = "走访 ";
      break;
    case Ledger::Health:
      out = "上门服务 ";
      break;
    case Ledger::Education:
      out = "家访 学生";
      break;
  }
  out += place;
  out += p.display_name();
  if (p.ledger == Ledger::Cadre) out += "户";
  out += " 今天";
  return out;
}

// Whether `text` names pairings[target] and no other (rules 1-5).
bool names_only(std::string_view text, const std::vector<Pairing>& pairings, std::size_t target) {
  const std::vector<Occurrence> occ = find_occurrences(text, pairings).kept;
  if (occ.empty()) return false;
  const std::vector<std::size_t> c = candidates(text, occ, pairings);
  return c.size() == 1 && c.front() == target;
}

// A check-in for the first of `among` that can be named alone, tried by name, then with its
// village, then with its household number; checked against the parser itself so that an
// error never suggests text that would be ambiguous again. nullopt when none can be.
std::optional<std::string> first_working_example(const std::vector<Pairing>& pairings,
                                                 const std::vector<std::size_t>& among) {
  for (std::size_t i : among) {
    const Pairing& p = pairings[i];
    const std::string places[] = {"", p.village,
                                  p.household_id.empty() ? std::string() : p.household_id + " "};
    for (std::size_t k = 0; k < std::size(places); ++k) {
      if (k > 0 && places[k].empty()) continue;
      std::string example = example_for(p, places[k]);
      if (names_only(example, pairings, i)) return example;
    }
  }
  return std::nullopt;
}

std::vector<std::string> closest_names(std::string_view name, const std::vector<Pairing>& ps) {
  struct Scored {
    std::string name;
    int shared, distance;
    std::size_t order;
  };
  std::vector<Scored> scored;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const std::string& n = ps[i].display_name();
    if (std::any_of(scored.begin(), scored.end(), [&](const Scored& s) { return s.name == n; }))
      continue;
    scored.push_back({n, shared_chars(name, n), edit_distance(name, n), i});
  }
  std::sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
    return std::tie(b.shared, a.distance, a.order) < std::tie(a.shared, b.distance, b.order);
  });
  std::vector<std::string> out;
  for (auto& s : scored) out.push_back(std::move(s.name));
  return out;
}

std::vector<std::string> distinct_names(const std::vector<Pairing>& ps) {
  std::vector<std::string> out;
  for (const Pairing& p : ps)
    if (std::find(out.begin(), out.end(), p.display_name()) == out.end())
      out.push_back(p.display_name());
  return out;
}

const std::vector<std::string>& usage_examples() {
  static const std::vector<std::string> kExamples = {
      "走访 王某某户 今天 送去棉被",
      "#家访 学生刘某 11.20 辅导数学",
      "电话随访 赵某某 昨天",
      "撤销 / 我的结对 / 本月进度 / 帮助",
  };
  return kExamples;
}

ParseError not_understood() {
  return error("not_understood",
               "没看懂这条消息。打卡请写明对象、日期和做了什么，如：走访 王某某户 今天 "
               "送去棉被；发「帮助」查看全部用法。",
               usage_examples());
}

ParseError date_error(const DateToken& t) {
  if (t.status == DateToken::Status::Future) {
    return error("future_date", std::to_string(t.month) + "月" + std::to_string(t.day) +
                                    "日还没到，只能记已经走访过的日期。请写实际走访的日期，"
                                    "如：今天、昨天。");
  }
  const std::string written = std::to_string(t.month) + "月" + std::to_string(t.day) + "日";
  if (t.month < 1 || t.month > 12)
    return error("invalid_date", "日期「" + written + "」不对，月份只有1到12月，请核对后重发。");
  return error("invalid_date", "没有" + std::to_string(t.year) + "年" + written + "这一天（" +
                                   std::to_string(t.year) + "年" + std::to_string(t.month) +
                                   "月只有" +
                                   std::to_string(storage::days_in_month(t.year, t.month)) +
                                   "天），请核对日期后重发。");
}

// ---------------------------------------------------------------------------------------------

Understanding understand_checkin(const std::string& text, const SenderContext& sender, Date today) {
  const std::vector<Pairing>& pairings = sender.pairings;
  const Occurrences found_names = find_occurrences(text, pairings);
  const std::vector<Occurrence>& occ = found_names.kept;

  std::string masked = text;
  for (const Occurrence& o : occ) std::fill(masked.begin() + o.begin, masked.begin() + o.end, ' ');
  const Findings found = scan(masked);
  const std::optional<DateToken> date = find_date(masked, today);
  const std::optional<std::string_view> stranger = !occ.empty() ? std::nullopt
                                                   : !found_names.someone_else.empty()
                                                       ? std::optional(found_names.someone_else)
                                                       : find_unpaired_name(text);

  if (occ.empty() && !date && found.question) return not_understood();
  if (occ.empty() && !stranger && !date && !found.any_mode_word()) return not_understood();

  std::size_t chosen = 0;
  if (!occ.empty()) {
    const std::vector<std::size_t> agreed = candidates(text, occ, pairings);
    if (agreed.empty()) {
      std::vector<std::string> named;
      for (const Occurrence& o : occ) {
        // 王秀英 is the person so named, not every pairing in the household she heads.
        const bool person_here = std::any_of(occ.begin(), occ.end(), [&](const Occurrence& x) {
          return x.begin == o.begin && x.end == o.end && x.by_person;
        });
        if (person_here && !o.by_person) continue;
        std::string l = label(pairings[o.pairing]);
        if (std::find(named.begin(), named.end(), l) == named.end()) named.push_back(std::move(l));
      }
      return error("ambiguous", "一条消息只能记一位结对对象，请分开发送，每条写一位。",
                   std::move(named));
    }
    if (agreed.size() > 1) {
      std::vector<std::string> labels;
      for (std::size_t i : agreed) labels.push_back(label(pairings[i]));
      const Pairing& first = pairings[agreed.front()];
      const bool same_name = std::all_of(agreed.begin(), agreed.end(), [&](std::size_t i) {
        return pairings[i].display_name() == first.display_name();
      });
      const std::string said = same_name
                                   ? first.display_name()
                                   : std::string(std::string_view(text).substr(
                                         occ.front().begin, occ.front().end - occ.front().begin));
      const std::optional<std::string> example = first_working_example(pairings, agreed);
      std::string message =
          same_name ? "你结对的对象里有" + std::to_string(agreed.size()) + "位「" + said + "」，"
                    : "「" + said + "」对应你的" + std::to_string(agreed.size()) + "位结对对象，";
      if (!example) {
        message += "姓名、村名和户编号都相同，无法区分，请联系扶贫办核对名册。";
      } else if (same_name) {
        message += "请加上村名或户编号再发，如：" + *example + "。";
      } else {
        message += "请写明是哪一位，如：" + *example + "。";
      }
      return error("ambiguous", std::move(message), std::move(labels));
    }
    chosen = agreed.front();
  } else if (stranger) {
    return error("not_paired",
                 // Masked: the name may be another helper's beneficiary, and this text is
                 // posted to the group.
                 "你的结对名单里没有「" + mask_name(std::string(*stranger)) +
                     "」。请核对姓名后重发，可参考下面你结对的名字。",
                 closest_names(*stranger, pairings));
  } else if (pairings.empty()) {
    return error("not_paired",
                 "你目前没有在期的结对对象，不能打卡。如结对有变动，请联系扶贫办核对名册。");
  } else if (pairings.size() > 1) {
    std::vector<std::string> names = distinct_names(pairings);
    std::vector<std::size_t> all(pairings.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    const std::optional<std::string> example = first_working_example(pairings, all);
    std::string message = "你有" + std::to_string(pairings.size()) + "位结对对象，请写明走访对象" +
                          (example ? "，如：" + *example + "。" : "。");
    return error("ambiguous", std::move(message), std::move(names));
  }

  if (date && date->status != DateToken::Status::Ok) return date_error(*date);

  const Pairing& p = pairings[chosen];
  std::vector<Span> cut;
  cut.push_back({0, prefix_end(text)});
  bool going_home = false;
  for (const Occurrence& o : occ) {
    if (o.pairing != chosen) continue;
    const NamePhrase phrase = name_phrase(text, o, p);
    cut.push_back(phrase.span);
    going_home = going_home || phrase.going_home;
  }
  if (date) {
    std::size_t b = date->begin;
    if (std::string_view(text).substr(0, b).ends_with("于")) b -= 3;
    cut.push_back({b, date->end});
  }

  Checkin c;
  c.helper_id = sender.helper_id;
  c.pairing_id = p.id;
  c.household_id = p.household_id;
  c.person = p.person;
  c.name = p.display_name();
  c.visit_date = date ? date->date : today;
  c.mode = choose_mode(found, going_home, p.ledger);
  for (std::size_t i = 0; i < kOccasionCodes.size(); ++i)
    if (found.occasions & (1u << i)) c.occasions.emplace_back(kOccasionCodes[i]);
  for (std::size_t i = 0; i < kPolicyCodes.size(); ++i)
    if (found.policies & (1u << i)) c.policies.emplace_back(kPolicyCodes[i]);
  c.note = text_without(text, std::move(cut));
  c.problems = find_problems(c.note);
  return c;
}

}  // namespace

std::string_view command_code(Command c) {
  switch (c) {
    case Command::Help:
      return "help";
    case Command::MyPairings:
      return "my_pairings";
    case Command::Progress:
      return "progress";
    case Command::Undo:
      return "undo";
    case Command::Bulletin:
      return "bulletin";
    case Command::Review:
      return "review";
  }
  return "help";
}

Understanding understand(std::string_view text, const SenderContext& sender, Date today,
                         std::string_view bot_name) {
  const std::string normalized = normalize(text, bot_name);
  if (auto command = parse_command(normalized)) return *command;
  if (!sender.known)
    return error("unknown_sender", "你还不在帮扶名册里，暂时不能打卡。请联系扶贫办把你加入名册。");
  return understand_checkin(normalized, sender, today);
}

std::string to_json(const Understanding& u) {
  nlohmann::ordered_json j;
  if (const auto* c = std::get_if<Checkin>(&u)) {
    j["kind"] = "checkin";
    j["helper_id"] = c->helper_id;
    j["household_id"] = c->household_id;
    j["person"] = c->person.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(c->person);
    j["visit_date"] = c->visit_date.iso();
    j["mode"] = storage::mode_code(c->mode);
    j["occasions"] = c->occasions;
    j["policies"] = c->policies;
    j["problems"] = c->problems;
    j["note"] = c->note;
  } else if (const auto* m = std::get_if<CommandMsg>(&u)) {
    j["kind"] = "command";
    j["command"] = command_code(m->command);
  } else {
    const auto& e = std::get<ParseError>(u);
    j["kind"] = "error";
    j["code"] = e.code;
    j["message"] = e.message;
    j["suggestions"] = e.suggestions;
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace handlers
