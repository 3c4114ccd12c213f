#include "bot/wecom/long_connection_channel.h"

#include <openssl/evp.h>

#include <boost/beast/core/detail/base64.hpp>
#include <stdexcept>

namespace bot::wecom {

using nlohmann::json;

namespace {

// Chunks of at most 512 KiB before base64, at most 100 of them (SDK uploadMedia).
constexpr size_t kChunkBytes = 512 * 1024;

std::string md5_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &n, EVP_md5(), nullptr) != 1)
    throw std::runtime_error("MD5 failed");
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

std::string base64(std::string_view bytes) {
  namespace b64 = boost::beast::detail::base64;
  std::string out(b64::encoded_size(bytes.size()), '\0');
  out.resize(b64::encode(out.data(), bytes.data(), bytes.size()));
  return out;
}

// An upload step that did not work: nothing was posted, so it is safe to try again later.
PostResult upload_failed(const std::string& step, const RequestResult& r) {
  PostResult p;
  p.status = PostResult::Status::Retry;
  p.errcode = r.errcode;
  p.message = "image upload (" + step + ") " +
              (r.errcode ? "errcode " + std::to_string(*r.errcode) + ": " + r.errmsg : r.error);
  return p;
}

}  // namespace

PostResult long_connection_result(const RequestResult& r) {
  PostResult p;
  p.errcode = r.errcode;
  if (!r.errcode) {
    p.status = r.written ? PostResult::Status::Unknown : PostResult::Status::Retry;
    p.message = r.error;
    return p;
  }
  const int code = *r.errcode;
  if (code == 0) {
    p.status = PostResult::Status::Sent;
    return p;
  }
  p.message = "errcode " + std::to_string(code) + ": " + r.errmsg;
  if (code == -1)
    p.status = PostResult::Status::Busy;
  else if (code == 45009)
    p.status = PostResult::Status::Retry;
  else
    p.status = PostResult::Status::Failed;
  return p;
}

LongConnectionChannel::LongConnectionChannel(LongConnection& link,
                                             std::chrono::milliseconds ack_timeout)
    : link_(link), ack_timeout_(ack_timeout) {}

PostResult LongConnectionChannel::post_markdown(const Target& target, std::string_view markdown) {
  if (target.chat_id.empty()) {
    PostResult p;
    p.status = PostResult::Status::Failed;
    p.message = "group '" + target.group + "' has no chat_id (websocket mode sends by chat_id)";
    return p;
  }
  return long_connection_result(link_.request("aibot_send_msg",
                                              {{"chatid", target.chat_id},
                                               {"msgtype", "markdown"},
                                               {"markdown", {{"content", std::string(markdown)}}}},
                                              ack_timeout_));
}

PostResult LongConnectionChannel::post_image(const Target& target, std::string_view png) {
  if (target.chat_id.empty()) return post_markdown(target, "");  // the same refusal
  const size_t chunks = (png.size() + kChunkBytes - 1) / kChunkBytes;
  if (chunks == 0 || chunks > 100) {
    PostResult p;
    p.status = PostResult::Status::Failed;
    p.message = "image of " + std::to_string(png.size()) + " bytes cannot be uploaded";
    return p;
  }
  const RequestResult init = link_.request("aibot_upload_media_init",
                                           {{"type", "image"},
                                            {"filename", "chart.png"},
                                            {"total_size", png.size()},
                                            {"total_chunks", chunks},
                                            {"md5", md5_hex(png)}},
                                           ack_timeout_);
  const std::string upload_id =
      init.body.is_object() && init.body.contains("upload_id") && init.body["upload_id"].is_string()
          ? init.body["upload_id"].get<std::string>()
          : "";
  if (!init.errcode || *init.errcode != 0 || upload_id.empty()) return upload_failed("init", init);
  for (size_t i = 0; i < chunks; ++i) {
    const RequestResult c =
        link_.request("aibot_upload_media_chunk",
                      {{"upload_id", upload_id},
                       {"chunk_index", i},
                       {"base64_data", base64(png.substr(i * kChunkBytes, kChunkBytes))}},
                      ack_timeout_);
    if (!c.errcode || *c.errcode != 0) return upload_failed("chunk", c);
  }
  const RequestResult fin =
      link_.request("aibot_upload_media_finish", {{"upload_id", upload_id}}, ack_timeout_);
  const std::string media_id =
      fin.body.is_object() && fin.body.contains("media_id") && fin.body["media_id"].is_string()
          ? fin.body["media_id"].get<std::string>()
          : "";
  if (!fin.errcode || *fin.errcode != 0 || media_id.empty()) return upload_failed("finish", fin);
  return long_connection_result(link_.request(
      "aibot_send_msg",
      {{"chatid", target.chat_id}, {"msgtype", "image"}, {"image", {{"media_id", media_id}}}},
      ack_timeout_));
}

}  // namespace bot::wecom
