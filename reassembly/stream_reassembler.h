// One direction of a TCP connection: sequence space to in-order bytes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "reassembly/connection_stats.h"
#include "reassembly/limits.h"
#include "reassembly/stream_observer.h"

namespace l7tap {

/// Turns one direction's segments into in-order bytes, gaps and an end, pushed
/// to a StreamObserver.
///
/// Sequence numbers are unwrapped to 64 bits on entry and never leave this
/// class. Every segment covers [seq, seq + payload_len) of which the first
/// `captured` bytes are known; the rest (window truncation) is a gap.
///
/// Overlaps are resolved the way the Linux receiver resolves them, because
/// the pods l7tap watches run Linux: the record shows what the server's
/// application read, not what a different stack would have. From
/// net/ipv4/tcp_input.c (tcp_data_queue, tcp_data_queue_ofo, tcp_ofo_queue):
///  - bytes already delivered in order are never replaced (a retransmission
///    is trimmed at its front: tcp_recvmsg skips what was copied);
///  - an in-order segment is delivered whole, and buffered segments are then
///    trimmed at their front, or dropped when it covers them (tcp_ofo_queue);
///  - out of order, a new segment wholly inside a buffered one is dropped
///    ("All the bits are present"), an exact duplicate too; one that starts
///    where a buffered one starts and reaches further replaces it
///    (rb_replace_node); buffered
///    segments it covers from their start to their end are removed
///    (merge_right); partial overlaps keep both, and on delivery the segment
///    earlier in sequence wins (the later one is trimmed at its front).
/// The kernel checks a new out-of-order segment against the queued ones on
/// its rb-tree search path; since queued segments never nest (the rules
/// above keep it so), the one that starts at or before it is the only one
/// that can contain or be replaced by it, which is what is checked here. Not
/// modelled: the kernel may also append a segment to the queued one it
/// directly follows (tcp_try_coalesce, depending on buffer memory), after
/// which a later segment starting at the seam no longer replaces it; and the
/// receive window (bytes beyond it are dropped by the kernel).
///
/// Where two copies of the same bytes differ (only bytes both still in
/// memory can be compared; delivered bytes are not kept), the difference is
/// counted in `conflicting_overlap_bytes` whichever copy wins. The count is
/// added right after the bytes (or gap) that take the stream past the first
/// differing byte were handed on, so that the exchange those bytes belong
/// to, which has begun by then (the session may hold a stream's first bytes
/// until it knows the protocol), sees it and is flagged ambiguous
/// (HttpRecord::endL4). An exchange whose last byte comes in that same
/// delivery was handed out already and is not flagged, nor is the first
/// exchange of a connection when the conflict lies in bytes the session held
/// before it knew the protocol (a first request line that came in pieces:
/// its parser starts counting after); the connection record counts them all.
///
/// A hole becomes a gap when the peer acknowledges data past it (the capture
/// missed bytes the receiver got), when the out-of-order buffer would exceed
/// its bound, or when the stream is flushed (close, RST, end of input).
class StreamReassembler {
 public:
  /// What every call that may deliver needs besides the stream's own state:
  /// passed in, not kept, as the table has one of each (limits) or keeps
  /// them next to the reassembler (stats), and two reassemblers live in
  /// every tracked connection.
  struct Context {
    const ReassemblyLimits& limits;
    DirectionStats& stats;  ///< this direction's
    StreamObserver& out;
  };

  explicit StreamReassembler(Side side) : side_(side) {}

  bool started() const { return started_; }
  bool ended() const { return ended_; }
  bool finSeen() const { return fin_seen_; }
  /// Sequence number (low 32 bits) of stream offset `offset`: offset 0 is
  /// the first byte after the SYN, or the first byte seen mid-stream.
  uint32_t seqAtOffset(uint64_t offset) const {
    return static_cast<uint32_t>(stream_start_ + offset);
  }
  /// Bytes waiting in the out-of-order buffer.
  uint64_t bufferedBytes() const { return out_of_order_ ? out_of_order_->bytes : 0; }

