#pragma once

#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace bot {

/// Thrown for bad usage; run_cli prints "bangfu: <what>" and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The words after a subcommand, split into --key value options, --flags and positionals.
struct Args {
  std::map<std::string, std::string> options;
  std::set<std::string> flags;
  std::vector<std::string> positional;

  std::optional<std::string> get(const std::string& k) const;
  /// The option's value; throws UsageError("missing --k") when absent.
  std::string need(const std::string& k) const;
  bool flag(const std::string& k) const { return flags.count(k) > 0; }
};

/// Parses `words`. `--k v` and `--k=v` for value options; `--help` is always a flag.
/// Throws UsageError for an unknown option or a missing value.
Args parse_args(const std::vector<std::string>& words, const std::set<std::string>& value_options,
                const std::set<std::string>& flag_options);

/// One subcommand of `bangfu`. `name` may be two words ("roster import").
struct CommandSpec {
  std::string name;
  std::string summary;  // one line for `bangfu --help`
  std::string help;     // full text for `bangfu NAME --help`
  std::set<std::string> value_options;
  std::set<std::string> flag_options;
  std::function<int(const Args&, std::ostream& out, std::ostream& err)> run;
};

}  // namespace bot
