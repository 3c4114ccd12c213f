#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "handlers/dispatcher.h"
#include "handlers/labels.h"
#include "handlers/problem_commands.h"
#include "handlers/templates.h"
#include "storage/problems.h"
#include "storage/store.h"
#include "tests/support/dispatcher_fixture.h"
#include "tests/support/temp_dir.h"

using handlers::Templates;
using storage::Date;
using storage::Pairing;
using storage::Store;

namespace {

using bangfu_test::pairing;

struct Fixture : bangfu_test::DispatcherFixture {
  explicit Fixture(const std::string& templates_dir = BANGFU_SOURCE_DIR "/templates")
      : DispatcherFixture(
            {pairing("zw", "张伟", "H1", "王秀英"), pairing("zw", "张伟", "H2", "李德明"),
             pairing("solo", "王芳", "H3", "陈玉兰"),
             pairing("doc", "赵磊", "H4", "赵建国", "赵桂兰", storage::Ledger::Health)},
            {"admin1"}, "2026-11-28T10:00:00+08:00", templates_dir) {}

  int visits(int64_t pairing_id, storage::Month m) {
    return store.transaction([&](Store::Tx& tx) { return tx.counted_visits(pairing_id, m); });
  }
};

}  // namespace

TEST_CASE("a check-in is recorded and confirmed with the name masked", "[dispatcher]") {
  Fixture f;
  auto out = f.say("zw", "@帮扶助手 走访 王秀英户 今天 送去棉被，老人腿疼已联系村医");
  CHECK(out.recorded);
  CHECK_FALSE(out.duplicate);
  CHECK(out.reply.find("已记下：11月28日（今天） 走访 王*英户") != std::string::npos);
  CHECK(out.reply.find("11月已走访该户 1 次") != std::string::npos);
  CHECK(out.reply.find("王秀英") == std::string::npos);
  CHECK(out.reply.find("腿疼") == std::string::npos);  // the note stays off the chat

  const auto rows = f.store.ledger({2026, 11}, std::nullopt);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].household_id == "H1");
  CHECK(rows[0].visit_date == Date{2026, 11, 28});
}

TEST_CASE("in a one-to-one chat the helper's own pairings are named in full", "[dispatcher]") {
  Fixture f;
  const auto at = "2026-11-28T10:00:00+08:00";
  const auto group = f.say("zw", "@帮扶助手 今天走访了王秀英", at, "g1");
  const auto single = f.say("zw", "今天走访了李德明", at, "s1", "single");
  CHECK(group.recorded);
  CHECK(single.recorded);
  CHECK(group.reply.find("王*英") != std::string::npos);
  CHECK(group.reply.find("王秀英") == std::string::npos);
  CHECK(single.reply.find("李德明") != std::string::npos);
  CHECK(single.reply.find("李*明") == std::string::npos);
  // The same msgid again gets the reply as it was given.
  CHECK(f.say("zw", "今天走访了李德明", at, "s1", "single").reply == single.reply);
  // A doctor's person pairing in full too, the household head's as well.
  const auto doc = f.say("doc", "今天电话联系了赵桂兰", at, "s2", "single");
  CHECK(doc.reply.find("赵桂兰") != std::string::npos);
}

TEST_CASE("unmask_names: full names back, except a masked form two pairings share",
          "[dispatcher]") {
  const std::vector<Pairing> ps = {pairing("zw", "张伟", "H1", "王秀英"),
                                   pairing("zw", "张伟", "H2", "王桂英"),
                                   pairing("zw", "张伟", "H3", "李德明", "李洋")};
  CHECK(handlers::unmask_names("李*明户 李* 王*英户", ps) == "李德明户 李洋 王*英户");
  CHECK(handlers::unmask_names(handlers::mask_names("走访了李德明户", ps), ps) == "走访了李德明户");
}

TEST_CASE("a retry of the same msgid gets the same reply and records nothing", "[dispatcher]") {
  Fixture f;
  auto first = f.say("zw", "走访 李德明户 昨天", "2026-11-28T10:00:00+08:00", "dup-1");
  auto again = f.say("zw", "走访 李德明户 昨天", "2026-11-28T10:00:07+08:00", "dup-1");
  CHECK(again.duplicate);
  CHECK_FALSE(again.recorded);
  CHECK(again.reply == first.reply);
  CHECK(f.store.ledger({2026, 11}, std::nullopt).size() == 1);
}

