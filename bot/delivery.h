#pragma once

// Delivery to the WeCom group robot (docs/protocols.md "Group robot webhook"; README "Delivery"):
// splitting long texts into numbered parts, the JSON bodies, the reminder (及时提醒) messages,
// what to do with each answer, and the outbox worker that posts queued parts.
//
// Exactly-once, as far as it can be had: a part is written to the outbox before anything is
// posted, claimed (status `sending`, durable) before its POST and marked `sent` only after
// errcode 0. If the process dies during the POST, or the connection breaks after the request was
// written, nobody can know whether the robot posted it. We then choose AT MOST ONCE: the part
// becomes `unknown`, is logged and listed by `bangfu outbox list`, and is not resent unless an
// operator says so (`bangfu outbox resend ID`). Why: the issue asks that a restart "posts nothing
// twice"; a robot message cannot be recalled, and a duplicate bulletin in a group read by
// hundreds undermines the trust the figures need, whereas an unknown part is rare (the window is
// one POST), visible, and one command away from being resent.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bot/channel.h"
#include "bot/log.h"
#include "handlers/templates.h"
#include "storage/outbox.h"

namespace bot {

/// Seconds since the Unix epoch (the same type as bot/wecom/callback.h's Clock).
using DeliveryClock = std::function<int64_t()>;

inline constexpr size_t kMarkdownLimit = 4096;          // bytes of markdown.content
inline constexpr size_t kTextLimit = 2048;              // bytes of text.content
inline constexpr int kRatePerMinute = 20;               // messages per robot per rolling minute
inline constexpr size_t kImageLimit = 2 * 1024 * 1024;  // bytes of an image (before base64)

/// Splits `text` into parts of at most `limit` bytes each, on line boundaries. When there is more
/// than one part, each part's first line carries its number "（k/n）": part 1 at the end of its
/// own first line, later parts under a repeated first line of the text (the title, cut to 300
/// bytes), so every part says what it belongs to. A single line longer than a part can hold is
/// cut at a UTF-8 code-point boundary and continues on the next line. Trailing newlines of a part
/// are dropped. Empty text gives no parts. Pure. `limit` must be at least 400.
std::vector<std::string> split_message(const std::string& text, size_t limit);

/// The JSON bodies to POST.
std::string markdown_body(const std::string& content);
std::string text_body(const std::string& content, const std::vector<std::string>& mentioned);

/// The body of an image message: {"msgtype":"image","image":{"base64","md5"}}, the md5 (lower-case
/// hex) of the raw bytes, as the group robot checks it. Throws std::length_error above
/// kImageLimit (the robot refuses larger images).
std::string image_body(std::string_view image);

/// The outbox parts of one bulletin: its markdown split as split_message does, then one image
/// message per chart, in order, so the pictures follow the text they illustrate and are posted
/// exactly once with it (one outbox generation). A chart above kImageLimit is left out and its
/// index added to `too_large` (when given). Pure.
///
/// Extension point: these bodies are the group robot's. A long-connection (AI bot) transport
/// would build its own parts from the same markdown and PNG bytes (an image in its reply
/// message, or a media upload), with the same one-generation-per-bulletin rule.
std::vector<storage::OutboxMessage> bulletin_messages(const std::string& markdown,
                                                      const std::vector<std::string>& images,
                                                      std::vector<size_t>* too_large = nullptr);

/// A helper who still has unvisited pairings this month (及时提醒).
struct ReminderEntry {
  std::string helper_id;  // WeCom userid, for mentioned_list
  std::string helper_name;
  std::string unit;
  int unvisited = 0;
  std::string ledger;  // "cadre", "health", "education": which groups see the line (bot/groups.h)
};

/// The reminder as `text` messages for `day`: one line per helper (name, unit, count), split so
/// each content is at most 2048 bytes, each message mentioning (mentioned_list) exactly the
/// helpers listed in it. Helpers with 0 unvisited are left out; no entries → no messages. Names
/// no beneficiary. The words are templates/reminder.mustache's (TemplateError when it is not
/// loaded). Pure.
std::vector<storage::OutboxMessage> reminder_messages(std::vector<ReminderEntry> entries,
                                                      storage::Date day,
                                                      const handlers::Templates& templates);

/// What to do with a part after one POST.
struct SendDecision {
  enum class Action { Sent, Retry, Fail, Unknown };
  Action action = Action::Retry;
  int64_t delay_seconds = 0;  // Retry: wait this long
  std::string reason;         // for last_error and the log ("" when sent)
};

/// The retry policy over what a channel reported. `attempts` counts the attempts of this part
/// including this one. Sent → Sent. Retry → Retry after the longer of backoff(attempts) (≥ 30 s)
/// and the channel's retry_after, until 50 attempts, then Fail. Busy → Retry at most 3 times,
/// then Fail. Unknown (maybe posted) → Unknown. Failed → Fail. Pure.
SendDecision decide(const PostResult& result, int attempts);

/// 30 s, 60 s, 120 s, … doubling per attempt, capped at 10 minutes.
int64_t backoff_seconds(int attempts);

/// Posts queued outbox parts, oldest first, one at a time, through an OutboundChannel to the
/// part's group (its Target among `targets`): claims the head part (at most 20 claims per rolling
/// minute, counted in the database so restarts and other processes share the budget), posts it,
/// and records the outcome (see decide). A part whose group is not among `targets` (removed from
/// the config since it was queued) or whose stored body cannot be read fails with that reason. A
/// part never overtakes an earlier one still pending or in flight. Claims older than kClaimTimeout
/// are given up as `unknown`. Logs each outcome (never the body or the webhook key). step() is for
/// one thread at a time; start()/stop()/notify() are thread-safe. The destructor stops and joins.
class OutboxWorker {
 public:
  /// A claim this old cannot belong to a POST still running (the sender's timeouts sum to 35 s).
  static constexpr int64_t kClaimTimeout = 120;

