// The real TC program on encapsulated frames (VXLAN, Geneve) with
// BPF_PROG_TEST_RUN: the inner TCP flow is captured (key, payload window,
// counters), the flow's outer addresses go to the tunnels map, and its
// events say so (L7TAP_SEG_TUNNEL). Geneve is covered here only: this
// machine's kernel has no Geneve device (CONFIG_GENEVE off), so the
// end-to-end test (tests/e2e/test_tunnels.py) runs VXLAN alone. Needs root.
#include <arpa/inet.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "daemon/ring_reader.h"
#include "tests/support/privileged.h"
#include "tests/tc/packet_builder.h"
#include "tests/tc/tc_program.h"
#include "tests/tc/tunnel_builder.h"

namespace l7tap::testing {
namespace {

constexpr uint32_t kUnspec = static_cast<uint32_t>(TC_ACT_UNSPEC);
constexpr uint8_t kIn = L7TAP_DIR_INGRESS;
constexpr uint8_t kOut = L7TAP_DIR_EGRESS;
constexpr uint8_t kPshAck = L7TAP_TCP_PSH | L7TAP_TCP_ACK;

// Node addresses (the underlay) and pod addresses (the overlay).
constexpr const char* kNodeA = "192.168.50.1";
constexpr const char* kNodeB = "192.168.50.2";
constexpr const char* kNodeA6 = "fd50::1";
constexpr const char* kNodeB6 = "fd50::2";

std::unique_ptr<TcProgram> mustLoad(const TcConfig& cfg = {}) {
  std::string error;
  auto p = TcProgram::load(cfg, &error);
  EXPECT_NE(p, nullptr) << error;
  return p;
}

void send(TcProgram& p, uint8_t dir, const std::vector<uint8_t>& frame, uint32_t ifindex = 0,
          uint32_t gso_segs = 0, uint32_t ingress_ifindex = 0) {
  const auto r = p.run(dir, frame, ifindex, gso_segs, 1, ingress_ifindex);
  ASSERT_EQ(r.err, 0) << strerror(-r.err);
  EXPECT_EQ(r.retval, kUnspec);
}

// 10.0.0.1:40000 (the canonical source) -> 10.0.0.2:8080, inside the tunnel.
PacketBuilder clientToServer() {
  return PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ports(40000, 8080);
}
PacketBuilder serverToClient() {
  return PacketBuilder().ipv4("10.0.0.2", "10.0.0.1").ports(8080, 40000);
}

// A 16-byte address field as the ABI stores it (IPv4-mapped for IPv4).
std::vector<uint8_t> addr16(const std::string& text) {
  std::vector<uint8_t> a(16, 0);
  if (inet_pton(AF_INET, text.c_str(), a.data() + 12) == 1) {
    a[10] = a[11] = 0xff;
  } else if (inet_pton(AF_INET6, text.c_str(), a.data()) != 1) {
    ADD_FAILURE() << "bad address " << text;
  }
  return a;
}
std::vector<uint8_t> bytes16(const uint8_t* p) { return {p, p + 16}; }

// The tunnels entry of the flow of `inner`: type, id and outer addresses by
// canonical direction (outer_saddr: the outer source of the packets from the
// canonical key's source).
void expectTunnel(const TcProgram& p, const PacketBuilder& inner, uint8_t type, uint32_t id,
                  uint8_t outer_family, const std::string& canonical_src_outer,
                  const std::string& canonical_dst_outer) {
  const auto t = p.tunnel(canonicalKey(inner.key()));
  ASSERT_TRUE(t.has_value()) << "no tunnels entry";
  EXPECT_EQ(t->type, type);
  EXPECT_EQ(t->has_id, 1);
  EXPECT_EQ(t->id, id);
  EXPECT_EQ(t->outer_family, outer_family);
  EXPECT_EQ(bytes16(t->outer_saddr), addr16(canonical_src_outer));
  EXPECT_EQ(bytes16(t->outer_daddr), addr16(canonical_dst_outer));
}

// The one segment event of a run, checked against the inner packet.
void expectInnerEvent(const Event& e, const PacketBuilder& inner, bool tunnelled = true) {
  ASSERT_EQ(e.kind, L7TAP_EVENT_SEGMENT);
  EXPECT_TRUE(keysEqual(e.seg().key, inner.key()));
  EXPECT_EQ(e.seg().payload_len, inner.payloadBytes().size());
  EXPECT_EQ(e.seg().captured_len, inner.payloadBytes().size());
  EXPECT_EQ(e.data, inner.payloadBytes());
  EXPECT_EQ((e.seg().capture_flags & L7TAP_SEG_TUNNEL) != 0, tunnelled);
}

TEST(TcTunnel, VxlanOverIpv4CapturesTheInnerFlow) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto req = clientToServer().seq(1).ack(7).flags(kPshAck).payload("GET / HTTP/1.1\r\n\r\n");
  send(*prog, kIn, vxlan(req, 42, kNodeA, kNodeB));
  const auto resp =
      serverToClient().seq(7).ack(19).flags(kPshAck).payload("HTTP/1.1 200 OK\r\n\r\n");
  send(*prog, kIn, vxlan(resp, 42, kNodeB, kNodeA));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  expectInnerEvent(events[0], req);
  expectInnerEvent(events[1], resp);
  EXPECT_EQ(events[0].seg().seq, 1u);
  EXPECT_EQ(events[0].seg().ack, 7u);
  EXPECT_EQ(events[0].seg().tcp_flags, kPshAck);

