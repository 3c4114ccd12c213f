#include "bot/http/message.h"

#include <boost/beast/core/string.hpp>
#include <boost/url/decode_view.hpp>
#include <boost/url/parse_query.hpp>

namespace bot::http {

std::optional<std::string> Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (boost::beast::iequals(k, name)) return v;
  return std::nullopt;
}

std::string Request::param(std::string_view name) const {
  if (query.empty()) return {};
  // The query alone: a callback looks up three parameters, and parsing the whole target for
  // each was 3% of the event loops' time.
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return {};
  // '+' reads as a space, as HTML forms send it. (Decoded here from the encoded view: in Boost
  // 1.81, params_view::find() drops the view's space-as-plus option.)
  const boost::urls::encoding_opts plus_is_space(true);
  for (const auto& p : *parsed)
    if (boost::urls::decode_view(p.key, plus_is_space) == name)  // compared without a copy
      return p.has_value ? p.value.decode(plus_is_space) : "";
  return {};
}

Response Response::with(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", std::move(content_type));
  return r;
}

void Response::set_header(std::string name, std::string value) {
  for (auto& [k, v] : headers)
    if (boost::beast::iequals(k, name)) {
      v = std::move(value);
      return;
    }
  headers.emplace_back(std::move(name), std::move(value));
}

}  // namespace bot::http
