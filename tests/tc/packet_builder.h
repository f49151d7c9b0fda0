// A fluent builder of Ethernet frames for running the TC program on
// (Katran's testing/fixtures style): IPv4 or IPv6, VLAN tags, IPv6 extension
// headers, fragments, TCP flags, seq/ack, window and payload. Checksums are
// left zero: the program does not look at them.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tc/l7tap_abi.h"

namespace l7tap::testing {

class PacketBuilder {
 public:
  PacketBuilder& ipv4(const std::string& src, const std::string& dst) {
    family_ = 4;
    parseAddr(AF_INET, src, src_);
    parseAddr(AF_INET, dst, dst_);
    return *this;
  }
  PacketBuilder& ipv6(const std::string& src, const std::string& dst) {
    family_ = 6;
    parseAddr(AF_INET6, src, src_);
    parseAddr(AF_INET6, dst, dst_);
    return *this;
  }
  PacketBuilder& ports(uint16_t sport, uint16_t dport) {
    sport_ = sport;
    dport_ = dport;
    return *this;
  }
  PacketBuilder& seq(uint32_t v) {
    seq_ = v;
    return *this;
  }
  PacketBuilder& ack(uint32_t v) {
    ack_ = v;
    flags_ |= L7TAP_TCP_ACK;
    return *this;
  }
  PacketBuilder& flags(uint8_t v) {
    flags_ = v;
    return *this;
  }
  PacketBuilder& window(uint16_t v) {
    window_ = v;
    return *this;
  }
  PacketBuilder& payload(const std::string& bytes) {
    payload_.assign(bytes.begin(), bytes.end());
    return *this;
  }
  PacketBuilder& payload(std::vector<uint8_t> bytes) {
    payload_ = std::move(bytes);
    return *this;
  }
  /// n bytes of a recognisable pattern (see patternPayload()).
  PacketBuilder& payloadSize(size_t n) {
    payload_ = patternPayload(n);
    return *this;
  }
  /// Adds an in-band VLAN tag (the first call is the outermost tag).
  PacketBuilder& vlan(uint16_t id, uint16_t tpid = 0x8100) {
    vlans_.push_back({tpid, id});
    return *this;
  }
  /// Adds an IPv6 extension header (0 hop-by-hop, 43 routing, 60 destination
  /// options) of (len8 + 1) * 8 bytes.
  PacketBuilder& ipv6Ext(uint8_t type, uint8_t len8 = 0) {
    exts_.push_back({type, len8});
    return *this;
  }
  /// Makes the packet an IP fragment (IPv4: MF or offset; IPv6: a fragment
  /// header).
  PacketBuilder& fragment(uint16_t offset8 = 0, bool more = true) {
    fragment_ = true;
    frag_offset8_ = offset8;
    frag_more_ = more;
    return *this;
  }
  PacketBuilder& ipv4Options(uint8_t words) {
    ip_option_words_ = words;
    return *this;
  }
  PacketBuilder& tcpOptions(uint8_t words) {
    tcp_option_words_ = words;
    return *this;
  }
  /// Carries a UDP datagram instead of TCP.
  PacketBuilder& udp() {
    udp_ = true;
    return *this;
  }
  /// Pads the frame with zeros to at least n bytes, as short Ethernet frames
  /// are.
  PacketBuilder& padTo(size_t n) {
    pad_to_ = n;
    return *this;
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> l4 = udp_ ? buildUdp() : buildTcp();
    std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
    for (const auto& v : vlans_) {
      put16(f, v.tpid);
      put16(f, v.id & 0x0fff);
    }
    if (family_ == 4) {
      put16(f, 0x0800);
      buildIpv4(f, l4);
    } else {
      put16(f, 0x86dd);
      buildIpv6(f, l4);
    }
    if (f.size() < pad_to_) f.resize(pad_to_, 0);
    return f;
  }

  /// This packet's flow key as the program sees it (not canonical).
  l7tap_flow_key key() const {
    l7tap_flow_key k{};
    std::copy(src_, src_ + 16, k.saddr);
    std::copy(dst_, dst_ + 16, k.daddr);
    k.sport = sport_;
    k.dport = dport_;
    k.family = family_;
    return k;
  }

  const std::vector<uint8_t>& payloadBytes() const { return payload_; }

  static std::vector<uint8_t> patternPayload(size_t n) {
    std::vector<uint8_t> p(n);
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>('a' + (i * 7 + i / 26) % 26);
    return p;
  }

 private:
  struct Vlan {
    uint16_t tpid;
    uint16_t id;
  };
  struct Ext {
    uint8_t type;
    uint8_t len8;
  };

