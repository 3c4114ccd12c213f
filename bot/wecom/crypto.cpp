#include "bot/wecom/crypto.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <boost/json.hpp>

namespace bot {
namespace {

constexpr std::size_t kEncodingKeyChars = 43;
constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kRandomBytes = 16;
constexpr std::size_t kHeaderBytes = kRandomBytes + 4;  // random || be32 msg_len
constexpr std::size_t kPadBlock = 32;                   // WeCom pads to 32, not AES's 16
constexpr std::size_t kAesBlock = 16;

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

// `what` plus the oldest queued OpenSSL error; drains this thread's error queue.
std::string openssl_error(std::string_view what) {
  std::string text(what);
  if (const unsigned long code = ERR_get_error(); code != 0) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    text += ": ";
    text += buf.data();
  }
  ERR_clear_error();
  return text;
}

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytes_of(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

constexpr bool is_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
// A table rather than the comparisons: base64_decode checks every character of an envelope
// (some 600 per message) before OpenSSL decodes it.
constexpr auto kBase64Chars = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = is_alnum(static_cast<char>(c)) || c == '+' || c == '/';
  return t;
}();
bool is_base64_char(char c) {
  return kBase64Chars[static_cast<unsigned char>(c)];
}

// AES-256-CBC over whole AES blocks with the library padding off; nullopt if OpenSSL fails
// (the error stays queued for openssl_error).
std::optional<std::string> aes_256_cbc(const EVP_CIPHER* aes, const std::string& key,
                                       std::string_view in, bool encrypt) {
  if (key.size() != kKeyBytes || in.size() % kAesBlock != 0 ||
      in.size() > static_cast<std::size_t>(INT_MAX) - kAesBlock) {
    return std::nullopt;
  }
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return std::nullopt;
  const unsigned char* k = bytes_of(key);
  const unsigned char* iv = k;  // IV = key[0..16)
  if (EVP_CipherInit_ex(ctx.get(), aes, nullptr, k, iv, encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
    return std::nullopt;
  }
  std::string out(in.size() + kAesBlock, '\0');
  int written = 0;
  int final_written = 0;
  if (EVP_CipherUpdate(ctx.get(), bytes_of(out), &written, bytes_of(in),
                       static_cast<int>(in.size())) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), bytes_of(out) + written, &final_written) != 1) {
    return std::nullopt;
  }
  out.resize(static_cast<std::size_t>(written) + static_cast<std::size_t>(final_written));
  if (out.size() != in.size()) return std::nullopt;
  return out;
}

Decrypted failed(CryptoError error) {
  return Decrypted{error, {}};
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  if (bytes.size() > static_cast<std::size_t>(INT_MAX) / 4 * 3) {
    throw std::length_error("base64_encode: input too large");
  }
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // + NUL written by OpenSSL
  const int n = EVP_EncodeBlock(bytes_of(out), bytes_of(bytes), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Strict about the alphabet, length and '=' placement (EVP_DecodeBlock alone would skip
// surrounding whitespace); lenient about non-zero spare bits in the last character.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0 || text.size() > static_cast<std::size_t>(INT_MAX)) return std::nullopt;
  if (text.empty()) return std::string();
  std::size_t pad = 0;
  while (pad < 2 && text[text.size() - 1 - pad] == '=') ++pad;
  if (!std::all_of(text.begin(), text.end() - static_cast<std::ptrdiff_t>(pad), is_base64_char)) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(bytes_of(out), bytes_of(text), static_cast<int>(text.size()));
  // EVP_DecodeBlock decodes each '=' as a zero byte and counts it; drop those.
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);
  return out;
}

WecomCrypto::WecomCrypto(std::string token, std::string_view encoding_aes_key,
                         std::string receive_id)
    : token_(std::move(token)), receive_id_(std::move(receive_id)) {
  if (encoding_aes_key.size() != kEncodingKeyChars) {
    throw std::invalid_argument("EncodingAESKey must be 43 characters, got " +
                                std::to_string(encoding_aes_key.size()));
  }
  if (!std::all_of(encoding_aes_key.begin(), encoding_aes_key.end(), is_alnum)) {
    throw std::invalid_argument("EncodingAESKey must contain only [A-Za-z0-9]");
  }
  std::optional<std::string> key = base64_decode(std::string(encoding_aes_key) + "=");
  if (!key || key->size() != kKeyBytes) {
    throw std::invalid_argument("EncodingAESKey does not decode to 32 bytes");
  }
  key_ = std::move(*key);
  prefixes_ = std::make_shared<PrefixPool>();
  sha1_.reset(EVP_MD_fetch(nullptr, "SHA1", nullptr), EVP_MD_free);
  aes_.reset(EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr), EVP_CIPHER_free);
  if (!sha1_ || !aes_)
    throw std::runtime_error(openssl_error("OpenSSL provides no SHA1 or AES-256-CBC"));
}

