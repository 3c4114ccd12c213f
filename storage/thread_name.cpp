#include "storage/thread_name.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace storage {

void name_thread(std::thread& thread, const char* name) {
  // Linux refuses names longer than 15 bytes (ERANGE) instead of cutting them.
  const std::string kept(name, std::min<size_t>(std::strlen(name), 15));
  (void)pthread_setname_np(thread.native_handle(), kept.c_str());
}

int renice_this_thread(int steps) {
  // PRIO_PROCESS with a thread id: on Linux that thread alone (setpriority(2), BUGS).
  const auto self = static_cast<id_t>(gettid());
  errno = 0;
  const int before = getpriority(PRIO_PROCESS, self);
  if (errno != 0) return 0;
  const int wanted = std::clamp(before + steps, -20, 19);
  if (wanted != before && setpriority(PRIO_PROCESS, self, wanted) == 0) return wanted;
  return before;
}

}  // namespace storage
