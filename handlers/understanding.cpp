#include "handlers/understanding.h"

#include "handlers/templates.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "handlers/chinese_date.h"
#include "handlers/keywords.h"
#include "handlers/labels.h"
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
                     [&](std::string_view w) { return has_prefix(s, w); });
}

// The longest of `words` that `s` starts with ("" when none).
template <std::size_t N>
std::string_view longest_prefix(std::string_view s, const std::string_view (&words)[N]) {
  std::string_view best;
  for (std::string_view w : words)
    if (w.size() > best.size() && has_prefix(s, w)) best = w;
  return best;
}

// The longest of `words` that `s` ends with ("" when none).
template <std::size_t N>
std::string_view longest_suffix(std::string_view s, const std::string_view (&words)[N]) {
  std::string_view best;
  for (std::string_view w : words)
    if (w.size() > best.size() && has_suffix(s, w)) best = w;
  return best;
}

// Whether the character at s[i] is one of `chars` (a string of Chinese characters).
bool is_one_of(std::string_view chars, std::string_view s, std::size_t i) {
  const std::size_t len = utf8_len(s, i);
  return len > 1 && chars.find(s.substr(i, len)) != std::string_view::npos;
}

// ---------------------------------------------------------------------------------------------
// Commands

// Every command and the ways helpers write it: the one table to extend. A row with
// `takes_argument` is a command word that may be followed by a space or colon and an argument
// (撤销 王秀英 12月3日, 通报 2026-11); a row without is a whole phrase, matched after polite
// words (请, 麻烦, 帮我, 一下, 吧, 谢谢), spaces and end punctuation are dropped (撤回刚才那条).
struct CommandPhrase {
  std::string_view text;
  Command command;
  bool takes_argument;
};

constexpr CommandPhrase kCommands[] = {
    {"帮助", Command::Help, false},
    {"help", Command::Help, false},
    {"怎么用", Command::Help, false},
    {"怎么打卡", Command::Help, false},
    {"使用说明", Command::Help, false},
    {"用法", Command::Help, false},
    // "That was wrong", with no word of what to do: the help's 写错了 line says how (撤销, 更正);
    // undoing or correcting on a guess would change the ledger without being asked to.
    {"发错了", Command::Help, false},
    {"写错了", Command::Help, false},
    {"打错了", Command::Help, false},
    {"填错了", Command::Help, false},
    {"刚才发错了", Command::Help, false},
    {"刚才写错了", Command::Help, false},
    {"刚才那条发错了", Command::Help, false},
    {"刚才那条写错了", Command::Help, false},
    {"上一条发错了", Command::Help, false},
    {"上一条写错了", Command::Help, false},
    {"我的结对", Command::MyPairings, true},
    {"我的结对情况", Command::MyPairings, false},
    {"我的结对户", Command::MyPairings, false},
    {"我的结对对象", Command::MyPairings, false},
    {"我的帮扶对象", Command::MyPairings, false},
    {"查看我的结对", Command::MyPairings, false},
    {"查我的结对", Command::MyPairings, false},
    {"查看结对", Command::MyPairings, false},
    {"结对情况", Command::MyPairings, false},
    {"我结对的户", Command::MyPairings, false},
    {"我帮扶的户", Command::MyPairings, false},
    {"本月进度", Command::Progress, true},
    {"进度", Command::Progress, true},
    {"这个月进度", Command::Progress, false},
    {"这月进度", Command::Progress, false},
    {"我的进度", Command::Progress, false},
    {"本月我的进度", Command::Progress, false},
    {"查进度", Command::Progress, false},
    {"查询进度", Command::Progress, false},
    {"进度查询", Command::Progress, false},
    {"看看进度", Command::Progress, false},
    {"本月走访进度", Command::Progress, false},
    {"这个月走访进度", Command::Progress, false},
    {"本月走访情况", Command::Progress, false},
    {"这个月走访情况", Command::Progress, false},
    {"这个月走访了几户", Command::Progress, false},
    {"还有谁没走访", Command::Progress, false},
    {"撤销", Command::Undo, true},
    {"撤回", Command::Undo, true},
    {"撤销上一条", Command::Undo, false},
    {"撤回上一条", Command::Undo, false},
    {"撤销上条", Command::Undo, false},
    {"撤回上条", Command::Undo, false},
    {"撤销刚才那条", Command::Undo, false},
    {"撤回刚才那条", Command::Undo, false},
    {"撤销刚才的", Command::Undo, false},
    {"撤回刚才的", Command::Undo, false},
    {"撤销刚才的打卡", Command::Undo, false},
    {"撤回刚才的打卡", Command::Undo, false},
    {"撤销上一条打卡", Command::Undo, false},
    {"撤回上一条打卡", Command::Undo, false},
    {"刚才那条撤销", Command::Undo, false},
    {"刚才那条撤回", Command::Undo, false},
    {"刚才那条作废", Command::Undo, false},
    {"上一条撤回", Command::Undo, false},
    {"上一条撤销", Command::Undo, false},
    {"上一条作废", Command::Undo, false},
    {"刚才发错了撤回", Command::Undo, false},
    {"刚才发错了撤销", Command::Undo, false},
    {"发错了撤回", Command::Undo, false},
    {"通报", Command::Bulletin, true},
    {"点评", Command::Review, true},
};

constexpr std::string_view kPoliteHeads[] = {"麻烦", "帮我", "帮忙", "请"};
constexpr std::string_view kPoliteTails[] = {"谢谢", "一下", "吧", "呢", "啊"};

constexpr std::string_view kLookHeads[] = {"看看", "看一下", "查看", "查一下", "查查", "我想看看"};

// Commands asked as a question or said loosely, for short messages only (at most 12
// characters, no digits: a date or a household number makes it something else):
//  - undo: an undo word (撤回, 删掉 …) and nothing but fillers (上一条, 刚才, 发错了 …);
//  - progress: a count asked (几户, 几次, 多少) about visits (走, 访, 打卡, 去);
//  - help: 怎么/如何 with 打卡, 写, 发, 用.
constexpr std::string_view kUndoWords[] = {"撤回", "撤销", "删掉", "删除", "作废", "取消"};
constexpr std::string_view kUndoFillers[] = {
    "上一条", "上条", "刚才",   "刚刚", "那条", "这条", "那个", "刚发的", "发的", "打卡",
    "记录",   "消息", "发错了", "错了", "一下", "我",   "的",   "了",     "吧",   "掉"};
constexpr std::string_view kCountWords[] = {"几户", "几次", "几家", "几个", "几回", "多少"};
constexpr std::string_view kVisitStems[] = {"走", "访", "打卡", "去", "跑"};
constexpr std::string_view kHowWords[] = {"怎么", "如何", "怎样"};
constexpr std::string_view kHowTopics[] = {"打卡", "写", "发", "用", "填"};

std::optional<Command> command_in_question(std::string_view phrase) {
  if (code_points(phrase) > 12) return std::nullopt;
  for (char ch : phrase)
    if (ch >= '0' && ch <= '9') return std::nullopt;
  const auto has = [&](const auto& words) {
    return std::any_of(std::begin(words), std::end(words), [&](std::string_view w) {
      return phrase.find(w) != std::string_view::npos;
    });
  };
  if (has(kUndoWords)) {
    std::string rest(phrase);
    for (std::string_view w : kUndoWords)
      for (std::size_t at = rest.find(w); at != std::string::npos; at = rest.find(w))
        rest.erase(at, w.size());
    for (std::string_view w : kUndoFillers)
      for (std::size_t at = rest.find(w); at != std::string::npos; at = rest.find(w))
        rest.erase(at, w.size());
    if (rest.empty()) return Command::Undo;
    return std::nullopt;
  }
  if (has(kCountWords) && has(kVisitStems)) return Command::Progress;
  if (has(kHowWords) && has(kHowTopics)) return Command::Help;
  return std::nullopt;
}