  const auto fc = prog->flow(canonicalKey(req.key()));
  ASSERT_TRUE(fc.has_value());
  EXPECT_EQ(fc->packets[0], 1u);
  EXPECT_EQ(fc->packets[1], 1u);
  EXPECT_EQ(fc->bytes[0], req.payloadBytes().size());
  EXPECT_EQ(fc->bytes[1], resp.payloadBytes().size());
  EXPECT_EQ(prog->flowCount(), 1u);  // the inner flow only: not the outer UDP
  expectTunnel(*prog, req, L7TAP_TUNNEL_VXLAN, 42, 4, kNodeA, kNodeB);
  EXPECT_EQ(prog->counter(L7TAP_CNT_TUNNEL_FLOWS), 1u);  // written once, by the creator
  EXPECT_EQ(prog->counter(L7TAP_CNT_TCP), 2u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_PAYLOAD_BYTES),
            req.payloadBytes().size() + resp.payloadBytes().size());
}

// The entry is in canonical order whichever side sent first.
TEST(TcTunnel, OuterAddressesAreStoredInCanonicalOrder) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  // From the canonical destination (10.0.0.2) first, its node being B.
  const auto resp = serverToClient().seq(7).flags(kPshAck).payload("late join");
  send(*prog, kIn, vxlan(resp, 7, kNodeB, kNodeA));
  expectTunnel(*prog, resp, L7TAP_TUNNEL_VXLAN, 7, 4, kNodeA, kNodeB);
}

TEST(TcTunnel, VxlanOverIpv6) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto req = clientToServer().seq(1).flags(kPshAck).payload("over six");
  send(*prog, kIn, vxlan(req, 0xabcdef, kNodeA6, kNodeB6, true));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  expectInnerEvent(events[0], req);
  expectTunnel(*prog, req, L7TAP_TUNNEL_VXLAN, 0xabcdef, 6, kNodeA6, kNodeB6);
}

TEST(TcTunnel, GeneveWithOptionsOverIpv4AndIpv6) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto v4 = clientToServer().seq(1).flags(kPshAck).payload("geneve four");
  send(*prog, kIn, geneve(v4, 1001, kNodeA, kNodeB, false, 3));
  // An IPv6 flow in Geneve over IPv6, without options.
  const auto v6 = PacketBuilder()
                      .ipv6("fd00::1", "fd00::2")
                      .ports(40001, 443)
                      .seq(5)
                      .flags(kPshAck)
                      .payload("geneve six");
  send(*prog, kIn, geneve(v6, 77, kNodeB6, kNodeA6, true, 0));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  expectInnerEvent(events[0], v4);
  expectInnerEvent(events[1], v6);
  expectTunnel(*prog, v4, L7TAP_TUNNEL_GENEVE, 1001, 4, kNodeA, kNodeB);
  expectTunnel(*prog, v6, L7TAP_TUNNEL_GENEVE, 77, 6, kNodeB6, kNodeA6);
}

// The window, the size classes and the header-only events are the inner
// payload's, at its offset behind the outer layers.
TEST(TcTunnel, WindowAndHeaderOnlyEventsAreTheInnerPayloads) {
  L7TAP_SKIP_UNLESS(missingRoot());
  TcConfig cfg;
  cfg.window = 200;
  auto prog = mustLoad(cfg);
  ASSERT_NE(prog, nullptr);
  const auto syn = clientToServer().seq(0).flags(L7TAP_TCP_SYN);
  send(*prog, kIn, vxlan(syn, 42, kNodeA, kNodeB));
  const auto big = clientToServer().seq(1).flags(kPshAck).payloadSize(1000);
  send(*prog, kIn, geneve(big, 42, kNodeA, kNodeB, false, 2));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().captured_len, 0u);
  EXPECT_EQ(events[0].seg().tcp_flags, L7TAP_TCP_SYN);
  EXPECT_NE(events[0].seg().capture_flags & L7TAP_SEG_TUNNEL, 0);
  EXPECT_EQ(events[1].seg().payload_len, 1000u);
  EXPECT_EQ(events[1].seg().captured_len, 200u);
  const auto& p = big.payloadBytes();
  EXPECT_EQ(events[1].data, std::vector<uint8_t>(p.begin(), p.begin() + 200));
  // The SYN created the entry: the first packet's tunnel wins.
  expectTunnel(*prog, syn, L7TAP_TUNNEL_VXLAN, 42, 4, kNodeA, kNodeB);
}

