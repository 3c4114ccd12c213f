#include "handlers/labels.h"

#include "handlers/templates.h"

namespace handlers {

std::string_view mode_label(storage::Mode m) {
  switch (m) {
    case storage::Mode::Visit:
      return "走访";
    case storage::Mode::HomeVisit:
      return "家访";
    case storage::Mode::SchoolVisit:
      return "校访";
    case storage::Mode::Service:
      return "上门服务";
    case storage::Mode::Phone:
      return "电话联系";
  }
  return "走访";
}

std::string_view occasion_label(std::string_view code) {
  if (code == "wedding_funeral") return "红白喜事";
  if (code == "exam") return "升学考试";
  if (code == "illness") return "生病住院";
  if (code == "accident") return "意外伤害";
  if (code == "festival") return "传统节日";
  return code;
}

std::string_view policy_label(std::string_view code) {
  if (code == "medical_aid") return "医疗救助";
  if (code == "education_aid") return "助学扶持";
  if (code == "housing") return "住房改造";
  if (code == "minimum_living") return "低保兜底";
  return code;
}

std::string_view checkin_status_label(storage::CheckinStatus s) {
  switch (s) {
    case storage::CheckinStatus::Active:
      return "有效";
    case storage::CheckinStatus::Undone:
      return "已撤销";
    case storage::CheckinStatus::Corrected:
      return "已更正";
    case storage::CheckinStatus::Void:
      return "已作废";
  }
  return "";
}

std::string join_labels(const std::vector<std::string>& codes,
                        std::string_view (*label)(std::string_view)) {
  std::string out;
  for (const auto& c : codes) {
    if (!out.empty()) out += "、";
    out += label(c);
  }
  return out;
}

std::string chinese_date(storage::Date d, storage::Date today) {
  std::string s = std::to_string(d.month) + "月" + std::to_string(d.day) + "日";
  return d.year == today.year ? s : std::to_string(d.year) + "年" + s;
}

std::string chinese_month(storage::Month m, storage::Date today) {
  std::string s = std::to_string(m.month) + "月";
  return m.year == today.year ? s : std::to_string(m.year) + "年" + s;
}

std::string masked_whom(const storage::Pairing& p) {
  if (!p.person.empty()) return mask_name(p.person);
  return mask_name(p.household_head) + "户";
}

}  // namespace handlers
