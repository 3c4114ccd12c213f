#include <catch2/catch.hpp>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "bot/config.h"
#include "bot/groups.h"

using bot::GroupConfig;
using nlohmann::json;

namespace {

const std::string kAesKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const std::string kRobot = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=";

json callback_config(json groups) {
  json j = {{"database", "bangfu.db"},
            {"wecom",
             {{"token", "tok1"},
              {"encoding_aes_key", kAesKey},
              {"callback_url", "https://bangfu.example.gov.cn/wecom/callback"}}}};
  if (!groups.is_null()) j["groups"] = std::move(groups);
  return j;
}

json websocket_config(json groups) {
  json j = {{"database", "bangfu.db"},
            {"wecom", {{"mode", "websocket"}, {"bot_id", "b1"}, {"secret", "s1"}}}};
  if (!groups.is_null()) j["groups"] = std::move(groups);
  return j;
}

// The problems check_config finds, as "key: message" lines, leaving out wecom.mode's (the long
// connection is another engineer's part and says so on its own).
std::vector<std::string> problems(const json& j) {
  std::vector<std::string> out;
  for (const auto& p : bot::check_config(j.dump(), {}, "/srv/bangfu").problems)
    if (p.key != "wecom.mode")
      out.push_back(p.key + (p.blocks_start ? "" : " (warning)") + ": " + p.message);
  return out;
}

std::vector<std::string> names(const std::vector<GroupConfig>& groups) {
  std::vector<std::string> out;
  for (const auto& g : groups) out.push_back(g.name);
  return out;
}

}  // namespace

TEST_CASE("groups: read in order, with their ledgers and robots", "[bot]") {
  const json groups = json::array({{{"name", "高新扶贫"},
                                    {"chat_id", "wrkSFfCgAAxxxx"},
                                    {"ledgers", {"cadre", "health", "education"}},
                                    {"webhook_url", kRobot + "aaaa"}},
                                   {{"name", "卫生台账群"},
                                    {"ledgers", {"health", "health"}},
                                    {"webhook_url", kRobot + "bbbb"}}});
  const auto r = bot::check_config(callback_config(groups).dump(), {}, "/srv/bangfu");
  CHECK(r.problems.empty());
  const auto& g = r.config.groups;
  REQUIRE(g.size() == 2);
  CHECK(g[0].name == "高新扶贫");
  CHECK(g[0].chat_id == "wrkSFfCgAAxxxx");
  CHECK(g[0].ledgers == std::vector<std::string>{"cadre", "health", "education"});
  CHECK(g[0].webhook_url == kRobot + "aaaa");
  CHECK(g[1].ledgers == std::vector<std::string>{"health"});  // said twice, kept once
  CHECK(g[1].chat_id.empty());                                // not needed in callback mode
}

