#pragma once

#include <string>
#include <vector>

#include "bot/cli/args.h"

namespace bot {

/// The office's commands, for run_cli to append (README "Office commands"):
///  - `checkin list|void|add`: look at, void and enter check-ins (paper records);
///  - `audit list`: who changed what, when, before/after and why;
///  - `inbox list`: the messages the bot did not record, with what it answered.
/// Exit 0 on success, 2 on bad input (UsageError: the message says what to fix; nothing
/// changed). Writes go through storage::Store (group commit, audit) and work while `bangfu serve`
/// runs on the same database (WAL, busy timeout).
std::vector<CommandSpec> office_commands();

/// Who the office is in the audit trail: "office:<login name>", the login name from $SUDO_USER,
/// else $LOGNAME, else $USER, else the name of the effective uid (getpwuid).
std::string office_actor();

/// Lines of a table whose columns line up in a terminal with Chinese text (display width by
/// wcwidth in the C.UTF-8 locale: a Han character takes two columns). `rows` may be ragged.
std::string format_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace bot
