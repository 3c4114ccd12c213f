#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "storage/date.h"
#include "storage/model.h"

namespace handlers {

/// Chinese words for the codes, as the group reads them.
std::string_view mode_label(storage::Mode m);  // 走访, 家访, 校访, 上门服务, 电话联系
std::string_view occasion_label(std::string_view code);  // 红白喜事, 升学考试, 生病住院, …
std::string_view policy_label(std::string_view code);  // 医疗救助, 助学扶持, 住房改造, 低保兜底
std::string_view checkin_status_label(storage::CheckinStatus s);  // 有效, 已撤销, 已更正, 已作废
/// Joins the labels of `codes` with "、" using `label`.
std::string join_labels(const std::vector<std::string>& codes,
                        std::string_view (*label)(std::string_view));
/// "11月26日", or "2025年12月30日" when the year differs from `today`'s.
std::string chinese_date(storage::Date d, storage::Date today);
/// "11月" or "2025年12月" when the year differs.
std::string chinese_month(storage::Month m, storage::Date today);
/// How the chat names a pairing without revealing the beneficiary: 王*英户, or 刘* for a person.
std::string masked_whom(const storage::Pairing& p);

}  // namespace handlers