std::string WecomCrypto::signature(std::string_view timestamp, std::string_view nonce,
                                   std::string_view encrypted) const {
  std::array<std::string_view, 4> parts{token_, timestamp, nonce, encrypted};
  std::sort(parts.begin(), parts.end());
  std::string joined;
  joined.reserve(token_.size() + timestamp.size() + nonce.size() + encrypted.size());
  for (std::string_view part : parts) joined += part;

  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  if (EVP_Digest(joined.data(), joined.size(), digest.data(), &digest_len, sha1_.get(), nullptr) !=
      1) {
    throw std::runtime_error(openssl_error("SHA1 failed"));
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * digest_len);
  for (unsigned int i = 0; i < digest_len; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0f];
  }
  return hex;
}

bool WecomCrypto::verify(std::string_view msg_signature, std::string_view timestamp,
                         std::string_view nonce, std::string_view encrypted) const {
  const std::string expected = signature(timestamp, nonce, encrypted);
  return msg_signature.size() == expected.size() &&
         CRYPTO_memcmp(expected.data(), msg_signature.data(), expected.size()) == 0;
}

Decrypted WecomCrypto::decrypt(std::string_view encrypted) const {
  if (encrypted.empty()) return failed(CryptoError::DecodeBase64);  // as the official library
  const std::optional<std::string> cipher = base64_decode(encrypted);
  if (!cipher) return failed(CryptoError::DecodeBase64);
  if (cipher->empty() || cipher->size() % kPadBlock != 0) return failed(CryptoError::DecryptAes);

  std::optional<std::string> plain = aes_256_cbc(aes_.get(), key_, *cipher, false);
  if (!plain) {
    ERR_clear_error();
    return failed(CryptoError::DecryptAes);
  }
  // plain->size() >= 32 here, so every index below is in range.
  const auto pad = static_cast<unsigned char>(plain->back());
  if (pad == 0 || pad > kPadBlock) return failed(CryptoError::DecryptAes);
  const std::size_t body_size = plain->size() - pad;
  for (std::size_t i = body_size; i < plain->size(); ++i) {
    if (static_cast<unsigned char>((*plain)[i]) != pad) return failed(CryptoError::DecryptAes);
  }
  if (body_size < kHeaderBytes) return failed(CryptoError::IllegalBuffer);

  std::uint32_t msg_len = 0;
  for (std::size_t i = kRandomBytes; i < kHeaderBytes; ++i) {
    msg_len = (msg_len << 8) | static_cast<unsigned char>((*plain)[i]);
  }
  if (msg_len > body_size - kHeaderBytes) return failed(CryptoError::IllegalBuffer);

  const std::string_view body = std::string_view(*plain).substr(0, body_size);
  if (body.substr(kHeaderBytes + msg_len) != receive_id_) {
    return failed(CryptoError::ValidateReceiveId);
  }
  return Decrypted{CryptoError::Ok, std::string(body.substr(kHeaderBytes, msg_len))};
}

std::string WecomCrypto::encrypt(std::string_view msg, std::string_view random16) const {
  if (random16.size() != kRandomBytes) {
    throw std::invalid_argument("WecomCrypto::encrypt: random prefix must be 16 bytes");
  }
  if (msg.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument("WecomCrypto::encrypt: message longer than 2^32-1 bytes");
  }
  std::string plain;
  plain.reserve(kHeaderBytes + msg.size() + receive_id_.size() + kPadBlock);
  plain += random16;
  const auto len = static_cast<std::uint32_t>(msg.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    plain += static_cast<char>((len >> shift) & 0xffU);
  }
  plain += msg;
  plain += receive_id_;
  const std::size_t pad = kPadBlock - plain.size() % kPadBlock;  // 1..32
  plain.append(pad, static_cast<char>(pad));

  const std::optional<std::string> cipher = aes_256_cbc(aes_.get(), key_, plain, true);
  if (!cipher) throw std::runtime_error(openssl_error("AES-256-CBC encryption failed"));
  return base64_encode(*cipher);
}

struct WecomCrypto::PrefixPool {
  std::mutex mu;
  std::array<unsigned char, 256 * kRandomBytes> bytes{};
  std::size_t used = bytes.size();  // all handed out: fetch a new block first
};

std::string WecomCrypto::random_prefix() const {
  std::lock_guard lock(prefixes_->mu);
  auto& pool = *prefixes_;
  if (pool.used == pool.bytes.size()) {
    if (RAND_bytes(pool.bytes.data(), static_cast<int>(pool.bytes.size())) != 1)
      throw std::runtime_error(openssl_error("RAND_bytes failed"));
    pool.used = 0;
  }
  unsigned char* next = pool.bytes.data() + pool.used;
  std::string out(reinterpret_cast<const char*>(next), kRandomBytes);
  OPENSSL_cleanse(next, kRandomBytes);  // handed out once, not kept
  pool.used += kRandomBytes;
  return out;
}

std::string WecomCrypto::reply_envelope(std::string_view reply, long long timestamp,
                                        std::string_view nonce) const {
  const std::string encrypted = encrypt(reply, random_prefix());
  // Field order as in the WeCom doc. Boost.JSON, as for the callback (bot/wecom/callback.cpp).
  // The nonce is the request's (letters and digits, checked by the caller).
  return boost::json::serialize(
      boost::json::object{{"encrypt", encrypted},
                          {"msgsignature", signature(std::to_string(timestamp), nonce, encrypted)},
                          {"timestamp", timestamp},
                          {"nonce", nonce}});
}

}  // namespace bot
