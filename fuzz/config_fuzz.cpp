// libFuzzer target: config loading (bot::parse_config). Its contract: a usable Config, or a
// ConfigError naming the key. Any other exception escapes and is reported as a crash.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "bot/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  static const std::map<std::string, std::string> kNoEnv;
  try {
    const bot::Config c = bot::parse_config(text, kNoEnv, "/nonexistent/base");
    if (c.database.empty() || c.listen_port < 0 || c.listen_port > 65535) __builtin_trap();
  } catch (const bot::ConfigError&) {
  }
  return 0;
}
