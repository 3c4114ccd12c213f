#include "bot/cli/cmd_bulletin.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bot/delivery.h"
#include "bot/groups.h"
#include "bot/scheduler.h"
#include "bot/wecom/webhook_channel.h"
#include "bot/wecom/webhook_sender.h"
#include "charts/chart.h"
#include "handlers/bulletin.h"
#include "handlers/bulletin_stats.h"
#include "handlers/published.h"
#include "storage/outbox.h"

namespace bot {
namespace {

using storage::OutboxPart;
using storage::OutboxStatus;

// Where messages go: each configured group (or the one group of wecom.webhook_url).
std::vector<Target> targets_of(const Config& config) {
  return targets_of(delivery_groups(config));
}

// Display columns of a UTF-8 string as a terminal shows it: 2 for a CJK character, 1 otherwise.
size_t columns(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    n += len >= 3 ? 2 : 1;
    i += len;
  }
  return n;
}

// `s` padded with spaces to `width` display columns (at least one space after it).
std::string pad(const std::string& s, size_t width) {
  const size_t w = columns(s);
  return s + std::string(w < width ? width - w + 1 : 1, ' ');
}

bool open(const OutboxPart& p) {
  return p.status == OutboxStatus::Pending || p.status == OutboxStatus::Sending;
}

// The PNG bytes of the charts of one bulletin.
std::vector<std::string> chart_pngs(std::vector<charts::ChartFile> files) {
  std::vector<std::string> out;
  for (auto& f : files) out.push_back(std::move(f.png));
  return out;
}

SchedulerSources sources_for(const Config& config, storage::Store& store,
                             const handlers::Templates& templates,
                             std::optional<charts::ChartStyle> chart_style) {
  SchedulerSources s;
  if (chart_style)
    s.charts = [&config, &store, &templates, style = *chart_style](
                   const handlers::Period& period, std::optional<storage::Ledger> ledger,
                   storage::LocalTime now) {
      return chart_pngs(
          charts::bulletin_charts(store, templates, period, ledger, config.bulletin, style, now));
    };
  s.render = [&config, &store, &templates](const handlers::Period& period,
                                           std::optional<storage::Ledger> ledger,
                                           storage::LocalTime now) {
    return handlers::render_bulletin(store, templates, period, ledger, config.bulletin, now);
  };
  s.templates = &templates;
  s.unvisited = [&config, &store](storage::LocalTime now) {
    // The bulletin's own rule for a running month: a helper's due pairings not visited yet.
    const auto f = handlers::monthly_figures(store, storage::Month::of(now.date()), std::nullopt,
                                             config.bulletin, now);
    std::vector<ReminderEntry> out;
    for (const auto& ledger : f.ledgers)
      for (const auto& h : ledger.helpers)
        out.push_back({h.helper_id, h.helper_name, h.unit, h.missed,
                       std::string(storage::ledger_code(ledger.ledger))});
    return out;
  };
  s.posted = [&config, &store](const handlers::Period& period,
                               std::optional<storage::Ledger> ledger, storage::LocalTime now) {
    handlers::record_posted(store, period, ledger, config.bulletin, now);
  };
  return s;
}

// Runs the worker on this thread until none of `ids` is pending or sending; returns them.
std::vector<OutboxPart> drive(OutboxWorker& worker, storage::Outbox& outbox,
                              const std::vector<int64_t>& ids, const DeliveryClock& clock,
                              bool fake_clock) {
  using namespace std::chrono;
  for (;;) {
    std::vector<OutboxPart> parts;
    bool any_open = false;
    for (int64_t id : ids) {
      if (auto p = outbox.part(id)) {
        any_open = any_open || open(*p);
        parts.push_back(std::move(*p));
      }
    }
    if (!any_open) return parts;
    const auto s = worker.step();
    if (s.kind == OutboxWorker::Step::Kind::Posted) continue;
    milliseconds wait = seconds(1);
    if (s.kind == OutboxWorker::Step::Kind::Wait)
      wait = std::clamp<milliseconds>(seconds(s.wake_at - clock()), milliseconds(200), seconds(30));
    if (fake_clock) wait = milliseconds(20);  // the test moves time; look often
    std::this_thread::sleep_for(wait);
  }
}

// Prints the outcome of each part; true when all were sent.
bool report(const std::vector<OutboxPart>& parts, std::ostream& err) {
  bool all_sent = true;
  for (const auto& p : parts) {
    err << "part " << p.part << "/" << p.parts << " (outbox id " << p.id
        << (p.group.empty() ? "" : ", group " + p.group)
        << "): " << storage::outbox_status_code(p.status);
    if (!p.last_error.empty() && p.status != OutboxStatus::Sent) err << ": " << p.last_error;
    err << "\n";
    all_sent = all_sent && p.status == OutboxStatus::Sent;
  }
  return all_sent;
}

std::string clip(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n) + "…";
}

