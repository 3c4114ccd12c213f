#pragma once

#include <string>

namespace bot {

/// The text of `bangfu --version`: the version (CMake's project(VERSION)), the git commit it was
/// built from (when built from a checkout), and the versions of SQLite and OpenSSL in use (the
/// shared libraries loaded at run time) and of cpp-httplib (its header, compiled in).
std::string version_text();

}  // namespace bot
