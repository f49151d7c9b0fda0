// Decoding ring-buffer samples: segments into SegmentEvents on the wall
// clock; short samples and other event kinds are counted, never read past.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "daemon/capture_program.h"
#include "daemon/ring_reader.h"

namespace l7tap {
namespace {

std::vector<uint8_t> segmentSample(uint32_t captured_len) {
  std::vector<uint8_t> sample(L7TAP_SEGMENT_EVENT_HEADER_SIZE + captured_len);
  l7tap_segment_event ev{};
  ev.hdr.ts_ns = 1000;
  ev.hdr.ifindex = 7;
  ev.hdr.kind = L7TAP_EVENT_SEGMENT;
  ev.key.sport = 41230;
  ev.key.dport = 8080;
  ev.key.family = 4;
  ev.seq = 100;
  ev.ack = 200;
  ev.payload_len = 1500;
  ev.captured_len = captured_len;
  ev.data_offset = 3;
  ev.tcp_window = 512;
  ev.tcp_flags = L7TAP_TCP_ACK | L7TAP_TCP_PSH;
  ev.capture_flags = L7TAP_SEG_WALKED;
  for (uint32_t i = 0; i < captured_len; ++i) ev.data[i] = static_cast<uint8_t>(i);
  std::memcpy(sample.data(), &ev, sample.size());
  return sample;
}

TEST(RingReader, DecodesASegment) {
  const std::vector<uint8_t> sample = segmentSample(10);
  SegmentEvent seg;
  ASSERT_EQ(decodeRingEvent(sample.data(), sample.size(), 5000, seg), RingEventKind::kSegment);
  EXPECT_EQ(seg.ts_ns, 6000u);
  EXPECT_EQ(seg.ifindex, 7u);
  EXPECT_EQ(seg.key.sport, 41230);
  EXPECT_EQ(seg.key.dport, 8080);
  EXPECT_EQ(seg.seq, 100u);
  EXPECT_EQ(seg.ack, 200u);
  EXPECT_EQ(seg.payload_len, 1500u);
  EXPECT_EQ(seg.payload_offset, 3u);
  EXPECT_EQ(seg.tcp_window, 512);
  EXPECT_EQ(seg.tcp_flags, L7TAP_TCP_ACK | L7TAP_TCP_PSH);
  EXPECT_EQ(seg.capture_flags, L7TAP_SEG_WALKED);
  ASSERT_EQ(seg.payload.size(), 10u);
  EXPECT_EQ(seg.payload.data(), sample.data() + L7TAP_SEGMENT_EVENT_HEADER_SIZE);  // borrowed
  EXPECT_EQ(seg.payload[9], 9);
}

TEST(RingReader, AnEmptySegmentIsJustItsHeader) {
  const std::vector<uint8_t> sample = segmentSample(0);
  SegmentEvent seg;
  EXPECT_EQ(decodeRingEvent(sample.data(), sample.size(), 0, seg), RingEventKind::kSegment);
  EXPECT_TRUE(seg.payload.empty());
}

TEST(RingReader, ShortSamplesAreMalformed) {
  const std::vector<uint8_t> sample = segmentSample(10);
  SegmentEvent seg;
  for (size_t size : {size_t{0}, sizeof(l7tap_event_header) - 1,
                      size_t{L7TAP_SEGMENT_EVENT_HEADER_SIZE - 1}, sample.size() - 1}) {
    EXPECT_EQ(decodeRingEvent(sample.data(), size, 0, seg), RingEventKind::kMalformed) << size;
  }
  std::vector<uint8_t> lying = segmentSample(0);
  reinterpret_cast<l7tap_segment_event*>(lying.data())->captured_len = L7TAP_MAX_EVENT_PAYLOAD + 1;
  EXPECT_EQ(decodeRingEvent(lying.data(), lying.size(), 0, seg), RingEventKind::kMalformed);
}

TEST(RingReader, OtherKindsAreCountedNotRead) {
  std::vector<uint8_t> sample = segmentSample(0);
  SegmentEvent seg;
  for (uint8_t kind : {0, 2, 255}) {
    reinterpret_cast<l7tap_event_header*>(sample.data())->kind = kind;
    EXPECT_EQ(decodeRingEvent(sample.data(), sizeof(l7tap_event_header), 0, seg),
              RingEventKind::kOtherKind)
        << int(kind);
  }
}

// The summary names every kernel counter: one added to the ABI needs a name.
TEST(KernelCounterNames, EveryCounterHasOne) {
  for (int i = 0; i < L7TAP_CNT_MAX; ++i) {
    ASSERT_NE(kernelCounterName(i), nullptr) << i;
    EXPECT_STRNE(kernelCounterName(i), "") << i;
  }
  EXPECT_STREQ(kernelCounterName(L7TAP_CNT_RINGBUF_FULL), "ringbuf_full");
  EXPECT_STREQ(kernelCounterName(L7TAP_CNT_MAX), "?");
}

}  // namespace
}  // namespace l7tap
