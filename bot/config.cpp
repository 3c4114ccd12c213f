#include "bot/config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <tuple>

#include "bot/groups.h"
#include "bot/wecom/long_connection.h"
#include "bot/wecom/webhook_sender.h"

// Set per build in bot/CMakeLists.txt: the build tree, the source tree's templates, and the
// installed templates relative to the installed binary's folder (e.g. ../share/bangfu/templates).
#ifndef BANGFU_BUILD_DIR
#define BANGFU_BUILD_DIR ""
#endif
#ifndef BANGFU_SOURCE_TEMPLATES_DIR
#define BANGFU_SOURCE_TEMPLATES_DIR "templates"
#endif
#ifndef BANGFU_INSTALLED_TEMPLATES_REL
#define BANGFU_INSTALLED_TEMPLATES_REL "../share/bangfu/templates"
#endif

namespace bot {

namespace {
std::string join_problems(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "; ") + p;
  return out;
}
}  // namespace

ConfigError::ConfigError(const std::string& problem)
    : std::runtime_error(problem), problems_{problem} {}

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

namespace {

using nlohmann::json;

// Gathers the problems of a config: each key is read inside run(), so that one bad key does not
// hide the next one.
class Problems {
 public:
  explicit Problems(std::vector<ConfigProblem>& out) : out_(out) {}
  template <class F>
  void run(F&& f) {
    try {
      f();
    } catch (const ConfigError& e) {
      for (const auto& p : e.problems()) add(p, true);
    }
  }
  // `text` is "config key 'a.b' ..." as the readers below write it; the key is taken from it.
  void add(const std::string& text, bool blocks_start) {
    std::string key;
    const std::string mark = "config key '";
    if (auto k = text.find(mark); k != std::string::npos) {
      const size_t start = k + mark.size();
      key = text.substr(start, text.find('\'', start) - start);
    }
    out_.push_back({key, text, blocks_start});
  }

 private:
  std::vector<ConfigProblem>& out_;
};

std::string get_string(const json& obj, const std::string& key, const std::string& path,
                       const std::string& fallback, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) throw ConfigError("config key '" + path + "' is missing");
    return fallback;
  }
  if (!it->is_string()) throw ConfigError("config key '" + path + "' must be a string");
  return it->get<std::string>();
}

int get_int(const json& obj, const std::string& key, const std::string& path, int fallback, int lo,
            int hi) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<long long>() < lo || it->get<long long>() > hi)
    throw ConfigError("config key '" + path + "' must be an integer from " + std::to_string(lo) +
                      " to " + std::to_string(hi));
  return static_cast<int>(it->get<long long>());
}

