#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "storage/model.h"

namespace handlers {

/// The five must-visit occasions (五必访) and the policies, as codes in their fixed order.
inline constexpr std::array<std::string_view, 5> kOccasionCodes = {
    "wedding_funeral", "exam", "illness", "accident", "festival"};
inline constexpr std::array<std::string_view, 4> kPolicyCodes = {"medical_aid", "education_aid",
                                                                 "housing", "minimum_living"};

/// A check-in as understood from one message (see README "What the bot understands").
struct Checkin {
  std::string helper_id;
  int64_t pairing_id = 0;
  std::string household_id;
  std::string person;  // the pairing's 帮扶对象 ("" for a household pairing)
  std::string name;    // the name the pairing is known by (person, else household head)
  storage::Date visit_date;
  storage::Mode mode = storage::Mode::Visit;
  std::vector<std::string> occasions;  // codes, in the fixed order of kOccasionCodes
  std::vector<std::string> policies;   // codes, in the fixed order of kPolicyCodes
  std::vector<std::string> problems;   // short phrases from the text, e.g. "应享未享低保"
  std::string note;                    // the rest of the text, trimmed, normalised
};

/// Several beneficiaries named in one message (走访王某、李某两户): one check-in each, in the
/// order they are written, recorded all together or not at all. Always two or more.
struct CheckinGroup {
  std::vector<Checkin> checkins;
};

/// Bulletin (通报 2026-11) and Review (点评 2026Q3) are admin commands: the argument holds the
/// period and optionally a ledger word; the dispatcher checks the sender.
enum class Command { Help, MyPairings, Progress, Undo, Bulletin, Review };
/// "help", "my_pairings", "progress", "undo", "bulletin", "review"
std::string_view command_code(Command c);

struct CommandMsg {
  Command command;
  std::string argument;  // text after the command word, trimmed (e.g. "2026-11" for later uses)
};

/// Error codes fixed by the interface: unknown_sender, not_paired, ambiguous, future_date,
/// invalid_date, not_understood. Questions back added by issue 9, whose text comes from
/// templates/ask.mustache (`message` is empty; `fields` fill the template's section `code`):
///   not_done      no visit took place (没去, 扑空, 计划, 没打通 …); fields: reason
///                 (plan|not_went|missed|call_failed), example
///   some_not_done several beneficiaries, and the clauses of some say no visit took place
///                 (李某家没去成, 孙某家没人); fields: whom (masked), example
///   other_day     the only day written is another event's (他家孩子17号考试); fields: said,
///                 example
///   need_day      a month or a span but no day (11月, 前几天, 上月底); fields: said, example
///   date_range    several days (12月1日至3日); fields: said, example
///   did_you_mean  a name one character off a pairing's; fields: said (masked), whom, village,
///                 example
///   unmatched     one of several names is no pairing of the sender; fields: said (masked),
///                 others (the names that were matched, masked)
///   not_in_force  the pairing was not in force on the visit's date; fields: date, whom, and
///                 start (not yet paired) or end (ended)
/// Why a message is not recorded, as facts: the chat's wording is in templates/ (ask.mustache
/// for a question back, is_question_code; error.mustache for the others; unknown_sender.mustache),
/// rendered by handlers::render_question. A field named `reason` is set there as a flag.
struct ParseError {
  std::string code;
  std::vector<std::string> suggestions;  // names (not_paired/ambiguous) or usage examples
  std::map<std::string, std::string> fields = {};
};

using Understanding = std::variant<Checkin, CommandMsg, ParseError, CheckinGroup>;

/// The error codes whose answer is rendered from templates/ask.mustache.
bool is_question_code(std::string_view code);

/// A problem found in a check-in note: a clause that reports a difficulty or an unmet
/// entitlement, not one solved (问题已解决) nor advice (需要按时服药).
struct ProblemPhrase {
  std::string phrase;  // the clause, without a leading 发现/了解到/反映 …
  std::string policy;  // the policy code the clause names (kPolicyCodes), or ""
};

/// The problems of `note`, in text order, without repeats. Pure.
std::vector<ProblemPhrase> find_problem_phrases(std::string_view note);

/// What the parser knows about the sender. `known` is false when the userid is not on the roster
/// at all; `pairings` are the ones in force on the message's date (today). `pairings_on`, when
/// set, gives the sender's pairings in force on another day: a back-dated check-in is checked
/// against the pairings of the visit's date. Unset, `pairings` stand for every day.
struct SenderContext {
  std::string helper_id;
  bool known = false;
  std::vector<storage::Pairing> pairings;
  std::function<std::vector<storage::Pairing>(storage::Date)> pairings_on = nullptr;
};

/// Strips the @-mention of the bot (`@帮扶助手`, any `@name` at the start, full- or half-width
/// @), converts full-width ASCII and digits to half-width, turns the ideographic space and line
/// breaks into spaces, collapses runs of spaces, trims. The full-width punctuation of Chinese
/// prose (，：；！？（）) is kept as typed so that notes read naturally; the parser accepts both
/// widths. Invalid UTF-8 bytes become U+FFFD.
std::string normalize(std::string_view text, std::string_view bot_name);

/// Understands one message. Pure: `today` is the sender's local date now.
Understanding understand(std::string_view text, const SenderContext& sender, storage::Date today,
                         std::string_view bot_name);

/// The JSON object printed by `bangfu parse` (schema in README). `message` is an error's answer
/// as the chat gets it (rendered by the caller, handlers::render_question).
std::string to_json(const Understanding& u, std::string_view message = {});

}  // namespace handlers
