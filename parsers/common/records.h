// The two record kinds every connection can have: one per HTTP exchange and
// one per TCP connection, each with its schema (field names and order, listed
// in ../shared/DESIGN.md) next to its values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "parsers/common/record.h"
#include "reassembly/connection_stats.h"
#include "redaction/redaction.h"

namespace l7tap {

/// Flags an HttpRecord can carry; every one means "this record is not the
/// whole, clean story" in a specific way.
enum HttpFlag : uint32_t {
  kFlagGap = 1u << 0,           ///< bytes of this exchange were lost (loss or window)
  kFlagTruncated = 1u << 1,     ///< a kept field was cut at its bound
  kFlagMidstream = 1u << 2,     ///< the connection was joined mid-way
  kFlagReset = 1u << 3,         ///< RST (TCP) or RST_STREAM (HTTP/2) ended it
  kFlagNoResponse = 1u << 4,    ///< request seen, response never completed
  kFlagNoRequest = 1u << 5,     ///< response seen without its request
  kFlagHpackError = 1u << 6,    ///< a header block could not be decoded
  kFlagHpackUnknown = 1u << 7,  ///< a header field referenced unknown HPACK state
  kFlagUpgrade = 1u << 8,       ///< the connection switched protocol after this exchange
  kFlagOverflow = 1u << 9,      ///< a per-connection bound dropped parser state
  /// The message's framing could be read two ways (Content-Length with
  /// Transfer-Encoding, two Content-Lengths, obs-fold, bare LF, ...): the
  /// record follows what an RFC 9112 server does, which may not be what
  /// every hop on the path did.
  kFlagAmbiguous = 1u << 10,
  /// A query value, user info or a path segment was removed (see
  /// redaction/): the record
  /// is not what was sent, on purpose.
  kFlagRedacted = 1u << 11,
};

/// Names of the HttpFlag bits, in bit order.
inline constexpr const char* kHttpFlagNames[] = {
    "gap",         "truncated",     "midstream", "reset",    "no_response", "no_request",
    "hpack_error", "hpack_unknown", "upgrade",   "overflow", "ambiguous",   "redacted",
};

/// The L4 events of one direction that an exchange saw, counted as the
/// connection record counts them (DirectionStats).
struct ExchangeL4 {
  uint64_t retransmitted_segments = 0;
  uint64_t retransmitted_bytes = 0;
  uint64_t zero_window_events = 0;
  uint64_t out_of_order_segments = 0;
  /// Not a field of its own: a nonzero count flags the record `ambiguous`
  /// (endL4), as the copies of its bytes differed and the record shows what
  /// the Linux receiver kept (StreamReassembler).
  uint64_t conflicting_overlap_bytes = 0;
  bool any() const {
    return (retransmitted_segments | retransmitted_bytes | zero_window_events |
            out_of_order_segments) != 0;
  }
};

/// Indexes of HttpRecord::exchange_l4: by role, not by packet direction.
inline constexpr int kExchangeClient = 0;
inline constexpr int kExchangeServer = 1;

/// `conn`'s L4 event counters by role (all zero when `conn` is null).
void markExchangeL4(const ConnectionInfo* conn, ExchangeL4 (&by_role)[2]);

/// Appends a bounded copy of `src` to `dst`: at most `max` bytes in total.
/// Returns false (and sets nothing else) when bytes were cut.
bool appendBounded(std::string& dst, std::string_view src, size_t max);

/// One request/response exchange (or half of one). Strings are bounded
/// copies; empty means absent. Times are nanoseconds on the source's clock,
/// 0 when unknown.
struct HttpRecord final : Record {
  /// Bytes of the method and of path?query shown in the message.
  static constexpr size_t kMaxMessageMethod = 64;
  static constexpr size_t kMaxMessageTarget = 512;

