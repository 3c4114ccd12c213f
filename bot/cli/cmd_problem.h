#pragma once

#include <string>
#include <vector>

#include "bot/cli/args.h"

namespace bot {

/// The office's commands on tracked problems (README "Problems"), for run_cli:
///  - `problem list --config F [--status open|in_progress|resolved|not_a_problem|all]
///     [--ledger L] [--format json|table]`
///  - `problem show --config F --id N`: the item and its history
///  - `problem set --config F --id N --status S --note TEXT`: recorded as office_actor()
///    (bot/cli/cmd_office.h)
/// Exit 0 on success, 2 on bad input (nothing changed). Writes go through the Store, so they
/// work while `bangfu serve` runs on the same database.
std::vector<CommandSpec> problem_commands();

}  // namespace bot
