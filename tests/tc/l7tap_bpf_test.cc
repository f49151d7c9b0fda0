// The real TC program (tc/l7tap.bpf.c, from its embedded skeleton) run on
// built frames with BPF_PROG_TEST_RUN. Needs root.
//
// Limits of BPF_PROG_TEST_RUN found here: a frame is at most a page minus the
// skb's head- and tailroom (3712 bytes on x86-64 with 4 KB pages), so the
// 64 KB GSO skbs of real veth traffic cannot be built; the __sk_buff context
// accepts ifindex (an existing device of this network namespace; 0 and 1
// are the loopback) and gso_segs.
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <time.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tc/frame_walk.h"
#include "tests/support/privileged.h"
#include "tests/tc/packet_builder.h"
#include "tests/tc/tc_program.h"

namespace l7tap::testing {
namespace {

constexpr uint32_t kUnspec = static_cast<uint32_t>(TC_ACT_UNSPEC);
constexpr uint8_t kIn = L7TAP_DIR_INGRESS;
constexpr uint8_t kOut = L7TAP_DIR_EGRESS;
constexpr uint8_t kPshAck = L7TAP_TCP_PSH | L7TAP_TCP_ACK;

std::unique_ptr<TcProgram> mustLoad(const TcConfig& cfg = {}) {
  std::string error;
  auto p = TcProgram::load(cfg, &error);
  EXPECT_NE(p, nullptr) << error;
  return p;
}

// Runs one frame; the program must never change the packet's fate.
void send(TcProgram& p, uint8_t dir, const std::vector<uint8_t>& frame, uint32_t ifindex = 0,
          uint32_t gso_segs = 0) {
  const auto r = p.run(dir, frame, ifindex, gso_segs);
  ASSERT_EQ(r.err, 0) << strerror(-r.err);
  EXPECT_EQ(r.retval, kUnspec);
}
void send(TcProgram& p, uint8_t dir, const PacketBuilder& b, uint32_t ifindex = 0) {
  send(p, dir, b.build(), ifindex);
}

// 10.0.0.1:40000 (the canonical source) -> 10.0.0.2:8080.
PacketBuilder clientToServer() {
  return PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ports(40000, 8080);
}
PacketBuilder serverToClient() {
  return PacketBuilder().ipv4("10.0.0.2", "10.0.0.1").ports(8080, 40000);
}

uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::vector<Event> segments(const std::vector<Event>& events) {
  std::vector<Event> out;
  std::copy_if(events.begin(), events.end(), std::back_inserter(out),
               [](const Event& e) { return e.kind == L7TAP_EVENT_SEGMENT; });
  return out;
}

TEST(TcProgram, SegmentEventCarriesPacketFields) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const std::string body = "GET /api/user/10 HTTP/1.1\r\nHost: x\r\n\r\n";
  const auto b =
      clientToServer().seq(0x11223344).ack(0x55667788).flags(kPshAck).window(501).payload(body);
  const uint64_t before = monotonicNs();
  send(*prog, kOut, b);
  const uint64_t after = monotonicNs();

  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0].seg();
  EXPECT_EQ(e.hdr.kind, L7TAP_EVENT_SEGMENT);
  EXPECT_EQ(e.hdr.direction, L7TAP_DIR_EGRESS);
  EXPECT_EQ(e.hdr.ifindex, 1u);  // BPF_PROG_TEST_RUN's default device: lo
  EXPECT_GE(e.hdr.ts_ns, before);
  EXPECT_LE(e.hdr.ts_ns, after);
  EXPECT_TRUE(keysEqual(e.key, b.key()));  // as seen, not canonical
  EXPECT_EQ(e.key.family, 4);
  EXPECT_EQ(e.key.sport, 40000);
  EXPECT_EQ(e.key.dport, 8080);
  EXPECT_EQ(e.seq, 0x11223344u);
  EXPECT_EQ(e.ack, 0x55667788u);
  EXPECT_EQ(e.tcp_flags, kPshAck);
  EXPECT_EQ(e.tcp_window, 501);
  EXPECT_EQ(e.payload_len, body.size());
  EXPECT_EQ(e.captured_len, body.size());
  EXPECT_EQ(e.data_offset, 0u);
  EXPECT_EQ(std::string(events[0].data.begin(), events[0].data.end()), body);
  EXPECT_GE(events[0].sample_size, L7TAP_SEGMENT_EVENT_HEADER_SIZE + body.size());

  EXPECT_EQ(prog->counter(L7TAP_CNT_PACKETS), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_TCP), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_EVENTS), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_PAYLOAD_BYTES), body.size());
  EXPECT_EQ(prog->counter(L7TAP_CNT_COPIED_BYTES), body.size());
  EXPECT_EQ(prog->counter(L7TAP_CNT_RINGBUF_FULL), 0u);
}

TEST(TcProgram, IngressProgramReportsIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kIn, clientToServer().flags(kPshAck).payload("x"));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().hdr.direction, L7TAP_DIR_INGRESS);
}

TEST(TcProgram, WindowTruncatesPayload) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024});
  ASSERT_NE(prog, nullptr);
  const auto b = clientToServer().flags(kPshAck).payloadSize(3000);
  send(*prog, kOut, b);
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().payload_len, 3000u);
  EXPECT_EQ(events[0].seg().captured_len, 1024u);
  const auto& p = b.payloadBytes();
  EXPECT_EQ(events[0].data, std::vector<uint8_t>(p.begin(), p.begin() + 1024));
  EXPECT_EQ(prog->counter(L7TAP_CNT_PAYLOAD_BYTES), 3000u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_COPIED_BYTES), 1024u);
}

// Every sample size class, at and just past its bound.
TEST(TcProgram, CapturesEverySizeAcrossSampleClasses) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = L7TAP_MAX_EVENT_PAYLOAD});
  ASSERT_NE(prog, nullptr);
  const std::vector<size_t> sizes = {1, 127, 128, 129, 512, 513, 1024, 1025, 2048, 2049, 3600};
  uint32_t seq = 1;
  for (size_t n : sizes) {
    const auto b = clientToServer().seq(seq).flags(kPshAck).payloadSize(n);
    seq += static_cast<uint32_t>(n);
    send(*prog, kOut, b);
    const auto events = prog->drain();
    ASSERT_EQ(events.size(), 1u) << n;
    EXPECT_EQ(events[0].seg().payload_len, n);
    EXPECT_EQ(events[0].seg().captured_len, n);
    EXPECT_EQ(events[0].data, b.payloadBytes()) << n;
    EXPECT_GE(events[0].sample_size, L7TAP_SEGMENT_EVENT_HEADER_SIZE + n);
    // The sample is at most twice as large as needed (size classes).
    EXPECT_LE(events[0].sample_size,
              L7TAP_SEGMENT_EVENT_HEADER_SIZE + std::max<size_t>(128, 2 * n));
  }
}

// Window 0 means unlimited in the policy; the kernel clamps it to the largest
// event, as it does any window above it.
TEST(TcProgram, WindowIsClampedToLargestEvent) {
  L7TAP_SKIP_UNLESS(missingRoot());
  for (uint32_t window : {0u, 100000u}) {
    auto prog = mustLoad({.window = window});
    ASSERT_NE(prog, nullptr);
    send(*prog, kOut, clientToServer().flags(kPshAck).payloadSize(3600));
    const auto events = prog->drain();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].seg().captured_len, 3600u) << window;
  }
  auto prog = mustLoad({.window = 1});
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().flags(kPshAck).payloadSize(100));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().captured_len, 1u);
}

TEST(TcProgram, SegmentsWithoutPayloadGetHeaderOnlyEvents) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().seq(100).flags(L7TAP_TCP_SYN));
  send(*prog, kIn, serverToClient().seq(500).ack(101).flags(L7TAP_TCP_SYN | L7TAP_TCP_ACK));
  send(*prog, kOut, clientToServer().seq(101).ack(501));
  send(*prog, kOut, clientToServer().seq(101).ack(501).flags(L7TAP_TCP_FIN | L7TAP_TCP_ACK));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 4u);
  const uint8_t want[] = {L7TAP_TCP_SYN, L7TAP_TCP_SYN | L7TAP_TCP_ACK, L7TAP_TCP_ACK,
                          L7TAP_TCP_FIN | L7TAP_TCP_ACK};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(events[i].kind, L7TAP_EVENT_SEGMENT);
    EXPECT_EQ(events[i].seg().tcp_flags, want[i]) << i;
    EXPECT_EQ(events[i].seg().payload_len, 0u);
    EXPECT_EQ(events[i].seg().captured_len, 0u);
    EXPECT_EQ(events[i].sample_size, size_t{L7TAP_SEGMENT_EVENT_HEADER_SIZE});
  }
  EXPECT_EQ(events[2].seg().ack, 501u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_EVENTS), 4u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_COPIED_BYTES), 0u);
}

TEST(TcProgram, Ipv6WithExtensionHeaders) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto b = PacketBuilder()
                     .ipv6("fd00::1", "fd00::2")
                     .ports(40000, 443)
                     .ipv6Ext(IPPROTO_HOPOPTS)
                     .ipv6Ext(IPPROTO_ROUTING, 2)
                     .ipv6Ext(IPPROTO_DSTOPTS, 1)
                     .tcpOptions(3)
                     .flags(kPshAck)
                     .payload("hello over v6");
  send(*prog, kIn, b);
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().key.family, 6);
  EXPECT_TRUE(keysEqual(events[0].seg().key, b.key()));
  EXPECT_EQ(std::string(events[0].data.begin(), events[0].data.end()), "hello over v6");
  EXPECT_TRUE(prog->flow(canonicalKey(b.key())).has_value());
}

TEST(TcProgram, Ipv4OptionsAreSkipped) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().ipv4Options(2).flags(kPshAck).payload("opts"));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::string(events[0].data.begin(), events[0].data.end()), "opts");
}

TEST(TcProgram, Ipv6TooManyExtensionHeadersIsUnparsable) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  // Eight are skipped (L7TAP_MAX_IPV6_EXT_HEADERS, tc/packet_parse.h).
  auto b = PacketBuilder().ipv6("fd00::1", "fd00::2").flags(kPshAck).payload("x");
  for (int i = 0; i < 9; ++i) b.ipv6Ext(IPPROTO_DSTOPTS);
  send(*prog, kIn, b);
  EXPECT_TRUE(prog->drain().empty());
  EXPECT_EQ(prog->counter(L7TAP_CNT_UNPARSABLE), 1u);
}

TEST(TcProgram, VlanTagsAreSkipped) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().vlan(100).flags(kPshAck).payload("one tag"));
  send(*prog, kOut,
       clientToServer().vlan(200, 0x88a8).vlan(100).seq(2000).flags(kPshAck).payload("qinq"));
  send(*prog, kOut,
       PacketBuilder().ipv6("fd00::1", "fd00::2").vlan(7).flags(kPshAck).payload("v6 in vlan"));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(std::string(events[0].data.begin(), events[0].data.end()), "one tag");
  EXPECT_EQ(std::string(events[1].data.begin(), events[1].data.end()), "qinq");
  EXPECT_EQ(std::string(events[2].data.begin(), events[2].data.end()), "v6 in vlan");

  // Four tags of any of the three types (L7TAP_MAX_VLAN_TAGS,
  // tc/packet_parse.h); a fifth is beyond what the program parses.
  send(*prog, kOut,
       clientToServer().vlan(1, 0x9100).vlan(2, 0x88a8).vlan(3).vlan(4).flags(kPshAck).payload(
           "four"));
  const auto four = prog->drain();
  ASSERT_EQ(four.size(), 1u);
  EXPECT_EQ(std::string(four[0].data.begin(), four[0].data.end()), "four");
  send(*prog, kOut,
       clientToServer().vlan(1).vlan(2).vlan(3).vlan(4).vlan(5).flags(kPshAck).payload("x"));
  EXPECT_TRUE(prog->drain().empty());
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_TCP), 1u);
}

