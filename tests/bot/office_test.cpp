#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bot/config.h"
#include "bot/office/auth.h"
#include "bot/office/dashboard.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

using bangfu_test::TempDir;
using bot::office::Dashboard;
using bot::office::LoginLimiter;
using bot::office::Request;
using bot::office::Response;
using bot::office::SessionStore;
using storage::Date;

namespace {

constexpr int64_t kHour = 3600;
const std::string kPassword = "fupinban-2026!";

int64_t at(const char* iso) {
  auto t = storage::LocalTime::parse(iso, 8 * 3600);
  REQUIRE(t);
  return t->unix_seconds;
}

// A district of three pairings, one helper's name and unit carrying markup, in a real SQLite
// file, and a dashboard over it with one user.
struct Office {
  TempDir dir;
  bot::Config config;
  storage::Store store;
  Dashboard dashboard;

  static bot::Config make_config(const TempDir& d, bool behind_proxy) {
    bot::Config c;
    c.database = d.file("bangfu.db");
    c.templates_dir = BANGFU_SOURCE_DIR "/templates";
    c.office.enabled = true;
    c.office.behind_proxy = behind_proxy;
    c.office.users.push_back({"wang", bot::office::hash_password(kPassword)});
    return c;
  }

  explicit Office(bool behind_proxy = false)
      : config(make_config(dir, behind_proxy)), store(config.database), dashboard(config, store) {
    std::vector<storage::Pairing> rows(3);
    const char* names[][4] = {{"zhangwei", "张伟", "区财政局", "王秀英"},
                              {"zhangwei", "张伟", "区财政局", "李德明"},
                              {"evil", "<script>alert(1)</script>", "A&B局", "赵桂兰"}};
    for (int i = 0; i < 3; ++i) {
      rows[i].helper_id = names[i][0];
      rows[i].helper_name = names[i][1];
      rows[i].unit = names[i][2];
      rows[i].household_id = "H00" + std::to_string(i);
      rows[i].household_head = names[i][3];
      rows[i].village = "张庄村";
    }
    store.import_roster(rows, Date{2026, 1, 1});
  }

  Response get(const std::string& path, const std::string& cookie, int64_t now,
               std::multimap<std::string, std::string> query = {}) {
    Request r;
    r.method = "GET";
    r.path = path;
    r.query = std::move(query);
    if (!cookie.empty()) r.headers["cookie"] = std::string(Dashboard::kCookie) + "=" + cookie;
    r.remote_address = "10.0.0.1";
    return dashboard.handle(r, now);
  }

  Response login(const std::string& name, const std::string& password, int64_t now,
                 const std::string& address = "10.0.0.1",
                 std::map<std::string, std::string> headers = {}) {
    Request r;
    r.method = "POST";
    r.path = "/office/login";
    r.headers = std::move(headers);
    r.body = "name=" + name + "&password=" + password;
    r.remote_address = address;
    return dashboard.handle(r, now);
  }

  // The session id from a successful login's Set-Cookie.
  std::string sign_in(int64_t now) {
    const Response r = login("wang", kPassword, now);
    REQUIRE(r.status == 303);
    const std::string cookie = r.header("Set-Cookie");
    const auto eq = cookie.find('=');
    return cookie.substr(eq + 1, cookie.find(';') - eq - 1);
  }
};

}  // namespace

TEST_CASE("Passwords are Argon2id hashes that verify only the same password", "[bot]") {
  const std::string h = bot::office::hash_password(kPassword);
  CHECK(h.rfind("$argon2id$v=19$m=65536,t=2,p=1$", 0) == 0);
  CHECK(bot::office::is_password_hash(h));
  CHECK(bot::office::verify_password(h, kPassword));
  CHECK_FALSE(bot::office::verify_password(h, kPassword + " "));
  CHECK_FALSE(bot::office::verify_password(h, ""));
  CHECK_FALSE(bot::office::verify_password("plain-text", "plain-text"));
  CHECK_FALSE(bot::office::verify_password(h.substr(0, h.size() - 4), kPassword));
  CHECK(bot::office::hash_password(kPassword) != h);  // a fresh salt each time
}

TEST_CASE("Sessions end after 8 hours without a request, counted from the last one", "[bot]") {
  SessionStore s;
  const int64_t t0 = 1'800'000'000;
  const std::string id = s.open("wang", t0);
  CHECK(id.size() == 64);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(s.open("wang", t0) != id);
  CHECK(s.touch(id, t0 + 7 * kHour) == std::optional<std::string>("wang"));
  // Used at t0+7h, so it lives until t0+15h.
  CHECK(s.touch(id, t0 + 15 * kHour) == std::optional<std::string>("wang"));
  CHECK_FALSE(s.touch(id, t0 + 23 * kHour + 1));
  CHECK_FALSE(s.touch(id, t0 + 23 * kHour + 2));  // and it stays gone
  const std::string other = s.open("li", t0);
  s.close(other);
  CHECK_FALSE(s.touch(other, t0));
  CHECK_FALSE(s.touch(std::string(64, 'a'), t0));
  CHECK_FALSE(s.touch("short", t0));
}

