// libFuzzer target: the roster CSV reader (storage::parse_roster_csv): encoding detection (UTF-8,
// BOM, GBK), RFC 4180 quoting, headers in Chinese or English, dates. It must never throw, and a
// file with errors must say which line.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "storage/roster_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const storage::RosterParse r = storage::parse_roster_csv(bytes);
  for (const auto& e : r.errors)
    if (e.line < 0 || e.message.empty()) __builtin_trap();
  for (const auto& p : r.rows)
    if (p.helper_id.empty() || p.household_id.empty()) __builtin_trap();
  return 0;
}
