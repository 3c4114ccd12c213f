#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "storage/date.h"

namespace handlers {

/// A date written in a check-in, found by `find_date`.
struct DateToken {
  /// Vague: the text names a time but not the day (11月, 上个月, 前几天, 月初, 上周): ask for it.
  /// Range: several days (12月1日至3日, 1-3号, 周一到周三): one check-in needs one day.
  enum class Status { Ok, Future, Invalid, Vague, Range };
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
/// time of day (下午2.30) are not dates at all. Also 上个月N号/上月N日/本月N号 (that month),
/// 前日 (-2), 大前日 (-3), 上上周X (two weeks back), 上个星期X. A range (12月1日至3日, 1-3号,
/// 周一到周三) is one Range token spanning it; an address number (3组12号) is no day. When no
/// exact date is written, the first vague one (11月, 11月份, 上个月, 上月底, 月初, 前几天, 上周,
/// 周末 …) is returned as Vague. Pure.
std::optional<DateToken> find_date(std::string_view text, storage::Date today);

/// Monday = 0 … Sunday = 6.
int weekday(storage::Date d);

}  // namespace handlers
