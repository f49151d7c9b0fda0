// Wraps frames and datagrams in the encapsulations the packet parser takes
// off (tc/packet_parse.h): Ethernet, IPv4/IPv6 outer headers, UDP, VXLAN,
// Geneve, GRE, PPPoE, and the NFLOG and Cisco HDLC link layers. Checksums
// stay zero: the parser does not look at them.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace l7tap::testing::encap {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
inline Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// The IP datagram of a PacketBuilder frame without VLAN tags.
inline Bytes ipOf(const Bytes& frame) { return Bytes(frame.begin() + 14, frame.end()); }

inline Bytes eth(uint16_t type, const Bytes& payload) {
  Bytes b = {0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a};
  put16(b, type);
  return cat(b, payload);
}

inline Bytes ipv4(const std::string& src, const std::string& dst, uint8_t proto,
                  const Bytes& payload, uint16_t frag = 0) {
  Bytes b = {0x45, 0};
  put16(b, static_cast<uint16_t>(20 + payload.size()));
  put16(b, 0x1234);
  put16(b, frag);
  b.push_back(64);
  b.push_back(proto);
  put16(b, 0);
  b.resize(20);
  inet_pton(AF_INET, src.c_str(), &b[12]);
  inet_pton(AF_INET, dst.c_str(), &b[16]);
  return cat(b, payload);
}

inline Bytes ipv6(const std::string& src, const std::string& dst, uint8_t next,
                  const Bytes& payload) {
  Bytes b = {0x60, 0, 0, 0};
  put16(b, static_cast<uint16_t>(payload.size()));
  b.push_back(next);
  b.push_back(64);
  b.resize(40);
  inet_pton(AF_INET6, src.c_str(), &b[8]);
  inet_pton(AF_INET6, dst.c_str(), &b[24]);
  return cat(b, payload);
}

/// An outer IP header of either family.
inline Bytes outerIp(bool v6, uint8_t proto, const Bytes& payload) {
  return v6 ? ipv6("2001:db8::a", "2001:db8::b", proto, payload)
            : ipv4("198.51.100.1", "198.51.100.2", proto, payload);
}

inline Bytes udp(uint16_t dport, const Bytes& payload, uint16_t sport = 49152) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, static_cast<uint16_t>(8 + payload.size()));
  put16(b, 0);
  return cat(b, payload);
}

inline Bytes vxlan(uint32_t vni, const Bytes& inner_frame, uint8_t flags = 0x08) {
  Bytes b = {flags, 0, 0, 0};
  put32(b, vni << 8);
  return udp(4789, cat(b, inner_frame));
}

inline Bytes geneve(uint32_t vni, uint16_t proto, const Bytes& inner, uint8_t option_words = 0,
                    uint8_t version = 0) {
  Bytes b = {static_cast<uint8_t>(version << 6 | option_words), 0};
  put16(b, proto);
  put32(b, vni << 8);
  for (int i = 0; i < option_words; ++i) put32(b, 0xdeadbeef);
  return udp(6081, cat(b, inner));
}

struct GreOptions {
  bool csum = false;
  bool key = false;
  bool seq = false;
  uint32_t key_value = 0;
  uint16_t extra_flags = 0;  ///< routing, version: what the parser refuses
};

inline Bytes gre(uint16_t proto, const Bytes& inner, const GreOptions& o = {}) {
  Bytes b;
  put16(b, static_cast<uint16_t>((o.csum ? 0x8000 : 0) | (o.key ? 0x2000 : 0) |
                                 (o.seq ? 0x1000 : 0) | o.extra_flags));
  put16(b, proto);
  if (o.csum) put32(b, 0);
  if (o.key) put32(b, o.key_value);
  if (o.seq) put32(b, 7);
  return cat(b, inner);
}

/// A PPPoE session frame's payload (after EtherType 0x8864).
inline Bytes pppoe(uint16_t session, uint16_t ppp_proto, const Bytes& inner,
                   uint8_t ver_type = 0x11, uint8_t code = 0) {
  Bytes b = {ver_type, code};
  put16(b, session);
  put16(b, static_cast<uint16_t>(2 + inner.size()));
  put16(b, ppp_proto);
  return cat(b, inner);
}

/// One NFLOG TLV: length and type in host order, padded to 4 bytes.
inline void nflogTlv(Bytes& b, uint16_t type, const Bytes& value) {
  const uint16_t len = static_cast<uint16_t>(4 + value.size());
  uint8_t hdr[4];
  std::memcpy(hdr, &len, 2);
  std::memcpy(hdr + 2, &type, 2);
  b.insert(b.end(), hdr, hdr + 4);
  b.insert(b.end(), value.begin(), value.end());
  while (b.size() % 4) b.push_back(0);
}

inline Bytes nflogHeader(uint8_t family) { return {family, 0, 0, 5}; }

inline Bytes chdlc(uint16_t proto, const Bytes& payload) {
  Bytes b = {0x0f, 0x00};
  put16(b, proto);
  return cat(b, payload);
}

}  // namespace l7tap::testing::encap
