#include "simulator/simulate.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>

#include "handlers/understanding.h"
#include "storage/roster_csv.h"

namespace {

using simulator::Intent;
using simulator::RosterIndex;
using simulator::RosterOptions;
using simulator::SimMessage;
using simulator::TrafficOptions;
using storage::Date;
using storage::Ledger;
using storage::Pairing;

std::vector<Pairing> of_ledger(const std::vector<Pairing>& rows, Ledger l) {
  std::vector<Pairing> out;
  for (const auto& p : rows)
    if (p.ledger == l) out.push_back(p);
  return out;
}

template <class F>
std::size_t distinct(const std::vector<Pairing>& rows, F key) {
  std::set<decltype(key(rows.front()))> seen;
  for (const auto& p : rows) seen.insert(key(p));
  return seen.size();
}

bool ascii_helper_id(const std::string& id) {
  return id.size() == 6 && (id[0] == 'c' || id[0] == 'd' || id[0] == 't') &&
         id.find_first_not_of("0123456789", 1) == std::string::npos;
}

}  // namespace

TEST_CASE("a scale-1 roster has the district's exact shape", "[simulate]") {
  const auto rows = simulator::simulate_roster(RosterOptions{1, 42, Date{2026, 9, 30}});
  const auto cadre = of_ledger(rows, Ledger::Cadre);
  const auto health = of_ledger(rows, Ledger::Health);
  const auto education = of_ledger(rows, Ledger::Education);
  const auto& shape = simulator::kDistrictShape;

  CHECK(cadre.size() == 759);
  CHECK(distinct(cadre, [](const Pairing& p) { return p.helper_id; }) == 320);
  CHECK(distinct(cadre, [](const Pairing& p) { return p.unit; }) == 37);
  CHECK(distinct(cadre, [](const Pairing& p) { return p.household_id; }) == 759);
  CHECK(distinct(cadre, [](const Pairing& p) { return p.village; }) == 139);
  CHECK(distinct(cadre, [](const Pairing& p) { return p.street; }) == 5);

  CHECK(distinct(health, [](const Pairing& p) { return p.helper_id; }) == 129);
  CHECK(distinct(health, [](const Pairing& p) { return p.unit; }) ==
        static_cast<std::size_t>(shape.doctor_units));
  CHECK(std::count_if(health.begin(), health.end(),
                      [](const Pairing& p) { return p.person_category == "患病"; }) == 454);
  CHECK(std::count_if(health.begin(), health.end(),
                      [](const Pairing& p) { return p.person_category == "残疾"; }) == 361);
  CHECK(health.size() == 815);

  CHECK(education.size() == 132);
  CHECK(distinct(education, [](const Pairing& p) { return p.helper_id; }) == 132);
  CHECK(distinct(education, [](const Pairing& p) { return p.unit; }) ==
        static_cast<std::size_t>(shape.teacher_units));
  CHECK(distinct(education,
                 [](const Pairing& p) { return std::make_pair(p.household_id, p.person); }) == 88);
  CHECK(std::all_of(education.begin(), education.end(),
                    [](const Pairing& p) { return p.person_category == "学生"; }));

  SECTION("persons live in the cadres' households, with their head and village") {
    std::map<std::string, std::pair<std::string, std::string>> homes;
    for (const auto& p : cadre) homes[p.household_id] = {p.household_head, p.village};
    for (const auto& p : rows) {
      CAPTURE(p.helper_id, p.household_id, p.person);
      REQUIRE(homes.count(p.household_id) == 1);
      CHECK(homes[p.household_id] == std::make_pair(p.household_head, p.village));
      CHECK(p.person.empty() == (p.ledger == Ledger::Cadre));
    }
  }

  SECTION("only the newly identified households' pairings start, mid-month, by the as-of date") {
    std::size_t started = 0;
    for (const auto& p : rows) {
      if (!p.start_date) continue;
      ++started;
      CAPTURE(p.helper_id, p.household_id, p.start_date->iso());
      CHECK(p.ledger == Ledger::Cadre);
      CHECK(*p.start_date <= Date{2026, 9, 30});
      CHECK(*p.start_date >= Date{2026, 7, 10});
      CHECK(p.start_date->day >= 10);
      CHECK(p.start_date->day <= 25);
      CHECK_FALSE(p.end_date);
    }
    CHECK(started == static_cast<std::size_t>(shape.new_households));
  }

  SECTION("names collide, also within one helper's pairings") {
    std::map<std::string, int> heads;
    for (const auto& p : cadre) ++heads[p.household_head];
    CHECK(std::any_of(heads.begin(), heads.end(), [](const auto& kv) { return kv.second > 1; }));
    std::size_t within = 0;
    const RosterIndex index(rows);
    for (const auto& h : index.helpers()) {
      std::map<std::string, int> names;
      for (const Pairing* p : index.of(h)) ++names[p->display_name()];
      for (const auto& [name, n] : names) within += n > 1;
    }
    CHECK(within >= 1);
  }
}

