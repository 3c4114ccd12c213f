#include "bot/cli/cmd_problem.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <ostream>

#include "bot/cli/cmd_office.h"
#include "bot/config.h"
#include "bot/delivery.h"
#include "storage/problems.h"
#include "storage/store.h"

namespace bot {
namespace {

using nlohmann::json;
using storage::Problem;
using storage::ProblemStatus;

json date_or_null(const std::optional<storage::Date>& d) {
  return d ? json(d->iso()) : json(nullptr);
}

json to_json(const Problem& p) {
  return json{
      {"id", p.id},
      {"household_id", p.household_id},
      {"person", p.person},
      {"ledger", storage::ledger_code(p.ledger)},
      {"unit", p.unit},
      {"reported_by", p.reported_by},
      {"reported_on", p.reported_on.iso()},
      {"category", p.category.category},
      {"policy", p.category.policy.empty() ? json(nullptr) : json(p.category.policy)},
      {"status", storage::problem_status_code(p.status)},
      {"status_on", p.status_on.iso()},
      {"text", p.text},
      {"resolved_on",
       p.status == ProblemStatus::Resolved ? date_or_null(p.closed_on) : json(nullptr)},
      {"closed_on", date_or_null(p.closed_on)},
      {"checkin_id", p.checkin_id ? json(*p.checkin_id) : json(nullptr)},
  };
}

int64_t parse_id(const std::string& text) {
  int64_t id = 0;
  if (text.empty() || text.size() > 12 ||
      text.find_first_not_of("0123456789") != std::string::npos || (id = std::stoll(text)) <= 0)
    throw UsageError("--id must be a problem number such as 12 (got '" + text + "')");
  return id;
}

std::optional<ProblemStatus> parse_status(const std::string& text, bool allow_all) {
  if (allow_all && text == "all") return std::nullopt;
  auto s = storage::problem_status_from(text);
  if (!s)
    throw UsageError("--status must be open, in_progress, resolved" +
                     std::string(allow_all ? ", not_a_problem or all" : " or not_a_problem") +
                     " (got '" + text + "')");
  return s;
}

int cmd_list(const Args& a, std::ostream& out, std::ostream&) {
  const auto status = parse_status(a.get("status").value_or("all"), true);
  std::optional<storage::Ledger> ledger;
  if (auto l = a.get("ledger")) {
    ledger = storage::ledger_from(*l);
    if (!ledger) throw UsageError("--ledger must be cadre, health or education (got '" + *l + "')");
  }
  const std::string format = a.get("format").value_or("table");
  if (format != "json" && format != "table")
    throw UsageError("--format must be json or table (got '" + format + "')");
  const Config config = load_config(a.need("config"));
  storage::Store store(config.database);
  const auto items = storage::Problems::list(store, status, ledger);
  if (format == "json") {
    json arr = json::array();
    for (const auto& p : items) arr.push_back(to_json(p));
    out << arr.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : items)
    rows.push_back({std::to_string(p.id), std::string(storage::problem_status_code(p.status)),
                    p.reported_on.iso(), std::string(storage::ledger_code(p.ledger)), p.unit,
                    p.household_id, storage::category_text(p.category), p.text});
  out << format_table(
      {"id", "status", "reported_on", "ledger", "unit", "household", "category", "text"}, rows);
  out << items.size() << " problem" << (items.size() == 1 ? "" : "s") << "\n";
  return 0;
}

int cmd_show(const Args& a, std::ostream& out, std::ostream& err) {
  const int64_t id = parse_id(a.need("id"));
  const Config config = load_config(a.need("config"));
  storage::Store store(config.database);
  const auto p = storage::Problems::get(store, id);
  if (!p) {
    err << "bangfu: no problem #" << id << " (see bangfu problem list)\n";
    return 2;
  }
  out << "问题 #" << p->id << "  " << storage::problem_status_code(p->status) << " ("
      << storage::problem_status_label(p->status) << ")\n"
      << "household: " << p->household_id << " " << p->household_head
      << (p->person.empty() ? "" : " / " + p->person) << "\n"
      << "ledger:    " << storage::ledger_code(p->ledger) << "  unit: " << p->unit << "\n"
      << "reported:  " << p->reported_on.iso() << " by " << p->reported_by
      << (p->checkin_id ? " (check-in " + std::to_string(*p->checkin_id) + ")" : "") << "\n"
      << "category:  " << storage::category_text(p->category) << "\n"
      << "text:      " << p->text << "\n\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : p->history)
    rows.push_back({h.on.iso(), h.actor,
                    h.from_status.empty() ? h.to_status : h.from_status + " -> " + h.to_status,
                    h.note});
  out << format_table({"date", "who", "status", "note"}, rows);
  return 0;
}

int cmd_set(const Args& a, std::ostream& out, std::ostream& err) {
  const int64_t id = parse_id(a.need("id"));
  const ProblemStatus to = *parse_status(a.need("status"), false);
  const std::string note = a.need("note");
  if (note.find_first_not_of(" \t") == std::string::npos)
    throw UsageError("--note must say why (e.g. --note '低保已批')");
  const Config config = load_config(a.need("config"));
  storage::Store store(config.database);
  bool fake = false;
  const storage::LocalTime now{delivery_clock(fake)(), config.utc_offset_seconds};
  const std::string actor = office_actor();
  // Checked and changed in one unit: nothing changes when the item does not exist.
  enum class Result { Missing, Same, Changed };
  const Result r = store.transaction([&](storage::Store::Tx& tx) {
    if (!storage::Problems::find(tx, id)) return Result::Missing;
    return storage::Problems::set_status(tx, id, to, actor, note, now.date(), now.unix_seconds)
               ? Result::Changed
               : Result::Same;
  });
  if (r == Result::Missing) {
    err << "bangfu: no problem #" << id << " (see bangfu problem list); nothing changed\n";
    return 2;
  }
  if (r == Result::Same) {
    out << "problem #" << id << " is already " << storage::problem_status_code(to)
        << "; nothing changed\n";
    return 0;
  }
  out << "problem #" << id << " is now " << storage::problem_status_code(to) << " (by " << actor
      << ")\n";
  return 0;
}

}  // namespace

std::vector<CommandSpec> problem_commands() {
  return {
      {"problem list",
       "list tracked problems (问题)",
       "usage: bangfu problem list --config FILE\n"
       "                           [--status open|in_progress|resolved|not_a_problem|all]\n"
       "                           [--ledger cadre|health|education] [--format json|table]\n"
       "Lists the problems helpers reported, by number. Default: all statuses, as a table.\n"
       "JSON: an array of objects with id, household_id, ledger, reported_by, reported_on,\n"
       "category, policy, status, text, resolved_on (null unless resolved), closed_on, ...\n",
       {"config", "status", "ledger", "format"},
       {},
       cmd_list},
      {"problem show",
       "show one problem and its history",
       "usage: bangfu problem show --config FILE --id N\n"
       "Shows problem N: household, ledger, unit, reporter, category, text and every change.\n",
       {"config", "id"},
       {},
       cmd_show},
      {"problem set",
       "change a problem's status (office)",
       "usage: bangfu problem set --config FILE --id N\n"
       "                          --status open|in_progress|resolved|not_a_problem --note TEXT\n"
       "Sets the status of problem N, recorded as office:<login name> ($SUDO_USER, else\n"
       "$LOGNAME/$USER) with the note, in the item's history and the audit list. Works while\n"
       "the service runs. Exit 2 on bad input, with nothing changed.\n",
       {"config", "id", "status", "note"},
       {},
       cmd_set},
  };
}

}  // namespace bot
