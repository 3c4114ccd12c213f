#include "bot/wecom/webhook_sender.h"

#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "bot/config.h"

namespace bot {
namespace {

using nlohmann::json;

constexpr const char* kCaBundle = "/etc/ssl/certs/ca-certificates.crt";

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]";
}

std::string redact(std::string s, const std::string& secret) {
  if (secret.empty()) return s;
  for (auto pos = s.find(secret); pos != std::string::npos; pos = s.find(secret, pos))
    s.replace(pos, secret.size(), "***");
  return s;
}

}  // namespace

WebhookSender::WebhookSender(const std::string& url, const std::string& key) {
  auto bad = [&key](const std::string& why) {
    return ConfigError("config key '" + key + "' " + why);
  };
  std::string scheme;
  if (url.rfind("https://", 0) == 0)
    scheme = "https";
  else if (url.rfind("http://", 0) == 0)
    scheme = "http";
  else
    throw bad("must start with https://");
  const size_t host_start = scheme.size() + 3;
  const size_t slash = url.find('/', host_start);
  if (slash == std::string::npos) throw bad("has no path (…/cgi-bin/webhook/send?key=…)");
  host_ = url.substr(host_start, slash - host_start);
  target_ = url.substr(slash);
  if (host_.empty() || host_.find_first_of("@ ") != std::string::npos)
    throw bad("has no usable host");
  // The host without the port, for the loopback check.
  std::string bare = host_;
  if (bare[0] != '[') {
    if (auto colon = bare.rfind(':'); colon != std::string::npos) bare = bare.substr(0, colon);
  } else if (auto close = bare.find(']'); close != std::string::npos) {
    bare = bare.substr(0, close + 1);
  }
  if (scheme == "http" && !is_loopback(bare))
    throw bad("must use https:// (plain http:// is allowed only to 127.0.0.1 or localhost)");
  origin_ = scheme + "://" + host_;
  if (auto k = target_.find("key="); k != std::string::npos) {
    key_ = target_.substr(k + 4);
    if (auto amp = key_.find('&'); amp != std::string::npos) key_.resize(amp);
  }
}

handlers::SendResult WebhookSender::post(const std::string& json_body) {
  handlers::SendResult r;
  httplib::Client client(origin_);
  client.set_connection_timeout(10, 0);
  client.set_write_timeout(10, 0);
  client.set_read_timeout(15, 0);
  client.set_follow_location(false);
  client.set_keep_alive(false);
  if (origin_.rfind("https://", 0) == 0) {
    client.enable_server_certificate_verification(true);
    // Debian's bundle of the system CA store; elsewhere OpenSSL's default paths are used.
    if (std::filesystem::exists(kCaBundle)) client.set_ca_cert_path(kCaBundle);
  }
  auto res = client.Post(target_, json_body, "application/json; charset=utf-8");
  if (!res) {
    const auto err = res.error();
    r.error = redact(httplib::to_string(err), key_);
    // Read: the whole request went out and no answer came back, so the robot may have posted
    // it. Every other failure happens before the request is complete (connect, TLS, write).
    r.maybe_delivered = err == httplib::Error::Read || err == httplib::Error::Unknown;
    return r;
  }
  r.http_status = res->status;
  if (res->status != 200) return r;
  const json j = json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("errcode") ||
      !j["errcode"].is_number_integer()) {
    r.error = "the answer is not the robot's JSON";
    return r;
  }
  r.errcode = j["errcode"].get<int>();
  if (auto m = j.find("errmsg"); m != j.end() && m->is_string())
    r.errmsg = redact(m->get<std::string>(), key_);
  return r;
}

}  // namespace bot
