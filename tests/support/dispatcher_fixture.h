#pragma once
// A Dispatcher on a real Store in memory and the real templates, for the handlers tests
// (tests/handlers): the roster a test gives, and `say` to send it a message as a helper.
#include <string>
#include <utility>
#include <vector>

#include "handlers/dispatcher.h"
#include "handlers/templates.h"
#include "storage/store.h"

namespace bangfu_test {

inline constexpr int kCst = 8 * 3600;  // China Standard Time, UTC+8, in seconds

/// A pairing of `helper` (named `name`, 区财政局) with household `hh` headed by `head`, in
/// 张庄村; `person` names a member when the pairing is with one (health, education).
inline storage::Pairing pairing(const std::string& helper, const std::string& name,
                                const std::string& hh, const std::string& head,
                                const std::string& person = "",
                                storage::Ledger ledger = storage::Ledger::Cadre) {
  storage::Pairing p;
  p.helper_id = helper;
  p.helper_name = name;
  p.ledger = ledger;
  p.unit = "区财政局";
  p.household_id = hh;
  p.household_head = head;
  p.person = person;
  p.village = "张庄村";
  return p;
}

struct DispatcherFixture {
  /// `roster` imported as of 2026-01-01; `admins` may ask for bulletins in the chat; `at` is
  /// when `say` sends by default; the templates are read from `templates_dir`.
  DispatcherFixture(const std::vector<storage::Pairing>& roster, std::vector<std::string> admins,
                    std::string at,
                    const std::string& templates_dir = BANGFU_SOURCE_DIR "/templates")
      : templates(handlers::Templates::load(templates_dir, handlers::dispatcher_template_names())),
        dispatcher(store, templates, {"帮扶助手", std::move(admins), {}}),
        default_at(std::move(at)) {
    store.import_roster(roster, storage::Date{2026, 1, 1});
  }

  /// Sends `text` from `from` at `at` (default: the fixture's), as message `msgid` (default: a
  /// new one), to the group or, with chattype "single", in a one-to-one chat with the bot; returns
  /// what the dispatcher answered.
  handlers::Outcome say(const std::string& from, const std::string& text, std::string at = "",
                        std::string msgid = "", const std::string& chattype = "group") {
    if (msgid.empty()) msgid = "m" + std::to_string(++seq);
    storage::InboundMessage m;
    m.msgid = msgid;
    m.userid = from;
    m.chatid = chattype == "group" ? "chat" : "";
    m.chattype = chattype;
    m.text = text;
    const auto now = storage::LocalTime::parse(at.empty() ? default_at : at, kCst).value();
    m.received_at = now.unix_seconds;
    return dispatcher.handle(m, now);
  }

  storage::Store store{":memory:"};
  handlers::Templates templates;
  handlers::Dispatcher dispatcher;
  std::string default_at;
  int seq = 0;
};

}  // namespace bangfu_test
