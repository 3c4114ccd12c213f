#include "bot/cli/cmd_simulate.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "bot/config.h"
#include "bot/wecom/callback.h"
#include "bot/wecom/crypto.h"
#include "handlers/dispatcher.h"
#include "handlers/templates.h"
#include "handlers/understanding.h"
#include "simulator/simulate.h"
#include "storage/roster_csv.h"
#include "storage/store.h"

namespace bot {
namespace {

using nlohmann::json;
using simulator::mismatch;
using simulator::roster_csv;
using simulator::RosterIndex;
using simulator::RosterOptions;
using simulator::SimMessage;
using simulator::simulate_roster;
using simulator::simulate_traffic;
using simulator::traffic_json_line;
using simulator::traffic_mix;
using simulator::TrafficMix;
using simulator::TrafficOptions;
using Clock = std::chrono::steady_clock;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f || !(f << text)) throw std::runtime_error("cannot write " + path);
}

int64_t number_option(const Args& a, const std::string& key, int64_t fallback, int64_t lo,
                      int64_t hi) {
  const auto v = a.get(key);
  if (!v) return fallback;
  std::size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v->size() || n < lo || n > hi)
    throw UsageError("--" + key + " must be a whole number from " + std::to_string(lo) + " to " +
                     std::to_string(hi));
  return n;
}

uint64_t seed_option(const Args& a) {
  const auto v = a.get("seed");
  if (!v) return 1;
  if (v->empty() || v->size() > 19 || v->find_first_not_of("0123456789") != std::string::npos)
    throw UsageError("--seed must be a whole number");
  return std::stoull(*v);
}

storage::Date date_option(const Args& a, const std::string& key) {
  const auto d = storage::Date::parse_iso(a.need(key));
  if (!d) throw UsageError("--" + key + " must look like 2026-07-01");
  return *d;
}

std::string fixed(double v, int digits = 1) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// --- simulate roster ---------------------------------------------------------------------------

int cmd_roster(const Args& a, std::ostream& out, std::ostream&) {
  RosterOptions o;
  o.scale = static_cast<int>(number_option(a, "scale", 1, 1, 1000));
  o.seed = seed_option(a);
  if (a.get("as-of")) o.as_of = date_option(a, "as-of");
  const auto rows = simulate_roster(o);
  const std::string csv = roster_csv(rows);
  const auto path = a.get("out");
  if (!path) {
    out << csv;
    return 0;
  }
  write_text(*path, csv);
  std::map<storage::Ledger, std::size_t> per_ledger;
  for (const auto& p : rows) ++per_ledger[p.ledger];
  out << "wrote " << rows.size() << " pairings to " << *path << " (scale " << o.scale << ", seed "
      << o.seed << "): " << per_ledger[storage::Ledger::Cadre] << " cadre, "
      << per_ledger[storage::Ledger::Health] << " health, "
      << per_ledger[storage::Ledger::Education] << " education\n";
  return 0;
}

// --- simulate traffic --apply ----------------------------------------------------------------

std::string msgid_of(uint64_t seed, std::size_t index) {
  return "sim-" + std::to_string(seed) + "-" + std::to_string(index);
}

// What applying one sender's share of the messages came to.
struct Applied {
  std::size_t recorded = 0, undone = 0, commands = 0, duplicates = 0, unexpected = 0;
  std::map<std::string, std::size_t> errors;
  std::vector<std::string> examples;  // the first few messages understood otherwise than meant
};

// Feeds messages[i] for each i in `indexes` (one sender's, in time order) through the dispatcher.
void apply_share(const Config& config, storage::Store& store, handlers::Dispatcher& dispatcher,
                 const std::vector<SimMessage>& messages, const std::vector<std::size_t>& indexes,
                 uint64_t seed, Applied& a, std::atomic<std::size_t>& done) {
  for (std::size_t i : indexes) {
    const SimMessage& m = messages[i];
    const storage::LocalTime now{m.time.unix_seconds, config.utc_offset_seconds};
    // The understanding, as the dispatcher will reach it, to count outcomes by kind.
    handlers::SenderContext sender;
    sender.helper_id = m.userid;
    sender.known = store.helper_name(m.userid).has_value();
    sender.pairings = store.pairings_of(m.userid, now.date());
    const auto u = handlers::understand(m.text, sender, now.date(), config.bot_name);
    if (auto why = mismatch(m, u)) {
      if (++a.unexpected <= 5) a.examples.push_back(m.text + ": " + *why);
    }
    storage::InboundMessage in;
    in.msgid = msgid_of(seed, i);
    in.userid = m.userid;
    in.chatid = "simulate";
    in.chattype = "group";
    in.text = m.text;
    in.received_at = now.unix_seconds;
    const auto outcome = dispatcher.handle(in, now);
    if (outcome.duplicate) {
      ++a.duplicates;
    } else if (std::holds_alternative<handlers::Checkin>(u) ||
               std::holds_alternative<handlers::CheckinGroup>(u)) {
      a.recorded += outcome.recorded;
    } else if (const auto* c = std::get_if<handlers::CommandMsg>(&u)) {
      ++a.commands;
      if (c->command == handlers::Command::Undo) a.undone += outcome.recorded;
    } else {
      ++a.errors[std::get<handlers::ParseError>(u).code];
    }
    done.fetch_add(1);
  }
}

