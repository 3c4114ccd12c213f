#include "bot/cli/cmd_office.h"

#include <locale.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <cwchar>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "bot/config.h"
#include "handlers/labels.h"
#include "storage/store.h"

namespace bot {
namespace {

using nlohmann::ordered_json;
using storage::Date;
using storage::LocalTime;

int64_t now_seconds() {
  return static_cast<int64_t>(std::time(nullptr));
}

// --- options -----------------------------------------------------------------------------------

enum class Format { Table, Json };

Format format_of(const Args& a) {
  const std::string f = a.get("format").value_or("table");
  if (f == "table") return Format::Table;
  if (f == "json") return Format::Json;
  throw UsageError("--format must be json or table, not '" + f + "'");
}

Date date_option(const Args& a, const std::string& key) {
  const std::string v = a.need(key);
  auto d = Date::parse_iso(v);
  if (!d) throw UsageError("--" + key + " must be a real date written YYYY-MM-DD, not '" + v + "'");
  return *d;
}

// Local midnight of --since, as unix seconds; 0 (everything) without it.
int64_t since_option(const Args& a, int utc_offset_seconds) {
  if (!a.get("since")) return 0;
  return date_option(a, "since").days() * 86400 - utc_offset_seconds;
}

std::string text_option(const Args& a, const std::string& key, const std::string& why) {
  const std::string v = a.need(key);
  if (v.find_first_not_of(" \t\r\n") == std::string::npos)
    throw UsageError("--" + key + " is empty: " + why);
  return v;
}

int64_t id_option(const Args& a) {
  const std::string v = a.need("id");
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || n <= 0)
    throw UsageError("--id must be a check-in number (see bangfu checkin list), not '" + v + "'");
  return n;
}

std::string local_iso(int64_t unix_seconds, int utc_offset_seconds) {
  return LocalTime{unix_seconds, utc_offset_seconds}.iso();
}

ordered_json null_if_empty(const std::string& s) {
  return s.empty() ? ordered_json() : ordered_json(s);
}

// --- checkin list ------------------------------------------------------------------------------

ordered_json checkin_json(const storage::CheckinListRow& r, int tz) {
  const auto& c = r.checkin;
  const auto& p = r.pairing;
  ordered_json j;
  j["id"] = c.id;
  j["msgid"] = null_if_empty(c.msgid);
  j["helper_id"] = c.helper_id;
  j["helper_name"] = p.helper_name;
  j["household_id"] = p.household_id;
  j["household_head"] = p.household_head;
  j["person"] = null_if_empty(p.person);
  j["ledger"] = storage::ledger_code(p.ledger);
  j["unit"] = p.unit;
  j["visit_date"] = c.visit_date.iso();
  j["mode"] = storage::mode_code(c.mode);
  j["status"] = storage::checkin_status_code(c.status);
  j["occasions"] = c.occasions;
  j["policies"] = c.policies;
  j["problems"] = c.problems;
  j["note"] = c.note;
  j["received_at"] = local_iso(c.received_at, tz);
  j["entered_by"] = null_if_empty(c.entered_by);
  j["corrected_by"] = c.corrected_by ? ordered_json(*c.corrected_by) : ordered_json();
  j["undone_at"] = c.undone_at ? ordered_json(local_iso(*c.undone_at, tz)) : ordered_json();
  j["undone_by"] = null_if_empty(c.undone_by);
  return j;
}

std::string dump(const ordered_json& j) {
  return j.dump(2, ' ', false, ordered_json::error_handler_t::replace);
}

int cmd_checkin_list(const Args& a, std::ostream& out, std::ostream&) {
  const Config config = load_config(a.need("config"));
  const Format format = format_of(a);
  storage::CheckinFilter filter;
  filter.helper_id = a.get("helper");
  filter.household_id = a.get("household");
  if (auto m = a.get("month")) {
    filter.month = storage::Month::parse(*m);
    if (!filter.month) throw UsageError("--month must be YYYY-MM, e.g. 2026-11, not '" + *m + "'");
  }
  storage::Store store(config.database);
  const auto rows = store.checkins(filter);
  const int tz = config.utc_offset_seconds;
  if (format == Format::Json) {
    ordered_json arr = ordered_json::array();
    for (const auto& r : rows) arr.push_back(checkin_json(r, tz));
    out << dump(arr) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : rows) {
    const auto& c = r.checkin;
    std::string status(storage::checkin_status_code(c.status));
    if (c.corrected_by) status += "→#" + std::to_string(*c.corrected_by);
    cells.push_back({std::to_string(c.id), c.visit_date.iso(),
                     c.helper_id + " " + r.pairing.helper_name,
                     r.pairing.household_id + " " + r.pairing.household_head, r.pairing.person,
                     std::string(storage::ledger_label(r.pairing.ledger)),
                     std::string(handlers::mode_label(c.mode)), status,
                     c.msgid.empty() ? c.entered_by : c.msgid, c.note});
  }
  out << format_table(
      {"编号", "走访日期", "帮扶人", "户", "对象", "台账", "方式", "状态", "来源", "备注"}, cells);
  out << rows.size() << " 条\n";
  return 0;
}

// --- checkin void / add ------------------------------------------------------------------------

std::string describe(const storage::CheckinRecord& c, const storage::Pairing* p) {
  std::string s = "#";
  s.append(std::to_string(c.id)).append(" ").append(c.visit_date.iso()).append(" ");
  s.append(handlers::mode_label(c.mode)).append(" ").append(c.helper_id);
  if (p) s.append(" → ").append(p->household_id).append(" ").append(p->display_name());
  return s;
}

int cmd_checkin_void(const Args& a, std::ostream& out, std::ostream&) {
  const Config config = load_config(a.need("config"));
  const int64_t id = id_option(a);
  const std::string reason =
      text_option(a, "reason", "say why it is voided (it goes into the audit list)");
  storage::Store store(config.database);
  const auto c = store.checkin(id);
  if (!c)
    throw UsageError("there is no check-in #" + std::to_string(id) + " (see bangfu checkin list)");
  if (c->status != storage::CheckinStatus::Active)
    throw UsageError("check-in #" + std::to_string(id) + " is already " +
                     std::string(storage::checkin_status_code(c->status)) +
                     (c->undone_by.empty() ? "" : " (by " + c->undone_by + ")") +
                     "; nothing changed");
  const std::string actor = office_actor();
  const int64_t now = now_seconds();
  const bool done = store.transaction(
      [&](storage::Store::Tx& tx) { return tx.void_checkin(id, actor, now, reason); });
  if (!done)  // changed between the read and the write unit (a helper's 撤销)
    throw UsageError("check-in #" + std::to_string(id) +
                     " stopped counting just now; nothing changed");
  const auto p = store.pairing(c->pairing_id);
  out << "voided check-in " << describe(*c, p ? &*p : nullptr) << " (by " << actor
      << ", reason: " << reason << ")\n";
  return 0;
}

std::string pairing_choices(const std::vector<storage::Pairing>& ps) {
  std::string s;
  for (const auto& p : ps) {
    if (!s.empty()) s += ", ";
    s += p.person.empty() ? p.household_head + " (household)" : p.person;
  }
  return s;
}

std::string in_force(const storage::Pairing& p) {
  return (p.start_date ? p.start_date->iso() : std::string("the start")) + " to " +
         (p.end_date ? p.end_date->iso() : std::string("now"));
}

int cmd_checkin_add(const Args& a, std::ostream& out, std::ostream&) {
  const Config config = load_config(a.need("config"));
  const std::string helper = a.need("helper");
  const std::string household = a.need("household");
  const Date date = date_option(a, "date");
  const std::string mode_text = a.need("mode");
  const auto mode = storage::mode_from(mode_text);
  if (!mode)
    throw UsageError("--mode must be visit, home_visit, school_visit, service or phone, not '" +
                     mode_text + "'");
  const std::string reason =
      text_option(a, "reason", "say why the office enters it (e.g. 纸质记录), for the audit list");
  const int64_t now = now_seconds();
  const Date today = LocalTime{now, config.utc_offset_seconds}.date();
  if (date > today)
    throw UsageError("--date " + date.iso() + " is in the future (today is " + today.iso() + ")");

  storage::Store store(config.database);
  if (!store.helper_name(helper))
    throw UsageError("helper '" + helper + "' is not in the roster (check the userid)");
  const auto ps = store.pairings_with(helper, household);
  if (ps.empty())
    throw UsageError("helper '" + helper + "' has no pairing with household '" + household +
                     "' (see the roster)");
  std::vector<storage::Pairing> chosen;
  if (auto person = a.get("person")) {
    for (const auto& p : ps)
      if (p.person == *person || (p.person.empty() && p.household_head == *person))
        chosen.push_back(p);
    if (chosen.empty())
      throw UsageError("'" + *person + "' is not paired with " + helper + " in household " +
                       household + "; the pairings there: " + pairing_choices(ps));
  } else {
    chosen = ps;
    if (chosen.size() > 1)
      throw UsageError(helper + " has " + std::to_string(ps.size()) + " pairings in household " +
                       household + ": add --person NAME (" + pairing_choices(ps) + ")");
  }
  const storage::Pairing& p = chosen.front();
  if (!p.active_on(date))
    throw UsageError("the pairing of " + helper + " with " + household + " " + p.display_name() +
                     " is not in force on " + date.iso() + " (it runs from " + in_force(p) + ")");

  storage::CheckinRecord c;
  c.pairing_id = p.id;
  c.helper_id = helper;
  c.visit_date = date;
  c.mode = *mode;
  c.note = a.get("note").value_or("");
  const std::string actor = office_actor();
  c.id = store.transaction(
      [&](storage::Store::Tx& tx) { return tx.add_office_checkin(c, actor, now, reason); });
  out << "recorded check-in " << describe(c, &p) << " (entered by " << actor
      << ", reason: " << reason << ")\n";
  return 0;
}

// --- audit list --------------------------------------------------------------------------------

// One line for a terminal: the changed fields old→new, the reason, an import's counts.
// `pairing` names a pairing id for people: "GX0002 李德明".
std::string audit_summary(const std::string& detail_text,
                          const std::function<std::string(int64_t)>& pairing) {
  const auto d = nlohmann::json::parse(detail_text, nullptr, false);
  if (d.is_discarded() || !d.is_object()) return detail_text;
  auto str = [](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>()
                         : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : "; ") + part; };
  if (d.contains("helper_id") && d.contains("household_id"))
    add(str(d["helper_id"]) + " → " + str(d["household_id"]) +
        (d.value("person", "").empty() ? "" : " " + str(d["person"])));
  if (d.contains("before") && d["before"].is_object() && d["before"].contains("visit_date"))
    add("was " + str(d["before"]["visit_date"]) + " " + str(d["before"]["mode"]) + " " +
        pairing(d["before"].value("pairing_id", int64_t{0})));
  if (d.contains("after") && d["after"].is_object()) {
    const auto& af = d["after"].contains("checkin") ? d["after"]["checkin"] : d["after"];
    if (af.contains("visit_date"))
      add("now " + str(af["visit_date"]) + " " + str(af["mode"]) + " " +
          pairing(af.value("pairing_id", int64_t{0})));
  }
  if (d.contains("changes") && d["changes"].is_object())
    for (const auto& [k, v] : d["changes"].items())
      if (v.is_array() && v.size() == 2) add(k + ": " + str(v[0]) + " → " + str(v[1]));
  for (const char* k : {"rows", "inserted", "updated", "unchanged", "ended"})
    if (d.contains(k)) add(std::string(k) + " " + str(d[k]));
  if (d.contains("reason")) add("reason: " + str(d["reason"]));
  return s.empty() ? str(d) : s;
}

