#include "bot/cli/cli.h"

#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "bot/cli/args.h"
#include "bot/cli/cmd_bulletin.h"
#include "bot/cli/cmd_dashboard.h"
#include "bot/cli/cmd_ledger.h"
#include "bot/cli/cmd_office.h"
#include "bot/cli/cmd_ops.h"
#include "bot/cli/cmd_problem.h"
#include "bot/cli/cmd_simulate.h"
#include "bot/config.h"
#include "bot/log.h"
#include "bot/office/dashboard.h"
#include "bot/version.h"
#include "bot/wecom/callback.h"
#include "bot/wecom/crypto.h"
#include "bot/wecom/long_connection.h"
#include "bot/wecom/long_connection_bot.h"
#include "bot/wecom/long_connection_channel.h"
#include "charts/chart.h"
#include "handlers/dispatcher.h"
#include "handlers/labels.h"
#include "handlers/templates.h"
#include "handlers/text.h"
#include "handlers/understanding.h"
#include "storage/roster_csv.h"
#include "storage/store.h"

namespace bot {
namespace {

using handlers::join;
using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

storage::LocalTime now_in(const Config& c) {
  return storage::LocalTime{system_clock_seconds(), c.utc_offset_seconds};
}

int cmd_serve(const Args& a, std::ostream& out, std::ostream& err) {
  const Config config = load_config(a.need("config"));
  // Block the stop signals before any thread starts, so only the waiter below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // glibc hands a thread arena's free top back to the kernel (madvise) as soon as it passes
  // 128 KiB, and the next requests fault the same pages in again: under load that was ~12% of
  // the server's CPU (BENCHMARKS.md §9). Keep up to 8 MiB per arena instead. (For a build with
  // BOT_TCMALLOC=OFF or sanitizers: tcmalloc, the default, keeps its own caches and ignores it.)
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);

  // The lines of each request are written 20 ms at a time rather than one by one (bot/log.h).
  StreamLogger log(err, std::chrono::milliseconds(20));
  require_templates_dir(config);  // names the folder it looked at
  // Every template is compiled at start-up, the bulletins' too, so a bad one stops start-up.
  std::vector<std::string> template_names = handlers::Templates::reply_names();
  for (const auto& n : handlers::bulletin_template_names())
    if (std::find(template_names.begin(), template_names.end(), n) == template_names.end())
      template_names.push_back(n);
  for (const auto& n : charts::chart_template_names()) template_names.push_back(n);
  const auto templates = handlers::Templates::load(config.templates_dir, template_names);
  handlers::check_answer_templates(templates);
  storage::Store store(config.database);
  const bool websocket = config.wecom.mode == WecomMode::Websocket;
  std::optional<WecomCrypto> crypto;  // the callback's; websocket mode has no message crypto
  if (!websocket)
    crypto.emplace(config.wecom.token, config.wecom.encoding_aes_key, config.wecom.receive_id);
  handlers::Dispatcher dispatcher(store, templates,
                                  {config.bot_name, config.admins, config.bulletin});
  // The office dashboard (office.enabled): its templates load here, so a bad one stops start-up.
  // Declared before the server, which holds a reference to it.
  std::unique_ptr<office::Dashboard> dashboard;
  if (config.office.enabled) dashboard = std::make_unique<office::Dashboard>(config, store);
  // Websocket mode: only /healthz (and /office/) over HTTP; messages come over the long
  // connection, which /healthz reports on once another connection has taken it over.
  HttpServer server = crypto ? HttpServer(config, dispatcher, store, *crypto, log)
                             : HttpServer(config, dispatcher, store, log);
  if (dashboard) server.mount_office(*dashboard);
  std::optional<wecom::LongConnectionBot> link_bot;
  std::unique_ptr<wecom::LongConnection> link;
  std::unique_ptr<wecom::LongConnectionChannel> link_channel;
  if (websocket) {
    link_bot.emplace(config, dispatcher, store, templates, log);
    link = std::make_unique<wecom::LongConnection>(
        wecom::long_connection_options(config),
        [&](const std::string& cmd, const std::string& req_id, const nlohmann::json& body) {
          return link_bot->handle(cmd, req_id, body);
        },
        log);
    server.set_health_check([&link] { return link->problem(); });
    // Bulletins and reminders go out over the same connection (aibot_send_msg).
    link_channel = std::make_unique<wecom::LongConnectionChannel>(*link);
  }
  const int port = server.bind(config.listen_host, config.listen_port);
  if (port < 0) {
    err << "bangfu: cannot listen on " << config.listen_host << ":" << config.listen_port << "\n";
    return 1;
  }
  // Bulletins, reminders and the outbox worker (none without wecom.webhook_url). Started after
  // the signals are blocked, so its threads leave them to the waiter.
  if (link) link->start();
  auto delivery = start_delivery(config, store, templates, log, link_channel.get());
  log.info("listening", {{"host", config.listen_host},
                         {"port", std::to_string(port)},
                         {"database", config.database},
                         {"writer_nice", std::to_string(store.writer_nice())}});
  out << "bangfu listening on http://" << config.listen_host << ":" << port << std::endl;

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig == 0) return;
    log.info("stopping", {{"signal", std::to_string(sig)}});
    server.stop();
  });
  const bool ok = server.run();
  if (!ok) log.error("server_failed");
  if (delivery) delivery->stop();  // lets a POST in flight finish
  if (link) link->stop();
  // Wake the waiter if the server stopped by itself.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  // How many check-ins shared each fsync while this server ran (BENCHMARKS.md §9).
  const auto commits = store.commit_stats();
  log.info("stopped", {{"commit_groups", std::to_string(commits.groups)},
                       {"commit_units", std::to_string(commits.units)},
                       {"checkpoints_background", std::to_string(commits.checkpoints_background)},
                       {"checkpoints_tail", std::to_string(commits.checkpoints_tail)}});
  return ok ? 0 : 1;
}

