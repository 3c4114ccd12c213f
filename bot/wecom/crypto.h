#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

// OpenSSL's EVP_MD and EVP_CIPHER, kept opaque here.
struct evp_md_st;
struct evp_cipher_st;

namespace bot {

/// Error codes of the WXBizMsgCrypt scheme (docs/protocols.md "Callback crypto").
enum class CryptoError {
  Ok = 0,
  ValidateSignature = -40001,
  ParseJson = -40002,
  ComputeSignature = -40003,
  IllegalAesKey = -40004,
  ValidateReceiveId = -40005,
  EncryptAes = -40006,
  DecryptAes = -40007,
  IllegalBuffer = -40008,
  EncodeBase64 = -40009,
  DecodeBase64 = -40010,
};

struct Decrypted {
  CryptoError error = CryptoError::Ok;
  std::string message;  // the msg part of the plaintext (valid when error == Ok)
};

/// The WeCom callback crypto scheme: SHA1 signature over sorted (token, timestamp, nonce,
/// encrypted), AES-256-CBC with IV = key[0..16), PKCS#7 padding to 32 bytes, plaintext
/// random(16) || be32 len || msg || receiveid. OpenSSL stays inside the .cpp.
/// Immutable after construction (but for its pool of random bytes); safe to share between
/// threads.
class WecomCrypto {
 public:
  /// Throws std::invalid_argument naming the problem when the EncodingAESKey is not 43 characters
  /// of [A-Za-z0-9] or does not decode to 32 bytes.
  WecomCrypto(std::string token, std::string_view encoding_aes_key, std::string receive_id);

  /// Lowercase hex SHA1 of the sorted concatenation.
  std::string signature(std::string_view timestamp, std::string_view nonce,
                        std::string_view encrypted) const;
  /// Constant-time comparison (CRYPTO_memcmp) of the expected signature with `msg_signature`.
  bool verify(std::string_view msg_signature, std::string_view timestamp, std::string_view nonce,
              std::string_view encrypted) const;
  /// Decrypts base64 `encrypted`, checks padding (every pad byte), length and receiveid.
  /// Does not check the signature: call verify first.
  Decrypted decrypt(std::string_view encrypted) const;
  /// Encrypts msg with the given 16 random bytes (tests pass a fixed prefix; production passes
  /// `random_prefix()`).
  std::string encrypt(std::string_view msg, std::string_view random16) const;
  /// 16 bytes from OpenSSL's RAND_bytes, cut from a block fetched for 256 of them.
  /// Thread-safe.
  std::string random_prefix() const;

  /// The JSON passive-reply envelope {"encrypt","msgsignature","timestamp","nonce"} for
  /// plaintext `reply`; timestamp is seconds, as a number.
  std::string reply_envelope(std::string_view reply, long long timestamp,
                             std::string_view nonce) const;

 private:
  std::string token_;
  std::string key_;  // 32 bytes
  std::string receive_id_;
  // SHA1 and AES-256-CBC fetched from OpenSSL's provider once: passing EVP_sha1() or
  // EVP_aes_256_cbc() instead makes OpenSSL 3 look the algorithm up again on every call (about
  // 3% of an event loop's time under load, BENCHMARKS.md §9). Shared, immutable, thread-safe.
  std::shared_ptr<evp_md_st> sha1_;
  std::shared_ptr<evp_cipher_st> aes_;
  // RAND_bytes costs about as much for 16 bytes as for 4 KiB, so replies take their prefixes
  // from one block (bench/callback_bench.cpp: 985 ns a prefix by RAND_bytes, 36 ns pooled;
  // about 3% of an event loop's time before). Shared by copies of this object.
  struct PrefixPool;
  std::shared_ptr<PrefixPool> prefixes_;
};

/// Standard base64 (with padding) via OpenSSL EVP; decode returns nullopt on malformed input.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace bot