TEST_CASE("roster ids are unique, ASCII and consistent; scale multiplies", "[simulate]") {
  const auto rows = simulator::simulate_roster(RosterOptions{2, 5, Date{2026, 9, 30}});
  CHECK(rows.size() == 2 * (759 + 815 + 132));
  std::set<std::tuple<std::string, std::string, std::string>> pairings;
  std::map<std::string, std::string> helper_name;
  std::map<std::string, std::string> household_head;
  for (const auto& p : rows) {
    CAPTURE(p.helper_id, p.household_id, p.person);
    CHECK(pairings.insert({p.helper_id, p.household_id, p.person}).second);
    CHECK(ascii_helper_id(p.helper_id));
    CHECK(helper_name.try_emplace(p.helper_id, p.helper_name).first->second == p.helper_name);
    CHECK(household_head.try_emplace(p.household_id, p.household_head).first->second ==
          p.household_head);
    CHECK(p.phone.size() == 11);
  }
  CHECK(household_head.size() == 2 * 759);
  CHECK(helper_name.size() == 2 * (320 + 129 + 132));
}

TEST_CASE("the roster CSV imports with no errors", "[simulate]") {
  const auto rows = simulator::simulate_roster(RosterOptions{1, 9, Date{2026, 9, 30}});
  const auto parsed = storage::parse_roster_csv(simulator::roster_csv(rows));
  for (const auto& e : parsed.errors) FAIL_CHECK(e.message);
  REQUIRE(parsed.rows.size() == rows.size());
  CHECK(parsed.encoding == "utf-8");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& a = rows[i];
    const auto& b = parsed.rows[i];
    CAPTURE(i);
    CHECK(std::tie(a.helper_id, a.helper_name, a.phone, a.ledger, a.unit, a.household_id,
                   a.household_head, a.person, a.person_category, a.village, a.street, a.start_date,
                   a.end_date) == std::tie(b.helper_id, b.helper_name, b.phone, b.ledger, b.unit,
                                           b.household_id, b.household_head, b.person,
                                           b.person_category, b.village, b.street, b.start_date,
                                           b.end_date));
  }
}

TEST_CASE("the same seed gives the same bytes, another seed others", "[simulate]") {
  const auto roster = [](uint64_t seed) {
    return simulator::roster_csv(
        simulator::simulate_roster(RosterOptions{1, seed, Date{2026, 9, 30}}));
  };
  CHECK(roster(11) == roster(11));
  CHECK(roster(11) != roster(12));

  const RosterIndex index(simulator::simulate_roster(RosterOptions{1, 11, Date{2026, 9, 30}}));
  const auto traffic = [&](uint64_t seed) {
    std::string out;
    for (const auto& m : simulator::simulate_traffic(
             index, TrafficOptions{Date{2026, 7, 1}, Date{2026, 7, 31}, seed}))
      out += simulator::traffic_json_line(m) + "\n";
    return out;
  };
  const std::string a = traffic(3);
  CHECK(a == traffic(3));
  CHECK(a != traffic(4));
  CHECK(a.size() > 100000);
}

TEST_CASE("traffic lines are JSON with time, userid and text, sorted and in range", "[simulate]") {
  const RosterIndex index(simulator::simulate_roster(RosterOptions{1, 2, Date{2026, 9, 30}}));
  const TrafficOptions o{Date{2026, 8, 1}, Date{2026, 8, 31}, 8};
  const auto messages = simulator::simulate_traffic(index, o);
  REQUIRE(messages.size() > 1000);
  const auto first = nlohmann::ordered_json::parse(simulator::traffic_json_line(messages.front()));
  std::vector<std::string> keys;
  for (const auto& [k, v] : first.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"time", "userid", "text"});
  CHECK(first["time"].get<std::string>().size() == 25);
  CHECK(first["time"].get<std::string>().ends_with("+08:00"));

  for (std::size_t i = 0; i < messages.size(); ++i) {
    const SimMessage& m = messages[i];
    CAPTURE(i, m.text, m.time.iso());
    if (i) CHECK(messages[i - 1].time.unix_seconds <= m.time.unix_seconds);
    CHECK(m.time.date() >= o.from);
    CHECK(m.time.date() <= o.to);
    if (m.expect.intent == Intent::Checkin) {
      CHECK(m.expect.visit_date <= m.time.date());
      CHECK(m.expect.visit_date >= o.from);
    }
  }
}

