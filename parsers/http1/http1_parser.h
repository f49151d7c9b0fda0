// HTTP/1.x over llhttp: one request parser for the client side, one
// response parser for the server side, exchanges paired by order.
#pragma once

#include <cstdint>
#include <span>

#include "parsers/common/protocol_parser.h"
#include "parsers/common/records.h"

namespace l7tap {

/// Every bound of the HTTP/1 parser, with its default and why.
struct Http1Limits {
  /// Requests waiting for their response (pipelining depth).
  uint32_t max_pending_requests = 64;
  /// Bytes kept of a URL; longer ones are cut and flagged kFlagTruncated.
  uint32_t max_url_bytes = 2048;
  /// Bytes kept of each header value we record (Host, User-Agent, ...).
  uint32_t max_header_value_bytes = 512;
  /// Bytes of unparseable input scanned for a message boundary before giving up
  /// on the current segment (resync is retried on the next bytes).
  uint32_t max_resync_scan_bytes = 64 * 1024;
};

class Http1Parser final : public ProtocolParser {
 public:
  explicit Http1Parser(ExchangeSink& sink, const Http1Limits& limits = {});
  ~Http1Parser() override;

  ParseResult onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) override;
  void onGap(Role role, uint64_t length, uint64_t ts_ns) override;
  void onEnd(Role role, bool reset, uint64_t ts_ns) override;
  void finish(uint64_t ts_ns) override;

  /// After kSwitchToHttp2: the request that carried `Upgrade: h2c`, which
  /// HTTP/2 answers on stream 1. Valid until the parser is destroyed.
  const HttpRecord& upgradedRequest() const;

 private:
  struct Impl;
  Impl* impl_;  // owned; hides llhttp from includers
};

}  // namespace l7tap
