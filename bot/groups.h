#pragma once

// Which group gets what (README "Several groups (多个群)"). Each ledger's bulletins and reminders
// go to every group that lists the ledger; the district bulletin ("all") goes to the groups that
// list all three ledgers, since only they see every ledger today. Without config `groups`, the
// one implicit group of wecom.webhook_url (named "") lists all three: what a single group got
// before groups existed.

#include <string>
#include <vector>

#include "bot/channel.h"
#include "bot/config.h"
#include "bot/delivery.h"

namespace bot {

/// The groups the bot posts to: config `groups`; without it, the implicit group of
/// wecom.webhook_url (name "", all three ledgers) when that is set; otherwise none. Pure.
std::vector<GroupConfig> delivery_groups(const Config& config);

/// Whether `group` gets the bulletin of `ledger`: "cadre", "health" or "education" when it lists
/// that ledger; "all" (the district bulletin) when it lists all three. Pure.
bool takes_ledger(const GroupConfig& group, const std::string& ledger);

/// The groups of `groups` that take `ledger`'s bulletin, in config order. Pure.
std::vector<GroupConfig> groups_for(const std::vector<GroupConfig>& groups,
                                    const std::string& ledger);

/// The reminder lines a group gets: the entries of the ledgers it lists. Pure.
std::vector<ReminderEntry> reminder_entries_for(const GroupConfig& group,
                                                const std::vector<ReminderEntry>& entries);

/// The outbox worker's targets: one per group (name, chat_id, webhook_url). Pure.
std::vector<Target> targets_of(const std::vector<GroupConfig>& groups);

/// `url` with the value of its key= parameter replaced by *** (for `config check` and logs).
/// Pure.
std::string mask_webhook_url(const std::string& url);

/// How a group's name is shown (`outbox list`, logs): its name, or "-" for the implicit group.
std::string group_label(const std::string& name);

}  // namespace bot
