#include "bot/cli/cmd_ledger.h"

#include <xlsxwriter.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "bot/config.h"
#include "bot/wecom/callback.h"
#include "handlers/bulletin.h"
#include "handlers/bulletin_stats.h"
#include "handlers/labels.h"
#include "handlers/text.h"
#include "storage/roster_csv.h"
#include "storage/store.h"

namespace bot {
namespace {

using handlers::join;
using nlohmann::json;

std::string csv_line(const std::vector<std::string>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i) line += ',';
    line += storage::csv_quote(cells[i]);
  }
  return line + "\r\n";
}

// libxlsxwriter writes the file in workbook_close, which also frees the workbook; the owner
// closes it once, and a workbook abandoned by an exception is closed (and its file removed).
struct WorkbookCloser {
  void operator()(lxw_workbook* wb) const { workbook_close(wb); }
};
using Workbook = std::unique_ptr<lxw_workbook, WorkbookCloser>;

void check(lxw_error e, const std::string& path) {
  if (e != LXW_NO_ERROR) throw std::runtime_error("cannot write " + path + ": " + lxw_strerror(e));
}

bool whole_number(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "91.7%" → 917 (tenths of a percent), as handlers::percent_text writes them.
std::optional<int> permille_of(const std::string& s) {
  if (s.size() < 4 || s.back() != '%' || s[s.size() - 3] != '.') return std::nullopt;
  const std::string whole = s.substr(0, s.size() - 3), tenth = s.substr(s.size() - 2, 1);
  if (!whole_number(whole) || !whole_number(tenth)) return std::nullopt;
  return std::stoi(whole) * 10 + std::stoi(tenth);
}

void write_sheet(lxw_workbook* wb, const char* name,
                 const std::vector<std::vector<std::string>>& table, lxw_format* header,
                 lxw_format* percent, bool numbers, const std::string& path) {
  lxw_worksheet* ws = workbook_add_worksheet(wb, name);
  if (!ws) throw std::runtime_error("cannot add sheet " + std::string(name) + " to " + path);
  for (size_t r = 0; r < table.size(); ++r) {
    for (size_t c = 0; c < table[r].size(); ++c) {
      const auto row = static_cast<lxw_row_t>(r);
      const auto col = static_cast<lxw_col_t>(c);
      const std::string& v = table[r][c];
      if (r == 0) {
        check(worksheet_write_string(ws, row, col, v.c_str(), header), path);
      } else if (numbers && whole_number(v)) {
        check(worksheet_write_number(ws, row, col, std::stod(v), nullptr), path);
      } else if (auto pm = numbers ? permille_of(v) : std::nullopt) {
        // The shown value exactly (917 → 0.917 with format 0.0%), not a recomputed float.
        check(worksheet_write_number(ws, row, col, *pm / 1000.0, percent), path);
      } else if (!v.empty()) {
        check(worksheet_write_string(ws, row, col, v.c_str(), nullptr), path);
      }
    }
  }
  if (!table.empty()) {
    worksheet_set_column(ws, 0, static_cast<lxw_col_t>(table[0].size() - 1), 14, nullptr);
    worksheet_freeze_panes(ws, 1, 0);
  }
}

}  // namespace

const std::vector<std::string>& ledger_headers() {
  static const std::vector<std::string> kHeaders = {
      "消息ID",   "帮扶人ID", "帮扶人", "台账", "单位", "户编号", "户主",     "帮扶对象", "村居",
      "走访日期", "方式",     "五必访", "政策", "问题", "备注",   "收到时间", "已撤销",   "状态"};
  return kHeaders;
}

std::vector<std::string> ledger_cells(const storage::LedgerRow& r, int utc_offset_seconds) {
  std::vector<std::string> occ, pol;
  for (const auto& o : r.occasions) occ.emplace_back(handlers::occasion_label(o));
  for (const auto& p : r.policies) pol.emplace_back(handlers::policy_label(p));
  return {r.msgid,
          r.helper_id,
          r.helper_name,
          std::string(storage::ledger_label(r.ledger)),
          r.unit,
          r.household_id,
          r.household_head,
          r.person,
          r.village,
          r.visit_date.iso(),
          std::string(handlers::mode_label(r.mode)),
          join(occ, "、"),
          join(pol, "、"),
          join(r.problems, "；"),
          r.note,
          storage::LocalTime{r.received_at, utc_offset_seconds}.iso(),
          r.undone() ? "是" : "否",
          std::string(handlers::checkin_status_label(r.status))};
}

