#include "daemon/kernel_hints.h"

#include <bpf/bpf.h>

#include "daemon/kernel_flows.h"

namespace l7tap {

void KernelCaptureHints::update(int fd, const void* key, const void* value) {
  if (bpf_map_update_elem(fd, key, value, BPF_ANY) != 0) failures_++;
}

void KernelCaptureHints::skip(const l7tap_flow_key& ckey, int dir, uint32_t begin, uint32_t end) {
  l7tap_capture_ctl ctl{};
  bpf_map_lookup_elem(capture_ctl_fd_, &ckey, &ctl);  // keep the other direction's range
  ctl.skip_start[dir] = begin;
  ctl.skip_end[dir] = end;
  update(capture_ctl_fd_, &ckey, &ctl);
}

void KernelCaptureHints::countOnly(const l7tap_flow_key& ckey) {
  l7tap_capture_ctl ctl{};
  ctl.l4_only = 1;
  update(capture_ctl_fd_, &ckey, &ctl);
}

void KernelCaptureHints::walkFrames(const l7tap_flow_key& ckey, int dir, uint32_t frame_seq) {
  // The direction's own entry: the kernel updates the other direction's
  // walk in place, so it is never written from here while it runs.
  l7tap_frame_walk_key wk{};
  wk.flow = ckey;
  wk.dir = static_cast<uint32_t>(dir);
  l7tap_frame_walk walk{};
  walk.state = L7TAP_WALK_ARMED;
  walk.next_hdr = frame_seq;
  const uint64_t before = failures_;
  update(frame_walk_fd_, &wk, &walk);
  if (failures_ != before) return;
  l7tap_capture_ctl ctl{};
  bpf_map_lookup_elem(capture_ctl_fd_, &ckey, &ctl);
  if (ctl.frame_walk) return;
  ctl.frame_walk = 1;
  update(capture_ctl_fd_, &ckey, &ctl);
}

void KernelCaptureHints::forget(const l7tap_flow_key& ckey) {
  bpf_map_delete_elem(capture_ctl_fd_, &ckey);
  l7tap_frame_walk_key wk{};
  wk.flow = ckey;
  for (wk.dir = 0; wk.dir < 2; ++wk.dir) bpf_map_delete_elem(frame_walk_fd_, &wk);
}

void KernelCaptureHints::skip(const CanonicalFlowKey& key, bool from_low, uint32_t begin,
                              uint32_t end) {
  skip(kernelKey(key), from_low ? 0 : 1, begin, end);
}

void KernelCaptureHints::countOnly(const CanonicalFlowKey& key) { countOnly(kernelKey(key)); }

void KernelCaptureHints::armFrameWalk(const CanonicalFlowKey& key, bool from_low,
                                      uint32_t frame_seq) {
  walkFrames(kernelKey(key), from_low ? 0 : 1, frame_seq);
}

void KernelCaptureHints::forget(const CanonicalFlowKey& key) { forget(kernelKey(key)); }

}  // namespace l7tap
