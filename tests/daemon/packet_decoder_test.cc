#include "daemon/packet_decoder.h"

#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include <optional>
#include <string>
#include <vector>

#include "daemon/capture_policy.h"
#include "tests/daemon/encap_builder.h"
#include "tests/tc/packet_builder.h"

namespace l7tap {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes tcpHeader(uint16_t sport, uint16_t dport, uint32_t seq, uint8_t flags) {
  Bytes t(20, 0);
  t[0] = sport >> 8, t[1] = sport & 0xff, t[2] = dport >> 8, t[3] = dport & 0xff;
  t[4] = seq >> 24, t[5] = (seq >> 16) & 0xff, t[6] = (seq >> 8) & 0xff, t[7] = seq & 0xff;
  t[12] = 5 << 4;
  t[13] = flags;
  t[14] = 0xff, t[15] = 0xff;
  return t;
}

Bytes ipv4(const Bytes& l4, uint8_t proto = 6, uint16_t frag = 0, size_t extra_len = 0) {
  Bytes ip(20, 0);
  const size_t total = 20 + l4.size() + extra_len;
  ip[0] = 0x45, ip[2] = total >> 8, ip[3] = total & 0xff;
  ip[6] = frag >> 8, ip[7] = frag & 0xff;
  ip[8] = 64, ip[9] = proto;
  ip[12] = 10, ip[15] = 1;  // 10.0.0.1
  ip[16] = 10, ip[19] = 2;  // 10.0.0.2
  ip.insert(ip.end(), l4.begin(), l4.end());
  return ip;
}

Bytes ipv6(const Bytes& l4, std::vector<std::pair<uint8_t, Bytes>> ext = {}) {
  Bytes ip(40, 0);
  ip[0] = 0x60;
  uint8_t next = 6;
  Bytes chain;
  for (auto it = ext.rbegin(); it != ext.rend(); ++it) {
    Bytes h = it->second;
    h[0] = next;
    next = it->first;
    chain.insert(chain.begin(), h.begin(), h.end());
  }
  const size_t len = chain.size() + l4.size();
  ip[4] = len >> 8, ip[5] = len & 0xff, ip[6] = next, ip[7] = 64;
  ip[8] = 0xfd, ip[23] = 1, ip[24] = 0xfd, ip[39] = 2;
  ip.insert(ip.end(), chain.begin(), chain.end());
  ip.insert(ip.end(), l4.begin(), l4.end());
  return ip;
}

Bytes ethernet(const Bytes& payload, std::vector<uint16_t> tags = {}, uint16_t type = 0x0800) {
  Bytes f(12, 0xaa);
  for (uint16_t tpid : tags) {
    f.push_back(tpid >> 8), f.push_back(tpid & 0xff), f.push_back(0), f.push_back(7);
  }
  f.push_back(type >> 8), f.push_back(type & 0xff);
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

Bytes withPayload(Bytes tcp, const std::string& data) {
  tcp.insert(tcp.end(), data.begin(), data.end());
  return tcp;
}

TEST(PacketDecoder, EthernetIpv4TcpWithPayloadAndPadding) {
  Bytes frame = ethernet(ipv4(withPayload(tcpHeader(40000, 80, 1234, 0x18), "GET")));
  frame.insert(frame.end(), 6, 0);  // Ethernet padding is not payload
  SegmentEvent s;
  ASSERT_EQ(PacketDecoder(DLT_EN10MB).decode(frame, s), DecodeResult::kSegment);
  EXPECT_EQ(s.key.family, 4);
  EXPECT_EQ(s.key.sport, 40000);
  EXPECT_EQ(s.key.dport, 80);
  EXPECT_EQ(s.seq, 1234u);
  EXPECT_EQ(s.tcp_flags, 0x18);
  EXPECT_EQ(s.payload_len, 3u);
  EXPECT_EQ(std::string(s.payload.begin(), s.payload.end()), "GET");
  EXPECT_EQ(formatAddress(s.key.daddr, 4), "10.0.0.2");
}

TEST(PacketDecoder, WindowPolicyTruncatesPayloadButKeepsWireLength) {
  Bytes frame = ethernet(ipv4(withPayload(tcpHeader(1, 2, 0, 0x10), "0123456789")));
  SegmentEvent s;
  ASSERT_EQ(PacketDecoder(DLT_EN10MB).decode(frame, s), DecodeResult::kSegment);
  // The window is the capture's, as in the kernel.
  CapturePolicy capture(4, false);
  int delivered = 0;
  capture.apply(s, [&](const SegmentEvent& part) {
    delivered++;
    EXPECT_EQ(part.payload_len, 10u);
    EXPECT_EQ(part.payload.size(), 4u);
  });
  EXPECT_EQ(delivered, 1);
}

TEST(PacketDecoder, SnapLengthTruncationKeepsWireLength) {
  Bytes frame = ethernet(ipv4(withPayload(tcpHeader(1, 2, 0, 0x10), "0123456789")));
  const auto wire_len = static_cast<uint32_t>(frame.size());
  frame.resize(frame.size() - 6);
  SegmentEvent s;
  ASSERT_EQ(PacketDecoder(DLT_EN10MB).decode(frame, s, wire_len), DecodeResult::kSegment);
  EXPECT_EQ(s.payload_len, 10u);
  EXPECT_EQ(s.payload.size(), 4u);
}

TEST(PacketDecoder, VlanAndQinQTagsAreSkipped) {
  SegmentEvent s;
  Bytes one = ethernet(ipv4(tcpHeader(1, 2, 0, 2)), {0x8100});
  EXPECT_EQ(PacketDecoder(DLT_EN10MB).decode(one, s), DecodeResult::kSegment);
  Bytes two = ethernet(ipv4(tcpHeader(1, 2, 0, 2)), {0x88a8, 0x8100});
  EXPECT_EQ(PacketDecoder(DLT_EN10MB).decode(two, s), DecodeResult::kSegment);
  Bytes cut = ethernet({}, {0x8100});
  cut.resize(14);
  EXPECT_EQ(PacketDecoder(DLT_EN10MB).decode(cut, s), DecodeResult::kTruncatedHeader);
}

TEST(PacketDecoder, Ipv6ExtensionHeadersAreSkipped) {
  Bytes hop(8, 0);  // hop-by-hop, 8 bytes
  Bytes dst(16, 0);
  dst[1] = 1;  // destination options, 16 bytes
  Bytes frame = ethernet(ipv6(withPayload(tcpHeader(5, 6, 9, 0x18), "hi"), {{0, hop}, {60, dst}}),
                         {}, 0x86dd);
  SegmentEvent s;
  ASSERT_EQ(PacketDecoder(DLT_EN10MB).decode(frame, s), DecodeResult::kSegment);
  EXPECT_EQ(s.key.family, 6);
  EXPECT_EQ(s.payload_len, 2u);
  EXPECT_EQ(formatAddress(s.key.saddr, 6), "fd00::1");
}

TEST(PacketDecoder, FragmentsAndOtherProtocolsAreCounted) {
  SegmentEvent s;
  PacketDecoder d(DLT_EN10MB);
  EXPECT_EQ(d.decode(ethernet(ipv4(tcpHeader(1, 2, 0, 0), 6, 0x2000)), s), DecodeResult::kFragment);
  EXPECT_EQ(d.decode(ethernet(ipv4(tcpHeader(1, 2, 0, 0), 6, 0x0010)), s), DecodeResult::kFragment);
  EXPECT_EQ(d.decode(ethernet(ipv4(Bytes(8, 0), 17)), s), DecodeResult::kNotTcp);
  EXPECT_EQ(d.decode(ethernet(Bytes(28, 0), {}, 0x0806), s), DecodeResult::kNotIp);
  Bytes frag(8, 0);
  EXPECT_EQ(d.decode(ethernet(ipv6(tcpHeader(1, 2, 0, 0), {{44, frag}}), {}, 0x86dd), s),
            DecodeResult::kFragment);
}

TEST(PacketDecoder, LinuxCookedRawAndLoopbackLinkTypes) {
  SegmentEvent s;
  Bytes ip = ipv4(tcpHeader(1, 2, 0, 2));
  Bytes sll(16, 0);
  sll[14] = 0x08;
  sll.insert(sll.end(), ip.begin(), ip.end());
  EXPECT_EQ(PacketDecoder(DLT_LINUX_SLL).decode(sll, s), DecodeResult::kSegment);
  Bytes sll2(20, 0);
  sll2[0] = 0x08;
  sll2.insert(sll2.end(), ip.begin(), ip.end());
  EXPECT_EQ(PacketDecoder(DLT_LINUX_SLL2).decode(sll2, s), DecodeResult::kSegment);
  EXPECT_EQ(PacketDecoder(DLT_RAW).decode(ip, s), DecodeResult::kSegment);
  Bytes null = {2, 0, 0, 0};
  null.insert(null.end(), ip.begin(), ip.end());
  EXPECT_EQ(PacketDecoder(DLT_NULL).decode(null, s), DecodeResult::kSegment);
  EXPECT_FALSE(PacketDecoder::supports(DLT_IEEE802_11));
}

TEST(PacketDecoder, MalformedLengthsAreRejected) {
  SegmentEvent s;
  Bytes ip = ipv4(tcpHeader(1, 2, 0, 2));
  ip[0] = 0x44;  // IHL 16 bytes
  EXPECT_EQ(PacketDecoder(DLT_RAW).decode(ip, s), DecodeResult::kMalformed);
  Bytes bad_tcp = ipv4(tcpHeader(1, 2, 0, 2));
  bad_tcp[20 + 12] = 0xf0;  // data offset 60 bytes, past the IP packet
  EXPECT_EQ(PacketDecoder(DLT_RAW).decode(bad_tcp, s), DecodeResult::kMalformed);
  for (size_t n = 0; n < ip.size(); ++n) {
    Bytes cut = ipv4(tcpHeader(1, 2, 0, 2));
    cut.resize(n);
    EXPECT_NE(PacketDecoder(DLT_RAW).decode(cut, s), DecodeResult::kSegment) << n;
  }
}

// Encapsulations (tc/packet_parse.h), through replay's decoder.
namespace en = testing::encap;
using testing::PacketBuilder;

struct Parsed {
  DecodeResult result;
  l7tap_packet pkt;
};

Parsed parseFrame(int dlt, const Bytes& frame) {
  Parsed p{};
  p.result = PacketDecoder(dlt).parse(frame, 0, p.pkt);
  return p;
}

// The inner TCP segment every tunnel test carries.
PacketBuilder inner(bool v6) {
  PacketBuilder b;
  if (v6) {
    b.ipv6("fd00::1", "fd00::2");
  } else {
    b.ipv4("10.0.0.1", "10.0.0.2");
  }
  return b.ports(40000, 8080).seq(77).flags(L7TAP_TCP_PSH | L7TAP_TCP_ACK).payload("GET /");
}

void expectInner(const Parsed& p, bool v6, const Bytes& frame) {
  ASSERT_EQ(p.result, DecodeResult::kSegment);
  EXPECT_EQ(p.pkt.key.family, v6 ? 6 : 4);
  EXPECT_EQ(formatAddress(p.pkt.key.saddr, p.pkt.key.family), v6 ? "fd00::1" : "10.0.0.1");
  EXPECT_EQ(p.pkt.key.sport, 40000);
  EXPECT_EQ(p.pkt.key.dport, 8080);
  EXPECT_EQ(p.pkt.seq, 77u);
  ASSERT_EQ(p.pkt.payload_len, 5u);
  EXPECT_EQ(std::string(frame.begin() + p.pkt.payload_off, frame.begin() + p.pkt.payload_off + 5),
            "GET /");
}

void expectOuter(const l7tap_tunnel& t, bool v6) {
  EXPECT_EQ(t.outer_family, v6 ? 6 : 4);
  EXPECT_EQ(formatAddress(t.outer_saddr, t.outer_family), v6 ? "2001:db8::a" : "198.51.100.1");
  EXPECT_EQ(formatAddress(t.outer_daddr, t.outer_family), v6 ? "2001:db8::b" : "198.51.100.2");
}

TEST(PacketDecoderTunnels, VxlanOverIpv4AndIpv6CarriesEitherFamily) {
  for (bool outer6 : {false, true}) {
    for (bool inner6 : {false, true}) {
      SCOPED_TRACE(std::string(outer6 ? "outer v6" : "outer v4") +
                   (inner6 ? " inner v6" : " inner v4"));
      const Bytes frame =
          en::eth(outer6 ? 0x86dd : 0x0800,
                  en::outerIp(outer6, 17, en::vxlan(0x123456, inner(inner6).build())));
      const Parsed p = parseFrame(DLT_EN10MB, frame);
      expectInner(p, inner6, frame);
      EXPECT_EQ(p.pkt.tunnel.type, L7TAP_TUNNEL_VXLAN);
      EXPECT_EQ(p.pkt.tunnel.has_id, 1);
      EXPECT_EQ(p.pkt.tunnel.id, 0x123456u);
      expectOuter(p.pkt.tunnel, outer6);
    }
  }
}

TEST(PacketDecoderTunnels, VxlanWithoutIFlagOrCutShortIsRejected) {
  const Bytes in = inner(false).build();
  EXPECT_EQ(parseFrame(DLT_EN10MB, en::eth(0x0800, en::outerIp(false, 17, en::vxlan(5, in, 0x00))))
                .result,
            DecodeResult::kMalformed);
  Bytes cut = en::eth(0x0800, en::outerIp(false, 17, en::vxlan(5, in)));
  cut.resize(14 + 20 + 8 + 4);  // half a VXLAN header
  EXPECT_EQ(parseFrame(DLT_EN10MB, cut).result, DecodeResult::kTruncatedHeader);
  cut.resize(14 + 20 + 8 + 8 + 10);  // half the inner Ethernet header
  EXPECT_EQ(parseFrame(DLT_EN10MB, cut).result, DecodeResult::kTruncatedHeader);
  // Another UDP port is just UDP.
  EXPECT_EQ(
      parseFrame(DLT_EN10MB, en::eth(0x0800, en::outerIp(false, 17, en::udp(4790, in)))).result,
      DecodeResult::kNotTcp);
}

TEST(PacketDecoderTunnels, GeneveSkipsOptionsAndTakesEthernetOrIp) {
  const Bytes eth_inner = inner(false).build();
  const Bytes teb =
      en::eth(0x86dd, en::outerIp(true, 17, en::geneve(0xabcdef, 0x6558, eth_inner, 3)));
  const Parsed a = parseFrame(DLT_EN10MB, teb);
  expectInner(a, false, teb);
  EXPECT_EQ(a.pkt.tunnel.type, L7TAP_TUNNEL_GENEVE);
  EXPECT_EQ(a.pkt.tunnel.id, 0xabcdefu);
  expectOuter(a.pkt.tunnel, true);

  const Bytes ip = en::eth(
      0x0800, en::outerIp(false, 17, en::geneve(9, 0x86dd, en::ipOf(inner(true).build()), 1)));
  expectInner(parseFrame(DLT_EN10MB, ip), true, ip);

  EXPECT_EQ(
      parseFrame(DLT_EN10MB,
                 en::eth(0x0800, en::outerIp(false, 17, en::geneve(9, 0x6558, eth_inner, 0, 1))))
          .result,
      DecodeResult::kMalformed);  // version 1
  EXPECT_EQ(parseFrame(DLT_EN10MB,
                       en::eth(0x0800, en::outerIp(false, 17, en::geneve(9, 0x8847, eth_inner))))
                .result,
            DecodeResult::kNotTcp);  // MPLS: not ours
  // Options longer than the packet: cut.
  Bytes cut = en::eth(0x0800, en::outerIp(false, 17, en::geneve(9, 0x0800, {}, 63)));
  EXPECT_EQ(parseFrame(DLT_EN10MB, cut).result, DecodeResult::kTruncatedHeader);
}

TEST(PacketDecoderTunnels, GreWithChecksumKeyAndSequence) {
  const Bytes ip4 = en::ipOf(inner(false).build());
  for (int bits = 0; bits < 8; ++bits) {
    en::GreOptions o;
    o.csum = bits & 1;
    o.key = bits & 2;
    o.seq = bits & 4;
    o.key_value = 0xfeedf00d;
    SCOPED_TRACE(bits);
    const Bytes frame = en::eth(0x0800, en::outerIp(false, 47, en::gre(0x0800, ip4, o)));
    const Parsed p = parseFrame(DLT_EN10MB, frame);
    expectInner(p, false, frame);
    EXPECT_EQ(p.pkt.tunnel.type, L7TAP_TUNNEL_GRE);
    EXPECT_EQ(p.pkt.tunnel.has_id, o.key ? 1 : 0);
    EXPECT_EQ(p.pkt.tunnel.id, o.key ? 0xfeedf00du : 0u);
    expectOuter(p.pkt.tunnel, false);
  }
  // Transparent Ethernet bridging, under IPv6.
  const Bytes teb = en::eth(0x86dd, en::outerIp(true, 47, en::gre(0x6558, inner(true).build())));
  const Parsed t = parseFrame(DLT_EN10MB, teb);
  expectInner(t, true, teb);
  expectOuter(t.pkt.tunnel, true);
  // Routing present, version 1 (PPTP), another payload: not TCP to us.
  for (uint16_t extra : {0x4000, 0x0001}) {
    en::GreOptions o;
    o.extra_flags = extra;
    EXPECT_EQ(
        parseFrame(DLT_EN10MB, en::eth(0x0800, en::outerIp(false, 47, en::gre(0x0800, ip4, o))))
            .result,
        DecodeResult::kNotTcp);
  }
  EXPECT_EQ(
      parseFrame(DLT_EN10MB, en::eth(0x0800, en::outerIp(false, 47, en::gre(0x880b, ip4)))).result,
      DecodeResult::kNotTcp);
  en::GreOptions keyed;
  keyed.key = true;
  Bytes cut = en::eth(0x0800, en::outerIp(false, 47, en::gre(0x0800, ip4, keyed)));
  cut.resize(14 + 20 + 6);  // the key cut
  EXPECT_EQ(parseFrame(DLT_EN10MB, cut).result, DecodeResult::kTruncatedHeader);
}

TEST(PacketDecoderTunnels, IpInIpOfEachFamily) {
  struct Case {
    bool outer6, inner6;
    uint8_t type;
  };
  for (const Case& c :
       {Case{false, false, L7TAP_TUNNEL_IPIP}, Case{false, true, L7TAP_TUNNEL_6IN4},
        Case{true, false, L7TAP_TUNNEL_4IN6}, Case{true, true, L7TAP_TUNNEL_6IN6}}) {
    SCOPED_TRACE(int(c.type));
    const Bytes frame =
        en::eth(c.outer6 ? 0x86dd : 0x0800,
                en::outerIp(c.outer6, c.inner6 ? 41 : 4, en::ipOf(inner(c.inner6).build())));
    const Parsed p = parseFrame(DLT_EN10MB, frame);
    expectInner(p, c.inner6, frame);
    EXPECT_EQ(p.pkt.tunnel.type, c.type);
    EXPECT_EQ(p.pkt.tunnel.has_id, 0);
    expectOuter(p.pkt.tunnel, c.outer6);
  }
  // An inner datagram that claims more than the outer one carries.
  Bytes in = en::ipOf(inner(false).build());
  const Bytes frame = en::eth(0x0800, en::outerIp(false, 4, in));
  Bytes padded = frame;
  padded.insert(padded.end(), 10, 0);  // link padding after the outer datagram
  const Parsed p = parseFrame(DLT_EN10MB, padded);
  ASSERT_EQ(p.result, DecodeResult::kSegment);
  EXPECT_EQ(p.pkt.payload_len, 5u);
}

TEST(PacketDecoderTunnels, PppoeSessionsUnderEthernetAndLinuxCooked) {
  for (bool v6 : {false, true}) {
    const Bytes ppp = en::pppoe(0x1234, v6 ? 0x0057 : 0x0021, en::ipOf(inner(v6).build()));
    const Bytes frame = en::eth(0x8864, ppp);
    const Parsed p = parseFrame(DLT_EN10MB, frame);
    expectInner(p, v6, frame);
    EXPECT_EQ(p.pkt.tunnel.type, L7TAP_TUNNEL_PPPOE);
    EXPECT_EQ(p.pkt.tunnel.id, 0x1234u);
    EXPECT_EQ(p.pkt.tunnel.has_id, 1);
    EXPECT_EQ(p.pkt.tunnel.outer_family, 0);
    Bytes sll(16, 0);
    sll[14] = 0x88, sll[15] = 0x64;
    const Bytes cooked = en::cat(sll, ppp);
    expectInner(parseFrame(DLT_LINUX_SLL, cooked), v6, cooked);
  }
  const Bytes ip = en::ipOf(inner(false).build());
  // LCP, not IP; a discovery stage frame; a bad version; code not 0.
  EXPECT_EQ(parseFrame(DLT_EN10MB, en::eth(0x8864, en::pppoe(1, 0xc021, ip))).result,
            DecodeResult::kNotIp);
  EXPECT_EQ(parseFrame(DLT_EN10MB, en::eth(0x8863, en::pppoe(1, 0x0021, ip))).result,
            DecodeResult::kNotIp);
  EXPECT_EQ(parseFrame(DLT_EN10MB, en::eth(0x8864, en::pppoe(1, 0x0021, ip, 0x21))).result,
            DecodeResult::kMalformed);
  EXPECT_EQ(parseFrame(DLT_EN10MB, en::eth(0x8864, en::pppoe(1, 0x0021, ip, 0x11, 0x09))).result,
            DecodeResult::kMalformed);
  Bytes cut = en::eth(0x8864, en::pppoe(1, 0x0021, ip));
  cut.resize(14 + 7);
  EXPECT_EQ(parseFrame(DLT_EN10MB, cut).result, DecodeResult::kTruncatedHeader);
}

TEST(PacketDecoderTunnels, InnermostWinsAndDepthIsBounded) {
  // VXLAN inside GRE: two layers, the innermost recorded.
  const Bytes vx = en::outerIp(true, 17, en::vxlan(42, inner(false).build()));
  const Bytes two = en::eth(0x0800, en::outerIp(false, 47, en::gre(0x86dd, vx)));
  const Parsed p = parseFrame(DLT_EN10MB, two);
  expectInner(p, false, two);
  EXPECT_EQ(p.pkt.tunnel.type, L7TAP_TUNNEL_VXLAN);
  EXPECT_EQ(p.pkt.tunnel.id, 42u);
  expectOuter(p.pkt.tunnel, true);
  // A third layer is past L7TAP_MAX_ENCAP: taken for what it looks like.
  const Bytes three =
      en::eth(0x0800, en::outerIp(false, 4, en::outerIp(false, 47, en::gre(0x86dd, vx))));
  EXPECT_EQ(parseFrame(DLT_EN10MB, three).result, DecodeResult::kNotTcp);
}

TEST(PacketDecoderTunnels, FragmentInsideTunnelSaysWhereAndKeepsTunnel) {
  // An inner IPv4 fragment inside VXLAN: its header's frame offset.
  const Bytes frag = en::ipv4("10.0.0.1", "10.0.0.2", 6, Bytes(16, 0), 0x2000);
  const Bytes frame = en::eth(0x0800, en::outerIp(false, 17, en::vxlan(7, en::eth(0x0800, frag))));
  const Parsed p = parseFrame(DLT_EN10MB, frame);
  ASSERT_EQ(p.result, DecodeResult::kFragment);
  EXPECT_EQ(p.pkt.frag_off, 14u + 20 + 8 + 8 + 14);
  EXPECT_EQ(p.pkt.key.family, 4);
  EXPECT_EQ(p.pkt.tunnel.type, L7TAP_TUNNEL_VXLAN);
  // The outer datagram fragmented (IPv6): the outer header's offset.
  Bytes fh = {6, 0, 0, 1, 0, 0, 0, 9};
  const Bytes outer = en::eth(0x86dd, en::ipv6("2001:db8::a", "2001:db8::b", 44, fh));
  const Parsed o = parseFrame(DLT_EN10MB, outer);
  ASSERT_EQ(o.result, DecodeResult::kFragment);
  EXPECT_EQ(o.pkt.frag_off, 14u);
  EXPECT_EQ(o.pkt.key.family, 6);

  // The rebuilt inner datagram parses with the tunnel kept.
  l7tap_packet again = p.pkt;
  const Bytes whole = en::ipOf(inner(false).build());
  ASSERT_EQ(PacketDecoder(DLT_EN10MB).parseDatagram(whole, 0, again), DecodeResult::kSegment);
  EXPECT_EQ(again.tunnel.type, L7TAP_TUNNEL_VXLAN);
  EXPECT_EQ(again.tunnel.id, 7u);
  EXPECT_EQ(again.key.sport, 40000);
  EXPECT_EQ(again.payload_off, 40u);
  EXPECT_EQ(again.payload_len, 5u);
  l7tap_packet bare{};
  EXPECT_EQ(PacketDecoder(DLT_EN10MB).parseDatagram(en::ipOf(inner(true).build()), 0, bare),
            DecodeResult::kSegment);
  EXPECT_EQ(bare.tunnel.type, L7TAP_TUNNEL_NONE);
  EXPECT_EQ(PacketDecoder(DLT_EN10MB).parseDatagram({}, 0, bare), DecodeResult::kTruncatedHeader);
  EXPECT_EQ(PacketDecoder(DLT_EN10MB).parseDatagram(Bytes{0x10, 0}, 0, bare), DecodeResult::kNotIp);
}

TEST(PacketDecoderLinkTypes, NflogFindsThePayloadTlv) {
  ASSERT_TRUE(PacketDecoder::supports(DLT_NFLOG));
  const Bytes ip = en::ipOf(inner(false).build());
  Bytes f = en::nflogHeader(2);
  en::nflogTlv(f, 1, Bytes(4, 0));            // NFULA_PACKET_HDR
  en::nflogTlv(f, 10, {'p', 'r', 'e', 'x'});  // NFULA_PREFIX, 4 + 5 bytes: padded
  f.back() = 0;
  en::nflogTlv(f, 10, {'o', 'd', 'd', 0, 1});
  en::nflogTlv(f, 9, ip);
  en::nflogTlv(f, 11, Bytes(4, 1));  // after the payload: not payload
  const Parsed p = parseFrame(DLT_NFLOG, f);
  ASSERT_EQ(p.result, DecodeResult::kSegment);
  EXPECT_EQ(p.pkt.key.dport, 8080);
  EXPECT_EQ(p.pkt.payload_len, 5u);
  EXPECT_EQ(std::string(f.begin() + p.pkt.payload_off, f.begin() + p.pkt.payload_off + 5), "GET /");

  // An IPv6 payload of odd length, padding after it.
  Bytes odd_ip = en::ipOf(inner(true).payload("odd").build());
  Bytes g = en::nflogHeader(10);
  en::nflogTlv(g, 9, odd_ip);
  const Parsed q = parseFrame(DLT_NFLOG, g);
  ASSERT_EQ(q.result, DecodeResult::kSegment);
  EXPECT_EQ(q.pkt.payload_len, 3u);

  // No payload TLV; a TLV of length < 4; cut in the middle of a TLV header;
  // a version other than 0.
  Bytes none = en::nflogHeader(2);
  en::nflogTlv(none, 1, Bytes(4, 0));
  EXPECT_EQ(parseFrame(DLT_NFLOG, none).result, DecodeResult::kNotIp);
  Bytes zero = en::nflogHeader(2);
  zero.insert(zero.end(), {0, 0, 9, 0});
  EXPECT_EQ(parseFrame(DLT_NFLOG, zero).result, DecodeResult::kMalformed);
  Bytes cut = en::nflogHeader(2);
  cut.insert(cut.end(), {8, 0});
  EXPECT_EQ(parseFrame(DLT_NFLOG, cut).result, DecodeResult::kTruncatedHeader);
  Bytes version = f;
  version[1] = 1;
  EXPECT_EQ(parseFrame(DLT_NFLOG, version).result, DecodeResult::kMalformed);
  EXPECT_EQ(parseFrame(DLT_NFLOG, Bytes{2, 0}).result, DecodeResult::kTruncatedHeader);
}

TEST(PacketDecoderLinkTypes, CiscoHdlc) {
  ASSERT_TRUE(PacketDecoder::supports(DLT_C_HDLC));
  for (bool v6 : {false, true}) {
    const Bytes f = en::chdlc(v6 ? 0x86dd : 0x0800, en::ipOf(inner(v6).build()));
    expectInner(parseFrame(DLT_C_HDLC, f), v6, f);
  }
  EXPECT_EQ(parseFrame(DLT_C_HDLC, en::chdlc(0x8035, Bytes(20, 0))).result, DecodeResult::kNotIp);
  EXPECT_EQ(parseFrame(DLT_C_HDLC, Bytes{0x0f, 0, 8}).result, DecodeResult::kTruncatedHeader);
}

TEST(PacketDecoderTunnels, CaptureCarriesTheTunnelToSegments) {
  const Bytes frame = en::eth(0x0800, en::outerIp(false, 17, en::vxlan(99, inner(false).build())));
  l7tap_packet pkt{};
  ASSERT_EQ(PacketDecoder(DLT_EN10MB).parse(frame, 0, pkt), DecodeResult::kSegment);
  struct Keep final : SegmentReceiver {
    void onSegment(const SegmentEvent& e) override {
      tunnels.push_back(e.tunnel != nullptr ? std::optional<l7tap_tunnel>(*e.tunnel)
                                            : std::nullopt);
    }
    std::vector<std::optional<l7tap_tunnel>> tunnels;
  } keep;
  CapturePolicy capture(4096, false);
  capture.capture(pkt, frame, keep);
  ASSERT_EQ(keep.tunnels.size(), 1u);
  ASSERT_TRUE(keep.tunnels[0].has_value());
  EXPECT_EQ(keep.tunnels[0]->type, L7TAP_TUNNEL_VXLAN);
  EXPECT_EQ(keep.tunnels[0]->id, 99u);
  // A bare packet carries none; apply() passes a segment's along.
  l7tap_packet bare{};
  const Bytes plain = inner(false).build();
  ASSERT_EQ(PacketDecoder(DLT_EN10MB).parse(plain, 0, bare), DecodeResult::kSegment);
  capture.capture(bare, plain, keep);
  ASSERT_EQ(keep.tunnels.size(), 2u);
  EXPECT_FALSE(keep.tunnels[1].has_value());
  SegmentEvent seg;
  ASSERT_EQ(PacketDecoder(DLT_EN10MB).decode(plain, seg), DecodeResult::kSegment);
  seg.tunnel = &pkt.tunnel;
  capture.apply(seg, static_cast<SegmentReceiver&>(keep));
  ASSERT_EQ(keep.tunnels.size(), 3u);
  ASSERT_TRUE(keep.tunnels[2].has_value());
  EXPECT_EQ(keep.tunnels[2]->id, 99u);
}

}  // namespace
}  // namespace l7tap
