// HTTP/1.x over llhttp: one request parser for the client side, one
// response parser for the server side, exchanges paired by order.
#pragma once

#include <cstdint>
#include <memory>
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
  /// Request slots (about 400 bytes each plus their strings' capacity) and
  /// in-flight parsing states (about 700 bytes) kept for reuse per thread,
  /// of each kind. A connection holds them only while a message is in
  /// flight, so an idle one holds neither, and reuse keeps the keep-alive
  /// steady state free of allocations; more than this are freed.
  uint32_t max_free_slots = 4096;
};

/// What the HTTP/1 parser counted; data-path oddities never throw, they land here.
struct Http1Stats {
  uint64_t exchanges = 0;               ///< records emitted
  uint64_t parse_errors = 0;            ///< llhttp errors (each starts a resync)
  uint64_t resyncs = 0;                 ///< times a side lost sync (gap, error, refused upgrade)
  uint64_t resync_dropped_bytes = 0;    ///< bytes skipped while looking for a boundary
  uint64_t gap_skipped_body_bytes = 0;  ///< gap bytes skipped inside a known body
  uint64_t gaps_outside_body = 0;       ///< gaps that closed an exchange or forced a resync
  uint64_t tunnel_dropped_bytes = 0;    ///< client bytes sent while an Upgrade/CONNECT was pending
  uint64_t pending_overflows = 0;       ///< requests dropped at max_pending_requests
  uint64_t truncated_fields = 0;        ///< kept fields cut at their bound
  uint64_t ambiguous_messages = 0;      ///< messages flagged kFlagAmbiguous
  /// Content-Length or chunk sizes past 2^64-1: the message is closed as at a
  /// parse error and flagged kFlagOverflow (its body size is unknown).
  uint64_t length_overflows = 0;
  /// Requests an RFC 9112 server answers with 400 and a close (two different
  /// Content-Lengths, Transfer-Encoding not ending in chunked, ...): the
  /// client side stops there, since the server reads nothing after them.
  uint64_t rejected_requests = 0;
  uint64_t rejected_dropped_bytes = 0;  ///< client bytes after a rejected request
};

/// HTTP/1.x parser for one connection: an llhttp request parser on the client
/// side and a response parser on the server side.
///
/// Pairing: a request joins a bounded FIFO when its first byte is parsed;
/// each final response answers the oldest pending request (order, never
/// time), and the exchange is emitted when the response completes. One
/// causality check: a response whose first byte precedes the oldest pending
/// request's first byte cannot answer it and goes out with kFlagNoRequest. At
/// max_pending_requests the oldest request is emitted (kFlagNoResponse |
/// kFlagOverflow) and the next response is emitted alone (kFlagNoRequest |
/// kFlagOverflow), which keeps the pairing aligned.
///
/// Gaps: inside a Content-Length body or inside chunk data, up to the end of
/// that body or chunk, the bytes are skipped (counted in the body size, record
/// flagged kFlagGap) and parsing goes on; a gap that ends exactly at the body's
/// end completes the message at the gap's timestamp. In a close-delimited body
/// the bytes are counted and flagged. Anywhere else (start or header lines,
/// chunk-size lines, between messages, or past the end of a body) the side's
/// message in progress is closed with kFlagGap and the side resynchronises:
///  - client: the request stays queued, flagged, and is paired with the next
///    response (requests lost whole inside the gap cannot be known);
///  - server: the response in progress is emitted with what it got (plus
///    kFlagNoResponse if its status line never completed), and then every
///    pending request already complete is emitted with kFlagNoResponse |
///    kFlagGap, since its answer may have been lost; requests still being
///    received stay queued for the responses found after the resync.
/// A parse error is handled like such a gap, except that a message whose start
/// line never completed leaves no record (its bytes may be misaligned).
///
/// Resync (http1::ResyncScanner): a side starts in resync too, so a capture
/// joined mid-connection recovers the same way (the first message after
/// dropped bytes carries kFlagMidstream). The boundary is a line start (first
/// byte after the loss, first byte of a segment, or after '\n') holding a
/// request line `METHOD target HTTP/1.x CRLF` or a status line
/// `HTTP/1.x ddd`; bytes before it are dropped and counted.
///
/// Methods: any RFC 9110 token of up to http1::kMaxMethodBytes. llhttp
/// refuses one outside its list for good, so such a request is taken only on
/// a whole request line with an HTTP/1.x version (held until then), llhttp
/// is given "GET" in its place (framing as for GET) and the record keeps the
/// token. HTTP/0.9 (`GET target CRLF`, no version): the request ends with
/// its line and the client's side stops; the server's bytes, unless they
/// start with "HTTP/", are the response body up to the server's FIN: one
/// exchange, version "0.9", no status. (So a client's stream that starts
/// with a method llhttp knows and a space is parsed from its first byte: the
/// scanner wants a version, which a 0.9 line has not.)
///
/// Ambiguous framing (request smuggling shapes): where two readings are
/// possible the parser follows what an RFC 9112 server does and flags the
/// record kFlagAmbiguous. Content-Length with Transfer-Encoding: chunked is
/// read as chunked (TE overrides CL); repeated equal Content-Lengths as one;
/// obs-fold and bare LF line ends as llhttp and nginx accept them. A request
/// a server must reject with 400 and a close (different Content-Lengths, an
/// invalid one, a Transfer-Encoding whose last coding is not chunked, or any
/// on HTTP/1.0) stays pending for that answer, and the client side reads no
/// further: the bytes after it, which the server never parses as requests,
/// are only counted. In a response, such framing ends the exchange as a
/// parse error does.
///
/// Upgrades: CONNECT answered 2xx, and any 101, emit the exchange with
/// kFlagUpgrade and return kStop; a 101 to `Upgrade: h2c` returns
/// kSwitchProtocol without emitting (see upgrade(), upgradedRequest()). Client bytes sent
/// after an Upgrade/CONNECT request and before its answer are dropped; if the
/// upgrade is refused the client side resyncs (or just continues when nothing
/// was sent meanwhile).
///
/// Memory: between exchanges (nothing in flight, no bytes held for resync) a
/// parser keeps only about 200 bytes (its object and a 152-byte state, the counters of what went
/// wrong allocated at the first); the llhttp state of both sides and the request slots come from
/// per-thread free lists while a message is in flight (see Http1Limits::max_free_slots).
class Http1Parser final : public ProtocolParser {
 public:
  /// `redaction` (null: redact everything) must outlive the parser; so must
  /// `conn`, whose L4 counters give each record its exchange_l4 (null: none).
  explicit Http1Parser(ExchangeSink& sink, const Http1Limits& limits = {},
                       const RedactionPolicy* redaction = nullptr,
                       const ConnectionInfo* conn = nullptr);
  ~Http1Parser() override;

  ParseResult onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) override;
  void onGap(Role role, uint64_t length, uint64_t ts_ns) override;
  void onEnd(Role role, bool reset, uint64_t ts_ns) override;
  void finish(uint64_t ts_ns) override;
  uint64_t skippableBytes(Role role) const override;
  /// After kSwitchProtocol: "h2c" and upgradedRequest().
  Upgrade upgrade() const override;
  void visitCounters(CounterVisitor& v) const override;

  /// After kSwitchProtocol: the request that carried `Upgrade: h2c`, which
  /// HTTP/2 answers on stream 1. Valid until the parser is destroyed.
  /// The record carries the request fields and timings, plus interim_status
  /// 101 and response_start_ns (the 101's first byte); HTTP/2 fills the rest.
  const HttpRecord& upgradedRequest() const;

  Http1Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;  // hides llhttp from includers
};

}  // namespace l7tap
