#include "bot/office/auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <algorithm>
#include <stdexcept>

namespace bot::office {
namespace {

void init_sodium() {
  // Safe to call from several threads and more than once; < 0 only when no entropy source.
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
}

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

std::string sha256_hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  return hex(md, len);
}

}  // namespace

std::string hash_password(const std::string& password) {
  init_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_argon2id_str(out, password.data(), password.size(),
                                 crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
                                 crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE) != 0)
    throw std::runtime_error("Argon2id hashing failed (out of memory?)");
  return out;
}

bool verify_password(const std::string& hash, const std::string& password) {
  init_sodium();
  if (!is_password_hash(hash)) return false;
  return crypto_pwhash_argon2id_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

bool is_password_hash(const std::string& hash) {
  return hash.rfind("$argon2id$", 0) == 0 && hash.size() < crypto_pwhash_STRBYTES;
}

std::string SessionStore::open(const std::string& user, int64_t now) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  const std::string id = hex(raw, sizeof raw);
  std::lock_guard lock(mu_);
  std::erase_if(sessions_, [&](const auto& kv) { return now - kv.second.last_seen > idle_; });
  if (sessions_.size() >= max_) {
    auto oldest = std::min_element(
        sessions_.begin(), sessions_.end(),
        [](const auto& a, const auto& b) { return a.second.last_seen < b.second.last_seen; });
    sessions_.erase(oldest);
  }
  sessions_[sha256_hex(id)] = Session{user, now};
  return id;
}

std::optional<std::string> SessionStore::touch(const std::string& id, int64_t now) {
  if (id.size() != 64) return std::nullopt;
  const std::string key = sha256_hex(id);
  std::lock_guard lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.last_seen > idle_) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_seen = std::max(it->second.last_seen, now);
  return it->second.user;
}

void SessionStore::close(const std::string& id) {
  if (id.size() != 64) return;
  const std::string key = sha256_hex(id);
  std::lock_guard lock(mu_);
  sessions_.erase(key);
}

size_t SessionStore::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void LoginLimiter::prune(int64_t now) {
  if (now - last_prune_ < window_) return;
  std::erase_if(failures_, [&](const auto& kv) {
    return kv.second.empty() || kv.second.back() <= now - window_;
  });
  last_prune_ = now;
}

int64_t LoginLimiter::paused_for(const std::string& address, int64_t now) {
  std::lock_guard lock(mu_);
  prune(now);
  auto it = failures_.find(address);
  if (it == failures_.end()) return 0;
  auto& times = it->second;
  while (!times.empty() && times.front() <= now - window_) times.pop_front();
  if (static_cast<int>(times.size()) < max_) return 0;
  // The oldest failure in the window leaves it at front + window.
  return std::max<int64_t>(1, times.front() + window_ - now);
}

void LoginLimiter::failed(const std::string& address, int64_t now) {
  std::lock_guard lock(mu_);
  prune(now);
  auto& times = failures_[address];
  times.push_back(now);
  // Only the last max_ failures matter for the pause.
  while (static_cast<int>(times.size()) > max_) times.pop_front();
}

}  // namespace bot::office
