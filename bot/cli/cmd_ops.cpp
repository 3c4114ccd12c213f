#include "bot/cli/cmd_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "bot/config.h"
#include "bot/groups.h"
#include "bot/wecom/crypto.h"
#include "charts/chart.h"
#include "handlers/bulletin.h"
#include "handlers/dispatcher.h"
#include "handlers/templates.h"
#include "storage/store.h"

// These commands open the database file with SQLiteCpp directly, beside storage::Store: a backup
// and an integrity check are about the file itself, must not run migrations, and are meant to
// work on a second connection while the service (and its Store) keep running. `config check`
// is the exception: it opens a new database through storage::Store, which creates it.

namespace bot {
namespace {

namespace fs = std::filesystem;

// Makes a rename durable: fsync of the directory that holds the new name.
void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string integrity(SQLite::Database& db) {
  SQLite::Statement q(db, "PRAGMA integrity_check");
  std::string out;
  while (q.executeStep()) {
    if (!out.empty()) out += "; ";
    out += q.getColumn(0).getString();
  }
  return out;
}

int64_t count_rows(SQLite::Database& db, const char* table) {
  if (!db.tableExists(table)) return -1;
  return db.execAndGet(std::string("SELECT count(*) FROM ") + table).getInt64();
}

std::string counts(SQLite::Database& db) {
  return std::to_string(count_rows(db, "pairings")) + " pairings, " +
         std::to_string(count_rows(db, "checkins")) + " check-ins, " +
         std::to_string(count_rows(db, "inbound")) + " messages";
}

int cmd_backup(const Args& a, std::ostream& out, std::ostream& err) {
  const Config config = load_config(a.need("config"));
  if (a.positional.size() != 1) throw UsageError("backup takes one OUT.db file");
  const fs::path dest = a.positional[0];
  if (fs::exists(dest) && !a.flag("force")) {
    err << "bangfu: " << dest.string() << " exists (use --force to replace it)\n";
    return 1;
  }
  if (!fs::exists(config.database)) {
    err << "bangfu: database " << config.database << " does not exist\n";
    return 1;
  }
  const fs::path partial = dest.string() + ".partial";
  fs::remove(partial);
  const auto started = std::chrono::steady_clock::now();
  int pages = 0;
  {
    // Read-write (never create) so a WAL database opens even when the service is not running
    // (a read-only connection cannot create the -shm file). Nothing is written through it.
    SQLite::Database src(config.database, SQLite::OPEN_READWRITE);
    src.setBusyTimeout(10000);
    SQLite::Database dst(partial.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    SQLite::Backup backup(dst, src);
    // All pages in one step: one read snapshot of the source, so the copy is consistent even
    // while the service commits (WAL readers do not block the writer, nor it them).
    for (int attempt = 0;; ++attempt) {
      const int rc = backup.executeStep(-1);
      if (rc == SQLITE_DONE) break;
      if (attempt >= 100) throw std::runtime_error("backup: database stayed busy");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    pages = backup.getTotalPageCount();
  }
  std::string check;
  std::string summary;
  {
    SQLite::Database copy(partial.string(), SQLite::OPEN_READWRITE);
    // A single self-contained file: no -wal beside it.
    copy.exec("PRAGMA journal_mode = DELETE");
    check = integrity(copy);
    summary = counts(copy);
  }
  if (check != "ok") {
    err << "bangfu: the copy failed its integrity check (" << check << "); kept as "
        << partial.string() << "\n";
    return 1;
  }
  {
    // SQLite synced the copy on commit; this makes sure of the last page writes too.
    const int fd = ::open(partial.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  fs::rename(partial, dest);
  sync_dir(dest.parent_path());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  out << "backup of " << config.database << " written to " << dest.string() << ": " << pages
      << " pages, " << summary << ", integrity ok, " << ms << " ms\n";
  return 0;
}

// The webhook URL with its key blanked out: https://host/path?key=…(36 characters)
std::string masked_url(const std::string& url) {
  const size_t k = url.find("key=");
  if (k == std::string::npos) return url;
  size_t end = url.find('&', k);
  if (end == std::string::npos) end = url.size();
  const std::string key = url.substr(k + 4, end - k - 4);
  return url.substr(0, k + 4) + "…(" + std::to_string(key.size()) + " characters)" +
         url.substr(end);
}

bool is_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// Compiles every template the service loads; returns the "N templates compile, from DIR" line.
// Throws (ConfigError naming the folder when it is missing, TemplateError for a bad template).
std::string check_templates(const Config& config) {
  require_templates_dir(config);
  std::vector<std::string> names = handlers::Templates::reply_names();
  for (const auto& n : handlers::bulletin_template_names())
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  for (const auto& n : charts::chart_template_names()) names.push_back(n);
  handlers::check_answer_templates(handlers::Templates::load(config.templates_dir, names));
  return std::to_string(names.size()) + " templates compile, from " + config.templates_dir;
}

int cmd_check(const Args& a, std::ostream& out, std::ostream&) {
  const std::string path = a.need("config");
  bool ok = true;
  auto line = [&](const char* what, bool good, const std::string& text) {
    out << (good ? "ok    " : "FAIL  ") << what << ": " << text << "\n";
    ok = ok && good;
  };
  auto note = [&](const char* what, const std::string& text) {
    out << "note  " << what << ": " << text << "\n";
  };

  Config config;
  try {
    config = load_config(path);
    line("config", true, path);
  } catch (const ConfigError& e) {
    line("config", false, e.what());
    out << "FAIL\n";
    return 1;
  }

  try {
    WecomCrypto crypto(config.wecom.token, config.wecom.encoding_aes_key, config.wecom.receive_id);
    line("wecom", true,
         "token and EncodingAESKey usable, receive_id " +
             (config.wecom.receive_id.empty() ? std::string("\"\" (AI bot)")
                                              : "\"" + config.wecom.receive_id + "\""));
  } catch (const std::exception& e) {
    line("wecom", false, e.what());
  }

  if (!fs::exists(config.database)) {
    note("database",
         config.database + " does not exist yet (bangfu serve or roster import creates it)");
    if (!fs::is_directory(fs::path(config.database).parent_path()))
      line("database", false,
           "its folder " + fs::path(config.database).parent_path().string() + " does not exist");
  } else {
    try {
      SQLite::Database db(config.database, SQLite::OPEN_READWRITE);
      db.setBusyTimeout(10000);
      const std::string result = integrity(db);
      const int version = db.execAndGet("PRAGMA user_version").getInt();
      if (result != "ok")
        line("database", false, config.database + ": integrity_check: " + result);
      else if (version == 0)
        line("database", false, config.database + " has no bangfu schema (user_version 0)");
      else
        line("database", true,
             config.database + ": integrity ok, schema version " + std::to_string(version) + ", " +
                 counts(db));
    } catch (const std::exception& e) {
      line("database", false, config.database + ": " + e.what());
    }
  }

  try {
    line("templates", true, check_templates(config));
  } catch (const std::exception& e) {
    line("templates", false, e.what());
  }

  if (!config.bulletin.charts) {
    note("charts", "bulletin.charts is false: bulletins are posted without charts");
  } else if (auto family = charts::find_cjk_font()) {
    line("charts", true, "Chinese font \"" + *family + "\" for the coverage charts");
  } else {
    line("charts", false,
         "no font with Chinese characters is installed: apt-get install fonts-noto-cjk (or set "
         "bulletin.charts to false); without it bulletins are posted without charts");
  }

  const std::string& url = config.wecom.webhook_url;
  if (url.empty()) {
    note("webhook_url", "not set: bulletins and reminders will not be posted");
  } else {
    // load_config has checked the scheme and host (WebhookSender); here the WeCom shape.
    const std::string prefix = "/cgi-bin/webhook/send?";
    const size_t host_start = url.find("://") + 3;
    const size_t slash = url.find('/', host_start);
    const std::string host = url.substr(host_start, slash - host_start);
    const std::string target = slash == std::string::npos ? "" : url.substr(slash);
    std::string key;
    if (auto k = target.find("key="); k != std::string::npos) {
      key = target.substr(k + 4);
      key = key.substr(0, key.find('&'));
    }
    if (target.rfind(prefix, 0) != 0)
      line("webhook_url", false, masked_url(url) + ": the path must be " + prefix + "key=…");
    else if (key.empty())
      line("webhook_url", false, masked_url(url) + ": no key=… in the URL");
    else
      line("webhook_url", true, masked_url(url));
    if (host != "qyapi.weixin.qq.com")
      note("webhook_url", "host " + host + " is not qyapi.weixin.qq.com (a proxy or a test fake?)");
    if (!key.empty() && !is_uuid(key))
      note("webhook_url", "the key does not look like WeCom's (8-4-4-4-12 hex digits)");
  }

  out << (ok ? "all checks passed\n" : "FAIL\n");
  return ok ? 0 : 1;
}

std::string day_time(const DayTime& d) {
  if (!d.enabled) return "off";
  char buf[32];
  std::snprintf(buf, sizeof buf, "day %d at %02d:%02d", d.day, d.hour, d.minute);
  return buf;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "(none)" : out;
}

// A secret as config check shows it: *** when set, never its value.
std::string secret(const std::string& value) {
  return value.empty() ? "(not set)" : "***";
}

// When root creates the database in a folder that belongs to the service user (config check run
// with sudo before the first start), the new files are handed to that user, so that the
// service can open them.
void give_to_folder_owner(const fs::path& db) {
  if (::geteuid() != 0) return;
  struct stat dir {};
  const fs::path folder = db.parent_path().empty() ? fs::path(".") : db.parent_path();
  if (::stat(folder.c_str(), &dir) != 0 || dir.st_uid == 0) return;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string f = db.string() + suffix;
    if (fs::exists(f) && ::chown(f.c_str(), dir.st_uid, dir.st_gid) != 0) {
      throw std::runtime_error("cannot hand " + f + " to the owner of " + folder.string());
    }
  }
}

int cmd_config_check(const Args& a, std::ostream& out, std::ostream&) {
  const std::string path = a.need("config");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out << "problems (1):\n  - cannot read config file '" << path << "'\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string base = fs::absolute(path).parent_path().string();
  ConfigCheck check = check_config(text.str(), secrets_from_environment(), base);
  const Config& c = check.config;
  const bool callback = c.wecom.mode == WecomMode::Callback;
  const bool parsed = check.problems.empty() || !check.problems.front().key.empty();

  auto row = [&](const std::string& key, const std::string& value) {
    std::string k = "  " + key;
    k.resize(std::max<size_t>(k.size() + 1, 36), ' ');
    out << k << value << "\n";
  };
  out << "config file: " << fs::absolute(path).lexically_normal().string() << "\n";
  if (parsed) {
    out << "effective settings (secrets shown as ***):\n";
    row("listen", c.listen_host + ":" + std::to_string(c.listen_port));
    row("database", c.database.empty() ? "(missing)" : c.database);
    row("timezone", c.timezone);
    row("bot_name", c.bot_name);
    row("admins", joined(c.admins));
    row("templates_dir", c.templates_dir + (c.templates_dir_is_default ? " (default)" : ""));
    row("threads", std::to_string(c.threads));
    row("wecom.mode", callback ? "callback" : "websocket");
    if (callback) {
      row("wecom.token", secret(c.wecom.token));
      row("wecom.encoding_aes_key", secret(c.wecom.encoding_aes_key));
      row("wecom.receive_id",
          c.wecom.receive_id.empty() ? "\"\" (the AI bot)" : "\"" + c.wecom.receive_id + "\"");
      row("wecom.callback_url", c.wecom.callback_url.empty() ? "(not set)" : c.wecom.callback_url);
      row("wecom.timestamp_skew_seconds", std::to_string(c.wecom.timestamp_skew_seconds));
    } else {
      row("wecom.bot_id", c.wecom.bot_id.empty() ? "(not set)" : c.wecom.bot_id);
      row("wecom.secret", secret(c.wecom.secret));
      row("wecom.ws_url", c.wecom.ws_url);
    }
    if (c.groups.empty()) {
      row("wecom.webhook_url", c.wecom.webhook_url.empty()
                                   ? "(not set: bulletins and reminders are not posted)"
                                   : mask_webhook_url(c.wecom.webhook_url));
    } else {
      // Each group: the ledgers whose bulletins and reminders it gets, and where they go.
      for (size_t i = 0; i < c.groups.size(); ++i) {
        const auto& g = c.groups[i];
        std::string where = g.name + ": " + joined(g.ledgers);
        if (!g.chat_id.empty()) where += "; chat_id " + g.chat_id;
        if (!g.webhook_url.empty()) where += "; webhook " + mask_webhook_url(g.webhook_url);
        row("groups[" + std::to_string(i) + "]", where);
      }
    }
    row("bulletin.unit_threshold_percent", std::to_string(c.bulletin.unit_threshold_percent));
    row("bulletin.name_helpers", c.bulletin.name_helpers ? "true" : "false");
    row("bulletin.occasion_window_days", std::to_string(c.bulletin.occasion_window_days));
    row("bulletin.max_list_lines", std::to_string(c.bulletin.max_list_lines));
    row("bulletin.charts", c.bulletin.charts ? "true" : "false");
    row("schedule.monthly", day_time(c.schedule.monthly));
    row("schedule.quarterly", day_time(c.schedule.quarterly));
    std::vector<std::string> days;
    for (int d : c.schedule.reminder_days) days.push_back(std::to_string(d));
    char at[16];
    std::snprintf(at, sizeof at, "%02d:%02d", c.schedule.reminder_hour, c.schedule.reminder_minute);
    row("schedule.reminders", days.empty() ? "off" : "days " + joined(days) + " at " + at);
    row("schedule.ledgers", joined(c.schedule.ledgers));
    row("limits.per_sender_per_minute", std::to_string(c.limits.per_sender_per_minute));
    row("limits.max_queue", std::to_string(c.limits.max_queue));
    row("limits.max_connections", std::to_string(c.limits.max_connections));

    // What the service does at start with these settings: the templates, then the database.
    out << "checks:\n";
    try {
      // Checked before anything is printed: a failure must not follow an "ok".
      const std::string checked = check_templates(c);
      out << "  ok    templates: " << checked << "\n";
    } catch (const std::exception& e) {
      const std::string what = e.what();
      check.problems.push_back(
          {"templates_dir",
           what.rfind("config key", 0) == 0 ? what : "config key 'templates_dir': " + what, true});
      out << "  FAIL  templates (see problems)\n";
    }
    if (c.bulletin.charts) {
      if (auto family = charts::find_cjk_font()) {
        out << "  ok    charts: Chinese font \"" << *family << "\" for the coverage charts\n";
      } else {
        // The service still starts and posts the text; the charts are what would be missing.
        check.problems.push_back(
            {"bulletin.charts",
             "config key 'bulletin.charts': no font with Chinese characters is installed "
             "(apt-get install fonts-noto-cjk, or set it to false): bulletins would be posted "
             "without charts",
             false});
        out << "  FAIL  charts (see problems)\n";
      }
    }
    if (!c.database.empty()) {
      try {
        const bool existed = fs::exists(c.database);
        const fs::path folder = fs::path(c.database).parent_path();
        if (!existed && !folder.empty() && !fs::is_directory(folder))
          throw std::runtime_error("its folder " + folder.string() + " does not exist");
        int version = 0;
        {
          storage::Store store(c.database);  // creates a new database, applies migrations
          version = store.schema_version();
        }
        if (!existed) give_to_folder_owner(c.database);
        SQLite::Database db(c.database, SQLite::OPEN_READWRITE);
        db.setBusyTimeout(10000);
        const std::string result = integrity(db);
        if (result != "ok") throw std::runtime_error("integrity_check: " + result);
        out << "  ok    database: " << c.database << (existed ? " opened" : " created")
            << ", schema version " << version << ", integrity ok, " << counts(db) << "\n";
      } catch (const std::exception& e) {
        check.problems.push_back(
            {"database", "config key 'database': " + c.database + ": " + e.what(), true});
        out << "  FAIL  database (see problems)\n";
      }
    }
  }

  if (check.problems.empty()) {
    out << "no problems: `bangfu serve --config " << path << "` will start\n";
    return 0;
  }
  out << "problems (" << check.problems.size() << "):\n";
  for (const auto& p : check.problems) out << "  - " << p.message << "\n";
  return 2;
}

}  // namespace

std::vector<CommandSpec> ops_commands() {
  return {
      {"backup",
       "copy the database consistently, even while serving",
       "usage: bangfu backup --config FILE [--force] OUT.db\n"
       "Copies the database to OUT.db with SQLite's online backup, on a second connection: safe\n"
       "while `bangfu serve` runs (one consistent snapshot; the service is not blocked). The copy\n"
       "is checked (PRAGMA integrity_check) before it is renamed to OUT.db. --force replaces an\n"
       "existing OUT.db. Exit 0 on success, 1 on failure.\n",
       {"config"},
       {"force"},
       cmd_backup},
      {"check",
       "verify config, database, templates and webhook URL",
       "usage: bangfu check --config FILE\n"
       "Checks that the config loads, the WeCom key is usable, the database passes\n"
       "PRAGMA integrity_check, every template compiles and the webhook URL has WeCom's shape.\n"
       "One line per check (ok / FAIL / note); never prints a secret. Exit 0 when everything\n"
       "is usable, 1 otherwise.\n",
       {"config"},
       {},
       cmd_check},
      {"config check",
       "validate a config before serving with it: every problem listed by key",
       "usage: bangfu config check --config FILE\n"
       "Validates FILE (with BANGFU_WECOM_* secrets from the environment, as serve reads them)\n"
       "and every template, opens the database (creating it when new, as serve would), prints\n"
       "the effective settings with secrets shown as ***, and lists every problem with its key,\n"
       "including what the chosen wecom.mode still lacks (callback: wecom.token,\n"
       "wecom.encoding_aes_key and wecom.callback_url, the public https:// URL behind the TLS\n"
       "proxy; websocket: wecom.bot_id, wecom.secret or BANGFU_WECOM_SECRET, and a wss://\n"
       "wecom.ws_url). Exit 0 when there is no problem,\n"
       "2 otherwise. Run it as the service user: sudo -u bangfu bangfu config check --config …\n",
       {"config"},
       {},
       cmd_config_check},
  };
}

}  // namespace bot