TEST(TcProgram, FragmentsAreCountedNotCaptured) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().fragment(0, true).flags(kPshAck).payload("first"));
  send(*prog, kOut, clientToServer().fragment(185, false).flags(kPshAck).payload("last"));
  send(*prog, kOut,
       PacketBuilder().ipv6("fd00::1", "fd00::2").fragment(0, true).payload("v6 frag"));
  send(*prog, kOut,
       PacketBuilder()
           .ipv6("fd00::1", "fd00::2")
           .ipv6Ext(IPPROTO_HOPOPTS)
           .fragment(10, false)
           .payload("v6 frag"));
  EXPECT_TRUE(prog->drain().empty());
  EXPECT_EQ(prog->counter(L7TAP_CNT_FRAGMENTS), 4u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_TCP), 0u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_PACKETS), 4u);
  EXPECT_EQ(prog->flowCount(), 0u);
}

TEST(TcProgram, NonTcpIsCounted) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().udp().payload("dns?"));
  send(*prog, kOut, PacketBuilder().ipv6("fd00::1", "fd00::2").udp().payload("quic"));
  // ARP.
  std::vector<uint8_t> arp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
  arp.resize(60, 0);
  send(*prog, kOut, arp);
  EXPECT_TRUE(prog->drain().empty());
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_TCP), 3u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_PACKETS), 3u);
}

TEST(TcProgram, MalformedFramesAreUnparsableAndPassed) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto full = clientToServer().flags(kPshAck).payload("x").build();
  // An IPv4 header length below 20 bytes. (A frame cut inside the IP header
  // cannot be tested: BPF_PROG_TEST_RUN rejects it with EINVAL.)
  auto bad_ihl = full;
  bad_ihl[14] = 0x44;
  send(*prog, kOut, bad_ihl);
  // Cut inside the TCP header.
  send(*prog, kOut, std::vector<uint8_t>(full.begin(), full.begin() + 40));
  // A TCP data offset below 5.
  auto bad_doff = full;
  bad_doff[14 + 20 + 12] = 0x40;
  send(*prog, kOut, bad_doff);
  // A TCP data offset past the end of the frame.
  auto long_doff = clientToServer().flags(L7TAP_TCP_ACK).build();
  long_doff[14 + 20 + 12] = 0xf0;
  send(*prog, kOut, long_doff);
  EXPECT_TRUE(prog->drain().empty());
  EXPECT_EQ(prog->counter(L7TAP_CNT_UNPARSABLE), 4u);
}

// Short frames are padded to 60 bytes on Ethernet; the padding is not
// payload. A GSO skb is never trimmed by its IP length.
TEST(TcProgram, EthernetPaddingIsNotPayload) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kIn, clientToServer().ack(1).padTo(60));
  send(*prog, kIn, clientToServer().seq(1000).ack(1).flags(kPshAck).payload("ab").padTo(60));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().payload_len, 0u);
  EXPECT_EQ(events[1].seg().payload_len, 2u);
  EXPECT_EQ(std::string(events[1].data.begin(), events[1].data.end()), "ab");
}

TEST(TcProgram, PortFilter) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.ports = {9090, 8080}});
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().flags(kPshAck).payload("to 8080"));
  send(*prog, kIn, serverToClient().flags(kPshAck).payload("from 8080"));
  send(*prog, kOut, clientToServer().ports(40000, 5432).flags(kPshAck).payload("db"));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_FILTERED), 1u);
  EXPECT_EQ(prog->flowCount(), 1u);
}

TEST(TcProgram, CidrFilter) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.cidrs = {{"10.1.0.0", 16}, {"fd00:1::", 32}, {"192.168.7.7", 32}}});
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, PacketBuilder().ipv4("10.0.0.1", "10.1.200.3").flags(kPshAck).payload("a"));
  send(*prog, kOut, PacketBuilder().ipv4("10.1.0.9", "10.0.0.3").flags(kPshAck).payload("b"));
  send(*prog, kOut, PacketBuilder().ipv4("10.2.0.1", "10.0.0.3").flags(kPshAck).payload("c"));
  send(*prog, kOut, PacketBuilder().ipv4("192.168.7.7", "1.1.1.1").flags(kPshAck).payload("d"));
  send(*prog, kOut, PacketBuilder().ipv4("192.168.7.8", "1.1.1.1").flags(kPshAck).payload("e"));
  send(*prog, kOut, PacketBuilder().ipv6("fd00:1:ffff::1", "::1").flags(kPshAck).payload("f"));
  send(*prog, kOut, PacketBuilder().ipv6("fd00:2::1", "::1").flags(kPshAck).payload("g"));
  // An IPv6 address that shares the first 80 bits with the IPv4-mapped form.
  send(*prog, kOut, PacketBuilder().ipv6("::1", "::2").flags(kPshAck).payload("h"));
  const auto events = prog->drain();
  std::string got;
  for (const auto& e : events) got += std::string(e.data.begin(), e.data.end());
  EXPECT_EQ(got, "abdf");
  EXPECT_EQ(prog->counter(L7TAP_CNT_FILTERED), 4u);
}

// The verifier must accept the program with every filter slot in use.
TEST(TcProgram, LoadsWithEveryFilterSlotUsed) {
  L7TAP_SKIP_UNLESS(missingRoot());
  TcConfig cfg;
  for (uint16_t i = 0; i < L7TAP_MAX_FILTER_PORTS; ++i) cfg.ports.push_back(8000 + i);
  for (int i = 0; i < L7TAP_MAX_FILTER_CIDRS; ++i) {
    cfg.cidrs.push_back({"10." + std::to_string(i) + ".0.0", static_cast<uint8_t>(16 + i)});
  }
  auto prog = mustLoad(cfg);
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut,
       PacketBuilder().ipv4("10.7.0.1", "1.1.1.1").ports(1, 8015).flags(kPshAck).payload("in"));
  send(*prog, kOut,
       PacketBuilder().ipv4("10.7.2.1", "1.1.1.1").ports(1, 8015).flags(kPshAck).payload("out"));
  send(*prog, kOut,
       PacketBuilder().ipv4("10.7.0.1", "1.1.1.1").ports(1, 8016).flags(kPshAck).payload("out"));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(std::string(events[0].data.begin(), events[0].data.end()), "in");
  EXPECT_EQ(prog->counter(L7TAP_CNT_FILTERED), 2u);
}

TEST(TcProgram, CanonicalKeyAndPerDirectionCounters) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  // The client's address is the higher one: its packets are direction 1.
  auto client = [] { return PacketBuilder().ipv4("10.0.0.9", "10.0.0.2").ports(40000, 8080); };
  auto server = [] { return PacketBuilder().ipv4("10.0.0.2", "10.0.0.9").ports(8080, 40000); };
  const uint64_t before = monotonicNs();
  send(*prog, kOut, client().seq(100).flags(L7TAP_TCP_SYN));
  send(*prog, kIn, server().seq(900).ack(101).flags(L7TAP_TCP_SYN | L7TAP_TCP_ACK));
  send(*prog, kOut, client().seq(101).ack(901));
  send(*prog, kOut, client().seq(101).ack(901).flags(kPshAck).payloadSize(300));
  send(*prog, kIn, server().seq(901).ack(401).flags(kPshAck).payloadSize(1200));
  send(*prog, kIn, server().seq(2101).ack(401).flags(kPshAck).payloadSize(800));
  const uint64_t after = monotonicNs();

  const l7tap_flow_key canonical = canonicalKey(client().key());
  EXPECT_EQ(canonical.sport, 8080);  // 10.0.0.2 compares lower
  EXPECT_TRUE(keysEqual(canonicalKey(server().key()), canonical));
  const auto fc = prog->flow(canonical);
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(prog->flowCount(), 1u);
  EXPECT_EQ(fc->packets[0], 3u);  // server
  EXPECT_EQ(fc->packets[1], 3u);  // client
  EXPECT_EQ(fc->bytes[0], 2000u);
  EXPECT_EQ(fc->bytes[1], 300u);
  EXPECT_EQ(fc->next_seq[0], 2901u);
  EXPECT_EQ(fc->next_seq[1], 401u);
  EXPECT_EQ(fc->tcp_flags[1], L7TAP_TCP_SYN | L7TAP_TCP_ACK | L7TAP_TCP_PSH);
  EXPECT_EQ(fc->tcp_flags[0], L7TAP_TCP_SYN | L7TAP_TCP_ACK | L7TAP_TCP_PSH);
  EXPECT_GE(fc->first_ns, before);
  EXPECT_GE(fc->syn_ns, fc->first_ns);
  EXPECT_GE(fc->synack_ns, fc->syn_ns);
  EXPECT_GE(fc->last_ns, fc->synack_ns);
  EXPECT_LE(fc->last_ns, after);
  EXPECT_EQ(fc->owner_ifindex, 1u);
  EXPECT_EQ(fc->retransmits[0] + fc->retransmits[1], 0u);
  EXPECT_EQ(fc->zero_windows[0] + fc->zero_windows[1], 0u);
  EXPECT_EQ(fc->ended, 0);

  // Segment events keep the packet's own orientation.
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 6u);
  EXPECT_TRUE(keysEqual(events[0].seg().key, client().key()));
  EXPECT_TRUE(keysEqual(events[1].seg().key, server().key()));
}

TEST(TcProgram, RetransmitsAreCountedAcrossSequenceWrap) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const uint32_t start = 0xffffff00u;
  send(*prog, kOut, clientToServer().seq(start).ack(1).flags(kPshAck).payloadSize(200));
  // Crosses the wrap: new data, not a retransmit.
  send(*prog, kOut, clientToServer().seq(start + 200).ack(1).flags(kPshAck).payloadSize(200));
  // The first segment again, then a part of the second.
  send(*prog, kOut, clientToServer().seq(start).ack(1).flags(kPshAck).payloadSize(200));
  send(*prog, kOut, clientToServer().seq(start + 250).ack(1).flags(kPshAck).payloadSize(100));
  // A pure ACK at an old sequence number is not a retransmit.
  send(*prog, kOut, clientToServer().seq(start).ack(1));
  // Overlapping old and new data: not counted.
  send(*prog, kOut, clientToServer().seq(start + 300).ack(1).flags(kPshAck).payloadSize(200));
  const auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->retransmits[0], 2u);
  EXPECT_EQ(fc->retransmits[1], 0u);
  EXPECT_EQ(fc->next_seq[0], start + 500);  // wrapped: 0xf4
  EXPECT_EQ(fc->bytes[0], 900u);
}

TEST(TcProgram, ZeroWindowsAreCounted) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kIn, serverToClient().ack(1).window(0));
  send(*prog, kIn, serverToClient().ack(1).window(0));
  send(*prog, kIn, serverToClient().ack(1).window(10));
  // A RST's window is not advertised: not counted.
  send(*prog, kIn, serverToClient().flags(L7TAP_TCP_RST).window(0));
  const auto fc = prog->flow(canonicalKey(serverToClient().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->zero_windows[1], 2u);
  EXPECT_EQ(fc->zero_windows[0], 0u);
}

// The flows entry ends (and stays, for the daemon's sweep) on the first RST.
TEST(TcProgram, FlowEntryEndsOnRst) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().seq(1).ack(1).flags(kPshAck).payload("req"));
  send(*prog, kIn, serverToClient().seq(1).flags(L7TAP_TCP_RST));
  auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->ended, 1);
  EXPECT_EQ(fc->packets[0], 1u);
  EXPECT_EQ(fc->packets[1], 1u);
  EXPECT_EQ(fc->bytes[0], 3u);
  EXPECT_EQ(fc->tcp_flags[1], L7TAP_TCP_RST);
  send(*prog, kIn, serverToClient().seq(1).flags(L7TAP_TCP_RST));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 3u);
  for (const Event& e : events) EXPECT_EQ(e.kind, L7TAP_EVENT_SEGMENT);
  EXPECT_EQ(events[1].seg().tcp_flags, L7TAP_TCP_RST);
  fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->ended, 1);
  EXPECT_EQ(fc->packets[1], 2u);
}

TEST(TcProgram, FlowEntryEndsAfterFinInBothDirections) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const uint8_t fin_ack = L7TAP_TCP_FIN | L7TAP_TCP_ACK;
  send(*prog, kOut, clientToServer().seq(10).ack(20).flags(fin_ack));
  send(*prog, kOut, clientToServer().seq(10).ack(20).flags(fin_ack));  // one side twice
  EXPECT_EQ(segments(prog->drain()).size(), 2u);
  EXPECT_EQ(prog->flow(canonicalKey(clientToServer().key()))->ended, 0);
  send(*prog, kIn, serverToClient().seq(20).ack(11).flags(fin_ack));
  send(*prog, kOut, clientToServer().seq(11).ack(21));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  for (const Event& e : events) EXPECT_EQ(e.kind, L7TAP_EVENT_SEGMENT);
  const auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->ended, 1);
  EXPECT_EQ(fc->tcp_flags[0] & L7TAP_TCP_FIN, L7TAP_TCP_FIN);
  EXPECT_EQ(fc->tcp_flags[1] & L7TAP_TCP_FIN, L7TAP_TCP_FIN);
  EXPECT_EQ(fc->packets[0], 3u);
}

