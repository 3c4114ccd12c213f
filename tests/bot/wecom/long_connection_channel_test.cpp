// The long connection as an outbound channel, against a small WebSocket server on 127.0.0.1 (an
// OS-assigned port) that speaks the protocol's acks (Boost.Beast, synchronous, on its own thread).
// The integration tests (tests/integration/wecom_ws.test.mjs) drive the whole service; this
// checks the channel's frames and what each kind of ack means for the outbox.
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <catch2/catch.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "bot/log.h"
#include "bot/wecom/long_connection.h"
#include "bot/wecom/long_connection_channel.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using nlohmann::json;
using tcp = asio::ip::tcp;

// Accepts one connection; acks aibot_subscribe, ping and the media upload; acks aibot_send_msg
// with `send_errcode`, or not at all when `ack_sends` is false. Records every frame.
class FakeServer {
 public:
  FakeServer() : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  // The client has stopped by now, so serve() has returned; only if it has not (a failed test)
  // are the sockets closed under it.
  ~FakeServer() {
    for (int i = 0; i < 200 && !done_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!done_) {
      boost::system::error_code ec;
      acceptor_.close(ec);
      socket_.shutdown(tcp::socket::shutdown_both, ec);
    }
    thread_.join();
  }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_); }
  std::vector<json> frames(const std::string& cmd) {
    std::lock_guard lock(mu_);
    std::vector<json> out;
    for (const auto& f : frames_)
      if (f.value("cmd", "") == cmd) out.push_back(f);
    return out;
  }
  std::atomic<int> send_errcode{0};
  std::atomic<bool> ack_sends{true};

 private:
  void serve() {
    try {
      acceptor_.accept(socket_);
      websocket::stream<tcp::socket&> ws(socket_);
      ws.accept();
      for (;;) {
        beast::flat_buffer buf;
        ws.read(buf);
        const json f = json::parse(beast::buffers_to_string(buf.data()));
        {
          std::lock_guard lock(mu_);
          frames_.push_back(f);
        }
        const std::string cmd = f.value("cmd", "");
        json ack = {{"headers", f["headers"]}, {"errcode", 0}, {"errmsg", "ok"}};
        if (cmd == "aibot_send_msg") {
          if (!ack_sends) continue;
          ack["errcode"] = send_errcode.load();
          if (send_errcode != 0) ack["errmsg"] = "refused";
        } else if (cmd == "aibot_upload_media_init") {
          ack["body"] = {{"upload_id", "up-1"}};
        } else if (cmd == "aibot_upload_media_finish") {
          ack["body"] = {{"media_id", "media-1"}, {"type", "image"}};
        }
        ws.text(true);
        ws.write(asio::buffer(ack.dump()));
      }
    } catch (const std::exception&) {
      // the client went away
    }
    done_ = true;
  }
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  tcp::socket socket_{ioc_};
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::vector<json> frames_;
};

}  // namespace

TEST_CASE("Long connection channel: aibot_send_msg frames and what each ack means", "[bot]") {
  FakeServer server;
  std::ostringstream log_text;
  bot::StreamLogger log(log_text);
  bot::wecom::LongConnectionOptions o;
  o.url = server.url();
  o.bot_id = "aibBOT";
  o.secret = "s3cret";
  o.connect_timeout = std::chrono::seconds(5);
  bot::wecom::LongConnection link(
      o, [](const std::string&, const std::string&, const json&) { return std::nullopt; }, log);
  link.start();
  bot::wecom::LongConnectionChannel channel(link, std::chrono::milliseconds(300));
  const bot::Target group{"高新扶贫", "wrkCHAT", ""};
  using S = bot::PostResult::Status;

  // The first post waits for the subscribe instead of failing at once.
  auto r = channel.post_markdown(group, "**通报**");
  CHECK(r.status == S::Sent);
  auto sends = server.frames("aibot_send_msg");
  REQUIRE(sends.size() == 1);
  CHECK(sends[0]["body"] == json{{"chatid", "wrkCHAT"},
                                 {"msgtype", "markdown"},
                                 {"markdown", {{"content", "**通报**"}}}});
  CHECK(sends[0]["headers"]["req_id"].get<std::string>().rfind("aibot_send_msg_", 0) == 0);
  CHECK(server.frames("aibot_subscribe").at(0)["body"] ==
        json{{"bot_id", "aibBOT"}, {"secret", "s3cret"}});

  // A reminder: markdown with <@userid> mentions.
  CHECK(channel.post_text(group, "请尽快走访", {"zhangwei"}).sent());
  CHECK(server.frames("aibot_send_msg").at(1)["body"]["markdown"]["content"] ==
        "请尽快走访\n<@zhangwei>");

  // A chart: init → chunk → finish, then an image message with the media_id.
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(1000, 'x');
  CHECK(channel.post_image(group, png).sent());
  const auto init = server.frames("aibot_upload_media_init").at(0)["body"];
  CHECK(init["type"] == "image");
  CHECK(init["total_size"] == png.size());
  CHECK(init["total_chunks"] == 1);
  CHECK(server.frames("aibot_upload_media_chunk").at(0)["body"]["upload_id"] == "up-1");
  CHECK(server.frames("aibot_send_msg").at(2)["body"] ==
        json{{"chatid", "wrkCHAT"}, {"msgtype", "image"}, {"image", {{"media_id", "media-1"}}}});

  server.send_errcode = 40058;
  r = channel.post_markdown(group, "x");
  CHECK(r.status == S::Failed);
  CHECK(r.message == "errcode 40058: refused");

  server.send_errcode = 0;
  server.ack_sends = false;  // written, never acked: maybe posted
  CHECK(channel.post_markdown(group, "y").status == S::Unknown);

  // A group without chat_id cannot be reached this way: failed, nothing sent.
  const size_t before = server.frames("aibot_send_msg").size();
  CHECK(channel.post_markdown(bot::Target{"无群号", "", ""}, "z").status == S::Failed);
  CHECK(server.frames("aibot_send_msg").size() == before);

  link.stop();
  // Stopped: nothing is written, so the outbox may send it again later.
  CHECK(channel.post_markdown(group, "w").status == S::Retry);
  CHECK(log_text.str().find("s3cret") == std::string::npos);
}