// Each sender's messages depend only on that sender's earlier ones (an undo takes back the
// sender's own last check-in), so senders are spread over threads and each thread keeps its
// senders' order; the Store then commits many senders' messages with one fsync.
int apply(const Config& config, const std::vector<SimMessage>& messages, uint64_t seed,
          std::ostream& out, std::ostream& err) {
  // The dispatcher's full set of templates: a message may ask for a bulletin.
  const auto templates =
      handlers::Templates::load(config.templates_dir, handlers::dispatcher_template_names());
  storage::Store store(config.database);
  handlers::DispatchOptions options;
  options.bot_name = config.bot_name;
  options.admins = config.admins;
  handlers::Dispatcher dispatcher(store, templates, options);

  constexpr std::size_t kThreads = 16;
  std::vector<std::vector<std::size_t>> shares(kThreads);
  std::map<std::string, std::size_t> share_of;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto [it, fresh] = share_of.try_emplace(messages[i].userid, share_of.size() % kThreads);
    shares[it->second].push_back(i);
  }
  std::vector<Applied> applied(kThreads);
  std::atomic<std::size_t> done{0};
  std::vector<std::exception_ptr> failures(kThreads);  // read after the join
  std::atomic<bool> failed{false};
  const auto started = Clock::now();
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        apply_share(config, store, dispatcher, messages, shares[t], seed, applied[t], done);
      } catch (...) {
        failures[t] = std::current_exception();
        failed.store(true);
      }
    });
  }
  while (done.load() < messages.size() && !failed.load()) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    err << "[simulate] applied " << done.load() << "/" << messages.size() << "\n";
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures)
    if (f) std::rethrow_exception(f);

  Applied total;
  for (const Applied& a : applied) {
    total.recorded += a.recorded;
    total.undone += a.undone;
    total.commands += a.commands;
    total.duplicates += a.duplicates;
    total.unexpected += a.unexpected;
    for (const auto& [code, n] : a.errors) total.errors[code] += n;
    for (const auto& e : a.examples)
      if (total.examples.size() < 5) total.examples.push_back(e);
  }
  for (const auto& e : total.examples) err << "bangfu: not as intended: " << e << "\n";
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  out << "applied " << messages.size() << " messages to " << config.database << " in "
      << fixed(seconds) << " s (" << fixed(messages.size() / std::max(seconds, 1e-9), 0)
      << " msgs/s)\n"
      << "  check-ins recorded: " << total.recorded << " (undone afterwards: " << total.undone
      << ")\n"
      << "  commands: " << total.commands << "\n"
      << "  errors by code:";
  if (total.errors.empty()) out << " none";
  for (const auto& [code, n] : total.errors) out << " " << code << "=" << n;
  out << "\n";
  if (total.duplicates)
    out << "  already applied before (same msgid): " << total.duplicates << "\n";
  const TrafficMix mix = traffic_mix(messages);
  const auto corpus = mix.forms.find("corpus");
  out << "  understood otherwise than meant: " << total.unexpected << " (check-ins in the words of"
      << " the hand-written corpus: " << (corpus == mix.forms.end() ? 0 : corpus->second) << ")\n";
  return 0;
}

// --- simulate traffic --post -----------------------------------------------------------------

struct Target {
  std::string host;
  int port = 80;
};

