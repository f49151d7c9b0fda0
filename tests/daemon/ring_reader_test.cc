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

// A stand-in for the kernel's tunnels map: one flow's entry, and the reads.
struct FakeTunnels {
  l7tap_flow_key canonical{};
  l7tap_tunnel entry{};
  bool present = true;
  int reads = 0;
  static bool lookup(void* ctx, const l7tap_flow_key& key, l7tap_tunnel& out) {
    auto* self = static_cast<FakeTunnels*>(ctx);
    self->reads++;
    if (!self->present || std::memcmp(&key, &self->canonical, sizeof key) != 0) return false;
    out = self->entry;
    return true;
  }
};

// 10.0.0.1:40000 <-> 10.0.0.2:8080, the first the canonical source; VNI 42
// between nodes 192.168.50.1 (of 10.0.0.1) and 192.168.50.2.
struct TunnelledFlow {
  FakeTunnels map;
  TunnelledFlow() {
    const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
    const uint8_t na[4] = {192, 168, 50, 1}, nb[4] = {192, 168, 50, 2};
    setIpv4(map.canonical.saddr, a);
    setIpv4(map.canonical.daddr, b);
    map.canonical.sport = 40000;
    map.canonical.dport = 8080;
    map.canonical.family = 4;
    setIpv4(map.entry.outer_saddr, na);
    setIpv4(map.entry.outer_daddr, nb);
    map.entry.id = 42;
    map.entry.has_id = 1;
    map.entry.type = L7TAP_TUNNEL_VXLAN;
    map.entry.outer_family = 4;
  }
  SegmentEvent segment(bool from_canonical_source, uint8_t flags = L7TAP_TCP_ACK,
                       uint8_t capture_flags = L7TAP_SEG_TUNNEL) const {
    SegmentEvent seg;
    seg.key = map.canonical;
    if (!from_canonical_source) {
      std::memcpy(seg.key.saddr, map.canonical.daddr, 16);
      std::memcpy(seg.key.daddr, map.canonical.saddr, 16);
      seg.key.sport = map.canonical.dport;
      seg.key.dport = map.canonical.sport;
    }
    seg.tcp_flags = flags;
    seg.capture_flags = capture_flags;
    return seg;
  }
};

TEST(RingTunnels, FlaggedEventsGetThePacketsOuterAddresses) {
  TunnelledFlow flow;
  RingTunnels tunnels(&FakeTunnels::lookup, &flow.map);
  RingStats stats;
  SegmentEvent from_client = flow.segment(true);
  tunnels.resolve(from_client, stats);
  ASSERT_NE(from_client.tunnel, nullptr);
  EXPECT_EQ(from_client.tunnel->type, L7TAP_TUNNEL_VXLAN);
  EXPECT_EQ(from_client.tunnel->id, 42u);
  EXPECT_EQ(from_client.tunnel->outer_saddr[15], 1);
  EXPECT_EQ(from_client.tunnel->outer_daddr[15], 2);
  SegmentEvent from_server = flow.segment(false);
  tunnels.resolve(from_server, stats);
  ASSERT_NE(from_server.tunnel, nullptr);
  EXPECT_EQ(from_server.tunnel->outer_saddr[15], 2);  // swapped: this packet's source
  EXPECT_EQ(from_server.tunnel->outer_daddr[15], 1);
  // Many packets of the flow, one read of the map.
  for (int i = 0; i < 100; ++i) {
    SegmentEvent seg = flow.segment(i % 2 == 0);
    tunnels.resolve(seg, stats);
    EXPECT_NE(seg.tunnel, nullptr);
  }
  EXPECT_EQ(flow.map.reads, 1);
  EXPECT_EQ(stats.tunnel_lookups, 1u);
  EXPECT_EQ(stats.tunnel_missing, 0u);
}

TEST(RingTunnels, UnflaggedEventsAreNeverLookedUp) {
  TunnelledFlow flow;
  RingTunnels tunnels(&FakeTunnels::lookup, &flow.map);
  RingStats stats;
  SegmentEvent seg = flow.segment(true, L7TAP_TCP_SYN, L7TAP_SEG_WALKED);
  tunnels.resolve(seg, stats);
  EXPECT_EQ(seg.tunnel, nullptr);
  EXPECT_EQ(flow.map.reads, 0);
  // No map at all (-1): flagged events stay unencapsulated.
  RingTunnels none(-1);
  SegmentEvent flagged = flow.segment(true);
  none.resolve(flagged, stats);
  EXPECT_EQ(flagged.tunnel, nullptr);
  EXPECT_EQ(stats.tunnel_lookups, 0u);
}

// A new connection on the same 5-tuple may come through another tunnel: its
// SYN reads the map again. A flow the map forgot is counted, read once.
TEST(RingTunnels, SynRereadsAndMissingEntriesAreCounted) {
  TunnelledFlow flow;
  RingTunnels tunnels(&FakeTunnels::lookup, &flow.map);
  RingStats stats;
  SegmentEvent first = flow.segment(true);
  tunnels.resolve(first, stats);
  flow.map.entry.id = 43;
  SegmentEvent syn = flow.segment(true, L7TAP_TCP_SYN);
  tunnels.resolve(syn, stats);
  ASSERT_NE(syn.tunnel, nullptr);
  EXPECT_EQ(syn.tunnel->id, 43u);
  EXPECT_EQ(flow.map.reads, 2);

  flow.map.present = false;
  SegmentEvent gone = flow.segment(false, L7TAP_TCP_SYN);
  tunnels.resolve(gone, stats);
  EXPECT_EQ(gone.tunnel, nullptr);
  SegmentEvent after = flow.segment(false);
  tunnels.resolve(after, stats);
  EXPECT_EQ(after.tunnel, nullptr);
  EXPECT_EQ(flow.map.reads, 3);
  EXPECT_EQ(stats.tunnel_lookups, 3u);
  EXPECT_EQ(stats.tunnel_missing, 1u);
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
