#include "daemon/capture_policy.h"

#include <algorithm>
#include <cstring>

#include "tc/capture_path.h"

// The environment of tc/capture_path.h: the kernel's maps, counters, event
// writer and byte loader, on CapturePolicy::State (the `ctx`).

using l7tap::CapturePolicy;

namespace {
CapturePolicy::State& env(void* ctx) { return *static_cast<CapturePolicy::State*>(ctx); }
}  // namespace

static __always_inline long l7tap_env_load(void* ctx, const int, __u32 off, void* to, __u32 len) {
  const std::span<const uint8_t> frame = env(ctx).frame;
  if (off > frame.size() || len > frame.size() - off) return -1;  // cut by the snap length
  std::memcpy(to, frame.data() + off, len);
  return 0;
}

static __always_inline void l7tap_env_count(void* ctx, __u32 idx, __u64 n) {
  l7tap::CopyCounters& c = env(ctx).counters;
  switch (idx) {
    case L7TAP_CNT_PAYLOAD_BYTES:
      c.payload_bytes += n;
      break;
    case L7TAP_CNT_SKIPPED_BYTES:
      c.skipped_bytes += n;
      break;
    case L7TAP_CNT_L4_ONLY:
      c.count_only_packets += n;
      break;
    case L7TAP_CNT_WALKED:
      c.walked_segments += n;
      break;
    case L7TAP_CNT_WALK_LOST:
      c.walk_lost += n;
      break;
    default:
      break;
  }
}

// Without control nothing reads the flow counters (they only arm the walk):
// replay keeps none then. Replay is one capture point: it reports every flow.
static __always_inline int l7tap_env_flow(void* ctx, const int, const struct l7tap_flow_key* ckey,
                                          struct l7tap_packet* pkt,
                                          struct l7tap_flow_counters** fcp) {
  CapturePolicy::State& s = env(ctx);
  *fcp = nullptr;
  s.current = nullptr;
  if (!s.cfg.frame_walk) return 0;
  CapturePolicy::State::Flow* f = s.state(*ckey);
  if (f == nullptr) return 0;
  s.current = f;
  s.current_key = *ckey;
  if (!f->has_flow || l7tap_flow_reopens(&f->counters, pkt->flags)) {
    f->has_flow = true;
    f->counters = {};
    f->counters.first_ns = pkt->ts_ns;
  }
  *fcp = &f->counters;
  return 0;
}

static __always_inline struct l7tap_capture_ctl* l7tap_env_ctl(void* ctx,
                                                               const struct l7tap_flow_key* ckey) {
  CapturePolicy::State& s = env(ctx);
  CapturePolicy::State::Flow* f =
      s.current != nullptr && s.current_key == *ckey ? s.current : s.find(*ckey);
  return f != nullptr && f->has_ctl ? &f->ctl : nullptr;
}

static __always_inline int l7tap_env_ctl_create(void* ctx, const struct l7tap_flow_key* ckey,
                                                const struct l7tap_capture_ctl* init) {
  CapturePolicy::State::Flow* f = env(ctx).state(*ckey);
  if (f == nullptr) return 1;
  if (!f->has_ctl) f->ctl = *init;
  f->has_ctl = true;
  return 0;
}

static __always_inline void l7tap_env_walk_set(void* ctx, const struct l7tap_frame_walk_key* wkey,
                                               const struct l7tap_frame_walk* w) {
  CapturePolicy::State& s = env(ctx);
  CapturePolicy::State::Flow* f = s.state(wkey->flow);
  if (f == nullptr) return;
  const uint32_t d = wkey->dir & 1;
  f->walk[d] = *w;
  f->has_walk[d] = true;
  f->walk_epoch[d] = ++s.last_epoch;
}

// Lends a copy (see State::WalkRun).
static __always_inline struct l7tap_frame_walk* l7tap_env_walk_get(
    void* ctx, const struct l7tap_frame_walk_key* wkey) {
  CapturePolicy::State& s = env(ctx);
  CapturePolicy::State::Flow* f = s.find(wkey->flow);
  const uint32_t d = wkey->dir & 1;
  if (f == nullptr || !f->has_walk[d]) return nullptr;
  s.run.key = wkey->flow;
  s.run.dir = static_cast<int>(d);
  s.run.epoch = f->walk_epoch[d];
  s.run.walk = f->walk[d];
  return &s.run.walk;
}

static __always_inline void l7tap_env_walk_put(void* ctx, const struct l7tap_frame_walk_key*,
                                               struct l7tap_frame_walk* w) {
  CapturePolicy::State& s = env(ctx);
  CapturePolicy::State::Flow* f = s.find(s.run.key);
  const int d = s.run.dir;
  if (f == nullptr || !f->has_walk[d] || f->walk_epoch[d] != s.run.epoch) return;
  f->walk[d] = *w;
}

// One walk at a time per thread, as the kernel's per-CPU element.
static __always_inline struct l7tap_walk_scratch* l7tap_env_walk_scratch(void*) {
  static thread_local l7tap_walk_scratch scratch;
  return &scratch;
}

