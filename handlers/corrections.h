#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "handlers/templates.h"
#include "handlers/understanding.h"
#include "storage/store.h"

namespace handlers {

/// How far back a helper may correct (更正) or undo by name (撤销 王某某户 12月3日): check-ins
/// from messages received in the last 7 days.
inline constexpr int64_t kCorrectionWindowSeconds = 7 * 24 * 3600;

/// `更正 <a whole check-in line>`: the line after the command word, trimmed ("" when the
/// helper wrote only 更正). nullopt when the message is not a correction. Pure; `text` as
/// received (the bot's @-mention is stripped here).
std::optional<std::string> parse_correction(std::string_view text, std::string_view bot_name);

/// The answer to a correction or a named undo, and what it did.
struct CorrectionResult {
  std::string reply;  // rendered from templates/, names not yet masked
  storage::InboundOutcome outcome = storage::InboundOutcome::NotUnderstood;
  bool recorded = false;  // the store changed
};

/// Templates the two commands below render.
const std::vector<std::string>& correction_template_names();

/// 更正: replaces the sender's last check-in received within the window by `line` (the
/// understanding of the text after 更正). The old one is kept, marked corrected; the new one is
/// recorded under this message; both in the caller's write unit. A line that is not a check-in,
/// or no check-in to correct, gets a clear answer and changes nothing.
CorrectionResult apply_correction(storage::Store::Tx& tx, const Templates& templates,
                                  const storage::InboundMessage& message,
                                  std::string_view line_text, const Understanding& line,
                                  const SenderContext& sender, storage::LocalTime now);

/// 撤销 <whom> <date>: undoes the sender's check-in so named (any received within the window).
/// `argument` is the text after 撤销 (normalized). Either part may be left out when the rest is
/// enough to pick one check-in; several or none matching get a question back and change nothing.
CorrectionResult apply_named_undo(storage::Store::Tx& tx, const Templates& templates,
                                  const storage::InboundMessage& message, std::string_view argument,
                                  const SenderContext& sender, storage::LocalTime now,
                                  std::string_view bot_name);

}  // namespace handlers
