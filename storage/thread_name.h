#pragma once

#include <thread>

namespace storage {

/// Names `thread` as `top -H`, `ps -L` and /proc/PID/task/*/comm show it, so that an operator
/// (and bench/ab.sh) can tell the Store's writer from an event loop. Called by the thread that
/// started it, so the name is there as soon as the starting call returns. At most 15 bytes are
/// kept. Best effort: a failure changes nothing else.
void name_thread(std::thread& thread, const char* name);

/// Moves the calling thread's nice value by `steps` (negative: a larger share of the CPU),
/// within -20..19. Linux keeps a nice value per thread, so the process's other threads keep
/// theirs. Lowering it is always allowed; raising it needs CAP_SYS_NICE or an RLIMIT_NICE that
/// reaches (systemd: LimitNICE=), and if refused nothing changes. Returns the thread's nice
/// value afterwards.
int renice_this_thread(int steps);

}  // namespace storage