TEST_CASE("visit counts: phone is not a visit, same day counts once", "[dispatcher]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 11月20日");
  auto same_day = f.say("zw", "看望 王秀英 11月20日 送米");
  CHECK(same_day.reply.find("11月已走访该户 1 次") != std::string::npos);
  auto phone = f.say("zw", "电话随访 王秀英 今天");
  CHECK(phone.reply.find("电话联系") != std::string::npos);
  CHECK(phone.reply.find("不计入走访次数") != std::string::npos);
  CHECK(phone.reply.find("11月已走访该户 1 次") != std::string::npos);
  auto later = f.say("zw", "走访 王秀英户 今天");
  CHECK(later.reply.find("11月已走访该户 2 次") != std::string::npos);
}

TEST_CASE("occasions and policies are echoed, problems named", "[dispatcher]") {
  Fixture f;
  auto out = f.say("zw", "打卡：户主李德明，11月26日，生病住院必访，到县医院看望，落实医疗救助");
  CHECK(out.reply.find("五必访：生病住院") != std::string::npos);
  CHECK(out.reply.find("政策：医疗救助") != std::string::npos);
  auto p = f.say("zw", "走访张庄村王秀英家 发现应享未享低保 已报民政");
  CHECK(p.reply.find("已记为问题 #1（应享未享：低保）") != std::string::npos);
}

TEST_CASE("a check-in for a past month is marked as a late report", "[dispatcher]") {
  Fixture f;
  auto out = f.say("zw", "走访 王秀英户 10月30日", "2026-11-02T09:00:00+08:00");
  CHECK(out.recorded);
  CHECK(out.reply.find("10月已走访该户 1 次") != std::string::npos);
  CHECK(out.reply.find("补报，计入10月台账") != std::string::npos);
}

TEST_CASE("errors say what to fix and mask every beneficiary name", "[dispatcher]") {
  Fixture f;
  auto not_paired = f.say("zw", "走访 陈玉兰户 今天");  // 陈玉兰 is another helper's pairing
  CHECK_FALSE(not_paired.recorded);
  CHECK(not_paired.reply.find("陈玉兰") == std::string::npos);
  CHECK(not_paired.reply.find("你的结对：") != std::string::npos);
  CHECK(not_paired.reply.find("王*英") != std::string::npos);

  auto ambiguous = f.say("zw", "今天走访了");
  CHECK(ambiguous.reply.find("王秀英") == std::string::npos);
  CHECK(ambiguous.reply.find("李德明") == std::string::npos);

  auto future = f.say("zw", "走访 王秀英户 11月30日");
  CHECK(future.reply.find("王秀英") == std::string::npos);
  CHECK_FALSE(future.recorded);
  // A month after the current one without a year is last year's, not the future.
  auto last_year = f.say("zw", "走访 王秀英户 12月5日");
  CHECK(last_year.recorded);
  CHECK(last_year.reply.find("2025年12月5日") != std::string::npos);

  auto stranger = f.say("nobody", "走访 王秀英户 今天");
  CHECK(stranger.reply.find("名册") != std::string::npos);
  CHECK_FALSE(stranger.recorded);

  auto chatter = f.say("zw", "收到");
  CHECK(chatter.reply.find("帮助") != std::string::npos);
  CHECK(f.store.ledger({2026, 11}, std::nullopt).empty());
}

TEST_CASE("a helper with one pairing needs no name; a person pairing shows the person",
          "[dispatcher]") {
  Fixture f;
  auto solo = f.say("solo", "今天走访了，送去米面油");
  CHECK(solo.recorded);
  CHECK(solo.reply.find("陈*兰户") != std::string::npos);
  auto doc = f.say("doc", "上门服务 赵桂兰 测血压 用药指导");
  CHECK(doc.recorded);
  CHECK(doc.reply.find("上门服务 赵*兰") != std::string::npos);
  CHECK(doc.reply.find("该对象") != std::string::npos);
}

