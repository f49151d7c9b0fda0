// The per-connection analyser: detects the application protocol from the
// first bytes of each side, routes bytes to the protocol's parser by role,
// and hands records to the sink with the connection they belong to.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "parsers/common/records.h"
#include "parsers/http1/http1_parser.h"
#include "parsers/http2/http2_parser.h"
#include "parsers/tls/client_hello.h"
#include "reassembly/stream_observer.h"

namespace l7tap {

struct SessionLimits {
  /// Bytes per side buffered while the protocol is not known yet. A TLS
  /// ClientHello with post-quantum key shares is about 2 KB; 8 KB leaves room.
  uint32_t max_detect_bytes = 8 * 1024;
  /// A connection joined mid-way is scanned this far per side for a message
  /// boundary (HTTP/1 start line, HTTP/2 frame at a segment start) before it
  /// is given up as "unknown": one large body and the next request fit.
  uint32_t max_midstream_scan_bytes = 4 * 1024 * 1024;
  /// While scanning, the last bytes kept so a start line split across
  /// segments is still found.
  uint32_t midstream_tail_bytes = 1024;
  /// Skippable bytes (see ProtocolParser::skippableBytes) worth telling the
  /// capture about: below this the per-packet window costs less than the
  /// map update.
  uint32_t min_skip_bytes = 8 * 1024;
};

/// Counters over every session, for the summary.
struct SessionStats {
  uint64_t connections_http1 = 0;
  uint64_t connections_http2 = 0;
  uint64_t connections_tls = 0;
  uint64_t connections_other = 0;
  uint64_t http_records = 0;
  uint64_t conn_records = 0;
  /// The parsers' counters, summed over closed connections (the HPACK
  /// per-direction facts are left out: they are in the connection records).
  Http1Stats http1;
  Http2Stats http2;
};

enum class AppProtocol : uint8_t { kDetecting, kHttp1, kHttp2, kTls, kOther, kStopped };

class SessionFactory final : public StreamObserverFactory {
 public:
  explicit SessionFactory(RecordSink& sink, const SessionLimits& limits = {},
                          const Http1Limits& http1 = {}, const Http2Limits& http2 = {})
      : sink_(&sink), limits_(limits), http1_(http1), http2_(http2) {}
  std::unique_ptr<StreamObserver> create(ConnectionInfo& conn, CaptureHints& hints) override;
  const SessionStats& stats() const { return stats_; }

 private:
  friend class Session;
  RecordSink* sink_;
  SessionLimits limits_;
  Http1Limits http1_;
  Http2Limits http2_;
  SessionStats stats_;
};

class Session final : public StreamObserver, public ExchangeSink {
 public:
  Session(SessionFactory& factory, ConnectionInfo& conn, CaptureHints& hints);
  ~Session() override;

  void onData(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns) override;
  void onGap(Side side, uint64_t length, uint64_t ts_ns) override;
  void onEnd(Side side, EndKind kind, uint64_t ts_ns) override;
  void onClose(const ConnectionInfo& conn) override;
  void onInterim(const ConnectionInfo& conn) override;
  void onCaptureWalk(Side side, CaptureWalk walk) override;

  AppProtocol protocol() const { return protocol_; }

  void onExchange(const HttpRecord& record) override;

 private:
  Role roleOf(Side side) const {
    return side == conn_->client_side ? Role::kClient : Role::kServer;
  }
  void detect(Side side, std::span<const uint8_t> chunk, uint64_t ts_ns);
  void detectMidstream(Side side, std::span<const uint8_t> chunk, uint64_t ts_ns);
  void decide(AppProtocol protocol, Side client, uint64_t ts_ns);
  void feed(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns);
  void requestSkip(Side side);
  void armFrameWalk(Side side);

  // The ProtocolInfo handed to the sink, put together when a record is written.
  ProtocolInfo protocolInfo(bool interim) const;

  SessionFactory* factory_;
  ConnectionInfo* conn_;
  CaptureHints* hints_;
  // What every connection's record needs. The rest of ProtocolInfo is kept
  // only where it applies (a Session lives as long as its connection): SNI
  // and ALPN in tls_, the HPACK facts in the HTTP/2 parser until the close.
  struct {
    const char* name = "unknown";  // ProtocolInfo::name
    uint64_t exchanges = 0;
  } proto_;
  std::unique_ptr<ClientHelloInfo> tls_;  // TLS connections only
  AppProtocol protocol_ = AppProtocol::kDetecting;
  std::unique_ptr<ProtocolParser> parser_;
  Http1Parser* http1_ = nullptr;  // parser_ when it is HTTP/1
  Http2Parser* http2_ = nullptr;  // parser_ when it is HTTP/2
  // What detection needs, from the first byte until the protocol is decided.
  struct Detection {
    // Bytes seen while detecting, per side, with the time of their first byte.
    std::string pending[2];
    uint64_t pending_ts[2]{};
    uint64_t scanned[2]{};  // bytes scanned per side while joined mid-way
  };
  Detection& detection();

  std::unique_ptr<Detection> detect_;  // only while detecting: see decide()
  uint64_t offset_[2]{};               // stream offset reached per side (bytes and gaps)
  uint64_t skip_end_[2]{};             // end of the last skip requested per side
  bool walk_armed_[2]{};               // the capture's frame walk was armed (HTTP/2)
  bool gap_before_detect_ = false;
};

}  // namespace l7tap