int cmd_bulletin(const Args& a, std::ostream& out, std::ostream& err) {
  const Config config = load_config(a.need("config"));
  const std::string kind = a.need("kind");
  if (kind != "monthly" && kind != "quarterly")
    throw UsageError("--kind must be monthly or quarterly");
  const auto period = handlers::Period::parse(a.need("period"));
  if (!period) throw UsageError("--period must look like 2026-11 (a month) or 2026-Q4 (a quarter)");
  const bool monthly = period->kind == handlers::BulletinKind::Monthly;
  if ((kind == "monthly") != monthly)
    throw UsageError(kind == "monthly" ? "--kind monthly needs a month, like --period 2026-11"
                                       : "--kind quarterly needs a quarter, like --period 2026-Q4");
  std::optional<storage::Ledger> ledger;
  std::string ledger_code = "all";
  if (auto l = a.get("ledger"); l && *l != "all") {
    ledger = storage::ledger_from(*l);
    if (!ledger || *l != storage::ledger_code(*ledger))
      throw UsageError(
          "--ledger must be cadre, health or education (leave it out for the district)");
    ledger_code = *l;
  }
  const bool post = a.flag("post");
  if (a.flag("force") && !post) throw UsageError("--force goes with --post");
  const auto chart_out = a.get("chart-out");
  if (chart_out && chart_out->empty()) throw UsageError("--chart-out needs a directory");

  bool fake = false;
  const DeliveryClock clock = delivery_clock(fake);
  const storage::LocalTime now{clock(), config.utc_offset_seconds};
  const std::vector<GroupConfig> groups = groups_for(delivery_groups(config), ledger_code);
  if (post && groups.empty()) {
    if (delivery_groups(config).empty())
      err << "bangfu: cannot post: config key 'wecom.webhook_url' (or BANGFU_WECOM_WEBHOOK_URL) "
             "is not set, and there are no 'groups'\n";
    else
      err << "bangfu: cannot post: no group in 'groups' lists the " << ledger_code << " ledger"
          << (ledger_code == "all" ? " (the district bulletin goes to groups that list all three)"
                                   : "")
          << "\n";
    return 1;
  }
  if (post && !(period->last() < now.date()))
    throw UsageError(period_code(*period) +
                     " is not over yet: a bulletin is posted once its period has ended (without "
                     "--post it prints what is known so far)");
  // Charts are drawn for --chart-out, and for --post unless bulletin.charts is false.
  const bool want_charts = chart_out || (post && config.bulletin.charts);
  std::optional<charts::ChartStyle> style;
  if (want_charts) {
    if (auto family = charts::find_cjk_font()) {
      style = charts::ChartStyle{*family};
    } else {
      err << "bangfu: no font with Chinese characters is installed (apt-get install "
             "fonts-noto-cjk); "
          << (chart_out ? "cannot draw the charts\n" : "posting the text without charts\n");
      if (chart_out) return 1;
    }
  }
  auto names = handlers::bulletin_template_names();
  for (const auto& n : charts::chart_template_names()) names.push_back(n);
  const auto templates = handlers::Templates::load(config.templates_dir, names);
  storage::Store store(config.database);
  const std::string markdown =
      handlers::render_bulletin(store, templates, *period, ledger, config.bulletin, now);
  out << markdown;
  if (!markdown.empty() && markdown.back() != '\n') out << "\n";
  out.flush();
  std::vector<charts::ChartFile> chart_files;
  if (style) {
    if (chart_out) {
      chart_files =
          charts::bulletin_charts(store, templates, *period, ledger, config.bulletin, *style, now);
    } else {
      // Posting: as in the scheduler, a chart that cannot be drawn does not hold the text back.
      try {
        chart_files = charts::bulletin_charts(store, templates, *period, ledger, config.bulletin,
                                              *style, now);
      } catch (const std::exception& e) {
        err << "bangfu: the charts could not be drawn (" << e.what()
            << "); posting the text without them\n";
      }
    }
  }
  if (chart_out) {
    std::filesystem::create_directories(*chart_out);
    for (const auto& f : chart_files) {
      const auto path = std::filesystem::path(*chart_out) / f.name;
      std::ofstream file(path, std::ios::binary | std::ios::trunc);
      file.write(f.png.data(), static_cast<std::streamsize>(f.png.size()));
      file.close();
      if (!file) {
        err << "bangfu: cannot write " << path.string() << "\n";
        return 1;
      }
      err << "wrote " << path.string() << " (" << f.png.size() << " bytes)\n";
    }
    if (chart_files.empty())
      err << "no chart: no unit had pairings due in " << period->str() << "\n";
  }
  if (!post) {
    // A period already posted: where today's figures differ from the posted ones.
    if (auto c = handlers::compare_with_posted(store, *period, ledger, config.bulletin, now))
      out << handlers::render_comparison(templates, *c, now);
    return 0;
  }

  std::vector<std::string> images;
  if (config.bulletin.charts) images = chart_pngs(std::move(chart_files));
  std::vector<size_t> too_large;
  const auto messages = bulletin_messages(markdown, images, &too_large);
  for (size_t i : too_large)
    err << "bangfu: chart " << i + 1 << " is " << images[i].size()
        << " bytes, above the robot's 2 MB: left out\n";
  if (messages.empty()) {
    err << "bangfu: the bulletin is empty; nothing to post\n";
    return 1;
  }
  storage::Outbox outbox(store);
  const bool websocket = config.wecom.mode == WecomMode::Websocket;
  std::vector<int64_t> ids;
  bool created = false;
  // One outbox generation per group: each group gets it exactly once.
  for (const auto& group : groups) {
    const auto queued = outbox.enqueue(kind, period_code(*period), ledger_code, messages,
                                       now.unix_seconds, a.flag("force"), group.name);
    created = created || queued.created;
    ids.insert(ids.end(), queued.ids.begin(), queued.ids.end());
    const std::string for_group = group.name.empty() ? "" : " for group " + group.name;
    if (!queued.created)
      err << "already queued" << for_group << " as generation " << queued.generation
          << " (--force posts it again); delivering what is left of it\n";
    else
      err << "queued " << queued.ids.size() << " part(s)" << for_group << " as generation "
          << queued.generation << "; posting to "
          << (websocket ? "chat " + group.chat_id
                        : WebhookSender(group.webhook_url).host())  // host only, never the key
          << "\n";
  }
  if (created) handlers::record_posted(store, *period, ledger, config.bulletin, now);
  if (websocket) {
    // The bot has one live connection, held by the service: it sends what is queued.
    err << "the running service (bangfu serve) sends it over the long connection\n";
    return 0;
  }
  WebhookChannel channel;
  StreamLogger log(err);
  OutboxWorker worker(outbox, channel, targets_of(config), log, clock);
  return report(drive(worker, outbox, ids, clock, fake), err) ? 0 : 1;
}

