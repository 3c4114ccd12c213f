#pragma once

#include <string>

#include "handlers/sender.h"

namespace bot {

/// Posts to the WeCom group robot webhook (docs/protocols.md "Group robot webhook") with
/// cpp-httplib. HTTPS with the server certificate and host name verified against the system CA
/// store; plain http:// only to 127.0.0.1, ::1 or localhost (local fakes in tests). No redirects.
/// Timeouts: 10 s to connect, 10 s to write, 15 s to read. The URL's key is a credential: it is
/// never logged and is blanked out of any error text this class returns.
/// Thread-safe (each post uses its own connection).
class WebhookSender : public handlers::Sender {
 public:
  /// Throws ConfigError (bot/config.h) naming the config key `key` for a URL it cannot use.
  explicit WebhookSender(const std::string& url, const std::string& key = "wecom.webhook_url");

  handlers::SendResult post(const std::string& json_body) override;

  /// The host (and port, if given), for logs. Never the path or the key.
  const std::string& host() const { return host_; }

 private:
  std::string origin_;  // scheme://host[:port]
  std::string target_;  // path?query, key included
  std::string host_;
  std::string key_;
};

}  // namespace bot