// "cadre,health" (codes or 区直/卫生/教育) for --ledger.
std::vector<storage::Ledger> ledger_list(const std::string& text) {
  std::vector<storage::Ledger> out;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    const auto l = storage::ledger_from(word);
    if (!l)
      throw UsageError("--ledger takes cadre, health or education separated by commas, not '" +
                       word + "'");
    if (std::find(out.begin(), out.end(), *l) == out.end()) out.push_back(*l);
    start = end + 1;
  }
  return out;
}

int cmd_roster_import(const Args& a, std::ostream& out, std::ostream& err) {
  const Config config = load_config(a.need("config"));
  if (a.positional.size() != 1) throw UsageError("roster import takes one ROSTER.csv file");
  const auto parsed = storage::parse_roster_csv(read_file(a.positional[0]));
  if (!parsed.errors.empty()) {
    err << "名册有 " << parsed.errors.size() << " 处错误，未导入任何内容 (nothing imported):\n";
    for (const auto& e : parsed.errors) err << "  " << e.message << "\n";
    return 2;
  }
  storage::ImportOptions options;
  options.dry_run = a.flag("dry-run");
  options.force = a.flag("force");
  if (auto l = a.get("ledger")) {
    options.ledgers = ledger_list(*l);
    std::map<storage::Ledger, int> outside;
    for (const auto& row : parsed.rows)
      if (std::find(options.ledgers->begin(), options.ledgers->end(), row.ledger) ==
          options.ledgers->end())
        ++outside[row.ledger];
    for (const auto& [ledger, n] : outside)
      throw UsageError("the file has " + std::to_string(n) + " rows of ledger " +
                       std::string(storage::ledger_code(ledger)) +
                       ", which --ledger does not name; nothing imported");
  }
  storage::Store store(config.database);
  const auto now = now_in(config);
  const auto sum =
      store.import_roster(parsed.rows, now.date(), office_actor(), now.unix_seconds, options);
  auto by_ledger = [&](std::ostream& o) {
    for (const auto& [ledger, n] : sum.by_ledger)
      o << "  " << storage::ledger_label(ledger) << " " << storage::ledger_code(ledger) << ": "
        << n.inserted << " new, " << n.updated << " updated, " << n.unchanged << " unchanged, "
        << n.ended << " ended (of " << n.open_before << " open)\n";
  };
  auto report = [&] {
    out << (options.dry_run ? "dry run, nothing changed: " : "imported ") << parsed.rows.size()
        << " pairings (" << parsed.encoding << "): " << sum.inserted << " new, " << sum.updated
        << " updated, " << sum.unchanged << " unchanged, " << sum.ended
        << (options.dry_run ? " would end\n" : " ended\n");
    by_ledger(out);
    if (!sum.ended_pairings.empty()) {
      out << (options.dry_run ? "would end on " : "ended on ") << now.date().iso() << ":\n";
      for (const auto& p : sum.ended_pairings)
        out << "  " << storage::ledger_code(p.ledger) << "  " << p.helper_id << " " << p.helper_name
            << " -> " << p.household_id << " " << p.household_head
            << (p.person.empty() ? "" : " / " + p.person) << "\n";
    }
  };
  // A dry run shows everything, then says it would be refused (and exits 2 as the import would).
  if (options.dry_run || sum.refused.empty()) report();
  if (!sum.refused.empty()) {
    for (storage::Ledger l : sum.refused) {
      const auto& n = sum.by_ledger.at(l);
      err << "bangfu: refusing to end " << n.ended << " of the " << n.open_before
          << " open pairings of ledger " << storage::ledger_code(l) << " ("
          << storage::ledger_label(l) << "): more than "
          << static_cast<int>(options.max_end_share * 100) << "%. Nothing changed.\n";
    }
    err << "Check that the file is the whole roster of those ledgers; if the pairings really end, "
           "run again with --force (try --dry-run first to see them).\n";
    if (!options.dry_run) by_ledger(err);
    return 2;
  }
  return 0;
}