TEST_CASE("undo marks the last check-in undone within 24 hours", "[dispatcher]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天", "2026-11-28T10:00:00+08:00");
  auto undo = f.say("zw", "撤销", "2026-11-28T11:00:00+08:00");
  CHECK(undo.reply.find("已撤销：11月28日 走访 王*英户") != std::string::npos);
  const auto rows = f.store.ledger({2026, 11}, std::nullopt);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].undone());
  auto again = f.say("zw", "撤销", "2026-11-28T11:05:00+08:00");
  CHECK(again.reply.find("没有可撤销的打卡") != std::string::npos);

  f.say("zw", "走访 李德明户 今天", "2026-11-28T12:00:00+08:00");
  auto late = f.say("zw", "撤销", "2026-11-29T12:00:01+08:00");
  CHECK(late.reply.find("没有可撤销的打卡") != std::string::npos);
}

TEST_CASE("my pairings and progress list this month's status", "[dispatcher]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天");
  auto mine = f.say("zw", "我的结对");
  CHECK(mine.reply.find("张伟，你的结对共 2 个") != std::string::npos);
  CHECK(mine.reply.find("王*英户（张庄村）：已走访 1 次") != std::string::npos);
  CHECK(mine.reply.find("李*明户（张庄村）：未走访") != std::string::npos);
  auto progress = f.say("zw", "本月进度");
  CHECK(progress.reply.find("11月你已走访 1/2") != std::string::npos);
  CHECK(progress.reply.find("还差：李*明户") != std::string::npos);
  auto help = f.say("someone", "帮助");
  CHECK(help.reply.find("走访后发一句话就行") != std::string::npos);
}

TEST_CASE("as_handled gives the reason the inbox shows: off the roster, commands are not handled",
          "[dispatcher]") {
  Fixture f;
  const Date today = Date::parse_iso("2026-11-28").value();
  // The dispatcher answers a command from off the roster with unknown_sender ...
  const auto mine = f.say("stranger", "我的结对");
  CHECK(mine.reply == f.templates.render_trimmed("unknown_sender", {}));
  // ... and as_handled says so, where understand() alone sees the command.
  const handlers::SenderContext stranger{"stranger", false, {}};
  CHECK(std::holds_alternative<handlers::CommandMsg>(
      handlers::understand("我的结对", stranger, today, "帮扶助手")));
  const auto why = handlers::as_handled("我的结对", stranger, today, "帮扶助手");
  REQUIRE(std::holds_alternative<handlers::ParseError>(why));
  CHECK(std::get<handlers::ParseError>(why).code == "unknown_sender");
  // From the roster it is what understand() makes of the text.
  const handlers::SenderContext zw{"zw", true, {pairing("zw", "张伟", "H1", "王秀英")}};
  const auto asked = handlers::as_handled("走访 今天", zw, today, "帮扶助手");
  CHECK(handlers::to_json(asked) ==
        handlers::to_json(handlers::understand("走访 今天", zw, today, "帮扶助手")));
}

TEST_CASE("templates: a broken template names its file and line", "[dispatcher]") {
  CHECK_THROWS_WITH(Templates::from_strings({{"bad", "第一行\n第二行 {{#open}}\n"}}),
                    Catch::Contains("bad:2:"));
  CHECK(handlers::mask_name("王秀英") == "王*英");
  CHECK(handlers::mask_name("李明") == "李*");
  CHECK(handlers::mask_name("欧阳小明") == "欧**明");
}

TEST_CASE("templates: renders at once and one after another each show only their own data",
          "[dispatcher]") {
  const auto t = Templates::from_strings(
      {{"one", "{{#ok}}好了：{{name}}{{/ok}}{{^ok}}没有{{/ok}}\n{{#items}}- {{.}}\n{{/items}}"}});
  auto data_for = [](int i) {
    kainjow::mustache::data d;
    if (i % 2 == 0) d.set("ok", true);
    d.set("name", "第" + std::to_string(i) + "个");
    kainjow::mustache::data items{kainjow::mustache::data::type::list};
    for (int k = 0; k < i % 3; ++k) items << kainjow::mustache::data(std::to_string(k));
    d.set("items", items);
    return d;
  };
  auto expected = [](int i) {
    std::string out = i % 2 == 0 ? "好了：第" + std::to_string(i) + "个\n" : "没有\n";
    for (int k = 0; k < i % 3; ++k) out += "- " + std::to_string(k) + "\n";
    return out;
  };
  // One after another: a copy kept from the last render carries nothing over.
  for (int i = 0; i < 6; ++i) CHECK(t.render("one", data_for(i)) == expected(i));
  // From four threads at once (TSan runs this too).
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int n = 0; n < 4; ++n)
    threads.emplace_back([&, n] {
      for (int i = n; i < 400; i += 4)
        if (t.render("one", data_for(i)) != expected(i)) ++wrong;
    });
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
}

