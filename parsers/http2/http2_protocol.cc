#include "parsers/http2/http2_protocol.h"

#include <string_view>

#include "parsers/http2/frame.h"

namespace l7tap {

namespace {

std::string_view asText(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Detected detectPreface(std::span<const uint8_t> bytes, const StartContext&) {
  return {matchPrefix(asText(bytes), h2::kClientPreface), Sender::kClient};
}

// An HTTP/2 server may send its SETTINGS before the client's preface arrives
// (nghttpd does): the preface is still to come from the client. Ranked after
// every other first-bytes detector.
Detected detectServerFirst(std::span<const uint8_t> bytes, const StartContext& ctx) {
  if (!ctx.sender_answered_syn || !looksLikeHttp2Frames(bytes)) return {};
  return {Match::kYes, Sender::kServer};
}

// Frame headers at a segment start; the roles stay as the connection has them.
Boundary findFrames(std::span<const uint8_t> chunk, std::span<const uint8_t>) {
  if (!looksLikeHttp2Frames(chunk)) return {};
  return {true, Sender::kUnknown, true};
}

class Http2Protocol final : public Protocol {
 public:
  explicit Http2Protocol(const Http2Limits& limits) : limits_(limits) {}
  std::string_view name() const override { return "h2"; }
  bool takesUpgrade(std::string_view token) const override { return token == "h2c"; }
  std::unique_ptr<ProtocolParser> makeParser(const ParserStart& start) const override {
    auto p = std::make_unique<Http2Parser>(*start.sink, limits_, start.redaction, start.conn);
    if (start.upgrade != nullptr) {
      if (const auto* request = dynamic_cast<const HttpRecord*>(start.upgrade->request)) {
        p->adoptUpgradedRequest(*request);
      }
    } else if (start.midstream && !asText(start.client_bytes).starts_with(h2::kClientPreface)) {
      // Only skip the preface if the client's bytes don't start with it.
      p->startMidstream();
    }
    return p;
  }

 private:
  Http2Limits limits_;
};

}  // namespace

size_t registerHttp2(ProtocolRegistry& registry, const Http2Limits& limits) {
  const size_t id = registry.add(std::make_unique<Http2Protocol>(limits));
  registry.addStartDetector(10, id, detectPreface);
  registry.addStartDetector(40, id, detectServerFirst);
  registry.addBoundaryDetector(10, id, findFrames);
  return id;
}

}  // namespace l7tap
