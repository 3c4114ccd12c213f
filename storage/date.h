#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace storage {

/// A civil (proleptic Gregorian) calendar date with no time zone. A plain value:
/// comparisons order by calendar. Construct through `Date::make` to get validation.
struct Date {
  int year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31

  auto operator<=>(const Date&) const = default;

  /// The date if (y, m, d) is a real calendar date (so 2026-02-29 is nullopt).
  static std::optional<Date> make(int y, int m, int d);
  /// Parses exactly "YYYY-MM-DD"; nullopt for anything else or an impossible date.
  static std::optional<Date> parse_iso(std::string_view s);
  /// Days since 1970-01-01 (negative before it) <-> date.
  static Date from_days(int64_t days);
  int64_t days() const;

  /// "YYYY-MM-DD".
  std::string iso() const;
  Date plus_days(int64_t n) const { return from_days(days() + n); }
};

int days_in_month(int year, int month);

/// A calendar month, e.g. 2026-11.
struct Month {
  int year = 1970;
  int month = 1;
  auto operator<=>(const Month&) const = default;
  static std::optional<Month> parse(std::string_view s);  // "YYYY-MM"
  static Month of(Date d) { return {d.year, d.month}; }
  Date first() const { return {year, month, 1}; }
  Date last() const { return {year, month, days_in_month(year, month)}; }
  Month prev() const { return month == 1 ? Month{year - 1, 12} : Month{year, month - 1}; }
  Month next() const { return month == 12 ? Month{year + 1, 1} : Month{year, month + 1}; }
  std::string str() const;  // "YYYY-MM"
};

/// A point in time as seconds since the Unix epoch plus the fixed UTC offset (seconds) of the
/// configured zone. China has kept UTC+8 without daylight saving since 1991, so a fixed offset
/// is exact for the zones we serve; see bot/config for how a zone name maps to an offset.
struct LocalTime {
  int64_t unix_seconds = 0;
  int utc_offset_seconds = 8 * 3600;

  Date date() const;
  int hour() const;
  int minute() const;
  /// "YYYY-MM-DDTHH:MM:SS+08:00".
  std::string iso() const;
  /// Parses "YYYY-MM-DDTHH:MM:SS" followed by "Z" or "+HH:MM"/"-HH:MM"; without an offset the
  /// time is read in `default_offset_seconds`.
  static std::optional<LocalTime> parse(std::string_view s, int default_offset_seconds);
};

}  // namespace storage