bool equals_ascii_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && find_ascii_ci(a, b) == 0;
}

std::string_view trim_end_marks(std::string_view t) {
  while (!t.empty()) {
    const std::size_t p = utf8_prev(t, t.size());
    const char32_t c = utf8_at(t, p);
    if (c != '.' && c != U'。' && c != '!' && c != U'！' && c != '?' && c != U'？' && c != '~' &&
        c != ' ' && c != U'，' && c != ',')
      break;
    t = t.substr(0, p);
  }
  return t;
}

std::optional<CommandMsg> parse_command(std::string_view text) {
  if (text.empty()) return std::nullopt;
  bool only_question_marks = true;
  for (std::size_t i = 0; i < text.size(); i += utf8_len(text, i)) {
    const char32_t c = utf8_at(text, i);
    if (c != '?' && c != U'？') only_question_marks = false;
  }
  if (only_question_marks) return CommandMsg{Command::Help, {}};

  const std::string_view t = trim_end_marks(text);
  // The whole phrase, without spaces, colons and polite words.
  std::string compact;
  for (std::size_t i = 0; i < t.size(); i += utf8_len(t, i)) {
    const char32_t c = utf8_at(t, i);
    if (c != ' ' && c != ':' && c != U'：' && c != U'，' && c != ',' && c != U'。')
      compact.append(t.substr(i, utf8_len(t, i)));
  }
  std::string_view phrase = compact;
  for (bool cut = true; cut;) {
    cut = false;
    for (std::string_view w : kPoliteHeads)
      if (phrase.size() > w.size() && phrase.starts_with(w))
        phrase.remove_prefix(w.size()), cut = true;
    for (std::string_view w : kPoliteTails)
      if (phrase.size() > w.size() && phrase.ends_with(w))
        phrase.remove_suffix(w.size()), cut = true;
  }
  for (const auto& c : kCommands)
    if (equals_ascii_ci(phrase, c.text)) return CommandMsg{c.command, {}};
  for (std::string_view w : kLookHeads) {
    if (phrase.size() <= w.size() || !phrase.starts_with(w)) continue;
    for (const auto& c : kCommands)
      if (!c.takes_argument && equals_ascii_ci(phrase.substr(w.size()), c.text))
        return CommandMsg{c.command, {}};
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
    if (!c.takes_argument || !equals_ascii_ci(head, c.text)) continue;
    return CommandMsg{c.command, std::string(argument)};
  }
  // After the command words with an argument: 撤销 那条 is a named undo that names nothing.
  if (auto c = command_in_question(phrase)) return CommandMsg{*c, {}};
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
    "老在回到一全娘婆人大我他她你们的住农搬离成安养专国管这那每各该入贫困保里两二三四五六几俩等";

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

constexpr std::string_view kHonorifics[] = {
    "书记", "主任", "村长", "支书", "队长", "会计", "同志", "局长", "科长", "干部",
    "师傅", "大爷", "大娘", "大妈", "大伯", "大叔", "大哥", "大姐", "奶奶", "爷爷",
    "老人", "阿姨", "婆婆", "叔叔", "婶婶", "老师", "同学", "医生", "某"};

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

constexpr CharSet kSurnameSet(kSurnames);

bool surname_at(std::string_view s, std::size_t i) {
  return utf8_len(s, i) > 1 && kSurnameSet.contains(utf8_at(s, i));
}

bool name_char_at(std::string_view s, std::size_t i) {
  const char32_t c = utf8_at(s, i);
  return is_han(c) && !is_one_of(kNotInName, s, i);
}

// Words that start with a surname character but name a relative or a thing.
constexpr std::string_view kNotNames[] = {
    "孙子", "孙女", "孙辈", "高中", "房子", "车子", "叶子", "金子", "高龄", "程序", "曾孙",
    "方式", "申请", "安排", "安全", "农村", "农户", "农业", "项目", "成绩", "康复", "易地",
    "查看", "文件", "高兴", "方便", "任务", "温暖", "严重", "费用", "卫生", "简单", "符合",
    "尚未", "包括", "范围", "施工", "常规", "金额", "查询", "宣传", "华侨", "龙头"};

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
// Verbs whose object is the person visited (走访周建国): a name right after one that is not among
// the sender's pairings is said back as such, instead of asking whom the visit was for.
constexpr std::string_view kVisitMarkers[] = {"入户走访", "走访了", "走访",   "家访了", "家访",
                                              "校访了",   "校访",   "随访了", "随访"};

// Where a name after a verb may end: the text's end, punctuation or a space, a character that is
// never in a name (了, 家, 那 …), or a title (周建国老人). Not before a keyword: 家访申请雨露计划
// is no visit to 申请.
bool clearly_ends_at(std::string_view s, std::size_t i) {
  return i >= s.size() || !is_han(utf8_at(s, i)) || is_one_of(kNotInName, s, i) ||
         starts_with_any(s.substr(i), kHonorifics);
}

// What may follow a name written after 给/和/跟/帮/陪/到/去: a verb, or 那/家 (给周建国打了电话,
// 和周建国聊了, 到周建国那里).
constexpr std::string_view kAfterPerson = "打通做量办送聊看说讲谈问那家去交签填";

// How a name read after a word must end:
//  - Boundary, after a marker (户主李德明): at anything that cannot continue a name;
//  - Clear, after a verb (走访周建国): clearly (clearly_ends_at), and not as a place (石桥村);
//  - Followed, after 给/和/跟 …: followed by one of kAfterPerson or a title, not a place
//    (给米面油 names nobody).
enum class NameEnd { Boundary, Clear, Followed };

bool name_ends(std::string_view s, std::size_t end, NameEnd how) {
  if (how == NameEnd::Boundary) return name_ends_at(s, end);
  if (starts_with_any(s.substr(end), kPlaceSuffixes)) return false;
  if (how == NameEnd::Clear) return clearly_ends_at(s, end);
  return end < s.size() &&
         (is_one_of(kAfterPerson, s, end) || starts_with_any(s.substr(end), kHonorifics));
}

// Where the first one, two and three name characters from byte `k` end (ends[0..n-1]); n.
int name_char_ends(std::string_view s, std::size_t k, std::size_t (&ends)[3]) {
  std::size_t e = k;
  int n = 0;
  while (n < 3 && e < s.size() && name_char_at(s, e)) {
    e += utf8_len(s, e);
    ends[n++] = e;
  }
  return n;
}

// A name written at byte `k`: two or three name characters that end as `how` says.
std::optional<std::string_view> name_after(std::string_view s, std::size_t k,
                                           NameEnd how = NameEnd::Boundary) {
  std::size_t ends[3];
  const int n = name_char_ends(s, k, ends);
  for (int len = n; len >= 2; --len) {
    if (name_ends(s, ends[len - 1], how) && plausible_name(s, k, ends[len - 1]))
      return s.substr(k, ends[len - 1] - k);
  }
  return std::nullopt;
}

std::optional<std::string_view> find_unpaired_name(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); i += utf8_len(s, i)) {
    const std::string_view rest = s.substr(i);
    if (const std::string_view verb = longest_prefix(rest, kVisitMarkers); !verb.empty()) {
      if (auto name = name_after(s, i + verb.size(), NameEnd::Clear)) return name;
    }
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

// A name written after these is the person the helper met or called (探望周建国, 电话联系周建国).
// Only looked for when the sender has one pairing and the text names none of theirs: without it
// the visit would be put down to that one pairing.
constexpr std::string_view kMeetVerbs[] = {"见了", "见到", "看了", "去看", "看望",
                                           "探望", "慰问", "上门", "入户", "联系",
                                           "电话", "走访", "家访", "校访", "随访"};
// After these a name counts only when a verb or 那/家 follows it (NameEnd::Followed).
constexpr std::string_view kWithWords[] = {"给", "和", "跟", "帮", "陪", "到", "去"};

std::optional<std::string_view> person_after_verb(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); i += utf8_len(s, i)) {
    if (const std::string_view verb = longest_prefix(s.substr(i), kMeetVerbs); !verb.empty()) {
      if (auto name = name_after(s, i + verb.size(), NameEnd::Clear)) return name;
    } else if (const std::string_view with = longest_prefix(s.substr(i), kWithWords);
               !with.empty()) {
      if (auto name = name_after(s, i + with.size(), NameEnd::Followed)) return name;
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
// problem word (应享未享, 未落实, 困难, 问题, 急需, 缺 …, but not 困难户, 没问题, 不缺) is one
// problem, unless it reports the problem solved (已解决, 已落实 …) or gives advice (建议, 叮嘱,
// 按时服药 …). The phrase is the clause without a leading 发现/了解到/反映/反馈/得知/存在.
// Deterministic.

constexpr std::string_view kProblemLeadIns[] = {"发现", "经了解", "了解到", "反映",
                                                "反馈", "得知",   "存在"};

bool is_clause_break(char32_t c) {
  return is_separator(c) && c != U'、' && c != ':' && c != U'：' && c != '.';
}

// Calls f(begin, end) for each clause of `s`.
template <class F>
void for_each_clause(std::string_view s, F f) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t e = i;
    while (e < s.size() && !is_clause_break(utf8_at(s, e))) e += utf8_len(s, e);
    if (e > i) f(i, e);
    i = e < s.size() ? e + utf8_len(s, e) : e;
  }
}

