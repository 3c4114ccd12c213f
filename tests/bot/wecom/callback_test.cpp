#include "bot/wecom/callback.h"

#include <catch2/catch.hpp>
#include <string>

using bot::envelope_encrypt;
using bot::parse_callback_message;

TEST_CASE("A callback's envelope gives its encrypt field, and nothing else passes", "[bot]") {
  CHECK(envelope_encrypt(R"({"encrypt":"QUJD+/=="})") == "QUJD+/==");
  CHECK(envelope_encrypt(" {\"encrypt\" : \"x\"}\n") == "x");
  CHECK(envelope_encrypt(R"({"ToUserName":"a","encrypt":"x","AgentID":"1"})") == "x");
  // Not an envelope: each gets a 400 from the callback.
  const auto bad = GENERATE(as<std::string>{}, "", "hello", "[]", R"("encrypt")",
                            R"({"encrypt":1})", R"({"Encrypt":"x"})", R"({"encrypt":"x"} trailing)",
                            R"({"encrypt":"x")", "{\"encrypt\":\"\xC0\xAF\"}");
  CAPTURE(bad);
  CHECK_FALSE(envelope_encrypt(bad).has_value());
}

TEST_CASE("A callback message's fields are read, and one of the wrong type reads as absent",
          "[bot]") {
  const auto m = parse_callback_message(
      R"({"msgid":"m1","aibotid":"B","chatid":"C1","chattype":"group","from":{"userid":"u1"},)"
      R"("msgtype":"text","text":{"content":"走访 王秀英户 今天"}})");
  REQUIRE(m);
  CHECK(m->msgid == "m1");
  CHECK(m->userid == "u1");
  CHECK(m->chatid == "C1");
  CHECK(m->chattype == "group");
  CHECK(m->msgtype == "text");
  CHECK(m->text == "走访 王秀英户 今天");

  const auto odd = parse_callback_message(
      R"({"msgid":7,"from":"u1","msgtype":"text","text":{"content":["x"]},"chatid":null})");
  REQUIRE(odd);
  CHECK(odd->msgid.empty());
  CHECK(odd->userid.empty());
  CHECK(odd->chatid.empty());
  CHECK_FALSE(odd->text.has_value());

  const auto event = parse_callback_message(
      R"({"msgid":"e1","msgtype":"event","event":{"eventtype":"enter_chat"},"from":{"userid":"u"}})");
  REQUIRE(event);
  CHECK(event->event_type == "enter_chat");
  CHECK_FALSE(event->text.has_value());

  const auto stream = parse_callback_message(R"({"msgtype":"stream","stream":{"id":"s-9"}})");
  REQUIRE(stream);
  CHECK(stream->stream_id == "s-9");
}

TEST_CASE("A mixed message's text items are joined, images and empty items left out", "[bot]") {
  const auto m = parse_callback_message(
      R"({"msgid":"m2","msgtype":"mixed","from":{"userid":"u1"},"mixed":{"msg_item":[)"
      R"({"msgtype":"text","text":{"content":"走访 王秀英户"}},)"
      R"({"msgtype":"image","image":{"url":"https://example.invalid/1.jpg"}},)"
      R"({"msgtype":"text","text":{"content":""}},"not an item",)"
      R"({"msgtype":"text","text":{"content":"送去棉被"}}]}})");
  REQUIRE(m);
  CHECK(m->text == "走访 王秀英户 送去棉被");

  const auto images_only = parse_callback_message(
      R"({"msgtype":"mixed","mixed":{"msg_item":[{"msgtype":"image","image":{}}]}})");
  REQUIRE(images_only);
  CHECK(images_only->text == "");
  const auto no_items = parse_callback_message(R"({"msgtype":"mixed","mixed":{"msg_item":{}}})");
  REQUIRE(no_items);
  CHECK_FALSE(no_items->text.has_value());
}

TEST_CASE("A callback message that is not one JSON object is refused, however it is broken",
          "[bot]") {
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "{\"a\":";
  const auto bad = GENERATE_COPY(as<std::string>{}, "", "null", "[{\"msgid\":\"m\"}]",
                                 "{\"msgid\":", "{\"msgid\":\"m\"}{}", "{\"msgid\":\"\xFF\"}",
                                 "{\"msgid\":\"m\",}", deep);
  CAPTURE(bad.substr(0, 40));
  CHECK_FALSE(parse_callback_message(bad).has_value());
}
