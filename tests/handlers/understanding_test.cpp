#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "handlers/chinese_date.h"
#include "handlers/dispatcher.h"
#include "handlers/templates.h"
#include "handlers/text.h"
#include "handlers/understanding.h"

using handlers::Checkin;
using handlers::CommandMsg;
using handlers::ParseError;
using handlers::SenderContext;
using storage::Date;
using storage::Ledger;
using storage::Pairing;

namespace {

constexpr std::string_view kBot = "帮扶助手";
constexpr Date kToday{2026, 11, 28};  // a Saturday

// An error as the chat gets it, from the shipped templates (before the Dispatcher masks names).
std::string answer(const ParseError& e) {
  static const handlers::Templates kTemplates =
      handlers::Templates::load(BANGFU_SOURCE_DIR "/templates", {"ask", "error", "unknown_sender"});
  return handlers::render_question(kTemplates, e);
}

// Its first line: what is wrong and how to fix it (a second line lists names to choose from).
std::string sentence(const ParseError& e) {
  const std::string a = answer(e);
  return a.substr(0, a.find('\n'));
}

Pairing pairing(int64_t id, std::string helper, Ledger ledger, std::string household,
                std::string head, std::string person, std::string village) {
  Pairing p;
  p.id = id;
  p.helper_id = std::move(helper);
  p.ledger = ledger;
  p.household_id = std::move(household);
  p.household_head = std::move(head);
  p.person = std::move(person);
  p.village = std::move(village);
  return p;
}

// The roster as the senders see it today.
const std::map<std::string, SenderContext>& roster() {
  static const std::map<std::string, SenderContext> kRoster = [] {
    std::map<std::string, SenderContext> r;
    // A district cadre with three households, two of them with similar names.
    r["c01"] = {"c01",
                true,
                {pairing(1, "c01", Ledger::Cadre, "H0012", "王秀英", "", "张庄村"),
                 pairing(2, "c01", Ledger::Cadre, "H0013", "王秀芳", "", "张庄村"),
                 pairing(3, "c01", Ledger::Cadre, "H0020", "李德明", "", "李庄村")}};
    // A doctor with three patients; one is the household head himself.
    r["d01"] = {"d01",
                true,
                {pairing(4, "d01", Ledger::Health, "H0031", "赵大山", "赵桂兰", "东沟村"),
                 pairing(5, "d01", Ledger::Health, "H0032", "刘建华", "刘建华", "东沟村"),
                 pairing(6, "d01", Ledger::Health, "H0033", "孙大海", "孙小梅", "张庄村")}};
    // A teacher; 刘洋 is one student, 刘洋洋 the father of another.
    r["t01"] = {"t01",
                true,
                {pairing(7, "t01", Ledger::Education, "H0041", "刘大军", "刘洋", "西沟村"),
                 pairing(8, "t01", Ledger::Education, "H0042", "刘洋洋", "刘小雨", "西沟村"),
                 pairing(9, "t01", Ledger::Education, "H0043", "陈国庆", "陈思", "李庄村")}};
    // A cadre with exactly one household.
    r["s01"] = {"s01", true, {pairing(10, "s01", Ledger::Cadre, "H0050", "陈玉兰", "", "北山村")}};
    // A cadre with two households headed by a 王秀英, in different villages.
    r["c02"] = {"c02",
                true,
                {pairing(11, "c02", Ledger::Cadre, "H0061", "王秀英", "", "东沟村"),
                 pairing(12, "c02", Ledger::Cadre, "H0062", "王秀英", "", "西沟村"),
                 pairing(13, "c02", Ledger::Cadre, "H0033", "孙大海", "", "张庄村")}};
    // A doctor serving 王秀英 and her husband, in the household she heads, and 周建国.
    r["d02"] = {"d02",
                true,
                {pairing(14, "d02", Ledger::Health, "H0070", "王秀英", "王秀英", "赵营村"),
                 pairing(15, "d02", Ledger::Health, "H0070", "王秀英", "李国强", "赵营村"),
                 pairing(16, "d02", Ledger::Health, "H0071", "周建国", "周建国", "赵营村")}};
    // A doctor with two patients called 王秀英 in one village: only the number tells them apart.
    r["d03"] = {"d03",
                true,
                {pairing(17, "d03", Ledger::Health, "H0090", "张志强", "王秀英", "东沟村"),
                 pairing(18, "d03", Ledger::Health, "H0091", "李明", "王秀英", "东沟村")}};
    // A teacher with one student.
    r["t02"] = {"t02",
                true,
                {pairing(19, "t02", Ledger::Education, "H0080", "吴大伟", "吴小龙", "南岭村")}};
    // On the roster, but no pairing in force today.
    r["e01"] = {"e01", true, {}};
    // Not on the roster at all.
    r["u99"] = {"u99", false, {}};
    return r;
  }();
  return kRoster;
}

std::string join(const std::vector<std::string>& items, const char* sep = ",") {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

}  // namespace

TEST_CASE("understand reads check-ins, commands and mistakes", "[handlers]") {
  // expect: "checkin", "cmd:<code>" or an error code.
  // who: a check-in's pairing name (optionally "/household"), or an error's first suggestion
  //      ("" = no suggestions). note/problems: "-" = not checked; problems joined by '|'.
  auto [sender, text, expect, who, date, mode, occasions, policies, note,
        problems] = GENERATE(table<const char*, const char*, const char*, const char*, const char*,
                                   const char*, const char*, const char*, const char*,
                                   const char*>({
      // Commands, for anyone.
      {"c01", "撤销", "cmd:undo", "", "", "", "", "", "-", "-"},
      {"c01", "我的结对", "cmd:my_pairings", "", "", "", "", "", "-", "-"},
      {"c01", "本月进度", "cmd:progress", "", "", "", "", "", "-", "-"},
      {"c01", "帮助", "cmd:help", "", "", "", "", "", "-", "-"},
      {"u99", "@帮扶助手 帮助", "cmd:help", "", "", "", "", "", "-", "-"},
      {"c01", "？", "cmd:help", "", "", "", "", "", "-", "-"},
      {"c01", "HELP!", "cmd:help", "", "", "", "", "", "-", "-"},
      {"c01", "进度。", "cmd:progress", "", "", "", "", "", "-", "-"},
      {"c01", "撤回！", "cmd:undo", "", "", "", "", "", "-", "-"},
      {"c01", "＠帮扶助手　撤销", "cmd:undo", "", "", "", "", "", "-", "-"},

      // The examples of the issue.
      {"c01", "@帮扶助手 走访 王秀英户 今天 送去棉被，老人腿疼已联系村医", "checkin", "王秀英",
       "2026-11-28", "visit", "", "", "送去棉被，老人腿疼已联系村医", ""},
      {"c01", "打卡：户主李德明，11月26日，生病住院必访，到县医院看望，落实医疗救助", "checkin",
       "李德明", "2026-11-26", "visit", "illness", "medical_aid",
       "生病住院必访，到县医院看望，落实医疗救助", ""},
      {"t01", "#家访 学生刘洋 11.20 辅导数学一小时 心理状态良好", "checkin", "刘洋", "2026-11-20",
       "home_visit", "", "", "辅导数学一小时 心理状态良好", ""},
      {"d01", "上门服务 赵桂兰 测血压 用药指导 康复训练", "checkin", "赵桂兰", "2026-11-28",
       "service", "", "", "测血压 用药指导 康复训练", ""},
      {"c02", "走访张庄村孙大海家 发现应享未享低保 已报民政", "checkin", "孙大海", "2026-11-28",
       "visit", "", "minimum_living", "发现应享未享低保 已报民政", "应享未享低保"},
      {"s01", "昨天去了陈玉兰家，中秋节送月饼", "checkin", "陈玉兰", "2026-11-27", "visit",
       "festival", "", "中秋节送月饼", ""},

      // Ways of naming the pairing.
      {"c01", "王秀英家 今天 送米面油", "checkin", "王秀英", "2026-11-28", "visit", "", "",
       "送米面油", ""},
      {"c01", "走访王秀芳户 11月25号", "checkin", "王秀芳", "2026-11-25", "visit", "", "", "", ""},
      {"c01", "户主 李德明 前天 入户走访", "checkin", "李德明", "2026-11-26", "visit", "", "",
       "入户走访", ""},
      {"c01", "11.27 看望李德明 帮助打扫卫生", "checkin", "李德明", "2026-11-27", "visit", "", "",
       "帮助打扫卫生", ""},
      {"c01", "上周五 走访 王秀英户 了解生活情况", "checkin", "王秀英", "2026-11-20",
       "visit", "", "", "了解生活情况", ""},
      {"c01", "h0020 今天入户 老人身体还行", "checkin", "李德明", "2026-11-28", "visit", "", "",
       "入户 老人身体还行", ""},
      {"c01", "于11月26日走访王秀英户 送米", "checkin", "王秀英", "2026-11-26", "visit", "", "",
       "送米", ""},
      {"t01", "家访 刘洋洋家 今天 辅导英语", "checkin", "刘小雨/H0042", "2026-11-28",
       "home_visit", "", "", "辅导英语", ""},
      {"t01", "家访 学生刘洋 昨天", "checkin", "刘洋/H0041", "2026-11-27", "home_visit", "", "", "",
       ""},
      {"t01", "刘小雨 校访 上周三 学习有进步", "checkin", "刘小雨", "2026-11-18",
       "school_visit", "", "", "校访 学习有进步", ""},
      {"d01", "上门服务 赵大山家 测血压", "checkin", "赵桂兰", "2026-11-28", "service", "", "",
       "测血压", ""},
      {"c02", "走访 西沟村王秀英户 今天", "checkin", "王秀英/H0062", "2026-11-28",
       "visit", "", "", "", ""},
      {"c02", "王秀英户 H0061 送棉衣", "checkin", "王秀英/H0061", "2026-11-28", "visit", "", "",
       "送棉衣", ""},
      {"c02", "东沟 王秀英户 昨天 送棉衣", "checkin", "王秀英/H0061", "2026-11-27", "visit", "", "",
       "送棉衣", ""},
      {"c02", "看望孙大海 老人摔伤了 住院治疗", "checkin", "孙大海", "2026-11-28", "visit",
       "illness,accident", "", "老人摔伤了 住院治疗", ""},
      {"s01", "今天走访了", "checkin", "陈玉兰", "2026-11-28", "visit", "", "", "走访了", ""},
      {"s01", "走访", "checkin", "陈玉兰", "2026-11-28", "visit", "", "", "", ""},

      // Names that are not the sender's, and names that fit several pairings.
      {"c01", "走访 孙大海家 今天", "not_paired", "王秀英", "", "", "", "", "-", "-"},
      // One character off a pairing's name: asked back (issue 9), not a stranger.
      {"c01", "看望李德民 今天", "did_you_mean", "", "", "", "", "", "-", "-"},
      {"c01", "户主王秀华，11月20日", "did_you_mean", "", "", "", "", "", "-", "-"},
      {"c01", "看望李建民 今天", "not_paired", "李德明", "", "", "", "", "-", "-"},
      {"c01", "走访王秀英华家", "not_paired", "王秀英", "", "", "", "", "-", "-"},
      {"d01", "患者孙小红 测血压", "did_you_mean", "", "", "", "", "", "-", "-"},
      {"s01", "走访孙大海家 今天", "not_paired", "陈玉兰", "", "", "", "", "-", "-"},
      {"e01", "走访 今天", "not_paired", "", "", "", "", "", "-", "-"},
      {"c02", "走访 王秀英户 今天", "ambiguous", "王秀英（东沟村 H0061）", "", "", "", "", "-",
       "-"},
      // Several beneficiaries in one message: one check-in each (issue 9).
      {"c01", "走访王秀英户和李德明户", "group:2", "", "", "", "", "", "-", "-"},
      {"c01", "今天走访了", "ambiguous", "王秀英", "", "", "", "", "-", "-"},
      {"d01", "上门服务 今天", "ambiguous", "赵桂兰", "", "", "", "", "-", "-"},

      // A person wins over the pairings of the household she heads.
      {"d02", "上门服务 王秀英 测血压", "checkin", "王秀英/H0070", "2026-11-28", "service", "", "",
       "测血压", ""},
      {"d02", "打卡：王秀英，上门服务，康复训练", "checkin", "王秀英", "2026-11-28",
       "service", "", "", "上门服务，康复训练", ""},
      {"d02", "上门服务 李国强 测血压", "checkin", "李国强/H0070", "2026-11-28", "service", "", "",
       "测血压", ""},
      {"d02", "王秀英家 李国强 昨天 测血压", "checkin", "李国强", "2026-11-27", "service", "", "",
       "测血压", ""},
      {"d02", "上门服务 赵营村王秀英 测血压", "checkin", "王秀英", "2026-11-28", "service", "", "",
       "测血压", ""},
      {"d02", "上门服务 H0070 测血压", "ambiguous", "王秀英（赵营村 H0070）", "", "", "", "", "-",
       "-"},
      {"d02", "上门服务 王秀英和周建国", "group:2", "", "", "", "", "", "-", "-"},
      {"d02", "上门服务 今天", "ambiguous", "王秀英", "", "", "", "", "-", "-"},
      {"d03", "上门服务 王秀英 测血压", "ambiguous", "王秀英（东沟村 H0090）", "", "", "", "", "-",
       "-"},
      {"d03", "上门服务 东沟村王秀英 测血压", "ambiguous", "王秀英（东沟村 H0090）", "", "", "", "",
       "-", "-"},
      {"d03", "上门服务 H0091 王秀英 测血压", "checkin", "王秀英/H0091", "2026-11-28",
       "service", "", "", "测血压", ""},

      // Weekdays are dates, never names; 周 is still a surname.
      {"t02", "周四家访 心理状态良好", "checkin", "吴小龙", "2026-11-26", "home_visit", "", "",
       "家访 心理状态良好", ""},
      {"t01", "周四家访 心理状态良好", "ambiguous", "刘洋", "", "", "", "", "-", "-"},
      {"t02", "@帮扶助手 本周一家访 考上高中了", "checkin", "吴小龙", "2026-11-23", "home_visit",
       "exam", "", "家访 考上高中了", ""},
      {"t02", "上周二家访", "checkin", "吴小龙", "2026-11-17", "home_visit", "", "", "家访", ""},
      {"t02", "周六家访", "checkin", "吴小龙", "2026-11-28", "home_visit", "", "", "家访", ""},
      {"t02", "星期三走访", "checkin", "吴小龙", "2026-11-25", "visit", "", "", "走访", ""},
      {"t02", "礼拜天看望", "checkin", "吴小龙", "2026-11-22", "visit", "", "", "看望", ""},
      {"t02", "周日家访 辅导数学", "checkin", "吴小龙", "2026-11-22", "home_visit", "", "",
       "家访 辅导数学", ""},
      {"s01", "周四入户走访 了解生活情况", "checkin", "陈玉兰", "2026-11-26", "visit", "", "",
       "入户走访 了解生活情况", ""},
      {"c01", "周四入户走访", "ambiguous", "王秀英", "", "", "", "", "-", "-"},
      {"d02", "周四上门服务 周建国 测血压", "checkin", "周建国", "2026-11-26", "service", "", "",
       "测血压", ""},
      {"d02", "周建国 周五 测血压", "checkin", "周建国", "2026-11-27", "service", "", "", "测血压",
       ""},
      {"t02", "周四家访 学生周建国", "not_paired", "吴小龙", "", "", "", "", "-", "-"},
      {"c01", "走访周建国家 今天", "not_paired", "王秀英", "", "", "", "", "-", "-"},
      {"s01", "走访周一鸣家", "not_paired", "陈玉兰", "", "", "", "", "-", "-"},

      // Dates.
      {"c01", "走访 王秀英户 １１月２６日", "checkin", "王秀英", "2026-11-26", "visit", "", "", "",
       ""},
      {"c01", "走访 王秀英户 2026-11-03", "checkin", "王秀英", "2026-11-03", "visit", "", "", "",
       ""},
      {"c01", "走访 王秀英户 2026年11月3日", "checkin", "王秀英", "2026-11-03", "visit", "", "", "",
       ""},
      {"c01", "走访 王秀英户 2026.11.3", "checkin", "王秀英", "2026-11-03", "visit", "", "", "",
       ""},
      {"c01", "走访 王秀英户 11/21", "checkin", "王秀英", "2026-11-21", "visit", "", "", "", ""},
      {"c01", "走访 王秀英户 26号", "checkin", "王秀英", "2026-11-26", "visit", "", "", "", ""},
      {"c01", "走访 王秀英户 30号", "checkin", "王秀英", "2026-10-30", "visit", "", "", "", ""},
      {"c01", "十一月二十日 走访王秀英户", "checkin", "王秀英", "2026-11-20", "visit", "", "", "",
       ""},
      {"c01", "十一月廿日 走访王秀英户", "checkin", "王秀英", "2026-11-20", "visit", "", "", "",
       ""},
      {"c01", "二十六号走访王秀英户", "checkin", "王秀英", "2026-11-26", "visit", "", "", "", ""},
      {"c01", "12月20日 走访王秀英户", "checkin", "王秀英", "2025-12-20", "visit", "", "", "", ""},
      {"c01", "去年12月30日 走访王秀英户", "checkin", "王秀英", "2025-12-30", "visit", "", "", "",
       ""},
      {"c01", "大前天 走访李德明户", "checkin", "李德明", "2026-11-25", "visit", "", "", "", ""},
      {"c01", "昨日 走访李德明户", "checkin", "李德明", "2026-11-27", "visit", "", "", "", ""},
      {"c01", "上周日 走访李德明户", "checkin", "李德明", "2026-11-22", "visit", "", "", "", ""},
      {"c01", "周五 走访李德明户", "checkin", "李德明", "2026-11-27", "visit", "", "", "", ""},
      {"c01", "11月30日 走访李德明户", "future_date", "", "", "", "", "", "-", "-"},
      {"c01", "明天 走访李德明户", "future_date", "", "", "", "", "", "-", "-"},
      {"c01", "2026-12-01 走访李德明户", "future_date", "", "", "", "", "", "-", "-"},
      {"c01", "2月30日 走访李德明户", "invalid_date", "", "", "", "", "", "-", "-"},
      {"c01", "13月2日 走访李德明户", "invalid_date", "", "", "", "", "", "-", "-"},
      {"c01", "2026年2月29日 走访李德明户", "invalid_date", "", "", "", "", "", "-", "-"},
      {"c01", "走访李德明户 陪老人聊了1.5小时", "checkin", "李德明", "2026-11-28", "visit", "", "",
       "陪老人聊了1.5小时", ""},
      {"d01", "上门服务 赵桂兰 血糖7.8 血压130/80", "checkin", "赵桂兰", "2026-11-28", "service",
       "", "", "血糖7.8 血压130/80", ""},
      {"c01", "走访王秀英户 送大米3.5斤 食用油2桶", "checkin", "王秀英", "2026-11-28", "visit", "",
       "", "送大米3.5斤 食用油2桶", ""},
      {"t02", "家访 7.9 升学考试必访", "checkin", "吴小龙", "2026-07-09", "home_visit", "exam", "",
       "升学考试必访", ""},
      {"t02", "7月13吴小龙 升学考试必访", "checkin", "吴小龙", "2026-07-13", "home_visit", "exam",
       "", "升学考试必访", ""},
      {"c01", "11.20 元宵节走访王秀英户", "checkin", "王秀英", "2026-11-20", "visit", "festival",
       "", "元宵节", ""},
      {"c01", "李德明户 住院在5号楼 11.24 看望", "checkin", "李德明", "2026-11-24", "visit",
       "illness", "", "住院在5号楼 看望", ""},

      // Modes: explicit words, then the doctor's actions, then the ledger.
      {"d01", "电话随访 赵桂兰 昨天 血压平稳", "checkin", "赵桂兰", "2026-11-27", "phone", "", "",
       "血压平稳", ""},
      {"c01", "电联王秀芳 询问近况", "checkin", "王秀芳", "2026-11-28", "phone", "", "",
       "电联 询问近况", ""},
      {"t01", "视频通话 刘洋 了解学习情况", "checkin", "刘洋", "2026-11-28", "phone", "", "",
       "了解学习情况", ""},
      {"c01", "微信联系李德明 老人说一切都好", "checkin", "李德明", "2026-11-28", "phone", "", "",
       "微信联系 老人说一切都好", ""},
      {"d01", "赵桂兰 测血压 查体", "checkin", "赵桂兰", "2026-11-28", "service", "", "",
       "测血压 查体", ""},
      {"d01", "看望 刘建华 今天", "checkin", "刘建华", "2026-11-28", "visit", "", "", "", ""},
      // A doctor's 上门 with a service act is a service (issue 9; it was a plain visit).
      {"d01", "刘建华 上门 测血压", "checkin", "刘建华", "2026-11-28", "service", "", "",
       "上门 测血压", ""},
      {"d01", "刘建华 今天 心理疏导", "checkin", "刘建华", "2026-11-28", "service", "", "",
       "心理疏导", ""},
      {"t01", "陈思 今天 辅导功课", "checkin", "陈思", "2026-11-28", "home_visit", "", "",
       "辅导功课", ""},
      {"c01", "李德明户 今天 电话联系了儿子 走访时老人在家", "checkin", "李德明", "2026-11-28",
       "visit", "", "", "电话联系了儿子 走访时老人在家", ""},
      {"c01", "王秀英户 今天", "checkin", "王秀英", "2026-11-28", "visit", "", "", "", ""},
      {"t01", "校访 学生陈思 11月27日 与班主任交流", "checkin", "陈思", "2026-11-27",
       "school_visit", "", "", "与班主任交流", ""},

      // Occasions, policies and problems.
      {"c01", "王秀芳户 今天 老人去世 参加葬礼 慰问家属", "checkin", "王秀芳", "2026-11-28",
       "visit", "wedding_funeral", "", "老人去世 参加葬礼 慰问家属", ""},
      {"t01", "陈思 中考前家访 鼓励备考", "checkin", "陈思", "2026-11-28", "home_visit", "exam", "",
       "中考前家访 鼓励备考", ""},
      {"c01", "李德明户 昨天 老人骨折 落实大病救助和医保报销", "checkin", "李德明", "2026-11-27",
       "visit", "accident", "medical_aid", "老人骨折 落实大病救助和医保报销", ""},
      {"t01", "刘洋 雨露计划已申请 春节前家访", "checkin", "刘洋", "2026-11-28", "home_visit",
       "festival", "education_aid", "雨露计划已申请 春节前家访", ""},
      {"c01", "王秀英户 今天 危房改造已完成 低保已落实", "checkin", "王秀英", "2026-11-28", "visit",
       "", "housing,minimum_living", "危房改造已完成 低保已落实", ""},
      {"c01", "王秀英户 今天 发现住房困难，需要危改", "checkin", "王秀英", "2026-11-28", "visit",
       "", "housing", "发现住房困难，需要危改", "住房困难|需要危改"},
      {"c01", "李德明户 今天 老人说没问题 家里不缺吃穿", "checkin", "李德明", "2026-11-28", "visit",
       "", "", "老人说没问题 家里不缺吃穿", ""},
      {"d01", "孙小梅 今天 康复训练 家里缺轮椅", "checkin", "孙小梅", "2026-11-28", "service", "",
       "", "康复训练 家里缺轮椅", "家里缺轮椅"},

      // Not a check-in, or not someone who may check in.
      {"u99", "走访 王秀英户 今天", "unknown_sender", "-", "", "", "", "", "-", "-"},
      {"u99", "大家好", "unknown_sender", "-", "", "", "", "", "-", "-"},
      {"c01", "大家好", "not_understood", "走访 王某某户 今天 送去棉被", "", "", "", "", "-", "-"},
      {"c01", "收到", "not_understood", "走访 王某某户 今天 送去棉被", "", "", "", "", "-", "-"},
      {"s01", "收到，谢谢", "not_understood", "走访 王某某户 今天 送去棉被", "", "", "", "", "-",
       "-"},
      {"c01", "怎么打卡？", "cmd:help", "", "", "", "", "", "-", "-"},
      {"c01", "@帮扶助手", "not_understood", "走访 王某某户 今天 送去棉被", "", "", "", "", "-",
       "-"},

      // Phone typing: full-width forms, stray spaces and punctuation, mentions anywhere.
      {"c01", "＠帮扶助手　走访　王秀英户　１１月２６日　送棉被！", "checkin", "王秀英",
       "2026-11-26", "visit", "", "", "送棉被", ""},
      {"c01", "@张主任 @帮扶助手 走访  王秀英户   今天", "checkin", "王秀英", "2026-11-28", "visit",
       "", "", "", ""},
      {"c01", "  走访王秀英户，，今天。。送去棉被  ", "checkin", "王秀英", "2026-11-28", "visit",
       "", "", "送去棉被", ""},
      {"c01", "打卡:王秀英户 11月26号 送被子", "checkin", "王秀英", "2026-11-26", "visit", "", "",
       "送被子", ""},
      {"c01", "走访 王秀英户 今天 @帮扶助手", "checkin", "王秀英", "2026-11-28", "visit", "", "",
       "", ""},
      {"c01", "@帮扶助手走访李德明户，１１．２５，送米！", "checkin", "李德明", "2026-11-25",
       "visit", "", "", "送米", ""},
  }));

  CAPTURE(sender, text);
  const auto u = handlers::understand(text, roster().at(sender), kToday, kBot);
  const std::string expected(expect);

  if (expected == "checkin") {
    REQUIRE(std::holds_alternative<Checkin>(u));
    const auto& c = std::get<Checkin>(u);
    std::string name = who, household;
    if (auto slash = name.find('/'); slash != std::string::npos) {
      household = name.substr(slash + 1);
      name.resize(slash);
    }
    CHECK(c.name == name);
    if (!household.empty()) CHECK(c.household_id == household);
    CHECK(c.helper_id == sender);
    CHECK(c.visit_date.iso() == date);
    CHECK(storage::mode_code(c.mode) == mode);
    CHECK(join(c.occasions) == occasions);
    CHECK(join(c.policies) == policies);
    if (std::string(note) != "-") CHECK(c.note == note);
    if (std::string(problems) != "-") CHECK(join(c.problems, "|") == problems);
  } else if (expected.starts_with("group:")) {
    REQUIRE(std::holds_alternative<handlers::CheckinGroup>(u));
    CHECK(std::to_string(std::get<handlers::CheckinGroup>(u).checkins.size()) ==
          expected.substr(6));
  } else if (expected.starts_with("cmd:")) {
    REQUIRE(std::holds_alternative<CommandMsg>(u));
    CHECK(handlers::command_code(std::get<CommandMsg>(u).command) == expected.substr(4));
  } else {
    REQUIRE(std::holds_alternative<ParseError>(u));
    const auto& e = std::get<ParseError>(u);
    CHECK(e.code == expected);
    CHECK_FALSE(answer(e).empty());
    if (std::string(who) != "-") {
      if (std::string(who).empty()) {
        CHECK(e.suggestions.empty());
      } else {
        REQUIRE_FALSE(e.suggestions.empty());
        CHECK(e.suggestions.front() == who);
      }
    }
  }
}

TEST_CASE("error messages say what is wrong and how to fix it", "[handlers]") {
  const auto error_of = [](const char* sender, const char* text) {
    const auto u = handlers::understand(text, roster().at(sender), kToday, kBot);
    REQUIRE(std::holds_alternative<ParseError>(u));
    return std::get<ParseError>(u);
  };
  SECTION("not paired names the stranger and ranks the sender's names by likeness") {
    const auto e = error_of("c01", "看望李建民 今天");
    CHECK(sentence(e) == "你的结对名单里没有「李*民」。请核对姓名后重发，可参考下面你结对的名字。");
    CHECK(e.suggestions == std::vector<std::string>{"李德明", "王秀英", "王秀芳"});
    // The names line is the sender's own pairings, masked by the Dispatcher with the reply.
    CHECK(answer(e) == sentence(e) + "\n你的结对：李德明、王秀英、王秀芳");
  }
  SECTION("two pairings of one name ask for the village or household number") {
    const auto e = error_of("c02", "走访 王秀英户 今天");
    CHECK(sentence(e) ==
          "你结对的对象里有2位「王秀英」，请加上村名或户编号再发，如：走访 东沟村王*英户 今天。");
    CHECK(e.suggestions ==
          std::vector<std::string>{"王秀英（东沟村 H0061）", "王秀英（西沟村 H0062）"});
    CHECK(answer(e) == sentence(e) + "\n可能是：王秀英（东沟村 H0061）、王秀英（西沟村 H0062）");
  }
  SECTION("a name the household head shares with its members: the example names one alone") {
    const auto e = error_of("d02", "上门服务 H0070 测血压");
    CHECK(sentence(e) == "「H0070」对应你的2位结对对象，请写明是哪一位，如：上门服务 王*英 今天。");
    CHECK(e.suggestions ==
          std::vector<std::string>{"王秀英（赵营村 H0070）", "李国强（赵营村 H0070）"});
  }
  SECTION("two pairings of one name in one village ask for the household number") {
    const auto e = error_of("d03", "上门服务 王秀英 测血压");
    CHECK(sentence(e) ==
          "你结对的对象里有2位「王秀英」，请加上村名或户编号再发，如：上门服务 "
          "H0090 王*英 今天。");
  }
  SECTION("weekday words are no names") {
    const auto e = error_of("t02", "周四家访 学生周建国");
    CHECK(sentence(e) == "你的结对名单里没有「周*国」。请核对姓名后重发，可参考下面你结对的名字。");
  }
  SECTION("no name among several pairings asks whom") {
    const auto e = error_of("c01", "今天走访了");
    CHECK(sentence(e) == "你有3位结对对象，请写明走访对象，如：走访 王*英户 今天。");
    CHECK(e.suggestions == std::vector<std::string>{"王秀英", "王秀芳", "李德明"});
  }
  SECTION("dates") {
    CHECK(sentence(error_of("c01", "11月30日 走访李德明户")) ==
          "11月30日还没到，只能记已经走访过的日期。请写实际走访的日期，如：今天、昨天。");
    CHECK(sentence(error_of("c01", "2月29日 走访李德明户")) ==
          "没有2026年2月29日这一天（2026年2月只有28天），请核对日期后重发。");
    CHECK(sentence(error_of("c01", "13月2日 走访李德明户")) ==
          "日期「13月2日」不对，月份只有1到12月，请核对后重发。");
  }
  SECTION("the unknown sender is sent to the poverty office") {
    CHECK(sentence(error_of("u99", "走访 王秀英户 今天")) ==
          "你还不在帮扶名册里，暂时不能打卡。请联系扶贫办把你加入名册后再发。");
  }
  SECTION("messages never repeat an illness") {
    const auto e = error_of("d01", "患者钱小红 住院 手术后 测血压");
    CHECK(e.code == "not_paired");
    CHECK(sentence(e).find("住院") == std::string::npos);
    CHECK(sentence(e).find("手术") == std::string::npos);
  }
}

TEST_CASE("an ambiguous message never suggests text that is ambiguous again", "[handlers]") {
  auto [sender, text] = GENERATE(table<const char*, const char*>({
      {"c01", "今天走访了"},
      {"c02", "走访 王秀英户 今天"},
      {"c02", "今天走访了"},
      {"d01", "上门服务 今天"},
      {"d02", "上门服务 H0070 测血压"},
      {"d02", "上门服务 今天"},
      {"d03", "上门服务 王秀英 测血压"},
      {"d03", "上门服务 东沟村王秀英 测血压"},
      {"t01", "周四家访 心理状态良好"},
  }));
  CAPTURE(sender, text);
  const auto u = handlers::understand(text, roster().at(sender), kToday, kBot);
  REQUIRE(std::holds_alternative<ParseError>(u));
  const std::string message = sentence(std::get<ParseError>(u));
  CHECK(std::get<ParseError>(u).code == "ambiguous");
  const std::size_t b = message.find("如：");
  REQUIRE(b != std::string::npos);
  const std::size_t e = message.find("。", b);
  REQUIRE(e != std::string::npos);
  const std::string example =
      message.substr(b + std::string_view("如：").size(), e - b - std::string_view("如：").size());
  CAPTURE(example);
  // The example masks the name (it is posted to the group); the helper writes it in full. Any
  // pairing whose masked name it shows will do: the village or household number must pick one.
  bool tried = false;
  for (const auto& p : roster().at(sender).pairings) {
    std::string full = example;
    const std::string masked = handlers::mask_name(p.display_name());
    const std::size_t at = full.find(masked);
    if (at == std::string::npos) continue;
    full.replace(at, masked.size(), p.display_name());
    CAPTURE(full);
    tried = true;
    CHECK(std::holds_alternative<Checkin>(
        handlers::understand(full, roster().at(sender), kToday, kBot)));
    break;
  }
  CHECK(tried);
}

TEST_CASE("join puts the separator only between items", "[handlers]") {
  // Used for the names in a question, the occasions of a ledger row and the CLI's words.
  CHECK(handlers::join({}, "、").empty());
  CHECK(handlers::join({"王秀英"}, "、") == "王秀英");
  CHECK(handlers::join({"王秀英", "李建国", "张桂兰"}, "、") == "王秀英、李建国、张桂兰");
  CHECK(handlers::join({"走访", "电话"}, "") == "走访电话");
}

TEST_CASE("the word-table helpers agree with std::string_view", "[handlers]") {
  // has_prefix / has_suffix replace starts_with / ends_with in the parser's hot loops; they
  // must answer exactly as the standard ones on every pair.
  const std::vector<std::string_view> texts = {
      "", "前几天", "前几天去了王秀英家", "王", "a前", "\xE5\x89", "走访了前天", "前前几天几"};
  const std::vector<std::string_view> words = {
      "", "前", "前几天", "几天", "前天", "王秀英家", "\xE5", "\x89\x8D", "走访了前天走"};
  for (std::string_view t : texts) {
    for (std::string_view w : words) {
      CAPTURE(t, w);
      CHECK(handlers::has_prefix(t, w) == t.starts_with(w));
      CHECK(handlers::has_suffix(t, w) == t.ends_with(w));
    }
  }
  constexpr std::string_view kChars = "王李张z刘";
  constexpr handlers::CharSet set(kChars);
  for (std::string_view c : {"王", "李", "张", "刘", "z", "赵", "a", "周"}) {
    CAPTURE(c);
    CHECK(set.contains(handlers::utf8_at(c, 0)) == (kChars.find(c) != std::string_view::npos));
  }
  constexpr std::string_view kWords[] = {"前几天", "月初", "上周"};
  constexpr auto first = handlers::CharSet::first_chars_of(kWords);
  CHECK(first.contains(U'前'));
  CHECK(first.contains(U'上'));
  CHECK_FALSE(first.contains(U'几'));
}

TEST_CASE("normalize strips mentions and folds widths", "[handlers]") {
  auto [in, out] = GENERATE(table<const char*, const char*>({
      {"@帮扶助手 走访 王秀英户", "走访 王秀英户"},
      {"＠帮扶助手　走访", "走访"},
      {"@帮扶助手\u2005走访", "走访"},
      {"@帮扶助手走访", "走访"},
      {"@张主任 @帮扶助手 撤销", "撤销"},
      {"走访 王秀英户 @帮扶助手", "走访 王秀英户"},
      {"请@李主任 看一下", "请@李主任 看一下"},
      {"１１月２６日", "11月26日"},
      {"１１．２０ ＃家访 Ｈ００１２", "11.20 #家访 H0012"},
      {"打卡：户主李德明，送米！好吗？（完）", "打卡：户主李德明，送米！好吗？（完）"},
      {"  走访\t\n王秀英户  \r\n ", "走访 王秀英户"},
      {"走访\u200b王秀英户", "走访王秀英户"},
      {"", ""},
      {"@帮扶助手", ""},
  }));
  CAPTURE(in);
  CHECK(handlers::normalize(in, kBot) == out);
  CHECK(handlers::normalize("a\xff"
                            "b",
                            kBot) ==
        "a\xEF\xBF\xBD"
        "b");
}

TEST_CASE("find_date resolves dates against today", "[handlers]") {
  using Status = handlers::DateToken::Status;
  auto [today, text, status, expected] =
      GENERATE(table<const char*, const char*, Status, const char*>({
          {"2026-01-03", "12月30日", Status::Ok, "2025-12-30"},
          {"2026-01-03", "31号", Status::Ok, "2025-12-31"},
          {"2026-01-03", "上周五", Status::Ok, "2025-12-26"},
          {"2026-01-03", "1月4日", Status::Future, "2026-01-04"},
          {"2026-11-28", "上周五", Status::Ok, "2026-11-20"},
          {"2026-11-28", "上周一", Status::Ok, "2026-11-16"},
          {"2026-11-28", "上星期天", Status::Ok, "2026-11-22"},
          {"2026-11-28", "周六", Status::Ok, "2026-11-28"},
          {"2026-11-28", "周日", Status::Ok, "2026-11-22"},
          {"2026-11-28", "本周日", Status::Future, "2026-11-29"},
          {"2026-11-30", "上周日", Status::Ok, "2026-11-29"},
          {"2026-11-28", "2月29日", Status::Invalid, ""},
          {"2028-03-01", "2月29日", Status::Ok, "2028-02-29"},
          {"2026-03-05", "26号", Status::Ok, "2026-02-26"},
          {"2026-03-05", "30号", Status::Invalid, ""},
          {"2026-11-28", "4月31日", Status::Invalid, ""},
          {"2026-11-28", "二〇二六年十一月三日", Status::Ok, "2026-11-03"},
          {"2026-11-28", "九月九日重阳", Status::Ok, "2026-09-09"},
          {"2026-11-28", "十月一号", Status::Ok, "2026-10-01"},
          {"2026-11-28", "11-20走访", Status::Ok, "2026-11-20"},
          {"2026-11-28", "11月26 走访", Status::Ok, "2026-11-26"},
          {"2026-11-28", "今年3月8日", Status::Ok, "2026-03-08"},
          {"2026-11-28", "后天", Status::Future, "2026-11-30"},
      }));
  CAPTURE(today, text);
  const auto t = handlers::find_date(text, *Date::parse_iso(today));
  REQUIRE(t);
  CHECK(t->status == status);
  if (status != Status::Invalid) CHECK(t->date.iso() == expected);
  CHECK(t->begin == 0);
}

TEST_CASE("find_date leaves quantities, readings and counts alone", "[handlers]") {
  auto text =
      GENERATE(as<std::string>{}, "辅导1.5小时", "送大米3.5斤", "血糖7.8", "血压 120/80",
               "体温36.5", "下午2.30到", "3号楼", "一日三餐", "每月5号发放", "一周三次",
               "之前天气冷", "三个月", "电话13812345678", "H0012", "2.30元", "第一次", "十分感谢",
               "5号床", "3组12号", "上午10点", "十点半", "2袋米", "200元", "3个小时", "145/95");
  CAPTURE(text);
  CHECK_FALSE(handlers::find_date(text, kToday).has_value());
}

TEST_CASE("find_date marks a month without a day as vague and several days as a range",
          "[handlers]") {
  using S = handlers::DateToken::Status;
  auto [text, status] = GENERATE(table<const char*, S>({
      {"11月", S::Vague},
      {"11月份走访", S::Vague},
      {"上个月", S::Vague},
      {"上月底", S::Vague},
      {"前几天", S::Vague},
      {"上周", S::Vague},
      {"12月1日至3日", S::Range},
      {"1-3号", S::Range},
      {"11.20-11.22", S::Range},
      {"周一到周三", S::Range},
      {"上个月15号", S::Ok},
      {"前日", S::Ok},
      {"上上周三", S::Ok},
  }));
  CAPTURE(text);
  const auto t = handlers::find_date(text, kToday);
  REQUIRE(t.has_value());
  CHECK(t->status == status);
}

TEST_CASE("the first date in the text wins and its span is exact", "[handlers]") {
  const std::string text = "走访 11.20 又去了 11.25";
  const auto t = handlers::find_date(text, kToday);
  REQUIRE(t);
  CHECK(t->date.iso() == "2026-11-20");
  CHECK(text.substr(t->begin, t->end - t->begin) == "11.20");
  CHECK(handlers::weekday(kToday) == 5);
  CHECK(handlers::weekday(Date{2026, 11, 23}) == 0);
}

TEST_CASE("year rollover through understand", "[handlers]") {
  const auto u =
      handlers::understand("走访 王秀英户 12月30日", roster().at("c01"), Date{2026, 1, 3}, kBot);
  REQUIRE(std::holds_alternative<Checkin>(u));
  CHECK(std::get<Checkin>(u).visit_date.iso() == "2025-12-30");
}

TEST_CASE("to_json prints the fixed schema", "[handlers]") {
  SECTION("a household check-in has a null person") {
    const auto u =
        handlers::understand("打卡：户主李德明，11月26日，生病住院必访，到县医院看望，落实医疗救助",
                             roster().at("c01"), kToday, kBot);
    CHECK(handlers::to_json(u) ==
          R"({"kind":"checkin","helper_id":"c01","household_id":"H0020","person":null,)"
          R"("visit_date":"2026-11-26","mode":"visit","occasions":["illness"],)"
          R"("policies":["medical_aid"],"problems":[],)"
          R"("note":"生病住院必访，到县医院看望，落实医疗救助",)"
          R"("checkins":[{"helper_id":"c01","household_id":"H0020","person":null,)"
          R"("visit_date":"2026-11-26","mode":"visit","occasions":["illness"],)"
          R"("policies":["medical_aid"],"problems":[],)"
          R"("note":"生病住院必访，到县医院看望，落实医疗救助"}]})");
  }
  SECTION("a person check-in carries the person") {
    const auto u = handlers::understand("走访张庄村孙大海家 发现应享未享低保 已报民政",
                                        roster().at("d01"), kToday, kBot);
    CHECK(handlers::to_json(u) ==
          R"({"kind":"checkin","helper_id":"d01","household_id":"H0033","person":"孙小梅",)"
          R"("visit_date":"2026-11-28","mode":"visit","occasions":[],)"
          R"("policies":["minimum_living"],"problems":["应享未享低保"],)"
          R"("note":"发现应享未享低保 已报民政",)"
          R"("checkins":[{"helper_id":"d01","household_id":"H0033","person":"孙小梅",)"
          R"("visit_date":"2026-11-28","mode":"visit","occasions":[],)"
          R"("policies":["minimum_living"],"problems":["应享未享低保"],)"
          R"("note":"发现应享未享低保 已报民政"}]})");
  }
  SECTION("a command") {
    CHECK(handlers::to_json(handlers::CommandMsg{handlers::Command::MyPairings, ""}) ==
          R"({"kind":"command","command":"my_pairings"})");
  }
  SECTION("an error") {
    const auto u = handlers::understand("走访 王秀英户 今天", roster().at("u99"), kToday, kBot);
    CHECK(handlers::to_json(u, answer(std::get<ParseError>(u))) ==
          R"({"kind":"error","code":"unknown_sender",)"
          R"("message":"你还不在帮扶名册里，暂时不能打卡。请联系扶贫办把你加入名册后再发。",)"
          R"("suggestions":[]})");
  }
  SECTION("escapes stay valid JSON") {
    const handlers::ParseError e{"not_understood", {"a\"b"}};
    CHECK(
        handlers::to_json(e, "引号\"与\\反斜杠") ==
        R"({"kind":"error","code":"not_understood","message":"引号\"与\\反斜杠","suggestions":["a\"b"]})");
  }
}