// Short Ethernet frames inside the tunnel are padded like any: the padding
// is not payload. A GSO skb's length counts whatever the inner IP header says.
TEST(TcTunnel, InnerPaddingAndGso) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto small = clientToServer().seq(1).flags(kPshAck).payload("ab").padTo(60);
  send(*prog, kIn, vxlan(small, 42, kNodeA, kNodeB));
  send(*prog, kIn, vxlan(small, 42, kNodeA, kNodeB), 0, 2);
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().payload_len, 2u);
  EXPECT_EQ(events[0].data, std::vector<uint8_t>({'a', 'b'}));
  // 14 + 20 + 20 + 2 = 56 bytes of frame before the padding to 60.
  EXPECT_EQ(events[1].seg().payload_len, 6u);
}

// Nothing changes for frames that are not encapsulated: no flag, no entry.
TEST(TcTunnel, UnencapsulatedFlowsHaveNoTunnel) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto plain = clientToServer().seq(1).flags(kPshAck).payload("plain");
  send(*prog, kIn, plain.build());
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 1u);
  expectInnerEvent(events[0], plain, false);
  EXPECT_EQ(events[0].seg().capture_flags, 0);
  EXPECT_FALSE(prog->tunnel(canonicalKey(plain.key())).has_value());
  EXPECT_EQ(prog->counter(L7TAP_CNT_TUNNEL_FLOWS), 0u);

  // A UDP datagram to another port is UDP, whatever it carries.
  const auto inner = clientToServer().ports(40009, 8080).seq(1).flags(kPshAck).payload("x");
  send(*prog, kIn, encapsulate(inner.build(), vxlanHeader(42), 4790, kNodeA, kNodeB));
  EXPECT_TRUE(prog->drain().empty());
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_TCP), 1u);
  EXPECT_EQ(prog->flowCount(), 1u);
}

// UDP port 4789 carrying something else than VXLAN (the I flag clear, as a
// random payload's first byte mostly is) is not decapsulated: UDP, counted.
TEST(TcTunnel, Udp4789ThatIsNotVxlan) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto inner = clientToServer().seq(1).flags(kPshAck).payload("x");
  send(*prog, kIn, encapsulate(inner.build(), vxlanHeader(42, 0x00), kVxlanPort, kNodeA, kNodeB));
  // Not even an Ethernet frame behind the header.
  send(*prog, kIn,
       PacketBuilder()
           .ipv4(kNodeA, kNodeB)
           .ports(5000, kVxlanPort)
           .udp()
           .payload(std::string(64, 'z'))
           .build());
  EXPECT_TRUE(prog->drain().empty());
  EXPECT_EQ(prog->flowCount(), 0u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_TCP), 0u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_TCP) + prog->counter(L7TAP_CNT_UNPARSABLE), 2u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_TUNNEL_FLOWS), 0u);
}

// Tunnel headers cut short: unparsable, no event, no entry, never a crash.
TEST(TcTunnel, TruncatedTunnelHeaders) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto inner = clientToServer().seq(1).flags(kPshAck).payload("cut");
  const std::vector<uint8_t> vx = vxlanHeader(42);
  // VXLAN: 4 of its 8 bytes; then the header whole and 10 bytes of the inner frame.
  send(*prog, kIn,
       PacketBuilder()
           .ipv4(kNodeA, kNodeB)
           .ports(5000, kVxlanPort)
           .udp()
           .payload(std::vector<uint8_t>(vx.begin(), vx.begin() + 4))
           .build());
  std::vector<uint8_t> cut_inner = inner.build();
  cut_inner.resize(10);
  send(*prog, kIn, encapsulate(cut_inner, vx, kVxlanPort, kNodeA, kNodeB));
  // Geneve whose options run past the frame.
  std::vector<uint8_t> gh = geneveHeader(9, 0);
  gh[0] = 20;  // 80 bytes of options announced
  send(*prog, kIn,
       PacketBuilder().ipv4(kNodeA, kNodeB).ports(5000, kGenevePort).udp().payload(gh).build());
  EXPECT_TRUE(prog->drain().empty());
  EXPECT_EQ(prog->flowCount(), 0u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_TCP), 0u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_UNPARSABLE) + prog->counter(L7TAP_CNT_NOT_TCP), 3u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_PACKETS), 3u);
}