TEST_CASE("通报 and 点评 in the chat: admins get the bulletin, others a polite no",
          "[dispatcher]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 10月20日", "2026-10-21T10:00:00+08:00");
  auto refused = f.say("zw", "通报 2026-10");
  CHECK(refused.reply.find("只有管理员") != std::string::npos);
  CHECK_FALSE(refused.recorded);

  auto bulletin = f.say("admin1", "@帮扶助手 通报 2026-10");
  CHECK(bulletin.reply.find("10月") != std::string::npos);
  CHECK(bulletin.reply.find("王秀英") == std::string::npos);
  CHECK(bulletin.reply.find("陈玉兰") == std::string::npos);
  CHECK(bulletin.reply.find("赵桂兰") == std::string::npos);

  auto wrong = f.say("admin1", "通报 2026Q3");
  CHECK(wrong.reply.find("通报 2026-11") != std::string::npos);
  auto review = f.say("admin1", "点评 2026Q3");
  CHECK(review.reply.find("只有管理员") == std::string::npos);
  CHECK(review.reply.find("没看懂") == std::string::npos);
}

TEST_CASE("problem commands are told apart from check-ins", "[dispatcher]") {
  using handlers::parse_problem_command;
  using storage::ProblemStatus;
  using Row = std::tuple<std::string, int64_t, std::optional<ProblemStatus>, std::string>;
  auto [text, id, status, note] =
      GENERATE(table<std::string, int64_t, std::optional<ProblemStatus>, std::string>({
          Row{"#12 已解决 低保已批", 12, ProblemStatus::Resolved, "低保已批"},
          Row{"#12已解决", 12, ProblemStatus::Resolved, ""},
          Row{"问题12已解决 已落实到户", 12, ProblemStatus::Resolved, "已落实到户"},
          Row{"问题 #7：解决了", 7, ProblemStatus::Resolved, ""},
          Row{"12号问题已解决", 12, ProblemStatus::Resolved, ""},
          Row{"第3号问题 跟进中，已报民政局", 3, ProblemStatus::InProgress, "已报民政局"},
          Row{"#12 跟进中 已报民政局", 12, ProblemStatus::InProgress, "已报民政局"},
          Row{"第2个问题已经解决", 2, ProblemStatus::Resolved, ""},
          Row{"#2 正在办理", 2, ProblemStatus::InProgress, ""},
          Row{"问题5 办理中，材料已交乡里", 5, ProblemStatus::InProgress, "材料已交乡里"},
          Row{"#12", 12, std::nullopt, ""},
          Row{"#12 办好了", 12, std::nullopt, "办好了"},
      }));
  CAPTURE(text);
  const auto cmd = parse_problem_command(text);
  REQUIRE(cmd);
  CHECK(cmd->kind == handlers::ProblemCommand::Kind::Set);
  CHECK(cmd->id == id);
  CHECK(cmd->status == status);
  CHECK(cmd->note == note);
}

TEST_CASE("check-ins and other text are not problem commands", "[dispatcher]") {
  for (std::string text : {"#家访 学生王某 11.20 辅导数学", "走访 王秀英户 12号 送米",
                           "12号 走访 王秀英户", "问题不大", "我的问题是什么时候通报",
                           "第2个走访的是王秀英户", "我还有哪些问题没解决要向村里反映"}) {
    CAPTURE(text);
    CHECK_FALSE(handlers::parse_problem_command(text));
  }
  for (std::string text : {"我的问题", "我的问题清单", "我还有哪些问题没解决？", "查看我的问题"}) {
    CAPTURE(text);
    REQUIRE(handlers::parse_problem_command(text));
    CHECK(handlers::parse_problem_command(text)->kind == handlers::ProblemCommand::Kind::Mine);
  }
}

