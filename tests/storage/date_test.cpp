#include <catch2/catch.hpp>

#include "storage/date.h"

using storage::Date;
using storage::LocalTime;
using storage::Month;

TEST_CASE("Date validates calendar dates", "[storage]") {
  auto [text, ok] = GENERATE(table<const char*, bool>({
      {"2026-11-28", true},
      {"2024-02-29", true},
      {"2026-02-29", false},
      {"2026-13-01", false},
      {"2026-04-31", false},
      {"2026-11-5", false},
      {"20261128xx", false},
  }));
  CAPTURE(text);
  CHECK(Date::parse_iso(text).has_value() == ok);
}

TEST_CASE("Date round-trips through day numbers", "[storage]") {
  for (int64_t d = -800; d < 40000; d += 37) {
    CAPTURE(d);
    REQUIRE(Date::from_days(d).days() == d);
  }
  CHECK(Date{1970, 1, 1}.days() == 0);
  CHECK(Date{2026, 11, 28}.plus_days(5).iso() == "2026-12-03");
  CHECK(Month{2026, 1}.prev().str() == "2025-12");
}

TEST_CASE("LocalTime reads offsets and gives the local date", "[storage]") {
  auto t = LocalTime::parse("2026-11-28T23:30:00+08:00", 0);
  REQUIRE(t);
  CHECK(t->unix_seconds == 1795879800);
  CHECK(t->date().iso() == "2026-11-28");
  CHECK(t->iso() == "2026-11-28T23:30:00+08:00");
  auto utc = LocalTime{t->unix_seconds, 0};
  CHECK(utc.date().iso() == "2026-11-28");
  CHECK(utc.hour() == 15);
  auto z = LocalTime::parse("2026-11-28T20:00:00Z", 8 * 3600);
  REQUIRE(z);
  CHECK((LocalTime{z->unix_seconds, 8 * 3600}.date().iso()) == "2026-11-29");
  CHECK_FALSE(LocalTime::parse("2026-11-28T25:00:00", 0));
  CHECK_FALSE(LocalTime::parse("2026-11-28T10:00:00+8", 0));
}
