// What a capture copies of each segment: the payload window and capture
// control (skip ranges, count-only flows, the HTTP/2 frame walk), as the
// kernel program applies them (tc/window_policy.h, tc/frame_walk.h), for
// sources that build segments in user space. Replay uses it to report what a
// live node with the same settings would.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "reassembly/flow_table.h"
#include "tc/frame_walk.h"
#include "tc/l7tap_abi.h"

namespace l7tap {

/// Payload bytes on the wire, copied and skipped, as the kernel counts them.
struct CopyCounters {
  uint64_t payload_bytes = 0;
  uint64_t copied_bytes = 0;
  uint64_t skipped_bytes = 0;
  uint64_t count_only_packets = 0;
  uint64_t walked_segments = 0;
  uint64_t walk_lost = 0;
};

class CapturePolicy final : public CaptureControl {
 public:
  /// `window`: bytes copied per segment (0: unlimited). `control`: honour
  /// capture control requests (as the kernel does when the daemon sends them).
  CapturePolicy(uint32_t window, bool control) : window_(window), control_(control) {}

  /// Calls `deliver(SegmentEvent&)` with what the kernel program would send
  /// for `seg` (whose `payload` is the whole payload on entry): nothing for
  /// a count-only flow's packet without SYN, FIN or RST; one segment
  /// narrowed to the window and skip range; or, in a frame-walked HTTP/2
  /// direction, one or more that cover the payload contiguously.
  template <class Deliver>
  void apply(SegmentEvent& seg, Deliver&& deliver);

  void skip(const CanonicalFlowKey& key, bool from_low, uint32_t begin, uint32_t end) override;
  void countOnly(const CanonicalFlowKey& key) override;
  void armFrameWalk(const CanonicalFlowKey& key, bool from_low, uint32_t frame_seq) override;
  void forget(const CanonicalFlowKey& key) override;
  void setFlows(const FlowTable* flows) override { flows_ = flows; }

  const CopyCounters& counters() const { return counters_; }

 private:
  struct FlowControl {
    l7tap_capture_ctl ctl{};
    l7tap_frame_walk walk[2]{};
  };
  enum class Shape : uint8_t { kDrop, kPlain, kWalk };
  // The kernel's own arming on a first payload that starts HTTP/2
  // (tc/frame_walk.h: l7tap_walk_arm_first()).
  void detectFirstPayload(const SegmentEvent& seg);
  // Narrows `seg` for the plain window (and skip range), or starts the walk.
  Shape shape(SegmentEvent& seg, l7tap_frame_walk*& walk, l7tap_walk_cursor& cursor);
  // The walk's event from the cursor, as a segment of `whole`.
  void walkSegment(const SegmentEvent& whole, std::span<const uint8_t> payload,
                   const l7tap_walk_cursor& cursor, SegmentEvent& out);

  uint32_t window_;
  bool control_;
  const FlowTable* flows_ = nullptr;
  CopyCounters counters_;
  std::unordered_map<CanonicalFlowKey, FlowControl, CanonicalFlowKeyHash> ctl_;
};

template <class Deliver>
void CapturePolicy::apply(SegmentEvent& seg, Deliver&& deliver) {
  l7tap_frame_walk* walk = nullptr;
  l7tap_walk_cursor cursor;
  const std::span<const uint8_t> payload = seg.payload;
  switch (shape(seg, walk, cursor)) {
    case Shape::kDrop:
      return;
    case Shape::kPlain:
      deliver(seg);
      return;
    case Shape::kWalk:
      break;
  }
  // The kernel's loop (l7tap_walk() in tc/l7tap.bpf.c), step bound included.
  SegmentEvent part;
  for (int i = 0; i < L7TAP_WALK_MAX_STEPS; ++i) {
    const int step = l7tap_walk_next(walk, &cursor);
    if (step == L7TAP_WALK_DONE) return;
    if (step == L7TAP_WALK_HEADER) {
      if (cursor.off + cursor.hdr_need > payload.size()) break;  // cut short by the snap length
      l7tap_walk_header(walk, &cursor, payload.data() + cursor.off);
    } else if (step == L7TAP_WALK_EVENT) {
      walkSegment(seg, payload, cursor, part);
      deliver(part);
      if (cursor.done) return;
    }
  }
  l7tap_walk_abort(walk, &cursor);
  walkSegment(seg, payload, cursor, part);
  deliver(part);
}

}  // namespace l7tap
