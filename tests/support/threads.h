#pragma once
// The nice values of this process's threads: the caller's, and another's by name as Linux shows
// it in /proc.
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>

namespace bangfu_test {

/// The nice value of this process's thread named `name` (field 19 of /proc/self/task/TID/stat),
/// or nullopt if there is none.
inline std::optional<int> thread_nice(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    if (!std::getline(comm, line) || line != name) continue;
    std::ifstream stat(task.path() / "stat");
    const std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // The name (field 2) is in parentheses and may hold spaces: count from after it.
    std::istringstream rest(all.substr(all.rfind(')') + 2));
    std::string field;
    for (int i = 3; i < 19 && rest >> field;) ++i;
    int nice = 0;
    if (rest >> nice) return nice;
  }
  return std::nullopt;
}

/// The calling thread's nice value.
inline int own_nice() {
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  return errno == 0 ? nice : 0;
}

}  // namespace bangfu_test
