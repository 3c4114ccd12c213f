#include "handlers/dispatcher.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "handlers/corrections.h"
#include "handlers/labels.h"
#include "handlers/problem_commands.h"
#include "handlers/text.h"
#include "handlers/understanding.h"
#include "storage/problems.h"

namespace handlers {
namespace {

using kainjow::mustache::data;
using storage::Date;
using storage::LocalTime;
using storage::Month;
using storage::Pairing;

// The flag templates/checkin.mustache words as 今天, 昨天, 前天; "" for any other day.
const char* relative_day(Date d, Date today) {
  const auto diff = today.days() - d.days();
  if (diff == 0) return "today";
  if (diff == 1) return "yesterday";
  if (diff == 2) return "day_before";
  return "";
}

const Pairing* find_pairing(const std::vector<Pairing>& ps, int64_t id) {
  for (const auto& p : ps)
    if (p.id == id) return &p;
  return nullptr;
}

}  // namespace

// Replaces every full name of the sender's pairings with its masked form. The last line of the
// privacy rule: whatever a template or parser message says, no beneficiary name reaches the chat.
std::string mask_names(std::string text, const std::vector<Pairing>& pairings) {
  // Longest first, so a name that contains another is masked whole. It runs on the Store's
  // writer for every reply, and a reply names one pairing or none of a helper's many: nothing
  // is copied or masked for a name that is not in it.
  std::vector<std::string_view> names;
  names.reserve(2 * pairings.size());
  for (const auto& p : pairings) {
    if (!p.household_head.empty()) names.push_back(p.household_head);
    if (!p.person.empty()) names.push_back(p.person);
  }
  std::sort(names.begin(), names.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  for (const std::string_view n : names) {
    size_t pos = text.find(n);
    if (pos == std::string::npos) continue;
    const std::string masked = mask_name(std::string(n));
    for (; pos != std::string::npos; pos = text.find(n, pos)) {
      text.replace(pos, n.size(), masked);
      pos += masked.size();
    }
  }
  return text;
}

Understanding as_handled(std::string_view text, const SenderContext& sender, Date today,
                         std::string_view bot_name) {
  // handle_locked answers every command but 帮助 from off the roster with unknown_sender.
  if (!sender.known) return ParseError{"unknown_sender", {}};
  return understand(text, sender, today, bot_name);
}

std::string render_question(const Templates& templates, const ParseError& e) {
  data d;
  d.set(e.code, true);
  for (const auto& [k, v] : e.fields) {
    if (k == "reason") {
      d.set(v, true);
    } else if (!v.empty()) {
      d.set(k, v);
    }
  }
  // The names to choose from; the usage examples of not_understood are for tools.
  if ((e.code == "not_paired" || e.code == "ambiguous") && !e.suggestions.empty())
    d.set("names", join(e.suggestions, "、"));
  const char* name = e.code == "unknown_sender" ? "unknown_sender"
                     : is_question_code(e.code) ? "ask"
                                                : "error";
  return templates.render_trimmed(name, d);
}

void check_answer_templates(const Templates& templates) {
  using Fields = std::map<std::string, std::string>;
  struct Case {
    const char* name;
    const char* code;
    Fields fields;
  };
  const Fields two = {{"count", "2"}, {"said", "王*英"}, {"example", "走访 东沟村王*英户 今天"}};
  const std::vector<Case> cases = {
      {"ask", "not_done", {{"reason", "plan"}, {"example", "走访 王*英户 今天"}}},
      {"ask", "not_done", {{"reason", "not_went"}}},
      {"ask", "not_done", {{"reason", "missed"}}},
      {"ask", "not_done", {{"reason", "call_failed"}}},
      {"ask", "need_day", {{"said", "上周"}}},
      {"ask", "date_range", {{"said", "这几天"}}},
      {"ask", "did_you_mean", {{"said", "王*三"}, {"whom", "王*山户"}}},
      {"ask", "unmatched", {{"said", "赵*海"}}},
      {"ask", "not_in_force", {{"date", "12月1日"}, {"whom", "王*英户"}}},
      {"ask", "some_not_done", {{"whom", "王*英户"}}},
      {"ask", "other_day", {{"said", "17号"}}},
      {"error", "not_understood", {}},
      {"error", "future_date", {{"date", "12月30日"}}},
      {"error", "invalid_date", {{"reason", "bad_month"}, {"said", "13月2日"}}},
      {"error", "invalid_date", {{"reason", "no_such_day"}, {"said", "2月30日"}}},
      {"error", "not_paired", {{"reason", "stranger"}, {"said", "李*"}}},
      {"error", "not_paired", {{"reason", "no_pairings"}}},
      {"error", "ambiguous", {{"reason", "whom"}, {"count", "2"}}},
      {"error", "ambiguous",
       [&] {
         Fields f = two;
         f["reason"] = "same_name";
         return f;
       }()},
      {"error", "ambiguous",
       [&] {
         Fields f = two;
         f["reason"] = "several_said";
         return f;
       }()},
      {"service", "welcome", {{"bot_name", "帮扶助手"}}},
      {"service", "rate_limited", {{"per_minute", "20"}}},
      {"service", "not_text", {}},
      {"bulletin_reply", "admins_only", {}},
      {"bulletin_reply", "bad_period", {}},
      {"bulletin_reply", "not_started", {}},
      {"bulletin_reply", "cut", {}},
      {"reminder", "heading", {{"month", "11"}, {"day", "20"}}},
      {"reminder", "helper", {{"name", "张伟"}, {"unit", "区财政局"}, {"unvisited", "2"}}},
      {"reminder", "closing", {}},
  };
  for (const auto& c : cases) {
    if (!templates.has(c.name)) continue;
    data d;
    d.set(c.code, true);
    for (const auto& [k, v] : c.fields) {
      if (k == "reason")
        d.set(v, true);
      else
        d.set(k, v);
    }
    if (templates.render_trimmed(c.name, d).empty()) {
      const auto reason = c.fields.find("reason");
      throw TemplateError(std::string(c.name) + ".mustache:0: says nothing for " + c.code +
                          (reason == c.fields.end() ? "" : " (" + reason->second + ")") +
                          "; a templates folder from an older release? Compare it with the "
                          "shipped templates/");
    }
  }
}

std::vector<std::string> dispatcher_template_names() {
  std::vector<std::string> names = Templates::reply_names();
  for (const auto& n : bulletin_template_names()) names.push_back(n);
  return names;
}

bool Dispatcher::is_admin(const std::string& userid) const {
  return std::find(options_.admins.begin(), options_.admins.end(), userid) != options_.admins.end();
}

std::string Dispatcher::bulletin_reply(const CommandMsg& cmd, const std::string& userid,
                                       LocalTime now) {
  const bool monthly = cmd.command == Command::Bulletin;
  // One of the short answers of templates/bulletin_reply.mustache.
  const auto answer = [&](const char* code) {
    data d;
    d.set(code, true);
    if (monthly) d.set("monthly", true);
    return templates_.render_trimmed("bulletin_reply", d);
  };
  if (!is_admin(userid)) return answer("admins_only");
  const Date today = now.date();
  const BulletinKind kind = monthly ? BulletinKind::Monthly : BulletinKind::Quarterly;
  std::optional<Period> period;
  std::optional<storage::Ledger> ledger;
  std::string arg = cmd.argument;
  for (size_t start = 0; start < arg.size();) {
    size_t end = arg.find(' ', start);
    if (end == std::string::npos) end = arg.size();
    const std::string word = arg.substr(start, end - start);
    start = end + 1;
    if (word.empty()) continue;
    if (auto l = storage::ledger_from(word)) {
      ledger = l;
    } else if (auto p = Period::parse(word); p && p->kind == kind) {
      period = p;
    } else {
      return answer("bad_period");
    }
  }
  if (!period) period = Period::containing(kind, today).prev();
  if (period->first() > today) return answer("not_started");
  std::string text = render_bulletin(store_, templates_, *period, ledger, options_.bulletin, now);
  // A passive reply holds at most 20480 bytes; cut at a line and point to the full version.
  constexpr size_t kMaxReply = 20480 - 200;
  if (text.size() > kMaxReply) {
    size_t cut = text.rfind('\n', kMaxReply);
    text = text.substr(0, cut == std::string::npos ? 0 : cut) + "\n" + answer("cut");
  }
  return text;
}

// The reverse of mask_names for a one-to-one chat, where only the helper reads the answer: each
// masked name of the sender's pairings written in full again. A masked form that two of the
// pairings share (王秀英 and 王桂英 are both 王*英) stays masked, as it cannot be told apart.
std::string unmask_names(std::string text, const std::vector<Pairing>& pairings) {
  std::map<std::string, std::string> full;  // masked → full name; "" when ambiguous
  for (const auto& p : pairings)
    for (const std::string* n : {&p.household_head, &p.person}) {
      if (n->empty()) continue;
      auto [it, inserted] = full.try_emplace(mask_name(*n), *n);
      if (!inserted && it->second != *n) it->second.clear();
    }
  std::vector<std::pair<std::string, std::string>> order(full.begin(), full.end());
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [masked, name] : order) {
    if (name.empty() || masked == name) continue;
    for (size_t pos = text.find(masked); pos != std::string::npos; pos = text.find(masked, pos)) {
      text.replace(pos, masked.size(), name);
      pos += name.size();
    }
  }
  return text;
}

std::string Dispatcher::service_answer(const std::string& code,
                                       const std::map<std::string, std::string>& fields) const {
  data d;
  d.set(code, true);
  for (const auto& [k, v] : fields) d.set(k, v);
  return templates_.render_trimmed("service", d);
}

Dispatcher::Dispatcher(storage::Store& store, const Templates& templates, DispatchOptions options)
    : store_(store), templates_(templates), options_(std::move(options)) {}

Outcome Dispatcher::handle(const storage::InboundMessage& message, LocalTime now) {
  // The outcome and the error are moved to this thread, so the writer keeps no reference to the
  // exception (see Store::submit).
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Outcome outcome;
    std::exception_ptr error;
  };
  auto wait = std::make_shared<Wait>();
  handle_async(
      message, now, [](std::function<void()> work) { work(); },
      [wait](Outcome out, std::exception_ptr error) {
        std::lock_guard lock(wait->mu);
        wait->outcome = std::move(out);
        wait->error = std::move(error);
        wait->done = true;
        wait->cv.notify_one();
      });
  std::unique_lock lock(wait->mu);
  wait->cv.wait(lock, [&] { return wait->done; });
  if (std::exception_ptr error = std::move(wait->error)) {
    lock.unlock();
    std::rethrow_exception(error);
  }
  return std::move(wait->outcome);
}

