#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "handlers/bulletin.h"

namespace bot {

/// Thrown when the configuration cannot be used; what() names the key and says what to fix.
/// parse_config gathers every problem it finds before it throws: problems() holds one text per
/// problem (each naming its key), and what() is them joined by "; ".
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::string& problem);
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const noexcept { return problems_; }

 private:
  std::vector<std::string> problems_;
};

/// How WeCom reaches the bot (`wecom.mode`; docs/protocols.md).
enum class WecomMode {
  Callback,   // "callback": WeCom POSTs to our public HTTPS URL (the default; built)
  Websocket,  // "websocket": the long connection we dial out (bot/wecom/long_connection.h)
};

struct WecomConfig {
  WecomMode mode = WecomMode::Callback;
  std::string token;
  std::string encoding_aes_key;
  std::string receive_id;  // "" for the AI bot
  std::string webhook_url;
  int timestamp_skew_seconds = 300;  // callbacks older (or newer) than this are refused
  /// `wecom.callback_url`: the public https:// URL entered in WeCom's admin console, served by the
  /// TLS proxy in front of bangfu. Not needed to run; `config check` asks for it in callback mode.
  std::string callback_url;
  /// The long connection's credentials (`wecom.bot_id`, `wecom.secret` or BANGFU_WECOM_SECRET)
  /// and endpoint (`wecom.ws_url`), for websocket mode (bot/wecom/long_connection.h).
  std::string bot_id;
  std::string secret;
  std::string ws_url = "wss://openws.work.weixin.qq.com";
};

/// A day of a month and a local time of day. `day` 1..28 counts from the month's start,
/// -1..-28 from its end (-1 = the last day, -3 = the third-last: the 28th of a 30-day month,
/// the 26th of February in a common year).
struct DayTime {
  int day = 1;
  int hour = 9;
  int minute = 0;
  bool enabled = true;  // the key set to false turns this moment off
};

/// When the service posts on its own (README "Delivery"). Times are in `timezone`.
struct ScheduleConfig {
  /// `schedule.monthly`: the monthly bulletin (一月一通报) for the previous month, on this day of
  /// the following month. Default {"day": 1, "time": "09:00"}.
  DayTime monthly{1, 9, 0, true};
  /// `schedule.quarterly`: the quarterly review (一季度一点评) of the previous quarter, on this day
  /// of the first month of the next quarter. Default {"day": 3, "time": "09:00"}.
  DayTime quarterly{3, 9, 0, true};
  /// `schedule.reminders`: the reminder (及时提醒) days of each month and its time.
  /// Default {"days": [20, -3], "time": "16:00"}; "days": [] turns reminders off.
  std::vector<int> reminder_days{20, -3};
  int reminder_hour = 16;
  int reminder_minute = 0;
  /// `schedule.ledgers`: which bulletins each moment posts, in this order: "cadre", "health",
  /// "education" (one per ledger) and/or "all" (the district as a whole). The default posts the
  /// three ledgers only: the district bulletin repeats all three ledgers' sections in full (plus
  /// the district totals), so posting it as well would double the messages. ["all"] posts one
  /// combined bulletin instead.
  std::vector<std::string> ledgers{"cadre", "health", "education"};
};

/// `limits.*`: abuse limits of the HTTP service (README "Config"; SECURITY.md).
struct LimitsConfig {
  /// Messages a minute per sender; the excess is stored raw, gets a polite reply, records no
  /// check-in. 0 turns the limit off.
  int per_sender_per_minute = 30;
  /// Complete requests waiting for a free worker; beyond this the answer is 503.
  int max_queue = 256;
  /// Connections held open at once (reading, queued or served); beyond this new ones are closed.
  int max_connections = 512;
};

/// One office login (`office.users[]`): a name and an Argon2id hash from `bangfu office passwd`.
struct OfficeUser {
  std::string name;
  std::string hash;
};

