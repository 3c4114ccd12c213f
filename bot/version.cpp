#include "bot/version.h"

#include <openssl/crypto.h>
#include <sqlite3.h>

#include <httplib.h>

#include "bot/version_info.h"

namespace bot {

std::string version_text() {
  const std::string commit = BANGFU_GIT_COMMIT;
  std::string out = "bangfu " BANGFU_VERSION "\n";
  out += "commit: " +
         (commit.empty() ? std::string("unknown (not built from a git checkout)") : commit) + "\n";
  out += std::string("SQLite: ") + sqlite3_libversion() + "\n";
  out += std::string("OpenSSL: ") + OpenSSL_version(OPENSSL_VERSION) + "\n";
  out += "cpp-httplib: " CPPHTTPLIB_VERSION "\n";
  return out;
}

}  // namespace bot
