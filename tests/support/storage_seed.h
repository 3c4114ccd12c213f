#pragma once
// Roster rows, messages and audit lookups for the storage tests on a real database
// (tests/storage).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace bangfu_test {

/// A pairing of `helper` (干部<helper>, 区发改局) with household `household` (head
/// 户主<household>, 张庄村), in `ledger`.
inline storage::Pairing pairing(std::string helper, std::string household,
                                storage::Ledger ledger = storage::Ledger::Cadre) {
  storage::Pairing p;
  p.helper_id = std::move(helper);
  p.helper_name = "干部" + p.helper_id;
  p.ledger = ledger;
  p.unit = "区发改局";
  p.household_id = std::move(household);
  p.household_head = "户主" + p.household_id;
  p.village = "张庄村";
  return p;
}

/// A group message `msgid` from `userid` received at `at` (unix seconds): @帮扶助手 走访 <msgid>.
inline storage::InboundMessage inbound(const std::string& msgid, const std::string& userid,
                                       int64_t at = 1000) {
  storage::InboundMessage m;
  m.msgid = msgid;
  m.userid = userid;
  m.chatid = "chat1";
  m.chattype = "group";
  m.text = "@帮扶助手 走访 " + msgid;
  m.received_at = at;
  return m;
}

/// The entries of `all` whose action is `action`, in order.
inline std::vector<storage::AuditEntry> with_action(const std::vector<storage::AuditEntry>& all,
                                                    const std::string& action) {
  std::vector<storage::AuditEntry> out;
  for (const auto& e : all)
    if (e.action == action) out.push_back(e);
  return out;
}

}  // namespace bangfu_test
