#include "daemon/packet_decoder.h"

#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include <vector>

#include "daemon/capture_policy.h"

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

}  // namespace
}  // namespace l7tap
