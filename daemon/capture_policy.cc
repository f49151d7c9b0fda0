#include "daemon/capture_policy.h"

#include <algorithm>
#include <cstring>

#include "tc/window_policy.h"

namespace l7tap {

CapturePolicy::Shape CapturePolicy::shape(SegmentEvent& seg, WalkRun& run,
                                          l7tap_walk_cursor& cursor) {
  const std::span<const uint8_t> available = seg.payload;
  seg.payload_offset = 0;
  seg.capture_flags = 0;
  if (control_ && available.size() >= L7TAP_H2_FRAME_HEADER) detectFirstPayload(seg);
  if (control_ && !ctl_.empty()) {
    CanonicalFlowKey key;
    const int d = static_cast<int>(l7tap_canonical(&seg.key, &key));
    auto it = ctl_.find(key);
    if (it != ctl_.end()) {
      const l7tap_capture_ctl& c = it->second.ctl;
      if (c.l4_only) {
        counters_.count_only_packets++;
        seg.payload = {};
        const bool sent = seg.tcp_flags & (L7TAP_TCP_SYN | L7TAP_TCP_FIN | L7TAP_TCP_RST);
        return sent ? Shape::kPlain : Shape::kDrop;
      }
      counters_.payload_bytes += seg.payload_len;
      if (c.frame_walk) {
        l7tap_frame_walk& walk = it->second.walk[d];
        if (l7tap_walk_begin(&walk, seg.seq, seg.payload_len, window_, &cursor)) {
          if (!cursor.whole) counters_.walked_segments++;
          run.key = key;
          run.dir = d;
          run.epoch = it->second.walk_epoch[d];
          run.walk = walk;
          return Shape::kWalk;
        }
        if (cursor.lost) {
          counters_.walk_lost++;
          seg.capture_flags = L7TAP_SEG_WALK_LOST;
        }
      }
      if (seg.payload_len) {
        seg.payload_offset =
            l7tap_skip_len(seg.seq, seg.payload_len, c.skip_start[d], c.skip_end[d]);
        counters_.skipped_bytes += seg.payload_offset;
      }
      goto window;
    }
  }
  counters_.payload_bytes += seg.payload_len;
window:
  const uint32_t copy = l7tap_window_capture_len(seg.payload_len - seg.payload_offset, window_);
  const size_t from = std::min<size_t>(seg.payload_offset, available.size());
  seg.payload = available.subspan(from, std::min<size_t>(copy, available.size() - from));
  counters_.copied_bytes += seg.payload.size();
  return Shape::kPlain;
}

void CapturePolicy::detectFirstPayload(const SegmentEvent& seg) {
  // As the kernel: on the first payload of a direction (the flow table has
  // seen none yet), not for a count-only flow.
  uint64_t from_source = 0;
  uint64_t from_destination = 0;
  l7tap_frame_walk walk;
  const uint32_t n =
      seg.payload.size() >= L7TAP_H2_PREFACE_LEN ? L7TAP_H2_PREFACE_LEN : L7TAP_H2_FRAME_HEADER;
  if (seg.payload_len < n) return;
  if (!l7tap_walk_arm_first(seg.payload.data(), n, seg.seq, &walk)) return;
  if (flows_ != nullptr && flows_->payloadBytes(seg.key, from_source, from_destination) &&
      from_source != 0) {
    return;
  }
  CanonicalFlowKey key;
  const uint32_t d = l7tap_canonical(&seg.key, &key);
  FlowControl& f = ctl_[key];
  if (f.ctl.l4_only) return;
  f.ctl.frame_walk = 1;
  f.walk[d] = walk;
  f.walk_epoch[d] = ++last_epoch_;
}

void CapturePolicy::endWalk(const WalkRun& run) {
  auto it = ctl_.find(run.key);
  if (it == ctl_.end() || it->second.walk_epoch[run.dir] != run.epoch) return;
  it->second.walk[run.dir] = run.walk;
}

void CapturePolicy::walkSegment(const SegmentEvent& whole, std::span<const uint8_t> payload,
                                const l7tap_walk_cursor& cursor, SegmentEvent& out) {
  out = whole;
  out.seq = whole.seq + cursor.ev_off;
  out.payload_len = cursor.ev_skip + cursor.ev_copy + cursor.ev_rest;
  out.payload_offset = cursor.ev_skip;
  out.capture_flags = (cursor.whole ? 0 : L7TAP_SEG_WALKED) |
                      (cursor.ev_last && cursor.lost ? L7TAP_SEG_WALK_LOST : 0) |
                      (cursor.ev_off != 0 ? L7TAP_SEG_PART : 0);
  // Only the segment's last part ends anything; only its first starts it.
  if (!cursor.ev_last) out.tcp_flags &= ~(L7TAP_TCP_FIN | L7TAP_TCP_RST);
  if (cursor.ev_off != 0) out.tcp_flags &= ~L7TAP_TCP_SYN;
  const size_t from = std::min<size_t>(cursor.ev_off + cursor.ev_skip, payload.size());
  out.payload = payload.subspan(from, std::min<size_t>(cursor.ev_copy, payload.size() - from));
  counters_.copied_bytes += out.payload.size();
  counters_.skipped_bytes += cursor.ev_skip;
  if (cursor.ev_last && cursor.lost) counters_.walk_lost++;
}

void CapturePolicy::skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) {
  l7tap_capture_ctl& c = ctl_[key].ctl;
  c.skip_start[dir & 1] = begin;
  c.skip_end[dir & 1] = end;
}

void CapturePolicy::countOnly(const CanonicalFlowKey& key) { ctl_[key].ctl.l4_only = 1; }

void CapturePolicy::walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) {
  FlowControl& f = ctl_[key];
  f.ctl.frame_walk = 1;
  l7tap_frame_walk& w = f.walk[dir & 1];
  f.walk_epoch[dir & 1] = ++last_epoch_;
  w = {};
  w.state = L7TAP_WALK_ARMED;
  w.next_hdr = frame_seq;
}

void CapturePolicy::forget(const CanonicalFlowKey& key) { ctl_.erase(key); }

}  // namespace l7tap
