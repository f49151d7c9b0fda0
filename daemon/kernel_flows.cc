#include "daemon/kernel_flows.h"

#include <bpf/bpf.h>

#include <cstring>
#include <vector>

namespace l7tap {

l7tap_flow_key kernelKey(const CanonicalFlowKey& key) {
  l7tap_flow_key k{};
  std::memcpy(k.saddr, key.addr_lo, 16);
  std::memcpy(k.daddr, key.addr_hi, 16);
  k.sport = key.port_lo;
  k.dport = key.port_hi;
  k.family = key.family;
  return k;
}

int kernelDirOfOriginator(const ConnectionInfo& conn, const CanonicalFlowKey& key) {
  const bool orig_is_low =
      std::memcmp(conn.addr[0].data(), key.addr_lo, 16) == 0 && conn.port[0] == key.port_lo;
  return orig_is_low ? 0 : 1;
}

void kernelCountsBySide(const l7tap_flow_counters& c, int originator_dir,
                        ConnectionInfo::KernelCounts& kernel) {
  for (int side = 0; side < 2; ++side) {
    const int dir = side == 0 ? originator_dir : 1 - originator_dir;
    kernel.packets[side] = c.packets[dir];
    kernel.bytes[side] = c.bytes[dir];
    kernel.retransmits[side] = c.retransmits[dir];
    kernel.zero_windows[side] = c.zero_windows[dir];
  }
}

bool KernelFlows::onClosing(const ConnectionInfo& conn, const CanonicalFlowKey& key,
                            ConnectionInfo::KernelCounts& kernel) {
  const l7tap_flow_key k = kernelKey(key);
  l7tap_flow_counters c;
  if (bpf_map_lookup_elem(flows_fd_, &k, &c) != 0) return false;
  kernelCountsBySide(c, kernelDirOfOriginator(conn, key), kernel);
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