int cmd_audit_list(const Args& a, std::ostream& out, std::ostream&) {
  const Config config = load_config(a.need("config"));
  const Format format = format_of(a);
  const int tz = config.utc_offset_seconds;
  const int64_t since = since_option(a, tz);
  storage::Store store(config.database);
  const auto entries = store.audit_since(since);
  if (format == Format::Json) {
    ordered_json arr = ordered_json::array();
    for (const auto& e : entries) {
      ordered_json j;
      j["id"] = e.id;
      j["at"] = local_iso(e.at, tz);
      j["actor"] = e.actor;
      j["action"] = e.action;
      j["subject"] = e.subject;
      auto detail = ordered_json::parse(e.detail, nullptr, false);
      j["detail"] = detail.is_discarded() ? ordered_json(e.detail) : detail;
      arr.push_back(std::move(j));
    }
    out << dump(arr) << "\n";
    return 0;
  }
  std::map<int64_t, std::string> names;
  auto pairing = [&](int64_t id) {
    auto [it, fresh] = names.try_emplace(id);
    if (fresh) {
      const auto p = store.pairing(id);
      it->second = p ? p->household_id + " " + p->display_name() : "pairing " + std::to_string(id);
    }
    return it->second;
  };
  std::vector<std::vector<std::string>> cells;
  for (const auto& e : entries)
    cells.push_back({std::to_string(e.id), local_iso(e.at, tz).substr(0, 19), e.actor, e.action,
                     e.subject, audit_summary(e.detail, pairing)});
  out << format_table({"编号", "时间", "操作人", "动作", "对象", "内容"}, cells);
  out << entries.size() << " 条\n";
  return 0;
}