// Only loopback targets: this load generator must not be pointed at anyone else's service.
Target loopback_target(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) throw UsageError("--post must be an http:// URL on 127.0.0.1");
  std::string rest = url.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  Target t;
  std::string port;
  if (rest.rfind("[::1]", 0) == 0) {
    t.host = "::1";
    if (rest.size() > 5 && rest[5] == ':') port = rest.substr(6);
  } else {
    const auto colon = rest.find(':');
    t.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  bool loopback = t.host == "localhost" || t.host == "::1";
  if (t.host.rfind("127.", 0) == 0) {
    int dots = 0;
    loopback = t.host.find_first_not_of("0123456789.") == std::string::npos;
    for (char c : t.host) dots += c == '.';
    loopback = loopback && dots == 3;
  }
  if (!loopback) throw UsageError("--post only accepts loopback targets (127.0.0.1, localhost)");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
      throw UsageError("--post has a bad port");
    t.port = std::stoi(port);
  }
  return t;
}

struct PostOptions {
  std::string url;
  int rate = 0;  // messages/s overall; 0: as fast as possible
  int connections = 8;
  std::size_t limit = 0;
  int max_seconds = 120;
};

struct Sent {
  int status = 0;     // HTTP status; 0: no answer
  std::string error;  // transport error when status is 0
  int64_t micros = 0;
  std::string body;
};

