// The records l7tap writes: one per HTTP exchange and one per TCP connection.
// JSON and journald field names are listed in ../shared/DESIGN.md and written
// by the sinks in daemon/; this header only holds the values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "reassembly/connection_stats.h"

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
};

/// Appends a bounded copy of `src` to `dst`: at most `max` bytes in total.
/// Returns false (and sets nothing else) when bytes were cut.
bool appendBounded(std::string& dst, std::string_view src, size_t max);

/// One request/response exchange (or half of one). Strings are bounded
/// copies; empty means absent. Times are nanoseconds on the source's clock,
/// 0 when unknown.
struct HttpRecord {
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

  void clear() { *this = HttpRecord{}; }
};

/// Where parsers deliver finished exchanges (the session adds the connection).
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  /// `record` is only valid during the call.
  virtual void onExchange(const HttpRecord& record) = 0;
};

/// One direction's HPACK dynamic-table knowledge over an HTTP/2 connection
/// (a copy of Http2HpackSync, filled when the connection closes).
struct HpackSyncInfo {
  bool synchronised = true;  ///< the table was known at the end
  uint32_t losses = 0;       ///< times the table became unknown (0: exact throughout)
  uint32_t resumes = 0;      ///< times exact decoding resumed
  /// When exact decoding last resumed (when resumes > 0): exchanges emitted
  /// on the connection so far, and bytes of this direction since the start
  /// of the capture (received or lost).
  uint64_t resumed_after_exchanges = 0;
  uint64_t resumed_after_bytes = 0;
};

/// What the session knows about a connection's application protocol, put
/// together when a connection record is written: the session keeps the TLS
/// and HTTP/2 facts only for connections they apply to.
struct ProtocolInfo {
  const char* name = "unknown";  ///< "http/1", "h2", "tls", "unknown"
  std::string tls_server_name;   ///< SNI
  std::string tls_alpn;          ///< ALPN protocols offered, comma separated
  uint64_t exchanges = 0;
  bool interim = false;  ///< the connection is still open: statistics so far
  /// HTTP/2 only: [0] the client's header blocks (requests), [1] the
  /// server's (responses). Filled in the final record.
  HpackSyncInfo hpack[2];
};

/// Where records go: JSON lines, journald, metrics (daemon/ implements).
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void onHttp(const ConnectionInfo& conn, const HttpRecord& record) = 0;
  virtual void onConnection(const ConnectionInfo& conn, const ProtocolInfo& proto) = 0;
};

}  // namespace l7tap
