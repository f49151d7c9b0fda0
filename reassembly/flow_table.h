// Connection tracking: segments (and plaintext chunks) in, per-connection
// observers fed with reassembled streams, connections closed on FIN/RST,
// idleness, reuse or when the table is full. The observers' capture hints
// become sequence ranges for the capture here, at once.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>

#include "reassembly/capture_control.h"
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
  // Plaintext chunks (onPlaintext).
  uint64_t plaintext_chunks = 0;
  uint64_t plaintext_streams = 0;      ///< connections that received plaintext
  uint64_t plaintext_gap_bytes = 0;    ///< announced by the source as gaps
  uint64_t plaintext_late_chunks = 0;  ///< after their side's end: dropped
};

/// Called just before a connection's record is written, so a live source can
/// add what only the kernel knows (ConnectionInfo::kernel).
class ConnectionCloseHook {
 public:
  virtual ~ConnectionCloseHook() = default;
  /// Fills `kernel` (by Side) and returns true when the kernel's counters of
  /// the connection could be read. `orig_dir` is the kernel's direction
  /// index (tc/flow_key.h) of Side::kOrig.
  virtual bool onClosing(const CanonicalFlowKey& key, uint32_t orig_dir,
                         ConnectionInfo::KernelCounts& kernel) = 0;
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
  /// Feeds one ordered plaintext chunk of a connection (see PlaintextChunk). The connection
  /// record is the one of its 5-tuple, created if new (roles and `midstream` from the chunk);
  /// its plaintext goes to an observer of its own, the plaintext stream, made by the same
  /// factory, and never through the sequence-space reassembly. A connection seen both ways
  /// (encrypted: the segments carry ciphertext, which the segments' session counts only) has
  /// two observers on one ConnectionInfo: both see the same id, endpoints and L4 statistics,
  /// and both are closed with it, the segments' first, each writing what it writes at close
  /// (the sessions' records say which source they are of). A connection only chunks
  /// have created gets no segment observer until a segment comes, and closes when both its
  /// plaintext sides ended, or by idleness. The plaintext stream's capture hints go nowhere: a
  /// plaintext source cannot be told to skip.
  void onPlaintext(const PlaintextChunk& chunk);
  /// Expires by `now_ns` without a segment (live sources call it on a timer).
  void expire(uint64_t now_ns);
  /// Closes every connection, oldest first: end of input or shutdown.
  void closeAll(CloseReason reason);
  /// Reports the statistics so far of every open connection last reported
  /// (or opened) at least `interval_ns` before `now_ns`.
  void reportInterim(uint64_t now_ns, uint64_t interval_ns);

  const FlowTableStats& stats() const { return stats_; }
  void setCloseHook(ConnectionCloseHook* hook) { close_hook_ = hook; }
  void setCaptureControl(CaptureControl* control) { capture_control_ = control; }

 private:
  struct Connection;
  static StreamObserver& nullObserver();
  struct Rare;
  // How a new connection's roles were found (see create()).
  struct Opening {
    bool sender_is_orig = true;
    bool handshake = false;  // from a SYN or SYN-ACK
    bool midstream = false;
  };
  static Opening openingOf(const SegmentEvent& segment);
  Connection* findOrCreate(const SegmentEvent& segment, Side& side);
  Connection* create(uint32_t tag, const l7tap_flow_key& sender_key, uint32_t ifindex,
                     uint64_t ts_ns, const Opening& opening, Side& side,
                     const l7tap_tunnel* tunnel = nullptr);
  // The index: open addressing, linear probing, by a hash of the two
  // endpoints that does not depend on the direction (no canonical key is
  // built per packet, and none is stored: a connection's endpoints are its
  // key).
  static uint32_t tagOf(const l7tap_flow_key& key);
  static uint32_t tagOf(const Connection& conn);
  // The connection of a packet's key, and whether its sender is kOrig.
  Connection* find(const l7tap_flow_key& key, uint32_t tag, bool& from_orig) const;
  void insert(Connection* conn, uint32_t tag);
  void erase(const Connection* conn);
  void grow();
  void close(Connection* conn, CloseReason reason, uint64_t ts_ns);
  void markClosing(Connection* conn, uint64_t ts_ns);
  void touch(Connection* conn);
  void unlinkLru(Connection* conn);
  // The CaptureHints of a connection's segment observer (Connection).
  void hintSkip(Connection& conn, Side side, uint64_t offset, uint64_t length);
  void hintCountOnly(Connection& conn);
  void hintWalkFrames(Connection& conn, Side side, uint64_t offset);
  void applyPendingHints(Connection& conn);

  StreamObserverFactory* factory_;
  ConnectionCloseHook* close_hook_ = nullptr;
  CaptureControl* capture_control_ = nullptr;
  ReassemblyLimits limits_;
  FlowTableStats stats_;
  uint64_t next_id_ = 1;
  // Connections are allocated one by one and never move, so the lists
  // below, the closing queue and the observers can point at them; the
  // index's slots move (growth, deletion), the connections do not. Slot i
  // holds conns_[i] and its tag (the endpoints' hash with the top bit set;
  // 0: empty), so probing compares tags in one array and touches a
  // connection only when its tag matches. Deletion shifts the probe chain
  // back (no tombstones); the load stays at most 3/4, so the slot count
  // is bounded by max_connections.
  std::unique_ptr<uint32_t[]> tags_;
  std::unique_ptr<Connection*[]> conns_;
  uint32_t mask_ = 0;  // slot count - 1, when there are slots
  uint32_t size_ = 0;
  // Intrusive lists by last activity (oldest at head): [0] connections
  // only one side has sent packets on, [1] the others.
  Connection* lru_head_[2] = {};
  Connection* lru_tail_[2] = {};
  // Connections FIN/FIN or RST ended, in that order, each closed
  // close_delay_ns after. Here, not in every connection's node: few
  // connections are closing at once. An entry whose connection closed
  // sooner is emptied (Connection::closing_seq finds it).
  struct Closing {
    Connection* conn;  // null: closed already
    uint64_t since_ns;
  };
  std::deque<Closing> closing_;
  uint64_t closing_front_seq_ = 0;  // sequence number of closing_.front()
};

}  // namespace l7tap