int cmd_outbox_list(const Args& a, std::ostream& out, std::ostream&) {
  const Config config = load_config(a.need("config"));
  storage::Store store(config.database);
  storage::Outbox outbox(store);
  const auto parts = outbox.list();
  if (parts.empty()) {
    out << "the outbox is empty\n";
    return 0;
  }
  auto when = [&](int64_t t) {
    return storage::LocalTime{t, config.utc_offset_seconds}.iso().substr(0, 19);
  };
  char line[256];
  // GROUP is as wide as the widest group name ("-": the one group of wecom.webhook_url).
  size_t group_width = 5;
  for (const auto& p : parts) group_width = std::max(group_width, columns(group_label(p.group)));
  std::snprintf(line, sizeof line, "%-6s %-9s %-10s %-9s %-4s %-6s %-9s %-5s %-19s ", "ID", "KIND",
                "PERIOD", "LEDGER", "GEN", "PART", "STATUS", "TRIES", "WHEN");
  out << line << pad("GROUP", group_width) << "LAST ERROR\n";
  for (const auto& p : parts) {
    std::string at;
    switch (p.status) {
      case OutboxStatus::Sent:
        at = p.sent_at ? when(*p.sent_at) : "";
        break;
      case OutboxStatus::Pending:
        at = when(p.next_attempt_at);
        break;
      case OutboxStatus::Sending:
      case OutboxStatus::Unknown:
        at = p.claimed_at ? when(*p.claimed_at) : "";
        break;
      default:
        at = when(p.created_at);
    }
    const std::string part = std::to_string(p.part) + "/" + std::to_string(p.parts);
    std::snprintf(line, sizeof line, "%-6lld %-9s %-10s %-9s %-4d %-6s %-9s %-5d %-19s ",
                  static_cast<long long>(p.id), p.kind.c_str(), p.period.c_str(), p.ledger.c_str(),
                  p.generation, part.c_str(),
                  std::string(storage::outbox_status_code(p.status)).c_str(), p.attempts,
                  at.c_str());
    out << line << pad(group_label(p.group), group_width) << clip(p.last_error, 200) << "\n";
  }
  return 0;
}