TEST_CASE("Sessions and the pause may be used from several threads", "[bot]") {
  SessionStore s(8 * kHour, 1000);  // room for all: no session is closed to make room
  LoginLimiter l;
  std::vector<std::thread> threads;
  std::atomic<int> seen{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string id = s.open("u" + std::to_string(t), 1000 + i);
        if (s.touch(id, 1000 + i)) ++seen;
        if (i % 2) s.close(id);
        l.failed("10.0.0." + std::to_string(i % 7), 1000 + i);
        l.paused_for("10.0.0." + std::to_string(t), 1000 + i);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(seen == 800);
  CHECK(s.size() == 400);  // every other one was closed
}

TEST_CASE("Open sessions are bounded: the one idle longest goes first", "[bot]") {
  SessionStore s(8 * kHour, 2);
  const std::string a = s.open("a", 100), b = s.open("b", 200);
  CHECK(s.touch(a, 300));  // b is now the one idle longest
  const std::string c = s.open("c", 400);
  CHECK(s.size() == 2);
  CHECK(s.touch(a, 500));
  CHECK_FALSE(s.touch(b, 500));
  CHECK(s.touch(c, 500));
}

TEST_CASE("Five wrong passwords within a minute pause the address", "[bot]") {
  using Row = std::tuple<std::vector<int64_t>, int64_t, int64_t>;  // failures, now, paused for
  auto [failures, now, paused] = GENERATE(table<std::vector<int64_t>, int64_t, int64_t>({
      Row{{0, 1, 2, 3}, 4, 0},               // four are allowed
      Row{{0, 1, 2, 3, 4}, 5, 55},           // the fifth pauses until the first is a minute old
      Row{{0, 1, 2, 3, 4}, 59, 1},           //
      Row{{0, 1, 2, 3, 4}, 60, 0},           // the first has left the window
      Row{{0, 10, 20, 30, 70}, 71, 0},       // not five within one minute
      Row{{0, 50, 51, 52, 53, 54}, 60, 50},  // the last five count
  }));
  CAPTURE(failures, now);
  LoginLimiter l;
  for (int64_t t : failures) l.failed("10.0.0.1", t);
  CHECK(l.paused_for("10.0.0.1", now) == paused);
  CHECK(l.paused_for("10.0.0.2", now) == 0);  // per address
}

TEST_CASE("Form bodies are decoded", "[bot]") {
  using Row = std::tuple<std::string, std::string, std::string>;  // body, key, value
  auto [body, key, value] = GENERATE(table<std::string, std::string, std::string>({
      Row{"name=wang&password=a+b", "password", "a b"},
      Row{"name=%E7%8E%8B%E4%B8%BB%E4%BB%BB", "name", "王主任"},
      Row{"password=%25%26%3D", "password", "%&="},
      Row{"password=bad%zz%4", "password", "bad%zz%4"},  // malformed escapes stay as they are
      Row{"&&name=&x", "name", ""},
  }));
  CAPTURE(body);
  const auto form = bot::office::parse_form(body);
  auto it = form.find(key);
  REQUIRE(it != form.end());
  CHECK(it->second == value);
}

TEST_CASE("Pages need a session, login sets a strict cookie, logout ends it", "[bot]") {
  Office o;
  const int64_t now = at("2026-11-20T10:00:00+08:00");
  for (const char* path : {"/office/", "/office/units", "/office/problems", "/office/inbox",
                           "/office/exports", "/office/exports/ledger.xlsx", "/office/nope"}) {
    CAPTURE(path);
    const Response r = o.get(path, "", now);
    CHECK(r.status == 303);
    CHECK(r.header("Location") == "/office/login");
  }
  CHECK(o.get("/office/login", "", now).status == 200);
  CHECK(o.get("/office", "", now).header("Location") == "/office/");

  const Response wrong = o.login("wang", "nope", now);
  CHECK(wrong.status == 401);
  CHECK(wrong.header("Set-Cookie").empty());
  CHECK(wrong.body.find("用户名或密码不对") != std::string::npos);
  CHECK(o.login("li", kPassword, now).status == 401);  // no such user

  const Response ok = o.login("wang", kPassword, now);
  REQUIRE(ok.status == 303);
  CHECK(ok.header("Location") == "/office/");
  const std::string cookie = ok.header("Set-Cookie");
  CHECK(cookie.find("; Path=/office/; HttpOnly; SameSite=Strict") != std::string::npos);
  CHECK(cookie.find("Secure") == std::string::npos);  // plain HTTP, no proxy

  const std::string id = o.sign_in(now);
  const Response page = o.get("/office/", id, now + 8 * kHour);
  CHECK(page.status == 200);
  CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(page.header("Cache-Control") == "no-store");
  CHECK(page.header("Content-Security-Policy").find("default-src 'none'") != std::string::npos);
  // Eight hours and a second after the last request, the session is over.
  CHECK(o.get("/office/", id, now + 16 * kHour + 1).status == 303);

  const std::string id2 = o.sign_in(now);
  Request out;
  out.method = "GET";
  out.path = "/office/logout";
  out.headers["cookie"] = std::string(Dashboard::kCookie) + "=" + id2;
  CHECK(o.dashboard.handle(out, now).status == 405);  // logout is a POST
  out.method = "POST";
  const Response bye = o.dashboard.handle(out, now);
  CHECK(bye.status == 303);
  CHECK(bye.header("Location") == "/office/login?bye=1");
  CHECK(bye.header("Set-Cookie").find("Max-Age=0") != std::string::npos);
  CHECK(o.get("/office/", id2, now).status == 303);
}

TEST_CASE("Wrong passwords pause the address, even for the right one", "[bot]") {
  Office o;
  const int64_t now = at("2026-11-20T10:00:00+08:00");
  for (int i = 0; i < 5; ++i) CHECK(o.login("wang", "wrong", now + i).status == 401);
  const Response paused = o.login("wang", kPassword, now + 5);
  CHECK(paused.status == 429);
  CHECK(paused.header("Retry-After") == "55");
  CHECK(paused.body.find("请 55 秒后再试") != std::string::npos);
  CHECK(o.login("wang", kPassword, now + 5, "10.0.0.9").status == 303);  // another address
  CHECK(o.login("wang", kPassword, now + 60).status == 303);             // after the minute
}

TEST_CASE("Behind a proxy, the forwarded address and scheme are used", "[bot]") {
  Office o(true);
  const int64_t now = at("2026-11-20T10:00:00+08:00");
  for (int i = 0; i < 5; ++i)
    o.login("wang", "wrong", now, "127.0.0.1", {{"x-forwarded-for", "1.2.3.4, 10.9.9.9"}});
  // The proxy's own address is not paused; the client it named is.
  CHECK(o.login("wang", kPassword, now, "127.0.0.1", {{"x-forwarded-for", "10.9.9.8"}}).status ==
        303);
  CHECK(o.login("wang", kPassword, now, "127.0.0.1", {{"x-forwarded-for", "10.9.9.9"}}).status ==
        429);
  const Response tls = o.login("wang", kPassword, now, "127.0.0.1",
                               {{"x-forwarded-for", "10.1.1.1"}, {"x-forwarded-proto", "https"}});
  CHECK(tls.header("Set-Cookie").find("; Secure") != std::string::npos);
}

TEST_CASE("Cross-site posts and writes are refused", "[bot]") {
  Office o;
  const int64_t now = at("2026-11-20T10:00:00+08:00");
  const Response foreign = o.login("wang", kPassword, now, "10.0.0.1",
                                   {{"origin", "https://evil.example"}, {"host", "office.gov"}});
  CHECK(foreign.status == 403);
  CHECK(o.login("wang", kPassword, now, "10.0.0.1",
                {{"origin", "https://office.gov"}, {"host", "office.gov"}})
            .status == 303);
  Request post;
  post.method = "POST";
  post.path = "/office/units";
  post.headers["cookie"] = std::string(Dashboard::kCookie) + "=" + o.sign_in(now);
  CHECK(o.dashboard.handle(post, now).status == 405);
}

TEST_CASE("Every value on a page is HTML-escaped", "[bot]") {
  Office o;
  const int64_t now = at("2026-11-20T10:00:00+08:00");
  const std::string id = o.sign_in(now);
  const Response units = o.get("/office/units", id, now);
  REQUIRE(units.status == 200);
  CHECK(units.body.find("A&amp;B局") != std::string::npos);
  CHECK(units.body.find("A&B局") == std::string::npos);
  const Response unit = o.get("/office/units", id, now, {{"unit", "A&B局"}});
  REQUIRE(unit.status == 200);
  CHECK(unit.body.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(unit.body.find("<script>") == std::string::npos);
  CHECK(unit.body.find("赵桂兰") != std::string::npos);  // full names, behind the login
  // A user name with markup in the login form comes back escaped.
  const Response echo = o.login("<b>x</b>", "pw", now, "10.0.0.7");
  CHECK(echo.body.find("&lt;b&gt;x&lt;/b&gt;") != std::string::npos);
}

TEST_CASE("Bad parameters get a clear answer", "[bot]") {
  Office o;
  const int64_t now = at("2026-11-20T10:00:00+08:00");
  const std::string id = o.sign_in(now);
  using Row = std::tuple<std::string, std::string, std::string, int, std::string>;
  auto [path, key, value, status, says] =
      GENERATE(table<std::string, std::string, std::string, int, std::string>({
          Row{"/office/", "month", "2026-13", 400, "月份要写成 2026-11"},
          Row{"/office/", "month", "next", 400, "月份要写成 2026-11"},
          Row{"/office/units", "month", "2027-01", 400, "2027年1月还没到"},
          Row{"/office/units", "ledger", "army", 400, "台账只能是"},
          Row{"/office/units", "unit", "没有的局", 404, "没有找到单位"},
          Row{"/office/nothing", "", "", 404, "没有这个页面"},
      }));
  CAPTURE(path, key, value);
  std::multimap<std::string, std::string> q;
  if (!key.empty()) q.emplace(key, value);
  const Response r = o.get(path, id, now, q);
  CHECK(r.status == status);
  CHECK(r.body.find(says) != std::string::npos);
}

TEST_CASE("Exports are the ledger as CSV and as a real workbook", "[bot]") {
  Office o;
  const int64_t now = at("2026-11-20T10:00:00+08:00");
  const std::string id = o.sign_in(now);
  const Response csv = o.get("/office/exports/ledger.csv", id, now, {{"month", "2026-11"}});
  REQUIRE(csv.status == 200);
  CHECK(csv.header("Content-Type") == "text/csv; charset=utf-8");
  CHECK(csv.header("Content-Disposition") == "attachment; filename=\"bangfu-ledger-2026-11.csv\"");
  CHECK(csv.body.rfind("\xEF\xBB\xBF消息ID,", 0) == 0);
  const Response xlsx =
      o.get("/office/exports/ledger.xlsx", id, now, {{"month", "2026-10"}, {"ledger", "cadre"}});
  REQUIRE(xlsx.status == 200);
  CHECK(xlsx.body.rfind("PK\x03\x04", 0) == 0);
  CHECK(xlsx.body.find("xl/workbook.xml") != std::string::npos);
  CHECK(xlsx.header("Content-Disposition") ==
        "attachment; filename=\"bangfu-ledger-2026-10-cadre.xlsx\"");
}

TEST_CASE("The overview counts late reports: received after their visit's month", "[bot]") {
  Office o;
  const auto pairings = o.store.pairings_between(Date{2026, 10, 1}, Date{2026, 10, 31});
  REQUIRE(pairings.size() == 3);
  auto add = [&](const storage::Pairing& p, const std::string& msgid, Date visit,
                 const char* received) {
    storage::InboundMessage m;
    m.msgid = msgid;
    m.userid = p.helper_id;
    m.text = "走访";
    m.received_at = at(received);
    o.store.save_inbound(m);
    storage::CheckinRecord c;
    c.msgid = msgid;
    c.pairing_id = p.id;
    c.helper_id = p.helper_id;
    c.visit_date = visit;
    c.received_at = m.received_at;
    o.store.transaction([&](storage::Store::Tx& tx) { tx.add_checkin(c); });
  };
  add(pairings[0], "m1", Date{2026, 10, 31}, "2026-10-31T23:59:59+08:00");  // in time
  add(pairings[1], "m2", Date{2026, 10, 30}, "2026-11-01T00:00:00+08:00");  // late
  add(pairings[2], "m3", Date{2026, 10, 29}, "2026-11-03T09:00:00+08:00");  // late
  const int64_t now = at("2026-11-20T10:00:00+08:00");
  const Response r = o.get("/office/", o.sign_in(now), now);
  REQUIRE(r.status == 200);
  const std::string last = r.body.substr(r.body.find("id=\"last-month\""));
  CHECK(last.find("data-figure=\"late-cadre\">2<") != std::string::npos);
  CHECK(last.find("data-figure=\"late-all\">2<") != std::string::npos);
  CHECK(last.find("data-figure=\"fraction-cadre\">3/3<") != std::string::npos);
  const std::string current = r.body.substr(0, r.body.find("id=\"last-month\""));
  CHECK(current.find("data-figure=\"late-cadre\">0<") != std::string::npos);
}