// --- inbox list --------------------------------------------------------------------------------

// The first line of `s`, cut to about `width` display columns with "…".
std::string cut(const std::string& s, size_t width);

int cmd_inbox_list(const Args& a, std::ostream& out, std::ostream&) {
  const Config config = load_config(a.need("config"));
  const Format format = format_of(a);
  const int tz = config.utc_offset_seconds;
  const int64_t since = since_option(a, tz);
  std::optional<std::string> status = a.get("status").value_or("all");
  if (*status == "all")
    status.reset();
  else if (*status != "not_understood" && *status != "failed" && *status != "rate_limited")
    throw UsageError("--status must be not_understood, failed, rate_limited or all, not '" +
                     *status + "'");
  storage::Store store(config.database);
  const auto entries = store.inbox(status, since);
  if (format == Format::Json) {
    ordered_json arr = ordered_json::array();
    for (const auto& e : entries) {
      ordered_json j;
      j["msgid"] = e.message.msgid;
      j["received_at"] = local_iso(e.message.received_at, tz);
      j["userid"] = e.message.userid;
      j["helper_name"] = null_if_empty(store.helper_name(e.message.userid).value_or(""));
      j["chatid"] = e.message.chatid;
      j["text"] = e.message.text;
      j["status"] = e.status;
      j["reply"] = null_if_empty(e.reply);
      j["error"] = null_if_empty(e.error);
      j["handled_at"] = e.handled_at ? ordered_json(local_iso(*e.handled_at, tz)) : ordered_json();
      arr.push_back(std::move(j));
    }
    out << dump(arr) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& e : entries) {
    const std::string who =
        e.message.userid + " " + store.helper_name(e.message.userid).value_or("(不在名册)");
    cells.push_back({local_iso(e.message.received_at, tz).substr(0, 16), who, e.status,
                     cut(e.message.text, 36), cut(e.status == "failed" ? e.error : e.reply, 48)});
  }
  out << format_table({"时间", "发送人", "状态", "消息", "回复"}, cells);
  out << entries.size() << " 条\n";
  return 0;
}

