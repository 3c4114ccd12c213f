#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace bot {

/// Runs the `bangfu` command line (README "Command line"). Returns the process exit code:
/// 0 success, 1 failure of the work (bad data, unreachable database), 2 bad usage.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace bot
