// HTTP/2 cleartext: frame parsing per direction, header blocks decoded with
// nghttp2's HPACK inflater (one per direction), exchanges keyed by stream.
#pragma once

#include <cstdint>
#include <span>

#include "parsers/common/protocol_parser.h"
#include "parsers/common/records.h"

namespace l7tap {

/// Every bound of the HTTP/2 parser, with its default and why.
struct Http2Limits {
  /// Streams open at once per connection; the peer's usual
  /// SETTINGS_MAX_CONCURRENT_STREAMS is 100-256.
  uint32_t max_open_streams = 256;
  /// Decoded header bytes kept per header block before fields are dropped.
  uint32_t max_header_list_bytes = 64 * 1024;
  /// Frames longer than this are treated as desynchronisation (the largest
  /// SETTINGS_MAX_FRAME_SIZE allowed is 2^24-1).
  uint32_t max_frame_bytes = (1u << 24) - 1;
  uint32_t max_url_bytes = 2048;
  uint32_t max_header_value_bytes = 512;
};

/// True when `bytes` plausibly start with HTTP/2 frame headers (used to
/// recognise a connection joined after its preface).
bool looksLikeHttp2Frames(std::span<const uint8_t> bytes);

class Http2Parser final : public ProtocolParser {
 public:
  explicit Http2Parser(ExchangeSink& sink, const Http2Limits& limits = {});
  ~Http2Parser() override;

  ParseResult onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) override;
  void onGap(Role role, uint64_t length, uint64_t ts_ns) override;
  void onEnd(Role role, bool reset, uint64_t ts_ns) override;
  void finish(uint64_t ts_ns) override;

  /// The connection was joined after the client preface: don't expect it.
  void startMidstream();
  /// h2c Upgrade: `request` (sent as HTTP/1.1) is stream 1's request; the
  /// client preface follows on the client side.
  void adoptUpgradedRequest(const HttpRecord& request);

 private:
  struct Impl;
  Impl* impl_;  // owned; hides nghttp2 from includers
};

}  // namespace l7tap