  struct Options {
    /// The longest the thread sleeps between looks at the queue (real time). Short in tests
    /// whose clock is not the wall clock.
    std::chrono::milliseconds max_wait{std::chrono::seconds(30)};
  };

  OutboxWorker(storage::Outbox& outbox, OutboundChannel& channel, std::vector<Target> targets,
               Logger& log, DeliveryClock clock, Options options);
  OutboxWorker(storage::Outbox& outbox, OutboundChannel& channel, std::vector<Target> targets,
               Logger& log, DeliveryClock clock);
  ~OutboxWorker();
  OutboxWorker(const OutboxWorker&) = delete;
  OutboxWorker& operator=(const OutboxWorker&) = delete;

  struct Step {
    enum class Kind { Idle, Wait, Posted };
    Kind kind = Kind::Idle;
    int64_t wake_at = 0;                      // Wait: the clock second at which the head can go
    std::optional<storage::OutboxPart> part;  // Posted: the part as it stands now
  };
  /// Does at most one POST. Idle: nothing queued. Wait: the head is not due, is in flight
  /// elsewhere, or the minute's budget is spent. Throws SQLite::Exception.
  Step step();

  /// Runs step() on its own thread until stop(). Errors are logged and retried.
  void start();
  /// Finishes the POST in flight (if any), then joins. Idempotent.
  void stop();
  /// Wakes the thread (something was enqueued).
  void notify();

 private:
  void run();
  PostResult post(const storage::OutboxPart& part);
  storage::Outbox& outbox_;
  OutboundChannel& channel_;
  std::vector<Target> targets_;
  Logger& log_;
  DeliveryClock clock_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool notified_ = false;
  std::thread thread_;
};

/// The wall clock, or, when the environment variable BANGFU_FAKE_CLOCK_FILE names a file, a clock
/// that reads unix seconds from that file on every call (TEST ONLY: the integration tests move
/// time by rewriting the file). `fake` is set to whether the file clock is in use.
/// Throws std::runtime_error when the file is named but unreadable at the start.
DeliveryClock delivery_clock(bool& fake);

}  // namespace bot
