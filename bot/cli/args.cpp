#include "bot/cli/args.h"

namespace bot {

std::optional<std::string> Args::get(const std::string& k) const {
  auto it = options.find(k);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

std::string Args::need(const std::string& k) const {
  auto v = get(k);
  if (!v) throw UsageError("missing --" + k);
  return *v;
}

Args parse_args(const std::vector<std::string>& words, const std::set<std::string>& value_options,
                const std::set<std::string>& flag_options) {
  Args a;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.rfind("--", 0) == 0 && w.size() > 2) {
      std::string key = w.substr(2), value;
      bool has_inline = false;
      if (auto eq = key.find('='); eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
        has_inline = true;
      }
      if (key == "help" || flag_options.count(key)) {
        if (has_inline) throw UsageError("--" + key + " takes no value");
        a.flags.insert(key);
      } else if (value_options.count(key)) {
        if (!has_inline) {
          if (i + 1 >= words.size()) throw UsageError("--" + key + " needs a value");
          value = words[++i];
        }
        a.options[key] = value;
      } else {
        throw UsageError("unknown option --" + key);
      }
    } else {
      a.positional.push_back(w);
    }
  }
  return a;
}

}  // namespace bot
