// l7tap's own counters as metrics (l7tap_*): what the capture read and lost,
// what the pipeline tracked and wrote, what it costs. Set from the
// pipeline's existing counters by the thread that owns them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "metrics/registry.h"
#include "parsers/session/session.h"
#include "reassembly/flow_table.h"
#include "tc/l7tap_abi.h"

namespace l7tap::metrics {

/// One sink's outcome so far.
struct SinkCounts {
  std::string_view name;  ///< "json", "journald", "metrics"
  uint64_t records = 0;   ///< written (sent, counted)
  uint64_t errors = 0;    ///< records that could not be written
};

/// A snapshot of the counters the updater reads; null or empty parts are
/// left as they were (replay has no ring and no interfaces).
struct SelfStats {
  const FlowTableStats* flows = nullptr;
  const SessionStats* sessions = nullptr;
  /// The capture's counters by L7TAP_CNT_* (live: the kernel program's,
  /// summed over CPUs; replay: its imitation of payload, copy and skip).
  const uint64_t* capture = nullptr;
  /// Live: events read from the ring buffer; replay: TCP segments decoded.
  uint64_t events_read = 0;
  bool has_events_read = false;
  std::span<const SinkCounts> sinks;
  /// Live, with TLS uprobes on: their counters (uprobes/tls_capture.h); null otherwise.
  struct Tls {
    uint64_t events_read = 0;
    uint64_t lost_events = 0;  ///< the kernel's: its ring was full
    uint64_t files_attached = 0;
    uint64_t files_refused = 0;
  };
  const Tls* tls = nullptr;
  /// Live: interfaces attached now; -1 when there are none to attach (replay).
  int64_t attached_interfaces = -1;
};

/// The self-metrics of one registry. update() must run on the registry's
/// writer thread (the pipeline's): at each drain in attach, at the end in
/// replay. It also reads the registry's own truncation counts and the
/// process's resident memory (/proc/self/statm).
class SelfMetrics {
 public:
  explicit SelfMetrics(MetricsRegistry& registry);
  ~SelfMetrics();
  void update(const SelfStats& s);

 private:
  MetricsRegistry& registry_;
  Metric& events_read_;
  Metric& ringbuf_lost_;
  Metric& ringbuf_lost_bytes_;
  Metric& flow_map_full_;
  Metric& payload_;
  Metric& copied_;
  Metric& skipped_;
  Metric& gap_;
  Metric& sink_records_;
  Metric& sink_errors_;
  Metric& parser_events_;
  Metric& connections_;
  Metric& flows_tracked_;
  Metric& memory_;
  Metric& interfaces_;
  Metric& truncated_;
  // Registered on the first TLS counts: replay and attach without TLS
  // uprobes show none of them.
  struct TlsMetrics;
  std::unique_ptr<TlsMetrics> tls_;
};

/// Resident set size of this process in bytes (/proc/self/statm), 0 if unknown.
uint64_t residentBytes();

}  // namespace l7tap::metrics
