// libFuzzer target: the WeCom callback as the server reads it (bot/wecom/callback.h): the POST
// envelope
// {"encrypt": …}, decryption (base64, AES-256-CBC, padding, length, receiveid) and the message
// JSON. Three views of each input: as a POST body, as the `encrypt` text itself, and as a
// plaintext encrypted with the right key (so the JSON reader sees attacker-shaped messages that
// passed decryption, as a holder of the key could send).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bot/wecom/callback.h"
#include "bot/wecom/crypto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bot::WecomCrypto kCrypto("bangfuTestToken7",
                                        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "");
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto enc = bot::envelope_encrypt(input)) {
    (void)kCrypto.verify(std::string(40, '0'), "1700000000", "nonce", *enc);
    (void)bot::open_callback(kCrypto, *enc);
  }
  (void)bot::open_callback(kCrypto, input);

  const std::string enc = kCrypto.encrypt(input, "0123456789abcdef");
  const bot::OpenedCallback opened = bot::open_callback(kCrypto, enc);
  if (opened.error == bot::OpenError::Decrypt) __builtin_trap();  // our own ciphertext
  return 0;
}