// A SYN on an ended flow is a new connection on the same ports: the entry
// starts afresh, and ends on its own.
TEST(TcProgram, SynReopensEndedFlow) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().seq(1).ack(1).flags(kPshAck).payloadSize(50));
  send(*prog, kIn, serverToClient().flags(L7TAP_TCP_RST));
  send(*prog, kOut, clientToServer().seq(5000).flags(L7TAP_TCP_SYN));
  auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->ended, 0);
  EXPECT_EQ(fc->packets[0], 1u);
  EXPECT_EQ(fc->packets[1], 0u);
  EXPECT_EQ(fc->bytes[0], 0u);
  EXPECT_NE(fc->syn_ns, 0u);
  send(*prog, kIn, serverToClient().flags(L7TAP_TCP_RST));
  fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->ended, 1);
  EXPECT_EQ(segments(prog->drain()).size(), 4u);
}

// A pod-to-pod flow crosses two attached interfaces: only the one that saw
// it first reports it.
TEST(TcProgram, OnlyTheOwnerInterfaceReportsAFlow) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const uint32_t other = otherIfindex();
  if (other == 0) GTEST_SKIP() << "no network device besides lo in this namespace";
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kIn, clientToServer().seq(1).flags(kPshAck).payload("first"), 1);
  send(*prog, kOut, clientToServer().seq(1).flags(kPshAck).payload("first"), other);
  send(*prog, kIn, serverToClient().seq(1).flags(kPshAck).payload("reply"), other);
  send(*prog, kOut, serverToClient().seq(1).flags(kPshAck).payload("reply"), 1);
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().hdr.ifindex, 1u);
  EXPECT_EQ(events[1].seg().hdr.ifindex, 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER), 2u);
  const auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->owner_ifindex, 1u);
  EXPECT_EQ(fc->packets[0], 1u);  // not counted twice
  EXPECT_EQ(fc->packets[1], 1u);

  // A flow first seen on the other interface belongs to it.
  send(*prog, kOut, clientToServer().ports(40001, 8080).flags(kPshAck).payload("b"), other);
  const auto more = prog->drain();
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].seg().hdr.ifindex, other);
}

// Runs a forwarded frame through the egress program of ifindex, as received
// on ingress_ifindex.
void forward(TcProgram& p, const PacketBuilder& b, uint32_t ifindex, uint32_t ingress_ifindex) {
  const auto r = p.run(kOut, b.build(), ifindex, 0, 1, ingress_ifindex);
  ASSERT_EQ(r.err, 0) << strerror(-r.err);
  EXPECT_EQ(r.retval, kUnspec);
}

// Keeps the test on one CPU: the program pairs the runs of one packet
// through per-CPU state, as the kernel's forwarding path does.
class OneCpu {
 public:
  OneCpu() {
    sched_getaffinity(0, sizeof(old_), &old_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof(one), &one);
  }
  ~OneCpu() { sched_setaffinity(0, sizeof(old_), &old_); }
  OneCpu(const OneCpu&) = delete;
  OneCpu& operator=(const OneCpu&) = delete;

 private:
  cpu_set_t old_{};
};

// A pod-to-pod packet runs the ingress program of the sender's veth, then
// the egress program of the receiver's: when the first run reported it, the
// second is not the owner's and knows it without parsing the packet or
// looking up its flow. Same events, same counters as when it parses.
TEST(TcProgram, SecondRunOfAReportedPacketIsToldWithoutParsing) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const uint32_t other = otherIfindex();
  if (other == 0) GTEST_SKIP() << "no network device besides lo in this namespace";
  OneCpu pinned;
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kIn, clientToServer().seq(1).ack(7).flags(kPshAck).payload("first"), 1);
  forward(*prog, clientToServer().seq(1).ack(7).flags(kPshAck).payload("first"), other, 1);
  send(*prog, kIn, serverToClient().seq(7).ack(6).flags(kPshAck).payload("reply"), other);
  forward(*prog, serverToClient().seq(7).ack(6).flags(kPshAck).payload("reply"), 1, other);
  const auto events = segments(prog->drain());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().hdr.ifindex, 1u);
  EXPECT_EQ(events[1].seg().hdr.ifindex, 1u);
  EXPECT_EQ(events[1].seg().hdr.direction, kOut);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER), 2u);
  // The request's second run; the reply's first was the one to look up.
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_PACKETS), 4u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_TCP), 4u);
  const auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->packets[0], 1u);
  EXPECT_EQ(fc->packets[1], 1u);
  EXPECT_EQ(fc->bytes[0], 5u);

  // Another packet than the one reported (here another sequence number)
  // takes the full path, which finds the owner in the flow.
  send(*prog, kIn, clientToServer().seq(6).ack(12).flags(kPshAck).payload("second"), 1);
  forward(*prog, clientToServer().seq(7).ack(12).flags(kPshAck).payload("second"), other, 1);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER), 3u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 1u);
  EXPECT_EQ(segments(prog->drain()).size(), 1u);

  // A flow the egress interface owns (it saw it first) is still reported
  // there when the ingress run was not the owner's.
  forward(*prog, clientToServer().ports(40001, 8080).seq(1).flags(kPshAck).payload("b"), other, 0);
  send(*prog, kIn, clientToServer().ports(40001, 8080).seq(2).flags(kPshAck).payload("c"), 1);
  forward(*prog, clientToServer().ports(40001, 8080).seq(2).flags(kPshAck).payload("c"), other, 1);
  const auto owned = segments(prog->drain());
  ASSERT_EQ(owned.size(), 2u);
  EXPECT_EQ(owned[0].seg().hdr.ifindex, other);
  EXPECT_EQ(owned[1].seg().hdr.ifindex, other);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 1u);

  // Translated on the way (DNAT to a service's pod, same ports): another
  // flow, which the egress interface saw first and reports.
  send(*prog, kIn,
       PacketBuilder()
           .ipv4("10.0.0.1", "10.0.0.9")
           .ports(40003, 8080)
           .seq(1)
           .flags(kPshAck)
           .payload("n"),
       1);
  forward(*prog,
          PacketBuilder()
              .ipv4("10.0.0.1", "10.0.0.2")
              .ports(40003, 8080)
              .seq(1)
              .flags(kPshAck)
              .payload("n"),
          other, 1);
  const auto nat = segments(prog->drain());
  ASSERT_EQ(nat.size(), 2u);
  EXPECT_EQ(nat[1].seg().hdr.ifindex, other);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 1u);

  // IPv6 pairs too.
  const auto v6 = [] {
    return PacketBuilder()
        .ipv6("fd00::1", "fd00::2")
        .ports(40004, 8080)
        .seq(1)
        .flags(kPshAck)
        .payload("six");
  };
  send(*prog, kIn, v6(), 1);
  forward(*prog, v6(), other, 1);
  EXPECT_EQ(segments(prog->drain()).size(), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 2u);

  // Behind a VLAN tag, IPv4's addresses lie past the frame's head, which
  // the ingress run remembers them from otherwise: they are loaded, and the
  // packet pairs all the same.
  send(*prog, kIn, clientToServer().vlan(7).ports(40005, 8080).seq(1).flags(kPshAck).payload("v"),
       1);
  forward(*prog, clientToServer().vlan(7).ports(40005, 8080).seq(1).flags(kPshAck).payload("v"),
          other, 1);
  EXPECT_EQ(segments(prog->drain()).size(), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 3u);

  // Hairpinned (out where it came in): both runs are the owner's.
  send(*prog, kIn, clientToServer().ports(40002, 8080).seq(1).flags(kPshAck).payload("h"), 1);
  forward(*prog, clientToServer().ports(40002, 8080).seq(1).flags(kPshAck).payload("h"), 1, 1);
  EXPECT_EQ(segments(prog->drain()).size(), 2u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 3u);
}

TEST(TcProgram, CaptureControlSkipsARange) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  // Skip [1100, 1500) of the server's direction (1: 10.0.0.2 > 10.0.0.1).
  l7tap_capture_ctl ctl{};
  ctl.skip_start[1] = 1100;
  ctl.skip_end[1] = 1500;
  ASSERT_EQ(prog->setCaptureCtl(canonicalKey(clientToServer().key()), ctl), 0);

  const auto b1 = serverToClient().seq(1000).flags(kPshAck).payloadSize(300);  // before: whole
  const auto b2 = serverToClient().seq(1300).flags(kPshAck).payloadSize(100);  // inside: nothing
  const auto b3 = serverToClient().seq(1400).flags(kPshAck).payloadSize(300);  // skip 100
  const auto b4 = serverToClient().seq(1500).flags(kPshAck).payloadSize(10);   // at the end: whole
  const auto b5 = clientToServer().seq(1200).flags(kPshAck).payloadSize(10);   // other direction
  for (const auto* b : {&b1, &b2, &b3, &b4, &b5}) send(*prog, kIn, *b);
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].seg().data_offset, 0u);
  EXPECT_EQ(events[0].seg().captured_len, 300u);
  EXPECT_EQ(events[1].seg().data_offset, 100u);
  EXPECT_EQ(events[1].seg().captured_len, 0u);
  EXPECT_EQ(events[1].seg().payload_len, 100u);
  EXPECT_EQ(events[2].seg().data_offset, 100u);
  EXPECT_EQ(events[2].seg().captured_len, 200u);
  const auto& p3 = b3.payloadBytes();
  EXPECT_EQ(events[2].data, std::vector<uint8_t>(p3.begin() + 100, p3.end()));
  EXPECT_EQ(events[3].seg().data_offset, 0u);
  EXPECT_EQ(events[3].seg().captured_len, 10u);
  EXPECT_EQ(events[4].seg().data_offset, 0u);
  EXPECT_EQ(events[4].seg().captured_len, 10u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_SKIPPED_BYTES), 200u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_PAYLOAD_BYTES), 720u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_COPIED_BYTES), 520u);
}

TEST(TcProgram, CaptureControlSkipRangeAcrossSequenceWrap) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  l7tap_capture_ctl ctl{};
  ctl.skip_start[0] = 0xffffff00u;
  ctl.skip_end[0] = 0x100;
  ASSERT_EQ(prog->setCaptureCtl(canonicalKey(clientToServer().key()), ctl), 0);
  send(*prog, kOut, clientToServer().seq(0xffffff80u).flags(kPshAck).payloadSize(512));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().data_offset, 0x180u);
  EXPECT_EQ(events[0].seg().captured_len, 512u - 0x180u);
}

TEST(TcProgram, CaptureControlL4OnlySendsOnlyConnectionEdges) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  l7tap_capture_ctl ctl{};
  ctl.l4_only = 1;
  ASSERT_EQ(prog->setCaptureCtl(canonicalKey(clientToServer().key()), ctl), 0);
  send(*prog, kOut, clientToServer().seq(1).flags(L7TAP_TCP_SYN));
  send(*prog, kOut, clientToServer().seq(2).ack(1).flags(kPshAck).payloadSize(700));
  send(*prog, kIn, serverToClient().seq(1).ack(702));
  send(*prog, kIn, serverToClient().seq(1).ack(702).flags(L7TAP_TCP_RST | L7TAP_TCP_ACK));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().tcp_flags, L7TAP_TCP_SYN);
  EXPECT_EQ(events[1].seg().tcp_flags, L7TAP_TCP_RST | L7TAP_TCP_ACK);
  EXPECT_EQ(events[1].seg().captured_len, 0u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_L4_ONLY), 4u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_COPIED_BYTES), 0u);
  // L4 counters still count every byte.
  const auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->bytes[0], 700u);
}

