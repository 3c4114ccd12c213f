#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "bot/cli/args.h"
#include "storage/model.h"

namespace bot {

/// `bangfu ledger export`: the month's check-ins (台账) as CSV, JSON or an Excel workbook.
int cmd_ledger_export(const Args& a, std::ostream& out, std::ostream& err);

/// The ledger's Chinese column headers, the same for CSV and XLSX.
const std::vector<std::string>& ledger_headers();
/// One ledger row as the cells under ledger_headers(); times in the zone `utc_offset_seconds`.
std::vector<std::string> ledger_cells(const storage::LedgerRow& r, int utc_offset_seconds);

/// The CSV export: a UTF-8 BOM (Excel in China needs it), the headers, one line per row.
std::string ledger_csv(const std::vector<storage::LedgerRow>& rows, int utc_offset_seconds);

/// Writes the workbook: one sheet per ledger (区直, 卫生, 教育; only `only` when given) holding
/// that ledger's rows, then the summary sheet 汇总 with `summary` (first row = headers; cells
/// that are whole numbers or "12.5%" are written as numbers). Throws std::runtime_error naming
/// the file when it cannot be written.
void write_ledger_xlsx(const std::string& path, const std::vector<storage::LedgerRow>& rows,
                       std::optional<storage::Ledger> only,
                       const std::vector<std::vector<std::string>>& summary,
                       int utc_offset_seconds);

}  // namespace bot
