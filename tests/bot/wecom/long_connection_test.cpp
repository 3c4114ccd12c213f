#include "bot/wecom/long_connection.h"
#include "bot/wecom/long_connection_channel.h"

#include <catch2/catch.hpp>

using bot::wecom::parse_ws_url;
using bot::wecom::reconnect_delay;
using std::chrono::milliseconds;

TEST_CASE("wecom.ws_url: ws:// and wss:// with a host, default ports and targets", "[bot]") {
  auto [url, ok, tls, host, port, target] =
      GENERATE(table<std::string, bool, bool, std::string, std::string, std::string>({
          {"wss://openws.work.weixin.qq.com", true, true, "openws.work.weixin.qq.com", "443", "/"},
          {"wss://ws.example.gov.cn:8443/aibot?x=1", true, true, "ws.example.gov.cn", "8443",
           "/aibot?x=1"},
          {"ws://127.0.0.1:41234", true, false, "127.0.0.1", "41234", "/"},
          {"ws://localhost/", true, false, "localhost", "80", "/"},
          {"https://openws.work.weixin.qq.com", false, false, "", "", ""},
          {"ws://", false, false, "", "", ""},
          {"openws.work.weixin.qq.com", false, false, "", "", ""},
          {"", false, false, "", "", ""},
      }));
  CAPTURE(url);
  const auto u = parse_ws_url(url);
  REQUIRE(u.has_value() == ok);
  if (!ok) return;
  CHECK(u->tls == tls);
  CHECK(u->host == host);
  CHECK(u->port == port);
  CHECK(u->target == target);
}

TEST_CASE("Reconnect delays double from 1 s to 30 s, with jitter in [0.8, 1]", "[bot]") {
  const milliseconds lo{1000}, hi{30000};
  auto [attempt, jitter, expected] = GENERATE(table<int, double, int64_t>({
      {1, 1.0, 1000},  // never below the minimum, whatever the jitter
      {1, 0.8, 1000},
      {2, 1.0, 2000},
      {2, 0.8, 1600},
      {3, 0.9, 3600},
      {5, 1.0, 16000},
      {6, 1.0, 30000},  // 32 s capped at 30 s
      {6, 0.8, 24000},
      {40, 1.0, 30000},  // no overflow for a long outage
      {3, 5.0, 4000},    // jitter clamped to [0.8, 1]
      {3, 0.0, 3200},
  }));
  CAPTURE(attempt, jitter);
  CHECK(reconnect_delay(attempt, lo, hi, jitter).count() == expected);
}

TEST_CASE("aibot_send_msg acks as outbox results", "[bot]") {
  using S = bot::PostResult::Status;
  using Row = std::tuple<bool, std::optional<int>, S>;  // (written, errcode, status)
  auto [written, errcode, status] = GENERATE(table<bool, std::optional<int>, S>({
      Row{false, std::nullopt, S::Retry},   // never went out: safe to send again
      Row{true, std::nullopt, S::Unknown},  // went out, no ack: maybe posted, not resent
      Row{true, 0, S::Sent},
      Row{true, -1, S::Busy},
      Row{true, 45009, S::Retry},  // rate limited
      Row{true, 40058, S::Failed},
      Row{true, 93000, S::Failed},
  }));
  CAPTURE(written, errcode.value_or(-999));
  bot::wecom::RequestResult r;
  r.written = written;
  r.errcode = errcode;
  r.errmsg = "m";
  const auto p = bot::wecom::long_connection_result(r);
  CHECK(p.status == status);
  CHECK(p.errcode == errcode);
  if (errcode && *errcode != 0) CHECK(p.message == "errcode " + std::to_string(*errcode) + ": m");
}
