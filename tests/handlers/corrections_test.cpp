// 更正 and 撤销 <whom> <date> through the dispatcher, on a real Store and the real templates.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "handlers/corrections.h"
#include "handlers/dispatcher.h"
#include "handlers/templates.h"
#include "storage/store.h"
#include "tests/support/dispatcher_fixture.h"

using storage::CheckinStatus;
using storage::Date;

namespace {

using bangfu_test::pairing;

struct Fixture : bangfu_test::DispatcherFixture {
  Fixture()
      : DispatcherFixture(
            {pairing("zw", "张伟", "H1", "王秀英"), pairing("zw", "张伟", "H2", "李德明"),
             pairing("solo", "张伟", "H3", "陈玉兰")},
            {}, "2026-12-05T10:00:00+08:00") {}

  // "H1 2026-12-04 active" for each check-in, in id order.
  std::vector<std::string> rows() {
    std::vector<std::string> out;
    for (const auto& r : store.checkins({}))
      out.push_back(r.pairing.household_id + " " + r.checkin.visit_date.iso() + " " +
                    std::string(storage::checkin_status_code(r.checkin.status)));
    std::sort(out.begin(), out.end());
    return out;
  }
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("parse_correction takes the line after 更正", "[handlers]") {
  CHECK(handlers::parse_correction("@帮扶助手 更正 走访 王秀英户 12月3日", "帮扶助手") ==
        "走访 王秀英户 12月3日");
  CHECK(handlers::parse_correction("更正：走访王秀英户", "帮扶助手") == "走访王秀英户");
  CHECK(handlers::parse_correction("更正", "帮扶助手") == "");
  CHECK_FALSE(handlers::parse_correction("走访 王秀英户 更正", "帮扶助手"));
}

TEST_CASE("更正 replaces the last check-in and shows old → new", "[handlers]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 12月1日", "2026-12-01T09:00:00+08:00");
  f.say("zw", "走访 王秀英户 今天", "2026-12-04T09:00:00+08:00");
  const auto out = f.say("zw", "@帮扶助手 更正 走访 李德明户 12月3日");
  CAPTURE(out.reply);
  CHECK(out.recorded);
  CHECK(has(out.reply, "已更正：12月4日 走访 王*英户 → 12月3日 走访 李*明户"));
  CHECK(has(out.reply, "12月已走访该户 1 次"));
  CHECK_FALSE(has(out.reply, "王秀英"));
  CHECK(f.rows() == std::vector<std::string>{"H1 2026-12-01 active", "H1 2026-12-04 corrected",
                                             "H2 2026-12-03 active"});
  CHECK(f.store.inbox("not_understood", 0).empty());
}

TEST_CASE("更正 with a line that is not a check-in changes nothing and says why", "[handlers]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天", "2026-12-04T09:00:00+08:00");
  const auto before = f.rows();
  for (const std::string text :
       {"更正 走访 赵大海户 12月3日", "更正 走访 王秀英户 12月40日", "更正 今天天气不错", "更正"}) {
    CAPTURE(text);
    const auto out = f.say("zw", text);
    CAPTURE(out.reply);
    CHECK_FALSE(out.recorded);
    CHECK(f.rows() == before);
    if (std::string(text) != "更正")
      CHECK(has(out.reply, "原打卡（12月4日 走访 王*英户）没有改动"));
  }
  CHECK(f.store.inbox("not_understood", 0).size() == 4);
  const auto stranger = f.say("zw", "更正 走访 赵大海户 12月3日");
  CHECK(has(stranger.reply, "你的结对：李*明、王*英"));
  CHECK_FALSE(has(stranger.reply, "王秀英"));
}

TEST_CASE("更正 reaches back 7 days only", "[handlers]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天", "2026-11-27T09:00:00+08:00");
  const auto out = f.say("zw", "更正 走访 王秀英户 11月26日", "2026-12-05T10:00:00+08:00");
  CAPTURE(out.reply);
  CHECK_FALSE(out.recorded);
  CHECK(has(out.reply, "没有可更正的打卡"));
  CHECK(f.rows() == std::vector<std::string>{"H1 2026-11-27 active"});
}

