#include "daemon/capture_policy.h"

#include <algorithm>
#include <cstring>

#include "tc/window_policy.h"

namespace l7tap {

bool CapturePolicy::apply(SegmentEvent& seg) {
  const std::span<const uint8_t> available = seg.payload;
  seg.payload_offset = 0;
  if (control_ && !ctl_.empty()) {
    const CanonicalFlowKey key = canonicalKey(seg.key);
    auto it = ctl_.find(key);
    if (it != ctl_.end()) {
      const l7tap_capture_ctl& c = it->second;
      if (c.l4_only) {
        counters_.count_only_packets++;
        seg.payload = {};
        return (seg.tcp_flags & (L7TAP_TCP_SYN | L7TAP_TCP_FIN | L7TAP_TCP_RST)) != 0;
      }
      const bool from_low =
          std::memcmp(seg.key.saddr, key.addr_lo, 16) == 0 && seg.key.sport == key.port_lo;
      const int d = from_low ? 0 : 1;
      if (seg.payload_len) {
        seg.payload_offset =
            l7tap_skip_len(seg.seq, seg.payload_len, c.skip_start[d], c.skip_end[d]);
        counters_.skipped_bytes += seg.payload_offset;
      }
    }
  }
  counters_.payload_bytes += seg.payload_len;
  const uint32_t copy = l7tap_window_capture_len(seg.payload_len - seg.payload_offset, window_);
  const size_t from = std::min<size_t>(seg.payload_offset, available.size());
  seg.payload = available.subspan(from, std::min<size_t>(copy, available.size() - from));
  counters_.copied_bytes += seg.payload.size();
  return true;
}

void CapturePolicy::skip(const CanonicalFlowKey& key, bool from_low, uint32_t begin, uint32_t end) {
  l7tap_capture_ctl& c = ctl_[key];
  c.skip_start[from_low ? 0 : 1] = begin;
  c.skip_end[from_low ? 0 : 1] = end;
}

void CapturePolicy::countOnly(const CanonicalFlowKey& key) { ctl_[key].l4_only = 1; }

void CapturePolicy::forget(const CanonicalFlowKey& key) { ctl_.erase(key); }

}  // namespace l7tap
