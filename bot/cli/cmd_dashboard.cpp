#include "bot/cli/cmd_dashboard.h"

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "bot/office/auth.h"

namespace bot {
namespace {

constexpr size_t kMinPasswordBytes = 8;

int cmd_office_passwd(const Args& a, std::ostream& out, std::ostream&) {
  const std::string name = a.need("name");
  if (name.empty() || name.size() > 64) throw UsageError("--name must be 1-64 bytes");
  std::string password;
  std::getline(std::cin, password);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.size() < kMinPasswordBytes)
    throw UsageError("the password on standard input must be at least " +
                     std::to_string(kMinPasswordBytes) + " bytes (nothing printed)");
  const nlohmann::ordered_json entry = {{"name", name}, {"hash", office::hash_password(password)}};
  out << entry.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::strict) << "\n";
  return 0;
}

}  // namespace

std::vector<CommandSpec> dashboard_commands() {
  return {
      {"office passwd",
       "hash a password for the office dashboard's config",
       "usage: bangfu office passwd --name NAME < password\n"
       "Reads the password (one line, at least 8 bytes) from standard input and prints the\n"
       "office.users entry {\"name\": NAME, \"hash\": \"$argon2id$…\"} (Argon2id, libsodium).\n"
       "Example: read -rs PW && printf '%s\\n' \"$PW\" | bangfu office passwd --name wang\n",
       {"name"},
       {},
       cmd_office_passwd},
  };
}

}  // namespace bot