int post(const Config& config, const std::vector<SimMessage>& messages, uint64_t seed,
         const PostOptions& po, std::ostream& out, std::ostream& err) {
  const Target target = loopback_target(po.url);
  const WecomCrypto crypto(config.wecom.token, config.wecom.encoding_aes_key,
                           config.wecom.receive_id);
  const std::size_t n = po.limit ? std::min(po.limit, messages.size()) : messages.size();

  // Sign and encrypt everything before the clock starts, so that the generator's own crypto does
  // not compete with the service for the cores during the run. All share one timestamp (now);
  // the run is capped well inside the service's freshness window.
  struct Request {
    std::string path, body;
  };
  std::vector<Request> requests(n);
  const std::string ts = std::to_string(system_clock_seconds());
  const std::string run = std::to_string(std::random_device{}() % 1000000);
  for (std::size_t i = 0; i < n; ++i) {
    const SimMessage& m = messages[i];
    const json msg = {{"msgid", msgid_of(seed, i)},     {"aibotid", "simulate"},
                      {"chatid", "simulate"},           {"chattype", "group"},
                      {"from", {{"userid", m.userid}}}, {"msgtype", "text"},
                      {"text", {{"content", m.text}}}};
    const std::string enc = crypto.encrypt(msg.dump(), crypto.random_prefix());
    const std::string nonce = run + "x" + std::to_string(i);
    requests[i].path = "/wecom/callback?msg_signature=" + crypto.signature(ts, nonce, enc) +
                       "&timestamp=" + ts + "&nonce=" + nonce;
    requests[i].body = json{{"encrypt", enc}}.dump();
  }

  std::vector<Sent> sent(n);
  std::atomic<std::size_t> next{0}, completed{0}, failed{0};
  std::atomic<int> running{po.connections};
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(po.max_seconds);
  std::vector<std::thread> workers;
  for (int c = 0; c < po.connections; ++c) {
    workers.emplace_back([&] {
      struct Leave {
        std::atomic<int>& running;
        ~Leave() { running.fetch_sub(1); }
      } leave{running};
      httplib::Client client(target.host, target.port);
      client.set_keep_alive(true);
      // Without it the body, written after the head, waits for the server's delayed ACK (Nagle).
      client.set_tcp_nodelay(true);
      client.set_connection_timeout(5, 0);
      client.set_read_timeout(10, 0);
      for (;;) {
        const std::size_t i = next.fetch_add(1);
        if (i >= n) return;
        if (po.rate > 0) {
          std::this_thread::sleep_until(
              start + std::chrono::microseconds(static_cast<int64_t>(i) * 1000000 / po.rate));
        }
        if (Clock::now() >= deadline) {
          next.store(n);
          return;
        }
        const auto t0 = Clock::now();
        auto res = client.Post(requests[i].path, requests[i].body, "application/json");
        Sent& s = sent[i];
        s.micros = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        if (res) {
          s.status = res->status;
          s.body = std::move(res->body);
          if (s.status != 200) failed.fetch_add(1);
        } else {
          s.error = httplib::to_string(res.error());
          failed.fetch_add(1);
        }
        completed.fetch_add(1);
      }
    });
  }
  std::size_t last_done = 0;
  auto last_tick = start;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto t = Clock::now();
    if (t - last_tick < std::chrono::seconds(1)) continue;
    const std::size_t done = completed.load();
    err << "[simulate] " << done << "/" << n << " sent, "
        << fixed((done - last_done) / std::chrono::duration<double>(t - last_tick).count(), 0)
        << " msgs/s, " << failed.load() << " failed\n";
    last_done = done;
    last_tick = t;
  }
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  // Check the answers after the run: every 200 must carry a reply that verifies and decrypts.
  std::vector<int64_t> latencies;
  std::map<std::string, std::size_t> non_ok;
  std::size_t answered = 0, ok = 0, undecryptable = 0, acknowledged = 0;
  for (const Sent& s : sent) {
    if (s.status == 0 && s.error.empty()) continue;  // never sent (deadline)
    ++answered;
    latencies.push_back(s.micros);
    if (s.status != 200) {
      ++non_ok[s.status ? std::to_string(s.status) : "no answer: " + s.error];
      continue;
    }
    ++ok;
    const json env = json::parse(s.body, nullptr, false);
    const auto field = [&](const char* k) {
      return env.is_object() && env.contains(k) && env[k].is_string() ? env[k].get<std::string>()
                                                                      : std::string();
    };
    const std::string enc = field("encrypt"), sig = field("msgsignature"), nonce = field("nonce");
    const std::string rts =
        env.is_object() && env.contains("timestamp") ? env["timestamp"].dump() : std::string();
    const Decrypted d = crypto.decrypt(enc);
    const json reply = json::parse(d.message, nullptr, false);
    if (enc.empty() || !crypto.verify(sig, rts, nonce, enc) || d.error != CryptoError::Ok ||
        !reply.is_object()) {
      ++undecryptable;
      continue;
    }
    const auto stream = reply.find("stream");
    if (stream != reply.end() && stream->is_object() && stream->contains("content") &&
        (*stream)["content"].is_string() &&
        (*stream)["content"].get<std::string>().rfind("已记下", 0) == 0)
      ++acknowledged;
  }
  std::sort(latencies.begin(), latencies.end());
  const auto pct = [&](double p) -> double {
    if (latencies.empty()) return 0;
    const auto rank =
        static_cast<std::size_t>(p * static_cast<double>(latencies.size()) + 0.999999);
    return latencies[std::min(latencies.size(), std::max<std::size_t>(rank, 1)) - 1] / 1000.0;
  };
  const double rate = answered / std::max(seconds, 1e-9);
  out << "sent " << answered << " of " << n << " messages to " << po.url << " over "
      << po.connections << " connections in " << fixed(seconds, 2) << " s: " << fixed(rate, 0)
      << " msgs/s\n"
      << "latency ms: p50 " << fixed(pct(0.50), 2) << "  p95 " << fixed(pct(0.95), 2) << "  p99 "
      << fixed(pct(0.99), 2) << "  max "
      << fixed(latencies.empty() ? 0 : latencies.back() / 1000.0, 2) << "\n"
      << "answers: " << ok << " x 200";
  for (const auto& [status, count] : non_ok) out << ", " << count << " x " << status;
  out << "\n"
      << "replies: " << ok - undecryptable << " verified and decrypted, " << undecryptable
      << " failed; check-ins acknowledged (已记下): " << acknowledged << " ("
      << fixed(acknowledged / std::max(seconds, 1e-9), 0) << "/s)\n";
  const json summary = {{"sent", answered},
                        {"seconds", seconds},
                        {"msgs_per_s", rate},
                        {"p50_ms", pct(0.50)},
                        {"p95_ms", pct(0.95)},
                        {"p99_ms", pct(0.99)},
                        {"max_ms", latencies.empty() ? 0.0 : latencies.back() / 1000.0},
                        {"ok", ok},
                        {"non_200", answered - ok},
                        {"undecryptable", undecryptable},
                        {"acknowledged_checkins", acknowledged}};
  out << "summary " << summary.dump() << "\n";
  return answered == n && ok == answered && undecryptable == 0 ? 0 : 1;
}

// --- simulate traffic ------------------------------------------------------------------------

