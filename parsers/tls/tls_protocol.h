// TLS in the protocol registry: a ClientHello (or another handshake record)
// names the connection, SNI and ALPN go in its record, and nothing more is
// parsed: the capture only counts the rest.
#pragma once

#include "parsers/common/protocol.h"
#include "parsers/tls/client_hello.h"

namespace l7tap {

/// Registers TLS ("tls"); returns its index.
size_t registerTls(ProtocolRegistry& registry);

/// A TLS connection's facts for its record.
class TlsFacts final : public ProtocolParser {
 public:
  explicit TlsFacts(ClientHelloInfo hello) : hello_(std::move(hello)) {}
  ParseResult onData(Role, std::span<const uint8_t> bytes, uint64_t) override {
    return {ParseOutcome::kContinue, bytes.size()};
  }
  void onGap(Role, uint64_t, uint64_t) override {}
  void onEnd(Role, bool, uint64_t) override {}
  void finish(uint64_t) override {}
  bool needsPayload() const override { return false; }
  /// tls.client.server_name, l7tap.tls.alpn_offered when known.
  void visitIdentity(FieldVisitor& v) const override;

 private:
  ClientHelloInfo hello_;
};

}  // namespace l7tap