// Calls f(keyword) for each keyword of `s`, left to right, the longest at each place; the text
// between keywords is stepped over a character at a time.
template <class F>
void for_each_keyword(std::string_view s, F f) {
  for (std::size_t i = 0; i < s.size();) {
    if (const Keyword* kw = keyword_at(s, i)) {
      f(*kw);
      i += kw->text.size();
    } else {
      i += utf8_len(s, i);
    }
  }
}

std::vector<std::string> find_problems(std::string_view note) {
  std::vector<std::string> out;
  for (auto& p : find_problem_phrases(note)) out.push_back(std::move(p.phrase));
  return out;
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
  for_each_keyword(s, [&f](const Keyword& kw) {
    switch (kw.kind) {
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
        f.occasions |= 1u << kw.code;
        break;
      case KeywordKind::Policy:
        f.policies |= 1u << kw.code;
        break;
      case KeywordKind::Ignore:
      case KeywordKind::Problem:
      case KeywordKind::NotWent:
      case KeywordKind::CallFailed:
      case KeywordKind::Missed:
      case KeywordKind::Plan:
      case KeywordKind::Solved:
      case KeywordKind::Advice:
        break;
    }
  });
  return f;
}

// Whether the message says a visit (or a call) took place. Decided per clause:
//  - Missed (扑空, 家里没人, 未见到本人) means no visit, unless the helper learnt about the
//    household from someone there (向邻居了解情况, 跟他儿子聊了): that is a visit.
//  - CallFailed (没打通, 关机) means no contact, unless another clause says the helper went.
//  - NotWent (没去) and Plan (计划, 明天去) mean no visit, unless another clause says
//    one took place (a mode word or a completed act: 走访王某户，送去棉被，下月再去).
enum class Happened { Yes, Plan, NotWent, Missed, CallFailed };

constexpr std::string_view kContactWords[] = {"了解", "见到了", "见到其", "聊了",   "交谈",
                                              "谈心", "问了",   "询问",   "邻居说", "邻居反映"};
constexpr std::string_view kDoneWords[] = {
    "走访了", "看望了", "探望了",   "慰问了",   "家访了",   "去了",   "到了",   "入户了",
    "上门了", "已走访", "已入户",   "已上门",   "已看望",   "已家访", "已慰问", "测了",
    "量了",   "送去了", "送了",     "聊了",     "补上了",   "补访了", "随访了", "辅导了",
    "服务了", "查了",   "打了电话", "通了电话", "联系上了", "接通了", "视频了"};

// Whether `s` holds one of `Words` (an array of words, static). The text is walked once, a
// character at a time, and words are tried only where one of their first characters stands:
// trying each word along the whole text was a third of `happened`'s time.
template <const auto& Words>
bool contains_any(std::string_view s) {
  static constexpr CharSet kFirst = CharSet::first_chars_of(Words);
  for (std::size_t i = 0; i < s.size(); i += utf8_len(s, i))
    if (kFirst.contains(utf8_at(s, i)))
      for (std::string_view w : Words)
        if (has_prefix(s.substr(i), w)) return true;
  return false;
}

// Whether `text` asks something: it ends with 吗 or a question mark, or asks a count of visits
// (几户, 几次); with no pairing named, also 多少, 吗 or a question mark anywhere. A note may
// quote a question mid-text (问她低保领了多少), so a named message needs the stronger signs.
bool asks(std::string_view text, bool named) {
  static constexpr std::string_view kCounts[] = {"几户", "几次", "几家", "几回"};
  static constexpr std::string_view kAnywhere[] = {"多少", "吗", "？", "?", "要不要"};
  std::string_view t = text;
  while (!t.empty() &&
         (t.back() == ' ' || t.back() == '!' || t.ends_with("。") || t.ends_with("！")))
    t.remove_suffix(t.back() == ' ' || t.back() == '!' ? 1 : std::string_view("。").size());
  if (t.ends_with("吗") || t.ends_with("？") || t.ends_with("?") || contains_any<kCounts>(t))
    return true;
  return !named && contains_any<kAnywhere>(t);
}

// A day written in a clause about another event (他家孩子17号考试, 月初刚领了低保, 她说前几天
// 感冒了): the clause names no pairing (names are lettered 'x'), has no word of visiting or
// contacting and no completed act, but one of these. Such a day is not the visit's.
constexpr std::string_view kEventWords[] = {
    "考试", "开学", "放假", "复查", "领",   "住院", "出院", "手术", "报名", "到期",
    "发放", "入学", "返校", "开会", "生日", "出生", "结婚", "截止", "缴费", "交费",
    "到账", "搬家", "感冒", "发烧", "摔",   "生病", "她说", "他说", "据说", "听说"};

