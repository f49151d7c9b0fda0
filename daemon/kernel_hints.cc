#include "daemon/kernel_hints.h"

#include <bpf/bpf.h>

namespace l7tap {

void KernelCaptureHints::update(int fd, const void* key, const void* value) {
  if (bpf_map_update_elem(fd, key, value, BPF_ANY) != 0) failures_++;
}

void KernelCaptureHints::skip(const CanonicalFlowKey& ckey, uint32_t dir, uint32_t begin,
                              uint32_t end) {
  l7tap_capture_ctl ctl{};
  bpf_map_lookup_elem(capture_ctl_fd_, &ckey, &ctl);  // keep the other direction's range
  ctl.skip_start[dir & 1] = begin;
  ctl.skip_end[dir & 1] = end;
  update(capture_ctl_fd_, &ckey, &ctl);
}

void KernelCaptureHints::countOnly(const CanonicalFlowKey& ckey) {
  l7tap_capture_ctl ctl{};
  ctl.l4_only = 1;
  update(capture_ctl_fd_, &ckey, &ctl);
}

void KernelCaptureHints::walkFrames(const CanonicalFlowKey& ckey, uint32_t dir,
                                    uint32_t frame_seq) {
  // The direction's own entry: the kernel updates the other direction's
  // walk in place, so it is never written from here while it runs.
  l7tap_frame_walk_key wk{};
  wk.flow = ckey;
  wk.dir = dir & 1;
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

void KernelCaptureHints::forget(const CanonicalFlowKey& ckey) {
  bpf_map_delete_elem(capture_ctl_fd_, &ckey);
  l7tap_frame_walk_key wk{};
  wk.flow = ckey;
  for (wk.dir = 0; wk.dir < 2; ++wk.dir) bpf_map_delete_elem(frame_walk_fd_, &wk);
}

}  // namespace l7tap
