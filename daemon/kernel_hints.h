// The hints writer: capture control written into the kernel program's
// capture_ctl and frame_walk maps, by canonical flow key and direction index
// (0: from the canonical key's lower endpoint, as the kernel indexes).
#pragma once

#include <cstdint>

#include "reassembly/capture_control.h"
#include "tc/l7tap_abi.h"

namespace l7tap {

class KernelCaptureHints final : public CaptureControl {
 public:
  /// Writes into the maps `capture_ctl_fd` and `frame_walk_fd` (owned by
  /// the loaded program; they must outlive this writer).
  KernelCaptureHints(int capture_ctl_fd, int frame_walk_fd)
      : capture_ctl_fd_(capture_ctl_fd), frame_walk_fd_(frame_walk_fd) {}

  void skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) override;
  void countOnly(const CanonicalFlowKey& key) override;
  void walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) override;
  void forget(const CanonicalFlowKey& key) override;

  /// Map updates that failed (a map full): the kernel copied what it would
  /// have skipped, which costs only bytes. Counted for the summary.
  uint64_t failures() const { return failures_; }

 private:
  void update(int fd, const void* key, const void* value);

  int capture_ctl_fd_;
  int frame_walk_fd_;
  uint64_t failures_ = 0;
};

}  // namespace l7tap
