#pragma once

#include <vector>

#include "bot/cli/args.h"

namespace bot {

/// Operations subcommands, for run_cli to append to its commands:
///  - `backup --config FILE OUT.db`: a consistent copy of the database while the service runs
///    (SQLite online backup over a second connection; one read snapshot, so writers are never
///    blocked), checked with PRAGMA integrity_check before it is renamed into place.
///  - `check --config FILE`: config, database integrity, templates and the webhook URL's shape,
///    one line each; exit 0 when all are usable, 1 otherwise. Never prints a secret.
std::vector<CommandSpec> ops_commands();

}  // namespace bot
