#include "handlers/keywords.h"

#include <algorithm>
#include <array>

#include "handlers/text.h"

namespace handlers {
namespace {

using K = KeywordKind;

// Occasion and policy codes index kOccasionCodes / kPolicyCodes in understanding.h.
constexpr std::uint8_t kWeddingFuneral = 0, kExam = 1, kIllness = 2, kAccident = 3, kFestival = 4;
constexpr std::uint8_t kMedicalAid = 0, kEducationAid = 1, kHousing = 2, kMinimumLiving = 3;

constexpr Keyword kKeywordList[] = {
    // Phrases that contain a keyword but do not mean it.
    {"电话号码", K::Ignore, 0},
    {"困难户", K::Ignore, 0},
    {"困难群众", K::Ignore, 0},
    {"困难家庭", K::Ignore, 0},
    {"困难学生", K::Ignore, 0},
    {"没问题", K::Ignore, 0},
    {"无问题", K::Ignore, 0},
    {"没有问题", K::Ignore, 0},
    {"没发现问题", K::Ignore, 0},
    {"未发现问题", K::Ignore, 0},
    {"没有发现问题", K::Ignore, 0},
    {"问题不大", K::Ignore, 0},
    // No difficulty said is no problem (一切都好，没什么困难).
    {"没什么困难", K::Ignore, 0},
    {"没有什么困难", K::Ignore, 0},
    {"没啥困难", K::Ignore, 0},
    {"没有困难", K::Ignore, 0},
    {"没困难", K::Ignore, 0},
    {"无困难", K::Ignore, 0},
    {"暂无困难", K::Ignore, 0},
    {"不困难", K::Ignore, 0},
    {"困难不大", K::Ignore, 0},
    {"不需要", K::Ignore, 0},
    {"没去医院", K::Ignore, 0},
    {"没有去医院", K::Ignore, 0},
    {"未去医院", K::Ignore, 0},
    {"没去复查", K::Ignore, 0},
    {"没去上学", K::Ignore, 0},
    {"没去学校", K::Ignore, 0},
    {"没去打工", K::Ignore, 0},
    {"不在家住", K::Ignore, 0},
    {"计划生育", K::Ignore, 0},
    {"学习计划", K::Ignore, 0},
    {"康复计划", K::Ignore, 0},
    {"帮扶计划", K::Ignore, 0},
    {"治疗计划", K::Ignore, 0},
    {"准备了", K::Ignore, 0},
    {"要按时", K::Advice, 0},
    {"按时服药", K::Advice, 0},
    {"按时吃药", K::Advice, 0},
    {"注意", K::Advice, 0},
    {"建议", K::Advice, 0},
    {"叮嘱", K::Advice, 0},
    {"嘱咐", K::Advice, 0},
    {"嘱其", K::Advice, 0},
    {"提醒", K::Advice, 0},
    {"告知", K::Advice, 0},
    {"宣传", K::Advice, 0},
    {"讲解", K::Advice, 0},
    {"已解决", K::Solved, 0},
    {"已经解决", K::Solved, 0},
    {"解决了", K::Solved, 0},
    {"得到解决", K::Solved, 0},
    {"已落实", K::Solved, 0},
    {"已经落实", K::Solved, 0},
    {"落实了", K::Solved, 0},
    {"已办理", K::Solved, 0},
    {"已办好", K::Solved, 0},
    {"办好了", K::Solved, 0},
    {"办下来了", K::Solved, 0},
    {"已享受", K::Solved, 0},
    {"已纳入", K::Solved, 0},
    {"已到位", K::Solved, 0},
    {"已发放", K::Solved, 0},
    {"已修好", K::Solved, 0},
    {"修好了", K::Solved, 0},
    {"不再缺", K::Solved, 0},

    {"没去", K::NotWent, 0},
    {"没有去", K::NotWent, 0},
    {"未去", K::NotWent, 0},
    {"没能去", K::NotWent, 0},
    {"未能去", K::NotWent, 0},
    {"没去成", K::NotWent, 0},
    {"没走访", K::NotWent, 0},
    {"没有走访", K::NotWent, 0},
    {"未走访", K::NotWent, 0},
    {"未能走访", K::NotWent, 0},
    {"没能走访", K::NotWent, 0},
    {"没走访成", K::NotWent, 0},
    {"没访成", K::NotWent, 0},
    {"没走成", K::NotWent, 0},
    {"去不了", K::NotWent, 0},
    {"去不成", K::NotWent, 0},
    {"没来得及", K::NotWent, 0},
    {"没顾上", K::NotWent, 0},
    {"没空去", K::NotWent, 0},
    {"没时间去", K::NotWent, 0},
    {"没能入户", K::NotWent, 0},
    {"未能入户", K::NotWent, 0},
    {"没入户", K::NotWent, 0},
    {"没上门", K::NotWent, 0},
    {"没联系上", K::CallFailed, 0},
    {"未联系上", K::CallFailed, 0},
    {"联系不上", K::CallFailed, 0},
    {"没打通", K::CallFailed, 0},
    {"打不通", K::CallFailed, 0},
    {"未接通", K::CallFailed, 0},
    {"没接通", K::CallFailed, 0},
    {"没人接", K::CallFailed, 0},
    // 电话打了王某某没接, 打过去不接, 占线: the call did not reach anybody. 没接到通知 is something
    // the family said, not a failed call.
    {"没接", K::CallFailed, 0},
    {"没有接", K::CallFailed, 0},
    {"未接", K::CallFailed, 0},
    {"不接", K::CallFailed, 0},
    {"占线", K::CallFailed, 0},
    {"停机", K::CallFailed, 0},
    {"空号", K::CallFailed, 0},
    {"没接到", K::Ignore, 0},
    {"未接到", K::Ignore, 0},
    {"没有接到", K::Ignore, 0},
    {"不接受", K::Ignore, 0},
    {"无人接听", K::CallFailed, 0},
    {"关机", K::CallFailed, 0},
    {"扑空", K::Missed, 0},
    {"扑了个空", K::Missed, 0},
    {"白跑", K::Missed, 0},
    {"家里没人", K::Missed, 0},
    {"家里没有人", K::Missed, 0},
    {"家中无人", K::Missed, 0},
    {"家里无人", K::Missed, 0},
    {"无人在家", K::Missed, 0},
    {"没人在家", K::Missed, 0},
    {"本人不在家", K::Missed, 0},
    {"人不在家", K::Missed, 0},
    {"都不在家", K::Missed, 0},
    {"锁门", K::Missed, 0},
    {"锁着门", K::Missed, 0},
    {"门锁着", K::Missed, 0},
    {"大门锁着", K::Missed, 0},
    {"铁将军把门", K::Missed, 0},
    {"大门紧锁", K::Missed, 0},
    {"没见到人", K::Missed, 0},
    {"没见着人", K::Missed, 0},
    {"没见到本人", K::Missed, 0},
    {"未见到本人", K::Missed, 0},
    {"未见本人", K::Missed, 0},
    {"没碰到人", K::Missed, 0},
    {"家没人", K::Missed, 0},
    {"家里也没人", K::Missed, 0},
    {"没在家", K::Missed, 0},
    {"都没在家", K::Missed, 0},
    {"计划", K::Plan, 0},
    {"原计划", K::Plan, 0},
    {"原定", K::Plan, 0},
    {"本来要", K::Plan, 0},
    {"本来想", K::Plan, 0},
    {"本想", K::Plan, 0},
    {"本打算", K::Plan, 0},
    {"准备", K::Plan, 0},
    {"准备好了", K::Ignore, 0},
    {"准备的", K::Ignore, 0},
    {"下周", K::Plan, 0},
    {"下个月", K::Plan, 0},
    {"下月", K::Plan, 0},
    {"下次", K::Plan, 0},
    {"改天", K::Plan, 0},
    {"过几天", K::Plan, 0},
    {"过两天", K::Plan, 0},
    {"月底去了", K::Ignore, 0},
    {"上月底", K::Ignore, 0},
    {"上个月底", K::Ignore, 0},
    {"月底前去了", K::Ignore, 0},
    {"期中考", K::Ignore, 0},
    {"期末考", K::Ignore, 0},
    {"准备去", K::Plan, 0},
    {"准备走访", K::Plan, 0},
    {"准备入户", K::Plan, 0},
    {"准备明天", K::Plan, 0},
    {"准备下周", K::Plan, 0},
    {"打算", K::Plan, 0},
    {"拟于", K::Plan, 0},
    {"拟去", K::Plan, 0},
    {"将于", K::Plan, 0},
    {"预计", K::Plan, 0},
    {"约好", K::Plan, 0},
    {"约定", K::Plan, 0},
    {"明天去", K::Plan, 0},
    {"明天再去", K::Plan, 0},
    {"明天上午去", K::Plan, 0},
    {"明天下午去", K::Plan, 0},
    {"后天去", K::Plan, 0},
    {"下周去", K::Plan, 0},
    {"下周再去", K::Plan, 0},
    {"下次去", K::Plan, 0},
    {"下次再去", K::Plan, 0},
    {"改天去", K::Plan, 0},
    {"改天再去", K::Plan, 0},
    {"过几天去", K::Plan, 0},
    {"过几天再去", K::Plan, 0},
    {"过两天去", K::Plan, 0},
    {"过两天再去", K::Plan, 0},
    {"月底前去", K::Plan, 0},
    {"月底去", K::Plan, 0},
    {"待走访", K::Plan, 0},
    {"还没去", K::Plan, 0},
    {"无需", K::Ignore, 0},
    {"不缺", K::Ignore, 0},

    {"走访", K::Visit, 0},
    {"入户", K::Visit, 0},
    {"看望", K::Visit, 0},
    {"慰问", K::Visit, 0},
    {"探望", K::Visit, 0},
    {"上门", K::Visit, 0},
    {"登门", K::Visit, 0},
    {"拜访", K::Visit, 0},
    {"家访", K::HomeVisit, 0},
    {"校访", K::SchoolVisit, 0},
    {"上门服务", K::Service, 0},
    {"入户服务", K::Service, 0},
    {"上门诊疗", K::Service, 0},
    {"上门巡诊", K::Service, 0},
    {"巡诊", K::Service, 0},
    {"出诊", K::Service, 0},

    {"测血压", K::ServiceAction, 0},
    {"量血压", K::ServiceAction, 0},
    {"测血糖", K::ServiceAction, 0},
    {"查血糖", K::ServiceAction, 0},
    {"查体", K::ServiceAction, 0},
    {"体检", K::ServiceAction, 0},
    {"用药指导", K::ServiceAction, 0},
    {"康复训练", K::ServiceAction, 0},
    {"康复指导", K::ServiceAction, 0},
    {"健康咨询", K::ServiceAction, 0},
    {"健康指导", K::ServiceAction, 0},
    {"健康宣教", K::ServiceAction, 0},
    {"诊疗", K::ServiceAction, 0},
    {"换药", K::ServiceAction, 0},
    {"针灸", K::ServiceAction, 0},
    {"送医送药", K::ServiceAction, 0},
    {"送药", K::ServiceAction, 0},

    {"电话", K::Phone, 0},
    {"电联", K::Phone, 0},
    {"打电话", K::Phone, 0},
    {"通电话", K::Phone, 0},
    {"致电", K::Phone, 0},
    {"电话随访", K::Phone, 0},
    {"电话联系", K::Phone, 0},
    {"电话慰问", K::Phone, 0},
    {"电话回访", K::Phone, 0},
    {"电话家访", K::Phone, 0},
    {"电话问候", K::Phone, 0},
    {"视频通话", K::Phone, 0},
    {"视频随访", K::Phone, 0},
    {"视频", K::Phone, 0},
    {"微信联系", K::Phone, 0},
    {"微信视频", K::Phone, 0},
    {"微信语音", K::Phone, 0},
    {"微信随访", K::Phone, 0},
    {"语音通话", K::Phone, 0},
    // WeChat messages and calls are contacts at a distance, never a visit (微信问了, 微信上聊了).
    {"微信", K::Phone, 0},
    {"微信群", K::Ignore, 0},
    {"短信", K::Phone, 0},
    {"发信息", K::Phone, 0},

    {"打卡", K::Signal, 0},
    {"随访", K::Signal, 0},
    {"回访", K::Signal, 0},
    {"辅导", K::Signal, 0},
    {"补课", K::Signal, 0},
    {"心理疏导", K::Signal, 0},
    {"去了", K::Signal, 0},

    {"怎么", K::Question, 0},
    {"如何", K::Question, 0},
    {"怎样", K::Question, 0},

    {"红白喜事", K::Occasion, kWeddingFuneral},
    {"红白事", K::Occasion, kWeddingFuneral},
    {"喜事", K::Occasion, kWeddingFuneral},
    {"白事", K::Occasion, kWeddingFuneral},
    {"婚礼", K::Occasion, kWeddingFuneral},
    {"结婚", K::Occasion, kWeddingFuneral},
    {"婚事", K::Occasion, kWeddingFuneral},
    {"出嫁", K::Occasion, kWeddingFuneral},
    {"丧事", K::Occasion, kWeddingFuneral},
    {"丧葬", K::Occasion, kWeddingFuneral},
    {"去世", K::Occasion, kWeddingFuneral},
    {"过世", K::Occasion, kWeddingFuneral},
    {"逝世", K::Occasion, kWeddingFuneral},
    {"病逝", K::Occasion, kWeddingFuneral},
    {"葬礼", K::Occasion, kWeddingFuneral},
    {"出殡", K::Occasion, kWeddingFuneral},
    {"吊唁", K::Occasion, kWeddingFuneral},
    {"升学考试", K::Occasion, kExam},
    {"升学", K::Occasion, kExam},
    {"中考", K::Occasion, kExam},
    {"高考", K::Occasion, kExam},
    {"考上", K::Occasion, kExam},
    {"录取", K::Occasion, kExam},
    {"生病", K::Occasion, kIllness},
    {"住院", K::Occasion, kIllness},
    {"出院", K::Occasion, kIllness},
    {"病重", K::Occasion, kIllness},
    {"重病", K::Occasion, kIllness},
    {"病危", K::Occasion, kIllness},
    {"手术", K::Occasion, kIllness},
    {"意外", K::Occasion, kAccident},
    {"腿伤", K::Occasion, kAccident},
    {"扭伤", K::Occasion, kAccident},
    {"碰伤", K::Occasion, kAccident},
    {"划伤", K::Occasion, kAccident},
    {"擦伤", K::Occasion, kAccident},
    {"受伤", K::Occasion, kAccident},
    {"摔伤", K::Occasion, kAccident},
    {"摔倒", K::Occasion, kAccident},
    {"车祸", K::Occasion, kAccident},
    {"骨折", K::Occasion, kAccident},
    {"烧伤", K::Occasion, kAccident},
    {"烫伤", K::Occasion, kAccident},
    {"工伤", K::Occasion, kAccident},
    {"溺水", K::Occasion, kAccident},
    {"传统节日", K::Occasion, kFestival},
    {"节日", K::Occasion, kFestival},
    {"春节", K::Occasion, kFestival},
    {"过年", K::Occasion, kFestival},
    {"除夕", K::Occasion, kFestival},
    {"元宵", K::Occasion, kFestival},
    {"清明", K::Occasion, kFestival},
    {"端午", K::Occasion, kFestival},
    {"中秋", K::Occasion, kFestival},
    {"重阳", K::Occasion, kFestival},

    {"医疗救助", K::Policy, kMedicalAid},
    {"大病救助", K::Policy, kMedicalAid},
    {"医保", K::Policy, kMedicalAid},
    {"大病保险", K::Policy, kMedicalAid},
    {"医疗保障", K::Policy, kMedicalAid},
    {"助学", K::Policy, kEducationAid},
    {"教育资助", K::Policy, kEducationAid},
    {"雨露计划", K::Policy, kEducationAid},
    {"学费减免", K::Policy, kEducationAid},
    {"住房", K::Policy, kHousing},
    {"危房", K::Policy, kHousing},
    {"危改", K::Policy, kHousing},
    {"房屋改造", K::Policy, kHousing},
    {"低保", K::Policy, kMinimumLiving},
    {"兜底", K::Policy, kMinimumLiving},
    {"特困供养", K::Policy, kMinimumLiving},
    {"特困", K::Policy, kMinimumLiving},
    {"五保", K::Policy, kMinimumLiving},

    {"应享未享", K::Problem, 0},
    {"未享受", K::Problem, 0},
    {"未落实", K::Problem, 0},
    {"没落实", K::Problem, 0},
    {"未纳入", K::Problem, 0},
    {"未办理", K::Problem, 0},
    {"没办理", K::Problem, 0},
    {"困难", K::Problem, 0},
    {"问题", K::Problem, 0},
    {"需要帮助", K::Problem, 0},
    {"需要解决", K::Problem, 0},
    {"需要协调", K::Problem, 0},
    {"没钱", K::Problem, 0},
    {"没有钱", K::Problem, 0},
    {"交不起", K::Problem, 0},
    {"看不起病", K::Problem, 0},
    {"买不起", K::Problem, 0},
    {"漏水", K::Problem, 0},
    {"漏雨", K::Problem, 0},
    {"没享受", K::Problem, 0},
    {"没有享受", K::Problem, 0},
    {"没有落实", K::Problem, 0},
    {"没纳入", K::Problem, 0},
    {"没有纳入", K::Problem, 0},
    {"没报销", K::Problem, 0},
    {"未报销", K::Problem, 0},
    {"没到位", K::Problem, 0},
    {"未到位", K::Problem, 0},
    {"未发放", K::Problem, 0},
    {"没发放", K::Problem, 0},
    {"急需", K::Problem, 0},
    // An entitlement stopped or still not paid (低保断了三个月, 报销还没下来).
    {"断了", K::Problem, 0},
    {"还没下来", K::Problem, 0},
    {"没批下来", K::Problem, 0},
    {"缺", K::Problem, 0},
};

template <std::size_t N>
constexpr std::array<Keyword, N> sorted(const Keyword (&in)[N]) {
  std::array<Keyword, N> a{};
  std::copy(in, in + N, a.begin());
  std::sort(a.begin(), a.end(), [](const Keyword& x, const Keyword& y) { return x.text < y.text; });
  return a;
}

// Sorted by bytes, so the keywords sharing a first character form one contiguous run.
constexpr auto kKeywords = sorted(kKeywordList);

constexpr char32_t first_code_point(std::string_view s) {
  const auto b = [&](std::size_t k) {
    return static_cast<char32_t>(static_cast<unsigned char>(s[k]));
  };
  if (b(0) < 0x80) return b(0);
  if (b(0) < 0xE0) return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  if (b(0) < 0xF0) return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

// The first code point of each keyword, in the same (byte = code point) order, so a position is
// matched by a binary search over integers before any string is compared.
constexpr auto kFirst = [] {
  std::array<char32_t, kKeywords.size()> a{};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = first_code_point(kKeywords[i].text);
  return a;
}();

static_assert(std::is_sorted(kFirst.begin(), kFirst.end()));

static_assert(std::adjacent_find(kKeywords.begin(), kKeywords.end(),
                                 [](const Keyword& x, const Keyword& y) {
                                   return x.text == y.text;
                                 }) == kKeywords.end(),
              "duplicate keyword");

// Which code points of the Basic Multilingual Plane begin a keyword, a bit each (8 KiB): most
// characters of a message begin none, and one bit test turns them away where a binary search
// over kFirst took nine comparisons.
constexpr auto kStarts = [] {
  std::array<std::uint64_t, 0x10000 / 64> bits{};
  for (const char32_t c : kFirst) bits[c / 64] |= std::uint64_t{1} << (c % 64);
  return bits;
}();

static_assert(kFirst.back() < 0x10000, "a keyword starts outside the BMP: widen kStarts");

}  // namespace

const Keyword* keyword_at(std::string_view text, std::size_t pos) {
  // Every keyword starts with a Chinese character: a byte below 0x80 starts none.
  if (static_cast<unsigned char>(text[pos]) < 0x80) return nullptr;
  const std::size_t len = utf8_len(text, pos);
  if (len < 2) return nullptr;
  const char32_t c = utf8_at(text, pos);
  if (c >= 0x10000 || (kStarts[c / 64] >> (c % 64) & 1) == 0) return nullptr;
  const auto [lo, hi] = std::equal_range(kFirst.begin(), kFirst.end(), c);
  const std::string_view rest = text.substr(pos);
  const Keyword* best = nullptr;
  for (auto i = static_cast<std::size_t>(lo - kFirst.begin());
       i < static_cast<std::size_t>(hi - kFirst.begin()); ++i) {
    const Keyword& k = kKeywords[i];
    if ((!best || k.text.size() > best->text.size()) && has_prefix(rest, k.text)) best = &k;
  }
  return best;
}

}  // namespace handlers
