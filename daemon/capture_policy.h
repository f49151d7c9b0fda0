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

  void skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) override;
  void countOnly(const CanonicalFlowKey& key) override;
  void walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) override;
  void forget(const CanonicalFlowKey& key) override;
  void setFlows(const FlowTable* flows) override { flows_ = flows; }

  const CopyCounters& counters() const { return counters_; }

 private:
  struct FlowControl {
    l7tap_capture_ctl ctl{};
    l7tap_frame_walk walk[2]{};
    // Which arming each direction's walk comes from (see WalkRun).
    uint32_t walk_epoch[2]{};
  };
  // One segment's walk runs on a copy of the direction's state: delivering
  // its parts reaches the session, which may forget the flow (erasing the
  // map node) or re-arm the walk before the loop ends. The kernel's loop
  // likewise keeps its own element while user space replaces or deletes
  // the map entry. The copy is written back only if the direction was not
  // forgotten or re-armed meanwhile, as the kernel's writes would be lost.
  struct WalkRun {
    CanonicalFlowKey key;
    int dir = 0;
    uint32_t epoch = 0;
    l7tap_frame_walk walk{};
  };
  enum class Shape : uint8_t { kDrop, kPlain, kWalk };
  // The kernel's own arming on a first payload that starts HTTP/2
  // (tc/frame_walk.h: l7tap_walk_arm_first()).
  void detectFirstPayload(const SegmentEvent& seg);
  // Narrows `seg` for the plain window (and skip range), or starts the walk.
  Shape shape(SegmentEvent& seg, WalkRun& run, l7tap_walk_cursor& cursor);
  // Stores the walk's state after its segment, unless it is stale.
  void endWalk(const WalkRun& run);
  // The walk's event from the cursor, as a segment of `whole`.
  void walkSegment(const SegmentEvent& whole, std::span<const uint8_t> payload,
                   const l7tap_walk_cursor& cursor, SegmentEvent& out);

  uint32_t window_;
  bool control_;
  uint32_t last_epoch_ = 0;
  const FlowTable* flows_ = nullptr;
  CopyCounters counters_;
  std::unordered_map<CanonicalFlowKey, FlowControl, CanonicalFlowKeyHash> ctl_;
};

template <class Deliver>
void CapturePolicy::apply(SegmentEvent& seg, Deliver&& deliver) {
  WalkRun run;
  l7tap_walk_cursor cursor;
  const std::span<const uint8_t> payload = seg.payload;
  switch (shape(seg, run, cursor)) {
    case Shape::kDrop:
      return;
    case Shape::kPlain:
      deliver(seg);
      return;
    case Shape::kWalk:
      break;
  }
  // The kernel's loop (l7tap_walk() in tc/l7tap.bpf.c), step bound included.
  l7tap_frame_walk* walk = &run.walk;
  SegmentEvent part;
  for (int i = 0; i < L7TAP_WALK_MAX_STEPS; ++i) {
    const int step = l7tap_walk_next(walk, &cursor);
    if (step == L7TAP_WALK_DONE) return endWalk(run);
    if (step == L7TAP_WALK_HEADER) {
      if (cursor.off + cursor.hdr_need > payload.size()) break;  // cut short by the snap length
      l7tap_walk_header(walk, &cursor, payload.data() + cursor.off);
    } else if (step == L7TAP_WALK_EVENT) {
      walkSegment(seg, payload, cursor, part);
      deliver(part);
      if (cursor.done) return endWalk(run);
    }
  }
  l7tap_walk_abort(walk, &cursor);
  walkSegment(seg, payload, cursor, part);
  deliver(part);
  endWalk(run);
}

}  // namespace l7tap