TEST(TcProgram, FullRingBufferIsCounted) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024, .ring_bytes = 4096});
  ASSERT_NE(prog, nullptr);
  const int packets = 20;
  for (int i = 0; i < packets; ++i) {
    send(*prog, kOut, clientToServer().seq(1 + 1400 * i).flags(kPshAck).payloadSize(1400));
  }
  const uint64_t full = prog->counter(L7TAP_CNT_RINGBUF_FULL);
  const auto events = prog->drain();
  EXPECT_GT(full, 0u);
  EXPECT_GT(events.size(), 0u);
  EXPECT_EQ(events.size() + full, static_cast<size_t>(packets));
  EXPECT_EQ(prog->counter(L7TAP_CNT_EVENTS), events.size());
  // What was lost is the payload of the events that did not fit: the holes
  // user space will see.
  EXPECT_EQ(prog->counter(L7TAP_CNT_RINGBUF_FULL_BYTES), full * 1400);
  // Drained, the ring takes events again.
  send(*prog, kOut, clientToServer().seq(1).flags(kPshAck).payloadSize(10));
  EXPECT_EQ(prog->drain().size(), 1u);
}

// wakeup_bytes: no wakeup until that much is queued (the daemon drains on a
// timer too); 0 wakes the reader for every event.
TEST(TcProgram, WakeupPolicy) {
  L7TAP_SKIP_UNLESS(missingRoot());
  {
    auto prog = mustLoad({.wakeup_bytes = 4000});
    ASSERT_NE(prog, nullptr);
    send(*prog, kOut, clientToServer().seq(1).flags(kPshAck).payloadSize(1000));
    EXPECT_TRUE(prog->poll(50).empty());
    EXPECT_EQ(prog->drain().size(), 1u);
    for (int i = 0; i < 4; ++i) {
      send(*prog, kOut, clientToServer().seq(1001 + 1000 * i).flags(kPshAck).payloadSize(1000));
    }
    EXPECT_EQ(prog->poll(1000).size(), 4u);
  }
  {
    auto prog = mustLoad({.wakeup_bytes = 0});
    ASSERT_NE(prog, nullptr);
    send(*prog, kOut, clientToServer().seq(1).flags(kPshAck).payloadSize(10));
    EXPECT_EQ(prog->poll(1000).size(), 1u);
  }
}

// --- The XDP program: the same events as the TC ingress program ---------------

constexpr uint32_t kXdpPass = XDP_PASS;

// The TC ingress program and the XDP program, each in its own loaded object
// (their own maps), fed the same frames with the same capture control.
struct TcAndXdp {
  std::unique_ptr<TcProgram> tc, xdp;
  std::vector<Event> tc_events, xdp_events;
};

TcAndXdp runBoth(const std::vector<std::vector<uint8_t>>& frames, const TcConfig& cfg = {},
                 const std::vector<std::pair<l7tap_flow_key, l7tap_capture_ctl>>& ctls = {},
                 uint32_t ifindex = 0) {
  TcAndXdp r;
  r.tc = mustLoad(cfg);
  r.xdp = mustLoad(cfg);
  if (r.tc == nullptr || r.xdp == nullptr) return r;
  for (const auto& [key, ctl] : ctls) {
    EXPECT_EQ(r.tc->setCaptureCtl(key, ctl), 0);
    EXPECT_EQ(r.xdp->setCaptureCtl(key, ctl), 0);
  }
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto t = r.tc->run(kIn, frames[i], ifindex);
    EXPECT_EQ(t.err, 0) << "frame " << i << ": " << strerror(-t.err);
    EXPECT_EQ(t.retval, kUnspec) << "frame " << i;
    const auto x = r.xdp->runXdp(frames[i], ifindex);
    EXPECT_EQ(x.err, 0) << "frame " << i << ": " << strerror(-x.err);
    EXPECT_EQ(x.retval, kXdpPass) << "frame " << i << ": the XDP program must always pass";
  }
  r.tc_events = r.tc->drain();
  r.xdp_events = r.xdp->drain();
  return r;
}

// Field by field, timestamps aside (each run has its own clock reading).
void expectSameEvent(const Event& tc, const Event& xdp, size_t i) {
  SCOPED_TRACE("event " + std::to_string(i));
  ASSERT_EQ(xdp.kind, tc.kind);
  ASSERT_EQ(tc.kind, L7TAP_EVENT_SEGMENT);
  EXPECT_EQ(xdp.sample_size, tc.sample_size);
  {
    const auto &a = tc.seg(), &b = xdp.seg();
    EXPECT_EQ(b.hdr.ifindex, a.hdr.ifindex);
    EXPECT_EQ(b.hdr.kind, a.hdr.kind);
    EXPECT_EQ(b.hdr.direction, a.hdr.direction);
    EXPECT_EQ(b.hdr.direction, L7TAP_DIR_INGRESS);
    EXPECT_EQ(std::memcmp(b.hdr.pad, a.hdr.pad, sizeof a.hdr.pad), 0);
    EXPECT_TRUE(keysEqual(b.key, a.key));
    EXPECT_EQ(b.seq, a.seq);
    EXPECT_EQ(b.ack, a.ack);
    EXPECT_EQ(b.payload_len, a.payload_len);
    EXPECT_EQ(b.captured_len, a.captured_len);
    EXPECT_EQ(b.data_offset, a.data_offset);
    EXPECT_EQ(b.tcp_window, a.tcp_window);
    EXPECT_EQ(b.tcp_flags, a.tcp_flags);
    EXPECT_EQ(b.capture_flags, a.capture_flags);
    EXPECT_EQ(xdp.data, tc.data);
  }
}

// The same events in the same order, the same kernel counters.
void expectSameAsTcIngress(const TcAndXdp& r) {
  ASSERT_NE(r.tc, nullptr);
  ASSERT_NE(r.xdp, nullptr);
  ASSERT_EQ(r.xdp_events.size(), r.tc_events.size());
  for (size_t i = 0; i < r.tc_events.size(); ++i) {
    expectSameEvent(r.tc_events[i], r.xdp_events[i], i);
  }
  for (int c = 0; c < L7TAP_CNT_MAX; ++c) {
    EXPECT_EQ(r.xdp->counter(static_cast<l7tap_counter>(c)),
              r.tc->counter(static_cast<l7tap_counter>(c)))
        << "counter " << c;
  }
  EXPECT_EQ(r.xdp->flowCount(), r.tc->flowCount());
}

TEST(XdpProgram, PlainSegmentIsTheTcIngressEvent) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const std::string body = "GET /api/user/10 HTTP/1.1\r\nHost: x\r\n\r\n";
  const auto b =
      clientToServer().seq(0x11223344).ack(0x55667788).flags(kPshAck).window(501).payload(body);
  const auto r = runBoth({b.build()});
  expectSameAsTcIngress(r);
  ASSERT_EQ(r.xdp_events.size(), 1u);
  const auto& e = r.xdp_events[0].seg();
  EXPECT_EQ(e.hdr.kind, L7TAP_EVENT_SEGMENT);
  EXPECT_EQ(e.hdr.direction, L7TAP_DIR_INGRESS);
  EXPECT_EQ(e.hdr.ifindex, 1u);  // BPF_PROG_TEST_RUN's default receive queue: lo
  EXPECT_TRUE(keysEqual(e.key, b.key()));
  EXPECT_EQ(e.seq, 0x11223344u);
  EXPECT_EQ(e.payload_len, body.size());
  EXPECT_EQ(std::string(r.xdp_events[0].data.begin(), r.xdp_events[0].data.end()), body);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_EVENTS), 1u);
}

TEST(XdpProgram, VlanTagsAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const auto r = runBoth({
      clientToServer().vlan(100).flags(kPshAck).payload("one tag").build(),
      clientToServer().vlan(200, 0x88a8).vlan(100).seq(2000).flags(kPshAck).payload("qinq").build(),
      PacketBuilder().ipv6("fd00::1", "fd00::2").vlan(7).flags(kPshAck).payload("v6").build(),
      clientToServer().vlan(1, 0x9100).vlan(2).vlan(3).flags(kPshAck).payload("three").build(),
      clientToServer().vlan(1).vlan(2).vlan(3).vlan(4).vlan(5).flags(kPshAck).payload("5").build(),
  });
  expectSameAsTcIngress(r);
  EXPECT_EQ(r.xdp_events.size(), 4u);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_NOT_TCP), 1u);
}

TEST(XdpProgram, Ipv6ExtensionHeadersAndOptionsAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto too_many = PacketBuilder().ipv6("fd00::1", "fd00::2").flags(kPshAck).payload("x");
  for (int i = 0; i < 9; ++i) too_many.ipv6Ext(IPPROTO_DSTOPTS);
  const auto r = runBoth({
      PacketBuilder()
          .ipv6("fd00::1", "fd00::2")
          .ports(40000, 443)
          .ipv6Ext(IPPROTO_HOPOPTS)
          .ipv6Ext(IPPROTO_ROUTING, 2)
          .ipv6Ext(IPPROTO_DSTOPTS, 1)
          .tcpOptions(3)
          .flags(kPshAck)
          .payload("hello over v6")
          .build(),
      clientToServer().ipv4Options(2).flags(kPshAck).payload("opts").build(),
      too_many.build(),
  });
  expectSameAsTcIngress(r);
  ASSERT_EQ(r.xdp_events.size(), 2u);
  EXPECT_EQ(std::string(r.xdp_events[0].data.begin(), r.xdp_events[0].data.end()), "hello over v6");
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_UNPARSABLE), 1u);
}

TEST(XdpProgram, WindowTruncationAndSizeClassesAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  {
    const auto r =
        runBoth({clientToServer().flags(kPshAck).payloadSize(3000).build()}, {.window = 1024});
    expectSameAsTcIngress(r);
    ASSERT_EQ(r.xdp_events.size(), 1u);
    EXPECT_EQ(r.xdp_events[0].seg().payload_len, 3000u);
    EXPECT_EQ(r.xdp_events[0].seg().captured_len, 1024u);
  }
  std::vector<std::vector<uint8_t>> frames;
  uint32_t seq = 1;
  for (size_t n : {1, 128, 129, 1025, 2049, 3400}) {
    frames.push_back(clientToServer().seq(seq).flags(kPshAck).payloadSize(n).build());
    seq += static_cast<uint32_t>(n);
  }
  // Ethernet padding is not payload.
  frames.push_back(clientToServer().seq(seq).ack(1).flags(kPshAck).payload("ab").padTo(60).build());
  const auto r = runBoth(frames, {.window = L7TAP_MAX_EVENT_PAYLOAD});
  expectSameAsTcIngress(r);
  ASSERT_EQ(r.xdp_events.size(), frames.size());
  EXPECT_EQ(r.xdp_events.back().seg().payload_len, 2u);
}

TEST(XdpProgram, CaptureControlSkipRangeAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  l7tap_capture_ctl ctl{};
  ctl.skip_start[1] = 1100;
  ctl.skip_end[1] = 1500;
  l7tap_capture_ctl l4only{};
  l4only.l4_only = 1;
  const auto other = clientToServer().ports(40001, 8080);
  const auto r = runBoth(
      {
          serverToClient().seq(1000).flags(kPshAck).payloadSize(300).build(),
          serverToClient().seq(1300).flags(kPshAck).payloadSize(100).build(),
          serverToClient().seq(1400).flags(kPshAck).payloadSize(300).build(),
          serverToClient().seq(1500).flags(kPshAck).payloadSize(10).build(),
          clientToServer().seq(1200).flags(kPshAck).payloadSize(10).build(),
          PacketBuilder(other).seq(5).flags(kPshAck).payloadSize(700).build(),
          PacketBuilder(other).seq(705).flags(L7TAP_TCP_RST).build(),
      },
      {}, {{canonicalKey(clientToServer().key()), ctl}, {canonicalKey(other.key()), l4only}});
  expectSameAsTcIngress(r);
  ASSERT_EQ(r.xdp_events.size(), 6u);  // 5 + the L4-only flow's RST
  EXPECT_EQ(r.xdp_events[2].seg().data_offset, 100u);
  EXPECT_EQ(r.xdp_events[2].seg().captured_len, 200u);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_SKIPPED_BYTES), 200u);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_L4_ONLY), 2u);
}