int cmd_parse(const Args& a, std::ostream& out, std::ostream&) {
  const Config config = load_config(a.need("config"));
  const std::string from = a.need("from");
  if (a.positional.empty()) throw UsageError("parse needs the message TEXT");
  storage::LocalTime now = now_in(config);
  if (auto n = a.get("now")) {
    auto t = storage::LocalTime::parse(*n, config.utc_offset_seconds);
    if (!t) throw UsageError("--now must look like 2026-11-28T10:00:00+08:00");
    now = storage::LocalTime{t->unix_seconds, config.utc_offset_seconds};
  }
  std::string text = join(a.positional, " ");
  storage::Store store(config.database);
  handlers::SenderContext sender;
  sender.helper_id = from;
  sender.known = store.helper_name(from).has_value();
  sender.pairings = store.pairings_of(from, now.date());
  std::vector<storage::Pairing> seen = sender.pairings;
  sender.pairings_on = [&](storage::Date d) {
    auto ps = store.pairings_of(from, d);
    seen.insert(seen.end(), ps.begin(), ps.end());
    return ps;
  };
  const auto u = handlers::understand(text, sender, now.date(), config.bot_name);
  // An error is shown as the chat would get it: rendered from templates/ (ask, error,
  // unknown_sender), names masked.
  std::string message;
  if (const auto* e = std::get_if<handlers::ParseError>(&u)) {
    const auto templates =
        handlers::Templates::load(config.templates_dir, {"ask", "error", "unknown_sender"});
    message = handlers::mask_names(handlers::render_question(templates, *e), seen);
  }
  out << handlers::to_json(u, message) << "\n";
  return 0;
}

