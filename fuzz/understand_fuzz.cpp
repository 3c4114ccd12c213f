// libFuzzer target: message understanding (handlers::understand) and its JSON form (the output of
// `bangfu parse`), against a small roster. The first input byte picks the sender and the day; the
// rest is the message text as a helper typed it. When the sender byte picks the last slot, the
// roster's names come from the input too (names come from a CSV file the office edits): the
// text before the first newline is up to four comma-separated household heads / persons.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/understanding.h"

namespace {

storage::Pairing pairing(int64_t id, std::string helper, storage::Ledger ledger,
                         std::string household, std::string head, std::string person,
                         std::string village) {
  storage::Pairing p;
  p.id = id;
  p.helper_id = std::move(helper);
  p.ledger = ledger;
  p.household_id = std::move(household);
  p.household_head = std::move(head);
  p.person = std::move(person);
  p.village = std::move(village);
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
  const size_t slot = data[0] % (kSenders.size() + 1);
  handlers::SenderContext custom;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (slot == kSenders.size()) {
    custom.helper_id = "x01";
    custom.known = true;
    const size_t nl = text.find('\n');
    std::string_view names = text.substr(0, nl == std::string_view::npos ? 0 : nl);
    text.remove_prefix(nl == std::string_view::npos ? 0 : nl + 1);
    for (int64_t id = 20; !names.empty() && id < 24; ++id) {
      const size_t comma = names.find(',');
      const std::string_view name = names.substr(0, comma);
      const bool is_person = id % 2 == 1;
      custom.pairings.push_back(pairing(id, "x01", storage::Ledger::Health, "HX",
                                        is_person ? "户主" : std::string(name),
                                        is_person ? std::string(name) : "", "村"));
      if (comma == std::string_view::npos) break;
      names.remove_prefix(comma + 1);
    }
  }
  handlers::SenderContext dated;
  if (slot == 0) {
    // c01 with the back-dated lookup: a pairing that ended on 11-10 and one starting on 11-20.
    dated = kSenders[0];
    dated.pairings_on = [](storage::Date d) {
      std::vector<storage::Pairing> ps = senders()[0].pairings;
      storage::Pairing ended =
          pairing(11, "c01", storage::Ledger::Cadre, "H0014", "刘桂芝", "", "桃店村");
      ended.end_date = storage::Date{2026, 11, 10};
      storage::Pairing later =
          pairing(12, "c01", storage::Ledger::Cadre, "H0015", "马春花", "", "东岭村");
      later.start_date = storage::Date{2026, 11, 20};
      for (auto* p : {&ended, &later})
        if (p->active_on(d)) ps.push_back(*p);
      return ps;
    };
  }
  const auto& sender = slot == kSenders.size() ? custom : slot == 0 ? dated : kSenders[slot];
  // Days around month and year ends, and a leap day.
  static constexpr storage::Date kDays[] = {
      {2026, 11, 28}, {2026, 12, 31}, {2027, 1, 1}, {2028, 2, 29}, {2026, 3, 1}};
  const storage::Date today = kDays[(data[0] / (kSenders.size() + 1)) % std::size(kDays)];
  const auto u = handlers::understand(text, sender, today, "帮扶助手");
  const std::string json = handlers::to_json(u);
  if (json.empty() || json.front() != '{') __builtin_trap();
  handlers::normalize(text, "帮扶助手");
  return 0;
}