int cmd_traffic(const Args& a, std::ostream& out, std::ostream& err) {
  const std::string roster_path = a.need("roster");
  TrafficOptions o;
  o.from = date_option(a, "from");
  o.to = date_option(a, "to");
  if (o.to < o.from) throw UsageError("--to is before --from");
  if (o.to.days() - o.from.days() > 3 * 366) throw UsageError("--from and --to span over 3 years");
  o.seed = seed_option(a);
  const bool applying = a.flag("apply");
  const auto post_url = a.get("post");
  if (applying && post_url) throw UsageError("--apply and --post do not go together");
  std::optional<Config> config;
  if (applying || post_url) {
    config = load_config(a.need("config"));
  } else if (a.get("config")) {
    config = load_config(*a.get("config"));
  }
  if (config) {
    o.bot_name = config->bot_name;
    o.utc_offset_seconds = config->utc_offset_seconds;
  }

  const auto parsed = storage::parse_roster_csv(slurp(roster_path));
  if (!parsed.errors.empty()) {
    err << "bangfu: " << roster_path << " has " << parsed.errors.size()
        << " errors; first: " << parsed.errors.front().message << "\n";
    return 1;
  }
  const RosterIndex roster(parsed.rows);
  const auto messages = simulate_traffic(roster, o);

  if (auto path = a.get("out"); path || (!applying && !post_url)) {
    std::string lines;
    for (const auto& m : messages) lines += traffic_json_line(m) + "\n";
    if (path) {
      write_text(*path, lines);
      const TrafficMix mix = traffic_mix(messages);
      err << "wrote " << messages.size() << " messages to " << *path << ": " << mix.checkins
          << " check-ins, " << mix.commands << " commands, " << mix.chatter << " chatter, "
          << mix.mistakes << " mistakes\n";
    } else {
      out << lines;
    }
  }
  if (applying) return apply(*config, messages, o.seed, out, err);
  if (post_url) {
    PostOptions po;
    po.url = *post_url;
    po.rate = static_cast<int>(number_option(a, "rate", 0, 0, 1000000));
    po.connections = static_cast<int>(number_option(a, "connections", 8, 1, 256));
    po.limit = static_cast<std::size_t>(number_option(a, "limit", 0, 0, 10000000));
    po.max_seconds = static_cast<int>(number_option(a, "duration", 120, 1, 240));
    return post(*config, messages, o.seed, po, out, err);
  }
  return 0;
}

}  // namespace

std::vector<CommandSpec> simulate_commands() {
  return {
      {"simulate roster",
       "a synthetic district's roster (CSV), for demos and benchmarks",
       "usage: bangfu simulate roster [--scale N] [--seed S] [--as-of YYYY-MM-DD] [--out FILE]\n"
       "Writes a roster of N districts of the shape in docs/domain.md (per district: 37 units, "
       "320\n"
       "cadres with 759 households in 139 villages, 129 doctors with 454 ill and 361 disabled\n"
       "persons, 132 teachers with 88 students), in the CSV format of `roster import`. The same\n"
       "seed gives the same file. A few pairings start mid-month in the three months up to\n"
       "--as-of (default 2026-09-30). Defaults: --scale 1 --seed 1; without --out, to stdout.\n",
       {"scale", "seed", "as-of", "out"},
       {},
       cmd_roster},
      {"simulate traffic",
       "the messages a roster's helpers would send, as JSON lines, applied or posted",
       "usage: bangfu simulate traffic --roster ROSTER.csv --from YYYY-MM-DD --to YYYY-MM-DD\n"
       "                               [--seed S] [--out FILE] [--config FILE]\n"
       "                               [--apply | --post URL [--rate R] [--connections C]\n"
       "                                          [--limit N] [--duration SECONDS]]\n"
       "Generates the group's messages between the two dates (check-ins in every accepted form,\n"
       "commands, chatter and mistakes), the same for the same seed, as JSON lines\n"
       "{\"time\",\"userid\",\"text\"} to --out or stdout.\n"
       "--apply  feeds each message through the real dispatcher into the config's database, at\n"
       "         the message's own time; prints what was recorded. The roster must be imported.\n"
       "--post   sends them to a running service on this machine (loopback only) as signed,\n"
       "         encrypted WeCom callbacks stamped now, over C keep-alive connections (default\n"
       "         8), at most R messages/s (default 0: as fast as possible), for at most\n"
       "         --duration seconds (default 120, at most 240); reports throughput, latency\n"
       "         p50/p95/p99/max and non-200 answers, and checks every reply decrypts.\n",
       {"roster", "from", "to", "seed", "out", "config", "post", "rate", "connections", "limit",
        "duration"},
       {"apply"},
       cmd_traffic},
  };
}

}  // namespace bot
