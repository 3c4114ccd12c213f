#pragma once

#include <vector>

#include "bot/cli/args.h"

namespace bot {

/// The `simulate roster` and `simulate traffic` subcommands: a synthetic district and the
/// messages its helpers send (simulator/simulate.h), written out, applied to a database in-process,
/// or posted to a running service as WeCom callbacks. For run_cli to append to its commands.
std::vector<CommandSpec> simulate_commands();

}  // namespace bot
