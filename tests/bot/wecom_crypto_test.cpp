#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bot/wecom/crypto.h"

CATCH_REGISTER_ENUM(bot::CryptoError, bot::CryptoError::Ok, bot::CryptoError::ValidateSignature,
                    bot::CryptoError::ParseJson, bot::CryptoError::ComputeSignature,
                    bot::CryptoError::IllegalAesKey, bot::CryptoError::ValidateReceiveId,
                    bot::CryptoError::EncryptAes, bot::CryptoError::DecryptAes,
                    bot::CryptoError::IllegalBuffer, bot::CryptoError::EncodeBase64,
                    bot::CryptoError::DecodeBase64)

using bot::CryptoError;
using bot::WecomCrypto;

namespace {

// wecom-official-verifyurl-1 and aibot-selfgen-verifyurl from wecom-vectors.json, spelled out so
// the tables below can build rows from them.
constexpr const char* kToken = "QDG6eK";
constexpr const char* kKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
constexpr const char* kCorpId = "wx5823bf96d3bd56c7";
constexpr const char* kTs = "1409659589";
constexpr const char* kNonce = "263014780";
constexpr const char* kSig = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3";
constexpr const char* kEcho =
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
constexpr const char* kEchoUrlEncoded =
    "P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%"
    "3D%3D";
constexpr const char* kEchoPlain = "1616140317555161061";
constexpr const char* kAibotEcho =
    "7ho9XWI/HTOA1L6oduAxX/Yeg69HEu+O2Rd09glYBE7zLDvLUzGMnz+39I9oxJG+jU5YzFDqanvDwitqlmRkbg==";
constexpr const char* kAibotEchoPlain = "5927782489442352469";

constexpr const char* kPrefix = "0123456789abcdef";

nlohmann::json load_vectors() {
  std::ifstream in(BANGFU_SOURCE_DIR "/tests/data/wecom-vectors.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

std::string unhex(const std::string& hex) {
  REQUIRE(hex.size() % 2 == 0);
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string to_upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string replace_all(std::string s, char from, char to) {
  for (char& c : s) c = c == from ? to : c;
  return s;
}

// "hello" sealed for receiveid "": plaintext = prefix(16) 00000005 "hello" 07*7, i.e. exactly
// two AES blocks C0 C1. In CBC, xor-ing C0[j] flips plaintext byte 16+j and only garbles the
// random prefix, so the rows below can set the length and padding bytes precisely.
std::string hello_ciphertext() {
  return *bot::base64_decode(WecomCrypto(kToken, kKey, "").encrypt("hello", kPrefix));
}

std::string hello_with_c0_xor(const std::vector<std::pair<std::size_t, unsigned char>>& flips) {
  std::string bytes = hello_ciphertext();
  for (auto [pos, mask] : flips) bytes.at(pos) = static_cast<char>(bytes.at(pos) ^ mask);
  return bot::base64_encode(bytes);
}

}  // namespace

TEST_CASE("WeCom vectors: signature, plaintext and byte-exact re-encryption", "[bot]") {
  const nlohmann::json vectors = load_vectors().at("wecom");
  REQUIRE_FALSE(vectors.empty());
  std::set<std::string> kinds;
  for (const nlohmann::json& v : vectors) {
    const auto id = v.at("id").get<std::string>();
    const auto kind = v.at("kind").get<std::string>();
    CAPTURE(id, kind);
    kinds.insert(kind);
    std::string encrypted;
    if (kind == "verify_url") {
      encrypted = v.at("echostr").get<std::string>();
    } else if (kind == "decrypt") {
      encrypted = v.at("encrypt").get<std::string>();
    } else {
      FAIL("unknown vector kind");
    }
    const auto timestamp = v.at("timestamp").get<std::string>();
    const auto nonce = v.at("nonce").get<std::string>();
    const auto msg_signature = v.at("msg_signature").get<std::string>();
    const auto plaintext = v.at("expected_plaintext").get<std::string>();
    const auto receive_id = v.at("receiveid").get<std::string>();
    const WecomCrypto crypto(v.at("token").get<std::string>(),
                             v.at("encoding_aes_key").get<std::string>(), receive_id);

    CHECK(crypto.signature(timestamp, nonce, encrypted) == msg_signature);
    CHECK(crypto.verify(msg_signature, timestamp, nonce, encrypted));
    CHECK_FALSE(crypto.verify(to_upper(msg_signature), timestamp, nonce, encrypted));

    const bot::Decrypted d = crypto.decrypt(encrypted);
    CHECK(d.error == CryptoError::Ok);
    CHECK(d.message == plaintext);

    if (v.contains("random_prefix_hex")) {
      const std::string prefix = unhex(v.at("random_prefix_hex").get<std::string>());
      CHECK(crypto.encrypt(plaintext, prefix) == encrypted);
    }
    if (v.contains("sort_str_as_published_prefix")) {
      // The doc prints the start of the sorted concatenation; our sort must agree.
      std::vector<std::string> parts{v.at("token").get<std::string>(), timestamp, nonce, encrypted};
      std::sort(parts.begin(), parts.end());
      std::string joined;
      for (const auto& p : parts) joined += p;
      std::string published = v.at("sort_str_as_published_prefix").get<std::string>();
      published = published.substr(0, published.find("..."));
      CHECK(joined.substr(0, published.size()) == published);
    }

    const WecomCrypto other_receiver(v.at("token").get<std::string>(),
                                     v.at("encoding_aes_key").get<std::string>(),
                                     receive_id.empty() ? "x" : "");
    CHECK(other_receiver.decrypt(encrypted).error == CryptoError::ValidateReceiveId);
  }
  CHECK(kinds == std::set<std::string>{"decrypt", "verify_url"});
}

TEST_CASE("WeCom passive reply vectors and reply_envelope", "[bot]") {
  const nlohmann::json replies = load_vectors().at("wecom_reply");
  REQUIRE_FALSE(replies.empty());
  for (const nlohmann::json& v : replies) {
    CAPTURE(v.at("id").get<std::string>());
    const auto token = v.at("token").get<std::string>();
    const auto key = v.at("encoding_aes_key").get<std::string>();
    const auto receive_id = v.at("receiveid").get<std::string>();
    const auto timestamp = v.at("timestamp").get<std::string>();
    const auto nonce = v.at("nonce").get<std::string>();
    const auto plaintext = v.at("plaintext").get<std::string>();
    const auto expected_encrypt = v.at("expected_encrypt").get<std::string>();
    const WecomCrypto crypto(token, key, receive_id);

    const std::string prefix = unhex(v.at("random_prefix_hex").get<std::string>());
    CHECK(crypto.encrypt(plaintext, prefix) == expected_encrypt);
    CHECK(crypto.signature(timestamp, nonce, expected_encrypt) ==
          v.at("expected_msgsignature").get<std::string>());
    CHECK(crypto.decrypt(expected_encrypt).message == plaintext);

    const std::string body = crypto.reply_envelope(plaintext, std::stoll(timestamp), nonce);
    CAPTURE(body);
    const auto envelope = nlohmann::ordered_json::parse(body);
    const auto encrypted = envelope.at("encrypt").get<std::string>();
    const auto msg_signature = envelope.at("msgsignature").get<std::string>();
    CHECK(envelope.at("timestamp").is_number_integer());

    // Byte for byte the published body, except the random-dependent fields.
    auto expected =
        nlohmann::ordered_json::parse(v.at("expected_response_body").get<std::string>());
    expected["encrypt"] = encrypted;
    expected["msgsignature"] = msg_signature;
    CHECK(body == expected.dump());

    CHECK(crypto.verify(msg_signature, timestamp, nonce, encrypted));
    const bot::Decrypted d = crypto.decrypt(encrypted);
    CHECK(d.error == CryptoError::Ok);
    CHECK(d.message == plaintext);

    CHECK_FALSE(WecomCrypto(token + "x", key, receive_id)
                    .verify(msg_signature, timestamp, nonce, encrypted));
    CHECK(WecomCrypto(token, key, receive_id + "x").decrypt(encrypted).error ==
          CryptoError::ValidateReceiveId);
    CHECK(crypto.reply_envelope(plaintext, std::stoll(timestamp), nonce) != body);
  }
}

TEST_CASE("verify accepts only the exact lowercase signature", "[bot]") {
  auto [why, token, sig, ts, nonce, encrypted,
        ok] = GENERATE(table<const char*, std::string, std::string, std::string, std::string,
                             std::string, bool>({
      {"published signature", kToken, kSig, kTs, kNonce, kEcho, true},
      {"timestamp and nonce swapped (the sort makes order irrelevant)", kToken, kSig, kNonce, kTs,
       kEcho, true},
      {"uppercase hex", kToken, "5C45FF5E21C57E6AD56BAC8758B79B1D9AC89FD3", kTs, kNonce, kEcho,
       false},
      {"last hex digit changed", kToken, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4", kTs, kNonce,
       kEcho, false},
      {"truncated to 39 digits", kToken, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd", kTs, kNonce,
       kEcho, false},
      {"extra trailing digit", kToken, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd30", kTs, kNonce,
       kEcho, false},
      {"trailing newline", kToken, "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3\n", kTs, kNonce, kEcho,
       false},
      {"empty signature", kToken, "", kTs, kNonce, kEcho, false},
      {"wrong token", "QDG6eL", kSig, kTs, kNonce, kEcho, false},
      {"timestamp changed", kToken, kSig, "1409659590", kNonce, kEcho, false},
      {"nonce changed", kToken, kSig, kTs, "263014781", kEcho, false},
      {"ciphertext tampered", kToken, kSig, kTs, kNonce,
       "Q9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
       false},
      {"echostr not URL-decoded", kToken, kSig, kTs, kNonce, kEchoUrlEncoded, false},
  }));
  CAPTURE(why, sig, ts, nonce, encrypted);
  CHECK(WecomCrypto(token, kKey, kCorpId).verify(sig, ts, nonce, encrypted) == ok);
}

TEST_CASE("decrypt returns the matching error for malformed input", "[bot]") {
  using Make = std::string (*)();
  auto [why, make, expected] = GENERATE(table<const char*, Make, CryptoError>({
      {"untouched (control)", [] { return hello_with_c0_xor({}); }, CryptoError::Ok},
      {"empty", [] { return std::string(); }, CryptoError::DecodeBase64},
      {"not base64", [] { return std::string("@@@@"); }, CryptoError::DecodeBase64},
      {"truncated base64",
       [] {
         const std::string s = kEcho;
         return s.substr(0, s.size() - 1);
       },
       CryptoError::DecodeBase64},
      {"trailing newline", [] { return std::string(kEcho) + "\n"; }, CryptoError::DecodeBase64},
      {"still URL-encoded", [] { return std::string(kEchoUrlEncoded); },
       CryptoError::DecodeBase64},
      {"'+' turned into a space", [] { return replace_all(kEcho, '+', ' '); },
       CryptoError::DecodeBase64},
      {"'=' inside the text", [] { return std::string("AA==AAAA"); }, CryptoError::DecodeBase64},
      {"three '='", [] { return std::string("A==="); }, CryptoError::DecodeBase64},
      {"3 bytes", [] { return std::string("AAAA"); }, CryptoError::DecryptAes},
      {"16 bytes (one AES block)",
       [] { return bot::base64_encode(hello_ciphertext().substr(0, 16)); },
       CryptoError::DecryptAes},
      {"48 bytes", [] { return bot::base64_encode(hello_ciphertext() + std::string(16, 'x')); },
       CryptoError::DecryptAes},
      {"last pad byte 0", [] { return hello_with_c0_xor({{15, 0x07}}); }, CryptoError::DecryptAes},
      {"last pad byte 33", [] { return hello_with_c0_xor({{15, 0x07 ^ 33}}); },
       CryptoError::DecryptAes},
      {"last pad byte 8 over a message byte", [] { return hello_with_c0_xor({{15, 0x07 ^ 8}}); },
       CryptoError::DecryptAes},
      {"first pad byte wrong, last one right", [] { return hello_with_c0_xor({{9, 0x01}}); },
       CryptoError::DecryptAes},
      {"msg_len one past the buffer", [] { return hello_with_c0_xor({{3, 5 ^ 6}}); },
       CryptoError::IllegalBuffer},
      {"msg_len 0xffffffff",
       [] { return hello_with_c0_xor({{0, 0xff}, {1, 0xff}, {2, 0xff}, {3, 5 ^ 0xff}}); },
       CryptoError::IllegalBuffer},
      {"plaintext 19 bytes after unpadding",
       [] {
         std::vector<std::pair<std::size_t, unsigned char>> flips{{3, 5 ^ 13}};
         const std::string hello = "hello";
         for (std::size_t i = 0; i < hello.size(); ++i) {
           flips.emplace_back(4 + i, static_cast<unsigned char>(hello[i] ^ 13));
         }
         for (std::size_t i = 9; i < 16; ++i) flips.emplace_back(i, 7 ^ 13);
         return hello_with_c0_xor(flips);
       },
       CryptoError::IllegalBuffer},
      {"msg_len one short: last byte becomes receiveid",
       [] { return hello_with_c0_xor({{3, 5 ^ 4}}); }, CryptoError::ValidateReceiveId},
  }));
  const std::string input = make();
  CAPTURE(why, input);
  const bot::Decrypted d = WecomCrypto(kToken, kKey, "").decrypt(input);
  CHECK(d.error == expected);
  if (expected == CryptoError::Ok) {
    CHECK(d.message == "hello");
  } else {
    CHECK(d.message.empty());
  }
}

TEST_CASE("decrypt compares the receiveid exactly", "[bot]") {
  auto [configured, encrypted, expected] = GENERATE(table<std::string, std::string, CryptoError>({
      {kCorpId, kEcho, CryptoError::Ok},
      {"", kEcho, CryptoError::ValidateReceiveId},
      {"wx5823bf96d3bd56c", kEcho, CryptoError::ValidateReceiveId},
      {"wx5823bf96d3bd56c7 ", kEcho, CryptoError::ValidateReceiveId},
      {"WX5823BF96D3BD56C7", kEcho, CryptoError::ValidateReceiveId},
      {std::string("wx5823bf96d3bd56c7\0", 19), kEcho, CryptoError::ValidateReceiveId},
      {"", kAibotEcho, CryptoError::Ok},
      {kCorpId, kAibotEcho, CryptoError::ValidateReceiveId},
      {" ", kAibotEcho, CryptoError::ValidateReceiveId},
  }));
  CAPTURE(configured, encrypted);
  const bot::Decrypted d = WecomCrypto(kToken, kKey, configured).decrypt(encrypted);
  CHECK(d.error == expected);
  if (expected == CryptoError::Ok) {
    CHECK(d.message == (encrypted == kEcho ? kEchoPlain : kAibotEchoPlain));
  }
}

TEST_CASE("decrypt rejects every truncation of a valid ciphertext", "[bot]") {
  const std::string echo = kEcho;
  const WecomCrypto crypto(kToken, kKey, kCorpId);
  for (std::size_t n = 0; n < echo.size(); ++n) {
    CAPTURE(n);
    CHECK(crypto.decrypt(echo.substr(0, n)).error != CryptoError::Ok);
  }
  CHECK(crypto.decrypt(echo).error == CryptoError::Ok);
}

TEST_CASE("EncodingAESKey must be 43 alphanumerics; spare bits are ignored", "[bot]") {
  SECTION("malformed keys throw") {
    const std::string key = kKey;
    auto [why, bad] = GENERATE_COPY(table<const char*, std::string>({
        {"empty", ""},
        {"42 characters", key.substr(0, 42)},
        {"44 characters", key + "A"},
        {"44 characters with the '=' already added", key + "="},
        {"'+' inside", "+" + key.substr(1)},
        {"'/' inside", "/" + key.substr(1)},
        {"'=' as the 43rd character", key.substr(0, 42) + "="},
        {"space inside", " " + key.substr(1)},
        {"non-ASCII byte", "\xff" + key.substr(1)},
    }));
    CAPTURE(why, bad);
    CHECK_THROWS_AS(WecomCrypto(kToken, bad, ""), std::invalid_argument);
  }
  SECTION("the last character's two spare bits do not change the key") {
    auto [last, same_key] = GENERATE(table<char, bool>({
        {'A', true},   // spare bits 00
        {'B', true},   // 01
        {'C', true},   // 10, as published
        {'D', true},   // 11
        {'E', false},  // a different key
    }));
    std::string key = kKey;
    key.back() = last;
    CAPTURE(key);
    const bot::Decrypted d = WecomCrypto(kToken, key, kCorpId).decrypt(kEcho);
    CHECK((d.error == CryptoError::Ok && d.message == kEchoPlain) == same_key);
  }
}

TEST_CASE("encrypt and decrypt round-trip UTF-8, empty and block-aligned messages", "[bot]") {
  auto [why, msg, receive_id] = GENERATE(table<const char*, std::string, std::string>({
      {"empty message, AI bot", "", ""},
      {"empty message, corp", "", kCorpId},
      {"Chinese text, AI bot", "走访 王秀英户 今天 送去棉被", ""},
      {"Chinese text, corp", "已记录：王秀英户 走访（今天）", kCorpId},
      {"12 bytes: a full 32-byte pad block", "hello, world", ""},
      {"13 bytes", "hello, world!", ""},
      {"embedded NUL", std::string("a\0b", 3), ""},
      {"5000 bytes", std::string(5000, 'x'), kCorpId},
  }));
  CAPTURE(why, msg.size(), receive_id);
  const WecomCrypto crypto(kToken, kKey, receive_id);
  const std::string prefix = crypto.random_prefix();
  REQUIRE(prefix.size() == 16);

  const std::string encrypted = crypto.encrypt(msg, prefix);
  const std::optional<std::string> raw = bot::base64_decode(encrypted);
  REQUIRE(raw);
  CHECK(raw->size() % 32 == 0);
  CHECK(raw->size() > 20 + msg.size() + receive_id.size());
  CHECK(raw->size() <= 20 + msg.size() + receive_id.size() + 32);

  const bot::Decrypted d = crypto.decrypt(encrypted);
  CHECK(d.error == CryptoError::Ok);
  CHECK(d.message == msg);

  CHECK(crypto.encrypt(msg, prefix) == encrypted);
  CHECK(crypto.encrypt(msg, crypto.random_prefix()) != encrypted);
  CHECK(WecomCrypto(kToken, kKey, receive_id + "x").decrypt(encrypted).error ==
        CryptoError::ValidateReceiveId);
}

TEST_CASE("Reply envelopes each get fresh random bytes, across refills and threads", "[bot]") {
  // The prefixes come 256 to a block: 2 × 400 envelopes cross three refills.
  const WecomCrypto crypto(kToken, kKey, "");
  std::vector<std::string> prefixes[2];
  std::vector<int> bad(2, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k)
    threads.emplace_back([&, k] {
      for (int i = 0; i < 400; ++i) {
        const auto envelope =
            nlohmann::json::parse(crypto.reply_envelope("已记下", 1765000000, "n1"));
        const std::string encrypted = envelope.at("encrypt").get<std::string>();
        if (crypto.decrypt(encrypted).message != "已记下") ++bad[k];
        // AES-CBC with a fixed IV: the first block of ciphertext is the prefix's alone.
        prefixes[k].push_back(bot::base64_decode(encrypted)->substr(0, 16));
      }
    });
  for (auto& th : threads) th.join();
  CHECK(bad == std::vector<int>{0, 0});
  std::set<std::string> distinct(prefixes[0].begin(), prefixes[0].end());
  distinct.insert(prefixes[1].begin(), prefixes[1].end());
  CHECK(distinct.size() == 800);
}

TEST_CASE("encrypt insists on a 16-byte random prefix", "[bot]") {
  const WecomCrypto crypto(kToken, kKey, "");
  CHECK_THROWS_AS(crypto.encrypt("hi", "0123456789abcde"), std::invalid_argument);
  CHECK_THROWS_AS(crypto.encrypt("hi", "0123456789abcdefg"), std::invalid_argument);
  CHECK_NOTHROW(crypto.encrypt("hi", kPrefix));
}

TEST_CASE("base64 is standard, padded and strict except for spare bits", "[bot]") {
  auto [text, expected] = GENERATE(table<std::string, std::optional<std::string>>({
      {"", std::string()},
      {"Zg==", std::string("f")},
      {"Zm8=", std::string("fo")},
      {"Zm9v", std::string("foo")},
      {"AP8=", std::string("\0\xff", 2)},
      {"Zh==", std::string("f")},  // non-zero spare bits accepted
      {"Zg=", std::nullopt},
      {"Zg", std::nullopt},
      {"Z===", std::nullopt},
      {"====", std::nullopt},
      {"=Zg=", std::nullopt},
      {"Zg==Zg==", std::nullopt},
      {"Zm9v\n", std::nullopt},
      {" Zm9v", std::nullopt},
      {"Zm-v", std::nullopt},
      {"Zm_v", std::nullopt},
      {std::string("Zm\0v", 4), std::nullopt},
  }));
  CAPTURE(text);
  CHECK(bot::base64_decode(text) == expected);
}

TEST_CASE("base64_encode matches the standard alphabet and round-trips", "[bot]") {
  CHECK(bot::base64_encode("") == "");
  CHECK(bot::base64_encode("f") == "Zg==");
  CHECK(bot::base64_encode("fo") == "Zm8=");
  CHECK(bot::base64_encode("foo") == "Zm9v");
  CHECK(bot::base64_encode(std::string("\xfb\xff", 2)) == "+/8=");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  CHECK(bot::base64_decode(bot::base64_encode(all)) == all);
}