TEST(XdpProgram, FragmentsNonTcpAndMalformedAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  std::vector<uint8_t> arp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
  arp.resize(60, 0);
  const auto full = clientToServer().flags(kPshAck).payload("x").build();
  auto bad_ihl = full;
  bad_ihl[14] = 0x44;
  auto bad_doff = full;
  bad_doff[14 + 20 + 12] = 0x40;
  auto long_doff = clientToServer().flags(L7TAP_TCP_ACK).build();
  long_doff[14 + 20 + 12] = 0xf0;
  const auto r = runBoth({
      clientToServer().fragment(0, true).flags(kPshAck).payload("first").build(),
      clientToServer().fragment(185, false).flags(kPshAck).payload("last").build(),
      PacketBuilder().ipv6("fd00::1", "fd00::2").fragment(0, true).payload("v6 frag").build(),
      clientToServer().udp().payload("dns?").build(),
      PacketBuilder().ipv6("fd00::1", "fd00::2").udp().payload("quic").build(),
      arp,
      bad_ihl,
      std::vector<uint8_t>(full.begin(), full.begin() + 40),
      bad_doff,
      long_doff,
  });
  expectSameAsTcIngress(r);
  EXPECT_TRUE(r.xdp_events.empty());
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_FRAGMENTS), 3u);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_NOT_TCP), 3u);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_UNPARSABLE), 4u);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_PACKETS), 10u);
  EXPECT_EQ(r.xdp->flowCount(), 0u);
}

TEST(XdpProgram, ConnectionLifecycleAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const auto r = runBoth({
      clientToServer().seq(100).flags(L7TAP_TCP_SYN).build(),
      serverToClient().seq(500).ack(101).flags(L7TAP_TCP_SYN | L7TAP_TCP_ACK).build(),
      clientToServer().seq(101).ack(501).flags(kPshAck).payloadSize(300).build(),
      clientToServer().seq(101).ack(501).flags(kPshAck).payloadSize(300).build(),  // again
      serverToClient().seq(501).ack(401).window(0).build(),
      serverToClient().seq(501).ack(401).flags(L7TAP_TCP_RST | L7TAP_TCP_ACK).build(),
  });
  expectSameAsTcIngress(r);
  ASSERT_EQ(r.xdp_events.size(), 6u);
  const auto key = canonicalKey(clientToServer().key());
  const auto a = r.tc->flow(key), b = r.xdp->flow(key);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->ended, 1);
  EXPECT_EQ(b->retransmits[0], 1u);
  EXPECT_EQ(b->zero_windows[1], 1u);
  EXPECT_EQ(b->owner_ifindex, a->owner_ifindex);
}

// ctx->ingress_ifindex is the event's interface and the flow's owner.
TEST(XdpProgram, ReportsTheReceivingInterface) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const uint32_t other = otherIfindex();
  if (other == 0) GTEST_SKIP() << "no network device besides lo in this namespace";
  const auto r =
      runBoth({clientToServer().flags(kPshAck).payload("on other").build()}, {}, {}, other);
  expectSameAsTcIngress(r);
  ASSERT_EQ(r.xdp_events.size(), 1u);
  EXPECT_EQ(r.xdp_events[0].seg().hdr.ifindex, other);
  EXPECT_EQ(r.xdp->flow(canonicalKey(clientToServer().key()))->owner_ifindex, other);
}

// TC sees a pod-to-pod packet twice and lets the flow's first interface
// report it; XDP sees it once, where it is received: each interface reports
// what it receives (the requests on one veth, the responses on the other).
TEST(XdpProgram, EveryInterfaceReportsWhatItReceives) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const uint32_t other = otherIfindex();
  if (other == 0) GTEST_SKIP() << "no network device besides lo in this namespace";
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  for (const auto& [frame, ifindex] :
       {std::pair{clientToServer().seq(1).flags(kPshAck).payload("request").build(), 1u},
        std::pair{serverToClient().seq(1).ack(8).flags(kPshAck).payload("response").build(),
                  other}}) {
    const auto x = prog->runXdp(frame, ifindex);
    ASSERT_EQ(x.err, 0) << strerror(-x.err);
    EXPECT_EQ(x.retval, kXdpPass);
  }
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().hdr.ifindex, 1u);
  EXPECT_EQ(events[1].seg().hdr.ifindex, other);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER), 0u);
  const auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->owner_ifindex, 1u);
  EXPECT_EQ(fc->packets[0], 1u);
  EXPECT_EQ(fc->packets[1], 1u);
}

// One object: the XDP and TC programs share the flows map (and the ring
// buffer and counters), so a flow seen by XDP on ingress and by TC on egress
// of the same interface is one entry.
TEST(XdpProgram, SharesTheMapsWithTheTcPrograms) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto x = prog->runXdp(clientToServer().seq(1).flags(kPshAck).payload("req").build());
  ASSERT_EQ(x.err, 0);
  EXPECT_EQ(x.retval, kXdpPass);
  send(*prog, kOut, serverToClient().seq(1).ack(4).flags(kPshAck).payload("resp!"));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().hdr.direction, L7TAP_DIR_INGRESS);
  EXPECT_EQ(events[1].seg().hdr.direction, L7TAP_DIR_EGRESS);
  EXPECT_EQ(prog->flowCount(), 1u);
  const auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->bytes[0], 3u);
  EXPECT_EQ(fc->bytes[1], 5u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_EVENTS), 2u);
}

// Without XDP mode the XDP program is not loaded at all (its autoload is
// off), so the TC programs load on kernels that lack the XDP helpers.
TEST(XdpProgram, NotLoadedUnlessAskedFor) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.load_xdp = false});
  ASSERT_NE(prog, nullptr);
  EXPECT_LT(prog->xdpFd(), 0);
  send(*prog, kIn, clientToServer().flags(kPshAck).payload("tc only"));
  EXPECT_EQ(prog->drain().size(), 1u);
}

// --- The HTTP/2 frame walk (tc/frame_walk.h) -----------------------------------

// A built HTTP/2 byte stream; payload bytes depend on their stream offset.
struct H2Frames {
  std::vector<uint8_t> bytes;
  std::vector<uint32_t> starts;  // stream offset of each frame header

  H2Frames& add(uint8_t type, uint8_t flags, uint32_t len, uint8_t stream = 1) {
    starts.push_back(static_cast<uint32_t>(bytes.size()));
    bytes.insert(bytes.end(), {static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 8),
                               static_cast<uint8_t>(len), type, flags, 0, 0, 0, stream});
    for (uint32_t i = 0; i < len; ++i) {
      const size_t at = bytes.size();
      bytes.push_back(static_cast<uint8_t>((at * 131u + (at >> 8) * 7u + 3u) & 0xff));
    }
    return *this;
  }
  uint32_t size() const { return static_cast<uint32_t>(bytes.size()); }
  std::vector<uint8_t> slice(uint32_t from, uint32_t len) const {
    return std::vector<uint8_t>(bytes.begin() + from, bytes.begin() + from + len);
  }
};

constexpr uint8_t kH2Data = 0x0;
constexpr uint8_t kH2Headers = 0x1;
constexpr uint8_t kH2Settings = 0x4;
constexpr uint8_t kH2Unknown = 0x20;

// The server's direction (10.0.0.2 -> 10.0.0.1) is index 1 of the flow.
constexpr uint32_t kServerDir = 1;
constexpr uint32_t kClientDir = 0;

l7tap_flow_key flowKey() { return canonicalKey(clientToServer().key()); }

// A server packet with stream bytes [from, from + len) at seq base + from.
PacketBuilder h2Packet(const H2Frames& s, uint32_t base, uint32_t from, uint32_t len,
                       uint8_t flags = kPshAck) {
  return serverToClient().seq(base + from).ack(77).flags(flags).payload(s.slice(from, len));
}

struct Expected {
  uint32_t skip;
  uint32_t copy;
  uint32_t rest = 0;
};

// The segment events of one packet: they cover [from, from + len) of the
// stream contiguously with the given shapes, copy the stream's own bytes and
// are flagged as walked (later parts as parts).
void expectWalked(const std::vector<Event>& events, const H2Frames& s, uint32_t base, uint32_t from,
                  uint32_t len, const std::vector<Expected>& shapes,
                  const l7tap_flow_key& key = serverToClient().key()) {
  const auto segs = segments(events);
  ASSERT_EQ(segs.size(), shapes.size());
  uint32_t at = from;
  for (size_t i = 0; i < segs.size(); ++i) {
    SCOPED_TRACE("part " + std::to_string(i));
    const auto& e = segs[i].seg();
    EXPECT_EQ(e.seq, base + at);
    EXPECT_EQ(e.data_offset, shapes[i].skip);
    EXPECT_EQ(e.captured_len, shapes[i].copy);
    EXPECT_EQ(e.payload_len, shapes[i].skip + shapes[i].copy + shapes[i].rest);
    EXPECT_EQ(e.capture_flags, L7TAP_SEG_WALKED | (i > 0 ? L7TAP_SEG_PART : 0));
    EXPECT_EQ(e.ack, 77u);
    EXPECT_TRUE(keysEqual(e.key, key));
    if (e.captured_len == 0) {
      EXPECT_EQ(segs[i].sample_size, L7TAP_SEGMENT_EVENT_HEADER_SIZE);
    }
    EXPECT_EQ(segs[i].data, s.slice(at + e.data_offset, e.captured_len));
    at += e.payload_len;
  }
  EXPECT_EQ(at, from + len);
}

TEST(FrameWalk, SeveralFramesInOnePacket) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024});
  ASSERT_NE(prog, nullptr);
  const uint32_t base = 7000;
  H2Frames s;
  s.add(kH2Headers, 0x4, 100).add(kH2Data, 0, 3000).add(kH2Headers, 0x5, 50);
  ASSERT_EQ(s.size(), 3177u);
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, base), 0);
  send(*prog, kIn, h2Packet(s, base, 0, s.size()));
  // HEADERS whole, DATA header and 5 bytes; the DATA rest skipped, trailers.
  expectWalked(prog->drain(), s, base, 0, s.size(), {{0, 123}, {2995, 59}});
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALK_LOST), 0u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_EVENTS), 2u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_PAYLOAD_BYTES), 3177u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_COPIED_BYTES), 182u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_SKIPPED_BYTES), 2995u);
  const auto w = prog->frameWalk(flowKey(), kServerDir);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->state, L7TAP_WALK_ON);
  EXPECT_EQ(w->pos, base + s.size());
  EXPECT_EQ(w->next_hdr, base + s.size());
  EXPECT_EQ(w->copy_end, base + s.size());
  EXPECT_EQ(w->hdr_len, 0);
  // The flow's L4 counters see one packet.
  const auto fc = prog->flow(flowKey());
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->packets[kServerDir], 1u);
  EXPECT_EQ(fc->bytes[kServerDir], 3177u);
}

TEST(FrameWalk, OnlyTheArmedDirectionIsWalked) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 64});
  ASSERT_NE(prog, nullptr);
  H2Frames s;
  s.add(kH2Headers, 0x4, 100).add(kH2Data, 0, 1000);
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, 1000), 0);
  // The client's direction has no walk entry: the plain window.
  send(*prog, kOut, clientToServer().seq(1000).flags(kPshAck).payload(s.bytes));
  auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().capture_flags, 0);
  EXPECT_EQ(events[0].seg().captured_len, 64u);
  EXPECT_FALSE(prog->frameWalk(flowKey(), kClientDir).has_value());
  // Capture control without frame_walk: the entry is not looked at.
  l7tap_capture_ctl ctl{};
  ASSERT_EQ(prog->setCaptureCtl(flowKey(), ctl), 0);
  send(*prog, kIn, h2Packet(s, 1000, 0, s.size()));
  events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().capture_flags, 0);
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->state, L7TAP_WALK_ARMED);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 0u);
}

TEST(FrameWalk, FrameHeaderSplitAcrossPackets) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  for (const uint32_t base : {5000u, 0xffffffffu - 41u}) {
    for (uint32_t k = 0; k <= 9; ++k) {
      SCOPED_TRACE("base " + std::to_string(base) + ", " + std::to_string(k) +
                   " header bytes in the first packet");
      // Armed afresh each time (the same flow: its walk entry is replaced).
      H2Frames s;
      s.add(kH2Headers, 0x4, 30).add(kH2Data, 0, 1000).add(kH2Headers, 0x5, 30);
      const uint32_t cut = 39 + k;
      ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, base), 0);
      send(*prog, kIn, h2Packet(s, base, 0, cut));
      expectWalked(prog->drain(), s, base, 0, cut, {{0, cut}});
      const auto w = prog->frameWalk(flowKey(), kServerDir);
      ASSERT_TRUE(w.has_value());
      EXPECT_EQ(w->state, L7TAP_WALK_ON);
      EXPECT_EQ(w->pos, base + cut);
      if (k < 5) {
        EXPECT_EQ(w->hdr_len, k);
        EXPECT_EQ(w->next_hdr, base + 39);
      } else {
        EXPECT_EQ(w->hdr_len, 0);
        EXPECT_EQ(w->next_hdr, base + 39 + 1009);
        EXPECT_EQ(w->copy_end, base + 39 + 14);
      }
      send(*prog, kIn, h2Packet(s, base, cut, s.size() - cut));
      expectWalked(prog->drain(), s, base, cut, s.size() - cut, {{0, 14 - k}, {995, 39}});
      EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->pos, base + s.size());
    }
  }
}

