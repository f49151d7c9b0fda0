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
  uint64_t unanswered_evicted = 0;  ///< of which only one side had sent packets
  uint64_t connections_active = 0;
  uint64_t bytes_in_gaps = 0;
  uint64_t bytes_in_holes = 0;  ///< of bytes_in_gaps: ranges no segment covered
  // Summed over closed connections (DirectionStats of both sides).
  uint64_t out_of_order_overflows = 0;  ///< holes given up at the out-of-order bound
  uint64_t conflicting_overlap_bytes = 0;
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

/// Called just before a connection's record is written, so a live source can
/// add what only the kernel knows (ConnectionInfo::kernel).
class ConnectionCloseHook {
 public:
  virtual ~ConnectionCloseHook() = default;
  /// Fills `kernel` and returns true when the kernel's counters of the
  /// connection could be read.
  virtual bool onClosing(const ConnectionInfo& conn, const CanonicalFlowKey& key,
                         ConnectionInfo::KernelCounts& kernel) = 0;
};

/// Tells the capture (the kernel program, or replay's imitation of it) what
/// not to copy. Sequence numbers are 32-bit wire values; `from_low` says the
/// bytes flow from the canonical key's lower endpoint.
class FlowTable;

class CaptureControl {
 public:
  virtual ~CaptureControl() = default;
  /// The table it serves (set by FlowTable::setCaptureControl): a capture
  /// built in user space reads per-flow facts the kernel keeps in its own map.
  virtual void setFlows(const FlowTable* flows) { (void)flows; }
  /// Copy nothing of the sequence range [begin, end) in that direction.
  virtual void skip(const CanonicalFlowKey& key, bool from_low, uint32_t begin, uint32_t end) = 0;
  /// Copy no payload of this connection at all; keep counting it.
  virtual void countOnly(const CanonicalFlowKey& key) = 0;
  /// HTTP/2: an HTTP/2 frame header starts at `frame_seq` in that direction;
  /// follow the frame headers from there (tc/frame_walk.h). A capture that
  /// loses its place marks a segment with L7TAP_SEG_WALK_LOST.
  virtual void armFrameWalk(const CanonicalFlowKey& key, bool from_low, uint32_t frame_seq) = 0;
  /// The connection is gone: drop its entry.
  virtual void forget(const CanonicalFlowKey& key) = 0;
};

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
  void setCloseHook(ConnectionCloseHook* hook) { close_hook_ = hook; }
  void setCaptureControl(CaptureControl* control) {
    capture_control_ = control;
    if (control) control->setFlows(this);
  }
  /// Payload bytes seen so far from the source and from the destination of
  /// `key` (a packet's key); false if no connection of that key is open.
  bool payloadBytes(const l7tap_flow_key& key, uint64_t& from_source,
                    uint64_t& from_destination) const;

 private:
  struct Connection;
  Connection* findOrCreate(const SegmentEvent& segment, Side& side);
  Connection* create(const SegmentEvent& segment, const CanonicalFlowKey& key, Side& side);
  void close(Connection* conn, CloseReason reason, uint64_t ts_ns);
  void markClosing(Connection* conn, uint64_t ts_ns);
  void touch(Connection* conn);
  void unlinkLru(Connection* conn);
  void applyCaptureRequest(Connection* conn);

  StreamObserverFactory* factory_;
  ConnectionCloseHook* close_hook_ = nullptr;
  CaptureControl* capture_control_ = nullptr;
  ReassemblyLimits limits_;
  FlowTableStats stats_;
  uint64_t next_id_ = 1;
  // Connections live in the table's nodes (one allocation each); nodes never
  // move, so the lists below and the observers can point at them.
  std::unordered_map<CanonicalFlowKey, Connection, CanonicalFlowKeyHash> table_;
  // Intrusive lists: by last activity (oldest at head), [0] connections
  // only one side has sent packets on, [1] the others; and by close time.
  Connection* lru_head_[2] = {};
  Connection* lru_tail_[2] = {};
  Connection* closing_head_ = nullptr;
  Connection* closing_tail_ = nullptr;
};

}  // namespace l7tap
