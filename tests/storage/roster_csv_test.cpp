#include <catch2/catch.hpp>

#include <iconv.h>

#include <cerrno>
#include <string>

#include "storage/roster_csv.h"

using storage::Date;
using storage::Ledger;
using storage::parse_roster_csv;
using storage::RosterParse;

namespace {

const std::string kHeader =
    "帮扶人ID,帮扶人,手机,台账,单位,户编号,户主,帮扶对象,对象类别,村居,街道,结对日期,结束日期\n";
const std::string kRows =
    "u001,张伟,13800000001,区直,区发改局,H001,王秀英,,,张庄村,高新街道,2026-01-01,\n"
    "u002,李娜,13800000002,卫生,区人民医院,H002,李德明,李小花,患病,李村,高新街道,,\n"
    "u003,赵敏,,教育,实验中学,H003,刘大山,刘洋,学生,刘庄村,高新街道,2026-09-01,2027-07-01\n";

// UTF-8 -> GBK with the iconv API, so the test file is real GBK bytes.
std::string to_gbk(const std::string& utf8) {
  struct Cd {
    iconv_t cd = iconv_open("GBK", "UTF-8");
    ~Cd() {
      if (cd != reinterpret_cast<iconv_t>(-1)) iconv_close(cd);
    }
  } cd;
  REQUIRE(cd.cd != reinterpret_cast<iconv_t>(-1));
  std::string out(utf8.size() * 2 + 4, '\0');
  char* src = const_cast<char*>(utf8.data());
  size_t src_left = utf8.size();
  char* dst = out.data();
  size_t dst_left = out.size();
  REQUIRE(iconv(cd.cd, &src, &src_left, &dst, &dst_left) != static_cast<size_t>(-1));
  out.resize(out.size() - dst_left);
  return out;
}

std::string errors_of(const RosterParse& r) {
  std::string s;
  for (const auto& e : r.errors) s += std::to_string(e.line) + " " + e.message + "\n";
  return s;
}

void check_three_rows(const RosterParse& r) {
  INFO(errors_of(r));
  REQUIRE(r.errors.empty());
  REQUIRE(r.rows.size() == 3);
  const auto& a = r.rows[0];
  CHECK(a.id == 0);
  CHECK(a.helper_id == "u001");
  CHECK(a.helper_name == "张伟");
  CHECK(a.phone == "13800000001");
  CHECK(a.ledger == Ledger::Cadre);
  CHECK(a.unit == "区发改局");
  CHECK(a.household_id == "H001");
  CHECK(a.household_head == "王秀英");
  CHECK(a.person.empty());
  CHECK(a.person_category.empty());
  CHECK(a.village == "张庄村");
  CHECK(a.street == "高新街道");
  CHECK(a.start_date == Date{2026, 1, 1});
  CHECK_FALSE(a.end_date);
  const auto& b = r.rows[1];
  CHECK(b.ledger == Ledger::Health);
  CHECK(b.person == "李小花");
  CHECK(b.person_category == "患病");
  CHECK_FALSE(b.start_date);
  const auto& c = r.rows[2];
  CHECK(c.ledger == Ledger::Education);
  CHECK(c.phone.empty());
  CHECK(c.person_category == "学生");
  CHECK(c.start_date == Date{2026, 9, 1});
  CHECK(c.end_date == Date{2027, 7, 1});
}

}  // namespace

TEST_CASE("Roster CSV reads a UTF-8 file with Chinese headers", "[storage]") {
  auto r = parse_roster_csv(kHeader + kRows);
  CHECK(r.encoding == "utf-8");
  check_three_rows(r);
}

TEST_CASE("Roster CSV strips a UTF-8 BOM before the first header", "[storage]") {
  auto r = parse_roster_csv("\xEF\xBB\xBF" + kHeader + kRows);
  CHECK(r.encoding == "utf-8-bom");
  check_three_rows(r);
}

TEST_CASE("Roster CSV reads CRLF line endings", "[storage]") {
  std::string crlf;
  for (char c : kHeader + kRows) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  check_three_rows(parse_roster_csv(crlf));
}