int cmd_outbox_resend(const Args& a, std::ostream& out, std::ostream& err) {
  const Config config = load_config(a.need("config"));
  if (a.positional.empty()) throw UsageError("outbox resend takes the ID of each part to resend");
  std::vector<int64_t> ids;
  for (const auto& w : a.positional) {
    try {
      size_t used = 0;
      const long long id = std::stoll(w, &used);
      if (used != w.size() || id <= 0) throw std::invalid_argument(w);
      ids.push_back(id);
    } catch (const std::exception&) {
      throw UsageError("'" + w + "' is not an outbox ID (see bangfu outbox list)");
    }
  }
  const bool post = a.flag("post");
  if (post && delivery_groups(config).empty()) {
    err << "bangfu: cannot post: config key 'wecom.webhook_url' is not set, and there are no "
           "'groups'\n";
    return 1;
  }
  if (post && config.wecom.mode == WecomMode::Websocket) {
    err << "bangfu: --post: in websocket mode the running service sends what is queued (leave "
           "out --post)\n";
    return 1;
  }
  bool fake = false;
  const DeliveryClock clock = delivery_clock(fake);
  storage::Store store(config.database);
  storage::Outbox outbox(store);
  bool ok = true;
  for (int64_t id : ids) {
    const auto p = outbox.part(id);
    if (!p) {
      err << "bangfu: no outbox part " << id << "\n";
      ok = false;
    } else if (!outbox.requeue(id, clock())) {
      err << "bangfu: part " << id << " is " << storage::outbox_status_code(p->status)
          << "; only failed or unknown parts can be resent\n";
      ok = false;
    } else {
      out << "part " << id << " (" << p->kind << " " << p->period << " " << p->ledger << " "
          << p->part << "/" << p->parts << (p->group.empty() ? "" : " group " + p->group)
          << ") queued again\n";
    }
  }
  if (!ok || !post) return ok ? 0 : 1;
  WebhookChannel channel;
  StreamLogger log(err);
  OutboxWorker worker(outbox, channel, targets_of(config), log, clock);
  return report(drive(worker, outbox, ids, clock, fake), err) ? 0 : 1;
}

}  // namespace

// --- Delivery ----------------------------------------------------------------------------------

struct Delivery::Parts {
  Parts(const Config& config, storage::Store& store, const handlers::Templates& templates,
        Logger& log, DeliveryClock clock, bool fake, OutboundChannel* given)
      : channel(given ? *given : webhook),
        outbox(store),
        worker(outbox, channel, targets_of(config), log, clock, worker_options(fake)),
        scheduler(
            outbox, config.schedule, delivery_groups(config), config.utc_offset_seconds,
            sources_for(config, store, templates, chart_style(config, log)), clock, log,
            [this] { worker.notify(); }, scheduler_options(fake)) {}

  // The font for the charts, or nullopt (charts off, or no CJK font: said in the log).
  static std::optional<charts::ChartStyle> chart_style(const Config& config, Logger& log) {
    if (!config.bulletin.charts) return std::nullopt;
    if (auto family = charts::find_cjk_font()) {
      log.info("charts_on", {{"font", *family}});
      return charts::ChartStyle{*family};
    }
    log.error("charts_off", {{"reason",
                              "no font with Chinese characters is installed (apt-get install "
                              "fonts-noto-cjk): bulletins are posted without charts"}});
    return std::nullopt;
  }

  static OutboxWorker::Options worker_options(bool fake) {
    OutboxWorker::Options o;
    if (fake) o.max_wait = std::chrono::milliseconds(50);
    return o;
  }
  static Scheduler::Options scheduler_options(bool fake) {
    Scheduler::Options o;
    if (fake) {
      o.max_wait = std::chrono::milliseconds(50);
      o.error_wait = std::chrono::seconds(1);
    }
    return o;
  }

