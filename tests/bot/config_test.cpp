#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bot/config.h"

using bot::Config;
using bot::ConfigError;
using bot::parse_config;
using nlohmann::json;

namespace {

json base() {
  return {{"database", "bangfu.db"},
          {"wecom",
           {{"token", "bangfuTestToken7"},
            {"encoding_aes_key", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}}}};
}

Config parse(const json& j, const std::map<std::string, std::string>& env = {}) {
  return parse_config(j.dump(), env, "/srv/bangfu");
}

// The ConfigError text for `j`, or "" when it parses.
std::string error_of(const json& j) {
  try {
    parse(j);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("Bulletin and schedule keys have their documented defaults", "[bot]") {
  const Config c = parse(base());
  CHECK(c.bulletin.unit_threshold_percent == 80);
  CHECK(c.bulletin.name_helpers);
  CHECK(c.bulletin.occasion_window_days == 7);
  CHECK(c.bulletin.charts);
  CHECK(c.schedule.monthly.enabled);
  CHECK(c.schedule.monthly.day == 1);
  CHECK(c.schedule.monthly.hour == 9);
  CHECK(c.schedule.monthly.minute == 0);
  CHECK(c.schedule.quarterly.enabled);
  CHECK(c.schedule.quarterly.day == 3);
  CHECK(c.schedule.quarterly.hour == 9);
  CHECK(c.schedule.reminder_days == std::vector<int>{20, -3});
  CHECK(c.schedule.reminder_hour == 16);
  CHECK(c.schedule.reminder_minute == 0);
  CHECK(c.schedule.ledgers == std::vector<std::string>{"cadre", "health", "education"});
  CHECK(c.wecom.webhook_url.empty());
}

TEST_CASE("Bulletin and schedule keys are read", "[bot]") {
  json j = base();
  j["bulletin"] = {{"unit_threshold_percent", 90},
                   {"name_helpers", false},
                   {"occasion_window_days", 3},
                   {"charts", false}};
  j["schedule"] = {{"monthly", {{"day", 2}, {"time", "08:30"}}},
                   {"quarterly", false},
                   {"reminders", {{"days", {25, -1, 25}}, {"time", "17:05"}}},
                   {"ledgers", {"all"}}};
  const Config c = parse(j);
  CHECK(c.bulletin.unit_threshold_percent == 90);
  CHECK_FALSE(c.bulletin.name_helpers);
  CHECK(c.bulletin.occasion_window_days == 3);
  CHECK_FALSE(c.bulletin.charts);
  CHECK(c.schedule.monthly.day == 2);
  CHECK(c.schedule.monthly.hour == 8);
  CHECK(c.schedule.monthly.minute == 30);
  CHECK_FALSE(c.schedule.quarterly.enabled);
  CHECK(c.schedule.reminder_days == std::vector<int>{25, -1});  // duplicates dropped
  CHECK(c.schedule.reminder_hour == 17);
  CHECK(c.schedule.reminder_minute == 5);
  CHECK(c.schedule.ledgers == std::vector<std::string>{"all"});

  json off = base();
  off["schedule"] = {{"reminders", false}};
  CHECK(parse(off).schedule.reminder_days.empty());
  off["schedule"] = {{"reminders", {{"days", json::array()}}}};
  CHECK(parse(off).schedule.reminder_days.empty());
}

TEST_CASE("Bad bulletin and schedule values are refused, naming the key", "[bot]") {
  using Row = std::tuple<std::string, json, std::string>;  // (section, value, key named)
  auto [section, value, named] = GENERATE(table<std::string, json, std::string>({
      Row{"bulletin", json{{"unit_threshold_percent", 101}}, "bulletin.unit_threshold_percent"},
      Row{"bulletin", json{{"unit_threshold_percent", "80"}}, "bulletin.unit_threshold_percent"},
      Row{"bulletin", json{{"name_helpers", "yes"}}, "bulletin.name_helpers"},
      Row{"bulletin", json{{"charts", 1}}, "bulletin.charts"},
      Row{"bulletin", json{{"occasion_window_days", -1}}, "bulletin.occasion_window_days"},
      Row{"bulletin", json{{"occasion_window", 7}}, "bulletin.occasion_window"},
      Row{"bulletin", json::array(), "bulletin"},
      Row{"schedule", json{{"monthly", {{"day", 29}}}}, "schedule.monthly.day"},
      Row{"schedule", json{{"monthly", {{"day", 0}}}}, "schedule.monthly.day"},
      Row{"schedule", json{{"monthly", {{"day", -29}}}}, "schedule.monthly.day"},
      Row{"schedule", json{{"monthly", {{"time", "9:00"}}}}, "schedule.monthly.time"},
      Row{"schedule", json{{"monthly", {{"time", "24:00"}}}}, "schedule.monthly.time"},
      Row{"schedule", json{{"monthly", {{"hour", 9}}}}, "schedule.monthly.hour"},
      Row{"schedule", json{{"monthly", true}}, "schedule.monthly"},
      Row{"schedule", json{{"quarterly", {{"day", "3"}}}}, "schedule.quarterly.day"},
      Row{"schedule", json{{"reminders", {{"days", 20}}}}, "schedule.reminders.days"},
      Row{"schedule", json{{"reminders", {{"days", {20, 31}}}}}, "schedule.reminders.days"},
      Row{"schedule", json{{"reminders", {{"time", "16:60"}}}}, "schedule.reminders.time"},
      Row{"schedule", json{{"ledgers", {"cadre", "district"}}}, "schedule.ledgers"},
      Row{"schedule", json{{"ledgers", "cadre"}}, "schedule.ledgers"},
      Row{"schedule", json{{"reminder", {{"days", {20}}}}}, "schedule.reminder"},
  }));
  json j = base();
  j[section] = value;
  CAPTURE(section, value.dump());
  const std::string e = error_of(j);
  CAPTURE(e);
  CHECK(e.find("'" + named + "'") != std::string::npos);
}

TEST_CASE("The webhook URL must be https, or http to the loopback only", "[bot]") {
  auto [url, ok] = GENERATE(table<std::string, bool>({
      {"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", true},
      {"http://127.0.0.1:8123/cgi-bin/webhook/send?key=abc", true},
      {"http://localhost:8123/send?key=abc", true},
      {"http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", false},
      {"http://127.0.0.1.example.com/send?key=abc", false},
      {"ftp://qyapi.weixin.qq.com/send", false},
      {"https://qyapi.weixin.qq.com", false},
  }));
  json j = base();
  j["wecom"]["webhook_url"] = url;
  CAPTURE(url);
  const std::string e = error_of(j);
  CHECK(e.empty() == ok);
  if (!ok) {
    CHECK(e.find("'wecom.webhook_url'") != std::string::npos);
    CHECK(e.find("abc") == std::string::npos);  // the key is never echoed
  }
  // The environment overrides the file, and is checked the same way.
  json k = base();
  k["wecom"]["webhook_url"] = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=file";
  CHECK_THROWS_AS(parse(k, {{"BANGFU_WECOM_WEBHOOK_URL", "http://example.com/send?key=x"}}),
                  ConfigError);
}

TEST_CASE("config.example.json loads once the secrets come from the environment", "[bot]") {
  std::ifstream in(BANGFU_SOURCE_DIR "/config.example.json");
  REQUIRE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // As shipped, the placeholders are not valid secrets: start-up must say which key is wrong.
  CHECK_THROWS_WITH(parse_config(text, {}, "/etc/bangfu"), Catch::Contains("wecom.token"));
  const std::map<std::string, std::string> env = {
      {"BANGFU_WECOM_TOKEN", "RealToken123"},
      {"BANGFU_WECOM_AES_KEY", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"},
      {"BANGFU_WECOM_WEBHOOK_URL", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}};
  const Config c = parse_config(text, env, "/etc/bangfu");
  CHECK(c.wecom.token == "RealToken123");
  CHECK(c.database == "/var/lib/bangfu/bangfu.db");
  CHECK(c.utc_offset_seconds == 8 * 3600);
  CHECK(c.bulletin.unit_threshold_percent == 80);
}

TEST_CASE("check_config lists every problem, each naming its key, and keeps the rest", "[bot]") {
  json j = base();
  j["wecom"].erase("token");
  j["wecom"]["encoding_aes_key"] = "too-short";
  j["listen"] = "127.0.0.1:99999";
  j["bulletin"] = {{"unit_threshold_percent", 101}, {"name_helpers", "yes"}};
  j["threads"] = 8;
  const bot::ConfigCheck r = bot::check_config(j.dump(), {}, "/srv/bangfu");
  std::vector<std::string> keys;
  for (const auto& p : r.problems) {
    keys.push_back(p.key);
    CHECK(p.message.find("'" + p.key + "'") != std::string::npos);
  }
  CAPTURE(keys);
  CHECK(keys == std::vector<std::string>{"listen", "wecom.token", "wecom.encoding_aes_key",
                                         "wecom.callback_url", "bulletin.unit_threshold_percent",
                                         "bulletin.name_helpers"});
  CHECK(r.config.database == "/srv/bangfu/bangfu.db");  // the good keys are still read
  // parse_config (serve) stops on all the blocking ones at once; callback_url does not block.
  const std::string e = error_of(j);
  for (const char* k : {"'listen'", "'wecom.token'", "'wecom.encoding_aes_key'",
                        "'bulletin.unit_threshold_percent'", "'bulletin.name_helpers'"})
    CHECK(e.find(k) != std::string::npos);
  CHECK(e.find("callback_url") == std::string::npos);
}

TEST_CASE("What each wecom.mode needs", "[bot]") {
  using Row = std::tuple<json, std::vector<std::string>>;  // (wecom section, problem keys)
  const std::string key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
  auto [wecom, expected] = GENERATE_COPY(table<json, std::vector<std::string>>({
      Row{json::object(), {"wecom.token", "wecom.encoding_aes_key", "wecom.callback_url"}},
      Row{json{{"token", "tok1"}, {"encoding_aes_key", key}}, {"wecom.callback_url"}},
      Row{json{{"token", "tok1"},
               {"encoding_aes_key", key},
               {"callback_url", "https://bangfu.example.gov.cn/wecom/callback"}},
          {}},
      Row{json{{"token", "tok1"},
               {"encoding_aes_key", key},
               {"callback_url", "http://bangfu.example.gov.cn/wecom/callback"}},
          {"wecom.callback_url"}},
      Row{json{{"mode", "websocket"}}, {"wecom.bot_id", "wecom.secret"}},
      Row{json{{"mode", "websocket"}, {"bot_id", "b1"}, {"secret", "s1"}}, {}},
      Row{json{{"mode", "websocket"}, {"bot_id", "b1"}, {"secret", "s1"}, {"ws_url", "ws://"}},
          {"wecom.ws_url"}},
      Row{json{{"mode", "websocket"},
               {"bot_id", "b1"},
               {"secret", "s1"},
               {"ws_url", "https://openws.work.weixin.qq.com"}},
          {"wecom.ws_url"}},
      Row{json{{"mode", "webhook"}, {"token", "tok1"}, {"encoding_aes_key", key}},
          {"wecom.mode", "wecom.callback_url"}},
  }));
  json j = {{"database", "bangfu.db"}, {"wecom", wecom}};
  CAPTURE(wecom.dump());
  const bot::ConfigCheck r = bot::check_config(j.dump(), {}, "/srv/bangfu");
  std::vector<std::string> keys;
  for (const auto& p : r.problems) keys.push_back(p.key);
  CHECK(keys == expected);
  // The environment supplies the secrets of either mode.
  const bot::ConfigCheck env = bot::check_config(
      json{{"database", "b.db"}, {"wecom", {{"mode", "websocket"}, {"bot_id", "b1"}}}}.dump(),
      {{"BANGFU_WECOM_SECRET", "from-env"}}, "/srv");
  CHECK(env.config.wecom.secret == "from-env");
}

TEST_CASE("The shipped /etc config lists exactly the secrets and the public URL as missing",
          "[bot]") {
  std::ifstream in(BANGFU_SOURCE_DIR "/deploy/config.json");
  REQUIRE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const bot::ConfigCheck r = bot::check_config(text, {}, "/etc/bangfu");
  std::vector<std::string> keys;
  for (const auto& p : r.problems) keys.push_back(p.key);
  CHECK(keys ==
        std::vector<std::string>{"wecom.token", "wecom.encoding_aes_key", "wecom.callback_url"});
  CHECK(r.config.database == "/var/lib/bangfu/bangfu.db");
  CHECK(r.config.templates_dir_is_default);
  const bot::ConfigCheck filled =
      bot::check_config(text,
                        {{"BANGFU_WECOM_TOKEN", "RealToken123"},
                         {"BANGFU_WECOM_AES_KEY", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}},
                        "/etc/bangfu");
  REQUIRE(filled.problems.size() == 1);
  CHECK_FALSE(filled.problems[0].blocks_start);
}

TEST_CASE("templates_dir: the build tree's templates by default, else as configured", "[bot]") {
  // This test binary runs from the build tree, so the default is the source tree's templates.
  const Config c = parse(base());
  CHECK(c.templates_dir_is_default);
  CHECK(c.templates_dir == std::string(BANGFU_SOURCE_DIR) + "/templates");
  CHECK_NOTHROW(bot::require_templates_dir(c));
  json j = base();
  j["templates_dir"] = "no-such-templates";
  const Config set = parse(j);
  CHECK_FALSE(set.templates_dir_is_default);
  CHECK(set.templates_dir == "/srv/bangfu/no-such-templates");
  CHECK_THROWS_WITH(
      bot::require_templates_dir(set),
      Catch::Contains("/srv/bangfu/no-such-templates") && Catch::Contains("'templates_dir'"));
}

TEST_CASE("Office keys: off by default, users with Argon2id hashes when on", "[bot]") {
  CHECK_FALSE(parse(base()).office.enabled);
  const std::string hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
  json j = base();
  j["office"] = {{"enabled", true},
                 {"behind_proxy", true},
                 {"users", json::array({{{"name", "王主任"}, {"hash", hash}}})}};
  const Config c = parse(j);
  CHECK(c.office.enabled);
  CHECK(c.office.behind_proxy);
  REQUIRE(c.office.users.size() == 1);
  CHECK(c.office.users[0].name == "王主任");
  CHECK(c.office.users[0].hash == hash);

  using Row = std::pair<json, std::string>;  // office section, what the error names
  auto [office, named] = GENERATE_COPY(table<json, std::string>({
      Row{json{{"enabled", true}}, "'office.users' is empty"},
      Row{json{{"enabled", true}, {"users", json::array()}}, "'office.users' is empty"},
      Row{json{{"users", json::array({{{"name", "a"}, {"hash", "secret"}}})}},
          "not an Argon2id hash: make one with `bangfu office passwd --name a`"},
      Row{json{{"users",
                json::array({{{"name", "a"}, {"hash", hash}}, {{"name", "a"}, {"hash", hash}}})}},
          "names 'a' twice"},
      Row{json{{"users", json::array({{{"name", ""}, {"hash", hash}}})}}, "office.users[].name"},
      Row{json{{"users", json::array({{{"name", "a"}}})}}, "'office.users[].hash' is missing"},
      Row{json{{"enabled", "yes"}}, "'office.enabled' must be true or false"},
      Row{json{{"passwords", true}}, "passwords"},
      Row{json("on"), "'office' must be an object"},
  }));
  CAPTURE(office);
  json bad = base();
  bad["office"] = office;
  CHECK_THROWS_WITH(parse(bad), Catch::Contains(named));
}
