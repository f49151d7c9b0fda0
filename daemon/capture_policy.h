// What a capture copies of each segment: the payload window and capture
// control, as the kernel program applies them (tc/window_policy.h), for
// sources that build segments in user space. Replay uses it to report what a
// live node with the same settings would.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "reassembly/flow_table.h"
#include "tc/l7tap_abi.h"

namespace l7tap {

/// Payload bytes on the wire, copied and skipped, as the kernel counts them.
struct CopyCounters {
  uint64_t payload_bytes = 0;
  uint64_t copied_bytes = 0;
  uint64_t skipped_bytes = 0;
  uint64_t count_only_packets = 0;
};

class CapturePolicy final : public CaptureControl {
 public:
  /// `window`: bytes copied per segment (0: unlimited). `control`: honour
  /// capture control requests (as the kernel does when the daemon sends them).
  CapturePolicy(uint32_t window, bool control) : window_(window), control_(control) {}

  /// Narrows `seg.payload` (the whole captured payload on entry) to what the
  /// kernel program would copy, setting `payload_offset`. Returns false when
  /// the kernel would send no event at all (a count-only flow's packet that
  /// carries no SYN, FIN or RST).
  bool apply(SegmentEvent& seg);

  void skip(const CanonicalFlowKey& key, bool from_low, uint32_t begin, uint32_t end) override;
  void countOnly(const CanonicalFlowKey& key) override;
  void forget(const CanonicalFlowKey& key) override;

  const CopyCounters& counters() const { return counters_; }

 private:
  uint32_t window_;
  bool control_;
  CopyCounters counters_;
  std::unordered_map<CanonicalFlowKey, l7tap_capture_ctl, CanonicalFlowKeyHash> ctl_;
};

}  // namespace l7tap
