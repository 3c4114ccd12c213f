#include "storage/problem_category.h"

#include <algorithm>

namespace storage {
namespace {

bool contains(std::string_view text, std::string_view word) {
  return text.find(word) != std::string_view::npos;
}

bool any_of(std::string_view text, std::initializer_list<std::string_view> words) {
  return std::any_of(words.begin(), words.end(),
                     [&](std::string_view w) { return contains(text, w); });
}

struct PolicyWord {
  std::string_view word;
  std::string_view policy;
};

// Longer words first where one contains another (医疗救助 before 医疗).
constexpr PolicyWord kPolicyWords[] = {
    {"低保", "低保"},
    {"最低生活保障", "低保"},
    {"医疗救助", "医疗救助"},
    {"大病救助", "医疗救助"},
    {"助学", "助学"},
    {"教育资助", "助学"},
    {"雨露计划", "助学"},
    {"危房改造", "住房"},
    {"住房保障", "住房"},
    {"住房补贴", "住房"},
    {"临时救助", "临时救助"},
    {"特困供养", "特困供养"},
    {"残疾人补贴", "残疾人补贴"},
    {"两项补贴", "残疾人补贴"},
    {"养老保险", "养老保险"},
    {"医保", "医保"},
};

std::string_view policy_of_code(std::string_view code) {
  if (code == "minimum_living") return "低保";
  if (code == "medical_aid") return "医疗救助";
  if (code == "education_aid") return "助学";
  if (code == "housing") return "住房";
  return "";
}

}  // namespace

ProblemCategory classify_problem(std::string_view phrase,
                                 const std::vector<std::string>& policies) {
  for (const auto& pw : kPolicyWords)
    if (contains(phrase, pw.word)) return {"应享未享", std::string(pw.policy)};
  if (any_of(phrase, {"应享未享", "未享受", "没享受", "未落实", "没落实", "未纳入", "没纳入",
                      "未办理", "没办理", "未领到", "没领到", "未发放", "没发放"})) {
    std::string policy;
    if (policies.size() == 1) policy = std::string(policy_of_code(policies.front()));
    return {"应享未享", policy};
  }
  if (any_of(phrase, {"危房", "漏雨", "漏水", "房屋", "房子", "屋顶", "墙体", "裂缝", "住房"}))
    return {"住房安全", ""};
  if (any_of(phrase,
             {"看病", "就医", "住院", "治疗", "吃药", "药费", "医药", "病", "医疗", "康复"}))
    return {"医疗", ""};
  if (any_of(phrase, {"上学", "就学", "学费", "辍学", "读书", "学校", "入学", "课业", "学习"}))
    return {"就学", ""};
  if (any_of(phrase, {"收入", "就业", "务工", "打工", "工作", "失业", "工资", "技能", "岗位",
                      "销路", "种植", "养殖"}))
    return {"收入就业", ""};
  return {"其他", ""};
}

std::string category_text(const ProblemCategory& c) {
  return c.policy.empty() ? c.category : c.category + "：" + c.policy;
}

}  // namespace storage