bool other_event_day(std::string_view lettered, std::size_t at) {
  std::size_t cb = 0, ce = lettered.size();
  for_each_clause(lettered, [&](std::size_t b, std::size_t e) {
    if (b <= at && at < e) cb = b, ce = e;
  });
  const std::string_view clause = lettered.substr(cb, ce - cb);
  if (clause.find('x') != std::string_view::npos || !contains_any<kEventWords>(clause) ||
      contains_any<kDoneWords>(clause))
    return false;
  return !scan(clause).any_mode_word();
}

// Whether a clause tells of a visit or contact: a word of one, or a completed going or seeing.
constexpr std::string_view kContactDone[] = {"去过", "去了", "看了", "看过", "见了", "见过",
                                             "来过", "到过", "看望", "探望", "去看"};
bool says_contact(std::string_view clause) {
  return scan(clause).any_mode_word() || contains_any<kContactDone>(clause);
}

// The clause of `lettered` that holds byte `at`.
std::string_view clause_at(std::string_view lettered, std::size_t at) {
  std::size_t cb = 0, ce = lettered.size();
  for_each_clause(lettered, [&](std::size_t b, std::size_t e) {
    if (b <= at && at < e) cb = b, ce = e;
  });
  return lettered.substr(cb, ce - cb);
}

// A bare 去 (or 出发, 路上) with a word of intent, said before the fact: 今天要去王某家, 一会去,
// 等会儿去, 马上出发去, 晚点去, 回头去, 这就去, 正在去…的路上, 下午去王某家. A plan unless the
// clause has a completion word (了, 过, 已, 刚, 完) or the message is dated before today.
constexpr std::string_view kIntentWords[] = {
    "要去",     "要到",     "会去",     "将去",   "一会去",   "一会儿去", "一会再去", "等会去",
    "等会儿去", "等下去",   "等一下去", "待会去", "待会儿去", "过会去",   "过会儿去", "稍后去",
    "马上去",   "马上出发", "马上到",   "立刻去", "立马去",   "这就去",   "现在去",   "现在就去",
    "晚点去",   "晚点儿去", "晚些去",   "晚会去", "回头去",   "回头再去", "正在去",   "正要去",
    "正赶去",   "出发去",   "上午去",   "中午去", "下午去",   "晚上去",   "抽空去",   "有空去",
    "找时间去", "赶过去",   "过去一趟", "去一趟"};
// Words before an intent word that make it something else (需要去医院, 不要去).
constexpr std::string_view kNotIntentHeads[] = {"需", "不", "只"};
constexpr std::string_view kCompletionMarks[] = {"了", "过", "已", "刚", "完"};

// Still on the way, whatever else the clause says (已经在去王某家的路上了).
bool on_the_way(std::string_view clause) {
  static constexpr std::string_view kGoing[] = {"正在去", "正要去", "正赶去", "正在赶去"};
  return contains_any<kGoing>(clause) || (clause.find("的路上") != std::string_view::npos &&
                                          clause.find("去") != std::string_view::npos);
}

// Walked once, a character at a time, as contains_any does: a search of the clause for each of
// the 44 words was 8% of the understanding's time, and every clause of every message gets here.
bool says_intent(std::string_view clause) {
  static constexpr CharSet kFirst = CharSet::first_chars_of(kIntentWords);
  for (std::size_t at = 0; at < clause.size(); at += utf8_len(clause, at)) {
    if (!kFirst.contains(utf8_at(clause, at))) continue;
    const std::string_view rest = clause.substr(at), head = clause.substr(0, at);
    if (std::none_of(std::begin(kIntentWords), std::end(kIntentWords),
                     [&](std::string_view w) { return has_prefix(rest, w); }))
      continue;
    if (std::none_of(std::begin(kNotIntentHeads), std::end(kNotIntentHeads),
                     [&](std::string_view h) { return has_suffix(head, h); }))
      return true;
  }
  return false;
}

bool says_completed(std::string_view clause) {
  std::string c(clause);
  // 了解 (to learn about), 过年, 过会儿 (in a while), 过去 (over there) say nothing about the
  // visit being over.
  for (std::string_view w :
       {"了解", "过年", "过节", "不过", "难过", "过会", "过一会", "过几天", "过两天", "过去"})
    for (std::size_t at = c.find(w); at != std::string::npos; at = c.find(w))
      c.replace(at, w.size(), "  ");
  return contains_any<kCompletionMarks>(c);
}

// 没服务成, 没测成, 未看成: 没/未, one to three characters, then 成 (not 成绩, 成为 …).
bool says_not_done(std::string_view clause) {
  constexpr std::string_view kAfterCheng = "绩为本年员熟立果长";
  for (std::string_view neg : {"没", "未"}) {
    for (std::size_t at = clause.find(neg); at != std::string_view::npos;
         at = clause.find(neg, at + 1)) {
      std::size_t k = at + neg.size();
      for (int n = 0; n < 4 && k < clause.size(); ++n) {
        if (clause.substr(k).starts_with("成")) {
          if (n == 0) break;
          const std::size_t after = k + std::string_view("成").size();
          const bool word = after < clause.size() &&
                            kAfterCheng.find(clause.substr(after, utf8_len(clause, after))) !=
                                std::string_view::npos;
          if (!word) return true;
          break;
        }
        if (is_clause_break(utf8_at(clause, k))) break;
        k += utf8_len(clause, k);
      }
    }
  }
  return false;
}

// `masked`: the text with the pairings' names masked (by letters: spaces would cut clauses).
// `past_dated`: the message names a day before today, so 下午去王某家 tells of that day.
Happened happened(std::string_view masked, bool past_dated) {
  bool missed = false, not_went = false, plan = false, call_failed = false, positive = false,
       in_person = false;
  const bool contact = contains_any<kContactWords>(masked);
  for_each_clause(masked, [&](std::size_t b, std::size_t e) {
    const std::string_view clause = masked.substr(b, e - b);
    bool negative = false, mode_word = false, person_word = false;
    for_each_keyword(clause, [&](const Keyword& kw) {
      switch (kw.kind) {
        case KeywordKind::Missed:
          missed = negative = true;
          break;
        case KeywordKind::NotWent:
          not_went = negative = true;
          break;
        case KeywordKind::CallFailed:
          call_failed = negative = true;
          break;
        case KeywordKind::Plan:
          plan = negative = true;
          break;
        case KeywordKind::Visit:
        case KeywordKind::HomeVisit:
        case KeywordKind::SchoolVisit:
        case KeywordKind::Service:
        case KeywordKind::ServiceAction:
        case KeywordKind::Signal:
          mode_word = person_word = true;
          break;
        case KeywordKind::Phone:
          mode_word = true;
          break;
        default:
          break;
      }
    });
    if (!negative && says_not_done(clause)) not_went = negative = true;
    if (!negative && !past_dated &&
        (on_the_way(clause) || (says_intent(clause) && !says_completed(clause))))
      plan = negative = true;
    if (!negative && (mode_word || contains_any<kDoneWords>(clause))) {
      positive = true;
      in_person = in_person || person_word || contains_any<kDoneWords>(clause);
    }
  });
  // A call that did not get through is no contact, unless the helper then went in person.
  if (call_failed && !in_person) return Happened::CallFailed;
  if (missed && !contact) return Happened::Missed;
  if ((not_went || plan) && !positive) return plan ? Happened::Plan : Happened::NotWent;
  return Happened::Yes;
}

