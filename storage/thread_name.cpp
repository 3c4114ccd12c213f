#include "storage/thread_name.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace storage {

void name_thread(std::thread& thread, const char* name) {
  // Linux refuses names longer than 15 bytes (ERANGE) instead of cutting them.
  const std::string kept(name, std::min<size_t>(std::strlen(name), 15));
  (void)pthread_setname_np(thread.native_handle(), kept.c_str());
}

}  // namespace storage
