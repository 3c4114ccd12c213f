#pragma once
// This process's threads as Linux shows them in /proc/self/task: their names, and their nice
// values (the caller's, and another's by name).
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace bangfu_test {

/// Each thread of this process: its name (what top -H and ps -L show) and its /proc directory.
inline std::vector<std::pair<std::string, std::filesystem::path>> threads_of_this_process() {
  std::vector<std::pair<std::string, std::filesystem::path>> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    out.emplace_back(std::move(name), task.path());
  }
  return out;
}

/// The names of this process's threads, as many times as threads carry them.
inline std::multiset<std::string> thread_names() {
  std::multiset<std::string> out;
  for (auto& [name, dir] : threads_of_this_process()) out.insert(std::move(name));
  return out;
}

/// The nice value of this process's thread named `name` (field 19 of /proc/self/task/TID/stat),
/// or nullopt if there is none.
inline std::optional<int> thread_nice(const std::string& name) {
  for (const auto& [task_name, dir] : threads_of_this_process()) {
    if (task_name != name) continue;
    std::ifstream stat(dir / "stat");
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
