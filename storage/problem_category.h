#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace storage {

/// The category of a reported problem (README "Problems"). Stored as the Chinese word.
inline constexpr std::string_view kProblemCategories[] = {"应享未享", "住房安全", "医疗",
                                                          "就学",     "收入就业", "其他"};

struct ProblemCategory {
  std::string category;  // one of kProblemCategories
  std::string policy;  // for 应享未享: 低保, 医疗救助, 助学, 住房, 临时救助 …; "" when unknown
};

/// Classifies one problem phrase as the understanding found it ("应享未享低保", "房屋漏雨"),
/// given the policy codes (medical_aid, education_aid, housing, minimum_living) the same check-in
/// reported. Pure. Rules, first match wins:
/// 1. the phrase names a policy (低保, 医疗救助, 助学金, 危房改造 …) → 应享未享 with that policy;
/// 2. the phrase says a benefit is not received (应享未享, 未享受, 未落实, 未纳入, 未办理 …) →
///    应享未享, with the policy the check-in reported when it reported exactly one;
/// 3. words of housing safety (危房, 漏雨, 房屋 …) → 住房安全; of health (看病, 住院, 药 …) → 医疗;
///    of schooling (上学, 学费, 辍学 …) → 就学; of income and work (收入, 就业, 务工 …) → 收入就业;
/// 4. otherwise 其他.
ProblemCategory classify_problem(std::string_view phrase, const std::vector<std::string>& policies);

/// "应享未享：低保", "应享未享", "医疗": how the chat and the CLI name a category.
std::string category_text(const ProblemCategory& c);

}  // namespace storage
