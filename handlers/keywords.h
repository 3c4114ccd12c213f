#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace handlers {

enum class KeywordKind : std::uint8_t {
  Ignore,  // a phrase hiding a shorter keyword that must not fire (困难户, 没问题, 电话号码)
  Visit,
  HomeVisit,
  SchoolVisit,
  Service,
  ServiceAction,  // a doctor's action (测血压): means `service` only when no mode word is present
  Phone,
  Signal,      // marks a check-in without fixing the mode (打卡, 随访, 辅导, 去了)
  Question,    // 怎么, 如何: a how-to question, not a report
  Occasion,    // code indexes kOccasionCodes
  Policy,      // code indexes kPolicyCodes
  Problem,     // marks a clause as a problem found (应享未享, 困难, 缺 …)
  NotWent,     // the helper did not go (没去, 没来得及)
  CallFailed,  // a call that did not get through (没打通, 没人接, 关机)
  Missed,  // the helper went but met nobody (扑空, 家里没人): no visit unless someone was asked
  Plan,    // a visit still to come (计划, 准备去, 明天去)
  Solved,  // the clause reports a problem solved (已解决, 已落实): no problem
  Advice,  // the clause gives advice (建议, 叮嘱, 按时服药): no problem
};

struct Keyword {
  std::string_view text;
  KeywordKind kind;
  std::uint8_t code;
};

/// The longest keyword that starts at byte `pos` of `text`, or nullptr. Scanning left to right
/// and skipping each hit whole gives leftmost-longest matching, so 上门服务 hides 上门 and
/// 电话随访 hides 随访.
const Keyword* keyword_at(std::string_view text, std::size_t pos);

}  // namespace handlers
