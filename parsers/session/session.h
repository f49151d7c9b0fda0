// The per-connection analyser: detects the application protocol from the
// first bytes of each side through the protocol registry, routes bytes to
// that protocol's parser by role, tells the capture what it need not copy,
// and hands records to the sink with the connection they belong to. It names
// no protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/common/protocol.h"
#include "parsers/common/records.h"
#include "reassembly/capture_hints.h"
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

/// One registered protocol's connections and its parsers' counters, summed
/// over closed connections (ProtocolParser::visitCounters).
struct ProtocolTotals {
  struct Counter {
    std::string_view name;
    uint64_t value = 0;
    bool notable = false;  ///< named in the summary when not zero
  };
  std::string_view name;  ///< Protocol::name()
  uint64_t connections = 0;
  std::vector<Counter> counters;
  /// The counter called `name`, 0 when the parser has none by that name.
  uint64_t value(std::string_view name) const;
};

/// Counters over every session, for the summary.
struct SessionStats {
  std::vector<ProtocolTotals> protocols;  ///< in registry order
  uint64_t connections_other = 0;         ///< no registered protocol recognised
  uint64_t http_records = 0;              ///< exchange records (every protocol's)
  uint64_t conn_records = 0;
  /// The totals of the protocol called `name`, or null.
  const ProtocolTotals* find(std::string_view name) const;
};

class SessionFactory final : public StreamObserverFactory {
 public:
  SessionFactory(RecordSink& sink, ProtocolRegistry protocols, const SessionLimits& limits = {},
                 RedactionPolicy redaction = {});
  std::unique_ptr<StreamObserver> create(ConnectionInfo& conn, CaptureHints& hints) override;
  /// A session of plaintext from above TCP: its records say `l7tap.capture.source`
  /// `tls_uprobe` and carry what the segments' session knows of the connection's name (TLS's
  /// SNI and ALPN from the ClientHello on the wire).
  std::unique_ptr<StreamObserver> createPlaintext(
      ConnectionInfo& conn, CaptureHints& hints,
      const std::unique_ptr<StreamObserver>& packets) override;
  const SessionStats& stats() const { return stats_; }
  const ProtocolRegistry& protocols() const { return protocols_; }

 private:
  friend class Session;
  RecordSink* sink_;
  ProtocolRegistry protocols_;
  SessionLimits limits_;
  RedactionPolicy redaction_;  // given to every parser
  SessionStats stats_;
};

class Session final : public StreamObserver, public ExchangeSink {
 public:
  /// `packets`: null for a session of segments; for a plaintext session, where the
  /// connection keeps its segments' session.
  Session(SessionFactory& factory, ConnectionInfo& conn, CaptureHints& hints,
          const std::unique_ptr<StreamObserver>* packets = nullptr);
  ~Session() override;

  void onData(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns) override;
  void onGap(Side side, uint64_t length, uint64_t ts_ns) override;
  void onEnd(Side side, EndKind kind, uint64_t ts_ns) override;
  void onClose(const ConnectionInfo& conn) override;
  void onInterim(const ConnectionInfo& conn) override;
  void onCaptureWalk(Side side, CaptureWalk walk) override;

  void onExchange(const Record& record) override;

 private:
  enum class State : uint8_t { kDetecting, kParsing, kStopped, kUnknown };
  Role roleOf(Side side) const {
    return side == conn_->client_side ? Role::kClient : Role::kServer;
  }
  Side clientFor(Side sender_side, Sender sender) const;
  void detect(Side side, std::span<const uint8_t> chunk, uint64_t ts_ns);
  void detectMidstream(Side side, std::span<const uint8_t> chunk, uint64_t ts_ns);
  void decide(int protocol, Side client);
  void feed(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns);
  void switchProtocol(Side side, std::span<const uint8_t> rest, uint64_t ts_ns);
  void startParser(int protocol, std::unique_ptr<ProtocolParser> parser);
  void requestSkip(Side side);
  void armFrameWalk(Side side);

  ConnRecord connRecord(bool interim) const;
  // A session of segments whose connection also has a plaintext session
  // leaves the connection's record to that one (ConnectionInfo::has_plaintext).
  bool yieldsRecord() const { return !plaintext_ && conn_->has_plaintext; }
  // Every record this session hands out, with where its bytes came from.
  void emit(const Record& record);
  class SourcedRecord;
  // What names the connection on the wire, from the segments' session of a
  // plaintext one (null: none, or a session of segments).
  const ConnFacts* packetsIdentity() const;

  // Members are ordered to pack: one session per tracked connection.
  SessionFactory* factory_;
  ConnectionInfo* conn_;
  // A session of segments tells the capture what it need not copy; a
  // plaintext session has no capture to tell (a plaintext source cannot be
  // told to skip) and keeps instead where the connection keeps its segments'
  // session. plaintext_ says which.
  union {
    CaptureHints* hints_;
    const std::unique_ptr<StreamObserver>* packets_;
  };
  std::unique_ptr<ProtocolParser> parser_;
  // What detection needs, from the first byte until the protocol is decided.
  struct Detection {
    // Bytes seen while detecting, per side, with the time of their first byte.
    std::string pending[2];
    uint64_t pending_ts[2]{};
    uint64_t scanned[2]{};  // bytes scanned per side while joined mid-way
  };
  Detection& detection();

  std::unique_ptr<Detection> detect_;  // only while detecting: see decide()
  uint64_t exchanges_ = 0;
  uint64_t offset_[2]{};    // stream offset reached per side (bytes and gaps)
  uint64_t skip_end_[2]{};  // end of the last skip requested per side
  State state_ = State::kDetecting;
  bool walkable_ = false;  // parser_->framesWalkable()
  int16_t protocol_ = -1;  // index in the registry, -1 while detecting or unknown
  bool walk_armed_[2]{};   // the capture walks the side's frames
  bool gap_before_detect_ = false;
  bool plaintext_ = false;
};

}  // namespace l7tap