TEST_CASE("Roster CSV converts GBK as Excel in China saves it", "[storage]") {
  SECTION("a whole file converted with iconv") {
    const std::string gbk = to_gbk(kHeader + kRows);
    REQUIRE(gbk != kHeader + kRows);
    auto r = parse_roster_csv(gbk);
    CHECK(r.encoding == "gbk");
    check_three_rows(r);
  }
  SECTION("fixed GBK bytes") {
    // 帮扶人ID,帮扶人,台账,单位,户编号,户主,村居 / u1,张伟,区直,区发改局,H1,王秀英,张庄村
    const std::string gbk =
        "\xb0\xef\xb7\xf6\xc8\xcb\x49\x44\x2c\xb0\xef\xb7\xf6\xc8\xcb\x2c\xcc\xa8\xd5\xcb\x2c\xb5"
        "\xa5\xce\xbb\x2c\xbb\xa7\xb1\xe0\xba\xc5\x2c\xbb\xa7\xd6\xf7\x2c\xb4\xe5\xbe\xd3\x0a"
        "\x75\x31\x2c\xd5\xc5\xce\xb0\x2c\xc7\xf8\xd6\xb1\x2c\xc7\xf8\xb7\xa2\xb8\xc4\xbe\xd6\x2c"
        "\x48\x31\x2c\xcd\xf5\xd0\xe3\xd3\xa2\x2c\xd5\xc5\xd7\xaf\xb4\xe5\x0a";
    auto r = parse_roster_csv(gbk);
    INFO(errors_of(r));
    CHECK(r.encoding == "gbk");
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows[0].helper_name == "张伟");
    CHECK(r.rows[0].ledger == Ledger::Cadre);
    CHECK(r.rows[0].unit == "区发改局");
    CHECK(r.rows[0].household_head == "王秀英");
    CHECK(r.rows[0].village == "张庄村");
  }
}

TEST_CASE("Roster CSV rejects bytes that are neither UTF-8 nor GBK", "[storage]") {
  auto [bytes, line, message] = GENERATE(table<std::string, int, std::string>({
      {"帮扶人ID,帮扶人\nu1,张伟\nu2,\xFF\xFF\n", 3,
       "第3行：文件编码无法识别（既不是 UTF-8 也不是 GBK），请在 Excel 中另存为“CSV "
       "UTF-8（逗号分隔）”"},
      {to_gbk("帮扶人ID,帮扶人\nu1,张伟\n") + "u2,\xFF\xFF\n", 3,
       "第3行：文件编码无法识别（既不是 UTF-8 也不是 GBK），请在 Excel 中另存为“CSV "
       "UTF-8（逗号分隔）”"},
      {std::string("PK\x03\x04\x14\x00", 6), 1,
       "第1行：这是 Excel 工作簿（.xlsx），不是 CSV；请在 Excel 中另存为“CSV（逗号分隔）”后再导入"},
      {"\xFF\xFEh\0", 1,
       "第1行：文件是 UTF-16（Unicode 文本）编码，请在 Excel 中另存为“CSV（逗号分隔）”或“CSV "
       "UTF-8（逗号分隔）”"},
  }));
  CAPTURE(message);
  auto r = parse_roster_csv(bytes);
  CHECK(r.rows.empty());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == line);
  CHECK(r.errors[0].message == message);
}

TEST_CASE("Roster CSV accepts English headers in any order and ignores unknown columns",
          "[storage]") {
  auto r = parse_roster_csv(
      " village ,Ledger,remark,helper_id,helper_name,unit,household_id,household_head,person\n"
      "张庄村,health,随便写,u9,周医生,区中医院,H9,孙大海,孙小梅\n"
      "李村,区直,,u8,吴干部,区财政局,H8,陈玉兰,\n");
  INFO(errors_of(r));
  REQUIRE(r.errors.empty());
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0].village == "张庄村");
  CHECK(r.rows[0].ledger == Ledger::Health);
  CHECK(r.rows[0].helper_id == "u9");
  CHECK(r.rows[0].person == "孙小梅");
  CHECK(r.rows[0].phone.empty());
  CHECK(r.rows[1].ledger == Ledger::Cadre);
  CHECK(r.rows[1].household_head == "陈玉兰");
}

