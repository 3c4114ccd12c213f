#include "storage/utf8.h"

#include <catch2/catch.hpp>

using storage::invalid_utf8_at;
using storage::replace_invalid_utf8;

TEST_CASE("UTF-8 is checked strictly: where it breaks, or nothing", "[storage]") {
  CHECK_FALSE(invalid_utf8_at("").has_value());
  CHECK_FALSE(invalid_utf8_at("走访 王秀英户 ok \xF0\x9F\x98\x80").has_value());
  CHECK(invalid_utf8_at("ab\xC0\xAF") == 2u);        // overlong '/'
  CHECK(invalid_utf8_at("\xED\xA0\x80") == 0u);      // a surrogate
  CHECK(invalid_utf8_at("\xF4\x90\x80\x80") == 0u);  // above U+10FFFF
  CHECK(invalid_utf8_at("王\xE7\x8E") == 3u);        // cut in the middle of a character
  CHECK(invalid_utf8_at("\xD5\xC5\xCE\xB0") == 0u);  // 张伟 in GBK
}

TEST_CASE("Bytes that break UTF-8 are each replaced by U+FFFD, the rest kept", "[storage]") {
  CHECK(replace_invalid_utf8("王秀英") == "王秀英");
  CHECK(replace_invalid_utf8("") == "");
  CHECK(replace_invalid_utf8("a\xFF"
                             "b") ==
        "a\uFFFD"
        "b");
  CHECK(replace_invalid_utf8("王\xE7\x8E") == "王\uFFFD\uFFFD");
  const std::string fixed = replace_invalid_utf8("\xD5\xC5\xCE\xB0 到访");
  CHECK_FALSE(invalid_utf8_at(fixed).has_value());
  CHECK(fixed.ends_with(" 到访"));
}