int cmd_say(const Args& a, std::ostream& out, std::ostream& err) {
  const Config config = load_config(a.need("config"));
  const std::string from = a.need("from");
  if (a.positional.empty()) throw UsageError("say needs the message TEXT");
  const std::string url = a.get("url").value_or("http://" + config.listen_host + ":" +
                                                std::to_string(config.listen_port));
  if (config.wecom.mode == WecomMode::Websocket)
    throw UsageError(
        "say posts to the HTTP callback, which websocket mode does not serve (wecom.mode is "
        "\"websocket\")");
  WecomCrypto crypto(config.wecom.token, config.wecom.encoding_aes_key, config.wecom.receive_id);
  std::random_device rd;
  const std::string msgid =
      "say-" + std::to_string(system_clock_seconds()) + "-" + std::to_string(rd() % 1000000);
  json msg = {{"msgid", msgid},
              {"aibotid", "local"},
              {"chatid", "local"},
              {"chattype", "group"},
              {"from", {{"userid", from}}},
              {"msgtype", "text"},
              {"text", {{"content", "@" + config.bot_name + " " + join(a.positional, " ")}}}};
  const std::string enc = crypto.encrypt(msg.dump(), crypto.random_prefix());
  const std::string ts = std::to_string(system_clock_seconds());
  const std::string nonce = std::to_string(rd());
  httplib::Client client(url);
  // https:// URLs are verified against the system's CA store, or against --ca (e.g. the
  // self-signed certificate of a test proxy).
  if (auto ca = a.get("ca")) client.set_ca_cert_path(ca->c_str());
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(10, 0);
  const std::string path = "/wecom/callback?msg_signature=" + crypto.signature(ts, nonce, enc) +
                           "&timestamp=" + ts + "&nonce=" + nonce;
  auto res = client.Post(path, json{{"encrypt", enc}}.dump(), "application/json");
  if (!res) {
    err << "bangfu: cannot reach " << url << " (" << httplib::to_string(res.error()) << ")\n";
    return 1;
  }
  if (res->status != 200) {
    err << "bangfu: service answered " << res->status << ": " << res->body;
    return 1;
  }
  json env = json::parse(res->body, nullptr, false);
  if (env.is_discarded() || !env.contains("encrypt")) {
    err << "bangfu: no reply body\n";
    return 1;
  }
  const auto d = crypto.decrypt(env["encrypt"].get<std::string>());
  json reply = json::parse(d.message, nullptr, false);
  if (d.error != CryptoError::Ok || reply.is_discarded()) {
    err << "bangfu: reply does not decrypt\n";
    return 1;
  }
  const auto stream = reply.find("stream");
  if (stream != reply.end() && stream->contains("content"))
    out << (*stream)["content"].get<std::string>() << "\n";
  else
    out << reply.dump() << "\n";
  return 0;
}

