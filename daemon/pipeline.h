// Everything downstream of a source, owned by one thread: flow table,
// sessions (protocol detection and parsers) and the record sink.
#pragma once

#include "parsers/protocols/standard_protocols.h"
#include "parsers/session/session.h"
#include "reassembly/flow_table.h"

namespace l7tap {

struct PipelineConfig {
  ReassemblyLimits reassembly;
  SessionLimits session;
  Http1Limits http1;
  Http2Limits http2;
};

class Pipeline {
 public:
  Pipeline(RecordSink& sink, const PipelineConfig& config = {})
      : sessions_(sink, standardProtocols(config.http1, config.http2), config.session),
        flows_(sessions_, config.reassembly) {}

  void onSegment(const SegmentEvent& segment) { flows_.onSegment(segment); }
  /// Closes every connection, writing its open exchanges and its record.
  void finish() { flows_.closeAll(CloseReason::kEndOfInput); }
  /// Closes idle and finished connections by the source's clock (live sources
  /// call it on a timer; replay expires by packet time on its own).
  void expire(uint64_t now_ns) { flows_.expire(now_ns); }
  /// Interim connection records for long-lived connections.
  void reportInterim(uint64_t now_ns, uint64_t interval_ns) {
    flows_.reportInterim(now_ns, interval_ns);
  }

  const FlowTableStats& flowStats() const { return flows_.stats(); }
  void setCloseHook(ConnectionCloseHook* hook) { flows_.setCloseHook(hook); }
  void setCaptureControl(CaptureControl* control) { flows_.setCaptureControl(control); }
  const SessionStats& sessionStats() const { return sessions_.stats(); }

 private:
  SessionFactory sessions_;
  FlowTable flows_;
};

}  // namespace l7tap
