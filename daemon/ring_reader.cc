#include "daemon/ring_reader.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

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

RingReader::~RingReader() { close(); }

void RingReader::close() {
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
}

bool RingReader::open(int map_fd, Pipeline& pipeline, int64_t mono_to_real_ns, std::string& error) {
  close();
  pipeline_ = &pipeline;
  mono_to_real_ns_ = mono_to_real_ns;
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
