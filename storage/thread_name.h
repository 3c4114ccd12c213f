#pragma once

#include <thread>

namespace storage {

/// Names `thread` as `top -H`, `ps -L` and /proc/PID/task/*/comm show it, so that an operator
/// (and bench/ab.sh) can tell the Store's writer from an event loop. Called by the thread that
/// started it, so the name is there as soon as the starting call returns. At most 15 bytes are
/// kept. Best effort: a failure changes nothing else.
void name_thread(std::thread& thread, const char* name);

}  // namespace storage
