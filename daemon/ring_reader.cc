#include "daemon/ring_reader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "tc/flow_key.h"

namespace l7tap {

RingEventKind decodeRingEvent(const void* data, size_t size, int64_t mono_to_real_ns,
                              SegmentEvent& seg) {
  if (size < sizeof(l7tap_event_header)) return RingEventKind::kMalformed;
  const auto* hdr = static_cast<const l7tap_event_header*>(data);
  if (hdr->kind != L7TAP_EVENT_SEGMENT) return RingEventKind::kOtherKind;
  // The sample may end right after the captured bytes: never read past them.
  if (size < L7TAP_SEGMENT_EVENT_HEADER_SIZE) return RingEventKind::kMalformed;
  const auto* ev = static_cast<const l7tap_segment_event*>(data);
  if (ev->captured_len > L7TAP_MAX_EVENT_PAYLOAD ||
      size < L7TAP_SEGMENT_EVENT_HEADER_SIZE + ev->captured_len) {
    return RingEventKind::kMalformed;
  }
  // Unsigned: the same sum, without a signed overflow on a wild timestamp.
  seg.ts_ns = hdr->ts_ns + static_cast<uint64_t>(mono_to_real_ns);
  seg.ifindex = hdr->ifindex;
  seg.key = ev->key;
  seg.seq = ev->seq;
  seg.ack = ev->ack;
  seg.payload_len = ev->payload_len;
  seg.payload_offset = ev->data_offset;
  seg.tcp_window = ev->tcp_window;
  seg.tcp_flags = ev->tcp_flags;
  seg.capture_flags = ev->capture_flags;
  seg.payload = {ev->data, ev->captured_len};
  return RingEventKind::kSegment;
}

bool RingTunnels::read(const l7tap_flow_key& canonical, l7tap_tunnel& out) const {
  if (lookup_) return lookup_(ctx_, canonical, out);
  return bpf_map_lookup_elem(map_fd_, &canonical, &out) == 0;
}

void RingTunnels::resolve(SegmentEvent& seg, RingStats& stats) {
  if (!(seg.capture_flags & L7TAP_SEG_TUNNEL) || (!lookup_ && map_fd_ < 0)) return;
  if (!slots_) slots_ = std::make_unique<Slot[]>(kCacheSlots);
  l7tap_flow_key canonical;
  const uint32_t dir = l7tap_canonical(&seg.key, &canonical);
  // FNV-1a over the canonical key: any spread will do, it is only a cache.
  uint32_t h = 2166136261u;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&canonical);
  for (size_t i = 0; i < sizeof canonical; ++i) h = (h ^ bytes[i]) * 16777619u;
  Slot& slot = slots_[h % kCacheSlots];
  const bool opening = (seg.tcp_flags & (L7TAP_TCP_SYN | L7TAP_TCP_ACK)) == L7TAP_TCP_SYN;
  if (!slot.used || opening || std::memcmp(&slot.key, &canonical, sizeof canonical) != 0) {
    slot.key = canonical;
    slot.used = true;
    stats.tunnel_lookups++;
    if (!read(canonical, slot.tunnel)) {
      slot.tunnel = l7tap_tunnel{};
      stats.tunnel_missing++;
    }
  }
  if (slot.tunnel.type == L7TAP_TUNNEL_NONE) return;
  packet_ = slot.tunnel;
  if (dir == 1) {
    std::memcpy(packet_.outer_saddr, slot.tunnel.outer_daddr, 16);
    std::memcpy(packet_.outer_daddr, slot.tunnel.outer_saddr, 16);
  }
  seg.tunnel = &packet_;
}

RingReader::~RingReader() { close(); }

void RingReader::close() {
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
}

bool RingReader::open(int map_fd, Pipeline& pipeline, int64_t mono_to_real_ns, std::string& error,
                      int tunnels_fd) {
  close();
  pipeline_ = &pipeline;
  mono_to_real_ns_ = mono_to_real_ns;
  tunnels_ = RingTunnels(tunnels_fd);
  ring_ = ring_buffer__new(map_fd, onSample, this, nullptr);
  if (!ring_) {
    error = std::string("ring buffer: ") + std::strerror(errno);
    return false;
  }
  return true;
}

int RingReader::fd() const { return ring_ ? ring_buffer__epoll_fd(ring_) : -1; }

void RingReader::consume() {
  if (ring_) ring_buffer__consume(ring_);
}

int RingReader::onSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingReader*>(ctx);
  self->stats_.events_read++;
  // The sample is borrowed for this call only; the pipeline copies what it keeps.
  SegmentEvent seg;
  switch (decodeRingEvent(data, size, self->mono_to_real_ns_, seg)) {
    case RingEventKind::kSegment:
      self->tunnels_.resolve(seg, self->stats_);
      self->pipeline_->onSegment(seg);
      break;
    case RingEventKind::kMalformed:
      self->stats_.malformed++;
      break;
    case RingEventKind::kOtherKind:
      self->stats_.other_kinds++;
      break;
  }
  return 0;
}

}  // namespace l7tap