TEST_CASE("Roster CSV unquotes fields with commas, quotes and line breaks", "[storage]") {
  const std::string csv = kHeader +
                          "u001,张伟,,区直,\"区发改局,办公室\",H001,\"王\"\"秀\"\"英\",,,"
                          "\"张庄村\n二组\",高新街道,,\n"
                          "u002,李娜,,区县,区人民医院,H002,李德明,,,李村,,,\n";
  auto r = parse_roster_csv(csv);
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0].unit == "区发改局,办公室");
  CHECK(r.rows[0].household_head == "王\"秀\"英");
  CHECK(r.rows[0].village == "张庄村\n二组");
  // The quoted line break makes the next record start on physical line 4.
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 4);
  CHECK(r.errors[0].message.starts_with("第4行：台账"));
}

TEST_CASE("Roster CSV reports broken quoting with its line instead of failing", "[storage]") {
  auto [body, line] = GENERATE(table<std::string, int>({
      {"u001,张伟,,区直,区发改局,H001,王秀英,,,张庄村,,,\n"
       "u002,李娜,,卫生,\"区人民医院,H002,李德明,,,李村,,,\n"
       "u003,赵敏,,教育,实验中学,H003,刘大山,,,刘庄村,,,\n",
       3},
      {"u001,张伟,,区直,\"区发改局\"办公室,H001,王秀英,,,张庄村,,,\n", 2},
  }));
  CAPTURE(body);
  auto r = parse_roster_csv(kHeader + body);
  CHECK(r.rows.empty());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == line);
  CHECK(r.errors[0].message.starts_with("第" + std::to_string(line) + "行："));
  CHECK(r.errors[0].message.find("引号") != std::string::npos);
}

TEST_CASE("Roster CSV names each row problem with its line", "[storage]") {
  const std::string good = "u001,张伟,,区直,区发改局,H001,王秀英,,,张庄村,,,\n";
  auto [bad, message] = GENERATE(table<std::string, std::string>({
      {"u009,孙强,,区县,区农业局,H009,孙大海,,,孙村,,,",
       "第3行：台账“区县”无法识别，应填 区直、卫生 或 教育"},
      {"u009,孙强,,区直,区农业局,H009,孙大海,,,孙村,,2026/13/01,",
       "第3行：结对日期“2026/13/01”不是有效日期，格式应为 2026-11-01"},
      {"u009,孙强,,区直,区农业局,H009,孙大海,,,孙村,,,明年",
       "第3行：结束日期“明年”不是有效日期，格式应为 2026-11-01"},
      {"u009,孙强,,区直,区农业局,H009,,,,孙村,,,", "第3行：“户主”为空，请填写"},
      {"u009,孙强,,区直,区农业局,H009,孙大海,,,\u3000,,,", "第3行：“村居”为空，请填写"},
      {"u009,孙强,,区直,区农业局,H009,孙大海,,,孙村,,2026-11-01,2026-10-01",
       "第3行：结束日期 2026-10-01 早于结对日期 2026-11-01，请检查"},
      {"u009,孙医生,,卫生,区医院,H009,孙大海,孙小梅,残障,孙村,,,",
       "第3行：对象类别“残障”无法识别，应填 患病、残疾 或 学生（也可不填）"},
      {"u001,张伟,,区直,区发改局,H001,王秀英,,,张庄村,,2026-02-01,",
       "第3行：与第2行是同一个结对（帮扶人ID u001、户编号 H001），请删去重复的一行"},
      {"u001,张玮,,区直,区发改局,H002,李德明,,,李村,,,",
       "第3行：帮扶人ID“u001”在第2行的姓名是“张伟”，这里是“张玮”；同一个人请写同一个姓名"},
      {"u009,孙强,,区直,区农业局,4.10E+17,孙大海,,,孙村,,,",
       "第3行：户编号“4.10E+17”被 Excel 变成了科学计数法，原号码已丢失；请把该列设为“文本”格式、"
       "重新填写后再导出"},
  }));
  CAPTURE(bad);
  auto r = parse_roster_csv(kHeader + good + bad + "\n");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 3);
  CHECK(r.errors[0].message == message);
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0].helper_id == "u001");
  CHECK(r.rows[0].household_id == "H001");
}

