#include "bot/office/dashboard.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <kainjow/mustache.hpp>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <variant>

#include "bot/cli/cmd_ledger.h"
#include "handlers/bulletin.h"
#include "handlers/bulletin_stats.h"
#include "handlers/dispatcher.h"
#include "handlers/labels.h"
#include "handlers/templates.h"
#include "handlers/understanding.h"
#include "storage/bulletin_queries.h"
#include "storage/problems.h"

namespace bot::office {
namespace {

using kainjow::mustache::data;
using kainjow::mustache::mustache;
using storage::Date;
using storage::Ledger;
using storage::Month;

constexpr Ledger kLedgers[] = {Ledger::Cadre, Ledger::Health, Ledger::Education};
constexpr int kTrendMonths = 12;
constexpr int kInboxLimit = 500;

// --- small text helpers ---------------------------------------------------------------------

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string url_encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string cookie_value(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string_view part(header.data() + pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    pos = end + 1;
  }
  return {};
}

std::string chinese_month_full(Month m) {
  return std::to_string(m.year) + "年" + std::to_string(m.month) + "月";
}

std::string chinese_day(Date d) {
  return std::to_string(d.month) + "月" + std::to_string(d.day) + "日";
}

std::string local_time_text(int64_t unix_seconds, int offset) {
  const storage::LocalTime t{unix_seconds, offset};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d", t.hour(), t.minute());
  return t.date().iso() + " " + buf;
}

std::string coverage_text(const handlers::Coverage& c) {
  return c.due == 0 ? "—" : handlers::percent_text(handlers::permille(c));
}

std::string fraction_text(const handlers::Coverage& c) {
  return std::to_string(c.visited) + "/" + std::to_string(c.due);
}

bool below_threshold(const handlers::Coverage& c, int threshold_percent) {
  return c.due > 0 && handlers::permille(c) < threshold_percent * 10;
}

// --- responses ------------------------------------------------------------------------------

void security_headers(Response& r) {
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  // Only our own stylesheet; no scripts at all; the trend chart is inline SVG.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                         "form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
}

// A short plain-text refusal (no page shows it); `allow` names the methods for a 405.
Response plain(int status, std::string body, const char* allow = nullptr) {
  Response r;
  r.status = status;
  if (allow) r.headers.emplace_back("Allow", allow);
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body = std::move(body);
  return r;
}

Response redirect(const std::string& to) {
  Response r;
  r.status = 303;
  r.headers.emplace_back("Location", to);
  security_headers(r);
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw handlers::TemplateError(path + ":0: cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A temporary file removed when the scope ends (libxlsxwriter writes to a path).
class TempFile {
 public:
  TempFile() {
    unsigned char raw[8];
    if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
    std::string name = "bangfu-office-";
    for (unsigned char c : raw) name += "0123456789abcdef"[c & 15];
    path_ = (std::filesystem::temp_directory_path() / (name + ".xlsx")).string();
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

// --- Request / Response ---------------------------------------------------------------------

std::string Request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string Request::query_value(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? std::string() : it->second;
}

std::string Response::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

std::multimap<std::string, std::string> parse_form(const std::string& text) {
  std::multimap<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('&', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view part(text.data() + pos, end - pos);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      if (eq == std::string_view::npos)
        out.emplace(url_decode(part), "");
      else
        out.emplace(url_decode(part.substr(0, eq)), url_decode(part.substr(eq + 1)));
    }
    pos = end + 1;
  }
  return out;
}

// --- the pages ------------------------------------------------------------------------------

// Templates from templates/office/, compiled with kainjow's default HTML escaping: every value
// put into a page is escaped, and only the layout inserts the rendered page body with {{{ }}}.
struct Dashboard::Pages {
  std::map<std::string, mustache> compiled;
  std::string stylesheet;

  static const std::vector<std::string>& names() {
    static const std::vector<std::string> kNames = {"layout",  "login",     "overview", "units",
                                                    "unit",    "occasions", "problems", "inbox",
                                                    "exports", "message"};
    return kNames;
  }

  explicit Pages(const std::string& dir) {
    for (const auto& n : names()) {
      const std::string file = dir + "/office/" + n + ".mustache";
      mustache m(read_text(file));
      if (!m.is_valid()) throw handlers::TemplateError(file + ": " + m.error_message());
      compiled.emplace(n, std::move(m));
    }
    stylesheet = read_text(dir + "/office/office.css");
  }

  std::string render(const std::string& name, const data& d) const {
    mustache m = compiled.at(name);  // a copy: render keeps state (see handlers/templates.cpp)
    return m.render(d);
  }
};

namespace {

// The page `key` inside the layout: the template names the page (title, navigation) from the
// flag `t_<key>`; `title` is added to it (a unit's name).
Response page(const Dashboard::Pages& pages, const std::string& key, const std::string& user,
              const data& body_data, int status = 200, const std::string& title = "") {
  data layout;
  layout.set("t_" + key, true);
  layout.set("title", title);
  layout.set("body", pages.render(key, body_data));
  layout.set("user", user);
  layout.set("signed_in", !user.empty());
  Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  security_headers(r);
  r.body = pages.render("layout", layout);
  return r;
}

data month_nav(Month m, Month current, const std::string& base, const std::string& extra = "") {
  data d;
  d.set("month", m.str());
  d.set("month_text", chinese_month_full(m));
  d.set("prev_href", base + "?month=" + m.prev().str() + extra);
  d.set("prev_text", chinese_month_full(m.prev()));
  if (m < current) {
    d.set("next_href", base + "?month=" + m.next().str() + extra);
    d.set("next_text", chinese_month_full(m.next()));
  }
  return d;
}

// Why a message recorded nothing, as flags for the inbox template: r_command (with `command`),
// r_checkin, or r_<error code> (r_other with `code` for a code the template does not know).
void set_reason(data& d, const handlers::Understanding& u) {
  static const char* kKnown[] = {"unknown_sender", "not_paired",   "ambiguous",
                                 "future_date",    "invalid_date", "not_understood"};
  if (const auto* c = std::get_if<handlers::CommandMsg>(&u)) {
    d.set("r_command", true);
    d.set("command", std::string(handlers::command_code(c->command)));
  } else if (std::holds_alternative<handlers::Checkin>(u)) {
    d.set("r_checkin", true);
  } else {
    const auto& code = std::get<handlers::ParseError>(u).code;
    const bool known = std::find(std::begin(kKnown), std::end(kKnown), code) != std::end(kKnown);
    d.set(known ? "r_" + code : std::string("r_other"), true);
    d.set("code", code);
  }
}

// --- overview -------------------------------------------------------------------------------

// Check-ins that count (not undone) reported after their visit's month was over (补报): the
// bulletin posted at the start of the next month may not include them.
std::map<Ledger, int> late_reports(storage::Store& store, Month m, int offset) {
  return store.late_reports(m, m.next().first().days() * 86400 - offset);
}

data figures_row(const std::string& label, const std::string& code, const handlers::MonthTotals& t,
                 int late, int threshold) {
  data row;
  row.set("label", label);
  row.set("code", code);
  row.set("coverage", coverage_text(t.coverage));
  row.set("fraction", fraction_text(t.coverage));
  row.set("visits", std::to_string(t.visits));
  row.set("phone_only", std::to_string(t.phone_only));
  row.set("late", std::to_string(late));
  row.set("below", below_threshold(t.coverage, threshold));
  return row;
}

data month_table(const handlers::MonthlyFigures& f, const std::map<Ledger, int>& late,
                 int threshold, const std::string& heading) {
  data table;
  table.set("heading", heading);
  table.set("running", f.running);
  data list = data::type::list;
  int late_total = 0;
  for (const auto& l : f.ledgers) {
    auto it = late.find(l.ledger);
    const int n = it == late.end() ? 0 : it->second;
    late_total += n;
    list.push_back(figures_row(std::string(storage::ledger_label(l.ledger)),
                               std::string(storage::ledger_code(l.ledger)), l.totals, n,
                               threshold));
  }
  data total = figures_row("", "all", f.district, late_total, threshold);
  total.set("total", true);
  list.push_back(total);
  table.set("rows", list);
  return table;
}

// The district's coverage for the 12 months up to `m` as an inline SVG bar chart: coordinates
// are computed here, the template only draws them. viewBox 0 0 640 260; bars in 40..620.
data trend_chart(const std::vector<std::pair<Month, handlers::Coverage>>& months, int threshold) {
  constexpr int kLeft = 44, kTop = 16, kHeight = 190, kSlot = 48;
  data chart;
  data bars = data::type::list;
  for (size_t i = 0; i < months.size(); ++i) {
    const auto& [m, c] = months[i];
    data b;
    const int x = kLeft + static_cast<int>(i) * kSlot;
    b.set("label_x", std::to_string(x + kSlot / 2));
    b.set("label", std::to_string(m.month) + "月");
    b.set("month", m.str());
    if (c.due > 0) {
      const int pm = handlers::permille(c);
      const int h = pm * kHeight / 1000;
      b.set("has", true);
      b.set("x", std::to_string(x + 8));
      b.set("y", std::to_string(kTop + kHeight - h));
      b.set("w", std::to_string(kSlot - 16));
      b.set("h", std::to_string(std::max(h, 1)));
      b.set("value", handlers::percent_text(pm));
      b.set("value_y", std::to_string(kTop + kHeight - h - 4));
      b.set("below", pm < threshold * 10);
    } else {
      b.set("has", false);
      b.set("value_y", std::to_string(kTop + kHeight - 4));
    }
    bars.push_back(b);
  }
  chart.set("bars", bars);
  chart.set("threshold_y", std::to_string(kTop + kHeight - threshold * kHeight / 100));
  chart.set("threshold", std::to_string(threshold) + "%");
  chart.set("base_y", std::to_string(kTop + kHeight));
  chart.set("label_y", std::to_string(kTop + kHeight + 20));
  chart.set("top_y", std::to_string(kTop));
  return chart;
}

// The roster's full pairings of a month (the bulletin snapshot fills only the fields the chat
// may use): village and the rest, for the office's pages.
class PairingBook {
 public:
  PairingBook(storage::Store& store, Month m) : store_(store) {
    for (auto& p : store.pairings_between(m.first(), m.last())) {
      const int64_t id = p.id;
      full_.emplace(id, std::move(p));
    }
  }
  /// The full pairing for a snapshot's one (read from the store if it was not in force).
  const storage::Pairing& get(const storage::Pairing& partial) {
    auto it = full_.find(partial.id);
    if (it != full_.end()) return it->second;
    auto p = store_.pairing(partial.id);
    return full_.emplace(partial.id, p ? *p : partial).first->second;
  }

 private:
  storage::Store& store_;
  std::map<int64_t, storage::Pairing> full_;
};

}  // namespace

// --- Dashboard ------------------------------------------------------------------------------

Dashboard::Dashboard(const Config& config, storage::Store& store)
    : config_(config),
      store_(store),
      dummy_hash_(hash_password("bangfu: no such user")),
      pages_(std::make_unique<Pages>(config.templates_dir)) {}

Dashboard::~Dashboard() = default;

std::string Dashboard::client_address(const Request& req) const {
  if (config_.office.behind_proxy) {
    // The proxy appends the address it saw; earlier entries come from the client and are not
    // trusted.
    const std::string xff = req.header("x-forwarded-for");
    if (!xff.empty()) {
      std::string last = xff.substr(xff.rfind(',') == std::string::npos ? 0 : xff.rfind(',') + 1);
      while (!last.empty() && last.front() == ' ') last.erase(0, 1);
      while (!last.empty() && last.back() == ' ') last.pop_back();
      if (!last.empty()) return last;
    }
  }
  return req.remote_address;
}

bool Dashboard::secure(const Request& req) const {
  return req.is_tls || (config_.office.behind_proxy && req.header("x-forwarded-proto") == "https");
}

Response Dashboard::login_page(const Request& req, int64_t) {
  data d;
  d.set("bye", req.query_value("bye") == "1");
  return page(*pages_, "login", "", d);
}

Response Dashboard::login(const Request& req, int64_t now) {
  const std::string address = client_address(req);
  auto form = parse_form(req.body);
  auto field = [&](const char* k) {
    auto it = form.find(k);
    return it == form.end() ? std::string() : it->second;
  };
  const std::string name = field("name");
  data d;
  d.set("name", name);
  if (const int64_t wait = limiter_.paused_for(address, now); wait > 0) {
    d.set("paused", true);
    d.set("wait", std::to_string(wait));
    Response r = page(*pages_, "login", "", d, 429);
    r.headers.emplace_back("Retry-After", std::to_string(wait));
    return r;
  }
  const std::string password = field("password");
  const OfficeUser* user = nullptr;
  for (const auto& u : config_.office.users)
    if (u.name == name) user = &u;
  // An unknown name costs the same Argon2id verification, so timing does not tell names apart.
  const bool ok = user ? verify_password(user->hash, password)
                       : (verify_password(dummy_hash_, password), false);
  if (!ok || name.empty() || password.empty()) {
    limiter_.failed(address, now);
    d.set("wrong", true);
    return page(*pages_, "login", "", d, 401);
  }
  const std::string id = sessions_.open(user->name, now);
  Response r = redirect("/office/");
  r.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=" + id +
                                           "; Path=/office/; HttpOnly; SameSite=Strict" +
                                           (secure(req) ? "; Secure" : ""));
  return r;
}

Response Dashboard::logout(const Request& req) {
  sessions_.close(cookie_value(req.header("cookie"), kCookie));
  Response r = redirect("/office/login?bye=1");
  r.headers.emplace_back("Set-Cookie", std::string(kCookie) +
                                           "=; Path=/office/; Max-Age=0; HttpOnly; "
                                           "SameSite=Strict" +
                                           (secure(req) ? "; Secure" : ""));
  return r;
}

Response Dashboard::handle(const Request& req, int64_t now) {
  const std::string& path = req.path;
  if (path == "/office") return redirect("/office/");
  if (path == "/office/static/office.css") {
    Response r;
    r.headers.emplace_back("Content-Type", "text/css; charset=utf-8");
    r.headers.emplace_back("Cache-Control", "max-age=3600");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.body = pages_->stylesheet;
    return r;
  }
  const bool is_post = req.method == "POST";
  if (req.method != "GET" && req.method != "HEAD" && !is_post)
    return plain(405, "method not allowed\n", "GET, POST");
  if (is_post) {
    // SameSite=Strict keeps the cookie off cross-site posts; a browser's Origin header, when
    // sent, must also name this host (this also stops a foreign page from signing someone in).
    const std::string origin = req.header("origin");
    if (!origin.empty() && origin != "null") {
      const size_t scheme = origin.find("://");
      const std::string host = scheme == std::string::npos ? origin : origin.substr(scheme + 3);
      if (host != req.header("host")) return plain(403, "cross-site request refused\n");
    }
  }
  if (path == "/office/login") return is_post ? login(req, now) : login_page(req, now);

  const auto user = sessions_.touch(cookie_value(req.header("cookie"), kCookie), now);
  if (!user) return redirect("/office/login");
  if (path == "/office/logout") {
    if (is_post) return logout(req);
    return plain(405, "log out with the button on the page (POST)\n", "POST");
  }
  if (is_post) return plain(405, "the dashboard is read-only\n", "GET");

  const int offset = config_.utc_offset_seconds;
  const storage::LocalTime local{now, offset};
  const Date today = local.date();
  const Month current = Month::of(today);
  const int threshold = config_.bulletin.unit_threshold_percent;

  // An error page: `what` is the message template's flag; `d` may carry its values.
  auto problem = [&](int status, const std::string& what, data d = data()) {
    d.set(what, true);
    return page(*pages_, "message", *user, d, status);
  };
  // ?month=YYYY-MM, this month when absent; a month after this one is refused.
  Month month = current;
  if (const std::string m = req.query_value("month"); !m.empty()) {
    auto parsed = Month::parse(m);
    if (!parsed) return problem(400, "bad_month");
    if (*parsed > current) {
      data d;
      d.set("month_text", chinese_month_full(*parsed));
      return problem(400, "future_month", d);
    }
    if (parsed->year < 2000) return problem(400, "early_month");
    month = *parsed;
  }
  std::optional<Ledger> only;
  if (const std::string l = req.query_value("ledger"); !l.empty() && l != "all") {
    only = storage::ledger_from(l);
    if (!only) return problem(400, "bad_ledger");
  }

  if (path == "/office/" || path == "/office/index.html") {
    // One snapshot for the 12 months of the trend (and the month before the first, which the
    // monthly figures compare with); each month's figures are computed from it by the
    // bulletin's own compute_monthly.
    Month first = month;
    for (int i = 0; i < kTrendMonths - 1; ++i) first = first.prev();
    storage::BulletinQueries q(store_);
    const auto snap = q.snapshot(handlers::monthly_range(first).first, month.last(), std::nullopt);
    auto figures_of = [&](Month m) {
      return handlers::compute_monthly(snap, m, std::nullopt, config_.bulletin, today);
    };
    const auto figures = figures_of(month);
    const auto prev_figures = figures_of(month.prev());
    data d = month_nav(month, current, "/office/");
    d.set("this_month", month_table(figures, late_reports(store_, month, offset), threshold,
                                    chinese_month_full(month)));
    d.set("last_month", month_table(prev_figures, late_reports(store_, month.prev(), offset),
                                    threshold, chinese_month_full(month.prev())));
    d.set("today", chinese_day(today));
    std::vector<std::pair<Month, handlers::Coverage>> trend;
    for (Month m = first; m <= month; m = m.next())
      trend.emplace_back(m, m == month          ? figures.district.coverage
                            : m == month.prev() ? prev_figures.district.coverage
                                                : figures_of(m).district.coverage);
    d.set("chart", trend_chart(trend, threshold));
    d.set("threshold", std::to_string(threshold) + "%");
    return page(*pages_, "overview", *user, d);
  }

  if (path == "/office/units") {
    const std::string unit = req.query_value("unit");
    const auto figures = handlers::monthly_figures(store_, month, only, config_.bulletin, local);
    if (unit.empty()) {
      data d = month_nav(month, current, "/office/units");
      d.set("running", figures.running);
      data ledgers = data::type::list;
      for (const auto& l : figures.ledgers) {
        data ld;
        ld.set("ledger", std::string(storage::ledger_label(l.ledger)));
        data units = data::type::list;
        for (const auto& u : l.units) {
          data ud;
          ud.set("rank", std::to_string(u.rank));
          ud.set("unit", u.unit);
          ud.set("href", "/office/units?month=" + month.str() + "&unit=" + url_encode(u.unit));
          ud.set("coverage", coverage_text(u.coverage));
          ud.set("fraction", fraction_text(u.coverage));
          ud.set("missed", std::to_string(u.coverage.due - u.coverage.visited));
          ud.set("below", below_threshold(u.coverage, threshold));
          ud.set("full", u.coverage.due > 0 && u.coverage.visited == u.coverage.due);
          units.push_back(ud);
        }
        ld.set("units", units);
        ld.set("has_units", !l.units.empty());
        ledgers.push_back(ld);
      }
      d.set("ledgers", ledgers);
      d.set("threshold", std::to_string(threshold) + "%");
      return page(*pages_, "units", *user, d);
    }
    // One unit: its helpers and their pairings in the month, not visited highlighted.
    storage::BulletinQueries q(store_);
    const auto snap = q.snapshot(month.first(), month.last(), std::nullopt);
    PairingBook book(store_, month);
    std::map<int64_t, const storage::PairingMonthActivity*> activity;
    for (const auto& a : snap.activity)
      if (a.month == month) activity[a.pairing_id] = &a;
    struct Row {
      const storage::Pairing* p;
      int visits, phone;
      bool due;
    };
    std::map<std::pair<std::string, std::string>, std::vector<Row>> by_helper;  // (name, id)
    handlers::Coverage total;
    for (const auto& sp : snap.pairings) {
      if (sp.unit != unit) continue;
      const storage::Pairing& p = book.get(sp);
      auto it = activity.find(p.id);
      const int visits = it == activity.end() ? 0 : it->second->visit_days;
      const int phone = it == activity.end() ? 0 : it->second->phone_days;
      const bool due = visits > 0 || handlers::days_in_force(p, month) >= handlers::kDueMinDays;
      if (due) total += handlers::Coverage{1, visits > 0 ? 1 : 0};
      by_helper[{p.helper_name, p.helper_id}].push_back({&p, visits, phone, due});
    }
    if (by_helper.empty()) {
      data nd;
      nd.set("unit", unit);
      nd.set("month_text", chinese_month_full(month));
      return problem(404, "no_unit", nd);
    }
    data d = month_nav(month, current, "/office/units", "&unit=" + url_encode(unit));
    d.set("unit", unit);
    d.set("running", month == current);
    d.set("coverage", coverage_text(total));
    d.set("fraction", fraction_text(total));
    // Helpers with pairings not visited first, then by name.
    std::vector<std::pair<std::pair<std::string, std::string>, std::vector<Row>>> ordered(
        by_helper.begin(), by_helper.end());
    auto missed_of = [](const std::vector<Row>& rows) {
      return std::count_if(rows.begin(), rows.end(),
                           [](const Row& r) { return r.due && r.visits == 0; });
    };
    std::stable_sort(ordered.begin(), ordered.end(), [&](const auto& a, const auto& b) {
      return missed_of(a.second) > missed_of(b.second);
    });
    data helpers = data::type::list;
    for (auto& [key, rows] : ordered) {
      std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        return std::tie(a.p->household_head, a.p->person) <
               std::tie(b.p->household_head, b.p->person);
      });
      data hd;
      hd.set("name", key.first);
      hd.set("id", key.second);
      int missed = 0;
      data list = data::type::list;
      for (const auto& r : rows) {
        data rd;
        rd.set("household", r.p->household_head);
        rd.set("person", r.p->person);
        rd.set("village", r.p->village);
        rd.set("ledger", std::string(storage::ledger_label(r.p->ledger)));
        rd.set("visits", std::to_string(r.visits));
        if (!r.due)
          rd.set("not_due", true);
        else if (r.visits > 0)
          rd.set("visited", true);
        else if (r.phone > 0)
          rd.set("phone_only", true);
        else
          rd.set(month == current ? "not_yet" : "not_visited", true);
        rd.set("missed", r.due && r.visits == 0);
        if (r.due && r.visits == 0) ++missed;
        list.push_back(rd);
      }
      hd.set("pairings", list);
      hd.set("missed", std::to_string(missed));
      hd.set("has_missed", missed > 0);
      helpers.push_back(hd);
    }
    d.set("helpers", helpers);
    d.set("min_days", std::to_string(handlers::kDueMinDays));
    return page(*pages_, "unit", *user, d, 200, unit);
  }

  if (path == "/office/occasions") {
    storage::BulletinQueries q(store_);
    const auto snap = q.snapshot(month.first(), month.last(), only);
    PairingBook book(store_, month);
    std::map<int64_t, const storage::Pairing*> pairings;
    for (const auto& p : snap.pairings) pairings[p.id] = &book.get(p);
    const int window = config_.bulletin.occasion_window_days;
    data d = month_nav(month, current, "/office/occasions");
    data list = data::type::list;
    int followed = 0, pending = 0, overdue = 0;
    std::vector<const storage::OccasionReport*> reports;
    for (const auto& o : snap.occasions)
      if (Month::of(o.date) == month) reports.push_back(&o);
    std::sort(reports.begin(), reports.end(), [](auto* a, auto* b) {
      return std::tie(a->date, a->pairing_id) > std::tie(b->date, b->pairing_id);
    });
    for (const auto* o : reports) {
      auto it = pairings.find(o->pairing_id);
      if (it == pairings.end()) continue;
      const storage::Pairing& p = *it->second;
      const Date due_by = o->date.plus_days(window);
      data od;
      od.set("date", o->date.iso());
      od.set("kind", std::string(handlers::occasion_label(o->kind)));
      od.set("unit", p.unit);
      od.set("helper", p.helper_name);
      od.set("household", p.household_head);
      od.set("person", p.person);
      od.set("village", p.village);
      od.set("due_by", due_by.iso());
      if (o->first_visit && *o->first_visit <= due_by && *o->first_visit <= today) {
        od.set("ok", true);
        od.set("first_visit", o->first_visit->iso());
        od.set("state", "ok");
        ++followed;
      } else if (today > due_by) {
        od.set("bad", true);
        od.set("state", "bad");
        ++overdue;
      } else {
        od.set("wait", true);
        od.set("state", "wait");
        ++pending;
      }
      list.push_back(od);
    }
    d.set("occasions", list);
    d.set("has_occasions", !reports.empty());
    d.set("reported", std::to_string(reports.size()));
    d.set("followed", std::to_string(followed));
    d.set("pending", std::to_string(pending));
    d.set("overdue", std::to_string(overdue));
    d.set("window", std::to_string(window));
    return page(*pages_, "occasions", *user, d);
  }

  if (path == "/office/problems") {
    // The tracked items (storage/problems.h): open and in progress first, oldest report first;
    // then the closed ones, latest report first. Full names: the office may see them.
    auto items = storage::Problems::list(store_, std::nullopt, only);
    std::map<int64_t, std::optional<storage::Pairing>> pairings;
    std::map<std::string, std::string> helpers;  // userid → name
    data open = data::type::list;
    std::vector<data> closed_rows;  // oldest report first; shown most recently reported first
    int in_progress = 0, resolved = 0;
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
      return std::tie(a.reported_on, a.id) < std::tie(b.reported_on, b.id);
    });
    for (const auto& pr : items) {
      auto pit = pairings.find(pr.pairing_id);
      if (pit == pairings.end())
        pit = pairings.emplace(pr.pairing_id, store_.pairing(pr.pairing_id)).first;
      auto hit = helpers.find(pr.reported_by);
      if (hit == helpers.end())
        hit = helpers
                  .emplace(pr.reported_by,
                           store_.helper_name(pr.reported_by).value_or(pr.reported_by))
                  .first;
      const bool is_closed = storage::is_closed(pr.status);
      const Date until = is_closed && pr.closed_on ? *pr.closed_on : today;
      const int age = until.days() - pr.reported_on.days();
      data pd;
      pd.set("number", std::to_string(pr.id));
      pd.set("text", pr.text);
      pd.set("category", pr.category.policy.empty()
                             ? pr.category.category
                             : pr.category.category + "：" + pr.category.policy);
      pd.set("status", std::string(storage::problem_status_label(pr.status)));
      pd.set("reported", pr.reported_on.iso());
      pd.set("closed", pr.closed_on ? pr.closed_on->iso() : std::string());
      pd.set("age", std::to_string(age));
      pd.set("ledger", std::string(storage::ledger_label(pr.ledger)));
      pd.set("unit", pr.unit);
      pd.set("helper", hit->second);
      pd.set("household", pr.household_head);
      pd.set("person", pr.person);
      pd.set("village", pit->second ? pit->second->village : std::string());
      pd.set("old", !is_closed && age > 30);
      if (pr.status == storage::ProblemStatus::InProgress) ++in_progress;
      if (pr.status == storage::ProblemStatus::Resolved) ++resolved;
      if (is_closed)
        closed_rows.push_back(pd);
      else
        open.push_back(pd);
    }
    data closed = data::type::list;
    for (auto it = closed_rows.rbegin(); it != closed_rows.rend(); ++it) closed.push_back(*it);
    data d;
    d.set("open_count", std::to_string(open.list_value().size()));
    d.set("in_progress_count", std::to_string(in_progress));
    d.set("resolved_count", std::to_string(resolved));
    d.set("has_open", !open.list_value().empty());
    d.set("has_closed", !closed.list_value().empty());
    d.set("open", open);
    d.set("closed", closed);
    d.set("today", today.iso());
    return page(*pages_, "problems", *user, d);
  }

