#include "storage/model.h"

namespace storage {

std::string_view ledger_code(Ledger l) {
  switch (l) {
    case Ledger::Cadre:
      return "cadre";
    case Ledger::Health:
      return "health";
    case Ledger::Education:
      return "education";
  }
  return "cadre";
}

std::string_view ledger_label(Ledger l) {
  switch (l) {
    case Ledger::Cadre:
      return "区直";
    case Ledger::Health:
      return "卫生";
    case Ledger::Education:
      return "教育";
  }
  return "区直";
}

std::optional<Ledger> ledger_from(std::string_view s) {
  for (Ledger l : {Ledger::Cadre, Ledger::Health, Ledger::Education})
    if (s == ledger_code(l) || s == ledger_label(l)) return l;
  return std::nullopt;
}

std::string_view mode_code(Mode m) {
  switch (m) {
    case Mode::Visit:
      return "visit";
    case Mode::HomeVisit:
      return "home_visit";
    case Mode::SchoolVisit:
      return "school_visit";
    case Mode::Service:
      return "service";
    case Mode::Phone:
      return "phone";
  }
  return "visit";
}

std::optional<Mode> mode_from(std::string_view s) {
  for (Mode m : {Mode::Visit, Mode::HomeVisit, Mode::SchoolVisit, Mode::Service, Mode::Phone})
    if (s == mode_code(m)) return m;
  return std::nullopt;
}

std::string_view checkin_status_code(CheckinStatus s) {
  switch (s) {
    case CheckinStatus::Active:
      return "active";
    case CheckinStatus::Undone:
      return "undone";
    case CheckinStatus::Corrected:
      return "corrected";
    case CheckinStatus::Void:
      return "void";
  }
  return "active";
}

std::optional<CheckinStatus> checkin_status_from(std::string_view s) {
  for (CheckinStatus c : {CheckinStatus::Active, CheckinStatus::Undone, CheckinStatus::Corrected,
                          CheckinStatus::Void})
    if (s == checkin_status_code(c)) return c;
  return std::nullopt;
}

}  // namespace storage
