#pragma once

// The office's read-only dashboard at /office/ (README "Office dashboard"), as one handler that
// knows nothing of the HTTP server: the server turns its request into a Request, calls
// Dashboard::handle and writes the Response back (bot/wecom/callback.cpp holds today's thin
// adapter). Sign-in, sessions, the wrong-password pause, the pages and the exports all live here.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bot/config.h"
#include "bot/office/auth.h"
#include "storage/store.h"

namespace bot::office {

/// One HTTP request as the dashboard sees it.
struct Request {
  std::string method;                             // "GET", "POST", …
  std::string path;                               // without the query string, e.g. "/office/units"
  std::multimap<std::string, std::string> query;  // decoded query parameters
  std::map<std::string, std::string> headers;     // names in lower case
  std::string body;                               // POST: application/x-www-form-urlencoded
  std::string remote_address;                     // the socket's peer address
  bool is_tls = false;                            // the connection itself is TLS

  std::string header(const std::string& lower_name) const;
  std::string query_value(const std::string& name) const;
};

/// The answer: status, headers (Content-Type, Location, Set-Cookie, …) and body.
struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first header of that name (case-sensitive as set here), or "".
  std::string header(const std::string& name) const;
};

/// Decodes application/x-www-form-urlencoded text ("a=1&b=%E7%8E%8B+x") into pairs; a malformed
/// %-escape is kept as it is. Pure.
std::multimap<std::string, std::string> parse_form(const std::string& text);

/// The dashboard. Templates (`<templates_dir>/office/*.mustache`, HTML-escaped) and the
/// stylesheet are loaded in the constructor, so a bad one stops start-up (throws
/// handlers::TemplateError). handle() is thread-safe. Holds references to `config` and `store`.
class Dashboard {
 public:
  Dashboard(const Config& config, storage::Store& store);
  ~Dashboard();

  /// Answers one request under /office/ at `now` (unix seconds). Never throws for bad input;
  /// infrastructure failures (the database) throw, for the server's exception handler.
  Response handle(const Request& req, int64_t now);

  /// The cookie that carries the session id.
  static constexpr const char* kCookie = "bangfu_office";

  struct Pages;  // the compiled templates (dashboard.cpp)

 private:
  Response login_page(const Request& req, int64_t now);
  Response login(const Request& req, int64_t now);
  Response logout(const Request& req);
  std::string client_address(const Request& req) const;
  bool secure(const Request& req) const;

  const Config& config_;
  storage::Store& store_;
  SessionStore sessions_;
  LoginLimiter limiter_;
  std::string dummy_hash_;  // verified against for unknown names, so they take as long
  std::unique_ptr<Pages> pages_;
};

}  // namespace bot::office