  if (path == "/office/inbox") {
    // What the bot recorded nothing for (Store::inbox: failed, not understood, rate limited),
    // received in the month, newest first.
    const int64_t from = month.first().days() * 86400 - offset;
    const int64_t to = month.last().days() * 86400 + 86400 - offset;
    auto entries = store_.inbox(std::nullopt, from);
    std::erase_if(entries, [&](const auto& e) { return e.message.received_at >= to; });
    std::reverse(entries.begin(), entries.end());
    const bool capped = static_cast<int>(entries.size()) > kInboxLimit;
    if (capped) entries.resize(kInboxLimit);
    data d = month_nav(month, current, "/office/inbox");
    data list = data::type::list;
    std::map<std::string, std::string> names;  // userid → helper name ("" off the roster)
    for (const auto& e : entries) {
      const auto& m = e.message;
      auto name = names.find(m.userid);
      if (name == names.end())
        name = names.emplace(m.userid, store_.helper_name(m.userid).value_or("")).first;
      data ed;
      ed.set("time", local_time_text(m.received_at, offset));
      ed.set("sender", name->second.empty() ? m.userid : name->second);
      ed.set("on_roster", !name->second.empty());
      ed.set("text", m.text);
      ed.set("reply", e.reply);
      ed.set("has_reply", !e.reply.empty());
      if (e.status == "not_understood") {
        // Why, read again the way the bot reads messages now, on the day it came.
        const Date sent = storage::LocalTime{m.received_at, offset}.date();
        handlers::SenderContext sender{m.userid, !name->second.empty(),
                                       name->second.empty() ? std::vector<storage::Pairing>{}
                                                            : store_.pairings_of(m.userid, sent)};
        set_reason(ed, handlers::as_handled(m.text, sender, sent, config_.bot_name));
      }
      ed.set("st_" + e.status, true);  // st_not_understood, st_rate_limited, st_failed
      ed.set("error", e.error);
      list.push_back(ed);
    }
    d.set("entries", list);
    d.set("count", std::to_string(entries.size()));
    d.set("has_entries", !entries.empty());
    d.set("capped", capped);
    d.set("limit", std::to_string(kInboxLimit));
    return page(*pages_, "inbox", *user, d);
  }

