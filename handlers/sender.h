#pragma once

#include <optional>
#include <string>

namespace handlers {

/// What one POST to the group robot came to. WeCom answers errors with HTTP 200 and a non-zero
/// `errcode` (docs/protocols.md "Group robot webhook"), so a result carries both layers.
struct SendResult {
  int http_status = 0;           // 0: no HTTP response at all (see `error`)
  std::string error;             // transport or parse failure, "" when a JSON answer was read
  bool maybe_delivered = false;  // the request was written but no answer came back: the robot
                                 // may have posted it (a read failure), so it is not safe to resend
  std::optional<int> errcode;    // from the JSON answer; 0 means posted
  std::string errmsg;

  bool ok() const { return http_status == 200 && errcode && *errcode == 0; }
};

/// Posts one message body (the JSON of a WeCom robot message) to the group. Implemented in bot/
/// over HTTPS (bot/wecom/webhook_sender.h); tests record calls instead. Failures are values, never
/// exceptions. Implementations say whether they are thread-safe; the outbox worker calls from one
/// thread at a time.
class Sender {
 public:
  virtual ~Sender() = default;
  virtual SendResult post(const std::string& json_body) = 0;
};

}  // namespace handlers