  /// A SYN from this side: the stream starts at isn + 1.
  void onSyn(uint32_t isn);
  /// A segment from this side. `fin` marks a FIN at seq + payload_len.
  void onSegment(uint32_t seq, uint32_t payload_len, std::span<const uint8_t> captured, bool fin,
                 uint64_t ts_ns, const Context& cx);
  /// The peer acknowledged everything before `ack`: holes below it are gaps.
  void onPeerAck(uint32_t ack, uint64_t ts_ns, const Context& cx);
  /// Deliver whatever is buffered, holes as gaps, and the FIN if it was seen.
  void flush(uint64_t ts_ns, const Context& cx);
  /// End the stream now (RST), after flushing what is buffered.
  void reset(uint64_t ts_ns, const Context& cx);

 private:
  struct Pending {
    uint32_t payload_len;           // wire length from the key (start) on
    std::vector<uint8_t> captured;  // known prefix
    uint64_t ts_ns;
  };
  // The buffered segments by start, and their captured bytes (at most
  // max_out_of_order_bytes): kept here, not in every reassembler.
  struct OutOfOrder : std::map<uint64_t, Pending> {
    uint32_t bytes = 0;
    // Differing bytes found but not counted yet: they are counted when the
    // stream reaches conflict_from (the lowest of them).
    uint32_t conflicts = 0;
    uint64_t conflict_from = 0;
  };

  bool hasBuffered() const { return out_of_order_ != nullptr && !out_of_order_->empty(); }
  // Start of the first buffered segment; only when hasBuffered().
  uint64_t firstBuffered() const { return out_of_order_->begin()->first; }

  uint64_t unwrap(uint32_t seq) const {
    return next_ + static_cast<int64_t>(static_cast<int32_t>(seq - static_cast<uint32_t>(next_)));
  }
  void start(uint64_t first_seq);
  // Delivers an in-order range (start <= next_) whole, advancing next_. The
  // caller compares a new segment with the buffered ones first (a buffered
  // one being delivered was compared when it came).
  void deliver(uint64_t start, uint32_t payload_len, std::span<const uint8_t> captured,
               uint64_t ts_ns, const Context& cx);
  void buffer(uint64_t start, uint32_t payload_len, std::span<const uint8_t> captured,
              uint64_t ts_ns, const Context& cx);
  // Notes the bytes where `captured` differs from buffered copies.
  void compareWithBuffered(uint64_t start, std::span<const uint8_t> captured);
  // Linux's out-of-order queue rules (see the class comment).
  void insertOutOfOrder(uint64_t start, uint32_t payload_len, std::span<const uint8_t> captured,
                        uint64_t ts_ns);
  // Counts the pending conflicts once the stream has passed conflict_from.
  void countReachedConflicts(const Context& cx);
  // now_ns: the time of the packet being handled, when buffered bytes become
  // deliverable.
  void drain(uint64_t now_ns, const Context& cx);
  void deliverFirstBuffered(uint64_t now_ns, const Context& cx);
  // A gap up to `target`: the uncopied rest of a seen segment, or a hole
  // (a range no segment covered) unless `seen` says otherwise.
  void gapTo(uint64_t target, uint64_t ts_ns, const Context& cx, bool seen = false);
  void maybeEnd(uint64_t ts_ns, const Context& cx);

  Side side_;
  bool started_ = false;
  bool ended_ = false;
  bool fin_seen_ = false;
  // Sequence number of stream offset 0 (only the low 32 bits ever matter).
  uint32_t stream_start_ = 0;
  uint64_t next_ = 0;     // next expected byte, unwrapped
  uint64_t fin_seq_ = 0;  // sequence number of the FIN, unwrapped
  // Allocated when a segment arrives out of order, freed when it drains:
  // most directions never need one.
  std::unique_ptr<OutOfOrder> out_of_order_;
};

}  // namespace l7tap