TEST_CASE("groups: each bad value is refused, naming its key, and the other groups are kept",
          "[bot]") {
  using Row = std::tuple<const char*, json, std::vector<std::string>>;
  const json ok = {{"name", "A"}, {"ledgers", {"cadre"}}, {"webhook_url", kRobot + "a"}};
  auto with = [&](json changes) {
    json g = ok;
    for (auto& [k, v] : changes.items()) {
      if (v.is_null())
        g.erase(k);
      else
        g[k] = v;
    }
    return g;
  };
  auto [why, groups, expected] = GENERATE_COPY(table<const char*, json, std::vector<std::string>>({
      Row{"not a list",
          json("A"),
          {"groups: config key 'groups' must be a non-empty list of {\"name\", \"chat_id\", "
           "\"ledgers\", \"webhook_url\"} (leave it out to post everything to "
           "wecom.webhook_url)"}},
      Row{"empty",
          json::array(),
          {"groups: config key 'groups' must be a non-empty list of {\"name\", \"chat_id\", "
           "\"ledgers\", \"webhook_url\"} (leave it out to post everything to "
           "wecom.webhook_url)"}},
      Row{"no name",
          json::array({ok, with({{"name", nullptr}, {"webhook_url", kRobot + "b"}})}),
          {"groups[1].name: config key 'groups[1].name' is missing"}},
      Row{"a name twice",
          json::array({ok, with({{"webhook_url", kRobot + "b"}})}),
          {"groups[1].name: config key 'groups[1].name': the name 'A' is used by another group"}},
      Row{"a space in the name",
          json::array({with({{"name", "卫生 群"}})}),
          {"groups[0].name: config key 'groups[0].name' must be 1-64 bytes with no spaces or "
           "control characters"}},
      Row{"an unknown ledger",
          json::array({with({{"ledgers", {"cadre", "all"}}})}),
          {"groups[0].ledgers: config key 'groups[0].ledgers' must be a non-empty list of "
           "\"cadre\", \"health\" and \"education\""}},
      Row{"no ledgers",
          json::array({with({{"ledgers", json::array()}})}),
          {"groups[0].ledgers: config key 'groups[0].ledgers' must be a non-empty list of "
           "\"cadre\", \"health\" and \"education\""}},
      Row{"no robot in callback mode",
          json::array({with({{"webhook_url", nullptr}})}),
          {"groups[0].webhook_url: config key 'groups[0].webhook_url' is missing: the group "
           "robot's webhook URL (callback mode posts through it)"}},
      Row{"plain http to another host",
          json::array({with({{"webhook_url", "http://qyapi.weixin.qq.com/cgi-bin/webhook/send"}})}),
          {"groups[0].webhook_url: config key 'groups[0].webhook_url' must use https:// (plain "
           "http:// is allowed only to 127.0.0.1 or localhost)"}},
      Row{"the same robot twice",
          json::array({ok, with({{"name", "B"}, {"webhook_url", kRobot + "a"}})}),
          {"groups[1].webhook_url (warning): config key 'groups[1].webhook_url' is the same "
           "robot as group 'A': that group would get each message twice"}},
      Row{"an unknown key",
          json::array({with({{"chatid", "x"}})}),
          {"groups[0].chatid: config key 'groups[0].chatid' is unknown (known: name, chat_id, "
           "ledgers, webhook_url)"}},
      Row{"not an object",
          json::array({ok, 7}),
          {"groups[1]: config key 'groups[1]' must be an object like {\"name\": \"高新扶贫\", "
           "\"ledgers\": [\"cadre\"], \"webhook_url\": \"https://…\"}"}},
  }));
  CAPTURE(why, groups.dump());
  CHECK(problems(callback_config(groups)) == expected);
  // A bad group never takes a good one's place: every group whose name is usable is kept.
  const auto r = bot::check_config(callback_config(groups).dump(), {}, "/srv/bangfu");
  for (const auto& g : r.config.groups) CHECK_FALSE(g.name.empty());
}

TEST_CASE("groups in websocket mode need chat_id, and their webhook_url is not used", "[bot]") {
  const json groups = json::array(
      {{{"name", "A"}, {"ledgers", {"cadre"}}},
       {{"name", "B"}, {"chat_id", "wrkB"}, {"ledgers", {"health"}}, {"webhook_url", kRobot + "b"}},
       {{"name", "C"}, {"chat_id", "wrkC"}, {"ledgers", {"education"}}}});
  CHECK(problems(websocket_config(groups)) ==
        std::vector<std::string>{
            "groups[0].chat_id: config key 'groups[0].chat_id' is missing: the group's chatid "
            "(websocket mode posts to it with aibot_send_msg)",
            "groups[1].webhook_url (warning): config key 'groups[1].webhook_url' is not used in "
            "websocket mode (messages go to chat_id over the long connection)"});
  const auto r = bot::check_config(websocket_config(groups).dump(), {}, "/srv/bangfu");
  REQUIRE(r.config.groups.size() == 3);
  CHECK(r.config.groups[1].webhook_url.empty());
  CHECK(r.config.groups[2].chat_id == "wrkC");
}

TEST_CASE("With groups, wecom.webhook_url is not used (and check says so)", "[bot]") {
  json j = callback_config(
      json::array({{{"name", "A"}, {"ledgers", {"cadre"}}, {"webhook_url", kRobot + "a"}}}));
  j["wecom"]["webhook_url"] = kRobot + "old";
  CHECK(problems(j) ==
        std::vector<std::string>{
            "wecom.webhook_url (warning): config key 'wecom.webhook_url' is not used when "
            "'groups' is set: give that robot to a group"});
  const auto c = bot::parse_config(j.dump(), {}, "/srv/bangfu");  // a warning does not block
  CHECK(names(bot::delivery_groups(c)) == std::vector<std::string>{"A"});
}

