#pragma once

// The office dashboard's sign-in parts: password hashes, sessions and the pause after wrong
// passwords. No HTTP here; bot/office/dashboard.h turns them into cookies and pages.

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace bot::office {

/// An Argon2id hash of `password` as a PHC string ("$argon2id$v=19$m=65536,t=2,p=1$…"), from
/// libsodium with its INTERACTIVE limits (64 MiB, 2 passes: about 0.1 s). Random salt, so two
/// calls give different strings. Throws std::runtime_error if libsodium fails (out of memory).
std::string hash_password(const std::string& password);

/// True when `password` matches `hash` (a string from hash_password). A malformed hash is simply
/// no match. Takes about as long as hashing.
bool verify_password(const std::string& hash, const std::string& password);

/// True when `hash` looks like something hash_password made (the config check uses it).
bool is_password_hash(const std::string& hash);

/// Signed-in sessions, in memory (a restart signs everyone out). A session id is 32 random
/// bytes from OpenSSL's RAND_bytes as 64 hex digits; only its SHA-256 is kept, so a lookup
/// takes the same time whichever id is tried. A session ends after `idle_seconds` without a
/// request. Thread-safe.
class SessionStore {
 public:
  explicit SessionStore(int64_t idle_seconds = 8 * 3600, size_t max_sessions = 1000)
      : idle_(idle_seconds), max_(max_sessions) {}

  /// Opens a session for `user` at `now` (seconds); returns its id for the cookie. When
  /// `max_sessions` are open, the one idle longest is closed first.
  std::string open(const std::string& user, int64_t now);
  /// The user of session `id` if it is open and was used within the idle limit; marks it used
  /// at `now`. An expired session is closed.
  std::optional<std::string> touch(const std::string& id, int64_t now);
  /// Closes session `id` (logout). Unknown ids are ignored.
  void close(const std::string& id);
  size_t size() const;

 private:
  struct Session {
    std::string user;
    int64_t last_seen = 0;
  };
  const int64_t idle_;
  const size_t max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Session> sessions_;  // sha256(id) → session
};

/// Wrong passwords per address: `max_failures` within `window_seconds` pause that address's
/// sign-ins until the oldest of them is `window_seconds` old. Memory is bounded: addresses idle
/// for a window are forgotten. Thread-safe.
class LoginLimiter {
 public:
  explicit LoginLimiter(int max_failures = 5, int64_t window_seconds = 60)
      : max_(max_failures), window_(window_seconds) {}
  /// Seconds until `address` may try again; 0 when it may try now.
  int64_t paused_for(const std::string& address, int64_t now);
  /// Records one wrong password from `address` at `now`.
  void failed(const std::string& address, int64_t now);

 private:
  void prune(int64_t now);
  const int max_;
  const int64_t window_;
  std::mutex mu_;
  std::map<std::string, std::deque<int64_t>> failures_;
  int64_t last_prune_ = 0;
};

}  // namespace bot::office