TEST(FrameWalk, LargeDataFrameAcrossPackets) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const uint32_t base = 0xffff8000u;
  H2Frames s;
  s.add(kH2Headers, 0x4, 20).add(kH2Data, 0, 60000).add(kH2Headers, 0x5, 20);
  const uint32_t trailers = 29 + 60009;
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, base), 0);
  uint32_t middle = 0, packets = 0;
  for (uint32_t at = 0; at < s.size(); at += 3600, ++packets) {
    const uint32_t len = std::min<uint32_t>(3600, s.size() - at);
    SCOPED_TRACE("packet at " + std::to_string(at));
    send(*prog, kIn, h2Packet(s, base, at, len));
    const auto events = prog->drain();
    if (at == 0) {
      expectWalked(events, s, base, at, len, {{0, 43}, {3557, 0}});
    } else if (at + len <= trailers) {
      expectWalked(events, s, base, at, len, {{3600, 0}});  // header only
      middle++;
    } else {
      expectWalked(events, s, base, at, len, {{trailers - at, 29}});
    }
  }
  EXPECT_EQ(middle, 15u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), packets);
  EXPECT_EQ(prog->counter(L7TAP_CNT_COPIED_BYTES), 43u + 29u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_SKIPPED_BYTES), 60000u - 5u);
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->pos, base + s.size());
}

TEST(FrameWalk, ArmedInsideAPacket) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 100});
  ASSERT_NE(prog, nullptr);
  H2Frames s;
  for (int i = 0; i < 300; ++i) s.bytes.push_back(0xee);  // the end of an earlier frame
  s.add(kH2Headers, 0x4, 20).add(kH2Data, 0, 1000);
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, 1300), 0);
  // Before the boundary: plain, still armed.
  send(*prog, kIn, h2Packet(s, 1000, 0, 100));
  auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().capture_flags, 0);
  EXPECT_EQ(events[0].seg().captured_len, 100u);
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->state, L7TAP_WALK_ARMED);
  // Holding the boundary: the plain window of the 200 bytes before it (100
  // copied), then the walk.
  send(*prog, kIn, h2Packet(s, 1000, 100, s.size() - 100));
  expectWalked(prog->drain(), s, 1000, 100, s.size() - 100, {{0, 100, 100}, {0, 43}, {995, 0}});
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->state, L7TAP_WALK_ON);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 1u);
}

TEST(FrameWalk, HoleLosesTheWalkUntilRearmed) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024});
  ASSERT_NE(prog, nullptr);
  const uint32_t base = 9000;
  H2Frames s;
  // DATA frames at [29, 2038) and [2038, 8038): the hole below crosses a
  // frame header (a hole inside one frame would cost nothing).
  s.add(kH2Headers, 0x4, 20).add(kH2Data, 0, 2000).add(kH2Data, 0, 5991).add(kH2Headers, 0x5, 20);
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, base), 0);
  send(*prog, kIn, h2Packet(s, base, 0, 1400));
  prog->drain();
  // [1400, 2800) lost.
  send(*prog, kIn, h2Packet(s, base, 2800, 1400));
  auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().capture_flags, L7TAP_SEG_WALK_LOST);
  EXPECT_EQ(events[0].seg().data_offset, 0u);
  EXPECT_EQ(events[0].seg().captured_len, 1400u);  // lost: copied whole, past the window
  EXPECT_EQ(events[0].seg().payload_len, 1400u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALK_LOST), 1u);
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->state, L7TAP_WALK_LOST);
  // Still lost: copied whole (L7TAP_WALK_LOST_COPY bytes), flagged once only.
  send(*prog, kIn, h2Packet(s, base, 4200, 1400));
  events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().capture_flags, 0);
  EXPECT_EQ(events[0].seg().captured_len, 1400u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALK_LOST), 1u);
  // Re-armed at the trailers: walked again from the packet holding them.
  const uint32_t trailers = 29 + 8009;
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, base + trailers), 0);
  send(*prog, kIn, h2Packet(s, base, 5600, 1400));  // before them
  events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().capture_flags, 0);
  send(*prog, kIn, h2Packet(s, base, 7000, s.size() - 7000));
  expectWalked(prog->drain(), s, base, 7000, s.size() - 7000,
               {{0, 1024, trailers - 7000 - 1024}, {0, 29}});
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->state, L7TAP_WALK_ON);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 2u);
}

TEST(FrameWalk, RetransmissionsBeforeAndPastThePosition) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 512});
  ASSERT_NE(prog, nullptr);
  const uint32_t base = 100;
  H2Frames s;
  s.add(kH2Headers, 0x4, 1000).add(kH2Data, 0, 2000).add(kH2Headers, 0x5, 20);
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, base), 0);
  send(*prog, kIn, h2Packet(s, base, 0, 600));
  expectWalked(prog->drain(), s, base, 0, 600, {{0, 600}});
  // Wholly before the position: plain, the walk untouched.
  send(*prog, kIn, h2Packet(s, base, 0, 600));
  auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seg().capture_flags, 0);
  EXPECT_EQ(events[0].seg().captured_len, 512u);
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->pos, base + 600);
  // Running past it: the seen bytes skipped, the new ones walked.
  send(*prog, kIn, h2Packet(s, base, 300, 600));
  expectWalked(prog->drain(), s, base, 300, 600, {{300, 300}});
  send(*prog, kIn, h2Packet(s, base, 800, 700));
  expectWalked(prog->drain(), s, base, 800, 700, {{100, 123}, {477, 0}});
  send(*prog, kIn, h2Packet(s, base, 1500, s.size() - 1500));
  expectWalked(prog->drain(), s, base, 1500, s.size() - 1500, {{3018 - 1500, 29}});
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALK_LOST), 0u);
}

TEST(FrameWalk, FinOnlyOnTheLastPart) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  H2Frames s;
  s.add(kH2Headers, 0x4, 20).add(kH2Data, 0, 1000).add(kH2Headers, 0x5, 2000);
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, 1), 0);
  send(*prog, kIn, h2Packet(s, 1, 0, s.size(), kPshAck | L7TAP_TCP_FIN));
  const auto events = prog->drain();
  expectWalked(events, s, 1, 0, s.size(), {{0, 43}, {995, 2009}});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().tcp_flags, kPshAck);
  EXPECT_EQ(events[1].seg().tcp_flags, kPshAck | L7TAP_TCP_FIN);
  // The flow's counters see the FIN once.
  EXPECT_EQ(prog->flow(flowKey())->tcp_flags[kServerDir], kPshAck | L7TAP_TCP_FIN);
}

// The kernel's loop, step by step as l7tap_walk() runs it, bound included.
std::vector<Expected> referenceWalk(l7tap_frame_walk& w, uint32_t seq,
                                    const std::vector<uint8_t>& payload, uint32_t window,
                                    bool* lost, bool* whole = nullptr) {
  constexpr int kMaxSteps = 1024;  // L7TAP_WALK_MAX_STEPS
  std::vector<Expected> out;
  l7tap_walk_cursor c;
  *lost = false;
  if (whole) *whole = false;
  if (!l7tap_walk_begin(&w, seq, static_cast<uint32_t>(payload.size()), window, &c)) {
    *lost = c.lost;
    return out;
  }
  if (whole) *whole = c.whole;
  auto event = [&] {
    out.push_back({c.ev_skip, c.ev_copy, c.ev_rest});
    if (c.ev_last && c.lost) *lost = true;
  };
  for (int i = 0; i < kMaxSteps; ++i) {
    const int step = l7tap_walk_next(&w, &c);
    if (step == L7TAP_WALK_HEADER) {
      l7tap_walk_header(&w, &c, payload.data() + c.off);
    } else if (step == L7TAP_WALK_EVENT) {
      event();
      if (c.done) return out;
    } else if (step == L7TAP_WALK_DONE) {
      return out;
    }
  }
  l7tap_walk_abort(&w, &c);
  event();
  return out;
}

TEST(FrameWalk, StepBoundEndsTheWalk) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  // 365 frames of an unknown type with 1 payload byte: 3 steps each.
  H2Frames s;
  for (int i = 0; i < 365; ++i) s.add(kH2Unknown, 0, 1);
  ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, 50), 0);
  send(*prog, kIn, h2Packet(s, 50, 0, s.size()));
  const auto segs = segments(prog->drain());
  ASSERT_EQ(segs.size(), 1u);
  const auto& e = segs[0].seg();
  EXPECT_EQ(e.payload_len, 3650u);
  EXPECT_EQ(e.data_offset, 0u);
  EXPECT_EQ(e.captured_len, 341u * 10u + 5u);  // 1024 steps: 341 frames and a header
  EXPECT_EQ(e.capture_flags, L7TAP_SEG_WALKED | L7TAP_SEG_WALK_LOST);
  EXPECT_EQ(segs[0].data, s.slice(0, e.captured_len));
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALK_LOST), 1u);
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->state, L7TAP_WALK_LOST);

  l7tap_frame_walk w{};
  w.state = L7TAP_WALK_ARMED;
  w.next_hdr = 50;
  bool lost = false;
  const auto ref = referenceWalk(w, 50, s.bytes, 1024, &lost);
  ASSERT_EQ(ref.size(), 1u);
  EXPECT_EQ(ref[0].copy, e.captured_len);
  EXPECT_TRUE(lost);
}

