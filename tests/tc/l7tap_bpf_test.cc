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
#include <time.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

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

// Any device of this network namespace other than the loopback.
uint32_t otherIfindex() {
  uint32_t found = 0;
  if (struct if_nameindex* list = if_nameindex()) {
    for (struct if_nameindex* i = list; i->if_index != 0; ++i) {
      if (i->if_index > 1) {
        found = i->if_index;
        break;
      }
    }
    if_freenameindex(list);
  }
  return found;
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
  auto b = PacketBuilder().ipv6("fd00::1", "fd00::2").flags(kPshAck).payload("x");
  for (int i = 0; i < 7; ++i) b.ipv6Ext(IPPROTO_DSTOPTS);
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

  // A third tag is beyond what the program parses.
  send(*prog, kOut, clientToServer().vlan(1).vlan(2).vlan(3).flags(kPshAck).payload("x"));
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

TEST(TcProgram, FlowEndOnRst) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().seq(1).ack(1).flags(kPshAck).payload("req"));
  send(*prog, kIn, serverToClient().seq(1).flags(L7TAP_TCP_RST));
  send(*prog, kIn, serverToClient().seq(1).flags(L7TAP_TCP_RST));  // no second flow end
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].kind, L7TAP_EVENT_SEGMENT);
  EXPECT_EQ(events[1].seg().tcp_flags, L7TAP_TCP_RST);
  ASSERT_EQ(events[2].kind, L7TAP_EVENT_FLOW_END);
  EXPECT_EQ(events[3].kind, L7TAP_EVENT_SEGMENT);
  const auto& end = events[2].flow_end;
  EXPECT_EQ(events[2].sample_size, sizeof(l7tap_flow_end_event));
  EXPECT_EQ(end.hdr.kind, L7TAP_EVENT_FLOW_END);
  EXPECT_EQ(end.hdr.direction, L7TAP_DIR_INGRESS);
  EXPECT_EQ(end.hdr.ifindex, 1u);
  EXPECT_TRUE(keysEqual(end.key, canonicalKey(clientToServer().key())));
  EXPECT_EQ(end.counters.packets[0], 1u);
  EXPECT_EQ(end.counters.packets[1], 1u);
  EXPECT_EQ(end.counters.bytes[0], 3u);
  EXPECT_EQ(end.counters.tcp_flags[1], L7TAP_TCP_RST);
  EXPECT_EQ(end.counters.ended, 1);
  // The entry stays for the daemon's sweep.
  const auto fc = prog->flow(end.key);
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->ended, 1);
  EXPECT_EQ(fc->packets[1], 2u);
}

TEST(TcProgram, FlowEndAfterFinInBothDirections) {
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
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, L7TAP_EVENT_SEGMENT);
  ASSERT_EQ(events[1].kind, L7TAP_EVENT_FLOW_END);
  EXPECT_EQ(events[1].flow_end.counters.tcp_flags[0] & L7TAP_TCP_FIN, L7TAP_TCP_FIN);
  EXPECT_EQ(events[1].flow_end.counters.tcp_flags[1] & L7TAP_TCP_FIN, L7TAP_TCP_FIN);
  EXPECT_EQ(events[1].flow_end.counters.packets[0], 2u);
  EXPECT_EQ(events[2].kind, L7TAP_EVENT_SEGMENT);
}

// A SYN on an ended flow is a new connection on the same ports: the entry
// starts afresh, and gets its own flow end.
TEST(TcProgram, SynReopensEndedFlow) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  send(*prog, kOut, clientToServer().seq(1).ack(1).flags(kPshAck).payloadSize(50));
  send(*prog, kIn, serverToClient().flags(L7TAP_TCP_RST));
  send(*prog, kOut, clientToServer().seq(5000).flags(L7TAP_TCP_SYN));
  const auto fc = prog->flow(canonicalKey(clientToServer().key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->ended, 0);
  EXPECT_EQ(fc->packets[0], 1u);
  EXPECT_EQ(fc->packets[1], 0u);
  EXPECT_EQ(fc->bytes[0], 0u);
  EXPECT_NE(fc->syn_ns, 0u);
  send(*prog, kIn, serverToClient().flags(L7TAP_TCP_RST));
  const auto events = prog->drain();
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](const Event& e) { return e.kind == L7TAP_EVENT_FLOW_END; }),
            2);
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
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].seg().tcp_flags, L7TAP_TCP_SYN);
  EXPECT_EQ(events[1].seg().tcp_flags, L7TAP_TCP_RST | L7TAP_TCP_ACK);
  EXPECT_EQ(events[1].seg().captured_len, 0u);
  EXPECT_EQ(events[2].kind, L7TAP_EVENT_FLOW_END);
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
  EXPECT_EQ(xdp.sample_size, tc.sample_size);
  if (tc.kind == L7TAP_EVENT_SEGMENT) {
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
    EXPECT_EQ(b.pad, a.pad);
    EXPECT_EQ(xdp.data, tc.data);
  } else {
    const auto &a = tc.flow_end, &b = xdp.flow_end;
    EXPECT_EQ(b.hdr.ifindex, a.hdr.ifindex);
    EXPECT_EQ(b.hdr.direction, a.hdr.direction);
    EXPECT_TRUE(keysEqual(b.key, a.key));
    const auto &c = a.counters, &d = b.counters;
    for (int dir = 0; dir < 2; ++dir) {
      EXPECT_EQ(d.packets[dir], c.packets[dir]);
      EXPECT_EQ(d.bytes[dir], c.bytes[dir]);
      EXPECT_EQ(d.retransmits[dir], c.retransmits[dir]);
      EXPECT_EQ(d.zero_windows[dir], c.zero_windows[dir]);
      EXPECT_EQ(d.next_seq[dir], c.next_seq[dir]);
      EXPECT_EQ(d.tcp_flags[dir], c.tcp_flags[dir]);
    }
    EXPECT_EQ(d.syn_ns != 0, c.syn_ns != 0);
    EXPECT_EQ(d.synack_ns != 0, c.synack_ns != 0);
    EXPECT_EQ(d.owner_ifindex, c.owner_ifindex);
    EXPECT_EQ(d.ended, c.ended);
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
      clientToServer().vlan(1).vlan(2).vlan(3).flags(kPshAck).payload("three tags").build(),
  });
  expectSameAsTcIngress(r);
  EXPECT_EQ(r.xdp_events.size(), 3u);
  EXPECT_EQ(r.xdp->counter(L7TAP_CNT_NOT_TCP), 1u);
}

TEST(XdpProgram, Ipv6ExtensionHeadersAndOptionsAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto too_many = PacketBuilder().ipv6("fd00::1", "fd00::2").flags(kPshAck).payload("x");
  for (int i = 0; i < 7; ++i) too_many.ipv6Ext(IPPROTO_DSTOPTS);
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
  ASSERT_EQ(r.xdp_events.size(), 7u);  // 5 + the L4-only flow's RST and its flow end
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
  ASSERT_EQ(r.xdp_events.size(), 7u);
  EXPECT_EQ(r.xdp_events[6].kind, L7TAP_EVENT_FLOW_END);
  const auto key = canonicalKey(clientToServer().key());
  const auto a = r.tc->flow(key), b = r.xdp->flow(key);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
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

}  // namespace
}  // namespace l7tap::testing