// --- display width -----------------------------------------------------------------------------

// Display columns of a UTF-8 string, by wcwidth in C.UTF-8 (glibc's tables); a byte that does not
// decode, or a control character, counts one.
class Widths {
 public:
  Widths() : loc_(newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr))) {}
  ~Widths() {
    if (loc_) freelocale(loc_);
  }
  Widths(const Widths&) = delete;
  Widths& operator=(const Widths&) = delete;

  // Calls `fn(bytes, columns)` for each character of `s`.
  template <class Fn>
  void each(const std::string& s, Fn fn) const {
    const locale_t old = loc_ ? uselocale(loc_) : static_cast<locale_t>(nullptr);
    std::mbstate_t st{};
    for (size_t i = 0; i < s.size();) {
      wchar_t wc = 0;
      const size_t n = std::mbrtowc(&wc, s.data() + i, s.size() - i, &st);
      if (n == 0 || n == static_cast<size_t>(-1) || n == static_cast<size_t>(-2)) {
        st = std::mbstate_t{};
        fn(1, 1);
        ++i;
        continue;
      }
      const int w = loc_ ? ::wcwidth(wc) : 1;
      fn(n, w < 0 ? 1 : w);
      i += n;
    }
    if (loc_) uselocale(old);
  }
  size_t width(const std::string& s) const {
    size_t w = 0;
    each(s, [&](size_t, int cols) { w += static_cast<size_t>(cols); });
    return w;
  }

 private:
  locale_t loc_;
};

std::string cut(const std::string& s, size_t width) {
  std::string line = s.substr(0, s.find('\n'));
  const bool more_lines = line.size() < s.size();
  Widths widths;
  if (widths.width(line) <= width && !more_lines) return line;
  std::string out;
  size_t used = 0, pos = 0;
  bool full = false;
  widths.each(line, [&](size_t bytes, int cols) {
    if (full) return;
    if (used + static_cast<size_t>(cols) > width - 1) {
      full = true;
      return;
    }
    out += line.substr(pos, bytes);
    used += static_cast<size_t>(cols);
    pos += bytes;
  });
  return out + "…";
}

}  // namespace