// Explicit in-person words win over phone words (a visit that also phoned a relative is a
// visit); a doctor's actions mean service only when nothing else is said; else the ledger's.
Mode choose_mode(const Findings& f, bool going_home, Ledger ledger) {
  if (f.service) return Mode::Service;
  if (f.school) return Mode::SchoolVisit;
  if (f.home) return Mode::HomeVisit;
  // A doctor's 上门 换药 is a service: the plain visit word only says where it happened.
  if (f.visit && f.action && ledger == Ledger::Health) return Mode::Service;
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

// An answer the chat gets from templates/error.mustache (or ask.mustache, is_question_code):
// the code and the facts it needs, no wording. `suggestions` are names or examples for tools.
ParseError error(std::string code, std::map<std::string, std::string> fields = {},
                 std::vector<std::string> suggestions = {}) {
  return ParseError{std::move(code), std::move(suggestions), std::move(fields)};
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

// `example` (from example_for) with the pairing's name masked: every answer is posted to the
// group, examples included (走访 王*英户 今天).
std::string masked_example(const Pairing& p, std::string example) {
  const std::string& name = p.display_name();
  if (const std::size_t at = example.find(name); at != std::string::npos)
    example.replace(at, name.size(), mask_name(name));
  return example;
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
      if (names_only(example, pairings, i)) return masked_example(p, std::move(example));
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
  return error("not_understood", {}, usage_examples());
}

// future_date: `date` (11月30日); invalid_date: `said` (13月2日) and the reason bad_month, or
// no_such_day with `year`, `month` and the month's `days`.
ParseError date_error(const DateToken& t) {
  const std::string written = std::to_string(t.month) + "月" + std::to_string(t.day) + "日";
  if (t.status == DateToken::Status::Future) return error("future_date", {{"date", written}});
  if (t.month < 1 || t.month > 12)
    return error("invalid_date", {{"reason", "bad_month"}, {"said", written}});
  return error("invalid_date", {{"reason", "no_such_day"},
                                {"said", written},
                                {"year", std::to_string(t.year)},
                                {"month", std::to_string(t.month)},
                                {"days", std::to_string(storage::days_in_month(t.year, t.month))}});
}

// ---------------------------------------------------------------------------------------------

ParseError question(std::string code, std::map<std::string, std::string> fields) {
  ParseError e;
  e.code = std::move(code);
  e.fields = std::move(fields);
  return e;
}

// The pairings a message may name: today's, and for a back-dated visit the visit date's.
// `in_force[i]`: pairings[i] was in force on the visit's date.
struct Universe {
  const std::vector<Pairing>& pairings() const { return sender ? *sender : owned; }
  const std::vector<Pairing>* sender = nullptr;  // today's; null for a back-dated visit
  std::vector<Pairing> owned;                    // back-dated: that day's, then today's others
  std::vector<bool> in_force;
};

bool same_pairing(const Pairing& a, const Pairing& b) {
  if (a.id != 0 || b.id != 0) return a.id == b.id;
  return a.helper_id == b.helper_id && a.household_id == b.household_id && a.person == b.person;
}

Universe universe_for(const SenderContext& sender, std::optional<Date> date, Date today) {
  Universe u;
  if (date && *date != today && sender.pairings_on) {
    u.owned = sender.pairings_on(*date);
    u.in_force.assign(u.owned.size(), true);
    for (const Pairing& p : sender.pairings) {
      if (std::none_of(u.owned.begin(), u.owned.end(),
                       [&](const Pairing& q) { return same_pairing(p, q); })) {
        u.owned.push_back(p);
        u.in_force.push_back(false);
      }
    }
    return u;
  }
  u.sender = &sender.pairings;
  for (const Pairing& p : sender.pairings) u.in_force.push_back(!date || p.active_on(*date));
  return u;
}

// The same pairings in the same order: names and dates are found the same way in both.
bool same_pairings(const Universe& a, const Universe& b) {
  const std::vector<Pairing>& x = a.pairings();
  const std::vector<Pairing>& y = b.pairings();
  if (&x == &y) return true;
  if (x.size() != y.size()) return false;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!same_pairing(x[i], y[i])) return false;
  return true;
}

// The pairing whose name (person, else household head) is `name` with one character changed (a
// typo, a homophone); npos when none. A two-character name must keep its surname.
std::size_t one_off(std::string_view name, const std::vector<Pairing>& ps) {
  const std::size_t n = code_points(name);
  if (n < 2) return std::string::npos;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const std::string& cand = ps[i].display_name();
    if (code_points(cand) != n || edit_distance(name, cand) != 1) continue;
    if (n == 2 && utf8_at(name, 0) != utf8_at(cand, 0)) continue;
    return i;
  }
  return std::string::npos;
}

// A three-character name written somewhere in `s` that is one character off a pairing's
// (走访王小三 for 王小山, 给钱小三做康复 beside a pairing that is named).
std::optional<std::pair<std::string_view, std::size_t>> one_off_anywhere(
    std::string_view s, const std::vector<Pairing>& ps) {
  for (std::size_t i = 0; i < s.size(); i += utf8_len(s, i)) {
    if (!surname_at(s, i)) continue;
    std::size_t ends[3];
    if (name_char_ends(s, i, ends) != 3) continue;
    const std::string_view w = s.substr(i, ends[2] - i);
    if (const std::size_t k = one_off(w, ps); k != std::string::npos) return std::pair(w, k);
  }
  return std::nullopt;
}

constexpr std::string_view kListMarks = "、和与及跟同";

// A name in a list with a named pairing (王秀英、李德明两户) that names no pairing.
std::optional<std::string_view> listed_stranger(std::string_view s,
                                                const std::vector<Occurrence>& occ) {
  const auto named_at = [&](std::size_t b, std::size_t e) {
    return std::any_of(occ.begin(), occ.end(),
                       [&](const Occurrence& o) { return o.begin < e && b < o.end; });
  };
  for (const Occurrence& o : occ) {
    std::size_t after = o.end + longest_prefix(s.substr(o.end), kNameSuffixes).size();
    if (after < s.size() && is_one_of(kListMarks, s, after)) {
      const std::size_t k = after + utf8_len(s, after);
      std::size_t ends[3];
      const int n = name_char_ends(s, k, ends);
      for (int len = n; len >= 2; --len) {
        if (!plausible_name(s, k, ends[len - 1])) continue;
        if (!named_at(k, ends[len - 1])) return s.substr(k, ends[len - 1] - k);
        break;
      }
    }
    if (o.begin > 0) {
      const std::size_t sep = utf8_prev(s, o.begin);
      if (is_one_of(kListMarks, s, sep) || s.substr(sep, 3) == "、") {
        std::string_view head = s.substr(0, sep);
        for (std::string_view suffix : {"户", "家"})
          if (head.ends_with(suffix)) head.remove_suffix(suffix.size());
        if (auto name = name_before(s, head.size());
            name && !named_at(head.size() - name->size(), head.size()))
          return name;
      }
    }
  }
  return std::nullopt;
}

// A check-in example for the answer: "走访 王秀英户 <when>".
std::string example_with(const Pairing* p, std::string_view when) {
  if (!p) return "走访 王某某户 " + std::string(when);
  std::string e = masked_example(*p, example_for(*p));
  return e.substr(0, e.size() - std::string_view("今天").size()) + std::string(when);
}

