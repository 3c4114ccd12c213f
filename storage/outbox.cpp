#include "storage/outbox.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <SQLiteCpp/VariadicBind.h>

#include <functional>
#include <mutex>
#include <stdexcept>

#include "storage/columns.h"

namespace storage {
namespace {

constexpr const char* kColumns =
    "id, kind, period, ledger, generation, part, parts, msgtype, body, status, attempts, "
    "next_attempt_at, claim_id, claimed_at, last_error, created_at, sent_at, target_group";

std::string select_from(const char* where) {
  return std::string("SELECT ") + kColumns + " FROM outbox " + where;
}

std::optional<int64_t> opt_int(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

OutboxPart read_part(SQLite::Statement& s) {
  OutboxPart p;
  p.id = s.getColumn(0).getInt64();
  p.kind = s.getColumn(1).getString();
  p.period = s.getColumn(2).getString();
  p.ledger = s.getColumn(3).getString();
  p.generation = s.getColumn(4).getInt();
  p.part = s.getColumn(5).getInt();
  p.parts = s.getColumn(6).getInt();
  p.msgtype = s.getColumn(7).getString();
  p.body = s.getColumn(8).getString();
  const auto status = outbox_status_from(s.getColumn(9).getString());
  if (!status)
    throw SQLite::Exception("stored outbox status is unknown: " + s.getColumn(9).getString());
  p.status = *status;
  p.attempts = s.getColumn(10).getInt();
  p.next_attempt_at = s.getColumn(11).getInt64();
  p.claim_id = opt_int(s.getColumn(12));
  p.claimed_at = opt_int(s.getColumn(13));
  p.last_error = s.getColumn(14).getString();
  p.created_at = s.getColumn(15).getInt64();
  p.sent_at = opt_int(s.getColumn(16));
  p.group = s.getColumn(17).getString();
  return p;
}

std::vector<OutboxPart> read_parts(SQLite::Statement& s) {
  std::vector<OutboxPart> out;
  while (s.executeStep()) out.push_back(read_part(s));
  return out;
}

}  // namespace

std::string_view outbox_status_code(OutboxStatus s) {
  switch (s) {
    case OutboxStatus::Pending:
      return "pending";
    case OutboxStatus::Sending:
      return "sending";
    case OutboxStatus::Sent:
      return "sent";
    case OutboxStatus::Failed:
      return "failed";
    case OutboxStatus::Unknown:
      return "unknown";
    case OutboxStatus::Cancelled:
      return "cancelled";
  }
  return "pending";
}

std::optional<OutboxStatus> outbox_status_from(std::string_view code) {
  for (OutboxStatus s : {OutboxStatus::Pending, OutboxStatus::Sending, OutboxStatus::Sent,
                         OutboxStatus::Failed, OutboxStatus::Unknown, OutboxStatus::Cancelled})
    if (code == outbox_status_code(s)) return s;
  return std::nullopt;
}

struct Outbox::Statements {
  explicit Statements(SQLite::Database& db)
      : latest_generation(db,
                          "SELECT max(generation) FROM outbox WHERE kind = ?1 AND period = ?2 "
                          "AND ledger = ?3 AND target_group = ?4"),
        insert(db,
               "INSERT INTO outbox (kind, period, ledger, generation, part, parts, msgtype, body, "
               "next_attempt_at, created_at, target_group) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)"),
        cancel_older(db,
                     "UPDATE outbox SET status = 'cancelled', last_error = ?5 WHERE kind = ?1 "
                     "AND period = ?2 AND ledger = ?3 AND generation < ?4 AND status = 'pending' "
                     "AND target_group = ?6"),
        ids_of(db,
               "SELECT id FROM outbox WHERE kind = ?1 AND period = ?2 AND ledger = ?3 "
               "AND generation = ?4 AND target_group = ?5 ORDER BY part"),
        parts_of(db, select_from("WHERE kind = ?1 AND period = ?2 AND ledger = ?3 "
                                 "AND generation = ?4 AND target_group = ?5 ORDER BY part")),
        head(db, select_from("WHERE status IN ('pending', 'sending') ORDER BY id LIMIT 1")),
        by_id(db, select_from("WHERE id = ?1")),
        all(db, select_from("ORDER BY id")),
        window_starts(db,
                      "SELECT started_at FROM outbox_attempts WHERE started_at > ?1 "
                      "ORDER BY started_at"),
        claim(db,
              "UPDATE outbox SET status = 'sending', attempts = attempts + 1, claim_id = ?2, "
              "claimed_at = ?3 WHERE id = ?1 AND status = 'pending'"),
        attempt_insert(db, "INSERT INTO outbox_attempts (outbox_id, started_at) VALUES (?1, ?2)"),
        attempt_finish(db,
                       "UPDATE outbox_attempts SET finished_at = ?2, outcome = ?3 WHERE id = ?1"),
        finish_sent(db,
                    "UPDATE outbox SET status = 'sent', sent_at = ?3, last_error = '' "
                    "WHERE id = ?1 AND claim_id = ?2 AND status IN ('sending', 'unknown')"),
        finish_retry(db,
                     "UPDATE outbox SET status = 'pending', next_attempt_at = ?3, last_error = ?4 "
                     "WHERE id = ?1 AND claim_id = ?2 AND status = 'sending'"),
        finish_failed(db,
                      "UPDATE outbox SET status = 'failed', last_error = ?3 "
                      "WHERE id = ?1 AND claim_id = ?2 AND status = 'sending'"),
        finish_unknown(db,
                       "UPDATE outbox SET status = 'unknown', last_error = ?3 "
                       "WHERE id = ?1 AND claim_id = ?2 AND status = 'sending'"),
        stale(db, select_from("WHERE status = 'sending' AND claimed_at < ?1 ORDER BY id")),
        requeue(db,
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2, "
                "claim_id = NULL, claimed_at = NULL WHERE id = ?1 "
                "AND status IN ('failed', 'unknown')"),
        state_get(db, "SELECT value FROM scheduler_state WHERE key = ?1"),
        state_insert(db,
                     "INSERT OR IGNORE INTO scheduler_state (key, value, updated_at) "
                     "VALUES (?1, ?2, ?3)"),
        state_set(db,
                  "INSERT INTO scheduler_state (key, value, updated_at) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                  "updated_at = excluded.updated_at"),
        state_prefix(db,
                     "SELECT key, value FROM scheduler_state WHERE substr(key, 1, length(?1)) = ?1 "
                     "ORDER BY key") {}

  SQLite::Statement latest_generation, insert, cancel_older, ids_of, parts_of, head, by_id, all;
  SQLite::Statement window_starts, claim, attempt_insert, attempt_finish;
  SQLite::Statement finish_sent, finish_retry, finish_failed, finish_unknown, stale, requeue;
  SQLite::Statement state_get, state_insert, state_set, state_prefix;

  // Closes the attempt row of `claim_id` with its outcome.
  void close_attempt(int64_t claim_id, int64_t now, const std::string& outcome) {
    Use use(attempt_finish);
    attempt_finish.bind(1, claim_id);
    attempt_finish.bind(2, now);
    attempt_finish.bind(3, outcome);
    attempt_finish.exec();
  }
};

Outbox::Outbox(Store& store) : store_(store) {
  std::lock_guard lock(store_.mu_);
  st_ = std::make_unique<Statements>(*store_.db_);
}

Outbox::~Outbox() {
  std::lock_guard lock(store_.mu_);
  st_.reset();
}

EnqueueResult Outbox::enqueue(const std::string& kind, const std::string& period,
                              const std::string& ledger, const std::vector<OutboxMessage>& parts,
                              int64_t now, bool force, const std::string& group) {
  if (parts.empty()) throw std::invalid_argument("Outbox::enqueue: no parts");
  std::lock_guard lock(store_.mu_);
  Statements& st = *st_;
  SQLite::Transaction tx(*store_.db_, SQLite::TransactionBehavior::IMMEDIATE);
  EnqueueResult r;
  int latest = 0;
  {
    Use use(st.latest_generation);
    st.latest_generation.bind(1, kind);
    st.latest_generation.bind(2, period);
    st.latest_generation.bind(3, ledger);
    st.latest_generation.bind(4, group);
    st.latest_generation.executeStep();
    if (!st.latest_generation.getColumn(0).isNull())
      latest = st.latest_generation.getColumn(0).getInt();
  }
  r.generation = latest;
  if (latest == 0 || force) {
    r.generation = latest + 1;
    r.created = true;
    if (latest > 0) {
      Use use(st.cancel_older);
      st.cancel_older.bind(1, kind);
      st.cancel_older.bind(2, period);
      st.cancel_older.bind(3, ledger);
      st.cancel_older.bind(4, r.generation);
      st.cancel_older.bind(5, "superseded by generation " + std::to_string(r.generation));
      st.cancel_older.bind(6, group);
      st.cancel_older.exec();
    }
    const int n = static_cast<int>(parts.size());
    for (int i = 0; i < n; ++i) {
      Use use(st.insert);
      st.insert.bind(1, kind);
      st.insert.bind(2, period);
      st.insert.bind(3, ledger);
      st.insert.bind(4, r.generation);
      st.insert.bind(5, i + 1);
      st.insert.bind(6, n);
      st.insert.bind(7, parts[static_cast<size_t>(i)].msgtype);
      st.insert.bind(8, parts[static_cast<size_t>(i)].body);
      st.insert.bind(9, now);
      st.insert.bind(10, group);
      st.insert.exec();
    }
  }
  {
    Use use(st.ids_of);
    st.ids_of.bind(1, kind);
    st.ids_of.bind(2, period);
    st.ids_of.bind(3, ledger);
    st.ids_of.bind(4, r.generation);
    st.ids_of.bind(5, group);
    while (st.ids_of.executeStep()) r.ids.push_back(st.ids_of.getColumn(0).getInt64());
  }
  tx.commit();
  return r;
}

std::optional<OutboxPart> Outbox::head() {
  std::lock_guard lock(store_.mu_);
  Use use(st_->head);
  if (!st_->head.executeStep()) return std::nullopt;
  return read_part(st_->head);
}

ClaimResult Outbox::claim(int64_t id, int64_t now, int max_per_window, int64_t window_seconds) {
  std::lock_guard lock(store_.mu_);
  Statements& st = *st_;
  // IMMEDIATE: the count and the claim happen under the database write lock, so two processes
  // cannot both see room in the window, nor both claim the part.
  SQLite::Transaction tx(*store_.db_, SQLite::TransactionBehavior::IMMEDIATE);
  ClaimResult r;
  {
    Use use(st.by_id);
    st.by_id.bind(1, id);
    if (!st.by_id.executeStep() || read_part(st.by_id).status != OutboxStatus::Pending)
      return r;  // NotPending
  }
  std::vector<int64_t> starts;
  {
    Use use(st.window_starts);
    st.window_starts.bind(1, now - window_seconds);
    while (st.window_starts.executeStep())
      starts.push_back(st.window_starts.getColumn(0).getInt64());
  }
  if (max_per_window > 0 && static_cast<int>(starts.size()) >= max_per_window) {
    // Room comes back when the claim that is max_per_window-th from the end leaves the window.
    r.outcome = ClaimResult::Outcome::RateLimited;
    r.retry_at = starts[starts.size() - static_cast<size_t>(max_per_window)] + window_seconds;
    return r;  // rolls back: nothing was written
  }
  int64_t attempt = 0;
  {
    Use use(st.attempt_insert);
    st.attempt_insert.bind(1, id);
    st.attempt_insert.bind(2, now);
    st.attempt_insert.exec();
    attempt = store_.db_->getLastInsertRowid();
  }
  {
    Use use(st.claim);
    st.claim.bind(1, id);
    st.claim.bind(2, attempt);
    st.claim.bind(3, now);
    if (st.claim.exec() == 0) return r;  // NotPending; rolls back the attempt row too
  }
  tx.commit();
  r.outcome = ClaimResult::Outcome::Claimed;
  r.claim_id = attempt;
  return r;
}

namespace {
// Runs a part's UPDATE with `args` bound in order; whether it changed the row (the part still
// carries the claim).
template <class... Args>
bool matched(SQLite::Statement& update, const Args&... args) {
  Use use(update);
  SQLite::bind(update, args...);
  return update.exec() > 0;
}
}  // namespace

bool Outbox::finish(int64_t claim_id, int64_t now, const std::string& outcome,
                    const std::function<bool(Statements&)>& update) {
  std::lock_guard lock(store_.mu_);
  Statements& st = *st_;
  SQLite::Transaction tx(*store_.db_, SQLite::TransactionBehavior::IMMEDIATE);
  if (!update(st)) return false;
  st.close_attempt(claim_id, now, outcome);
  tx.commit();
  return true;
}

bool Outbox::finish_sent(int64_t id, int64_t claim_id, int64_t now) {
  return finish(claim_id, now, "sent",
                [&](Statements& st) { return matched(st.finish_sent, id, claim_id, now); });
}

bool Outbox::finish_retry(int64_t id, int64_t claim_id, int64_t next_attempt_at,
                          const std::string& error, int64_t now) {
  return finish(claim_id, now, "retry: " + error, [&](Statements& st) {
    return matched(st.finish_retry, id, claim_id, next_attempt_at, error);
  });
}

bool Outbox::finish_failed(int64_t id, int64_t claim_id, const std::string& error, int64_t now) {
  return finish(claim_id, now, "failed: " + error,
                [&](Statements& st) { return matched(st.finish_failed, id, claim_id, error); });
}

bool Outbox::finish_unknown(int64_t id, int64_t claim_id, const std::string& reason, int64_t now) {
  return finish(claim_id, now, "unknown: " + reason,
                [&](Statements& st) { return matched(st.finish_unknown, id, claim_id, reason); });
}

std::vector<OutboxPart> Outbox::expire_claims(int64_t claimed_before, int64_t now) {
  std::lock_guard lock(store_.mu_);
  Statements& st = *st_;
  SQLite::Transaction tx(*store_.db_, SQLite::TransactionBehavior::IMMEDIATE);
  std::vector<OutboxPart> stale;
  {
    Use use(st.stale);
    st.stale.bind(1, claimed_before);
    stale = read_parts(st.stale);
  }
  const std::string reason =
      "the sender stopped during the POST: it may or may not have been posted, so it is not "
      "resent";
  for (OutboxPart& p : stale) {
    Use use(st.finish_unknown);
    st.finish_unknown.bind(1, p.id);
    st.finish_unknown.bind(2, *p.claim_id);
    st.finish_unknown.bind(3, reason);
    st.finish_unknown.exec();
    st.close_attempt(*p.claim_id, now, "unknown: " + reason);
    p.status = OutboxStatus::Unknown;
    p.last_error = reason;
  }
  tx.commit();
  return stale;
}

bool Outbox::requeue(int64_t id, int64_t now) {
  std::lock_guard lock(store_.mu_);
  Use use(st_->requeue);
  st_->requeue.bind(1, id);
  st_->requeue.bind(2, now);
  return st_->requeue.exec() == 1;
}

std::optional<OutboxPart> Outbox::part(int64_t id) {
  std::lock_guard lock(store_.mu_);
  Use use(st_->by_id);
  st_->by_id.bind(1, id);
  if (!st_->by_id.executeStep()) return std::nullopt;
  return read_part(st_->by_id);
}

std::vector<OutboxPart> Outbox::list() {
  std::lock_guard lock(store_.mu_);
  Use use(st_->all);
  return read_parts(st_->all);
}

std::vector<OutboxPart> Outbox::parts_of(const std::string& kind, const std::string& period,
                                         const std::string& ledger, int generation,
                                         const std::string& group) {
  std::lock_guard lock(store_.mu_);
  auto& s = st_->parts_of;
  Use use(s);
  s.bind(1, kind);
  s.bind(2, period);
  s.bind(3, ledger);
  s.bind(4, generation);
  s.bind(5, group);
  return read_parts(s);
}

std::optional<std::string> Outbox::state(const std::string& key) {
  std::lock_guard lock(store_.mu_);
  Use use(st_->state_get);
  st_->state_get.bind(1, key);
  if (!st_->state_get.executeStep()) return std::nullopt;
  return st_->state_get.getColumn(0).getString();
}

std::string Outbox::state_init(const std::string& key, const std::string& value, int64_t now) {
  std::lock_guard lock(store_.mu_);
  Statements& st = *st_;
  SQLite::Transaction tx(*store_.db_, SQLite::TransactionBehavior::IMMEDIATE);
  {
    Use use(st.state_insert);
    st.state_insert.bind(1, key);
    st.state_insert.bind(2, value);
    st.state_insert.bind(3, now);
    st.state_insert.exec();
  }
  std::string stored;
  {
    Use use(st.state_get);
    st.state_get.bind(1, key);
    st.state_get.executeStep();
    stored = st.state_get.getColumn(0).getString();
  }
  tx.commit();
  return stored;
}

void Outbox::set_state(const std::string& key, const std::string& value, int64_t now) {
  std::lock_guard lock(store_.mu_);
  Use use(st_->state_set);
  st_->state_set.bind(1, key);
  st_->state_set.bind(2, value);
  st_->state_set.bind(3, now);
  st_->state_set.exec();
}

std::map<std::string, std::string> Outbox::states(const std::string& prefix) {
  std::lock_guard lock(store_.mu_);
  Use use(st_->state_prefix);
  st_->state_prefix.bind(1, prefix);
  std::map<std::string, std::string> out;
  while (st_->state_prefix.executeStep())
    out.emplace(st_->state_prefix.getColumn(0).getString(),
                st_->state_prefix.getColumn(1).getString());
  return out;
}

}  // namespace storage