std::string resolve(const std::string& p, const std::string& base_dir) {
  if (p.empty() || p == ":memory:" || std::filesystem::path(p).is_absolute()) return p;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

bool get_bool(const json& obj, const std::string& key, const std::string& path, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw ConfigError("config key '" + path + "' must be true or false");
  return it->get<bool>();
}

// Rejects keys a section does not know, so a typo does not silently fall back to a default.
void only_keys(const json& obj, const std::string& path, std::initializer_list<const char*> known) {
  for (const auto& [k, v] : obj.items()) {
    bool ok = false;
    std::string list;
    for (const char* name : known) {
      ok = ok || k == name;
      list += list.empty() ? name : std::string(", ") + name;
    }
    if (!ok)
      throw ConfigError("config key '" + path + "." + k + "' is unknown (known: " + list + ")");
  }
}

// A day of the month: 1..28 from the start, -1..-28 from the end.
int parse_day(const json& v, const std::string& path) {
  if (v.is_number_integer()) {
    const long long d = v.get<long long>();
    if ((d >= 1 && d <= 28) || (d <= -1 && d >= -28)) return static_cast<int>(d);
  }
  throw ConfigError("config key '" + path +
                    "' must be a day from 1 to 28, or -1 to -28 counted from the month's end "
                    "(-1 is the last day)");
}

// "HH:MM", 24-hour.
std::pair<int, int> parse_time(const json& v, const std::string& path) {
  if (v.is_string()) {
    const std::string t = v.get<std::string>();
    if (t.size() == 5 && t[2] == ':' && std::isdigit(static_cast<unsigned char>(t[0])) &&
        std::isdigit(static_cast<unsigned char>(t[1])) &&
        std::isdigit(static_cast<unsigned char>(t[3])) &&
        std::isdigit(static_cast<unsigned char>(t[4]))) {
      const int h = (t[0] - '0') * 10 + (t[1] - '0');
      const int m = (t[3] - '0') * 10 + (t[4] - '0');
      if (h < 24 && m < 60) return {h, m};
    }
  }
  throw ConfigError("config key '" + path + "' must be a time like \"09:00\" (24-hour)");
}

// {"day": 1, "time": "09:00"}, or false to turn the moment off.
DayTime parse_day_time(const json& obj, const std::string& key, const std::string& path,
                       DayTime fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (it->is_boolean() && !it->get<bool>()) {
    fallback.enabled = false;
    return fallback;
  }
  if (!it->is_object())
    throw ConfigError("config key '" + path +
                      "' must be an object like {\"day\": 1, \"time\": \"09:00\"}, or false");
  only_keys(*it, path, {"day", "time"});
  DayTime dt = fallback;
  if (auto d = it->find("day"); d != it->end()) dt.day = parse_day(*d, path + ".day");
  if (auto t = it->find("time"); t != it->end())
    std::tie(dt.hour, dt.minute) = parse_time(*t, path + ".time");
  return dt;
}

void parse_reminders(const json& o, ScheduleConfig& s);
void parse_ledgers(const json& o, ScheduleConfig& s);

handlers::BulletinOptions parse_bulletin(const json& root, Problems& p) {
  handlers::BulletinOptions b;
  auto it = root.find("bulletin");
  if (it == root.end() || it->is_null()) return b;
  if (!it->is_object()) throw ConfigError("config key 'bulletin' must be an object");
  p.run([&] {
    only_keys(*it, "bulletin",
              {"unit_threshold_percent", "name_helpers", "occasion_window_days", "max_list_lines",
               "charts"});
  });
  p.run([&] {
    b.unit_threshold_percent =
        get_int(*it, "unit_threshold_percent", "bulletin.unit_threshold_percent",
                b.unit_threshold_percent, 0, 100);
  });
  p.run([&] {
    b.name_helpers = get_bool(*it, "name_helpers", "bulletin.name_helpers", b.name_helpers);
  });
  p.run([&] {
    b.occasion_window_days = get_int(*it, "occasion_window_days", "bulletin.occasion_window_days",
                                     b.occasion_window_days, 0, 60);
  });
  p.run([&] {
    b.max_list_lines =
        get_int(*it, "max_list_lines", "bulletin.max_list_lines", b.max_list_lines, 0, 100000);
  });
  p.run([&] { b.charts = get_bool(*it, "charts", "bulletin.charts", b.charts); });
  return b;
}

ScheduleConfig parse_schedule(const json& root, Problems& p) {
  ScheduleConfig s;
  auto it = root.find("schedule");
  if (it == root.end() || it->is_null()) return s;
  if (!it->is_object()) throw ConfigError("config key 'schedule' must be an object");
  const json& o = *it;
  p.run([&] { only_keys(o, "schedule", {"monthly", "quarterly", "reminders", "ledgers"}); });
  p.run([&] { s.monthly = parse_day_time(o, "monthly", "schedule.monthly", s.monthly); });
  p.run([&] { s.quarterly = parse_day_time(o, "quarterly", "schedule.quarterly", s.quarterly); });
  p.run([&] { parse_reminders(o, s); });
  p.run([&] { parse_ledgers(o, s); });
  return s;
}

void parse_reminders(const json& o, ScheduleConfig& s) {
  if (auto r = o.find("reminders"); r != o.end() && !r->is_null()) {
    if (r->is_boolean() && !r->get<bool>()) {
      s.reminder_days.clear();
    } else {
      if (!r->is_object())
        throw ConfigError(
            "config key 'schedule.reminders' must be an object like "
            "{\"days\": [20, -3], \"time\": \"16:00\"}, or false");
      only_keys(*r, "schedule.reminders", {"days", "time"});
      if (auto d = r->find("days"); d != r->end() && !d->is_null()) {
        if (!d->is_array())
          throw ConfigError("config key 'schedule.reminders.days' must be a list of days");
        s.reminder_days.clear();
        for (const auto& day : *d) {
          const int v = parse_day(day, "schedule.reminders.days");
          if (std::find(s.reminder_days.begin(), s.reminder_days.end(), v) == s.reminder_days.end())
            s.reminder_days.push_back(v);
        }
      }
      if (auto t = r->find("time"); t != r->end() && !t->is_null())
        std::tie(s.reminder_hour, s.reminder_minute) = parse_time(*t, "schedule.reminders.time");
    }
  }
}

void parse_ledgers(const json& o, ScheduleConfig& s) {
  if (auto l = o.find("ledgers"); l != o.end() && !l->is_null()) {
    const char* what =
        "config key 'schedule.ledgers' must be a list of \"cadre\", \"health\", "
        "\"education\" and \"all\" (the district as a whole)";
    if (!l->is_array()) throw ConfigError(what);
    s.ledgers.clear();
    for (const auto& v : *l) {
      if (!v.is_string()) throw ConfigError(what);
      const std::string name = v.get<std::string>();
      if (name != "cadre" && name != "health" && name != "education" && name != "all")
        throw ConfigError(what);
      if (std::find(s.ledgers.begin(), s.ledgers.end(), name) == s.ledgers.end())
        s.ledgers.push_back(name);
    }
  }
}

LimitsConfig parse_limits(const json& root, Problems& p) {
  LimitsConfig l;
  auto it = root.find("limits");
  if (it == root.end() || it->is_null()) return l;
  if (!it->is_object()) throw ConfigError("config key 'limits' must be an object");
  p.run([&] {
    only_keys(*it, "limits", {"per_sender_per_minute", "max_queue", "max_connections"});
  });
  p.run([&] {
    l.per_sender_per_minute = get_int(*it, "per_sender_per_minute", "limits.per_sender_per_minute",
                                      l.per_sender_per_minute, 0, 100000);
  });
  p.run(
      [&] { l.max_queue = get_int(*it, "max_queue", "limits.max_queue", l.max_queue, 1, 100000); });
  p.run([&] {
    l.max_connections =
        get_int(*it, "max_connections", "limits.max_connections", l.max_connections, 8, 100000);
  });
  return l;
}

OfficeConfig parse_office(const json& root) {
  OfficeConfig o;
  auto it = root.find("office");
  if (it == root.end() || it->is_null()) return o;
  if (!it->is_object()) throw ConfigError("config key 'office' must be an object");
  only_keys(*it, "office", {"enabled", "users", "behind_proxy"});
  o.enabled = get_bool(*it, "enabled", "office.enabled", false);
  o.behind_proxy = get_bool(*it, "behind_proxy", "office.behind_proxy", false);
  if (auto u = it->find("users"); u != it->end() && !u->is_null()) {
    if (!u->is_array())
      throw ConfigError("config key 'office.users' must be a list of {\"name\", \"hash\"}");
    for (const auto& e : *u) {
      if (!e.is_object())
        throw ConfigError("config key 'office.users' must hold {\"name\", \"hash\"} objects");
      only_keys(e, "office.users[]", {"name", "hash"});
      OfficeUser user{get_string(e, "name", "office.users[].name", "", true),
                      get_string(e, "hash", "office.users[].hash", "", true)};
      if (user.name.empty() || user.name.size() > 64)
        throw ConfigError("config key 'office.users[].name' must be 1-64 bytes");
      if (user.hash.rfind("$argon2id$", 0) != 0)
        throw ConfigError("config key 'office.users[].hash' of '" + user.name +
                          "' is not an Argon2id hash: make one with `bangfu office passwd --name " +
                          user.name + "`");
      for (const auto& other : o.users)
        if (other.name == user.name)
          throw ConfigError("config key 'office.users' names '" + user.name + "' twice");
      o.users.push_back(std::move(user));
    }
  }
  if (o.enabled && o.users.empty())
    throw ConfigError(
        "config key 'office.enabled' is true but 'office.users' is empty: add a user made with "
        "`bangfu office passwd --name NAME`");
  return o;
}

// `groups` (README "Several groups (多个群)"): each field checked on its own, so one bad field
// does not hide the next; a group goes into the list once its name is usable.
std::vector<GroupConfig> parse_groups(const json& root, const WecomConfig& wecom, Problems& p) {
  std::vector<GroupConfig> out;
  auto it = root.find("groups");
  if (it == root.end() || it->is_null()) return out;
  const bool callback = wecom.mode == WecomMode::Callback;
  if (!it->is_array() || it->empty())
    throw ConfigError(
        "config key 'groups' must be a non-empty list of {\"name\", \"chat_id\", \"ledgers\", "
        "\"webhook_url\"} (leave it out to post everything to wecom.webhook_url)");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& g = (*it)[i];
    const std::string path = "groups[" + std::to_string(i) + "]";
    if (!g.is_object()) {
      p.add("config key '" + path +
                "' must be an object like {\"name\": \"高新扶贫\", \"ledgers\": [\"cadre\"], "
                "\"webhook_url\": \"https://…\"}",
            true);
      continue;
    }
    GroupConfig group;
    bool named = false;
    p.run([&] { only_keys(g, path, {"name", "chat_id", "ledgers", "webhook_url"}); });
    p.run([&] {
      group.name = get_string(g, "name", path + ".name", "", true);
      // Shown in `outbox list` columns and in logs: one word, printable.
      bool printable = !group.name.empty() && group.name.size() <= 64;
      for (unsigned char ch : group.name) printable = printable && ch > 0x20 && ch != 0x7F;
      if (!printable)
        throw ConfigError("config key '" + path +
                          ".name' must be 1-64 bytes with no spaces or control characters");
      for (const auto& other : out)
        if (other.name == group.name)
          throw ConfigError("config key '" + path + ".name': the name '" + group.name +
                            "' is used by another group");
      named = true;
    });
    p.run([&] {
      group.chat_id = get_string(g, "chat_id", path + ".chat_id", "", false);
      if (group.chat_id.empty() && !callback)
        throw ConfigError("config key '" + path +
                          ".chat_id' is missing: the group's chatid (websocket mode posts to it "
                          "with aibot_send_msg)");
    });
    p.run([&] {
      const std::string what = "config key '" + path +
                               ".ledgers' must be a non-empty list of \"cadre\", \"health\" and "
                               "\"education\"";
      const auto l = g.find("ledgers");
      if (l == g.end() || !l->is_array() || l->empty()) throw ConfigError(what);
      for (const auto& v : *l) {
        if (!v.is_string()) throw ConfigError(what);
        const std::string code = v.get<std::string>();
        if (code != "cadre" && code != "health" && code != "education") throw ConfigError(what);
        if (std::find(group.ledgers.begin(), group.ledgers.end(), code) == group.ledgers.end())
          group.ledgers.push_back(code);
      }
    });
    p.run([&] {
      group.webhook_url = get_string(g, "webhook_url", path + ".webhook_url", "", false);
      if (group.webhook_url.empty()) {
        if (callback)
          throw ConfigError("config key '" + path +
                            ".webhook_url' is missing: the group robot's webhook URL (callback "
                            "mode posts through it)");
      } else if (!callback) {
        p.add("config key '" + path +
                  ".webhook_url' is not used in websocket mode (messages go to chat_id over the "
                  "long connection)",
              false);
        group.webhook_url.clear();
      } else {
        // The sender's own checks (https://, or http:// to the loopback only).
        WebhookSender check(group.webhook_url, path + ".webhook_url");
        for (const auto& other : out)
          if (other.webhook_url == group.webhook_url)
            p.add("config key '" + path + ".webhook_url' is the same robot as group '" +
                      other.name + "': that group would get each message twice",
                  false);
      }
    });
    if (named) out.push_back(std::move(group));
  }
  if (callback && !wecom.webhook_url.empty())
    p.add(
        "config key 'wecom.webhook_url' is not used when 'groups' is set: give that robot to a "
        "group",
        false);
  return out;
}