// "Did you mean <p>?" for a name `said` one character off the pairing `p`'s.
ParseError did_you_mean(std::string_view said, const Pairing& p) {
  return question("did_you_mean", {{"said", mask_name(std::string(said))},
                                   {"whom", masked_whom(p)},
                                   {"village", p.village},
                                   {"example", example_with(&p, "今天")}});
}

// The pairings named by each group of same-span occurrences, when the text names several
// people (王秀英、李德明两户). Returns the pairings in text order, or the ambiguous group.
struct Resolved {
  std::vector<std::size_t> chosen;
  std::optional<std::vector<std::size_t>> ambiguous;  // the candidates of an unresolved name
  std::size_t ambiguous_at = 0;                       // index into occ of that name
};

Resolved resolve_each(std::string_view text, const std::vector<Occurrence>& occ,
                      const Universe& u) {
  struct Group {
    std::size_t first;  // index into occ
    std::vector<std::size_t> set;
  };
  std::vector<Group> groups;
  for (std::size_t g = 0; g < occ.size();) {
    std::size_t h = g;
    Group grp{g, {}};
    bool person = false;
    while (h < occ.size() && occ[h].begin == occ[g].begin && occ[h].end == occ[g].end) {
      person = person || occ[h].by_person;
      ++h;
    }
    for (std::size_t k = g; k < h; ++k)
      if (!person || occ[k].by_person) grp.set.push_back(occ[k].pairing);
    const auto narrow = [&](auto keep) {
      std::vector<std::size_t> kept;
      for (std::size_t i : grp.set)
        if (keep(i)) kept.push_back(i);
      if (!kept.empty()) grp.set = std::move(kept);
    };
    narrow([&](std::size_t i) { return static_cast<bool>(u.in_force[i]); });
    if (grp.set.size() > 1)
      narrow([&](std::size_t i) { return mentions_place_or_id(text, u.pairings()[i]); });
    groups.push_back(std::move(grp));
    g = h;
  }
  Resolved r;
  for (const Group& g : groups)
    if (g.set.size() == 1 &&
        std::find(r.chosen.begin(), r.chosen.end(), g.set.front()) == r.chosen.end())
      r.chosen.push_back(g.set.front());
  for (const Group& g : groups) {
    if (g.set.size() == 1) continue;
    const bool covered = std::any_of(g.set.begin(), g.set.end(), [&](std::size_t i) {
      return std::find(r.chosen.begin(), r.chosen.end(), i) != r.chosen.end();
    });
    if (!covered) {
      r.ambiguous = g.set;
      r.ambiguous_at = g.first;
      return r;
    }
  }
  // Text order: by the first appearance of each chosen pairing.
  const auto first_at = [&](std::size_t p) {
    for (const Occurrence& o : occ)
      if (o.pairing == p) return o.begin;
    return text.size();
  };
  std::sort(r.chosen.begin(), r.chosen.end(),
            [&](std::size_t a, std::size_t b) { return first_at(a) < first_at(b); });
  return r;
}

ParseError ambiguous_error(std::string_view text, const std::vector<std::size_t>& agreed,
                           const Occurrence& said_at, const std::vector<Pairing>& pairings) {
  std::vector<std::string> labels;
  for (std::size_t i : agreed) labels.push_back(label(pairings[i]));
  const Pairing& first = pairings[agreed.front()];
  const bool same_name = std::all_of(agreed.begin(), agreed.end(), [&](std::size_t i) {
    return pairings[i].display_name() == first.display_name();
  });
  const std::string said =
      same_name ? first.display_name()
                : std::string(text.substr(said_at.begin, said_at.end - said_at.begin));
  const std::optional<std::string> example = first_working_example(pairings, agreed);
  // reason same_name: several pairings share the name `said`; several_said: what was written
  // (`said`, a name or household number) fits `count` of them. No `example`: nothing tells
  // them apart.
  std::map<std::string, std::string> f = {{"reason", same_name ? "same_name" : "several_said"},
                                          {"said", said},
                                          {"count", std::to_string(agreed.size())}};
  if (example) f["example"] = *example;
  return error("ambiguous", std::move(f), std::move(labels));
}

std::string masked_names(const std::vector<std::size_t>& idx, const std::vector<Pairing>& ps) {
  std::string out;
  for (std::size_t i : idx) {
    if (!out.empty()) out += "、";
    out += masked_whom(ps[i]);
  }
  return out;
}

// Whether the occurrences stand for two or more names written apart (not one name that two
// pairings share).
bool names_several(const std::vector<Occurrence>& occ) {
  for (const Occurrence& o : occ)
    if (o.pairing != occ.front().pairing && o.begin >= occ.front().end) return true;
  return false;
}

// A second day in another clause of `masked` (names blanked) / `lettered` (names as 'x'). When
// the first day's clause tells of another event and not of a visit (昨天黄淑芬住院了，今天去医院
// 看她; 前天摔了一跤，今天去看了看), the visit's day is the second. Otherwise, when the second
// day's clause tells of a visit or contact (今天走访王某，李某昨天去过了; 昨天去王某家，今天又去了
// 一趟), one check-in cannot hold both days: `date` becomes a range and `two_days` says both.
void settle_second_day(const std::string& text, const std::string& masked,
                       const std::string& lettered, Date today, std::optional<DateToken>& date,
                       std::optional<std::string>& two_days) {
  two_days.reset();
  if (!date || date->status != DateToken::Status::Ok) return;
  std::string rest = masked;
  std::fill(rest.begin() + date->begin, rest.begin() + date->end, ' ');
  const std::string_view first_clause = clause_at(lettered, date->begin);
  const bool first_event = !says_contact(first_clause) && contains_any<kEventWords>(first_clause);
  while (const auto second = find_date(rest, today)) {
    std::fill(rest.begin() + second->begin, rest.begin() + second->end, ' ');
    if (second->status != DateToken::Status::Ok || second->date == date->date) continue;
    const std::string_view second_clause = clause_at(lettered, second->begin);
    if (second_clause.data() == first_clause.data()) continue;
    if (contains_any<kEventWords>(second_clause) && !says_contact(second_clause)) continue;
    if (first_event) {
      date = second;
      return;
    }
    if (says_contact(second_clause)) {
      two_days = text.substr(date->begin, date->end - date->begin) + "、" +
                 text.substr(second->begin, second->end - second->begin);
      date->status = DateToken::Status::Range;
      return;
    }
  }
}

