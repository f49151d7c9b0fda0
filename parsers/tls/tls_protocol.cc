#include "parsers/tls/tls_protocol.h"

namespace l7tap {

namespace {

// Ranked after HTTP: a ClientHello names its sender the client, any other
// handshake record (ServerHello) the server. A handshake record still
// incomplete when the detection buffer is full is TLS all the same, with the
// roles the connection has.
Detected detectHandshake(std::span<const uint8_t> bytes, const StartContext& ctx) {
  ClientHelloInfo hello;
  switch (parseClientHello(bytes, hello)) {
    case TlsParse::kClientHello:
      return {Match::kYes, Sender::kClient};
    case TlsParse::kOtherHandshake:
      return {Match::kYes, Sender::kServer};
    case TlsParse::kNeedMore:
      if (ctx.buffer_full) return {Match::kYes, Sender::kUnknown};
      return {Match::kNeedMore};
    case TlsParse::kNotTls:
      break;
  }
  return {};
}

class TlsProtocol final : public Protocol {
 public:
  std::string_view name() const override { return "tls"; }
  std::unique_ptr<ProtocolParser> makeParser(const ParserStart& start) const override {
    // The client's first bytes are the ClientHello the detector saw (when it
    // saw one: a ServerHello first leaves them incomplete or empty).
    ClientHelloInfo hello;
    if (parseClientHello(start.client_bytes, hello) != TlsParse::kClientHello) hello = {};
    return std::make_unique<TlsFacts>(std::move(hello));
  }
};

}  // namespace

void TlsFacts::visitIdentity(FieldVisitor& v) const {
  if (!hello_.server_name.empty()) v.str("tls.client.server_name", hello_.server_name);
  if (!hello_.alpn.empty()) v.str("l7tap.tls.alpn_offered", hello_.alpn);
}

size_t registerTls(ProtocolRegistry& registry) {
  const size_t id = registry.add(std::make_unique<TlsProtocol>());
  registry.addStartDetector(30, id, detectHandshake);
  return id;
}

}  // namespace l7tap
