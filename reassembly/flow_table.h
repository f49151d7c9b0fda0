// Connection tracking: segments in, per-connection observers fed with
// reassembled streams, connections closed on FIN/RST, idleness, reuse or
// when the table is full.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "reassembly/connection_stats.h"
#include "reassembly/limits.h"
#include "reassembly/segment.h"
#include "reassembly/stream_observer.h"
#include "reassembly/stream_reassembler.h"

namespace l7tap {

/// Counters of the table as a whole, for the summary and metrics.
struct FlowTableStats {
  uint64_t segments = 0;
  uint64_t connections_opened = 0;
  uint64_t connections_closed = 0;
  uint64_t connections_evicted = 0;
  uint64_t connections_active = 0;
  uint64_t bytes_in_gaps = 0;
};

/// Both directions of a 5-tuple map to one key: the endpoint that compares
/// lower comes first.
struct CanonicalFlowKey {
  uint8_t addr_lo[16];
  uint8_t addr_hi[16];
  uint16_t port_lo;
  uint16_t port_hi;
  uint8_t family;
  bool operator==(const CanonicalFlowKey&) const = default;
};
struct CanonicalFlowKeyHash {
  size_t operator()(const CanonicalFlowKey& k) const noexcept;
};
CanonicalFlowKey canonicalKey(const l7tap_flow_key& key);

class FlowTable {
 public:
  FlowTable(StreamObserverFactory& factory, const ReassemblyLimits& limits = {});
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  /// Feeds one segment. Also expires idle and closed connections by the
  /// segment's timestamp (the source's clock drives time, so replay is
  /// deterministic).
  void onSegment(const SegmentEvent& segment);
  /// Expires by `now_ns` without a segment (live sources call it on a timer).
  void expire(uint64_t now_ns);
  /// Closes every connection, oldest first: end of input or shutdown.
  void closeAll(CloseReason reason);
  /// Reports the statistics so far of every open connection last reported
  /// (or opened) at least `interval_ns` before `now_ns`.
  void reportInterim(uint64_t now_ns, uint64_t interval_ns);

  const FlowTableStats& stats() const { return stats_; }

 private:
  struct Connection;
  Connection* findOrCreate(const SegmentEvent& segment, Side& side);
  Connection* create(const SegmentEvent& segment, const CanonicalFlowKey& key, Side& side);
  void close(Connection* conn, CloseReason reason, uint64_t ts_ns);
  void markClosing(Connection* conn, uint64_t ts_ns);
  void touch(Connection* conn);

  StreamObserverFactory* factory_;
  ReassemblyLimits limits_;
  FlowTableStats stats_;
  uint64_t next_id_ = 1;
  std::unordered_map<CanonicalFlowKey, std::unique_ptr<Connection>, CanonicalFlowKeyHash> table_;
  // Intrusive lists: by last activity (oldest at head) and by close time.
  Connection* lru_head_ = nullptr;
  Connection* lru_tail_ = nullptr;
  Connection* closing_head_ = nullptr;
  Connection* closing_tail_ = nullptr;
};

}  // namespace l7tap