namespace {
// One message on its way through handle_async: everything its write unit needs, in one place
// that lives until the unit is done (the understanding points into nothing else).
struct Pending {
  storage::InboundMessage message;
  LocalTime now;
  SenderContext sender;
  std::optional<std::string> helper_name;
  std::vector<Pairing> seen;
  std::optional<ProblemCommand> problem_cmd;
  std::optional<std::string> correction;
  Understanding understanding{ParseError{}};
  std::optional<std::string> prepared;  // the reply worked out before the unit (a bulletin)
  Outcome out;
  std::optional<std::string> failure;
};
}  // namespace

void Dispatcher::handle_async(const storage::InboundMessage& message, LocalTime now,
                              const Offload& offload, Done done) {
  auto p = std::make_shared<Pending>();
  p->message = message;
  p->now = now;
  const storage::InboundMessage& m = p->message;
  // Who is writing, read before the write unit: the roster changes only on import.
  SenderContext& sender = p->sender;
  sender.helper_id = m.userid;
  const auto roster = store_.roster_of(m.userid);
  p->helper_name = roster->name;
  sender.known = roster->name.has_value();
  sender.pairings.reserve(roster->pairings.size());
  for (const Pairing& pairing : roster->pairings)
    if (pairing.active_on(now.date())) sender.pairings.push_back(pairing);
  // A back-dated visit is checked against the pairings in force on its date. Those looked up
  // are kept: their names are masked in the reply too.
  sender.pairings_on = [&seen = p->seen, roster](Date d) {
    std::vector<Pairing> ps;
    for (const Pairing& pairing : roster->pairings)
      if (pairing.active_on(d)) ps.push_back(pairing);
    seen.insert(seen.end(), ps.begin(), ps.end());
    return ps;
  };

  // Problem commands (#12 已解决 …, 我的问题) first: a check-in never starts like them.
  p->problem_cmd = parse_problem_command(normalize(m.text, options_.bot_name));
  // 更正 <line>: the line is understood as any check-in, then replaces the last one.
  p->correction = p->problem_cmd ? std::nullopt : parse_correction(m.text, options_.bot_name);
  if (!p->problem_cmd)
    p->understanding =
        understand(p->correction ? *p->correction : m.text, sender, now.date(), options_.bot_name);
  sender.pairings.insert(sender.pairings.end(), std::make_move_iterator(p->seen.begin()),
                         std::make_move_iterator(p->seen.end()));
  // Inside the write unit below the store's lock is held: a lookup from there would wait on
  // itself. From here on the pairings looked up so far stand for every day, checked by dates.
  sender.pairings_on = nullptr;

  // The write unit: runs on the Store's writer thread.
  auto unit = [this, p](storage::Store::Tx& tx) {
    const storage::InboundMessage& msg = p->message;
    // The raw message first: it is kept (and committed) even if handling below fails.
    if (tx.save_inbound(msg) == storage::SaveInbound::Duplicate) {
      if (auto r = tx.reply_for(msg.msgid)) {
        p->out.duplicate = true;
        p->out.reply = *r;
        return;
      }
      // Seen but never answered (an earlier attempt failed): handle it now.
    }
    try {
      p->out.reply = tx.attempt([&] {
        bool recorded = false;
        storage::InboundOutcome outcome = storage::InboundOutcome::Answered;
        std::string reply =
            p->prepared ? *p->prepared
            : p->problem_cmd
                ? problem_reply(tx, *p->problem_cmd, p->sender, p->now, recorded)
                : handle_locked(tx, msg, p->understanding, p->sender, p->helper_name.value_or(""),
                                p->now, recorded, outcome, p->correction);
        // A one-to-one chat (chattype "single"): only the helper reads it, so the names of
        // their own pairings are written in full. A bulletin lists everyone's and stays masked.
        if (msg.chattype == "single" && !p->prepared)
          reply = unmask_names(std::move(reply), p->sender.pairings);
        tx.set_reply(msg.msgid, reply, outcome);
        p->out.recorded = recorded;
        return reply;
      });
    } catch (const std::exception& e) {
      p->failure = e.what();
      tx.set_failed(msg.msgid, *p->failure);
      p->out.reply.clear();
    }
  };
  auto committed = [p, done = std::move(done)](std::exception_ptr error) {
    if (!error && p->failure)
      error = std::make_exception_ptr(
          std::runtime_error("handling " + p->message.msgid + " failed: " + *p->failure));
    if (error) return done(Outcome{}, std::move(error));
    done(std::move(p->out), nullptr);
  };

  const auto* cmd = std::get_if<CommandMsg>(&p->understanding);
  if (p->problem_cmd || p->correction || !cmd ||
      (cmd->command != Command::Bulletin && cmd->command != Command::Review))
    return store_.submit_async(std::move(unit), std::move(committed));

  // 通报 / 点评: rendered from the store outside the write unit (it reads a lot), on a thread
  // that may block.
  offload([this, p, unit = std::move(unit), committed = std::move(committed)]() mutable {
    try {
      const auto& c = std::get<CommandMsg>(p->understanding);
      p->prepared = bulletin_reply(c, p->message.userid, p->now);
      store_.submit_async(std::move(unit), committed);
    } catch (...) {
      committed(std::current_exception());
    }
  });
}

