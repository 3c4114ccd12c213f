// libFuzzer target: message understanding (handlers::understand) and its JSON form (the output of
// `bangfu parse`), against a small roster. The first input byte picks the sender and the day; the
// rest is the message text as a helper typed it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/understanding.h"

namespace {

storage::Pairing pairing(int64_t id, const char* helper, storage::Ledger ledger,
                         const char* household, const char* head, const char* person,
                         const char* village) {
  storage::Pairing p;
  p.id = id;
  p.helper_id = helper;
  p.ledger = ledger;
  p.household_id = household;
  p.household_head = head;
  p.person = person;
  p.village = village;
  return p;
}

std::vector<handlers::SenderContext> senders() {
  using storage::Ledger;
  return {
      {"c01",
       true,
       {pairing(1, "c01", Ledger::Cadre, "H0012", "王秀英", "", "张庄村"),
        pairing(2, "c01", Ledger::Cadre, "H0013", "王秀芳", "", "张庄村"),
        pairing(3, "c01", Ledger::Cadre, "H0020", "李德明", "", "李庄村")}},
      {"d01",
       true,
       {pairing(4, "d01", Ledger::Health, "H0031", "赵大山", "赵桂兰", "东沟村"),
        pairing(5, "d01", Ledger::Health, "H0032", "刘建华", "刘建华", "东沟村")}},
      {"t01",
       true,
       {pairing(7, "t01", Ledger::Education, "H0041", "刘大军", "刘洋", "西沟村"),
        pairing(8, "t01", Ledger::Education, "H0042", "刘洋洋", "刘小雨", "西沟村")}},
      {"s01", true, {pairing(10, "s01", Ledger::Cadre, "H0050", "陈玉兰", "", "北山村")}},
      {"e01", true, {}},
      {"u99", false, {}},
  };
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<handlers::SenderContext> kSenders = senders();
  if (size == 0) return 0;
  const auto& sender = kSenders[data[0] % kSenders.size()];
  // Days around month and year ends, and a leap day.
  static constexpr storage::Date kDays[] = {
      {2026, 11, 28}, {2026, 12, 31}, {2027, 1, 1}, {2028, 2, 29}, {2026, 3, 1}};
  const storage::Date today = kDays[(data[0] / kSenders.size()) % std::size(kDays)];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto u = handlers::understand(text, sender, today, "帮扶助手");
  const std::string json = handlers::to_json(u);
  if (json.empty() || json.front() != '{') __builtin_trap();
  handlers::normalize(text, "帮扶助手");
  return 0;
}
