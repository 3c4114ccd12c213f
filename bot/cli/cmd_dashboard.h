#pragma once

#include <vector>

#include "bot/cli/args.h"

namespace bot {

/// The office dashboard's subcommand, for run_cli to append to its commands:
///  - `office passwd --name NAME`: reads a password from standard input (one line) and prints
///    the `office.users` entry {"name": NAME, "hash": "$argon2id$…"} to paste into the config.
std::vector<CommandSpec> dashboard_commands();

}  // namespace bot
