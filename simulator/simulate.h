#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "handlers/understanding.h"
#include "storage/date.h"
#include "storage/model.h"

namespace simulator {

/// Random draws for the simulator. The bits come from std::mt19937_64, whose output the standard
/// fixes; the bounded draws are our own (the std distributions differ between libraries), so a
/// seed gives the same district and the same messages everywhere. Not thread-safe.
class SimRandom {
 public:
  explicit SimRandom(uint64_t seed) : gen_(seed) {}
  uint64_t bits() { return gen_(); }
  /// Uniform in [0, n); n > 0. Rejection sampling, so no modulo bias.
  uint64_t below(uint64_t n);
  /// Uniform in [lo, hi]; lo <= hi.
  int between(int lo, int hi);
  /// True with probability per_mille / 1000.
  bool per_mille(int per_mille) { return static_cast<int>(below(1000)) < per_mille; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  std::mt19937_64 gen_;
};

/// The district of docs/domain.md ("A district in figures"), per scale unit. `simulate_roster`
/// multiplies every count by the scale; each scale unit is one district with its own name, streets,
/// villages and units.
struct DistrictShape {
  int cadre_units = 37;
  int cadres = 320;
  int households = 759;
  int villages = 139;
  int streets = 5;
  int doctors = 129;
  int doctor_units = 5;  // hospitals and clinics
  int ill = 454;
  int disabled = 361;
  int teachers = 132;
  int teacher_units = 6;    // schools
  int students = 88;        // 132 - 88 = 44 of them have two teachers
  int new_households = 29;  // newly identified: their cadre pairing starts mid-month
};
inline constexpr DistrictShape kDistrictShape{};

struct RosterOptions {
  int scale = 1;
  uint64_t seed = 1;
  /// The roster as it stands on this day: the newly identified households' pairings start on a
  /// day from the 10th to the 25th of one of the three months up to it (never after it).
  storage::Date as_of{2026, 9, 30};
};

/// A synthetic roster of `scale` districts of kDistrictShape. Pure and deterministic for the
/// options. Rows in CSV order (cadres, doctors, teachers; ids 0). Throws std::invalid_argument
/// for a scale below 1 or above 1000.
std::vector<storage::Pairing> simulate_roster(const RosterOptions& options);

/// The roster as `bangfu roster import` reads it: UTF-8, Chinese headers, one row per pairing.
std::string roster_csv(const std::vector<storage::Pairing>& rows);

/// The roster as the service sees it after import: pairings numbered 1..n in file order (a
/// pairing's id is kept when it already has one), looked up by helper.
class RosterIndex {
 public:
  explicit RosterIndex(std::vector<storage::Pairing> pairings);
  const std::vector<storage::Pairing>& pairings() const { return pairings_; }
  /// Every pairing of the helper, ended or not, in file order.
  std::vector<const storage::Pairing*> of(const std::string& helper_id) const;
  /// What the parser is told about the sender on `on`, as Dispatcher builds it from the Store.
  handlers::SenderContext sender(const std::string& helper_id, storage::Date on) const;
  /// The helpers in file order.
  const std::vector<std::string>& helpers() const { return helpers_; }

 private:
  std::vector<storage::Pairing> pairings_;
  std::vector<std::string> helpers_;
  std::map<std::string, std::vector<std::size_t>> by_helper_;
};

/// What a simulated message is meant to be.
enum class Intent { Checkin, Command, Chatter, Mistake };
std::string_view intent_code(Intent i);  // "checkin", "command", "chatter", "mistake"

/// What the generator meant by a message: the understanding it must get from handlers::understand.
struct Expected {
  Intent intent = Intent::Checkin;
  // Checkin: the sender's pairing, the visit date and what the text says about the visit.
  std::string household_id;
  std::string person;
  storage::Date visit_date;
  storage::Mode mode = storage::Mode::Visit;
  std::vector<std::string> occasions;  // codes in handlers::kOccasionCodes order
  std::vector<std::string> policies;   // codes in handlers::kPolicyCodes order
  bool problem = false;                // the text reports a problem (应享未享 …)
  bool undone_later = false;           // a wrong check-in the helper undoes right after
  // Command: "help", "my_pairings", "progress" or "undo".
  std::string command;
  // Chatter and Mistake: the ParseError code, e.g. "not_understood", "not_paired".
  std::string error_code;
  // How it was written, as tags joined by '+' (e.g. "name_hu+date_dotted+typo_note"), for the
  // mix report.
  std::string form;
};

struct SimMessage {
  storage::LocalTime time;
  std::string userid;
  std::string text;
  Expected expect;
};

struct TrafficOptions {
  storage::Date from{2026, 7, 1};
  storage::Date to{2026, 9, 30};
  uint64_t seed = 1;
  std::string bot_name = "帮扶助手";
  int utc_offset_seconds = 8 * 3600;
  /// Share of check-ins (per mille) written in the words of a message of the hand-written corpus
  /// (tests/data/understanding_corpus.jsonl, embedded at build time) rather than composed from
  /// the simulator's own phrase lists.
  int corpus_per_mille = 500;
};

/// Messages as the helpers of `roster` write them between from and to (inclusive, local time),
/// sorted by time. Helpers are diligent (every pairing every month), lagging (about half, late
/// in the month) or nearly absent; they report the same day or a few days late, mention the five
/// occasions, policies and problems now and then, ask for 本月进度, make mistakes and correct
/// them (undo, wrong name, future or impossible date, a forgotten name), chat, and a few people
/// not on the roster write too. Pure and deterministic for (roster, options).
std::vector<SimMessage> simulate_traffic(const RosterIndex& roster, const TrafficOptions& options);

/// {"time":"2026-07-03T10:12:00+08:00","userid":"…","text":"…"}, no newline.
std::string traffic_json_line(const SimMessage& m);

/// Why `u` is not what `m` meant (e.g. "wanted checkin H0000012/ on 2026-07-03, got error
/// not_paired"), or nullopt when it is.
std::optional<std::string> mismatch(const SimMessage& m, const handlers::Understanding& u);

/// Counts over a message list, for the stated bands below and for reports.
struct TrafficMix {
  std::size_t messages = 0;
  std::size_t checkins = 0, commands = 0, chatter = 0, mistakes = 0;
  // Among check-ins:
  std::size_t with_occasion = 0, with_policy = 0, with_problem = 0, phone = 0, undone = 0;
  std::size_t late = 0;                            // reported two or more days after the visit
  std::map<std::string, std::size_t> errors;       // intended error code -> count
  std::map<std::string, std::size_t> commands_by;  // command code -> count
  std::map<std::string, std::size_t> forms;        // each Expected::form tag -> count
};
TrafficMix traffic_mix(const std::vector<SimMessage>& messages);

/// The mix the generator is built to produce (shares of all messages, or of check-ins), as
/// closed bands. A seed's mix at scale 1 over a quarter falls inside every band.
struct MixBand {
  double low;
  double high;
};
struct MixBands {
  MixBand checkins{0.78, 0.92};       // of messages
  MixBand commands{0.03, 0.12};       // of messages
  MixBand chatter{0.01, 0.05};        // of messages
  MixBand mistakes{0.02, 0.08};       // of messages
  MixBand with_occasion{0.04, 0.25};  // of check-ins
  MixBand with_policy{0.01, 0.08};    // of check-ins
  MixBand with_problem{0.005, 0.05};  // of check-ins
  MixBand phone{0.03, 0.15};          // of check-ins
  MixBand late{0.05, 0.30};           // of check-ins
};
inline constexpr MixBands kMixBands{};

}  // namespace simulator
