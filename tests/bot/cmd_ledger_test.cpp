#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bot/cli/cmd_ledger.h"
#include "tests/support/temp_dir.h"

using storage::Date;
using storage::Ledger;
using storage::LedgerRow;
using storage::Mode;

using bangfu_test::TempDir;

namespace {

LedgerRow row(Ledger l, const std::string& msgid) {
  LedgerRow r;
  r.msgid = msgid;
  r.helper_id = "zhangwei";
  r.helper_name = "张伟";
  r.ledger = l;
  r.unit = "区财政局";
  r.household_id = "GX0001";
  r.household_head = "王秀英";
  r.village = "张庄村";
  r.visit_date = Date{2026, 11, 26};
  r.mode = Mode::Visit;
  r.occasions = {"illness", "festival"};
  r.policies = {"medical_aid"};
  r.problems = {"腿疼", "屋顶漏水"};
  r.note = "送去棉被, 已联系村医";
  r.received_at = 1'795'000'000;
  return r;
}

std::string head_bytes(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

}  // namespace

TEST_CASE("Ledger cells follow the headers, in Chinese", "[bot]") {
  const auto& headers = bot::ledger_headers();
  REQUIRE(headers.size() == 18);
  CHECK(headers.front() == "消息ID");
  CHECK(headers[16] == "已撤销");
  CHECK(headers.back() == "状态");
  const auto cells = bot::ledger_cells(row(Ledger::Health, "m1"), 8 * 3600);
  REQUIRE(cells.size() == headers.size());
  CHECK(cells[0] == "m1");
  CHECK(cells[3] == "卫生");
  CHECK(cells[6] == "王秀英");  // the export is for the office: full names
  CHECK(cells[9] == "2026-11-26");
  CHECK(cells[10] == "走访");
  CHECK(cells[11] == "生病住院、传统节日");
  CHECK(cells[12] == "医疗救助");
  CHECK(cells[13] == "腿疼；屋顶漏水");
  CHECK(cells[15] == storage::LocalTime{1'795'000'000, 8 * 3600}.iso());
  CHECK(cells[16] == "否");
  CHECK(cells[17] == "有效");
  // A record replaced by 更正 is flagged as not counted, and says why.
  LedgerRow corrected = row(Ledger::Health, "m2");
  corrected.status = storage::CheckinStatus::Corrected;
  const auto flagged = bot::ledger_cells(corrected, 8 * 3600);
  CHECK(flagged[16] == "是");
  CHECK(flagged[17] == "已更正");
}

TEST_CASE("The ledger workbook is written as an xlsx file", "[bot]") {
  TempDir dir;
  const std::vector<std::vector<std::string>> summary = {
      {"台账", "单位", "排名", "应走访", "已走访", "未走访", "覆盖率"},
      {"区直", "区财政局", "1", "3", "2", "1", "66.7%"},
      {"区直", "合计", "", "3", "2", "1", "66.7%"}};
  const std::vector<LedgerRow> rows = {row(Ledger::Cadre, "m1"), row(Ledger::Health, "m2"),
                                       row(Ledger::Education, "m3")};
  for (bool one : {false, true}) {
    CAPTURE(one);
    const std::string path = dir.file(one ? "one.xlsx" : "all.xlsx");
    bot::write_ledger_xlsx(path, rows, one ? std::optional<Ledger>(Ledger::Cadre) : std::nullopt,
                           summary, 8 * 3600);
    REQUIRE(std::filesystem::exists(path));
    CHECK(head_bytes(path, 4) == std::string("PK\x03\x04", 4));  // a zip, as xlsx is
    CHECK(std::filesystem::file_size(path) > 4096);
  }
  CHECK_THROWS_AS(
      bot::write_ledger_xlsx(dir.file("missing/dir/x.xlsx"), rows, std::nullopt, summary, 8 * 3600),
      std::runtime_error);
}
