// The WeCom callback's per-message work that is not HTTP, SQL or understanding: the JSON
// (reading the envelope and the message in it, writing the answer and the envelope around it;
// Boost.JSON, what bot/wecom does, against nlohmann/json, what it did until 2026-12) and the
// random bytes of each reply; and the crypto of one callback and its answer. See BENCHMARKS.md §9.
#include <benchmark/benchmark.h>
#include <openssl/rand.h>

#include <boost/json.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "bot/wecom/callback.h"
#include "bot/wecom/crypto.h"

namespace {

// Shapes and sizes as WeCom sends them: a 44-byte message encrypts to about 620 base64
// characters; a helper's check-in and the bot's answer are a few dozen Chinese characters.
const std::string kEnvelope = R"({"encrypt":")" + std::string(620, 'A') + R"("})";
const std::string kMessage =
    R"({"msgid":"m1-12345","aibotid":"AIBOT","chatid":"CHAT1","chattype":"group",)"
    R"("from":{"userid":"d00121"},"msgtype":"text",)"
    R"("text":{"content":"@帮扶助手 去了张德福家，送去棉被，聊了聊今年的收成"}})";
const std::string kAnswer = "已记下：张*福户 12月6日 走访。本月已走访 1 次。有问题可直接回复。";
const std::string kBase64(700, 'B');

void BM_ReadEnvelope_Nlohmann(benchmark::State& state) {
  for (auto _ : state) {
    const auto j = nlohmann::json::parse(kEnvelope, nullptr, false);
    benchmark::DoNotOptimize(j["encrypt"].get_ref<const std::string&>().size());
  }
}
BENCHMARK(BM_ReadEnvelope_Nlohmann);

void BM_ReadEnvelope_Bangfu(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(bot::envelope_encrypt(kEnvelope));
}
BENCHMARK(BM_ReadEnvelope_Bangfu);

void BM_ReadMessage_Nlohmann(benchmark::State& state) {
  for (auto _ : state) {
    const auto j = nlohmann::json::parse(kMessage, nullptr, false);
    benchmark::DoNotOptimize(j["text"]["content"].get_ref<const std::string&>().size());
  }
}
BENCHMARK(BM_ReadMessage_Nlohmann);

void BM_ReadMessage_Bangfu(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(bot::parse_callback_message(kMessage));
}
BENCHMARK(BM_ReadMessage_Bangfu);

void BM_WriteAnswer_Nlohmann(benchmark::State& state) {
  for (auto _ : state) {
    const nlohmann::json j = {
        {"msgtype", "stream"},
        {"stream", {{"id", "m1-12345"}, {"finish", true}, {"content", kAnswer}}}};
    benchmark::DoNotOptimize(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}
BENCHMARK(BM_WriteAnswer_Nlohmann);

void BM_WriteAnswer_Boost(benchmark::State& state) {
  for (auto _ : state) {
    boost::json::object stream{{"id", "m1-12345"}, {"finish", true}, {"content", kAnswer}};
    benchmark::DoNotOptimize(boost::json::serialize(
        boost::json::object{{"msgtype", "stream"}, {"stream", std::move(stream)}}));
  }
}
BENCHMARK(BM_WriteAnswer_Boost);

void BM_WriteEnvelope_Nlohmann(benchmark::State& state) {
  for (auto _ : state) {
    nlohmann::ordered_json e;
    e["encrypt"] = kBase64;
    e["msgsignature"] = std::string(40, 'f');
    e["timestamp"] = 1765000000LL;
    e["nonce"] = "n1234567";
    benchmark::DoNotOptimize(e.dump());
  }
}
BENCHMARK(BM_WriteEnvelope_Nlohmann);

void BM_WriteEnvelope_Boost(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(
        boost::json::serialize(boost::json::object{{"encrypt", kBase64},
                                                   {"msgsignature", std::string(40, 'f')},
                                                   {"timestamp", 1765000000LL},
                                                   {"nonce", "n1234567"}}));
}
BENCHMARK(BM_WriteEnvelope_Boost);

// A reply's 16 random bytes: RAND_bytes per reply (before) and cut from a pooled block (now).
void BM_RandomPrefix_RandBytes(benchmark::State& state) {
  for (auto _ : state) {
    std::string prefix(16, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(prefix.data()), 16);
    benchmark::DoNotOptimize(prefix);
  }
}
BENCHMARK(BM_RandomPrefix_RandBytes);

void BM_RandomPrefix_Pooled(benchmark::State& state) {
  const bot::WecomCrypto crypto("token", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "");
  for (auto _ : state) benchmark::DoNotOptimize(crypto.random_prefix());
}
BENCHMARK(BM_RandomPrefix_Pooled);

// The crypto of one callback and its answer, as the endpoint does it: the signature checked,
// the message decrypted, the answer (the stream JSON around kAnswer) encrypted and signed into
// its envelope. A floor for any server of this protocol (BENCHMARKS.md §9, "What 60 µs leaves").
void BM_CallbackCrypto(benchmark::State& state) {
  const bot::WecomCrypto crypto("token", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "");
  const std::string encrypted = crypto.encrypt(kMessage, crypto.random_prefix());
  const std::string signature = crypto.signature("1765000000", "n1234567", encrypted);
  const std::string answer = boost::json::serialize(boost::json::object{
      {"msgtype", "stream"},
      {"stream", boost::json::object{{"id", "m1-12345"}, {"finish", true}, {"content", kAnswer}}}});
  for (auto _ : state) {
    if (!crypto.verify(signature, "1765000000", "n1234567", encrypted)) {
      state.SkipWithError("the signature did not verify");
      break;
    }
    benchmark::DoNotOptimize(crypto.decrypt(encrypted).message.size());
    benchmark::DoNotOptimize(crypto.reply_envelope(answer, 1765000000, "n1234567"));
  }
}
BENCHMARK(BM_CallbackCrypto);

}  // namespace
