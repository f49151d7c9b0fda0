#include "daemon/packet_decoder.h"

#include <pcap/dlt.h>

#include <algorithm>
#include <cstring>

#include "tc/window_policy.h"

namespace l7tap {

namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88a8;
constexpr uint16_t kEtherQinQOld = 0x9100;
constexpr uint8_t kIpProtoTcp = 6;
constexpr int kMaxVlanTags = 4;
constexpr int kMaxIpv6ExtensionHeaders = 8;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// Skips VLAN tags; returns false when the frame is cut inside them.
bool skipVlanTags(std::span<const uint8_t>& rest, uint16_t& ethertype) {
  for (int i = 0; i < kMaxVlanTags; ++i) {
    if (ethertype != kEtherVlan && ethertype != kEtherQinQ && ethertype != kEtherQinQOld) {
      return true;
    }
    if (rest.size() < 4) return false;
    ethertype = be16(rest.data() + 2);
    rest = rest.subspan(4);
  }
  return true;
}

}  // namespace

const char* toString(DecodeResult r) {
  switch (r) {
    case DecodeResult::kSegment:
      return "tcp segment";
    case DecodeResult::kNotIp:
      return "not IP";
    case DecodeResult::kNotTcp:
      return "not TCP";
    case DecodeResult::kFragment:
      return "IP fragment";
    case DecodeResult::kTruncatedHeader:
      return "header cut by the capture";
    case DecodeResult::kMalformed:
      return "malformed";
  }
  return "unknown";
}

bool PacketDecoder::supports(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

DecodeResult PacketDecoder::decode(std::span<const uint8_t> frame, uint32_t window,
                                   SegmentEvent& out) const {
  std::span<const uint8_t> rest = frame;
  uint16_t ethertype = 0;
  switch (dlt_) {
    case DLT_EN10MB:
      if (rest.size() < 14) return DecodeResult::kTruncatedHeader;
      ethertype = be16(rest.data() + 12);
      rest = rest.subspan(14);
      break;
    case DLT_LINUX_SLL:
      if (rest.size() < 16) return DecodeResult::kTruncatedHeader;
      ethertype = be16(rest.data() + 14);
      rest = rest.subspan(16);
      break;
    case DLT_LINUX_SLL2:
      if (rest.size() < 20) return DecodeResult::kTruncatedHeader;
      ethertype = be16(rest.data());
      rest = rest.subspan(20);
      break;
    case DLT_NULL:
    case DLT_LOOP: {
      // A 4-byte address family, host order for DLT_NULL (any host), network
      // order for DLT_LOOP. AF_INET is 2 everywhere; AF_INET6 varies by OS.
      if (rest.size() < 4) return DecodeResult::kTruncatedHeader;
      rest = rest.subspan(4);
      return decodeIp(rest, window, out);
    }
    default:  // raw IP
      return decodeIp(rest, window, out);
  }
  if (!skipVlanTags(rest, ethertype)) return DecodeResult::kTruncatedHeader;
  if (ethertype != kEtherIpv4 && ethertype != kEtherIpv6) return DecodeResult::kNotIp;
  return decodeIp(rest, window, out);
}

DecodeResult PacketDecoder::decodeIp(std::span<const uint8_t> p, uint32_t window,
                                     SegmentEvent& out) const {
  if (p.empty()) return DecodeResult::kTruncatedHeader;
  const int version = p[0] >> 4;
  size_t l4_offset = 0;
  size_t ip_end = 0;  // end of the IP packet per its length field
  std::memset(&out.key, 0, sizeof out.key);
  if (version == 4) {
    if (p.size() < 20) return DecodeResult::kTruncatedHeader;
    const size_t ihl = size_t{p[0] & 0x0fu} * 4;
    const size_t total = be16(p.data() + 2);
    if (ihl < 20 || total < ihl) return DecodeResult::kMalformed;
    if (p.size() < ihl) return DecodeResult::kTruncatedHeader;
    const uint16_t frag = be16(p.data() + 6);
    if ((frag & 0x2000) || (frag & 0x1fff)) return DecodeResult::kFragment;
    if (p[9] != kIpProtoTcp) return DecodeResult::kNotTcp;
    out.key.family = 4;
    setIpv4(out.key.saddr, p.data() + 12);
    setIpv4(out.key.daddr, p.data() + 16);
    l4_offset = ihl;
    ip_end = total;
  } else if (version == 6) {
    if (p.size() < 40) return DecodeResult::kTruncatedHeader;
    uint8_t next = p[6];
    size_t off = 40;
    for (int i = 0; i < kMaxIpv6ExtensionHeaders && next != kIpProtoTcp; ++i) {
      if (next == 44) return DecodeResult::kFragment;
      if (next != 0 && next != 43 && next != 60 && next != 51) return DecodeResult::kNotTcp;
      if (p.size() < off + 2) return DecodeResult::kTruncatedHeader;
      const size_t len = next == 51 ? (size_t{p[off + 1]} + 2) * 4 : (size_t{p[off + 1]} + 1) * 8;
      next = p[off];
      off += len;
    }
    if (next != kIpProtoTcp) return DecodeResult::kNotTcp;
    out.key.family = 6;
    std::memcpy(out.key.saddr, p.data() + 8, 16);
    std::memcpy(out.key.daddr, p.data() + 24, 16);
    l4_offset = off;
    ip_end = 40 + size_t{be16(p.data() + 4)};  // jumbograms (length 0) are not expected on TC paths
    if (ip_end < off) return DecodeResult::kMalformed;
  } else {
    return DecodeResult::kNotIp;
  }
  if (p.size() < l4_offset + 20) return DecodeResult::kTruncatedHeader;
  const uint8_t* tcp = p.data() + l4_offset;
  const size_t tcp_len = static_cast<size_t>(tcp[12] >> 4) * 4;
  if (tcp_len < 20 || l4_offset + tcp_len > ip_end) return DecodeResult::kMalformed;
  if (p.size() < l4_offset + tcp_len) return DecodeResult::kTruncatedHeader;
  out.key.sport = be16(tcp);
  out.key.dport = be16(tcp + 2);
  out.seq = be32(tcp + 4);
  out.ack = be32(tcp + 8);
  out.tcp_flags = tcp[13];
  out.tcp_window = be16(tcp + 14);
  const size_t payload_offset = l4_offset + tcp_len;
  out.payload_len = static_cast<uint32_t>(ip_end - payload_offset);
  // The capture may hold fewer bytes than the IP length says (snap length),
  // or more (Ethernet padding); the window policy may keep fewer still.
  const size_t captured = std::min<size_t>(p.size() - payload_offset, out.payload_len);
  const size_t kept = std::min<size_t>(captured, l7tap_window_capture_len(out.payload_len, window));
  out.payload = p.subspan(payload_offset, kept);
  return DecodeResult::kSegment;
}

}  // namespace l7tap