  static void put16(std::vector<uint8_t>& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  }
  static void put32(std::vector<uint8_t>& b, uint32_t v) {
    put16(b, static_cast<uint16_t>(v >> 16));
    put16(b, static_cast<uint16_t>(v));
  }
  static void parseAddr(int af, const std::string& text, uint8_t (&out)[16]) {
    std::fill(out, out + 16, 0);
    if (af == AF_INET) {
      out[10] = out[11] = 0xff;
      if (inet_pton(AF_INET, text.c_str(), out + 12) != 1) throw std::invalid_argument(text);
    } else if (inet_pton(AF_INET6, text.c_str(), out) != 1) {
      throw std::invalid_argument(text);
    }
  }

  std::vector<uint8_t> buildTcp() const {
    std::vector<uint8_t> t;
    put16(t, sport_);
    put16(t, dport_);
    put32(t, seq_);
    put32(t, ack_);
    t.push_back(static_cast<uint8_t>((5 + tcp_option_words_) << 4));
    t.push_back(flags_);
    put16(t, window_);
    put32(t, 0);                                                       // checksum, urgent pointer
    for (int i = 0; i < tcp_option_words_; ++i) put32(t, 0x01010101);  // NOPs
    t.insert(t.end(), payload_.begin(), payload_.end());
    return t;
  }
  std::vector<uint8_t> buildUdp() const {
    std::vector<uint8_t> u;
    put16(u, sport_);
    put16(u, dport_);
    put16(u, static_cast<uint16_t>(8 + payload_.size()));
    put16(u, 0);
    u.insert(u.end(), payload_.begin(), payload_.end());
    return u;
  }
  void buildIpv4(std::vector<uint8_t>& f, const std::vector<uint8_t>& l4) const {
    const size_t hlen = 20 + 4 * ip_option_words_;
    f.push_back(static_cast<uint8_t>(0x40 | (hlen / 4)));
    f.push_back(0);
    put16(f, static_cast<uint16_t>(hlen + l4.size()));
    put16(f, 0x1234);
    uint16_t frag = 0x4000;  // DF
    if (fragment_) frag = static_cast<uint16_t>((frag_more_ ? 0x2000 : 0) | frag_offset8_);
    put16(f, frag);
    f.push_back(64);
    f.push_back(udp_ ? IPPROTO_UDP : IPPROTO_TCP);
    put16(f, 0);
    f.insert(f.end(), src_ + 12, src_ + 16);
    f.insert(f.end(), dst_ + 12, dst_ + 16);
    for (int i = 0; i < ip_option_words_; ++i) put32(f, 0x01010101);  // NOPs
    f.insert(f.end(), l4.begin(), l4.end());
  }
  void buildIpv6(std::vector<uint8_t>& f, const std::vector<uint8_t>& l4) const {
    std::vector<uint8_t> chain;
    const uint8_t l4proto = udp_ ? IPPROTO_UDP : IPPROTO_TCP;
    // Types in order: the extension headers, then a fragment header, then L4.
    std::vector<uint8_t> types;
    for (const auto& e : exts_) types.push_back(e.type);
    if (fragment_) types.push_back(IPPROTO_FRAGMENT);
    types.push_back(l4proto);
    for (size_t i = 0; i < exts_.size(); ++i) {
      chain.push_back(types[i + 1]);
      chain.push_back(exts_[i].len8);
      chain.resize(chain.size() + 6 + 8 * exts_[i].len8, 0);
    }
    if (fragment_) {
      chain.push_back(l4proto);
      chain.push_back(0);
      put16(chain, static_cast<uint16_t>((frag_offset8_ << 3) | (frag_more_ ? 1 : 0)));
      put32(chain, 0xabcd);
    }
    put32(f, 0x60000000);
    put16(f, static_cast<uint16_t>(chain.size() + l4.size()));
    f.push_back(types[0]);
    f.push_back(64);
    f.insert(f.end(), src_, src_ + 16);
    f.insert(f.end(), dst_, dst_ + 16);
    f.insert(f.end(), chain.begin(), chain.end());
    f.insert(f.end(), l4.begin(), l4.end());
  }

  uint8_t family_ = 4;
  uint8_t src_[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  uint8_t dst_[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2};
  uint16_t sport_ = 40000;
  uint16_t dport_ = 8080;
  uint32_t seq_ = 1000;
  uint32_t ack_ = 0;
  uint8_t flags_ = 0;
  uint16_t window_ = 65535;
  std::vector<uint8_t> payload_;
  std::vector<Vlan> vlans_;
  std::vector<Ext> exts_;
  bool fragment_ = false;
  uint16_t frag_offset8_ = 0;
  bool frag_more_ = true;
  uint8_t ip_option_words_ = 0;
  uint8_t tcp_option_words_ = 0;
  bool udp_ = false;
  size_t pad_to_ = 0;
};

}  // namespace l7tap::testing