bool is_alnum(const std::string& s) {
  for (unsigned char c : s)
    if (!std::isalnum(c)) return false;
  return true;
}

}  // namespace

int zone_offset_seconds(const std::string& zone) {
  // China has had no daylight saving since 1991, so its zones are fixed offsets.
  static const std::pair<const char*, int> kZones[] = {
      {"Asia/Shanghai", 8 * 3600},
      {"Asia/Chongqing", 8 * 3600},
      {"Asia/Harbin", 8 * 3600},
      {"Asia/Hong_Kong", 8 * 3600},
      {"Asia/Macau", 8 * 3600},
      {"Asia/Taipei", 8 * 3600},
      {"PRC", 8 * 3600},
      {"Asia/Urumqi", 6 * 3600},
      {"UTC", 0},
      {"Etc/UTC", 0},
  };
  for (const auto& [name, off] : kZones)
    if (zone == name) return off;
  // "+08:00" / "-05:30"
  if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
      std::isdigit(static_cast<unsigned char>(zone[1])) &&
      std::isdigit(static_cast<unsigned char>(zone[2])) &&
      std::isdigit(static_cast<unsigned char>(zone[4])) &&
      std::isdigit(static_cast<unsigned char>(zone[5]))) {
    const int h = (zone[1] - '0') * 10 + (zone[2] - '0');
    const int m = (zone[4] - '0') * 10 + (zone[5] - '0');
    if (h <= 14 && m < 60) return (h * 3600 + m * 60) * (zone[0] == '-' ? -1 : 1);
  }
  throw ConfigError("config key 'timezone': unknown zone '" + zone +
                    "' (use Asia/Shanghai, Asia/Urumqi, UTC or an offset like +08:00)");
}

