#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "storage/model.h"

namespace storage {

struct RosterError {
  int line = 0;  // 1-based line number in the file (the header is line 1)
  std::string
      message;  // Chinese, says what to fix, e.g. "第3行：台账“区县”无法识别，应为 区直/卫生/教育"
};

struct RosterParse {
  std::vector<Pairing> rows;  // valid rows, in file order (ids 0)
  std::vector<RosterError> errors;
  std::string encoding;  // "utf-8", "utf-8-bom" or "gbk": what was detected
};

/// Reads a roster CSV (RFC 4180 quoting; UTF-8 with or without BOM, or GBK/GB18030 as saved by
/// Excel in China, detected and converted with iconv). Headers in Chinese or English, any order;
/// see README "Roster". Pure: no I/O. Never throws on bad input; every problem is an error entry.
/// A caller must import nothing if `errors` is non-empty.
RosterParse parse_roster_csv(std::string_view bytes);

/// One CSV field as the reader above reads it back (RFC 4180): as it is, or in double quotes with
/// inner quotes doubled when it holds a comma, a quote or a line break. Pure.
std::string csv_quote(const std::string& v);

}  // namespace storage
