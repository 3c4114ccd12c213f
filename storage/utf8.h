#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace storage {

/// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF): the offset of the
/// first byte that breaks it, or nullopt when all of `s` is valid.
std::optional<std::size_t> invalid_utf8_at(std::string_view s);

/// `s` with each byte that breaks UTF-8 replaced by U+FFFD, so that text put into JSON for a
/// platform is always valid (a template saved in GBK must not make an answer unreadable).
std::string replace_invalid_utf8(std::string_view s);

}  // namespace storage