// Random frame streams cut into random packets, with losses and
// retransmissions, armed at random boundaries: the kernel's events are the
// reference loop's (tc/frame_walk.h driven as l7tap_walk() drives it).
TEST(FrameWalk, SameEventsAsTheReferenceLoop) {
  L7TAP_SKIP_UNLESS(missingRoot());
  for (uint32_t iter = 0; iter < 12; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    std::mt19937 rng(iter * 2654435761u + 1u);
    auto pick = [&](uint32_t lo, uint32_t hi) {
      return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
    };
    const uint32_t windows[] = {1, 100, 1024, 4096};
    const uint32_t window = windows[iter % 4];
    auto prog = mustLoad({.window = window});
    ASSERT_NE(prog, nullptr);
    H2Frames s;
    while (s.size() < 80000) {
      const uint32_t t = pick(0, 9);
      const uint8_t type = t < 4 ? kH2Data : t < 7 ? kH2Headers : t < 8 ? kH2Settings : 0x10;
      const uint8_t flags = type == kH2Data && pick(0, 2) == 0 ? 0x8 : 0;
      const uint32_t l = pick(0, 9);
      const uint32_t len = l < 3 ? pick(0, 12) : l < 7 ? pick(0, 600) : pick(0, 20000);
      s.add(type, flags, len);
    }
    const uint32_t base = iter % 2 ? static_cast<uint32_t>(rng()) : 0u - 20000u;
    const uint32_t arm_at = s.starts[pick(0, 3)];
    ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, base + arm_at), 0);
    l7tap_frame_walk ref{};
    ref.state = L7TAP_WALK_ARMED;
    ref.next_hdr = base + arm_at;

    std::vector<std::pair<uint32_t, uint32_t>> packets;
    for (uint32_t at = 0; at < s.size();) {
      const uint32_t n = std::min(s.size() - at, pick(0, 3) == 0 ? pick(1, 12) : pick(1, 3600));
      packets.push_back({at, n});
      at += n;
    }
    uint64_t walked = 0, walk_lost = 0;
    for (size_t i = 0; i < packets.size(); ++i) {
      if (i > 3 && pick(0, 30) == 0) continue;  // lost
      std::vector<std::pair<uint32_t, uint32_t>> sent = {packets[i]};
      if (i > 0 && pick(0, 10) == 0) sent.push_back(packets[i - 1]);  // old
      if (i > 0 && pick(0, 10) == 0) {                                // past the position
        const uint32_t back = std::min(packets[i].first, pick(1, 500));
        const uint32_t len = std::min(3600u, std::min(s.size() - packets[i].first + back,
                                                      packets[i].second + back + pick(0, 200)));
        sent.push_back({packets[i].first - back, len});
      }
      for (const auto& [from, len] : sent) {
        SCOPED_TRACE("packet at " + std::to_string(from) + ", " + std::to_string(len));
        const uint8_t flags = pick(0, 20) == 0 ? (kPshAck | L7TAP_TCP_FIN) : kPshAck;
        send(*prog, kIn, h2Packet(s, base, from, len, flags));
        const auto segs = segments(prog->drain());
        bool lost = false, whole = false;
        const uint8_t before = ref.state;
        const auto want =
            referenceWalk(ref, base + from, s.slice(from, len), window, &lost, &whole);
        (void)before;
        if (whole) {
          // Lost (here or before): copied whole, in parts, flagged once.
          ASSERT_EQ(segs.size(), want.size());
          uint32_t at = from;
          for (size_t j = 0; j < segs.size(); ++j) {
            const auto& e = segs[j].seg();
            EXPECT_EQ(e.seq, base + at);
            EXPECT_EQ(e.data_offset, 0u);
            EXPECT_EQ(e.captured_len, e.payload_len);
            const bool last = j + 1 == segs.size();
            EXPECT_EQ(e.capture_flags,
                      (j > 0 ? L7TAP_SEG_PART : 0) | (last && lost ? L7TAP_SEG_WALK_LOST : 0));
            EXPECT_EQ(segs[j].data, s.slice(at, e.captured_len));
            at += e.payload_len;
          }
          EXPECT_EQ(at, from + len);
          walk_lost += lost;
          continue;
        }
        if (want.empty()) {
          // The plain window (lost here when the walk was on or armed and
          // the whole-copy budget is spent).
          ASSERT_EQ(segs.size(), 1u);
          const bool lost_here = lost;
          EXPECT_EQ(segs[0].seg().capture_flags, lost_here ? L7TAP_SEG_WALK_LOST : 0);
          EXPECT_EQ(segs[0].seg().captured_len, std::min(len, window));
          walk_lost += lost_here;
          continue;
        }
        walked++;
        walk_lost += lost;
        ASSERT_NO_FATAL_FAILURE(expectWalked(segs, s, base, from, len, want));
        for (size_t j = 0; j < segs.size(); ++j) {
          const uint8_t f = segs[j].seg().tcp_flags;
          EXPECT_EQ(f, j + 1 == segs.size() ? flags : kPshAck);
        }
        if (lost) {
          EXPECT_NE(segs.back().seg().capture_flags & L7TAP_SEG_WALK_LOST, 0);
        }
      }
      const auto w = prog->frameWalk(flowKey(), kServerDir);
      ASSERT_TRUE(w.has_value());
      EXPECT_EQ(w->state, ref.state);
      if (ref.state == L7TAP_WALK_ON) {
        EXPECT_EQ(w->pos, ref.pos);
        EXPECT_EQ(w->next_hdr, ref.next_hdr);
        EXPECT_EQ(w->copy_end, ref.copy_end);
        EXPECT_EQ(w->hdr_len, ref.hdr_len);
      }
      if (ref.state == L7TAP_WALK_LOST && pick(0, 2) == 0) {
        // Re-armed at the next frame header after what was sent.
        const uint32_t end = packets[i].first + packets[i].second;
        const auto next = std::lower_bound(s.starts.begin(), s.starts.end(), end);
        if (next != s.starts.end()) {
          ASSERT_EQ(prog->armFrameWalk(flowKey(), kServerDir, base + *next), 0);
          ref = {};
          ref.state = L7TAP_WALK_ARMED;
          ref.next_hdr = base + *next;
        }
      }
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), walked);
    EXPECT_EQ(prog->counter(L7TAP_CNT_WALK_LOST), walk_lost);
    EXPECT_GT(walked, 10u);
  }
}

// The XDP program walks as the TC ingress program does.
TEST(XdpProgram, FrameWalkAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  H2Frames s;
  s.add(kH2Settings, 0, 18).add(kH2Headers, 0x4, 200).add(kH2Data, 0x8, 9000);
  s.add(kH2Data, 0, 100).add(kH2Headers, 0x5, 40);
  for (int i = 0; i < 360; ++i) s.add(kH2Unknown, 0, 1);  // past the step bound
  s.add(kH2Headers, 0x4, 30);
  ASSERT_EQ(s.starts[4], 9354u);
  ASSERT_EQ(s.size(), 13042u);
  const uint32_t base = 0xfffff800u;
  std::vector<std::vector<uint8_t>> frames;
  // Split headers, a DATA payload across packets, a hole inside it ([7431,
  // 9000): the frame's end is known, the walk goes on), re-armed at 9354
  // (where it already was), where the step bound loses it.
  const std::vector<std::pair<uint32_t, uint32_t>> cuts = {
      {0, 100}, {100, 128}, {228, 3}, {231, 3600}, {3831, 3600}, {9000, 354}, {9354, 3649}};
  for (const auto& [from, len] : cuts) frames.push_back(h2Packet(s, base, from, len).build());
  frames.push_back(h2Packet(s, base, 13003, 39, kPshAck | L7TAP_TCP_FIN).build());

  TcAndXdp r;
  r.tc = mustLoad();
  r.xdp = mustLoad();
  ASSERT_NE(r.tc, nullptr);
  ASSERT_NE(r.xdp, nullptr);
  ASSERT_EQ(r.tc->armFrameWalk(flowKey(), kServerDir, base), 0);
  ASSERT_EQ(r.xdp->armFrameWalk(flowKey(), kServerDir, base), 0);
  for (size_t i = 0; i < frames.size(); ++i) {
    ASSERT_EQ(r.tc->run(kIn, frames[i]).err, 0);
    const auto x = r.xdp->runXdp(frames[i]);
    ASSERT_EQ(x.err, 0);
    EXPECT_EQ(x.retval, kXdpPass);
    if (i == 5) {
      ASSERT_EQ(r.tc->armFrameWalk(flowKey(), kServerDir, base + 9354), 0);
      ASSERT_EQ(r.xdp->armFrameWalk(flowKey(), kServerDir, base + 9354), 0);
    }
  }
  r.tc_events = r.tc->drain();
  r.xdp_events = r.xdp->drain();
  expectSameAsTcIngress(r);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_WALKED), 7u);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_WALK_LOST), 1u);
  size_t parts = 0;
  for (const auto& e : segments(r.xdp_events))
    parts += (e.seg().capture_flags & L7TAP_SEG_PART) != 0;
  EXPECT_EQ(parts, 1u);
  const auto a = r.tc->frameWalk(flowKey(), kServerDir),
             b = r.xdp->frameWalk(flowKey(), kServerDir);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(std::memcmp(&*a, &*b, sizeof *a), 0);
}

// --- The capture's own arming on a first payload (l7tap_walk_arm_first) --------

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// A client stream: the preface, its SETTINGS, a request's HEADERS, a body.
H2Frames clientPrefaceStream() {
  H2Frames s;
  s.bytes.assign(kPreface, kPreface + L7TAP_H2_PREFACE_LEN);
  s.add(kH2Settings, 0, 18, 0).add(kH2Headers, 0x4, 100).add(kH2Data, 0, 2000);
  return s;
}

// A server stream: its SETTINGS, an ACK of the client's, HEADERS, a body.
H2Frames serverSettingsStream() {
  H2Frames s;
  s.add(kH2Settings, 0, 12, 0).add(kH2Settings, 0x1, 0, 0).add(kH2Headers, 0x4, 120);
  s.add(kH2Data, 0, 3000);
  return s;
}

constexpr uint32_t kClientIsn = 3000;  // the client's first payload byte: kClientIsn + 1
constexpr uint32_t kServerIsn = 0xfffffff0u;

PacketBuilder clientPacket(const H2Frames& s, uint32_t from, uint32_t len,
                           uint8_t flags = kPshAck) {
  return clientToServer()
      .seq(kClientIsn + 1 + from)
      .ack(77)
      .flags(flags)
      .payload(s.slice(from, len));
}

// The three-way handshake: no payload, so not a first payload.
void handshake(TcProgram& p) {
  send(p, kOut, clientToServer().seq(kClientIsn).flags(L7TAP_TCP_SYN));
  send(p, kIn,
       serverToClient().seq(kServerIsn).ack(kClientIsn + 1).flags(L7TAP_TCP_SYN | L7TAP_TCP_ACK));
  send(p, kOut, clientToServer().seq(kClientIsn + 1).ack(kServerIsn + 1).flags(L7TAP_TCP_ACK));
  p.drain();
}

TEST(FrameWalkArm, ClientPrefaceArmsAfterThePreface) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024, .frame_walk = true});
  ASSERT_NE(prog, nullptr);
  handshake(*prog);
  EXPECT_FALSE(prog->captureCtl(flowKey()).has_value());
  const H2Frames s = clientPrefaceStream();
  ASSERT_EQ(s.size(), 24u + 27u + 109u + 2009u);
  send(*prog, kOut, clientPacket(s, 0, s.size()));
  // The preface, then the walk from the SETTINGS frame: the preface, SETTINGS
  // and HEADERS whole and the DATA frame's header and prefix in one event,
  // the rest of the DATA frame skipped.
  expectWalked(prog->drain(), s, kClientIsn + 1, 0, s.size(), {{0, 24 + 27 + 109 + 14}, {1995, 0}},
               clientToServer().key());
  const auto ctl = prog->captureCtl(flowKey());
  ASSERT_TRUE(ctl.has_value());
  EXPECT_EQ(ctl->frame_walk, 1);
  EXPECT_EQ(ctl->l4_only, 0);
  EXPECT_EQ(ctl->skip_start[0], ctl->skip_end[0]);
  const auto w = prog->frameWalk(flowKey(), kClientDir);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->state, L7TAP_WALK_ON);
  EXPECT_EQ(w->pos, kClientIsn + 1 + s.size());
  EXPECT_EQ(w->next_hdr, kClientIsn + 1 + s.size());
  EXPECT_FALSE(prog->frameWalk(flowKey(), kServerDir).has_value());
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALK_LOST), 0u);

  // The server's first payload, a SETTINGS frame: its direction is armed at
  // the frame (the capture control entry exists already).
  const H2Frames r = serverSettingsStream();
  send(*prog, kIn, serverToClient().seq(kServerIsn + 1).ack(77).flags(kPshAck).payload(r.bytes));
  expectWalked(prog->drain(), r, kServerIsn + 1, 0, r.size(), {{0, 21 + 9 + 129 + 14}, {2995, 0}});
  const auto ws = prog->frameWalk(flowKey(), kServerDir);
  ASSERT_TRUE(ws.has_value());
  EXPECT_EQ(ws->state, L7TAP_WALK_ON);
  EXPECT_EQ(ws->pos, kServerIsn + 1 + r.size());
  EXPECT_EQ(prog->captureCtl(flowKey())->frame_walk, 1);
  // The client's walk was left alone.
  const auto wc = prog->frameWalk(flowKey(), kClientDir);
  ASSERT_TRUE(wc.has_value());
  EXPECT_EQ(std::memcmp(&*wc, &*w, sizeof *w), 0);
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 2u);
}

TEST(FrameWalkArm, ServerSettingsArmsAtTheFrame) {
  L7TAP_SKIP_UNLESS(missingRoot());
  // A small window: the walk copies whole frames whatever the window.
  auto prog = mustLoad({.window = 100, .frame_walk = true});
  ASSERT_NE(prog, nullptr);
  const H2Frames s = serverSettingsStream();
  ASSERT_EQ(s.size(), 21u + 9u + 129u + 3009u);
  const uint32_t base = kServerIsn + 1;  // across 2^32
  send(*prog, kIn, h2Packet(s, base, 0, 2000));
  expectWalked(prog->drain(), s, base, 0, 2000, {{0, 21 + 9 + 129 + 14}, {2000 - 173, 0}});
  ASSERT_TRUE(prog->captureCtl(flowKey()).has_value());
  EXPECT_EQ(prog->captureCtl(flowKey())->frame_walk, 1);
  auto w = prog->frameWalk(flowKey(), kServerDir);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->state, L7TAP_WALK_ON);
  EXPECT_EQ(w->pos, base + 2000);
  EXPECT_EQ(w->next_hdr, base + s.size());
  EXPECT_FALSE(prog->frameWalk(flowKey(), kClientDir).has_value());
  // The next packet is walked on (the rest of the DATA frame skipped).
  send(*prog, kIn, h2Packet(s, base, 2000, s.size() - 2000));
  expectWalked(prog->drain(), s, base, 2000, s.size() - 2000, {{s.size() - 2000, 0}});
  EXPECT_EQ(prog->frameWalk(flowKey(), kServerDir)->pos, base + s.size());
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 2u);
}