Understanding understand_checkin(const std::string& text, const SenderContext& sender, Date today) {
  // Names and date depend on each other (a name is masked before the date is read; the
  // pairings to look for depend on the date): settle them in at most three rounds.
  Universe uni = universe_for(sender, std::nullopt, today);
  std::optional<Date> uni_date;
  Occurrences found_names;
  std::string masked;
  std::optional<DateToken> date;
  std::optional<std::string> event_day;
  std::optional<std::string> two_days;
  // Names masked with letters, not spaces, so a clause does not end at a name.
  std::string lettered;
  for (int round = 0; round < 3; ++round) {
    found_names = find_occurrences(text, uni.pairings());
    masked = text;
    for (const Occurrence& o : found_names.kept)
      std::fill(masked.begin() + o.begin, masked.begin() + o.end, ' ');
    lettered = text;
    for (const Occurrence& o : found_names.kept)
      std::fill(lettered.begin() + o.begin, lettered.begin() + o.end, 'x');
    date = find_date(masked, today);
    // A day of another event is no visit day: look past it. An exact one is kept to ask
    // about (never taken as the visit's day); a vague one (月初, 前几天) says nothing of the
    // visit, so the message reads as if it had no date.
    event_day.reset();
    while (date && other_event_day(lettered, date->begin)) {
      if (date->status != DateToken::Status::Vague && !event_day)
        event_day = text.substr(date->begin, date->end - date->begin);
      std::fill(masked.begin() + date->begin, masked.begin() + date->end, ' ');
      date = find_date(masked, today);
    }
    settle_second_day(text, masked, lettered, today, date, two_days);
    const std::optional<Date> d =
        date && date->status == DateToken::Status::Ok ? std::optional(date->date) : std::nullopt;
    if (round > 0 && d == uni_date) break;
    uni_date = d;
    Universe next = universe_for(sender, d, today);
    // Another round over the same pairings would find the same names and date (most
    // messages: no date, or today's).
    const bool settled = same_pairings(next, uni);
    uni = std::move(next);
    if (settled) break;
  }
  const std::vector<Pairing>& pairings = uni.pairings();
  const std::vector<Occurrence>& occ = found_names.kept;
  const Findings found = scan(masked);
  std::optional<std::string_view> stranger = !occ.empty() ? std::nullopt
                                             : !found_names.someone_else.empty()
                                                 ? std::optional(found_names.someone_else)
                                                 : find_unpaired_name(text);

  // A question is never a report (这个月走访了几户, 何某家去过了吗？).
  if ((occ.empty() && found.question) || asks(text, !occ.empty())) return not_understood();
  const bool past_dated = date && date->status == DateToken::Status::Ok && date->date < today;
  const Happened happen = happened(lettered, past_dated);
  if (occ.empty() && !stranger && !date && !found.any_mode_word() && happen == Happened::Yes)
    return not_understood();

  const Pairing* first_named = !occ.empty()           ? &pairings[occ.front().pairing]
                               : pairings.size() == 1 ? &pairings.front()
                                                      : nullptr;
  // Several beneficiaries named: decided per beneficiary below (some_not_done), unless
  // the message ends up naming only one.
  std::optional<ParseError> not_done_answer;
  if (happen != Happened::Yes) {
    not_done_answer =
        question("not_done", {{"reason", happen == Happened::Plan         ? "plan"
                                         : happen == Happened::Missed     ? "missed"
                                         : happen == Happened::CallFailed ? "call_failed"
                                                                          : "not_went"},
                              {"example", example_with(first_named, "今天")}});
    if (!names_several(occ)) return *not_done_answer;
  }
  // Only another event's day is written (他家孩子17号考试): never guess the visit's.
  if (event_day && !date)
    return question("other_day",
                    {{"said", *event_day}, {"example", example_with(first_named, "今天")}});

  std::vector<std::size_t> chosen;
  if (!occ.empty()) {
    std::vector<std::size_t> agreed = candidates(text, occ, pairings);
    if (agreed.size() > 1) {
      std::vector<std::size_t> kept;
      for (std::size_t i : agreed)
        if (uni.in_force[i]) kept.push_back(i);
      if (!kept.empty()) agreed = std::move(kept);
    }
    if (agreed.size() > 1) return ambiguous_error(text, agreed, occ.front(), pairings);
    if (agreed.size() == 1) {
      chosen = agreed;
    } else {
      Resolved r = resolve_each(text, occ, uni);
      if (r.ambiguous) return ambiguous_error(text, *r.ambiguous, occ[r.ambiguous_at], pairings);
      chosen = std::move(r.chosen);
    }
    if (auto other = listed_stranger(text, occ)) {
      if (const std::size_t k = one_off(*other, pairings); k != std::string::npos)
        return did_you_mean(*other, pairings[k]);
      return question("unmatched", {{"said", mask_name(std::string(*other))},
                                    {"others", masked_names(chosen, pairings)}});
    }
    // 给赵某测血压，给钱小三做康复: a second name one character off a pairing's is a typo.
    if (auto near = one_off_anywhere(masked, pairings))
      return did_you_mean(near->first, pairings[near->second]);
  } else {
    std::optional<std::pair<std::string_view, std::size_t>> near;
    if (stranger) {
      if (const std::size_t k = one_off(*stranger, pairings); k != std::string::npos)
        near = std::pair(*stranger, k);
    } else {
      near = one_off_anywhere(text, pairings);
    }
    if (near) return did_you_mean(near->first, pairings[near->second]);
    std::vector<std::size_t> live;
    for (std::size_t i = 0; i < pairings.size(); ++i)
      if (uni.in_force[i]) live.push_back(i);
    if (stranger) {
      return error("not_paired",
                   // Masked: the name may be another helper's beneficiary, and this text is
                   // posted to the group.
                   {{"reason", "stranger"}, {"said", mask_name(std::string(*stranger))}},
                   closest_names(*stranger, sender.pairings));
    } else if (live.empty() && sender.pairings.empty()) {
      return error("not_paired", {{"reason", "no_pairings"}});
    } else if (sender.pairings.size() > 1 || live.size() > 1) {
      const std::vector<Pairing>& ps = sender.pairings.size() > 1 ? sender.pairings : pairings;
      std::vector<std::string> names = distinct_names(ps);
      std::vector<std::size_t> all(ps.size());
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
      const std::optional<std::string> example = first_working_example(ps, all);
      std::map<std::string, std::string> f = {{"reason", "whom"},
                                              {"count", std::to_string(ps.size())}};
      if (example) f["example"] = *example;
      return error("ambiguous", std::move(f), std::move(names));
    } else {
      // The one pairing of today (or, back-dated, of that day) — unless the text names somebody
      // else as the one met (今天给周建国打了电话): then it is not theirs, and said so.
      if (auto other = person_after_verb(text)) {
        if (const std::size_t k = one_off(*other, pairings); k != std::string::npos)
          return did_you_mean(*other, pairings[k]);
        return error("not_paired",
                     {{"reason", "stranger"}, {"said", mask_name(std::string(*other))}},
                     closest_names(*other, sender.pairings));
      }
      chosen.push_back(live.empty() ? 0 : live.front());
    }
  }

  if (not_done_answer && ((date && date->status != DateToken::Status::Ok) || chosen.size() < 2))
    return *not_done_answer;
  if (date) {
    const std::string said =
        two_days ? *two_days : text.substr(date->begin, date->end - date->begin);
    const Pairing* p = chosen.empty() ? first_named : &pairings[chosen.front()];
    if (date->status == DateToken::Status::Vague) {
      const std::string when =
          date->month > 0 ? std::to_string(date->month) + "月" + "X日" : std::string("X月X日");
      return question("need_day", {{"said", said}, {"example", example_with(p, when)}});
    }
    if (date->status == DateToken::Status::Range)
      return question("date_range", {{"said", said}, {"example", example_with(p, "X月X日")}});
    if (date->status != DateToken::Status::Ok) return date_error(*date);
  }
  const Date visit_date = date ? date->date : today;
  for (std::size_t i : chosen) {
    if (uni.in_force[i]) continue;
    const Pairing& p = pairings[i];
    std::map<std::string, std::string> f = {
        {"date", std::to_string(visit_date.month) + "月" + std::to_string(visit_date.day) + "日"},
        {"whom", masked_whom(p)}};
    if (p.start_date && visit_date < *p.start_date)
      f["start"] = std::to_string(p.start_date->year) + "年" + std::to_string(p.start_date->month) +
                   "月" + std::to_string(p.start_date->day) + "日";
    else if (p.end_date)
      f["end"] = std::to_string(p.end_date->year) + "年" + std::to_string(p.end_date->month) +
                 "月" + std::to_string(p.end_date->day) + "日";
    return question("not_in_force", std::move(f));
  }

  // The note: without the leading words, every name phrase and the date.
  std::vector<Span> cut;
  cut.push_back({0, prefix_end(text)});
  std::vector<bool> going_home(pairings.size(), false);
  for (const Occurrence& o : occ) {
    if (std::find(chosen.begin(), chosen.end(), o.pairing) == chosen.end()) continue;
    const NamePhrase phrase = name_phrase(text, o, pairings[o.pairing]);
    cut.push_back(phrase.span);
    going_home[o.pairing] = going_home[o.pairing] || phrase.going_home;
  }
  if (date) {
    std::size_t b = date->begin;
    if (std::string_view(text).substr(0, b).ends_with("于")) b -= 3;
    cut.push_back({b, date->end});
  }
  const std::string note = text_without(text, std::move(cut));

  const auto make = [&](std::size_t i, const Findings& f, std::vector<std::string> problems) {
    const Pairing& p = pairings[i];
    Checkin c;
    c.helper_id = sender.helper_id;
    c.pairing_id = p.id;
    c.household_id = p.household_id;
    c.person = p.person;
    c.name = p.display_name();
    c.visit_date = visit_date;
    c.mode = choose_mode(f, going_home[i], p.ledger);
    for (std::size_t k = 0; k < kOccasionCodes.size(); ++k)
      if (f.occasions & (1u << k)) c.occasions.emplace_back(kOccasionCodes[k]);
    for (std::size_t k = 0; k < kPolicyCodes.size(); ++k)
      if (f.policies & (1u << k)) c.policies.emplace_back(kPolicyCodes[k]);
    c.note = note;
    c.problems = std::move(problems);
    return c;
  };
  if (chosen.size() == 1) return make(chosen.front(), found, find_problems(note));

  // Several: a clause that names some of them belongs to those; a clause naming none, to all.
  // A clause that says one of them was not visited (李某家没去成, 孙某家没人, 电话没打通) makes
  // the whole message a question back: nothing is recorded, the answer names who.
  CheckinGroup group;
  std::vector<std::size_t> not_done;
  for (std::size_t i : chosen) {
    std::string own_masked, own_lettered, own_text;
    for_each_clause(text, [&](std::size_t b, std::size_t e) {
      bool mine = false, others = false;
      for (const Occurrence& o : occ) {
        if (o.begin < b || o.end > e) continue;
        (o.pairing == i ? mine : others) = true;
      }
      if (!mine && others) return;
      own_masked.append(masked, b, e - b).append("，");
      own_lettered.append(lettered, b, e - b).append("，");
      // Problems are phrased without the names (a problem is filed under its pairing).
      std::vector<Span> names;
      for (const Occurrence& o : occ)
        if (o.begin >= b && o.end <= e) names.push_back({o.begin - b, o.end - b});
      own_text += text_without(std::string_view(text).substr(b, e - b), names);
      own_text += "，";
    });
    if (happened(own_lettered, past_dated) != Happened::Yes) not_done.push_back(i);
    group.checkins.push_back(make(i, scan(own_masked), find_problems(own_text)));
  }
  if (not_done_answer && (not_done.empty() || not_done.size() == chosen.size()))
    return *not_done_answer;
  if (!not_done.empty()) {
    std::vector<std::size_t> done;
    for (std::size_t i : chosen)
      if (std::find(not_done.begin(), not_done.end(), i) == not_done.end()) done.push_back(i);
    return question(
        "some_not_done",
        {{"whom", masked_names(not_done, pairings)},
         {"example", example_with(done.empty() ? nullptr : &pairings[done.front()], "今天")}});
  }
  return group;
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
  if (!sender.known) return error("unknown_sender");
  return understand_checkin(normalized, sender, today);
}