std::vector<CommandSpec> core_commands() {
  return {
      {"serve",
       "run the webhook service",
       "usage: bangfu serve --config FILE\n"
       "Runs the HTTP service (WeCom callback at /wecom/callback, /healthz, and the office\n"
       "dashboard at /office/ when office.enabled) until SIGINT or\n"
       "SIGTERM, then finishes the requests in flight and exits 0.\n",
       {"config"},
       {},
       cmd_serve},
      {"roster import",
       "import or update the roster (名册) from CSV",
       "usage: bangfu roster import --config FILE [--dry-run] [--ledger cadre,health] [--force]\n"
       "                            ROSTER.csv\n"
       "Imports the roster CSV (UTF-8, UTF-8 with BOM, or GBK). Re-importing updates pairings.\n"
       "An open pairing missing from the file ends today, but only in the ledgers the file has\n"
       "rows of (or those named by --ledger; the file may then hold no other ledger's rows).\n"
       "Ending more than 10% of a ledger's open pairings is refused (exit 2, nothing changed)\n"
       "unless --force. --dry-run prints what would change, by ledger, and changes nothing.\n"
       "Every updated, reopened or ended pairing is in `bangfu audit list`. A file with any\n"
       "error changes nothing (exit 2); errors are listed by line.\n",
       {"config", "ledger"},
       {"dry-run", "force"},
       cmd_roster_import},
      {"parse",
       "show how one message is understood (stores nothing)",
       "usage: bangfu parse --config FILE --from USERID [--now 2026-11-28T10:00:00+08:00] TEXT\n"
       "Prints how TEXT from USERID is understood, as one JSON object. Stores nothing.\n",
       {"config", "from", "now"},
       {},
       cmd_parse},
      {"ledger export",
       "the month's visit ledger (台账) as CSV, JSON or an Excel workbook",
       "usage: bangfu ledger export --config FILE --month YYYY-MM\n"
       "                            [--ledger cadre|health|education] --format csv|json|xlsx\n"
       "                            [--out FILE]\n"
       "Writes the month's check-ins (台账). CSV has Chinese headers and a UTF-8 BOM for Excel.\n"
       "xlsx (needs --out FILE.xlsx) has one sheet per ledger (区直, 卫生, 教育) with the CSV's\n"
       "columns, and a summary sheet 汇总 with each unit's coverage for the month.\n",
       {"config", "month", "ledger", "format", "out"},
       {},
       cmd_ledger_export},
      {"say",
       "send a message to a running service as WeCom would",
       "usage: bangfu say --config FILE --from USERID [--url http://127.0.0.1:8080]\n"
       "                  [--ca CERT.pem] TEXT\n"
       "Sends TEXT to the running service as a signed, encrypted WeCom AI-bot group message\n"
       "from USERID, and prints the bot's reply. For trying the bot without WeCom. An https://\n"
       "URL (the TLS proxy) is verified with the system's CAs, or with --ca CERT.pem.\n",
       {"config", "from", "url", "ca"},
       {},
       cmd_say},
  };
}

std::string usage(const std::vector<CommandSpec>& commands) {
  std::string u = "usage: bangfu <command> [options]\ncommands:\n";
  for (const auto& c : commands) {
    std::string line = "  " + c.name;
    line.resize(std::max<size_t>(line.size() + 1, 20), ' ');
    u += line + c.summary + "\n";
  }
  return u + "Each command answers --help; bangfu --version prints the version.\n";
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<CommandSpec> commands = core_commands();
  for (auto& c : simulate_commands()) commands.push_back(std::move(c));
  for (auto& c : bulletin_commands()) commands.push_back(std::move(c));
  for (auto& c : ops_commands()) commands.push_back(std::move(c));
  for (auto& c : office_commands()) commands.push_back(std::move(c));
  for (auto& c : problem_commands()) commands.push_back(std::move(c));
  for (auto& c : dashboard_commands()) commands.push_back(std::move(c));
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "help" || args[0] == "-h") {
      (args.empty() ? err : out) << usage(commands);
      return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version" || args[0] == "version") {
      if (args.size() > 1) throw UsageError("--version takes no arguments");
      out << version_text();
      return 0;
    }
    const CommandSpec* spec = nullptr;
    size_t consumed = 0;
    for (const auto& c : commands) {
      const bool two = c.name.find(' ') != std::string::npos;
      if (two && args.size() > 1 && c.name == args[0] + " " + args[1]) {
        spec = &c;
        consumed = 2;
      } else if (!two && c.name == args[0]) {
        spec = &c;
        consumed = 1;
      }
      if (spec) break;
    }
    if (!spec) {
      std::string what = args[0];
      if (args.size() > 1 && args[1].rfind("--", 0) != 0) what += " " + args[1];
      throw UsageError("unknown command '" + what + "' (try bangfu --help)");
    }
    const std::vector<std::string> rest(args.begin() + static_cast<long>(consumed), args.end());
    const Args a = parse_args(rest, spec->value_options, spec->flag_options);
    if (a.flag("help")) {
      out << spec->help;
      return 0;
    }
    return spec->run(a, out, err);
  } catch (const UsageError& e) {
    err << "bangfu: " << e.what() << "\n";
    return 2;
  } catch (const ConfigError& e) {
    err << "bangfu: " << e.what() << "\n";
    return 1;
  } catch (const handlers::TemplateError& e) {
    err << "bangfu: template error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "bangfu: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace bot
