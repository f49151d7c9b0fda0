// Everything downstream of a source, owned by one thread: flow table,
// sessions (protocol detection and parsers) and the record sink.
#pragma once

#include "parsers/protocols/standard_protocols.h"
#include "parsers/session/session.h"
#include "reassembly/flow_table.h"
#include "tc/l7tap_abi.h"

namespace l7tap {

struct PipelineConfig {
  ReassemblyLimits reassembly;
  SessionLimits session;
  Http1Limits http1;
  Http2Limits http2;
  /// Default: query values and user info removed from every record.
  RedactionPolicy redaction;
};

/// The capture's own counters, indexed by L7TAP_CNT_* (tc/l7tap_abi.h): the
/// kernel program's, summed over CPUs, live; replay's imitation of the
/// payload, copy, skip and frame-walk ones in replay. Zero where the capture
/// does not count.
struct CaptureStats {
  bool available = false;  ///< a CaptureStatsSource filled it
  uint64_t value[L7TAP_CNT_MAX]{};
};

/// Whoever owns the capture (live: the map reader; replay: its capture)
/// fills its counters when a snapshot is asked for.
class CaptureStatsSource {
 public:
  virtual ~CaptureStatsSource() = default;
  virtual void readCaptureStats(CaptureStats& out) const = 0;
};

/// One snapshot of every counter of the pipeline, for a summary or a metrics
/// sink. The sessions' counters include the parsers' (parse errors, desyncs,
/// HPACK errors...), summed as each connection closes.
struct PipelineStats {
  FlowTableStats flows;
  SessionStats sessions;
  CaptureStats capture;
};

class Pipeline {
 public:
  Pipeline(RecordSink& sink, const PipelineConfig& config = {})
      : sessions_(sink, standardProtocols(config.http1, config.http2), config.session,
                  config.redaction),
        flows_(sessions_, config.reassembly) {}

  void onSegment(const SegmentEvent& segment) { flows_.onSegment(segment); }
  /// Ordered plaintext of a connection from a source above TCP (TLS
  /// uprobes): the same sessions, on the connection's record, without the
  /// sequence-space reassembly (FlowTable::onPlaintext).
  void onPlaintext(const PlaintextChunk& chunk) { flows_.onPlaintext(chunk); }
  /// Closes every connection, writing its open exchanges and its record.
  void finish() { flows_.closeAll(CloseReason::kEndOfInput); }
  /// Closes idle and finished connections by the source's clock (live sources
  /// call it on a timer; replay expires by packet time on its own).
  void expire(uint64_t now_ns) { flows_.expire(now_ns); }
  /// Interim connection records for long-lived connections.
  void reportInterim(uint64_t now_ns, uint64_t interval_ns) {
    flows_.reportInterim(now_ns, interval_ns);
  }

  /// Every counter now (see PipelineStats).
  PipelineStats stats() const {
    PipelineStats s{flows_.stats(), sessions_.stats(), {}};
    if (capture_stats_ != nullptr) {
      capture_stats_->readCaptureStats(s.capture);
      s.capture.available = true;
    }
    return s;
  }
  const FlowTableStats& flowStats() const { return flows_.stats(); }
  const SessionStats& sessionStats() const { return sessions_.stats(); }
  void setCloseHook(ConnectionCloseHook* hook) { flows_.setCloseHook(hook); }
  void setCaptureControl(CaptureControl* control) { flows_.setCaptureControl(control); }
  void setCaptureStatsSource(const CaptureStatsSource* source) { capture_stats_ = source; }

 private:
  SessionFactory sessions_;
  FlowTable flows_;
  const CaptureStatsSource* capture_stats_ = nullptr;
};

}  // namespace l7tap
