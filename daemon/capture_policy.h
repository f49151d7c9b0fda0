// Replay's capture: what the kernel program does with each TCP segment (the
// payload window, capture control's skip ranges and count-only flows, the
// HTTP/2 frame walk), run by the kernel's own code (tc/capture_path.h) on
// per-flow state shaped like the kernel's maps. Replay uses it to report
// what a live node with the same settings would.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>

#include "reassembly/capture_control.h"
#include "reassembly/flow_table.h"
#include "reassembly/segment.h"
#include "tc/l7tap_abi.h"
#include "tc/packet.h"

namespace l7tap {

/// Payload bytes on the wire, copied and skipped, as the kernel counts them.
struct CopyCounters {
  uint64_t payload_bytes = 0;
  uint64_t copied_bytes = 0;
  uint64_t skipped_bytes = 0;
  uint64_t count_only_packets = 0;
  uint64_t walked_segments = 0;
  uint64_t walk_lost = 0;
  uint64_t flow_map_full = 0;  ///< flows not tracked: kMaxFlows reached
};

/// Where the capture's segments go (the pipeline, in replay).
class SegmentReceiver {
 public:
  virtual ~SegmentReceiver() = default;
  virtual void onSegment(const SegmentEvent& segment) = 0;
};

class CapturePolicy final : public CaptureControl, public ConnectionCloseHook {
 public:
  /// Flows tracked at most. The flow table's close hook drops a flow's
  /// state when it closes the connection, so the table's own bound
  /// (ReassemblyLimits::max_connections, 256 Ki by default) holds first;
  /// this one holds when nothing closes flows (a capture used alone).
  static constexpr size_t kMaxFlows = 1024 * 1024;

  /// `window`: bytes copied per segment (0: unlimited). `control`: capture
  /// control on (as the daemon's default): the capture arms the HTTP/2 frame
  /// walk on a first payload and follows what the flow table tells it. With
  /// control, set this as the flow table's capture control and close hook.
  CapturePolicy(uint32_t window, bool control);

  /// Sends `out` what the kernel program would send for `seg` (whose
  /// `payload` is every captured payload byte on entry): nothing for a
  /// count-only flow's packet without SYN, FIN or RST; one segment narrowed
  /// to the window and skip range; or, in a frame-walked HTTP/2 direction,
  /// one or more that cover the payload contiguously.
  void apply(const SegmentEvent& seg, SegmentReceiver& out);
  /// The same for a parsed packet of `frame` (PacketDecoder::parse()), as
  /// the kernel takes it: its payload at `pkt.payload_off`, its time in
  /// `pkt.ts_ns`.
  void capture(l7tap_packet& pkt, std::span<const uint8_t> frame, SegmentReceiver& out);
  /// The same, to `deliver(const SegmentEvent&)`.
  template <class Deliver>
  void apply(const SegmentEvent& seg, Deliver&& deliver) {
    struct Adapter final : SegmentReceiver {
      explicit Adapter(Deliver& d) : d_(d) {}
      void onSegment(const SegmentEvent& s) override { d_(s); }
      Deliver& d_;
    } adapter(deliver);
    apply(seg, static_cast<SegmentReceiver&>(adapter));
  }

  void skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) override;
  void countOnly(const CanonicalFlowKey& key) override;
  void walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) override;
  void forget(const CanonicalFlowKey& key) override;
  /// The connection is gone: its flow state goes (the kernel's flows entry
  /// the daemon sweeps). Reports no kernel counts: replay's records carry
  /// none.
  bool onClosing(const CanonicalFlowKey& key, uint32_t orig_dir,
                 ConnectionInfo::KernelCounts& kernel) override;

  const CopyCounters& counters() const { return s_.counters; }
  size_t trackedFlows() const { return s_.flows.size(); }

  /// The capture's state: what the kernel keeps in its maps, and the packet
  /// in progress. Public only for the environment functions of
  /// tc/capture_path.h (capture_policy.cc); nothing else touches it.
  struct State {
    // One flow's entries of the kernel's three maps: flows, capture_ctl
    // and frame_walk (one per direction).
    struct Flow {
      bool has_flow = false;
      bool has_ctl = false;
      bool has_walk[2]{};
      l7tap_flow_counters counters{};
      l7tap_capture_ctl ctl{};
      l7tap_frame_walk walk[2]{};
      // Which arming each direction's walk comes from (see WalkRun).
      uint32_t walk_epoch[2]{};
    };
    // One segment's walk runs on a copy of the direction's state:
    // delivering its parts reaches the session, which may forget the flow
    // (erasing the map node) or re-arm the walk before the loop ends. The
    // kernel's loop likewise keeps its own element while user space
    // replaces or deletes the map entry. The copy is written back only if
    // the direction was not forgotten or re-armed meanwhile, as the
    // kernel's writes would be lost.
    struct WalkRun {
      CanonicalFlowKey key{};
      int dir = 0;
      uint32_t epoch = 0;
      l7tap_frame_walk walk{};
    };
    // The flow's state, created when missing (nullptr when kMaxFlows
    // flows are tracked).
    Flow* state(const CanonicalFlowKey& key);
    Flow* find(const CanonicalFlowKey& key);

    l7tap_config cfg{};
    uint32_t last_epoch = 0;
    CopyCounters counters;
    std::unordered_map<CanonicalFlowKey, Flow, CanonicalFlowKeyHash> flows;
    // The packet being captured: its flow's state (valid until its first
    // segment is delivered), its frame and where its segments go.
    Flow* current = nullptr;
    CanonicalFlowKey current_key{};
    std::span<const uint8_t> frame;
    uint32_t ifindex = 0;
    SegmentReceiver* out = nullptr;
    WalkRun run;
  };

 private:
  uint32_t window_;
  State s_;
};

}  // namespace l7tap