static __always_inline void l7tap_env_emit(void* ctx, const int, const struct l7tap_packet* pkt,
                                           __u32) {
  CapturePolicy::State& s = env(ctx);
  // Any map value handed out before may go while the segment is delivered.
  s.current = nullptr;
  l7tap::SegmentEvent e;
  e.ts_ns = pkt->ts_ns;
  e.ifindex = s.ifindex;
  e.key = pkt->key;
  e.seq = pkt->seq;
  e.ack = pkt->ack;
  e.tcp_window = pkt->window;
  e.payload_len = pkt->payload_len;
  e.payload_offset = pkt->data_offset;
  e.tcp_flags = pkt->flags;
  e.capture_flags = pkt->capture_flags;
  e.tunnel = pkt->tunnel.type != L7TAP_TUNNEL_NONE ? &pkt->tunnel : nullptr;
  const size_t from = std::min<size_t>(pkt->payload_off + pkt->data_offset, s.frame.size());
  e.payload = s.frame.subspan(from, std::min<size_t>(pkt->captured_len, s.frame.size() - from));
  s.counters.copied_bytes += e.payload.size();
  s.out->onSegment(e);
}

static __always_inline void l7tap_env_walk_detect(void* ctx, const int kind,
                                                  const struct l7tap_packet* pkt,
                                                  struct l7tap_frame_walk_key* wkey, __u32 d) {
  l7tap_walk_detect_body(ctx, kind, pkt, wkey, d);
}

static __always_inline int l7tap_env_walk_step(void* ctx, const int kind,
                                               const struct l7tap_packet* pkt,
                                               struct l7tap_frame_walk* w,
                                               struct l7tap_walk_scratch* s) {
  return l7tap_walk_step_body(ctx, kind, pkt, w, s);
}

namespace l7tap {

CapturePolicy::CapturePolicy(uint32_t window, bool control) : window_(window) {
  s_.cfg.window = window;
  s_.cfg.frame_walk = control ? 1 : 0;
}

void CapturePolicy::apply(const SegmentEvent& seg, SegmentReceiver& out) {
  l7tap_packet pkt{};
  pkt.key = seg.key;
  pkt.payload_off = 0;  // the payload stands for the frame
  pkt.payload_len = seg.payload_len;
  pkt.seq = seg.seq;
  pkt.ack = seg.ack;
  pkt.window = seg.tcp_window;
  pkt.flags = seg.tcp_flags;
  pkt.ts_ns = seg.ts_ns;
  if (seg.tunnel != nullptr) pkt.tunnel = *seg.tunnel;
  s_.ifindex = seg.ifindex;
  capture(pkt, seg.payload, out);
  s_.ifindex = 0;
}

void CapturePolicy::capture(l7tap_packet& pkt, std::span<const uint8_t> frame,
                            SegmentReceiver& out) {
  s_.frame = frame;
  s_.out = &out;
  s_.current = nullptr;
  // Replay sees each packet once, as ingress of the one capture point.
  l7tap_capture(&s_, 0, L7TAP_DIR_INGRESS, &pkt, &s_.cfg, window_);
  s_.frame = {};
  s_.out = nullptr;
  s_.current = nullptr;
}

CapturePolicy::State::Flow* CapturePolicy::State::find(const CanonicalFlowKey& key) {
  if (flows.empty()) return nullptr;
  auto it = flows.find(key);
  return it == flows.end() ? nullptr : &it->second;
}

CapturePolicy::State::Flow* CapturePolicy::State::state(const CanonicalFlowKey& key) {
  if (Flow* f = find(key)) return f;
  if (flows.size() >= kMaxFlows) {
    counters.flow_map_full++;
    return nullptr;
  }
  return &flows[key];
}

void CapturePolicy::skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) {
  State::Flow* f = s_.state(key);
  if (f == nullptr) return;
  f->has_ctl = true;
  f->ctl.skip_start[dir & 1] = begin;
  f->ctl.skip_end[dir & 1] = end;
}

void CapturePolicy::countOnly(const CanonicalFlowKey& key) {
  State::Flow* f = s_.state(key);
  if (f == nullptr) return;
  f->has_ctl = true;
  f->ctl = {};
  f->ctl.l4_only = 1;
}

void CapturePolicy::walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) {
  State::Flow* f = s_.state(key);
  if (f == nullptr) return;
  f->has_ctl = true;
  f->ctl.frame_walk = 1;
  const uint32_t d = dir & 1;
  f->has_walk[d] = true;
  f->walk_epoch[d] = ++s_.last_epoch;
  f->walk[d] = {};
  f->walk[d].state = L7TAP_WALK_ARMED;
  f->walk[d].next_hdr = frame_seq;
}

void CapturePolicy::forget(const CanonicalFlowKey& key) {
  auto it = s_.flows.find(key);
  if (it == s_.flows.end()) return;
  State::Flow& f = it->second;
  if (!f.has_flow) {
    s_.flows.erase(it);
    return;
  }
  f.has_ctl = false;
  f.ctl = {};
  f.has_walk[0] = f.has_walk[1] = false;
}

bool CapturePolicy::onClosing(const CanonicalFlowKey& key, uint32_t,
                              ConnectionInfo::KernelCounts&) {
  s_.flows.erase(key);
  return false;
}

}  // namespace l7tap
