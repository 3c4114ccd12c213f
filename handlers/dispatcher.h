#pragma once

#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "handlers/bulletin.h"
#include "handlers/problem_commands.h"
#include "handlers/templates.h"
#include "handlers/understanding.h"
#include "storage/store.h"

namespace handlers {

struct DispatchOptions {
  std::string bot_name = "帮扶助手";
  std::vector<std::string> admins;  // userids allowed admin commands
  BulletinOptions bulletin;         // for 通报 / 点评 asked in the chat
};

struct Outcome {
  std::string reply;       // the Chinese text for the group (beneficiary names masked)
  bool duplicate = false;  // msgid seen before: the stored reply, nothing recorded
  bool recorded = false;   // a check-in was stored by this call
};

/// Replaces every full name of `pairings` in `text` with its masked form (王秀英 → 王*英).
std::string mask_names(std::string text, const std::vector<storage::Pairing>& pairings);

/// For a one-to-one chat (only the helper reads it): every masked name of `pairings` in `text`
/// written in full again (王*英 → 王秀英), except a masked form two of them share. Pure.
std::string unmask_names(std::string text, const std::vector<storage::Pairing>& pairings);

/// What the Dispatcher made of `text` from `sender` on `today`, for showing why a message was not
/// understood (the office's inbox): understand()'s answer, except that a sender off the roster
/// gets the unknown_sender error whatever they wrote, commands too (帮助, and an admin's 通报,
/// 点评 and problem commands, are answered and so never listed). Pure.
Understanding as_handled(std::string_view text, const SenderContext& sender, storage::Date today,
                         std::string_view bot_name);

/// The answer to a message that is not recorded: a question back (is_question_code) from
/// templates/ask.mustache, unknown_sender from unknown_sender.mustache, any other code from
/// error.mustache. Names in it are as the parser gave them (the Dispatcher masks the whole reply).
/// Throws TemplateError when the template is not loaded.
std::string render_question(const Templates& templates, const ParseError& e);

/// Renders every case of the templates that hold one answer per case (ask, error, service,
/// bulletin_reply, reminder; those loaded) with sample facts, and throws TemplateError naming the
/// template and the case when one says nothing: a templates folder kept from an older release
/// lacks the newer cases, and would otherwise answer a helper with an empty message. Call once
/// after loading (start-up, `config check`).
void check_answer_templates(const Templates& templates);

/// Templates a Dispatcher needs: the replies and the bulletins.
std::vector<std::string> dispatcher_template_names();

/// The check-in loop behind every platform: store raw → understand → record → reply.
/// Thread-safe (the Store serialises); holds references only.
class Dispatcher {
 public:
  Dispatcher(storage::Store& store, const Templates& templates, DispatchOptions options);

  /// Stores the raw message first (so nothing is lost), then handles it in one transaction and
  /// records the reply. The same msgid again gets the recorded reply and records nothing.
  /// `now` is the current time in the configured zone. Throws only for infrastructure failures,
  /// after marking the raw message failed.
  Outcome handle(const storage::InboundMessage& message, storage::LocalTime now);

  /// Renders templates/service.mustache for `code` (welcome, rate_limited, not_text) with
  /// `fields`, without the blank lines around its one section. Throws TemplateError when the
  /// template is not loaded.
  std::string service_answer(const std::string& code,
                             const std::map<std::string, std::string>& fields = {}) const;
  /// Runs `work` on a thread that may block (e.g. a server's worker pool).
  using Offload = std::function<void(std::function<void()> work)>;
  /// Called once with the outcome (error null), or with the error (outcome empty).
  using Done = std::function<void(Outcome outcome, std::exception_ptr error)>;
  /// handle() without waiting for the write: understands the message on the calling thread (the
  /// roster comes from the Store's cache; no wait for the writer), queues its write unit with
  /// Store::submit_async, and returns. `done` is called exactly once, on the Store's writer
  /// thread, after the unit's group is on disk: with the outcome, or with the error (the commit
  /// failed: nothing of the message is kept or acknowledged; or handling failed: the raw message
  /// is kept and marked failed). The rules of Store::submit_async hold for `done` (quick, no
  /// blocking). Only a 通报 / 点评 asked in the chat reads much of the store before its write:
  /// that work goes through `offload`. Throws (without calling `done`) if the roster cannot be
  /// read or the store is closing.
  void handle_async(const storage::InboundMessage& message, storage::LocalTime now,
                    const Offload& offload, Done done);

 private:
  std::string handle_locked(storage::Store::Tx& tx, const storage::InboundMessage& message,
                            const Understanding& u, const SenderContext& sender,
                            const std::string& helper_name, storage::LocalTime now, bool& recorded,
                            storage::InboundOutcome& outcome,
                            const std::optional<std::string>& correction);
  /// The reply to 我的问题 and #12 已解决 …: lists, or changes an item when the sender reported
  /// it, helps its household or is an admin (README "Problems").
  std::string problem_reply(storage::Store::Tx& tx, const ProblemCommand& command,
                            const SenderContext& sender, storage::LocalTime now, bool& recorded);
  /// The reply to 通报 / 点评: rendered from the store outside the write unit (it reads a lot).
  std::string bulletin_reply(const CommandMsg& command, const std::string& userid,
                             storage::LocalTime now);
  bool is_admin(const std::string& userid) const;

  storage::Store& store_;
  const Templates& templates_;
  DispatchOptions options_;
};

}  // namespace handlers