TEST(FrameWalkArm, NothingArmedWhenTheConfigSaysNo) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024});
  ASSERT_NE(prog, nullptr);
  const H2Frames c = clientPrefaceStream();
  const H2Frames s = serverSettingsStream();
  send(*prog, kOut, clientPacket(c, 0, c.size()));
  send(*prog, kIn, h2Packet(s, kServerIsn + 1, 0, s.size()));
  const auto segs = segments(prog->drain());
  ASSERT_EQ(segs.size(), 2u);
  for (const auto& e : segs) {
    EXPECT_EQ(e.seg().capture_flags, 0);
    EXPECT_EQ(e.seg().captured_len, 1024u);
    EXPECT_EQ(e.seg().data_offset, 0u);
  }
  EXPECT_FALSE(prog->captureCtl(flowKey()).has_value());
  EXPECT_FALSE(prog->frameWalk(flowKey(), kClientDir).has_value());
  EXPECT_FALSE(prog->frameWalk(flowKey(), kServerDir).has_value());
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 0u);
}

TEST(FrameWalkArm, OnlyTheFirstPayloadArms) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const H2Frames c = clientPrefaceStream();
  {
    SCOPED_TRACE("the preface after other bytes");
    auto prog = mustLoad({.window = 1024, .frame_walk = true});
    ASSERT_NE(prog, nullptr);
    handshake(*prog);
    send(*prog, kOut, clientToServer().seq(kClientIsn + 1).flags(kPshAck).payload("hello there"));
    send(*prog, kOut, clientToServer().seq(kClientIsn + 12).flags(kPshAck).payload(c.bytes));
    const auto segs = segments(prog->drain());
    ASSERT_EQ(segs.size(), 2u);
    EXPECT_EQ(segs[1].seg().capture_flags, 0);
    EXPECT_EQ(segs[1].seg().captured_len, 1024u);
    EXPECT_FALSE(prog->captureCtl(flowKey()).has_value());
    EXPECT_FALSE(prog->frameWalk(flowKey(), kClientDir).has_value());
  }
  {
    SCOPED_TRACE("a first payload shorter than a frame header");
    auto prog = mustLoad({.window = 1024, .frame_walk = true});
    ASSERT_NE(prog, nullptr);
    send(*prog, kOut, clientPacket(c, 0, 8));
    send(*prog, kOut, clientPacket(c, 8, c.size() - 8));
    const auto segs = segments(prog->drain());
    ASSERT_EQ(segs.size(), 2u);
    EXPECT_EQ(segs[1].seg().capture_flags, 0);
    EXPECT_FALSE(prog->captureCtl(flowKey()).has_value());
  }
  {
    SCOPED_TRACE("a retransmission of the first payload");
    auto prog = mustLoad({.window = 1024, .frame_walk = true});
    ASSERT_NE(prog, nullptr);
    handshake(*prog);
    send(*prog, kOut, clientPacket(c, 0, 500));
    expectWalked(prog->drain(), c, kClientIsn + 1, 0, 500, {{0, 174}, {326, 0}},
                 clientToServer().key());
    const auto w = prog->frameWalk(flowKey(), kClientDir);
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->state, L7TAP_WALK_ON);
    // Not re-armed at the preface (which would walk it anew): wholly before
    // the walk's position, plain.
    send(*prog, kOut, clientPacket(c, 0, 500));
    const auto segs = segments(prog->drain());
    ASSERT_EQ(segs.size(), 1u);
    EXPECT_EQ(segs[0].seg().capture_flags, 0);
    EXPECT_EQ(segs[0].seg().captured_len, 500u);
    const auto after = prog->frameWalk(flowKey(), kClientDir);
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(std::memcmp(&*after, &*w, sizeof *w), 0);
    EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 1u);
    // A second request on the connection starting with preface-like bytes
    // (a later packet): not armed either; the walk goes on.
    H2Frames more = c;
    more.bytes.resize(500);
    more.bytes.insert(more.bytes.end(), kPreface, kPreface + L7TAP_H2_PREFACE_LEN);
    send(*prog, kOut, clientPacket(more, 500, 24));
    const auto later = segments(prog->drain());
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(later[0].seg().capture_flags, L7TAP_SEG_WALKED);
    EXPECT_EQ(later[0].seg().data_offset, 24u);  // inside the DATA frame: skipped
    EXPECT_EQ(prog->frameWalk(flowKey(), kClientDir)->pos, kClientIsn + 1 + 524);
  }
}

TEST(FrameWalkArm, Http1FirstPayloadArmsNothing) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024, .frame_walk = true});
  ASSERT_NE(prog, nullptr);
  handshake(*prog);
  const std::string get = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  send(*prog, kOut, clientToServer().seq(kClientIsn + 1).flags(kPshAck).payload(get));
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  send(*prog, kIn, serverToClient().seq(kServerIsn + 1).flags(kPshAck).payload(ok));
  const auto segs = segments(prog->drain());
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].seg().capture_flags, 0);
  EXPECT_EQ(segs[0].seg().captured_len, get.size());
  EXPECT_EQ(segs[1].seg().capture_flags, 0);
  EXPECT_FALSE(prog->captureCtl(flowKey()).has_value());
  EXPECT_FALSE(prog->frameWalk(flowKey(), kClientDir).has_value());
  EXPECT_FALSE(prog->frameWalk(flowKey(), kServerDir).has_value());
}

// A first payload that starts with a frame header like SETTINGS: armed only
// for a SETTINGS frame without flags on stream 0 whose length is a multiple
// of 6 and at most 16384.
struct FirstFrame {
  const char* what;
  uint8_t type;
  uint8_t flags;
  uint32_t len;
  uint8_t stream;
  bool armed;
};

const FirstFrame kFirstFrames[] = {
    {"SETTINGS", kH2Settings, 0, 18, 0, true},
    {"empty SETTINGS", kH2Settings, 0, 0, 0, true},
    {"largest SETTINGS", kH2Settings, 0, 16380, 0, true},
    {"SETTINGS ACK", kH2Settings, 0x1, 0, 0, false},
    {"SETTINGS with another flag", kH2Settings, 0x20, 6, 0, false},
    {"SETTINGS length not a multiple of 6", kH2Settings, 0, 7, 0, false},
    {"SETTINGS length 16386", kH2Settings, 0, 16386, 0, false},
    {"SETTINGS on stream 1", kH2Settings, 0, 6, 1, false},
    {"HEADERS", kH2Headers, 0x4, 12, 0, false},
    {"DATA", kH2Data, 0, 12, 0, false},
};

TEST(FrameWalkArm, OnlyAPlainSettingsFrameArms) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024, .frame_walk = true});
  ASSERT_NE(prog, nullptr);
  uint16_t port = 41000;
  for (const FirstFrame& f : kFirstFrames) {
    for (const uint32_t extra : {0u, 30u}) {  // the header alone (9 bytes), or more
      SCOPED_TRACE(std::string(f.what) + ", " + std::to_string(9 + extra) + " bytes");
      H2Frames s;
      s.add(f.type, f.flags, f.len, f.stream);
      s.bytes.resize(9 + extra, 0x42);
      const PacketBuilder b = serverToClient().ports(8080, port++).seq(500).ack(77).flags(kPshAck);
      const l7tap_flow_key key = canonicalKey(b.key());
      send(*prog, kIn, PacketBuilder(b).payload(s.bytes));
      const auto segs = segments(prog->drain());
      l7tap_frame_walk ref{};
      const uint32_t n = s.size() >= L7TAP_H2_PREFACE_LEN ? L7TAP_H2_PREFACE_LEN : 9;
      ASSERT_EQ(l7tap_walk_arm_first(s.bytes.data(), n, 500, &ref), f.armed ? 1 : 0);
      EXPECT_EQ(prog->captureCtl(key).has_value(), f.armed);
      const auto w = prog->frameWalk(key, kServerDir);
      EXPECT_EQ(w.has_value(), f.armed);
      if (f.armed) {
        // Walked from the frame, as the reference loop walks it.
        EXPECT_EQ(prog->captureCtl(key)->frame_walk, 1);
        bool lost = false;
        const auto want = referenceWalk(ref, 500, s.bytes, 1024, &lost);
        EXPECT_FALSE(lost);
        ASSERT_NO_FATAL_FAILURE(expectWalked(segs, s, 500, 0, s.size(), want, b.key()));
        ASSERT_TRUE(w.has_value());
        EXPECT_EQ(w->state, L7TAP_WALK_ON);
        EXPECT_EQ(w->pos, 500u + s.size());
        EXPECT_EQ(w->next_hdr, ref.next_hdr);
        EXPECT_EQ(w->copy_end, ref.copy_end);
      } else {
        ASSERT_EQ(segs.size(), 1u);
        EXPECT_EQ(segs[0].seg().capture_flags, 0);
        EXPECT_EQ(segs[0].seg().captured_len, s.size());
      }
    }
  }
}

TEST(FrameWalkArm, L4OnlyFlowIsNotArmed) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad({.window = 1024, .frame_walk = true});
  ASSERT_NE(prog, nullptr);
  l7tap_capture_ctl ctl{};
  ctl.l4_only = 1;
  ASSERT_EQ(prog->setCaptureCtl(flowKey(), ctl), 0);
  const H2Frames c = clientPrefaceStream();
  const H2Frames s = serverSettingsStream();
  send(*prog, kOut, clientPacket(c, 0, c.size()));
  send(*prog, kIn, h2Packet(s, kServerIsn + 1, 0, s.size()));
  EXPECT_TRUE(segments(prog->drain()).empty());
  EXPECT_EQ(prog->counter(L7TAP_CNT_L4_ONLY), 2u);
  const auto after = prog->captureCtl(flowKey());
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->l4_only, 1);
  EXPECT_EQ(after->frame_walk, 0);
  EXPECT_FALSE(prog->frameWalk(flowKey(), kClientDir).has_value());
  EXPECT_FALSE(prog->frameWalk(flowKey(), kServerDir).has_value());
  EXPECT_EQ(prog->counter(L7TAP_CNT_WALKED), 0u);
}

// The XDP program arms as the TC ingress program does.
TEST(XdpProgram, FirstPayloadArmsAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const H2Frames s = serverSettingsStream();
  const uint32_t base = kServerIsn + 1;
  std::vector<std::vector<uint8_t>> frames = {
      serverToClient().seq(kServerIsn).ack(1).flags(L7TAP_TCP_SYN | L7TAP_TCP_ACK).build(),
      h2Packet(s, base, 0, 1000).build(), h2Packet(s, base, 0, 1000).build(),
      h2Packet(s, base, 1000, s.size() - 1000).build()};
  TcAndXdp r;
  r.tc = mustLoad({.frame_walk = true});
  r.xdp = mustLoad({.frame_walk = true});
  ASSERT_NE(r.tc, nullptr);
  ASSERT_NE(r.xdp, nullptr);
  for (const auto& f : frames) {
    ASSERT_EQ(r.tc->run(kIn, f).err, 0);
    const auto x = r.xdp->runXdp(f);
    ASSERT_EQ(x.err, 0);
    EXPECT_EQ(x.retval, kXdpPass);
  }
  r.tc_events = r.tc->drain();
  r.xdp_events = r.xdp->drain();
  expectSameAsTcIngress(r);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_WALKED), 2u);
  const auto a = r.tc->frameWalk(flowKey(), kServerDir),
             b = r.xdp->frameWalk(flowKey(), kServerDir);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->state, L7TAP_WALK_ON);
  EXPECT_EQ(std::memcmp(&*a, &*b, sizeof *a), 0);
  ASSERT_TRUE(r.xdp->captureCtl(flowKey()).has_value());
  EXPECT_EQ(r.xdp->captureCtl(flowKey())->frame_walk, 1);
}

}  // namespace
}  // namespace l7tap::testing