TEST_CASE("a problem is resolved in the chat by its reporter, others of the household or admins",
          "[dispatcher]") {
  Fixture f;
  // A second helper of household H1.
  f.store.import_roster(
      {pairing("zw", "张伟", "H1", "王秀英"), pairing("zw", "张伟", "H2", "李德明"),
       pairing("solo", "王芳", "H3", "陈玉兰"),
       pairing("doc", "赵磊", "H4", "赵建国", "赵桂兰", storage::Ledger::Health),
       pairing("li", "李强", "H1", "王秀英")},
      Date{2026, 1, 1});
  auto reported = f.say("zw", "走访 王秀英户 今天 发现房屋漏雨需要修缮，应享未享低保");
  CHECK(reported.reply.find("已记为问题 #1（住房安全）、#2（应享未享：低保）") !=
        std::string::npos);
  CHECK(reported.reply.find("#1 已解决") != std::string::npos);

  // Someone else's household: a polite refusal, nothing changes.
  auto refused = f.say("solo", "#1 已解决 修好了");
  CHECK(refused.reply.find("不在你的结对户里") != std::string::npos);
  CHECK_FALSE(refused.recorded);
  CHECK(storage::Problems::get(f.store, 1)->status == storage::ProblemStatus::Open);

  auto progress = f.say("li", "#1 跟进中 已报住建局");
  CHECK(progress.recorded);
  CHECK(progress.reply ==
        "已更新问题 #1（王*英户，住房安全）：待跟进 → 跟进中。说明：已报住建局。");
  auto done = f.say("zw", "问题2已解决 低保已批");
  CHECK(done.reply.find("待跟进 → 已解决") != std::string::npos);
  auto again = f.say("zw", "#2 已解决");
  CHECK(again.reply.find("已经是“已解决”") != std::string::npos);
  CHECK_FALSE(again.recorded);
  auto admin = f.say("admin1", "#1已解决 已修缮");
  CHECK(admin.reply.find("跟进中 → 已解决") != std::string::npos);

  const auto one = storage::Problems::get(f.store, 1);
  CHECK(one->status == storage::ProblemStatus::Resolved);
  CHECK(one->history.at(1).actor == "li");
  CHECK(one->history.at(2).actor == "admin1");
  CHECK(one->closed_on == Date{2026, 11, 28});

  auto missing = f.say("zw", "#99 已解决");
  CHECK(missing.reply.find("没有找到问题 #99") != std::string::npos);
  auto bare = f.say("zw", "#1");
  CHECK(bare.reply.find("#1 已解决 低保已批") != std::string::npos);
  auto stranger = f.say("nobody", "#1 已解决");
  CHECK(stranger.reply.find("王秀英") == std::string::npos);
  CHECK_FALSE(stranger.recorded);
}

TEST_CASE("我的问题 lists the sender's open problems masked", "[dispatcher]") {
  Fixture f;
  CHECK(f.say("zw", "我的问题").reply == "你目前没有待跟进的问题。");
  f.say("zw", "走访 王秀英户 11月20日 王秀英看病困难");
  f.say("zw", "走访 李德明户 11月21日 缺收入来源");
  f.say("zw", "#2 已解决 已介绍公益岗位");
  f.say("solo", "走访 陈玉兰户 今天 需要轮椅");
  const auto mine = f.say("zw", "我的问题");
  CHECK(mine.reply.find("你跟进的问题共 1 条") != std::string::npos);
  CHECK(mine.reply.find("#1 王*英户（医疗）") != std::string::npos);
  CHECK(mine.reply.find("王秀英") == std::string::npos);
  CHECK(mine.reply.find("#3") == std::string::npos);
}

TEST_CASE("undoing a check-in closes the problem it reported", "[dispatcher]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天 应享未享低保");
  f.say("zw", "撤销");
  const auto item = storage::Problems::get(f.store, 1);
  CHECK(item->status == storage::ProblemStatus::NotAProblem);
  CHECK(item->history.back().note == "打卡已撤销");
  CHECK(f.say("zw", "我的问题").reply == "你目前没有待跟进的问题。");
}