// The pairing shortcut (struct l7tap_reported) on encapsulated packets: the
// same frame forwarded on pairs as any packet, and the decapsulated inner
// frame (another length, other bytes at the remembered offset) never
// matches: it takes the full path, which finds the owner in the flow.
TEST(TcTunnel, PairingShortcutOnEncapsulatedPackets) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const uint32_t other = otherIfindex();
  if (other == 0) GTEST_SKIP() << "no network device besides lo in this namespace";
  cpu_set_t old_set{}, one{};
  sched_getaffinity(0, sizeof(old_set), &old_set);
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  sched_setaffinity(0, sizeof(one), &one);
  struct Restore {
    cpu_set_t* s;
    ~Restore() { sched_setaffinity(0, sizeof(*s), s); }
  } restore{&old_set};

  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto req = clientToServer().seq(1).ack(7).flags(kPshAck).payload("first");
  const auto frame = vxlan(req, 42, kNodeA, kNodeB);
  send(*prog, kIn, frame, 1);
  send(*prog, kOut, frame, other, 0, 1);  // forwarded as is
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 1u);
  send(*prog, kIn, frame, 1);
  send(*prog, kOut, req.build(), other, 0, 1);  // decapsulated on the way
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 1u);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER), 2u);
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seg().hdr.ifindex, 1u);
  EXPECT_EQ(events[1].seg().hdr.ifindex, 1u);

  // A plain packet reported, then an encapsulated one of the same flow and
  // length forwarded: other bytes at the remembered offset, no pairing.
  const auto plain = clientToServer().ports(40001, 8080).seq(1).flags(kPshAck).payloadSize(300);
  send(*prog, kIn, plain.build(), 1);
  const auto inner_short =
      clientToServer().ports(40001, 8080).seq(1).flags(kPshAck).payloadSize(300 - 50);
  const auto wrapped = vxlan(inner_short, 42, kNodeA, kNodeB);
  ASSERT_EQ(wrapped.size(), plain.build().size());
  send(*prog, kOut, wrapped, other, 0, 1);
  EXPECT_EQ(prog->counter(L7TAP_CNT_NOT_OWNER_PAIRED), 1u);
}

// XDP reports encapsulated frames as TC ingress does.
TEST(TcTunnel, XdpAsTcIngress) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto tc = mustLoad();
  auto xdp = mustLoad();
  ASSERT_NE(tc, nullptr);
  ASSERT_NE(xdp, nullptr);
  const auto req = clientToServer().seq(1).flags(kPshAck).payload("xdp");
  const auto frame = geneve(req, 5, kNodeA6, kNodeB6, true, 1);
  send(*tc, kIn, frame);
  const auto r = xdp->runXdp(frame);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_PASS));
  const auto a = tc->drain(), b = xdp->drain();
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  expectInnerEvent(b[0], req);
  EXPECT_EQ(b[0].seg().capture_flags, a[0].seg().capture_flags);
  expectTunnel(*xdp, req, L7TAP_TUNNEL_GENEVE, 5, 6, kNodeA6, kNodeB6);
}

// The daemon's side: the ring reader's RingTunnels reads this program's
// tunnels map for flagged events, with the outer addresses of each packet.
TEST(TcTunnel, RingReaderResolvesTheTunnelFromTheMap) {
  L7TAP_SKIP_UNLESS(missingRoot());
  auto prog = mustLoad();
  ASSERT_NE(prog, nullptr);
  const auto req = clientToServer().seq(1).flags(kPshAck).payload("q");
  const auto resp = serverToClient().seq(7).flags(kPshAck).payload("r");
  send(*prog, kIn, vxlan(resp, 42, kNodeB, kNodeA));
  send(*prog, kIn, vxlan(req, 42, kNodeA, kNodeB));
  const auto events = prog->drain();
  ASSERT_EQ(events.size(), 2u);
  RingTunnels tunnels(prog->tunnelsFd());
  RingStats stats;
  for (size_t i = 0; i < events.size(); ++i) {
    SegmentEvent seg;
    ASSERT_EQ(decodeRingEvent(&events[i].segment, events[i].sample_size, 0, seg),
              RingEventKind::kSegment);
    tunnels.resolve(seg, stats);
    ASSERT_NE(seg.tunnel, nullptr) << i;
    EXPECT_EQ(seg.tunnel->type, L7TAP_TUNNEL_VXLAN);
    EXPECT_EQ(seg.tunnel->id, 42u);
    // This packet's outer source and destination.
    EXPECT_EQ(bytes16(seg.tunnel->outer_saddr), addr16(i == 0 ? kNodeB : kNodeA)) << i;
    EXPECT_EQ(bytes16(seg.tunnel->outer_daddr), addr16(i == 0 ? kNodeA : kNodeB)) << i;
  }
  EXPECT_EQ(stats.tunnel_lookups, 1u);  // once for the flow
  EXPECT_EQ(stats.tunnel_missing, 0u);
}

}  // namespace
}  // namespace l7tap::testing