TEST_CASE("A group that no scheduled bulletin goes to is a warning", "[bot]") {
  json j = callback_config(
      json::array({{{"name", "A"},
                    {"ledgers", {"cadre", "health", "education"}},
                    {"webhook_url", kRobot + "a"}},
                   {{"name", "B"}, {"ledgers", {"health"}}, {"webhook_url", kRobot + "b"}}}));
  j["schedule"] = {{"ledgers", {"all"}}};
  CHECK(problems(j) == std::vector<std::string>{
                           "groups (warning): config key 'groups': group 'B' gets no scheduled "
                           "bulletin (schedule.ledgers is all), only reminders"});
  j["schedule"] = {{"ledgers", {"health"}}};
  CHECK(problems(j).empty());
}

TEST_CASE("Without groups, wecom.webhook_url is one group with every ledger", "[bot]") {
  json j = callback_config(nullptr);
  CHECK(bot::delivery_groups(bot::parse_config(j.dump(), {}, "/srv")).empty());
  j["wecom"]["webhook_url"] = kRobot + "k";
  const auto groups = bot::delivery_groups(bot::parse_config(j.dump(), {}, "/srv"));
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].name.empty());
  CHECK(bot::group_label(groups[0].name) == "-");
  CHECK(groups[0].ledgers == std::vector<std::string>{"cadre", "health", "education"});
  CHECK(groups[0].webhook_url == kRobot + "k");
  const auto targets = bot::targets_of(groups);
  REQUIRE(targets.size() == 1);
  CHECK(targets[0].webhook_url == kRobot + "k");
}

TEST_CASE("Routing: each ledger to the groups that list it, the district to those with all three",
          "[bot]") {
  const std::vector<GroupConfig> groups = {
      {"district", "", {"cadre", "health", "education"}, kRobot + "d"},
      {"health", "", {"health"}, kRobot + "h"},
      {"schools", "", {"education", "health"}, kRobot + "s"},
  };
  using Row = std::tuple<std::string, std::vector<std::string>>;
  auto [ledger, expected] = GENERATE(table<std::string, std::vector<std::string>>({
      Row{"cadre", {"district"}},
      Row{"health", {"district", "health", "schools"}},
      Row{"education", {"district", "schools"}},
      Row{"all", {"district"}},
  }));
  CAPTURE(ledger);
  CHECK(names(bot::groups_for(groups, ledger)) == expected);
  CHECK(bot::groups_for({{"only", "", {"cadre"}, ""}}, "all").empty());
}

TEST_CASE("Reminders: each group gets the lines of its ledgers", "[bot]") {
  const std::vector<bot::ReminderEntry> entries = {
      {"zhangwei", "张伟", "区财政局", 2, "cadre"},
      {"dr_zhao", "赵医生", "区人民医院", 1, "health"},
      {"teacher_liu", "刘老师", "区实验中学", 1, "education"},
      {"dr_zhao", "赵医生", "区实验中学", 1, "education"},
  };
  auto ids = [](const std::vector<bot::ReminderEntry>& v) {
    std::vector<std::string> out;
    for (const auto& e : v) out.push_back(e.helper_id + "/" + e.ledger);
    return out;
  };
  CHECK(
      ids(bot::reminder_entries_for({"all", "", {"cadre", "health", "education"}, ""}, entries)) ==
      std::vector<std::string>{"zhangwei/cadre", "dr_zhao/health", "teacher_liu/education",
                               "dr_zhao/education"});
  CHECK(ids(bot::reminder_entries_for({"h", "", {"health"}, ""}, entries)) ==
        std::vector<std::string>{"dr_zhao/health"});
  CHECK(ids(bot::reminder_entries_for({"e", "", {"education"}, ""}, entries)) ==
        std::vector<std::string>{"teacher_liu/education", "dr_zhao/education"});
}

TEST_CASE("A webhook URL's key is masked", "[bot]") {
  using Row = std::tuple<std::string, std::string>;
  auto [url, expected] = GENERATE(table<std::string, std::string>({
      Row{kRobot + "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
          "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"},
      Row{"http://127.0.0.1:8081/cgi-bin/webhook/send?key=SECRET&debug=1",
          "http://127.0.0.1:8081/cgi-bin/webhook/send?key=***&debug=1"},
      Row{"https://proxy.example/send?monkey=1&key=SECRET",
          "https://proxy.example/send?monkey=1&key=***"},
      Row{"https://proxy.example/send", "https://proxy.example/send"},
  }));
  CHECK(bot::mask_webhook_url(url) == expected);
}