TEST_CASE("a correction closes the old check-in's problem and records the new one's",
          "[dispatcher]") {
  Fixture f;
  f.say("zw", "走访 王秀英户 今天 房屋漏雨需要修缮");
  const auto fixed = f.say("zw", "更正 走访 王秀英户 昨天 应享未享低保");
  CHECK(fixed.recorded);
  // The answer names the new item, as a check-in's answer does.
  CHECK(fixed.reply.find("已记为问题 #2（") != std::string::npos);
  CHECK(fixed.reply.find("问题解决后请发：#2 已解决") != std::string::npos);
  const auto old_item = storage::Problems::get(f.store, 1);
  CHECK(old_item->status == storage::ProblemStatus::NotAProblem);
  CHECK(old_item->history.back().note == "打卡已更正");
  const auto new_item = storage::Problems::get(f.store, 2);
  REQUIRE(new_item);
  CHECK(new_item->category.policy == "低保");
  CHECK(new_item->reported_on == Date{2026, 11, 27});
}

namespace {

// The shipped templates copied into a folder of the deployment's, with `edits` written over
// them (name → text; an empty text deletes the file).
std::string deployment_templates(const bangfu_test::TempDir& dir,
                                 const std::map<std::string, std::string>& edits) {
  const auto to = dir.path() / "templates";
  std::filesystem::copy(BANGFU_SOURCE_DIR "/templates", to,
                        std::filesystem::copy_options::recursive);
  for (const auto& [name, text] : edits) {
    const auto file = to / (name + ".mustache");
    if (text.empty()) {
      std::filesystem::remove(file);
    } else {
      std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
    }
  }
  return to.string();
}

}  // namespace

TEST_CASE("every answer's wording is the deployment's templates'", "[dispatcher]") {
  bangfu_test::TempDir dir;
  const std::string folder = deployment_templates(
      dir, {{"error",
             "{{#not_paired}}名单里没有{{said}}{{#names}}；可选：{{names}}{{/names}}{{/not_paired}}"
             "{{#future_date}}{{date}}未到{{/future_date}}"},
            {"bulletin_reply", "{{#admins_only}}仅管理员{{/admins_only}}"},
            {"checkin",
             "记了 {{whom}}{{#yesterday}}（昨日）{{/yesterday}}"
             "{{#person}}对象{{/person}}{{^person}}户{{/person}}"},
            {"service", "\n{{#rate_limited}}慢点，每分钟{{per_minute}}条{{/rate_limited}}\n"}});
  Fixture f(folder);
  // Names are masked whatever the template says.
  CHECK(f.say("zw", "走访 陈玉兰户 今天").reply == "名单里没有陈*兰；可选：李*明、王*英");
  CHECK(f.say("zw", "走访 王秀英户 11月30日").reply == "11月30日未到");
  CHECK(f.say("zw", "通报 2026-10").reply == "仅管理员");
  CHECK(f.say("zw", "走访 王秀英户 昨天").reply == "记了 王*英户（昨日）户");
  CHECK(f.dispatcher.service_answer("rate_limited", {{"per_minute", "5"}}) == "慢点，每分钟5条");
}

TEST_CASE("the shipped wording of the answers composed outside the check-in flow", "[dispatcher]") {
  Fixture f;
  CHECK(f.dispatcher.service_answer("welcome", {{"bot_name", "帮扶助手"}}) ==
        "你好，我是帮扶助手。走访后@我发一句话就能打卡，发“帮助”看写法。");
  CHECK(f.dispatcher.service_answer("rate_limited", {{"per_minute", "20"}}) ==
        "发得太快了（每人每分钟最多 20 条）。这条已收到存档，但没有记为走访，请一分钟后再发。");
  CHECK(f.dispatcher.service_answer("not_text") ==
        "收到。打卡只需要一句文字，不用发照片、语音或定位。发“帮助”看写法。");
  CHECK(f.say("zw", "通报 2026-10").reply ==
        "通报只有管理员可以在群里调取。每期会按时自动发到群里，请留意。");
  CHECK(f.say("zw", "点评 2026Q3").reply ==
        "点评只有管理员可以在群里调取。每期会按时自动发到群里，请留意。");
  CHECK(f.say("admin1", "通报 2026Q3").reply ==
        "没看懂要哪一期。请这样写：通报 2026-11，或 通报 2026-11 卫生。");
  CHECK(f.say("admin1", "点评 2026-11").reply ==
        "没看懂要哪一期。请这样写：点评 2026Q3，或 点评 2026Q3 教育。");
  CHECK(f.say("admin1", "通报 2027-01").reply == "这一期还没开始，没有可通报的内容。");
  CHECK(f.say("zw", "走访 陈玉兰户 今天").reply ==
        "你的结对名单里没有「陈*兰」。请核对姓名后重发，可参考下面你结对的名字。\n"
        "你的结对：李*明、王*英");
  CHECK(f.say("zw", "今天走访了").reply ==
        "你有2位结对对象，请写明走访对象，如：走访 李*明户 今天。\n可能是：李*明、王*英");
}