ConfigCheck check_config(const std::string& json_text,
                         const std::map<std::string, std::string>& env,
                         const std::string& base_dir) {
  ConfigCheck result;
  Config& c = result.config;
  Problems p(result.problems);
  c.templates_dir = default_templates_dir();
  json root = json::parse(json_text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    p.add("config file is not a JSON object", true);
    return result;
  }

  p.run([&] {
    const std::string listen = get_string(root, "listen", "listen", "127.0.0.1:8080", false);
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0)
      throw ConfigError("config key 'listen' must be host:port, e.g. 127.0.0.1:8080");
    c.listen_host = listen.substr(0, colon);
    try {
      size_t used = 0;
      c.listen_port = std::stoi(listen.substr(colon + 1), &used);
      if (used != listen.size() - colon - 1 || c.listen_port < 0 || c.listen_port > 65535)
        throw std::invalid_argument("port");
    } catch (const std::exception&) {
      c.listen_port = 8080;
      throw ConfigError("config key 'listen' has a bad port in '" + listen + "'");
    }
  });
  p.run([&] {
    c.database = resolve(get_string(root, "database", "database", "", true), base_dir);
    if (c.database.empty()) throw ConfigError("config key 'database' is empty");
  });
  p.run([&] {
    c.timezone = get_string(root, "timezone", "timezone", "Asia/Shanghai", false);
    c.utc_offset_seconds = zone_offset_seconds(c.timezone);
  });
  p.run([&] { c.bot_name = get_string(root, "bot_name", "bot_name", "帮扶助手", false); });
  p.run([&] {
    const std::string dir = get_string(root, "templates_dir", "templates_dir", "", false);
    if (!dir.empty()) {
      c.templates_dir = resolve(dir, base_dir);
      c.templates_dir_is_default = false;
    }
  });
  p.run([&] { c.threads = get_int(root, "threads", "threads", 8, 1, 256); });
  p.run([&] {
    if (auto it = root.find("admins"); it != root.end() && !it->is_null()) {
      if (!it->is_array()) throw ConfigError("config key 'admins' must be a list of userids");
      for (const auto& a : *it) {
        if (!a.is_string() || a.get<std::string>().empty())
          throw ConfigError("config key 'admins' must hold non-empty userid strings");
        c.admins.push_back(a.get<std::string>());
      }
    }
  });

  auto from_env = [&](const char* name) -> std::optional<std::string> {
    auto e = env.find(name);
    if (e == env.end() || e->second.empty()) return std::nullopt;
    return e->second;
  };
  static const json kEmpty = json::object();
  const json* w = &kEmpty;
  if (auto wit = root.find("wecom"); wit != root.end() && wit->is_object()) {
    w = &*wit;
  } else if (wit != root.end() && !wit->is_null()) {
    p.add("config key 'wecom' must be an object (with token, encoding_aes_key, …)", true);
  }
  p.run([&] {
    const std::string mode = get_string(*w, "mode", "wecom.mode", "callback", false);
    if (mode == "websocket")
      c.wecom.mode = WecomMode::Websocket;
    else if (mode != "callback")
      throw ConfigError("config key 'wecom.mode' must be \"callback\" or \"websocket\"");
  });
  const bool callback = c.wecom.mode == WecomMode::Callback;
  // The callback secrets: required in callback mode, checked for shape whenever they are given.
  p.run([&] {
    if (auto v = from_env("BANGFU_WECOM_TOKEN"))
      c.wecom.token = *v;
    else
      c.wecom.token = get_string(*w, "token", "wecom.token", "", false);
    if (c.wecom.token.empty()) {
      if (callback)
        throw ConfigError(
            "config key 'wecom.token' is missing: the callback Token from the AI bot's API "
            "settings (or set BANGFU_WECOM_TOKEN)");
    } else if (c.wecom.token.size() > 32 || !is_alnum(c.wecom.token)) {
      throw ConfigError("config key 'wecom.token' must be 1-32 letters or digits");
    }
  });
  p.run([&] {
    if (auto v = from_env("BANGFU_WECOM_AES_KEY"))
      c.wecom.encoding_aes_key = *v;
    else
      c.wecom.encoding_aes_key =
          get_string(*w, "encoding_aes_key", "wecom.encoding_aes_key", "", false);
    if (c.wecom.encoding_aes_key.empty()) {
      if (callback)
        throw ConfigError(
            "config key 'wecom.encoding_aes_key' is missing: the 43-character EncodingAESKey "
            "from the AI bot's API settings (or set BANGFU_WECOM_AES_KEY)");
    } else if (c.wecom.encoding_aes_key.size() != 43 || !is_alnum(c.wecom.encoding_aes_key)) {
      throw ConfigError("config key 'wecom.encoding_aes_key' must be 43 letters or digits");
    }
  });
  p.run([&] {
    if (auto v = from_env("BANGFU_WECOM_WEBHOOK_URL"))
      c.wecom.webhook_url = *v;
    else
      c.wecom.webhook_url = get_string(*w, "webhook_url", "wecom.webhook_url", "", false);
    // The sender's own checks (https://, or http:// to the loopback only): it throws ConfigError.
    if (!c.wecom.webhook_url.empty()) WebhookSender check(c.wecom.webhook_url, "wecom.webhook_url");
  });
  p.run([&] { c.wecom.receive_id = get_string(*w, "receive_id", "wecom.receive_id", "", false); });
  p.run([&] {
    c.wecom.timestamp_skew_seconds =
        get_int(*w, "timestamp_skew_seconds", "wecom.timestamp_skew_seconds", 300, 1, 86400);
  });
  p.run([&] {
    c.wecom.callback_url = get_string(*w, "callback_url", "wecom.callback_url", "", false);
    if (c.wecom.callback_url.empty()) {
      if (callback)
        p.add(
            "config key 'wecom.callback_url' is missing: the public https:// URL of "
            "/wecom/callback behind the TLS proxy, as entered in WeCom's admin console "
            "(bangfu runs without it; WeCom cannot reach it without one)",
            false);
    } else if (c.wecom.callback_url.rfind("https://", 0) != 0 ||
               c.wecom.callback_url.find("/wecom/callback") == std::string::npos) {
      throw ConfigError(
          "config key 'wecom.callback_url' must be the public https:// URL ending in "
          "/wecom/callback (TLS is terminated by the proxy in front of bangfu)");
    }
  });
  // The long connection (issue 12): required in websocket mode.
  p.run([&] {
    c.wecom.bot_id = get_string(*w, "bot_id", "wecom.bot_id", "", false);
    if (c.wecom.bot_id.empty() && !callback)
      throw ConfigError("config key 'wecom.bot_id' is missing: the AI bot's BotID");
  });
  p.run([&] {
    if (auto v = from_env("BANGFU_WECOM_SECRET"))
      c.wecom.secret = *v;
    else
      c.wecom.secret = get_string(*w, "secret", "wecom.secret", "", false);
    if (c.wecom.secret.empty() && !callback)
      throw ConfigError(
          "config key 'wecom.secret' is missing: the AI bot's long-connection Secret (or set "
          "BANGFU_WECOM_SECRET)");
  });
  p.run([&] {
    c.wecom.ws_url = get_string(*w, "ws_url", "wecom.ws_url", c.wecom.ws_url, false);
    if (!wecom::parse_ws_url(c.wecom.ws_url))
      throw ConfigError(
          "config key 'wecom.ws_url' must be a wss:// URL with a host (ws:// only for a local "
          "test server), e.g. wss://openws.work.weixin.qq.com");
  });

  p.run([&] { c.bulletin = parse_bulletin(root, p); });
  p.run([&] { c.schedule = parse_schedule(root, p); });
  p.run([&] { c.limits = parse_limits(root, p); });
  p.run([&] { c.office = parse_office(root); });
  p.run([&] { c.groups = parse_groups(root, c.wecom, p); });
  // A group that none of the scheduled bulletins goes to gets reminders only: likely a mistake.
  for (size_t i = 0; i < c.groups.size(); ++i) {
    bool any = false;
    for (const auto& ledger : c.schedule.ledgers) any = any || takes_ledger(c.groups[i], ledger);
    if (!any && !c.groups[i].ledgers.empty())  // no ledgers at all: refused above
      p.add(
          "config key 'groups': group '" + c.groups[i].name +
              "' gets no scheduled bulletin (schedule.ledgers is " +
              [&] {
                std::string l;
                for (const auto& x : c.schedule.ledgers) l += (l.empty() ? "" : ", ") + x;
                return l.empty() ? std::string("empty") : l;
              }() +
              "), only reminders",
          false);
  }
  return result;
}

