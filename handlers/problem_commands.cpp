#include "handlers/problem_commands.h"

#include <array>

namespace handlers {
namespace {

bool eat(std::string_view& s, std::string_view word) {
  if (s.substr(0, word.size()) != word) return false;
  s.remove_prefix(word.size());
  return true;
}

void skip_spaces(std::string_view& s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
}

// Separators people put between the number, the status and the note.
void skip_separators(std::string_view& s) {
  for (bool more = true; more;) {
    skip_spaces(s);
    more = false;
    for (std::string_view sep : {"：", ":", "，", ",", "、", "；", ";", "-", "—"})
      if (eat(s, sep)) more = true;
  }
}

struct StatusWord {
  std::string_view word;
  storage::ProblemStatus status;
};

// Longer words first where one starts another.
constexpr std::array<StatusWord, 13> kStatusWords = {{
    {"已经解决", storage::ProblemStatus::Resolved},
    {"已解决", storage::ProblemStatus::Resolved},
    {"解决了", storage::ProblemStatus::Resolved},
    {"已办结", storage::ProblemStatus::Resolved},
    {"已落实", storage::ProblemStatus::Resolved},
    {"跟进中", storage::ProblemStatus::InProgress},
    {"正在跟进", storage::ProblemStatus::InProgress},
    {"在跟进", storage::ProblemStatus::InProgress},
    {"处理中", storage::ProblemStatus::InProgress},
    {"正在处理", storage::ProblemStatus::InProgress},
    {"正在办理", storage::ProblemStatus::InProgress},
    {"办理中", storage::ProblemStatus::InProgress},
    {"在办理", storage::ProblemStatus::InProgress},
}};

// 我的问题 as people ask it: the whole message, nothing else in it.
constexpr std::string_view kMineQuestions[] = {"我的问题",
                                               "查问题",
                                               "查我的问题",
                                               "查看我的问题",
                                               "我有哪些问题",
                                               "我还有哪些问题",
                                               "我还有哪些问题没解决",
                                               "我有哪些问题没解决",
                                               "我还有什么问题没解决"};

}  // namespace

std::optional<ProblemCommand> parse_problem_command(std::string_view text) {
  std::string_view s = text;
  skip_spaces(s);
  {
    for (std::string_view q : kMineQuestions) {
      std::string_view t = s;
      if (!eat(t, q)) continue;
      if (!eat(t, "清单")) eat(t, "列表");
      skip_separators(t);
      for (std::string_view end : {"。", "?", "？", "!", "！"}) eat(t, end);
      skip_spaces(t);
      if (t.empty()) return ProblemCommand{ProblemCommand::Kind::Mine, 0, std::nullopt, ""};
    }
  }
  // The reference: #12, 问题12, 问题#12, 第12号问题, 12号问题.
  const bool hash = eat(s, "#");
  const bool word_before = !hash && eat(s, "问题");
  if (word_before) {
    skip_spaces(s);
    eat(s, "#");
  }
  if (!hash && !word_before) eat(s, "第");
  skip_spaces(s);
  int64_t id = 0;
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9' && digits < 12) {
    id = id * 10 + (s[digits] - '0');
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') return std::nullopt;
  s.remove_prefix(digits);
  bool word_after = false;
  // 12号问题, 第3个问题, 第3项问题.
  if (eat(s, "号") || eat(s, "个") || eat(s, "项")) {
    skip_spaces(s);
    word_after = eat(s, "问题");
  } else if (!hash && !word_before) {
    return std::nullopt;
  }
  if (!hash && !word_before && !word_after) return std::nullopt;
  skip_separators(s);
  ProblemCommand cmd{ProblemCommand::Kind::Set, id, std::nullopt, ""};
  for (const auto& w : kStatusWords) {
    if (eat(s, w.word)) {
      cmd.status = w.status;
      break;
    }
  }
  // "#12" alone, or "#12 …" followed by something else, is still about the item: the chat
  // explains how to write it. A check-in never starts with #<digits>.
  skip_separators(s);
  while (!s.empty() && (s.back() == ' ')) s.remove_suffix(1);
  cmd.note = std::string(s);
  return cmd;
}

void set_problem_items(kainjow::mustache::data& d, const std::vector<storage::Problem>& items) {
  if (items.empty()) return;
  kainjow::mustache::data named{kainjow::mustache::data::type::list};
  for (size_t k = 0; k < items.size(); ++k) {
    kainjow::mustache::data item;
    item.set("id", std::to_string(items[k].id));
    item.set("category", storage::category_text(items[k].category));
    if (k + 1 < items.size()) item.set("more", true);
    named << item;
  }
  d.set("problems", named);
  d.set("first_problem", std::to_string(items.front().id));
}

}  // namespace handlers
