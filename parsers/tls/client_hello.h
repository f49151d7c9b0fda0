// Just enough TLS to name a connection: the record header that identifies
// TLS, and SNI and ALPN from a cleartext ClientHello. Nothing is decrypted.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace l7tap {

enum class TlsParse : uint8_t {
  kNotTls,         ///< not a TLS handshake record
  kNeedMore,       ///< a TLS handshake record, not complete yet
  kClientHello,    ///< a complete ClientHello; fields filled
  kOtherHandshake  ///< TLS, but not a ClientHello (ServerHello: the sender is the server)
};

struct ClientHelloInfo {
  std::string server_name;  ///< SNI host name, empty if absent
  std::string alpn;         ///< offered ALPN protocols, comma separated
};

/// True when `bytes` start like a TLS handshake record (content type 22,
/// version 3.x). Needs 3 bytes.
bool looksLikeTlsHandshake(std::span<const uint8_t> bytes);

/// Parses the first handshake record of a side. Field values are bounded
/// (255 bytes each) and checked against every length on the way.
TlsParse parseClientHello(std::span<const uint8_t> bytes, ClientHelloInfo& info);

}  // namespace l7tap
