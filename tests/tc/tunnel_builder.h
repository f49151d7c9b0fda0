// Encapsulated frames for running the TC program on: a frame built by
// PacketBuilder (the inner Ethernet frame) inside VXLAN or Geneve over UDP,
// under an outer IPv4 or IPv6 header, as a node's uplink carries an overlay.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/tc/packet_builder.h"

namespace l7tap::testing {

constexpr uint16_t kVxlanPort = 4789;
constexpr uint16_t kGenevePort = 6081;

/// The 8-byte VXLAN header (RFC 7348): the I flag, then the 24-bit VNI.
inline std::vector<uint8_t> vxlanHeader(uint32_t vni, uint8_t flags = 0x08) {
  return {flags,
          0,
          0,
          0,
          static_cast<uint8_t>(vni >> 16),
          static_cast<uint8_t>(vni >> 8),
          static_cast<uint8_t>(vni),
          0};
}

/// A Geneve header (RFC 8926) carrying Ethernet (0x6558), with `option_words`
/// 4-byte words of options (one option class/type/length header, then zeros).
inline std::vector<uint8_t> geneveHeader(uint32_t vni, uint8_t option_words = 0) {
  std::vector<uint8_t> h = {static_cast<uint8_t>(option_words & 0x3f),
                            0,
                            0x65,
                            0x58,
                            static_cast<uint8_t>(vni >> 16),
                            static_cast<uint8_t>(vni >> 8),
                            static_cast<uint8_t>(vni),
                            0};
  if (option_words > 0) {
    // class 0x0102, type 0x80, length (option_words - 1) words of data
    h.insert(h.end(), {0x01, 0x02, 0x80, static_cast<uint8_t>((option_words - 1) & 0x1f)});
    h.resize(h.size() + 4u * (option_words - 1u), 0xab);
  }
  return h;
}

/// `inner` (an Ethernet frame) behind `tunnel_header` in a UDP datagram to
/// `dport`, between the outer addresses (IPv6 when `v6`).
inline std::vector<uint8_t> encapsulate(const std::vector<uint8_t>& inner,
                                        const std::vector<uint8_t>& tunnel_header, uint16_t dport,
                                        const std::string& outer_src, const std::string& outer_dst,
                                        bool v6 = false, uint16_t sport = 51000) {
  std::vector<uint8_t> udp_payload = tunnel_header;
  udp_payload.insert(udp_payload.end(), inner.begin(), inner.end());
  PacketBuilder outer;
  if (v6) {
    outer.ipv6(outer_src, outer_dst);
  } else {
    outer.ipv4(outer_src, outer_dst);
  }
  return outer.ports(sport, dport).udp().payload(std::move(udp_payload)).build();
}

inline std::vector<uint8_t> vxlan(const PacketBuilder& inner, uint32_t vni,
                                  const std::string& outer_src, const std::string& outer_dst,
                                  bool v6 = false) {
  return encapsulate(inner.build(), vxlanHeader(vni), kVxlanPort, outer_src, outer_dst, v6);
}

inline std::vector<uint8_t> geneve(const PacketBuilder& inner, uint32_t vni,
                                   const std::string& outer_src, const std::string& outer_dst,
                                   bool v6 = false, uint8_t option_words = 0) {
  return encapsulate(inner.build(), geneveHeader(vni, option_words), kGenevePort, outer_src,
                     outer_dst, v6);
}

}  // namespace l7tap::testing