  if (path == "/office/exports") {
    data d;
    d.set("month", month.str());
    d.set("max_month", current.str());
    data months = data::type::list;
    Month m = current;
    for (int i = 0; i < 6; ++i, m = m.prev()) {
      data md;
      md.set("month_text", chinese_month_full(m));
      md.set("month", m.str());
      data files = data::type::list;
      for (const char* fmt : {"xlsx", "csv"}) {
        data f;
        f.set("href", "/office/exports/ledger." + std::string(fmt) + "?month=" + m.str());
        f.set(fmt, true);
        files.push_back(f);
      }
      for (Ledger l : kLedgers) {
        data f;
        f.set("href", "/office/exports/ledger.csv?month=" + m.str() +
                          "&ledger=" + std::string(storage::ledger_code(l)));
        f.set("csv", true);
        f.set("ledger", std::string(storage::ledger_label(l)));
        files.push_back(f);
      }
      md.set("files", files);
      months.push_back(md);
    }
    d.set("months", months);
    return page(*pages_, "exports", *user, d);
  }

  if (path == "/office/exports/ledger.xlsx" || path == "/office/exports/ledger.csv") {
    const bool xlsx = path.ends_with(".xlsx");
    const auto rows = store_.ledger(month, only);
    std::string name = "bangfu-ledger-" + month.str();
    if (only) name += "-" + std::string(storage::ledger_code(*only));
    Response r;
    r.headers.emplace_back("Cache-Control", "no-store");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    if (xlsx) {
      const auto figures = handlers::monthly_figures(store_, month, only, config_.bulletin, local);
      TempFile tmp;
      write_ledger_xlsx(tmp.path(), rows, only, handlers::coverage_summary_rows(figures), offset);
      r.body = read_text(tmp.path());
      r.headers.emplace_back("Content-Type",
                             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
      name += ".xlsx";
    } else {
      r.body = ledger_csv(rows, offset);
      r.headers.emplace_back("Content-Type", "text/csv; charset=utf-8");
      name += ".csv";
    }
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + name + "\"");
    return r;
  }

  return problem(404, "not_found");
}

}  // namespace bot::office