TEST_CASE("a template missing from the deployment's folder is refused when loading",
          "[dispatcher]") {
  // Every name the service needs is loaded at start-up (and by `config check`): a missing one
  // stops it there, never in the chat.
  for (const std::string name : {"error", "service", "bulletin_reply", "reminder", "checkin"}) {
    CAPTURE(name);
    bangfu_test::TempDir dir;
    const std::string folder = deployment_templates(dir, {{name, ""}});
    CHECK_THROWS_WITH(Templates::load(folder, handlers::dispatcher_template_names()),
                      Catch::Contains(name + ".mustache") && Catch::Contains("cannot read"));
  }
}

TEST_CASE("a templates folder from an older release is refused, not answered from",
          "[dispatcher]") {
  Fixture shipped;
  CHECK_NOTHROW(handlers::check_answer_templates(shipped.templates));
  // The error answer as it was before the parser gave facts instead of wording.
  bangfu_test::TempDir dir;
  const std::string folder =
      deployment_templates(dir, {{"error", "{{message}}{{#hint}}\n{{hint}}{{/hint}}\n"}});
  const auto stale = Templates::load(folder, handlers::dispatcher_template_names());
  CHECK_THROWS_WITH(handlers::check_answer_templates(stale),
                    Catch::Contains("error.mustache") && Catch::Contains("not_understood"));
  // A case left out of an edited template is named.
  bangfu_test::TempDir other;
  const std::string partial = deployment_templates(
      other, {{"service", "{{#welcome}}你好{{/welcome}}{{#rate_limited}}慢点{{/rate_limited}}"}});
  CHECK_THROWS_WITH(handlers::check_answer_templates(
                        Templates::load(partial, handlers::dispatcher_template_names())),
                    Catch::Contains("service.mustache") && Catch::Contains("not_text"));
}

TEST_CASE("a roster change is seen by the very next message", "[dispatcher]") {
  Fixture f;
  // The first messages fill the roster cache: 王芳 helps 陈玉兰 only, and 刘洋 is unknown.
  CHECK(f.say("solo", "@帮扶助手 走访 陈玉兰户 今天").recorded);
  const auto unknown = f.say("new", "@帮扶助手 走访 孙秀兰户 今天");
  CHECK_FALSE(unknown.recorded);
  const auto not_paired = f.say("solo", "@帮扶助手 走访 孙秀兰户 今天");
  CHECK_FALSE(not_paired.recorded);

  f.store.import_roster(
      {pairing("zw", "张伟", "H1", "王秀英"), pairing("zw", "张伟", "H2", "李德明"),
       pairing("solo", "王芳", "H3", "陈玉兰"), pairing("solo", "王芳", "H5", "孙秀兰"),
       pairing("doc", "赵磊", "H4", "赵建国", "赵桂兰", storage::Ledger::Health),
       pairing("new", "刘洋", "H6", "周桂英")},
      Date{2026, 11, 1});
  const auto paired = f.say("solo", "@帮扶助手 走访 孙秀兰户 今天");
  CHECK(paired.recorded);
  CHECK(paired.reply.find("孙*兰") != std::string::npos);
  const auto known = f.say("new", "@帮扶助手 走访 周桂英户 今天");
  CHECK(known.recorded);
  CHECK(known.reply.find("孙秀兰") == std::string::npos);
}