Config parse_config(const std::string& json_text, const std::map<std::string, std::string>& env,
                    const std::string& base_dir) {
  ConfigCheck check = check_config(json_text, env, base_dir);
  std::vector<std::string> blocking;
  for (const auto& problem : check.problems)
    if (problem.blocks_start) blocking.push_back(problem.message);
  if (!blocking.empty()) throw ConfigError(std::move(blocking));
  return std::move(check.config);
}

std::string default_templates_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return BANGFU_SOURCE_TEMPLATES_DIR;
  // A binary of the build tree (bangfu, the test binaries) uses the templates it was built with.
  // /proc/self/exe has its symlinks resolved, so the build folder is compared resolved too.
  if (const std::string build_dir = BANGFU_BUILD_DIR; !build_dir.empty()) {
    const std::string build = fs::weakly_canonical(build_dir, ec).string();
    if (!ec && exe.string().rfind(build + "/", 0) == 0) return BANGFU_SOURCE_TEMPLATES_DIR;
  }
  return (exe.parent_path() / BANGFU_INSTALLED_TEMPLATES_REL).lexically_normal().string();
}

void require_templates_dir(const Config& config) {
  std::error_code ec;
  if (std::filesystem::is_directory(config.templates_dir, ec)) return;
  throw ConfigError(
      "config key 'templates_dir': no templates directory at " + config.templates_dir +
      (config.templates_dir_is_default
           ? " (the default for this binary; set templates_dir in the config to the folder "
             "that holds the .mustache files)"
           : " (as set in the config file)"));
}

std::map<std::string, std::string> secrets_from_environment() {
  std::map<std::string, std::string> env;
  for (const char* name : {"BANGFU_WECOM_TOKEN", "BANGFU_WECOM_AES_KEY", "BANGFU_WECOM_WEBHOOK_URL",
                           "BANGFU_WECOM_SECRET"})
    if (const char* v = std::getenv(name)) env[name] = v;
  return env;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read config file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  auto base = std::filesystem::absolute(path).parent_path().string();
  return parse_config(ss.str(), secrets_from_environment(), base);
}

}  // namespace bot
