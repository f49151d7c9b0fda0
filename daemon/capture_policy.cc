#include "daemon/capture_policy.h"

#include <algorithm>
#include <cstring>

#include "tc/capture_path.h"

namespace l7tap {

// The environment of tc/capture_path.h: the kernel's maps, counters and
// event writer, on CapturePolicy's state. The packet's payload stands for
// the frame (payload_off 0).
struct CaptureEnv {
  static CapturePolicy& self(void* ctx) { return *static_cast<CapturePolicy*>(ctx); }

  static long load(void* ctx, __u32 off, void* to, __u32 len) {
    const std::span<const uint8_t> p = self(ctx).frame_;
    if (off > p.size() || len > p.size() - off) return -1;  // cut by the snap length
    std::memcpy(to, p.data() + off, len);
    return 0;
  }

  static void count(void* ctx, __u32 idx, __u64 n) {
    CopyCounters& c = self(ctx).counters_;
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

  // Without control nothing reads the flow counters (they only arm the
  // walk): replay keeps none then. Replay is one capture point: it reports
  // every flow.
  static void flow(void* ctx, const l7tap_flow_key* ckey, const l7tap_packet* pkt,
                   l7tap_flow_counters** fcp) {
    CapturePolicy& p = self(ctx);
    *fcp = nullptr;
    p.current_ = nullptr;
    if (!p.cfg_.frame_walk) return;
    CapturePolicy::FlowState* s = p.state(*ckey);
    if (s == nullptr) return;
    p.current_ = s;
    p.current_key_ = *ckey;
    if (!s->has_flow || l7tap_flow_reopens(&s->flow, pkt->flags)) {
      s->has_flow = true;
      s->flow = {};
      s->flow.first_ns = pkt->ts_ns;
    }
    *fcp = &s->flow;
  }

  static l7tap_capture_ctl* ctl(void* ctx, const l7tap_flow_key* ckey) {
    CapturePolicy& p = self(ctx);
    CapturePolicy::FlowState* s =
        p.current_ != nullptr && p.current_key_ == *ckey ? p.current_ : p.find(*ckey);
    return s != nullptr && s->has_ctl ? &s->ctl : nullptr;
  }

  static int ctlCreate(void* ctx, const l7tap_flow_key* ckey, const l7tap_capture_ctl* init) {
    CapturePolicy::FlowState* s = self(ctx).state(*ckey);
    if (s == nullptr) return 1;
    if (!s->has_ctl) s->ctl = *init;
    s->has_ctl = true;
    return 0;
  }

  static void walkSet(void* ctx, const l7tap_frame_walk_key* wkey, const l7tap_frame_walk* w) {
    CapturePolicy& p = self(ctx);
    CapturePolicy::FlowState* s = p.state(wkey->flow);
    if (s == nullptr) return;
    const uint32_t d = wkey->dir & 1;
    s->walk[d] = *w;
    s->has_walk[d] = true;
    s->walk_epoch[d] = ++p.last_epoch_;
  }

  static l7tap_frame_walk* walkGet(void* ctx, const l7tap_frame_walk_key* wkey) {
    CapturePolicy& p = self(ctx);
    CapturePolicy::FlowState* s = p.find(wkey->flow);
    const uint32_t d = wkey->dir & 1;
    if (s == nullptr || !s->has_walk[d]) return nullptr;
    p.run_.key = wkey->flow;
    p.run_.dir = static_cast<int>(d);
    p.run_.epoch = s->walk_epoch[d];
    p.run_.walk = s->walk[d];
    return &p.run_.walk;
  }

  static void walkPut(void* ctx, const l7tap_frame_walk* w) {
    CapturePolicy& p = self(ctx);
    CapturePolicy::FlowState* s = p.find(p.run_.key);
    const int d = p.run_.dir;
    if (s == nullptr || !s->has_walk[d] || s->walk_epoch[d] != p.run_.epoch) return;
    s->walk[d] = *w;
  }

  static void emit(void* ctx, const l7tap_packet* pkt) {
    CapturePolicy& p = self(ctx);
    // Any map value handed out before may go while the segment is delivered.
    p.current_ = nullptr;
    SegmentEvent e;
    e.ts_ns = pkt->ts_ns;
    e.ifindex = p.ifindex_;
    e.key = pkt->key;
    e.seq = pkt->seq;
    e.ack = pkt->ack;
    e.tcp_window = pkt->window;
    e.payload_len = pkt->payload_len;
    e.payload_offset = pkt->data_offset;
    e.tcp_flags = pkt->flags;
    e.capture_flags = pkt->capture_flags;
    const std::span<const uint8_t> frame = p.frame_;
    const size_t from = std::min<size_t>(pkt->payload_off + pkt->data_offset, frame.size());
    e.payload = frame.subspan(from, std::min<size_t>(pkt->captured_len, frame.size() - from));
    p.counters_.copied_bytes += e.payload.size();
    p.out_->onSegment(e);
  }
};

}  // namespace l7tap

using l7tap::CaptureEnv;

static __always_inline long l7tap_env_load(void* ctx, const int, __u32 off, void* to, __u32 len) {
  return CaptureEnv::load(ctx, off, to, len);
}
static __always_inline void l7tap_env_count(void* ctx, __u32 idx, __u64 n) {
  CaptureEnv::count(ctx, idx, n);
}
static __always_inline int l7tap_env_flow(void* ctx, const int, const struct l7tap_flow_key* ckey,
                                          const struct l7tap_packet* pkt,
                                          struct l7tap_flow_counters** fcp) {
  CaptureEnv::flow(ctx, ckey, pkt, fcp);
  return 0;
}
static __always_inline struct l7tap_capture_ctl* l7tap_env_ctl(void* ctx,
                                                               const struct l7tap_flow_key* ckey) {
  return CaptureEnv::ctl(ctx, ckey);
}
static __always_inline int l7tap_env_ctl_create(void* ctx, const struct l7tap_flow_key* ckey,
                                                const struct l7tap_capture_ctl* init) {
  return CaptureEnv::ctlCreate(ctx, ckey, init);
}
static __always_inline void l7tap_env_walk_set(void* ctx, const struct l7tap_frame_walk_key* wkey,
                                               const struct l7tap_frame_walk* w) {
  CaptureEnv::walkSet(ctx, wkey, w);
}
static __always_inline struct l7tap_frame_walk* l7tap_env_walk_get(
    void* ctx, const struct l7tap_frame_walk_key* wkey) {
  return CaptureEnv::walkGet(ctx, wkey);
}
static __always_inline void l7tap_env_walk_put(void* ctx, const struct l7tap_frame_walk_key*,
                                               struct l7tap_frame_walk* w) {
  CaptureEnv::walkPut(ctx, w);
}
static __always_inline void l7tap_env_emit(void* ctx, const int, const struct l7tap_packet* pkt,
                                           __u32) {
  CaptureEnv::emit(ctx, pkt);
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
  cfg_.window = window;
  cfg_.frame_walk = control ? 1 : 0;
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
  ifindex_ = seg.ifindex;
  capture(pkt, seg.payload, out);
  ifindex_ = 0;
}

void CapturePolicy::capture(l7tap_packet& pkt, std::span<const uint8_t> frame,
                            SegmentReceiver& out) {
  frame_ = frame;
  out_ = &out;
  current_ = nullptr;
  // Replay sees each packet once, as ingress of the one capture point.
  l7tap_capture(this, 0, L7TAP_DIR_INGRESS, &pkt, &cfg_, window_);
  frame_ = {};
  out_ = nullptr;
  current_ = nullptr;
}

CapturePolicy::FlowState* CapturePolicy::find(const CanonicalFlowKey& key) {
  if (flows_.empty()) return nullptr;
  auto it = flows_.find(key);
  return it == flows_.end() ? nullptr : &it->second;
}

CapturePolicy::FlowState* CapturePolicy::state(const CanonicalFlowKey& key) {
  if (FlowState* s = find(key)) return s;
  if (flows_.size() >= kMaxFlows) {
    counters_.flow_map_full++;
    return nullptr;
  }
  return &flows_[key];
}

void CapturePolicy::skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) {
  FlowState* s = state(key);
  if (s == nullptr) return;
  s->has_ctl = true;
  s->ctl.skip_start[dir & 1] = begin;
  s->ctl.skip_end[dir & 1] = end;
}

void CapturePolicy::countOnly(const CanonicalFlowKey& key) {
  FlowState* s = state(key);
  if (s == nullptr) return;
  s->has_ctl = true;
  s->ctl = {};
  s->ctl.l4_only = 1;
}

void CapturePolicy::walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) {
  FlowState* s = state(key);
  if (s == nullptr) return;
  s->has_ctl = true;
  s->ctl.frame_walk = 1;
  const uint32_t d = dir & 1;
  s->has_walk[d] = true;
  s->walk_epoch[d] = ++last_epoch_;
  s->walk[d] = {};
  s->walk[d].state = L7TAP_WALK_ARMED;
  s->walk[d].next_hdr = frame_seq;
}

void CapturePolicy::forget(const CanonicalFlowKey& key) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  FlowState& s = it->second;
  if (!s.has_flow) {
    flows_.erase(it);
    return;
  }
  s.has_ctl = false;
  s.ctl = {};
  s.has_walk[0] = s.has_walk[1] = false;
}

bool CapturePolicy::onClosing(const CanonicalFlowKey& key, uint32_t,
                              ConnectionInfo::KernelCounts&) {
  flows_.erase(key);
  return false;
}

}  // namespace l7tap