TEST_CASE("撤销 王某某户 12月2日 undoes that check-in, not the latest", "[handlers]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天", "2026-12-02T09:00:00+08:00");
  f.say("zw", "走访 王秀英户 今天", "2026-12-04T09:00:00+08:00");
  f.say("zw", "走访 李德明户 今天", "2026-12-04T10:00:00+08:00");
  const auto out = f.say("zw", "撤销 王秀英户 12月2日");
  CAPTURE(out.reply);
  CHECK(out.recorded);
  CHECK(out.reply == "已撤销：12月2日 走访 王*英户。如需重报，请重新发一条正确的打卡。");
  CHECK(f.rows() == std::vector<std::string>{"H1 2026-12-02 undone", "H1 2026-12-04 active",
                                             "H2 2026-12-04 active"});
}

TEST_CASE("撤销 with a name or date that matches several or none asks back", "[handlers]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天", "2026-12-02T09:00:00+08:00");
  f.say("zw", "走访 王秀英户 今天", "2026-12-04T09:00:00+08:00");
  f.say("zw", "走访 李德明户 今天", "2026-12-04T10:00:00+08:00");
  const auto before = f.rows();

  const auto several = f.say("zw", "撤销 王秀英户");
  CAPTURE(several.reply);
  CHECK(has(several.reply,
            "你7天内有 2 条王*英户的打卡：12月4日 走访 王*英户；12月2日 走访 王*英户"));
  CHECK(has(several.reply, "撤销 王*英户 12月4日"));

  const auto by_day = f.say("zw", "撤销 12月4日");
  CAPTURE(by_day.reply);
  CHECK(has(by_day.reply, "你7天内有 2 条12月4日的打卡"));

  const auto none = f.say("zw", "撤销 李德明户 12月1日");
  CAPTURE(none.reply);
  CHECK(has(none.reply, "没有找到你7天内发的12月1日 李*明户的打卡，没有撤销任何记录"));

  const auto stranger = f.say("zw", "撤销 赵大海户 12月4日");
  CAPTURE(stranger.reply);
  CHECK(has(stranger.reply, "你的结对名单里没有「赵*海」"));
  CHECK(has(stranger.reply, "没有撤销任何记录"));

  const auto nonsense = f.say("zw", "撤销 那条");
  CAPTURE(nonsense.reply);
  CHECK(has(nonsense.reply, "没看懂要撤销哪一条"));
  CHECK_FALSE(has(nonsense.reply + several.reply + none.reply, "王秀英"));
  CHECK(f.rows() == before);
  CHECK(f.store.inbox("not_understood", 0).size() == 5);

  // The only one of that day, by date alone, for a helper with one pairing.
  f.say("solo", "走访 今天", "2026-12-03T09:00:00+08:00");
  const auto solo = f.say("solo", "撤销 12月3日");
  CHECK(solo.recorded);
  CHECK(has(solo.reply, "已撤销：12月3日 走访 陈*兰户"));
}

TEST_CASE("plain 撤销 still undoes the last check-in within 24 hours", "[handlers]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天", "2026-12-04T09:00:00+08:00");
  f.say("zw", "走访 李德明户 今天", "2026-12-05T09:00:00+08:00");
  const auto out = f.say("zw", "撤销");
  CHECK(out.recorded);
  CHECK(has(out.reply, "已撤销：12月5日 走访 李*明户"));
  CHECK(f.rows() == std::vector<std::string>{"H1 2026-12-04 active", "H2 2026-12-05 undone"});
}

TEST_CASE("撤销 lists at most five check-ins and says how many there are", "[handlers]") {
  Fixture f;
  for (int day = 1; day <= 6; ++day)
    f.say("zw", "走访 王秀英户 今天", "2026-12-0" + std::to_string(day) + "T09:00:00+08:00");
  const auto several = f.say("zw", "撤销 王秀英户", "2026-12-06T10:00:00+08:00");
  CAPTURE(several.reply);
  CHECK(several.reply ==
        "你7天内有 6 条王*英户的打卡：12月6日 走访 王*英户；12月5日 走访 王*英户；12月4日 走访 "
        "王*英户；12月3日 走访 王*英户；12月2日 走访 王*英户（共 6 条）。请写明是哪一条，如：撤销 "
        "王*英户 12月6日。");
  const auto none = f.say("zw", "撤销 李德明户 12月1日", "2026-12-06T10:00:00+08:00");
  CAPTURE(none.reply);
  CHECK(has(none.reply, "12月2日 走访 王*英户（共 6 条）。"));
}