std::string Dispatcher::handle_locked(storage::Store::Tx& tx, const storage::InboundMessage& m,
                                      const Understanding& u, const SenderContext& sender,
                                      const std::string& name, LocalTime now, bool& recorded,
                                      storage::InboundOutcome& outcome,
                                      const std::optional<std::string>& correction) {
  const Date today = now.date();
  const Month month = Month::of(today);
  std::string reply;
  outcome = storage::InboundOutcome::NotUnderstood;  // until something below is done

  std::vector<const Checkin*> checkins;
  if (const auto* c = std::get_if<Checkin>(&u)) checkins.push_back(c);
  if (const auto* g = std::get_if<CheckinGroup>(&u))
    for (const Checkin& c : g->checkins) checkins.push_back(&c);

  const auto* undo = std::get_if<CommandMsg>(&u);
  if (undo && undo->command != Command::Undo) undo = nullptr;
  if (correction && sender.known) {
    const auto r = apply_correction(tx, templates_, m, *correction, u, sender, now);
    reply = r.reply;
    recorded = r.recorded;
    outcome = r.outcome;
  } else if (undo && !undo->argument.empty() && sender.known) {
    const auto r =
        apply_named_undo(tx, templates_, m, undo->argument, sender, now, options_.bot_name);
    reply = r.reply;
    recorded = r.recorded;
    outcome = r.outcome;
  } else if (correction) {
    reply = templates_.render("unknown_sender", data{});
  } else if (!checkins.empty()) {
    // Every check-in of the message in this one write unit, with the problems it reports as
    // tracked items: all recorded or none.
    std::vector<std::vector<storage::Problem>> items_of(checkins.size());
    for (size_t i = 0; i < checkins.size(); ++i) {
      const Checkin* c = checkins[i];
      storage::CheckinRecord rec;
      rec.msgid = m.msgid;
      rec.pairing_id = c->pairing_id;
      rec.helper_id = m.userid;
      rec.visit_date = c->visit_date;
      rec.mode = c->mode;
      rec.occasions = c->occasions;
      rec.policies = c->policies;
      rec.problems = c->problems;
      rec.note = c->note;
      rec.received_at = now.unix_seconds;
      const int64_t checkin_id = tx.add_checkin(rec);
      const Pairing* p = find_pairing(sender.pairings, c->pairing_id);
      if (p && !c->problems.empty())
        items_of[i] = storage::Problems::record(tx, checkin_id, *p, m.userid, c->visit_date,
                                                c->problems, c->policies, now.unix_seconds);
    }
    recorded = true;
    outcome = storage::InboundOutcome::Recorded;
    for (size_t i = 0; i < checkins.size(); ++i) {
      const Checkin* c = checkins[i];
      const Pairing* p = find_pairing(sender.pairings, c->pairing_id);
      const Month visit_month = Month::of(c->visit_date);
      data d;
      d.set("date", chinese_date(c->visit_date, today));
      if (const std::string r = relative_day(c->visit_date, today); !r.empty()) d.set(r, true);
      d.set("mode", std::string(mode_label(c->mode)));
      d.set("whom", p ? masked_whom(*p) : mask_name(c->name));
      if (!c->occasions.empty()) d.set("occasions", join_labels(c->occasions, occasion_label));
      if (!c->policies.empty()) d.set("policies", join_labels(c->policies, policy_label));
      set_problem_items(d, items_of[i]);
      if (c->mode == storage::Mode::Phone) d.set("phone", true);
      d.set("month", std::to_string(visit_month.month));
      if (p && !p->person.empty()) d.set("person", true);
      d.set("count", std::to_string(tx.counted_visits(c->pairing_id, visit_month)));
      if (visit_month < month) d.set("late", chinese_month(visit_month, today));
      if (checkins.size() > 1) d.set("several", std::to_string(checkins.size()));
      if (!reply.empty()) reply += "\n";
      std::string one = templates_.render("checkin", d);
      while (!one.empty() && (one.back() == '\n' || one.back() == ' ')) one.pop_back();
      reply += one;
    }
  } else if (const auto* cmd = std::get_if<CommandMsg>(&u)) {
    if (cmd->command == Command::Help) {
      reply = templates_.render("help", data{});
      outcome = storage::InboundOutcome::Answered;
    } else if (!sender.known) {
      reply = templates_.render("unknown_sender", data{});
    } else if (cmd->command == Command::MyPairings || cmd->command == Command::Progress) {
      data items{data::type::list};
      std::vector<std::string> missing;
      int visited = 0;
      for (const auto& p : sender.pairings) {
        const int n = tx.counted_visits(p.id, month);
        data item;
        item.set("whom", masked_whom(p));
        item.set("village", p.village);
        if (n > 0) item.set("count", std::to_string(n));
        items << item;
        if (n > 0)
          ++visited;
        else
          missing.push_back(masked_whom(p));
      }
      data d;
      d.set("name", name);
      d.set("month", std::to_string(month.month));
      d.set("total", std::to_string(sender.pairings.size()));
      d.set("visited", std::to_string(visited));
      d.set("items", items);
      if (missing.empty()) d.set("done", true);
      d.set("missing", join(missing, "、"));
      reply =
          templates_.render(cmd->command == Command::MyPairings ? "my_pairings" : "progress", d);
      outcome = storage::InboundOutcome::Answered;
    } else if (cmd->command == Command::Undo) {
      data d;
      auto last = tx.last_active_checkin(m.userid, now.unix_seconds - 24 * 3600);
      if (last && tx.mark_undone(last->id, m.userid, now.unix_seconds)) {
        const Pairing* p = find_pairing(sender.pairings, last->pairing_id);
        d.set("ok", true);
        d.set("date", chinese_date(last->visit_date, today));
        d.set("mode", std::string(mode_label(last->mode)));
        if (p) d.set("whom", masked_whom(*p));
        recorded = true;
        outcome = storage::InboundOutcome::Undone;
      }
      reply = templates_.render("undo", d);
    }
  } else {
    // Names in it are masked with the whole reply below.
    reply = render_question(templates_, std::get<ParseError>(u));
  }
  // Templates end sections on their own lines; the chat shows no trailing blank lines.
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == ' ')) reply.pop_back();
  return mask_names(reply, sender.pairings);
}