std::string ledger_csv(const std::vector<storage::LedgerRow>& rows, int utc_offset_seconds) {
  // Excel in China opens UTF-8 CSV correctly only with a BOM.
  std::string text = "\xEF\xBB\xBF" + csv_line(ledger_headers());
  for (const auto& r : rows) text += csv_line(ledger_cells(r, utc_offset_seconds));
  return text;
}

void write_ledger_xlsx(const std::string& path, const std::vector<storage::LedgerRow>& rows,
                       std::optional<storage::Ledger> only,
                       const std::vector<std::vector<std::string>>& summary,
                       int utc_offset_seconds) {
  Workbook wb(workbook_new(path.c_str()));
  if (!wb) throw std::runtime_error("cannot create " + path);
  try {
    lxw_format* header = workbook_add_format(wb.get());
    format_set_bold(header);
    lxw_format* percent = workbook_add_format(wb.get());
    format_set_num_format(percent, "0.0%");
    for (storage::Ledger l :
         {storage::Ledger::Cadre, storage::Ledger::Health, storage::Ledger::Education}) {
      if (only && *only != l) continue;
      std::vector<std::vector<std::string>> table = {ledger_headers()};
      for (const auto& r : rows)
        if (r.ledger == l) table.push_back(ledger_cells(r, utc_offset_seconds));
      // Ledger cells stay text (IDs and dates must not turn into numbers).
      write_sheet(wb.get(), std::string(storage::ledger_label(l)).c_str(), table, header, percent,
                  false, path);
    }
    write_sheet(wb.get(), "汇总", summary, header, percent, true, path);
  } catch (...) {
    wb.reset();  // closes (writes) the workbook; then the partial file goes
    std::remove(path.c_str());
    throw;
  }
  check(workbook_close(wb.release()), path);
}

int cmd_ledger_export(const Args& a, std::ostream& out, std::ostream&) {
  const Config config = load_config(a.need("config"));
  const auto month = storage::Month::parse(a.need("month"));
  if (!month) throw UsageError("--month must look like 2026-11");
  std::optional<storage::Ledger> only;
  if (auto l = a.get("ledger")) {
    only = storage::ledger_from(*l);
    if (!only || *l != storage::ledger_code(*only))
      throw UsageError("--ledger must be cadre, health or education");
  }
  const std::string format = a.need("format");
  if (format != "csv" && format != "json" && format != "xlsx")
    throw UsageError("--format must be csv, json or xlsx");
  if (format == "xlsx" && !a.get("out"))
    throw UsageError("--format xlsx needs --out FILE.xlsx (a workbook is binary, not for stdout)");

  storage::Store store(config.database);
  const auto rows = store.ledger(*month, only);
  const int offset = config.utc_offset_seconds;

  if (format == "xlsx") {
    const storage::LocalTime now{system_clock_seconds(), offset};
    const auto figures = handlers::monthly_figures(store, *month, only, config.bulletin, now);
    const std::string path = *a.get("out");
    write_ledger_xlsx(path, rows, only, handlers::coverage_summary_rows(figures), offset);
    out << "wrote " << rows.size() << " check-ins to " << path << "\n";
    return 0;
  }

  std::string text;
  if (format == "json") {
    json arr = json::array();
    for (const auto& r : rows) {
      arr.push_back({{"msgid", r.msgid},
                     {"helper_id", r.helper_id},
                     {"helper_name", r.helper_name},
                     {"ledger", std::string(storage::ledger_code(r.ledger))},
                     {"unit", r.unit},
                     {"household_id", r.household_id},
                     {"household_head", r.household_head},
                     {"person", r.person.empty() ? json(nullptr) : json(r.person)},
                     {"village", r.village},
                     {"visit_date", r.visit_date.iso()},
                     {"mode", std::string(storage::mode_code(r.mode))},
                     {"occasions", r.occasions},
                     {"policies", r.policies},
                     {"problems", r.problems},
                     {"note", r.note},
                     {"received_at", storage::LocalTime{r.received_at, offset}.iso()},
                     {"undone", r.undone()},
                     {"status", std::string(storage::checkin_status_code(r.status))}});
    }
    text = arr.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  } else {
    text = ledger_csv(rows, offset);
  }
  if (auto path = a.get("out")) {
    std::ofstream f(*path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot write " + *path);
    f << text;
    out << "wrote " << rows.size() << " check-ins to " << *path << "\n";
  } else {
    out << text;
  }
  return 0;
}

}  // namespace bot
