// The TLS ClientHello parser on arbitrary bytes: every length field is the
// fuzzer's, and the fields it fills stay within their bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "parsers/tls/client_hello.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  (void)l7tap::looksLikeTlsHandshake(bytes);
  l7tap::ClientHelloInfo info;
  const l7tap::TlsParse result = l7tap::parseClientHello(bytes, info);
  // 255 bytes per field (client_hello.h); ALPN joins several with commas.
  if (result == l7tap::TlsParse::kClientHello && info.server_name.size() > 255) std::abort();
  return 0;
}