namespace {
// The pairing-shaped view of an item, for masked_whom and mask_names.
Pairing as_pairing(const storage::Problem& item) {
  Pairing p;
  p.household_id = item.household_id;
  p.household_head = item.household_head;
  p.person = item.person;
  return p;
}
}  // namespace

std::string Dispatcher::problem_reply(storage::Store::Tx& tx, const ProblemCommand& cmd,
                                      const SenderContext& sender, LocalTime now, bool& recorded) {
  if (!sender.known && !is_admin(sender.helper_id))
    return templates_.render("unknown_sender", data{});
  std::vector<Pairing> names = sender.pairings;
  std::string reply;
  if (cmd.kind == ProblemCommand::Kind::Mine) {
    std::vector<std::string> households;
    for (const auto& p : sender.pairings) households.push_back(p.household_id);
    const auto items = storage::Problems::open_for(tx, sender.helper_id, households);
    data list{data::type::list};
    for (const auto& item : items) {
      names.push_back(as_pairing(item));
      data row;
      row.set("id", std::to_string(item.id));
      row.set("whom", masked_whom(as_pairing(item)));
      row.set("category", category_text(item.category));
      row.set("text", item.text);
      row.set("status", std::string(storage::problem_status_label(item.status)));
      row.set("date", chinese_date(item.reported_on, now.date()));
      list << row;
    }
    data d;
    d.set("total", std::to_string(items.size()));
    d.set("items", list);
    if (items.empty()) d.set("none", true);
    reply = templates_.render("my_problems", d);
  } else {
    data d;
    d.set("id", std::to_string(cmd.id));
    const auto item = storage::Problems::find(tx, cmd.id);
    if (!item) {
      d.set("not_found", true);
    } else {
      names.push_back(as_pairing(*item));
      d.set("whom", masked_whom(as_pairing(*item)));
      d.set("category", category_text(item->category));
      d.set("from", std::string(storage::problem_status_label(item->status)));
      const bool helps =
          std::any_of(sender.pairings.begin(), sender.pairings.end(),
                      [&](const Pairing& p) { return p.household_id == item->household_id; });
      if (!cmd.status) {
        d.set("no_status", true);
      } else if (item->reported_by != sender.helper_id && !helps && !is_admin(sender.helper_id)) {
        d.set("refused", true);
      } else if (storage::is_closed(item->status)) {
        d.set("closed", true);
      } else if (item->status == *cmd.status) {
        d.set("same", true);
      } else {
        storage::Problems::set_status(tx, cmd.id, *cmd.status, sender.helper_id, cmd.note,
                                      now.date(), now.unix_seconds);
        recorded = true;
        d.set("ok", true);
        d.set("to", std::string(storage::problem_status_label(*cmd.status)));
        if (!cmd.note.empty()) d.set("note", cmd.note);
      }
    }
    reply = templates_.render("problem", d);
  }
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == ' ')) reply.pop_back();
  return mask_names(reply, names);
}

}  // namespace handlers
