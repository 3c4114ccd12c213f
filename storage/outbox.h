#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.h"

namespace storage {

/// Where one outbox row stands.
///  pending   → waiting to be posted (next_attempt_at says when);
///  sending   → claimed: a POST is (or was) in flight. Written durably before the POST;
///  sent      → the robot answered errcode 0;
///  failed    → a permanent error, or retries gave up (last_error says why);
///  unknown   → the POST may or may not have been posted (the process died during it, or the
///              connection broke after the request was written). Never resent automatically: the
///              outbox posts at most once (README "Delivery"); `bangfu outbox resend` requeues it;
///  cancelled → a pending part superseded by a newer generation (--force).
enum class OutboxStatus { Pending, Sending, Sent, Failed, Unknown, Cancelled };
std::string_view outbox_status_code(OutboxStatus s);  // "pending", …
std::optional<OutboxStatus> outbox_status_from(std::string_view code);

/// One message to enqueue: msgtype ("markdown" or "text") and the JSON body to POST.
struct OutboxMessage {
  std::string msgtype;
  std::string body;
};

/// One stored part. kind is "monthly", "quarterly" or "reminder"; period "2026-11", "2026-Q4" or
/// (reminders) "2026-11-20"; ledger "cadre", "health", "education" or "all".
struct OutboxPart {
  int64_t id = 0;
  std::string kind, period, ledger;
  std::string group;  // the group it goes to (config `groups`; migration 9); "": the one
                      // group of wecom.webhook_url (a config without `groups`)
  int generation = 1;
  int part = 1, parts = 1;
  std::string msgtype, body;
  OutboxStatus status = OutboxStatus::Pending;
  int attempts = 0;
  int64_t next_attempt_at = 0;
  std::optional<int64_t> claim_id;    // the attempt that holds (or last held) the claim
  std::optional<int64_t> claimed_at;  // unix seconds the claim was taken
  std::string last_error;
  int64_t created_at = 0;
  std::optional<int64_t> sent_at;
};

struct EnqueueResult {
  int generation = 0;        // the generation now current for (kind, period, ledger)
  bool created = false;      // false: it existed already and nothing was added
  std::vector<int64_t> ids;  // the rows of that generation, part order
};

struct ClaimResult {
  enum class Outcome { Claimed, RateLimited, NotPending };
  Outcome outcome = Outcome::NotPending;
  int64_t claim_id = 0;  // Claimed: the attempt id to pass to the finish_* calls
  int64_t retry_at = 0;  // RateLimited: the first second a claim can succeed
};

/// The durable outbox (tables `outbox`, `outbox_attempts`) and the scheduler's small key/value
/// state (`scheduler_state`), on the Store's connection and under its lock (migration 2).
/// Every write is one transaction, so several processes on one database (the service and a
/// `bangfu bulletin --post`) cannot claim the same part twice. Thread-safe. The Store must
/// outlive the Outbox. Throws SQLite::Exception on infrastructure failure.
class Outbox {
 public:
  explicit Outbox(Store& store);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  /// Adds `parts` as one generation of (kind, period, ledger, group), all pending and due at
  /// `now`, to go to `group` ("": the implicit group of wecom.webhook_url). Idempotent: without
  /// `force`, if any generation exists nothing is added and the latest is returned
  /// (created=false). With `force`, a new generation (latest + 1) is added and any part of older
  /// generations still pending is cancelled. Each group has its own generations. `parts` must
  /// not be empty.
  EnqueueResult enqueue(const std::string& kind, const std::string& period,
                        const std::string& ledger, const std::vector<OutboxMessage>& parts,
                        int64_t now, bool force, const std::string& group = "");

  /// The head of the queue: the lowest id that is pending or sending, if any. Parts are posted in
  /// id order, so a part never overtakes an earlier one that is still in flight or backing off.
  std::optional<OutboxPart> head();

  /// Claims pending part `id` for one POST, in one transaction: unless `max_per_window` claims
  /// (of any part) started in (now - window_seconds, now], the part becomes sending, attempts
  /// grows by one and an attempt row records the start. Only one caller can win a claim.
  ClaimResult claim(int64_t id, int64_t now, int max_per_window, int64_t window_seconds);

  /// Finish the attempt `claim_id` of part `id`. Each returns false (and changes nothing) when
  /// the part no longer carries that claim. finish_sent is also accepted from `unknown` (a late
  /// answer after the claim was given up is still the truth).
  bool finish_sent(int64_t id, int64_t claim_id, int64_t now);
  bool finish_retry(int64_t id, int64_t claim_id, int64_t next_attempt_at, const std::string& error,
                    int64_t now);
  bool finish_failed(int64_t id, int64_t claim_id, const std::string& error, int64_t now);
  bool finish_unknown(int64_t id, int64_t claim_id, const std::string& reason, int64_t now);

  /// Parts still `sending` whose claim was taken before `claimed_before` belong to a POST that
  /// cannot still be running (the process died): they become `unknown`. Returns them.
  std::vector<OutboxPart> expire_claims(int64_t claimed_before, int64_t now);

  /// Puts a failed or unknown part back to pending (attempts reset, due at `now`). False if the
  /// part does not exist or is in another state.
  bool requeue(int64_t id, int64_t now);

  std::optional<OutboxPart> part(int64_t id);
  /// Every row, by id.
  std::vector<OutboxPart> list();
  /// The rows of one generation, part order.
  std::vector<OutboxPart> parts_of(const std::string& kind, const std::string& period,
                                   const std::string& ledger, int generation,
                                   const std::string& group = "");

  // --- scheduler_state ------------------------------------------------------------------------
  std::optional<std::string> state(const std::string& key);
  /// Stores `value` under `key` unless the key exists; returns the stored value either way.
  std::string state_init(const std::string& key, const std::string& value, int64_t now);
  void set_state(const std::string& key, const std::string& value, int64_t now);
  /// All keys starting with `prefix` (prefix included in the keys).
  std::map<std::string, std::string> states(const std::string& prefix);

 private:
  struct Statements;
  /// One finish_*: `update` (the part's row, false if it no longer carries the claim) and the
  /// attempt closed with `outcome`, in one transaction.
  bool finish(int64_t claim_id, int64_t now, const std::string& outcome,
              const std::function<bool(Statements&)>& update);
  Store& store_;
  std::unique_ptr<Statements> st_;
};

}  // namespace storage
