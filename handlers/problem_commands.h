#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kainjow/mustache.hpp>

#include "storage/problems.h"

namespace handlers {

/// A chat command about tracked problems (README "Problems"), understood before the check-in
/// parser sees the text:
/// - `我的问题` (also 我的问题清单, 查问题): the sender's open problems;
/// - `#12 已解决 低保已批`, `#12已解决`, `问题12已解决 …`, `12号问题已解决`, `第12号问题 已解决`:
///   resolve item 12, the rest of the text is the note;
/// - `#12 跟进中 已报民政局` (also 正在跟进, 处理中): mark it in progress.
/// A message that starts like a problem reference (`#12`, `问题12`, `12号问题`) but names no
/// status is a Set with `status` nullopt, so the chat can say how to write it.
struct ProblemCommand {
  enum class Kind { Mine, Set };
  Kind kind = Kind::Mine;
  int64_t id = 0;
  std::optional<storage::ProblemStatus> status;
  std::string note;
};

/// Parses normalised text (handlers::normalize). nullopt: not a problem command. Pure.
std::optional<ProblemCommand> parse_problem_command(std::string_view text);

/// The problem items a check-in opened, for a reply's template: `problems` (each `id`, `category`,
/// `more` but the last) and `first_problem` (its id). Sets nothing when `items` is empty.
void set_problem_items(kainjow::mustache::data& d, const std::vector<storage::Problem>& items);

}  // namespace handlers
