#include "storage/date.h"

#include <cstdio>

namespace storage {
namespace {

// Howard Hinnant's days_from_civil / civil_from_days, valid for the whole proleptic calendar.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return !s.empty();
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

}  // namespace

int days_in_month(int year, int month) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return 0;
  if (month == 2) {
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return leap ? 29 : 28;
  }
  return kDays[month - 1];
}

std::optional<Date> Date::make(int y, int m, int d) {
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return std::nullopt;
  return Date{y, m, d};
}

std::optional<Date> Date::parse_iso(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  auto y = s.substr(0, 4), m = s.substr(5, 2), d = s.substr(8, 2);
  if (!digits(y) || !digits(m) || !digits(d)) return std::nullopt;
  return make(to_int(y), to_int(m), to_int(d));
}

Date Date::from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return Date{static_cast<int>(y + (m <= 2)), static_cast<int>(m), static_cast<int>(d)};
}

int64_t Date::days() const {
  return days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
}

std::string Date::iso() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  return buf;
}

std::optional<Month> Month::parse(std::string_view s) {
  if (s.size() != 7 || s[4] != '-') return std::nullopt;
  auto y = s.substr(0, 4), m = s.substr(5, 2);
  if (!digits(y) || !digits(m)) return std::nullopt;
  const int yy = to_int(y), mm = to_int(m);
  if (yy < 1 || mm < 1 || mm > 12) return std::nullopt;
  return Month{yy, mm};
}

std::string Month::str() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
  return buf;
}

Date LocalTime::date() const {
  return Date::from_days(floor_div(unix_seconds + utc_offset_seconds, 86400));
}

int LocalTime::hour() const {
  const int64_t local = unix_seconds + utc_offset_seconds;
  return static_cast<int>((local - floor_div(local, 86400) * 86400) / 3600);
}

int LocalTime::minute() const {
  const int64_t local = unix_seconds + utc_offset_seconds;
  return static_cast<int>((local - floor_div(local, 3600) * 3600) / 60);
}

std::string LocalTime::iso() const {
  const int64_t local = unix_seconds + utc_offset_seconds;
  const int64_t sod = local - floor_div(local, 86400) * 86400;
  const int off = utc_offset_seconds < 0 ? -utc_offset_seconds : utc_offset_seconds;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02d%c%02d:%02d", date().iso().c_str(),
                static_cast<int>(sod / 3600), static_cast<int>(sod % 3600 / 60),
                static_cast<int>(sod % 60), utc_offset_seconds < 0 ? '-' : '+', off / 3600,
                off % 3600 / 60);
  return buf;
}

std::optional<LocalTime> LocalTime::parse(std::string_view s, int default_offset_seconds) {
  if (s.size() < 19 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  auto d = Date::parse_iso(s.substr(0, 10));
  auto hh = s.substr(11, 2), mi = s.substr(14, 2), ss = s.substr(17, 2);
  if (!d || !digits(hh) || !digits(mi) || !digits(ss)) return std::nullopt;
  const int h = to_int(hh), m = to_int(mi), sec = to_int(ss);
  if (h > 23 || m > 59 || sec > 59) return std::nullopt;
  int offset = default_offset_seconds;
  auto rest = s.substr(19);
  if (rest == "Z") {
    offset = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
             digits(rest.substr(1, 2)) && digits(rest.substr(4, 2))) {
    offset = (to_int(rest.substr(1, 2)) * 3600 + to_int(rest.substr(4, 2)) * 60) *
             (rest[0] == '-' ? -1 : 1);
  } else if (!rest.empty()) {
    return std::nullopt;
  }
  const int64_t local = d->days() * 86400 + h * 3600 + m * 60 + sec;
  return LocalTime{local - offset, offset};
}

}  // namespace storage