/// `office.*`: the office's read-only dashboard at /office/ (README "Office dashboard").
struct OfficeConfig {
  bool enabled = false;
  std::vector<OfficeUser> users;  // at least one when enabled
  /// True when bangfu sits behind a reverse proxy that terminates TLS: the client's address is
  /// the last X-Forwarded-For entry (for the wrong-password pause) and X-Forwarded-Proto: https
  /// marks the session cookie Secure. False: the socket's address, and Secure only on TLS.
  bool behind_proxy = false;
};

/// One group the bot posts to (`groups[]`; README "Several groups (多个群)").
struct GroupConfig {
  std::string name;                  // unique; shown by `outbox list`
  std::string chat_id;               // the group's chatid: required in websocket mode
  std::vector<std::string> ledgers;  // "cadre", "health", "education": whose bulletins it gets
  std::string webhook_url;           // its group robot: required in callback mode
};

/// The service configuration (README "Config"). Built once in main; passed by reference.
struct Config {
  std::string listen_host = "127.0.0.1";
  int listen_port = 8080;
  std::string database;
  std::string timezone = "Asia/Shanghai";
  int utc_offset_seconds = 8 * 3600;  // resolved from `timezone`
  std::string bot_name = "帮扶助手";
  std::vector<std::string> admins;
  std::string templates_dir;             // default: default_templates_dir()
  bool templates_dir_is_default = true;  // false when the config file names it
  int threads = 8;                       // HTTP worker threads
  WecomConfig wecom;
  handlers::BulletinOptions bulletin;  // `bulletin.*`
  ScheduleConfig schedule;             // `schedule.*`
  LimitsConfig limits;                 // `limits.*`
  OfficeConfig office;                 // `office.*`
  /// `groups`: where bulletins and reminders go. Empty: the one group of wecom.webhook_url,
  /// all ledgers (bot/groups.h delivery_groups).
  std::vector<GroupConfig> groups;
};

/// One thing wrong with a config. `key` is the dotted key it concerns ("" for the file as a
/// whole); `message` says what is wrong and what to do. `blocks_start` is false for what the
/// service can run without but a deployment needs (e.g. `wecom.callback_url`).
struct ConfigProblem {
  std::string key;
  std::string message;
  bool blocks_start = true;
};

/// What check_config found: the effective settings (defaults where a key was missing or wrong)
/// and every problem, in file order.
struct ConfigCheck {
  Config config;
  std::vector<ConfigProblem> problems;
};

/// Reads the config like parse_config but never throws ConfigError: every problem is listed,
/// including what the chosen `wecom.mode` still lacks (callback: token, AES key, callback_url;
/// websocket: bot_id, secret). Pure apart from default_templates_dir().
ConfigCheck check_config(const std::string& json_text,
                         const std::map<std::string, std::string>& env,
                         const std::string& base_dir);

/// Where the templates are when `templates_dir` is not set: for a binary run from its build tree,
/// the source tree's templates/; otherwise the installed ones, <prefix>/share/bangfu/templates,
/// found relative to the executable (/proc/self/exe), so that an install with any --prefix works.
std::string default_templates_dir();

/// Throws ConfigError naming `templates_dir` and the path it looked at when that is not a
/// directory (a missing templates folder must stop start-up with where it looked).
void require_templates_dir(const Config& config);

/// The secrets read from the process environment (they override the file).
std::map<std::string, std::string> secrets_from_environment();

/// Parses the JSON text of a config file. `env` supplies BANGFU_WECOM_TOKEN,
/// BANGFU_WECOM_AES_KEY, BANGFU_WECOM_WEBHOOK_URL and BANGFU_WECOM_SECRET, which override the
/// file. Relative paths (database, templates_dir) are resolved against `base_dir`. Throws
/// ConfigError listing every problem that stops start-up (check_config's blocking ones).
Config parse_config(const std::string& json_text, const std::map<std::string, std::string>& env,
                    const std::string& base_dir);

/// Reads FILE and the process environment, then parse_config. Throws ConfigError.
Config load_config(const std::string& path);

/// UTC offset in seconds for a zone name we serve ("Asia/Shanghai", "UTC", "+08:00", …);
/// throws ConfigError for an unknown zone.
int zone_offset_seconds(const std::string& zone);

}  // namespace bot