std::vector<ProblemPhrase> find_problem_phrases(std::string_view note) {
  std::vector<ProblemPhrase> problems;
  for_each_clause(note, [&](std::size_t b, std::size_t e) {
    const std::string_view clause = note.substr(b, e - b);
    bool problem = false, cancelled = false;
    int policy = -1;
    for_each_keyword(clause, [&](const Keyword& kw) {
      problem = problem || kw.kind == KeywordKind::Problem;
      cancelled = cancelled || kw.kind == KeywordKind::Solved || kw.kind == KeywordKind::Advice;
      if (kw.kind == KeywordKind::Policy && policy < 0) policy = kw.code;
    });
    // 需要危改, 需要申请低保: a need for a policy is an unmet entitlement; 需要按时服药 is not.
    if (!problem && policy >= 0 && clause.find("需要") != std::string_view::npos) problem = true;
    if (!problem || cancelled) return;
    std::string_view phrase = clause;
    for (std::string_view lead = longest_prefix(phrase, kProblemLeadIns); !lead.empty();
         lead = longest_prefix(phrase, kProblemLeadIns))
      phrase.remove_prefix(lead.size());
    phrase = trim_separators(phrase);
    if (phrase.empty()) phrase = clause;
    if (std::none_of(problems.begin(), problems.end(),
                     [&](const ProblemPhrase& p) { return p.phrase == phrase; }))
      problems.push_back(
          {std::string(phrase), policy < 0 ? std::string() : std::string(kPolicyCodes[policy])});
  });
  return problems;
}

bool is_question_code(std::string_view code) {
  return code == "not_done" || code == "some_not_done" || code == "other_day" ||
         code == "need_day" || code == "date_range" || code == "did_you_mean" ||
         code == "unmatched" || code == "not_in_force";
}

namespace {
nlohmann::ordered_json checkin_json(const Checkin& c) {
  nlohmann::ordered_json j;
  j["helper_id"] = c.helper_id;
  j["household_id"] = c.household_id;
  j["person"] = c.person.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(c.person);
  j["visit_date"] = c.visit_date.iso();
  j["mode"] = storage::mode_code(c.mode);
  j["occasions"] = c.occasions;
  j["policies"] = c.policies;
  j["problems"] = c.problems;
  j["note"] = c.note;
  return j;
}
}  // namespace

std::string to_json(const Understanding& u, std::string_view message) {
  nlohmann::ordered_json j;
  if (const auto* c = std::get_if<Checkin>(&u)) {
    j["kind"] = "checkin";
    j.update(checkin_json(*c));
    j["checkins"] = nlohmann::ordered_json::array({checkin_json(*c)});
  } else if (const auto* g = std::get_if<CheckinGroup>(&u)) {
    j["kind"] = "checkins";
    j["checkins"] = nlohmann::ordered_json::array();
    for (const Checkin& one : g->checkins) j["checkins"].push_back(checkin_json(one));
  } else if (const auto* m = std::get_if<CommandMsg>(&u)) {
    j["kind"] = "command";
    j["command"] = command_code(m->command);
    if (!m->argument.empty()) j["argument"] = m->argument;
  } else {
    const auto& e = std::get<ParseError>(u);
    j["kind"] = "error";
    j["code"] = e.code;
    j["message"] = message;
    j["suggestions"] = e.suggestions;
    if (!e.fields.empty()) j["fields"] = e.fields;
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace handlers