TEST_CASE("Roster CSV reports every problem of a row", "[storage]") {
  auto r = parse_roster_csv(kHeader + ",张伟,,区县,区发改局,H001,王秀英,,,张庄村,,2026-02-30,\n");
  CHECK(r.rows.empty());
  REQUIRE(r.errors.size() == 3);
  CHECK(r.errors[0].message == "第2行：“帮扶人ID”为空，请填写");
  CHECK(r.errors[1].message == "第2行：台账“区县”无法识别，应填 区直、卫生 或 教育");
  CHECK(r.errors[2].message == "第2行：结对日期“2026-02-30”不是有效日期，格式应为 2026-11-01");
}

TEST_CASE("Roster CSV names missing required columns on line 1", "[storage]") {
  auto [header, message] = GENERATE(table<std::string, std::string>({
      {"帮扶人ID,帮扶人,台账,单位,户编号,户主", "第1行：缺少必填的列：村居（village）"},
      {"帮扶人ID,帮扶人,台账,单位,户主,街道",
       "第1行：缺少必填的列：户编号（household_id）、村居（village）"},
      {"帮扶人ID,帮扶人,台账,单位,户编号,户主,村居,户主",
       "第1行：列“户主”出现了两次，请只保留一列"},
  }));
  CAPTURE(header);
  auto r = parse_roster_csv(header + "\nu001,张伟,区直,区发改局,H001,王秀英,张庄村\n");
  CHECK(r.rows.empty());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 1);
  CHECK(r.errors[0].message == message);
}

TEST_CASE("Roster CSV trims values and skips blank lines", "[storage]") {
  // U+3000 (full-width space) and ordinary spaces around values; blank and all-comma lines in the
  // middle and at the end; a date as Excel writes it in a Chinese locale.
  auto r =
      parse_roster_csv(kHeader +
                       "\u3000u001 ,  张伟\u3000,,区直,区发改局,H001,王秀英,,,张庄村,,2026/1/5,\n"
                       "\n"
                       ",,,,,,,,,,,,\n"
                       "u002,李娜,,卫生,区人民医院,H002,李德明,,,李村,,2026年3月1日,\n"
                       "u003,赵敏,,区县,实验中学,H003,刘大山,,,刘庄村,,,\n"
                       "\n\n\n");
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0].helper_id == "u001");
  CHECK(r.rows[0].helper_name == "张伟");
  CHECK(r.rows[0].start_date == Date{2026, 1, 5});
  CHECK(r.rows[1].start_date == Date{2026, 3, 1});
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 6);  // blank lines still count
}

TEST_CASE("Roster CSV rejects an empty file", "[storage]") {
  auto input = GENERATE(as<std::string>{}, "", "\n\n", "\xEF\xBB\xBF", " , ,\r\n");
  CAPTURE(input);
  auto r = parse_roster_csv(input);
  CHECK(r.rows.empty());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 1);
}

TEST_CASE("Roster CSV reads a last line without a line break", "[storage]") {
  auto input = GENERATE(
      as<std::string>{},
      "帮扶人ID,帮扶人,台账,单位,户编号,户主,村居\nu1,张伟,区直,区发改局,H1,王秀英,张庄村",
      "帮扶人ID,帮扶人,台账,单位,户编号,户主,村居,备注\nu1,张伟,区直,区发改局,H1,王秀英,张庄村,");
  CAPTURE(input);
  auto r = parse_roster_csv(input);
  INFO(errors_of(r));
  REQUIRE(r.rows.size() == 1);
  CHECK(r.rows[0].village == "张庄村");
}
