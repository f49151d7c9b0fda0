// The kernel program's per-flow L4 counters (the flows map), read when a
// connection's record is written (the close hook), and the sweep that
// removes the entries of ended and idle flows.
#pragma once

#include <cstdint>

#include "reassembly/flow_table.h"
#include "tc/l7tap_abi.h"

namespace l7tap {

/// Moves the kernel's counters (indexed by direction) into `kernel`
/// (indexed by Side); `orig_dir` is the direction index of Side::kOrig.
void kernelCountsBySide(const l7tap_flow_counters& counters, uint32_t orig_dir,
                        ConnectionInfo::KernelCounts& kernel);

class KernelFlows final : public ConnectionCloseHook {
 public:
  /// Ended flows stay this long in the map, so late ACKs and retransmitted
  /// FINs still find their counters; well past the reassembly's close delay.
  static constexpr uint64_t kEndedFlowGraceNs = 30ull * 1000 * 1000 * 1000;
  /// Entries looked at per sweep (bounds one sweep's time; the rest waits).
  static constexpr uint32_t kMaxSweepPerRound = 65536;

  /// Reads the flows map `flows_fd` (owned by the loaded program). Idle
  /// entries go after `idle_ns`: the reassembly's idle timeout.
  KernelFlows(int flows_fd, uint64_t idle_ns) : flows_fd_(flows_fd), idle_ns_(idle_ns) {}

  bool onClosing(const CanonicalFlowKey& key, uint32_t orig_dir,
                 ConnectionInfo::KernelCounts& kernel) override;
  /// Removes ended and idle entries, by the kernel's clock (CLOCK_MONOTONIC).
  void sweep(uint64_t now_mono_ns);

 private:
  int flows_fd_;
  uint64_t idle_ns_;
};

}  // namespace l7tap
