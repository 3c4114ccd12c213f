#include "storage/problems.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "storage/columns.h"

namespace storage {
namespace {

using nlohmann::json;

constexpr std::string_view kStatusCodes[] = {"open", "in_progress", "resolved", "not_a_problem"};
constexpr std::string_view kStatusLabels[] = {"待跟进", "跟进中", "已解决", "不是问题"};

std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The columns every read of an item selects, from problems q joined with pairings p.
#define BANGFU_PROBLEM_COLUMNS                                                               \
  "SELECT q.id, q.checkin_id, q.pairing_id, q.household_id, p.household_head, q.person, "    \
  "q.ledger, q.unit, q.reported_by, q.reported_on, q.category, q.policy, q.text, q.status, " \
  "q.status_on, q.closed_on FROM problems q JOIN pairings p ON p.id = q.pairing_id "
constexpr const char* kColumns = BANGFU_PROBLEM_COLUMNS;

ProblemStatus status_col(const SQLite::Column& c) {
  auto s = problem_status_from(c.getString());
  if (!s) throw SQLite::Exception("stored problem status is unknown: " + c.getString());
  return *s;
}

Problem read_problem(SQLite::Statement& s) {
  Problem p;
  p.id = s.getColumn(0).getInt64();
  if (!s.getColumn(1).isNull()) p.checkin_id = s.getColumn(1).getInt64();
  p.pairing_id = s.getColumn(2).getInt64();
  p.household_id = s.getColumn(3).getString();
  p.household_head = s.getColumn(4).getString();
  p.person = s.getColumn(5).getString();
  p.ledger = ledger_col(s.getColumn(6));
  p.unit = s.getColumn(7).getString();
  p.reported_by = s.getColumn(8).getString();
  p.reported_on = required_date_col(s.getColumn(9));
  p.category.category = s.getColumn(10).getString();
  p.category.policy = s.getColumn(11).getString();
  p.text = s.getColumn(12).getString();
  p.status = status_col(s.getColumn(13));
  p.status_on = required_date_col(s.getColumn(14));
  p.closed_on = date_col(s.getColumn(15));
  return p;
}

std::vector<Problem> read_all(SQLite::Statement& s) {
  std::vector<Problem> out;
  while (s.executeStep()) out.push_back(read_problem(s));
  return out;
}

// The statements below run for every problem a check-in reports: each is prepared once per
// connection (Store::prepared) and reused. Each takes the statement and runs it.
constexpr const char* kFindSql = BANGFU_PROBLEM_COLUMNS "WHERE q.id = ?1";
#undef BANGFU_PROBLEM_COLUMNS
constexpr const char* kAuditSql =
    "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kHistorySql =
    "INSERT INTO problem_history (problem_id, on_date, at, actor, from_status, to_status, note) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* kInsertSql =
    "INSERT INTO problems (checkin_id, pairing_id, household_id, person, ledger, unit, "
    "reported_by, reported_on, category, policy, text, status_on, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?8, ?12, ?12)";

std::optional<Problem> find_in(SQLite::Statement& s, int64_t id) {
  Use use(s);
  s.bind(1, id);
  if (!s.executeStep()) return std::nullopt;
  return read_problem(s);
}

void audit(SQLite::Statement& s, int64_t at, const std::string& actor, std::string_view action,
           int64_t problem_id, const json& detail) {
  Use use(s);
  s.bind(1, at);
  s.bind(2, actor);
  s.bind(3, std::string(action));
  s.bind(4, "problem:" + std::to_string(problem_id));
  s.bind(5, json_text(detail));
  s.exec();
}

void history(SQLite::Statement& s, int64_t problem_id, Date on, int64_t at,
             const std::string& actor, std::string_view from, std::string_view to,
             const std::string& note) {
  Use use(s);
  s.bind(1, problem_id);
  s.bind(2, on.iso());
  s.bind(3, at);
  s.bind(4, actor);
  s.bind(5, std::string(from));
  s.bind(6, std::string(to));
  s.bind(7, note);
  s.exec();
}

}  // namespace

std::string_view problem_status_code(ProblemStatus s) {
  return kStatusCodes[static_cast<int>(s)];
}

std::optional<ProblemStatus> problem_status_from(std::string_view code) {
  for (int i = 0; i < 4; ++i)
    if (kStatusCodes[i] == code) return static_cast<ProblemStatus>(i);
  return std::nullopt;
}

std::string_view problem_status_label(ProblemStatus s) {
  return kStatusLabels[static_cast<int>(s)];
}

std::vector<Problem> Problems::record(Store::Tx& tx, int64_t checkin_id, const Pairing& pairing,
                                      const std::string& reporter, Date reported_on,
                                      const std::vector<std::string>& phrases,
                                      const std::vector<std::string>& policies, int64_t at) {
  Store& store = tx.s_;
  std::vector<Problem> out;
  for (const auto& phrase : phrases) {
    const ProblemCategory c = classify_problem(phrase, policies);
    {
      SQLite::Statement& s = store.prepared(kInsertSql);
      Use use(s);
      s.bind(1, checkin_id);
      s.bind(2, pairing.id);
      s.bind(3, pairing.household_id);
      s.bind(4, pairing.person);
      s.bind(5, std::string(ledger_code(pairing.ledger)));
      s.bind(6, pairing.unit);
      s.bind(7, reporter);
      s.bind(8, reported_on.iso());
      s.bind(9, c.category);
      s.bind(10, c.policy);
      s.bind(11, phrase);
      s.bind(12, at);
      s.exec();
    }
    const int64_t id = store.db_->getLastInsertRowid();
    history(store.prepared(kHistorySql), id, reported_on, at, reporter, "", "open", phrase);
    audit(store.prepared(kAuditSql), at, reporter, "problem_open", id,
          json{{"checkin_id", checkin_id},
               {"household_id", pairing.household_id},
               {"category", c.category},
               {"policy", c.policy},
               {"text", phrase}});
    out.push_back(*find_in(store.prepared(kFindSql), id));
  }
  return out;
}

std::optional<Problem> Problems::find(Store::Tx& tx, int64_t id) {
  return find_in(tx.s_.prepared(kFindSql), id);
}

bool Problems::set_status(Store::Tx& tx, int64_t id, ProblemStatus to, const std::string& actor,
                          const std::string& note, Date on, int64_t at) {
  Store& store = tx.s_;
  SQLite::Database& db = *store.db_;
  auto p = find_in(store.prepared(kFindSql), id);
  if (!p) throw SQLite::Exception("no problem #" + std::to_string(id));
  if (p->status == to) return false;
  {
    SQLite::Statement s(db,
                        "UPDATE problems SET status = ?2, status_on = ?3, closed_on = ?4, "
                        "changes = changes + 1, updated_at = ?5 WHERE id = ?1");
    s.bind(1, id);
    s.bind(2, std::string(problem_status_code(to)));
    s.bind(3, on.iso());
    if (is_closed(to))
      s.bind(4, on.iso());
    else
      s.bind(4);
    s.bind(5, at);
    s.exec();
  }
  history(store.prepared(kHistorySql), id, on, at, actor, problem_status_code(p->status),
          problem_status_code(to), note);
  audit(store.prepared(kAuditSql), at, actor, "problem_status", id,
        json{{"status", json::array({problem_status_code(p->status), problem_status_code(to)})},
             {"note", note}});
  return true;
}

std::vector<Problem> Problems::open_for(Store::Tx& tx, const std::string& reporter,
                                        const std::vector<std::string>& household_ids) {
  SQLite::Database& db = *tx.s_.db_;
  json ids = household_ids;
  SQLite::Statement s(db, std::string(kColumns) +
                              "WHERE q.status IN ('open', 'in_progress') AND (q.reported_by = ?1 "
                              "OR q.household_id IN (SELECT value FROM json_each(?2))) "
                              "ORDER BY q.id");
  s.bind(1, reporter);
  s.bind(2, json_text(ids));
  return read_all(s);
}

std::vector<Problem> Problems::list(Store& store, std::optional<ProblemStatus> status,
                                    std::optional<Ledger> ledger) {
  std::lock_guard lock(store.mu_);
  SQLite::Statement s(*store.db_, std::string(kColumns) +
                                      "WHERE (?1 IS NULL OR q.status = ?1) "
                                      "AND (?2 IS NULL OR q.ledger = ?2) ORDER BY q.id");
  if (status)
    s.bind(1, std::string(problem_status_code(*status)));
  else
    s.bind(1);
  if (ledger)
    s.bind(2, std::string(ledger_code(*ledger)));
  else
    s.bind(2);
  return read_all(s);
}

std::optional<Problem> Problems::get(Store& store, int64_t id) {
  std::lock_guard lock(store.mu_);
  auto p = find_in(store.prepared(kFindSql), id);
  if (!p) return std::nullopt;
  SQLite::Statement s(*store.db_,
                      "SELECT on_date, at, actor, from_status, to_status, note "
                      "FROM problem_history WHERE problem_id = ?1 ORDER BY id");
  s.bind(1, id);
  while (s.executeStep())
    p->history.push_back({required_date_col(s.getColumn(0)), s.getColumn(1).getInt64(),
                          s.getColumn(2).getString(), s.getColumn(3).getString(),
                          s.getColumn(4).getString(), s.getColumn(5).getString()});
  return p;
}

// --- published bulletins ---------------------------------------------------------------------

void PublishedBulletins::record(Store& store, const PostedBulletin& b) {
  store.transaction([&](Store::Tx& tx) {
    SQLite::Database& db = *tx.s_.db_;
    SQLite::Statement s(db,
                        "INSERT INTO bulletin_records (kind, period, ledger, figures, posted_at) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)");
    s.bind(1, b.kind);
    s.bind(2, b.period);
    s.bind(3, b.ledger);
    s.bind(4, b.figures);
    s.bind(5, b.posted_at);
    s.exec();
  });
}

namespace {
PostedBulletin read_posted(SQLite::Statement& s) {
  return {s.getColumn(0).getInt64(),  s.getColumn(1).getString(), s.getColumn(2).getString(),
          s.getColumn(3).getString(), s.getColumn(4).getString(), s.getColumn(5).getInt64()};
}
}  // namespace

std::optional<PostedBulletin> PublishedBulletins::latest(Store& store, std::string_view kind,
                                                         std::string_view period,
                                                         std::string_view ledger) {
  std::lock_guard lock(store.mu_);
  SQLite::Statement s(*store.db_,
                      "SELECT id, kind, period, ledger, figures, posted_at FROM bulletin_records "
                      "WHERE kind = ?1 AND ledger = ?2 AND period = ?3 "
                      "ORDER BY posted_at DESC, id DESC LIMIT 1");
  s.bind(1, std::string(kind));
  s.bind(2, std::string(ledger));
  s.bind(3, std::string(period));
  if (!s.executeStep()) return std::nullopt;
  return read_posted(s);
}

std::vector<PostedBulletin> PublishedBulletins::before(Store& store, std::string_view kind,
                                                       std::string_view ledger,
                                                       std::string_view period, int limit) {
  std::lock_guard lock(store.mu_);
  SQLite::Statement s(*store.db_,
                      "SELECT id, kind, period, ledger, figures, max(posted_at) "
                      "FROM bulletin_records WHERE kind = ?1 AND ledger = ?2 AND period < ?3 "
                      "GROUP BY period ORDER BY period DESC LIMIT ?4");
  s.bind(1, std::string(kind));
  s.bind(2, std::string(ledger));
  s.bind(3, std::string(period));
  s.bind(4, limit);
  std::vector<PostedBulletin> out;
  while (s.executeStep()) out.push_back(read_posted(s));
  return out;
}

LateChanges PublishedBulletins::changes_since(Store& store, Date from, Date to,
                                              std::optional<Ledger> only, int64_t since) {
  std::lock_guard lock(store.mu_);
  // From checkins_visit_cover alone (plus the pairing's ledger by its key). A check-in that
  // replaced a corrected one is the correction, not a late report.
  SQLite::Statement s(*store.db_,
                      "SELECT CASE WHEN c.received_at > ?4 THEN 'late' ELSE c.status END, count(*) "
                      "FROM checkins c JOIN pairings p ON p.id = c.pairing_id "
                      "WHERE c.visit_date BETWEEN ?1 AND ?2 AND (?3 IS NULL OR p.ledger = ?3) AND ("
                      " (c.received_at > ?4 AND c.status = 'active' AND NOT EXISTS "
                      "   (SELECT 1 FROM checkins o WHERE o.corrected_by = c.id))"
                      " OR (c.received_at <= ?4 AND c.undone_at > ?4)) "
                      "GROUP BY 1");
  bind_period(s, from, to, only);
  s.bind(4, since);
  LateChanges out;
  while (s.executeStep()) {
    const std::string kind = s.getColumn(0).getString();
    const int n = s.getColumn(1).getInt();
    if (kind == "late") out.late = n;
    if (kind == "corrected") out.corrected = n;
    if (kind == "undone") out.undone = n;
    if (kind == "void") out.voided = n;
  }
  return out;
}

}  // namespace storage
