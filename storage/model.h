#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/date.h"

namespace storage {

/// The three ledgers (三个台账). Stored as "cadre" / "health" / "education".
enum class Ledger { Cadre, Health, Education };

std::string_view ledger_code(Ledger l);               // "cadre"
std::string_view ledger_label(Ledger l);              // "区直" / "卫生" / "教育"
std::optional<Ledger> ledger_from(std::string_view);  // accepts code or Chinese label

/// One row of the roster: a helper paired with a household (and, for doctors and teachers,
/// a person in it). Identity of a pairing: (helper_id, household_id, person).
struct Pairing {
  int64_t id = 0;         // database rowid; 0 before it is stored
  std::string helper_id;  // WeCom userid
  std::string helper_name;
  std::string phone;
  Ledger ledger = Ledger::Cadre;
  std::string unit;  // 单位
  std::string household_id;
  std::string household_head;
  std::string person;           // 帮扶对象, may be empty
  std::string person_category;  // 患病 / 残疾 / 学生, may be empty
  std::string village;
  std::string street;
  std::optional<Date> start_date;  // none: in force for every past period
  std::optional<Date> end_date;    // inclusive last day; none: still in force

  /// In force on `d`: started (or no start) and not yet ended.
  bool active_on(Date d) const {
    return (!start_date || *start_date <= d) && (!end_date || d <= *end_date);
  }
  /// The name people use for this pairing: the person if any, else the household head.
  const std::string& display_name() const { return person.empty() ? household_head : person; }
};

/// Visit modes. Only `Phone` does not count as a visit.
enum class Mode { Visit, HomeVisit, SchoolVisit, Service, Phone };
std::string_view mode_code(Mode m);  // "visit", "home_visit", "school_visit", "service", "phone"
std::optional<Mode> mode_from(std::string_view code);

/// Whether a check-in counts, and if not, why: undone by its helper, replaced by a correction
/// (更正), or voided by the office. Stored as "active" / "undone" / "corrected" / "void".
enum class CheckinStatus { Active, Undone, Corrected, Void };
std::string_view checkin_status_code(CheckinStatus s);
std::optional<CheckinStatus> checkin_status_from(std::string_view code);

/// A check-in as it is stored (the understanding of one message plus bookkeeping).
struct CheckinRecord {
  int64_t id = 0;
  std::string
      msgid;  // the inbound message it came from ("" for an office entry); unique per pairing
  int64_t pairing_id = 0;
  std::string helper_id;
  Date visit_date;
  Mode mode = Mode::Visit;
  std::vector<std::string> occasions;  // wedding_funeral, exam, illness, accident, festival
  std::vector<std::string> policies;   // medical_aid, education_aid, housing, minimum_living
  std::vector<std::string> problems;   // short Chinese phrases as found in the text
  std::string note;
  int64_t received_at = 0;           // unix seconds
  std::optional<int64_t> undone_at;  // unix seconds, when marked undone
  std::string undone_by;             // who made it stop counting (userid or office:<login>)
  CheckinStatus status = CheckinStatus::Active;
  std::optional<int64_t> corrected_by;  // the check-in that replaced this one (Corrected)
  std::string entered_by;               // office entries: "office:<login>"; "" for messages
};

/// A raw inbound message, stored before it is handled so nothing a helper sent is lost.
struct InboundMessage {
  std::string msgid;
  std::string platform = "wecom";
  std::string userid;
  std::string chatid;
  std::string chattype;
  std::string text;         // as received, mention included
  int64_t received_at = 0;  // unix seconds
};

/// One line of the month's ledger export (台账): a check-in joined with its pairing.
struct LedgerRow {
  std::string msgid, helper_id, helper_name;
  Ledger ledger = Ledger::Cadre;
  std::string unit, household_id, household_head, person, village;
  Date visit_date;
  Mode mode = Mode::Visit;
  std::vector<std::string> occasions, policies, problems;
  std::string note;
  int64_t received_at = 0;
  CheckinStatus status = CheckinStatus::Active;
  /// No longer counted: undone, corrected or voided (`status` says which).
  bool undone() const { return status != CheckinStatus::Active; }
};

}  // namespace storage
