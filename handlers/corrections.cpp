#include "handlers/corrections.h"

#include <algorithm>

#include "handlers/chinese_date.h"
#include "handlers/dispatcher.h"
#include "handlers/labels.h"
#include "handlers/problem_commands.h"
#include "handlers/text.h"
#include "storage/problems.h"

namespace handlers {
namespace {

using kainjow::mustache::data;
using storage::CheckinRecord;
using storage::Date;
using storage::InboundOutcome;
using storage::LocalTime;
using storage::Month;
using storage::Pairing;

const Pairing* find_pairing(const std::vector<Pairing>& ps, int64_t id) {
  for (const auto& p : ps)
    if (p.id == id) return &p;
  return nullptr;
}

// "12月3日 走访 王*英户": how the chat names one check-in. A pairing no longer among the
// sender's (ended since) is left unnamed: "12月3日 走访".
std::string describe(const CheckinRecord& c, const SenderContext& sender, Date today) {
  const Pairing* p = find_pairing(sender.pairings, c.pairing_id);
  std::string s = chinese_date(c.visit_date, today);
  s.append(" ").append(mode_label(c.mode));
  if (p) s.append(" ").append(masked_whom(*p));
  return s;
}

// Sets `key` to the first five, newest first (a question in the chat stays short), and
// `<key>_total` to how many there are when that is more.
void set_described(data& d, const std::string& key, const std::vector<CheckinRecord>& cs,
                   const SenderContext& sender, Date today) {
  constexpr size_t kShown = 5;
  std::string out;
  for (size_t i = 0; i < cs.size() && i < kShown; ++i)
    out += (out.empty() ? "" : "；") + describe(cs[i], sender, today);
  d.set(key, out);
  if (cs.size() > kShown) d.set(key + "_total", std::to_string(cs.size()));
}

// "王*英户 12月3日": what follows 撤销 in an undo line that names `c` (for the question when
// several match; templates/undo_named.mustache writes the 撤销).
std::string undo_example(const CheckinRecord& c, const SenderContext& sender, Date today) {
  const Pairing* p = find_pairing(sender.pairings, c.pairing_id);
  return (p ? masked_whom(*p) + " " : "") + chinese_date(c.visit_date, today);
}

CheckinRecord record_of(const Checkin& c, const storage::InboundMessage& m, LocalTime now) {
  CheckinRecord rec;
  rec.msgid = m.msgid;
  rec.pairing_id = c.pairing_id;
  rec.helper_id = m.userid;
  rec.visit_date = c.visit_date;
  rec.mode = c.mode;
  rec.occasions = c.occasions;
  rec.policies = c.policies;
  rec.problems = c.problems;
  rec.note = c.note;
  rec.received_at = now.unix_seconds;
  return rec;
}

// A date written in `text` (normalized); nullopt when there is none.
std::optional<DateToken> written_date(std::string_view text, Date today) {
  return find_date(text, today);
}

}  // namespace

std::optional<std::string> parse_correction(std::string_view text, std::string_view bot_name) {
  const std::string t = normalize(text, bot_name);
  constexpr std::string_view kWord = "更正";
  if (!std::string_view(t).starts_with(kWord)) return std::nullopt;
  return std::string(trim_separators(std::string_view(t).substr(kWord.size())));
}

const std::vector<std::string>& correction_template_names() {
  static const std::vector<std::string> kNames = {"correct", "undo_named"};
  return kNames;
}

CorrectionResult apply_correction(storage::Store::Tx& tx, const Templates& templates,
                                  const storage::InboundMessage& m, std::string_view line_text,
                                  const Understanding& line, const SenderContext& sender,
                                  LocalTime now) {
  const Date today = now.date();
  CorrectionResult r;
  data d;
  // Only the latest is corrected (or shown): read it alone.
  const auto last = tx.last_active_checkin(m.userid, now.unix_seconds - kCorrectionWindowSeconds);
  const auto* c = std::get_if<Checkin>(&line);
  if (line_text.empty()) {
    d.set("usage", true);
  } else if (!last) {
    d.set("none", true);
  } else if (!c) {
    // The line after 更正 is not a check-in: say why, as for any check-in, and keep the old one.
    d.set("invalid", true);
    // Names as the parser gives them: the dispatcher masks every name of the sender's pairings.
    if (const auto* e = std::get_if<ParseError>(&line))
      d.set("message", render_question(templates, *e));
    else
      d.set("not_a_checkin", true);
    d.set("last", describe(*last, sender, today));
  } else {
    const CheckinRecord& old = *last;
    const CheckinRecord fresh = record_of(*c, m, now);
    const auto fresh_id = tx.correct_checkin(old.id, fresh, m.userid, now.unix_seconds);
    if (!fresh_id) throw std::runtime_error("the check-in to correct changed under the write unit");
    r.outcome = InboundOutcome::Corrected;
    r.recorded = true;
    const Pairing* p = find_pairing(sender.pairings, c->pairing_id);
    // The replacement's problems become items as any check-in's do, their numbers said in the
    // answer (the old one's untouched open items were closed by the trigger of migration 6, as
    // 打卡已更正).
    if (p && !fresh.problems.empty())
      set_problem_items(
          d, storage::Problems::record(tx, *fresh_id, *p, m.userid, fresh.visit_date,
                                       fresh.problems, fresh.policies, now.unix_seconds));
    const Month visit_month = Month::of(c->visit_date);
    d.set("ok", true);
    d.set("old", describe(old, sender, today));
    d.set("new", describe(fresh, sender, today));
    d.set("month", std::to_string(visit_month.month));
    if (p && !p->person.empty()) d.set("person", true);
    d.set("count", std::to_string(tx.counted_visits(c->pairing_id, visit_month)));
  }
  r.reply = templates.render("correct", d);
  return r;
}

CorrectionResult apply_named_undo(storage::Store::Tx& tx, const Templates& templates,
                                  const storage::InboundMessage& m, std::string_view argument,
                                  const SenderContext& sender, LocalTime now,
                                  std::string_view bot_name) {
  const Date today = now.date();
  CorrectionResult r;
  data d;
  const auto recent =
      tx.active_checkins_since(m.userid, now.unix_seconds - kCorrectionWindowSeconds);
  const Understanding u = understand(argument, sender, today, bot_name);
  const auto date = written_date(normalize(argument, bot_name), today);
  std::optional<int64_t> pairing_id;
  std::optional<Date> day;
  bool error = false;
  const auto* parse_error = std::get_if<ParseError>(&u);
  // The question back (need_day, did_you_mean …) as the chat would get it.
  if (date && date->status != DateToken::Status::Ok) {
    error = true;
    if (parse_error)
      d.set("message", render_question(templates, *parse_error));
    else
      d.set("which_day", true);
  } else if (const auto* c = std::get_if<Checkin>(&u)) {
    pairing_id = c->pairing_id;
    if (date) day = c->visit_date;
  } else if (date && parse_error && parse_error->code == "ambiguous") {
    day = date->date;  // a date, and no name (or one several pairings share): by date alone
  } else {
    error = true;
    // Several names (a CheckinGroup) or any other answer: one check-in is undone at a time.
    const bool named_wrong =
        parse_error && (parse_error->code == "not_paired" || parse_error->code == "did_you_mean");
    if (named_wrong)
      d.set("message", render_question(templates, *parse_error));
    else
      d.set("which_one", true);
  }
  std::vector<CheckinRecord> matching;
  if (pairing_id || day)
    for (const auto& c : recent)
      if ((!pairing_id || c.pairing_id == *pairing_id) && (!day || c.visit_date == *day))
        matching.push_back(c);
  // Both named and still several: the same visit sent twice that day. The newest goes.
  if (pairing_id && day && matching.size() > 1) matching.resize(1);
  std::string what;
  if (pairing_id)
    if (const Pairing* p = find_pairing(sender.pairings, *pairing_id)) what = masked_whom(*p);
  if (day) what = chinese_date(*day, today) + (what.empty() ? "" : " " + what);

  if (error) {
    d.set("error", true);
    if (!recent.empty()) d.set("example", undo_example(recent.front(), sender, today));
  } else if (matching.size() == 1) {
    const CheckinRecord& c = matching.front();
    if (!tx.mark_undone(c.id, m.userid, now.unix_seconds))
      throw std::runtime_error("the check-in to undo changed under the write unit");
    r.outcome = InboundOutcome::Undone;
    r.recorded = true;
    d.set("ok", true);
    d.set("what", describe(c, sender, today));
  } else if (matching.empty()) {
    d.set("none", true);
    d.set("what", what);
    if (!recent.empty()) set_described(d, "recent", recent, sender, today);
  } else {
    d.set("several", true);
    d.set("what", what);
    d.set("n", std::to_string(matching.size()));
    set_described(d, "list", matching, sender, today);
    d.set("example", undo_example(matching.front(), sender, today));
  }
  if (error && !recent.empty()) set_described(d, "recent", recent, sender, today);
  r.reply = templates.render("undo_named", d);
  return r;
}

}  // namespace handlers
