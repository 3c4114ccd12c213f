#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "storage/date.h"

namespace handlers {

/// A date written in a check-in, found by `find_date`.
struct DateToken {
  enum class Status { Ok, Future, Invalid };
  std::size_t begin = 0;  // byte span of the token in the text
  std::size_t end = 0;
  Status status = Status::Ok;
  storage::Date date;  // the resolved date (Ok, Future)
  int year = 0;        // Invalid: the date as resolved, for the message (month may be 13)
  int month = 0;
  int day = 0;
};

/// Finds the first (leftmost) date in normalized text (ASCII digits) relative to `today`:
/// 今天/今日/昨天/昨日/前天/大前天 (明天/后天 are Future); 上周五, 本周三, bare 周五/星期五 (the
/// latest such day not after today); 2026-11-03, 2026年11月3日, 2026.11.3, 2026/11/3;
/// 11月26日, 11月25号, 11月26; 11.20, 11/21, 11-20; bare 26号/26日; Chinese numerals
/// (十一月二十日, 十一月廿日, 二十六号). Without a year, a month after today's month is last year;
/// a bare day after today's day is last month. Dates written with 月/日/号 or a year that do not
/// exist are Invalid; dotted/slashed forms that do not make a real date (2.30, 36.5, 130/80)
/// and numbers followed by a unit (1.5小时, 3.5斤) or preceded by a measurement (血糖7.8) or a
/// time of day (下午2.30) are not dates at all. Pure.
std::optional<DateToken> find_date(std::string_view text, storage::Date today);

/// Monday = 0 … Sunday = 6.
int weekday(storage::Date d);

}  // namespace handlers