  std::string method;
  std::string path;   ///< target without the query, or the authority for CONNECT
  std::string query;  ///< after '?', without it
  std::string host;   ///< Host header or :authority
  std::string user_agent;
  std::string content_type;  ///< of the request
  const char* version = "";  ///< "1.0", "1.1" or "2"
  int status = 0;            ///< final status; 0 if none
  int interim_status = 0;    ///< last 1xx before the final status, 0 if none
  uint32_t stream_id = 0;    ///< HTTP/2 stream, 0 for HTTP/1
  uint64_t request_header_bytes = 0;
  uint64_t request_body_bytes = 0;
  uint64_t response_header_bytes = 0;
  uint64_t response_body_bytes = 0;
  uint64_t request_start_ns = 0;   ///< first byte of the request
  uint64_t request_end_ns = 0;     ///< last byte of the request
  uint64_t response_start_ns = 0;  ///< first byte of the (final or interim) response
  uint64_t response_end_ns = 0;    ///< last byte of the response
  // gRPC, when content-type is application/grpc*.
  std::string rpc_service;
  std::string rpc_method;
  int grpc_status = -1;  ///< -1 if absent
  uint32_t flags = 0;    ///< HttpFlag bits
  /// L4 events of each direction (kExchangeClient, kExchangeServer) counted
  /// while the exchange was in flight: from its first byte (the request's,
  /// or the response's when there is no request) to its last, both ends
  /// included, the events being counted when their segment arrives (before
  /// its bytes are delivered). Exchanges in flight at the same time (HTTP/1
  /// pipelining, HTTP/2 streams) each carry the events of their overlap.
  /// While a parser holds the record, it holds the connection's counters at
  /// the first byte (startL4); endL4 turns them into the difference.
  ExchangeL4 exchange_l4[2];

  void clear() { *this = HttpRecord{}; }
  /// Marks the exchange's first byte: keeps `conn`'s counters (null: none).
  void startL4(const ConnectionInfo* conn) { markExchangeL4(conn, exchange_l4); }
  /// Marks its last byte: the events since startL4, and the `ambiguous` flag
  /// when copies of bytes of either side differed meanwhile (conflicting
  /// overlaps are counted when the stream reaches them, not on arrival).
  /// Call once, when the record is handed out.
  void endL4(const ConnectionInfo* conn);
  /// Either side retransmitted while the exchange was in flight (after
  /// endL4): what metrics label a request's duration by.
  bool sawRetransmission() const {
    return exchange_l4[kExchangeClient].retransmitted_segments != 0 ||
           exchange_l4[kExchangeServer].retransmitted_segments != 0;
  }
  /// Applies `policy` to the URL fields and the host, flagging what it
  /// changed; parsers call it on every record they hand out, so that no sink
  /// sees a secret. Idempotent.
  /// `max_query`: the parser's bound for the query and the path, which
  /// redaction keeps.
  void redact(const RedactionPolicy& policy, size_t max_query);

  /// The flags the record is written with: its own plus the connection's.
  uint32_t effectiveFlags(const ConnectionInfo& conn) const {
    return flags | (conn.midstream ? kFlagMidstream : 0u);
  }
  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override;
  /// `GET /api/user/10?x=1 -> 200 60.1 ms 10.1.0.4:41230 -> 10.1.0.9:8080 [gap]`:
  /// method (or "-"), path?query (or "-"), the status or "no response", the
  /// duration in ms with one decimal (or "-"), client -> server, and the
  /// flags in brackets if any.
  void appendMessage(std::string& out, const ConnectionInfo& conn) const override;
  /// 5xx: 4 (warning), 4xx: 5 (notice), anything else 6 (info).
  int priority() const override;
};

/// What a protocol adds to its connection's record (TLS names, HTTP/2 HPACK
/// table facts). The session passes its parser's on without knowing them.
class ConnFacts {
 public:
  /// Right after l7tap.protocol: what names the connection.
  virtual void visitIdentity(FieldVisitor& v) const { (void)v; }
  /// At the end of the record; `interim`: the connection is still open.
  virtual void visitState(bool interim, FieldVisitor& v) const {
    (void)interim;
    (void)v;
  }

 protected:
  ~ConnFacts() = default;
};

/// A TCP connection's record, final or interim: the connection's statistics
/// (ConnectionInfo) and what the session knows of its protocol.
struct ConnRecord final : Record {
  std::string_view protocol = "unknown";  ///< "http/1", "h2", "tls", "unknown", ...
  uint64_t exchanges = 0;                 ///< exchange records written on it
  bool interim = false;                   ///< the connection is still open: statistics so far
  const ConnFacts* facts = nullptr;

  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override;
  /// `conn 10.1.0.4:41230 -> 10.1.0.9:8080 http/1 SF 3 exchanges 1.2 ms`,
  /// with " interim" appended to an interim record.
  void appendMessage(std::string& out, const ConnectionInfo& conn) const override;
};

}  // namespace l7tap
