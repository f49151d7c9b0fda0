#include "daemon/kernel_flows.h"

#include <bpf/bpf.h>

#include <vector>

namespace l7tap {

void kernelCountsBySide(const l7tap_flow_counters& c, uint32_t orig_dir,
                        ConnectionInfo::KernelCounts& kernel) {
  for (uint32_t side = 0; side < 2; ++side) {
    const uint32_t dir = (orig_dir ^ side) & 1;
    kernel.packets[side] = c.packets[dir];
    kernel.bytes[side] = c.bytes[dir];
    kernel.retransmits[side] = c.retransmits[dir];
    kernel.zero_windows[side] = c.zero_windows[dir];
  }
}

bool KernelFlows::onClosing(const CanonicalFlowKey& key, uint32_t orig_dir,
                            ConnectionInfo::KernelCounts& kernel) {
  l7tap_flow_counters c;
  if (bpf_map_lookup_elem(flows_fd_, &key, &c) != 0) return false;
  kernelCountsBySide(c, orig_dir, kernel);
  return true;
}

void KernelFlows::sweep(uint64_t now_mono_ns) {
  l7tap_flow_key key, next;
  l7tap_flow_counters value;
  std::vector<l7tap_flow_key> stale;
  bool first = true;
  for (uint32_t n = 0; n < kMaxSweepPerRound; ++n) {
    if (bpf_map_get_next_key(flows_fd_, first ? nullptr : &key, &next) != 0) break;
    first = false;
    key = next;
    if (bpf_map_lookup_elem(flows_fd_, &key, &value) != 0) continue;
    const uint64_t age = now_mono_ns > value.last_ns ? now_mono_ns - value.last_ns : 0;
    if ((value.ended && age > kEndedFlowGraceNs) || age > idle_ns_) stale.push_back(key);
  }
  for (const auto& k : stale) bpf_map_delete_elem(flows_fd_, &k);
}

}  // namespace l7tap