TEST_CASE("the message mix falls inside the stated bands", "[simulate]") {
  const RosterIndex index(simulator::simulate_roster(RosterOptions{1, 4, Date{2026, 9, 30}}));
  for (uint64_t seed : {1, 2}) {
    const auto mix = simulator::traffic_mix(simulator::simulate_traffic(
        index, TrafficOptions{Date{2026, 7, 1}, Date{2026, 9, 30}, seed}));
    CAPTURE(seed, mix.messages, mix.checkins, mix.commands, mix.chatter, mix.mistakes);
    const auto& b = simulator::kMixBands;
    const auto within = [](std::size_t part, std::size_t whole, simulator::MixBand band) {
      const double share = static_cast<double>(part) / static_cast<double>(whole);
      return band.low <= share && share <= band.high;
    };
    CHECK(mix.messages > 5000);  // about two check-ins a pairing a month, over a quarter
    CHECK(within(mix.checkins, mix.messages, b.checkins));
    CHECK(within(mix.commands, mix.messages, b.commands));
    CHECK(within(mix.chatter, mix.messages, b.chatter));
    CHECK(within(mix.mistakes, mix.messages, b.mistakes));
    CAPTURE(mix.with_occasion, mix.with_policy, mix.with_problem, mix.phone, mix.late);
    CHECK(within(mix.with_occasion, mix.checkins, b.with_occasion));
    CHECK(within(mix.with_policy, mix.checkins, b.with_policy));
    CHECK(within(mix.with_problem, mix.checkins, b.with_problem));
    CHECK(within(mix.phone, mix.checkins, b.phone));
    CHECK(within(mix.late, mix.checkins, b.late));
    CHECK(mix.undone > 0);
    // Every kind of mistake and command occurs.
    for (const char* code : {"not_paired", "ambiguous", "future_date", "invalid_date",
                             "unknown_sender", "not_understood"}) {
      CAPTURE(code);
      CHECK(mix.errors.count(code) == 1);
    }
    for (const char* cmd : {"help", "my_pairings", "progress", "undo"})
      CHECK(mix.commands_by.count(cmd) == 1);
    // And every way of writing a date and a name.
    for (const char* form :
         {"date_omitted",      "date_relative",   "date_weekday", "date_md",      "date_dotted",
          "date_slashed",      "date_iso",        "date_ymd",     "date_chinese", "date_bare_day",
          "date_md_no_suffix", "date_full_width", "name_hu",      "name_jia",     "name_huzhu",
          "name_bare",         "name_patient",    "name_student", "going_home",   "no_name",
          "typo_note",         "typo_name",       "full_width"})
      CHECK(mix.forms.count(form) == 1);
  }
}

TEST_CASE("the parser understands every simulated message as it was meant", "[simulate]") {
  // A wrong understanding must be caught: the check is not vacuous.
  SimMessage m;
  m.expect.intent = Intent::Checkin;
  m.expect.household_id = "H1";
  m.expect.visit_date = Date{2026, 7, 3};
  handlers::Checkin c;
  c.household_id = "H1";
  c.visit_date = Date{2026, 7, 3};
  CHECK_FALSE(simulator::mismatch(m, c));
  c.visit_date = Date{2026, 7, 2};
  CHECK(simulator::mismatch(m, c));
  CHECK(simulator::mismatch(m, handlers::ParseError{"not_paired", {}, {}}));

  const RosterIndex index(simulator::simulate_roster(RosterOptions{1, 1, Date{2026, 9, 30}}));
  const uint64_t seed = GENERATE(1, 2);
  const auto messages =
      simulator::simulate_traffic(index, TrafficOptions{Date{2026, 7, 1}, Date{2026, 9, 30}, seed});
  std::size_t wrong = 0;
  std::map<std::string, std::size_t> wrong_by_form;
  std::string examples;
  for (const SimMessage& msg : messages) {
    const Date today = msg.time.date();
    const auto u =
        handlers::understand(msg.text, index.sender(msg.userid, today), today, "帮扶助手");
    if (auto why = simulator::mismatch(msg, u)) {
      ++wrong_by_form[msg.expect.form];
      if (++wrong <= 8)
        examples += msg.userid + " " + msg.time.iso() + " | " + msg.text + "\n  " + *why + "\n";
    }
  }
  std::string forms;
  for (const auto& [form, n] : wrong_by_form) forms += form + ": " + std::to_string(n) + "\n";
  CAPTURE(seed, messages.size(), forms, examples);
  CHECK(wrong == 0);
}
