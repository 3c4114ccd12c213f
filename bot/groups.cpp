#include "bot/groups.h"

#include <algorithm>

namespace bot {

std::vector<GroupConfig> delivery_groups(const Config& config) {
  if (!config.groups.empty()) return config.groups;
  if (config.wecom.webhook_url.empty()) return {};
  return {GroupConfig{"", "", {"cadre", "health", "education"}, config.wecom.webhook_url}};
}

bool takes_ledger(const GroupConfig& group, const std::string& ledger) {
  auto lists = [&](const char* code) {
    return std::find(group.ledgers.begin(), group.ledgers.end(), code) != group.ledgers.end();
  };
  if (ledger == "all") return lists("cadre") && lists("health") && lists("education");
  return std::find(group.ledgers.begin(), group.ledgers.end(), ledger) != group.ledgers.end();
}

std::vector<GroupConfig> groups_for(const std::vector<GroupConfig>& groups,
                                    const std::string& ledger) {
  std::vector<GroupConfig> out;
  for (const auto& g : groups)
    if (takes_ledger(g, ledger)) out.push_back(g);
  return out;
}

std::vector<ReminderEntry> reminder_entries_for(const GroupConfig& group,
                                                const std::vector<ReminderEntry>& entries) {
  std::vector<ReminderEntry> out;
  for (const auto& e : entries)
    if (takes_ledger(group, e.ledger)) out.push_back(e);
  return out;
}

std::vector<Target> targets_of(const std::vector<GroupConfig>& groups) {
  std::vector<Target> out;
  for (const auto& g : groups) out.push_back({g.name, g.chat_id, g.webhook_url});
  return out;
}

std::string mask_webhook_url(const std::string& url) {
  std::string out = url;
  for (size_t k = out.find("key="); k != std::string::npos; k = out.find("key=", k)) {
    if (k > 0 && out[k - 1] != '?' && out[k - 1] != '&') {  // "monkey=": not the parameter
      k += 4;
      continue;
    }
    const size_t start = k + 4;
    const size_t end = std::min(out.find('&', start), out.size());
    out.replace(start, end - start, "***");
    k = start + 3;
  }
  return out;
}

std::string group_label(const std::string& name) {
  return name.empty() ? "-" : name;
}

}  // namespace bot