std::string format_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows) {
  Widths widths;
  std::vector<size_t> col(headers.size(), 0);
  auto measure = [&](const std::vector<std::string>& r) {
    for (size_t i = 0; i < r.size() && i < col.size(); ++i)
      col[i] = std::max(col[i], widths.width(r[i]));
  };
  measure(headers);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (size_t i = 0; i < col.size(); ++i) {
      const std::string cell = i < r.size() ? r[i] : "";
      l += cell;
      if (i + 1 < col.size()) l += std::string(col[i] - widths.width(cell) + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(headers);
  std::vector<std::string> rule;
  for (size_t w : col) rule.push_back(std::string(w, '-'));
  line(rule);
  for (const auto& r : rows) line(r);
  return out;
}

std::string office_actor() {
  for (const char* var : {"SUDO_USER", "LOGNAME", "USER"})
    if (const char* v = std::getenv(var); v && *v) return std::string("office:") + v;
  if (const passwd* pw = getpwuid(geteuid()); pw && pw->pw_name)
    return std::string("office:") + pw->pw_name;
  return "office:uid" + std::to_string(geteuid());
}

std::vector<CommandSpec> office_commands() {
  return {
      {"checkin list",
       "list check-ins with their status (active, undone, corrected, void)",
       "usage: bangfu checkin list --config FILE [--helper ID] [--household ID] [--month YYYY-MM]\n"
       "                           [--format json|table]\n"
       "Lists check-ins of every status, by visit date. Each option given narrows the list.\n"
       "table (the default) lines up in a terminal; json is an array of objects with id, msgid\n"
       "(null for office entries), helper_id, household_id, person, ledger, visit_date, mode,\n"
       "status, entered_by, corrected_by and the rest of the record.\n",
       {"config", "helper", "household", "month", "format"},
       {},
       cmd_checkin_list},
      {"checkin void",
       "void a check-in (it is kept, and stops counting)",
       "usage: bangfu checkin void --config FILE --id N --reason TEXT\n"
       "Marks check-in N void: kept in the ledger, no longer counted in coverage or bulletins.\n"
       "Who (office:<login name>), when, what it was and the reason go into the audit list.\n"
       "Exit 2, nothing changed, if N does not exist or no longer counts.\n",
       {"config", "id", "reason"},
       {},
       cmd_checkin_void},
      {"checkin add",
       "enter a check-in from a paper record (helpers without a phone)",
       "usage: bangfu checkin add --config FILE --helper ID --household ID [--person NAME]\n"
       "                          --date YYYY-MM-DD --mode "
       "visit|home_visit|school_visit|service|phone\n"
       "                          [--note TEXT] --reason TEXT\n"
       "Records a check-in the office enters: no message (msgid null), entered_by\n"
       "office:<login name>, audited with the reason. The helper must be paired with the "
       "household\n"
       "(and person, when the helper has several there) on that date; no future dates.\n",
       {"config", "helper", "household", "person", "date", "mode", "note", "reason"},
       {},
       cmd_checkin_add},
      {"audit list",
       "who changed what, when, before/after and why",
       "usage: bangfu audit list --config FILE [--since YYYY-MM-DD] [--format json|table]\n"
       "Lists the audit trail, oldest first: check-ins undone, corrected, voided or added, and\n"
       "roster imports with every pairing they updated, reopened or ended. --since counts from\n"
       "that day's midnight in the configured time zone. json gives each entry's detail as an "
       "object.\n",
       {"config", "since", "format"},
       {},
       cmd_audit_list},
      {"inbox list",
       "the messages the bot did not record, with what it answered",
       "usage: bangfu inbox list --config FILE [--status not_understood|failed|rate_limited|all]\n"
       "                         [--since YYYY-MM-DD] [--format json|table]\n"
       "Lists messages the bot did not record as a check-in, so the office can follow up:\n"
       "not_understood (answered with a question or an error), failed (handling failed; the\n"
       "error is shown) and rate_limited. Default: all of them, since the beginning.\n",
       {"config", "status", "since", "format"},
       {},
       cmd_inbox_list},
  };
}

}  // namespace bot