  WebhookChannel webhook;    // unused when another channel is given
  OutboundChannel& channel;  // the one in use
  storage::Outbox outbox;
  OutboxWorker worker;
  Scheduler scheduler;  // last: stopped first, as it feeds the worker
};

Delivery::Delivery(const Config& config, storage::Store& store,
                   const handlers::Templates& templates, Logger& log, OutboundChannel* channel) {
  bool fake = false;
  DeliveryClock clock = delivery_clock(fake);
  if (fake) log.warn("fake_clock", {{"source", "BANGFU_FAKE_CLOCK_FILE"}, {"use", "tests only"}});
  p_ = std::make_unique<Parts>(config, store, templates, log, std::move(clock), fake, channel);
  std::string groups;
  for (const auto& g : delivery_groups(config))
    groups.append(groups.empty() ? "" : ",").append(group_label(g.name));
  log.info("delivery_started", {{"channel", p_->channel.name()}, {"groups", groups}});
  p_->worker.start();
  p_->scheduler.start();
}

Delivery::~Delivery() {
  stop();
}

void Delivery::stop() {
  if (!p_) return;
  p_->scheduler.stop();
  p_->worker.stop();
}

std::unique_ptr<Delivery> start_delivery(const Config& config, storage::Store& store,
                                         const handlers::Templates& templates, Logger& log,
                                         OutboundChannel* channel) {
  if (delivery_groups(config).empty()) {
    log.warn("delivery_off", {{"reason",
                               "neither groups nor wecom.webhook_url is set: no bulletins, "
                               "reminders or outbox sending"}});
    return nullptr;
  }
  return std::make_unique<Delivery>(config, store, templates, log, channel);
}

std::vector<CommandSpec> bulletin_commands() {
  return {
      {"bulletin",
       "print (or post) the monthly bulletin or the quarterly review",
       "usage: bangfu bulletin --config FILE --kind monthly|quarterly --period 2026-11|2026-Q4\n"
       "                       [--ledger cadre|health|education] [--post] [--force]\n"
       "                       [--chart-out DIR]\n"
       "Prints the bulletin (markdown, as the group sees it) for the district, or for one\n"
       "ledger. A period not yet over shows what is known so far.\n"
       "--post  queues it in the outbox and sends it to every group that lists the ledger\n"
       "        (config groups; the district bulletin: groups with all three ledgers; without\n"
       "        groups: wecom.webhook_url), once per group,\n"
       "        split into numbered parts of at most 4096 bytes, at most 20 messages a minute,\n"
       "        retrying rate limits and network failures; exits when every part is sent (0)\n"
       "        or has failed (1). Each (kind, period, ledger, group) is posted once: again\n"
       "        without --force only finishes what is left. Only a period that is over can be\n"
       "        posted.\n"
       "--force posts it again as a new generation.\n"
       "--chart-out DIR  also writes the coverage charts as PNG files into DIR (created if\n"
       "        needed), one per ledger, named like 2026-11-monthly-cadre.png; posts nothing.\n"
       "With --post and bulletin.charts (default true) the charts follow the text as images.\n",
       {"config", "kind", "period", "ledger", "chart-out"},
       {"post", "force"},
       cmd_bulletin},
      {"outbox list",
       "list the messages queued for the groups",
       "usage: bangfu outbox list --config FILE\n"
       "One line per message part: id, kind, period, ledger, generation, part/parts, status,\n"
       "attempts, when (sent, next try, or claimed), the group it goes to (- : the one group\n"
       "of wecom.webhook_url) and the last error.\n"
       "Status: pending, sending, sent, failed (permanent error or retries exhausted),\n"
       "unknown (the sender stopped during the POST: maybe posted, not resent), cancelled\n"
       "(superseded by --force).\n",
       {"config"},
       {},
       cmd_outbox_list},
      {"outbox resend",
       "queue failed or unknown message parts again",
       "usage: bangfu outbox resend --config FILE [--post] ID...\n"
       "Puts failed or unknown parts back in the queue; the running service sends them, or\n"
       "--post sends them now. Check the group first: an unknown part may have been posted.\n",
       {"config"},
       {"post"},
       cmd_outbox_resend},
  };
}

}  // namespace bot
