// Kernel = replay on the packet parser: the same frames through the real BPF
// program (BPF_PROG_TEST_RUN, TC ingress and XDP) and through replay's
// PacketDecoder must get the same verdict (a segment, or the counter that
// says why not) and, for segments, the same key, sequence numbers, flags,
// window and payload (offset and length). The frames are random and hostile,
// from a seeded generator: VLAN stacks of 0 to 5 tags of all three types,
// IPv6 extension chains of 0 to 9 headers (AH included), IPv4 options, TCP
// options, fragments, UDP, Ethernet padding, then cut at every length of
// their headers or damaged (header lengths, data offsets, IP lengths,
// versions, tag types, random bytes). Some are wrapped in a tunnel (VXLAN,
// Geneve, GRE): a tunnel the kernel program does not take off
// (L7TAP_BPF_PARSE_TUNNELS) must be "not TCP" to it, whatever replay finds
// inside. Needs root.
#include <pcap/dlt.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "daemon/packet_decoder.h"
#include "tests/daemon/encap_builder.h"
#include "tests/support/privileged.h"
#include "tests/tc/packet_builder.h"
#include "tests/tc/tc_program.h"

namespace l7tap::testing {
namespace {

using Frame = std::vector<uint8_t>;

// A built frame and where its headers are.
struct Built {
  Frame frame;
  size_t ip_off = 14;  // start of the IP header
  size_t l4_off = 0;   // start of the TCP (or UDP) header
  bool v6 = false;
  size_t tags = 0;
  size_t encap = 0;  // bytes of tunnel headers in front of the inner Ethernet frame
};

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  uint32_t below(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }

  Built frame() {
    PacketBuilder b;
    Built out;
    out.v6 = below(2) == 1;
    if (out.v6) {
      b.ipv6(below(2) ? "fd00::1" : "2001:db8::7", below(2) ? "fd00::2" : "fe80::1");
    } else {
      b.ipv4(below(2) ? "10.0.0.1" : "192.168.7.9", below(2) ? "10.0.0.2" : "172.16.0.3");
    }
    b.ports(static_cast<uint16_t>(rng_()), static_cast<uint16_t>(rng_()))
        .seq(static_cast<uint32_t>(rng_()))
        .ack(static_cast<uint32_t>(rng_()))
        .flags(static_cast<uint8_t>(rng_()))
        .window(static_cast<uint16_t>(below(4) == 0 ? 0 : rng_()));
    // Mostly within the bounds, sometimes one past them (4 tags, 8 headers).
    out.tags = below(4) == 0 ? below(6) : below(2);
    static const uint16_t kTpids[] = {0x8100, 0x88a8, 0x9100};
    for (size_t i = 0; i < out.tags; ++i) b.vlan(static_cast<uint16_t>(i + 1), kTpids[below(3)]);
    out.ip_off = 14 + 4 * out.tags;
    size_t ip_hlen = 20;
    if (out.v6) {
      ip_hlen = 40;
      const uint32_t exts = below(3) == 0 ? below(10) : below(3);
      static const uint8_t kTypes[] = {IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS,
                                       IPPROTO_AH};
      for (uint32_t i = 0; i < exts; ++i) {
        const uint8_t type = kTypes[below(4)];
        // AH's length counts 4-byte words less two: 0 makes 8 bytes, as the
        // builder writes it.
        const uint8_t len8 = type == IPPROTO_AH ? 0 : static_cast<uint8_t>(below(3));
        b.ipv6Ext(type, len8);
        ip_hlen += (len8 + 1) * 8u;
      }
    } else if (below(4) == 0) {
      const uint8_t words = static_cast<uint8_t>(below(11));
      b.ipv4Options(words);
      ip_hlen += 4u * words;
    }
    if (below(12) == 0) {
      b.fragment(static_cast<uint16_t>(below(3)), below(2) == 1);
      if (out.v6) ip_hlen += 8;
    }
    if (below(12) == 0) b.udp();
    if (below(3) == 0) b.tcpOptions(static_cast<uint8_t>(below(11)));
    std::vector<uint8_t> payload(below(4) == 0 ? 0 : below(1400));
    for (uint8_t& byte : payload) byte = static_cast<uint8_t>(rng_());
    b.payload(payload);
    if (below(4) == 0) b.padTo(60);
    out.l4_off = out.ip_off + ip_hlen;
    out.frame = b.build();
    if (below(5) == 0) wrap(out);
    return out;
  }

  // Puts the frame inside a tunnel, over IPv4 or IPv6: the frame ends the
  // tunnelled one unchanged, so its offsets move by what is in front.
  void wrap(Built& out) {
    namespace en = encap;
    const bool v6 = below(2) == 1;
    const uint16_t type = v6 ? 0x86dd : 0x0800;
    const auto vni = static_cast<uint32_t>(rng_()) & 0xffffff;
    en::Bytes wrapped;
    switch (below(4)) {
      case 0:
        wrapped = en::eth(type, en::outerIp(v6, 17, en::vxlan(vni, out.frame)));
        break;
      case 1:
        wrapped = en::eth(
            type, en::outerIp(v6, 17,
                              en::geneve(vni, 0x6558, out.frame, static_cast<uint8_t>(below(4)))));
        break;
      case 2: {
        en::GreOptions o;
        o.key = below(2) == 1;
        o.seq = below(2) == 1;
        o.key_value = vni;
        wrapped = en::eth(type, en::outerIp(v6, 47, en::gre(0x6558, out.frame, o)));
        break;
      }
      default:  // VXLAN in VXLAN: two layers
        wrapped = en::eth(
            type,
            en::outerIp(
                v6, 17,
                en::vxlan(1, en::eth(0x0800, en::outerIp(false, 17, en::vxlan(vni, out.frame))))));
        break;
    }
    out.encap = wrapped.size() - out.frame.size();
    out.ip_off += out.encap;
    out.l4_off += out.encap;
    out.frame = std::move(wrapped);
  }

  // One kind of damage, or none.
  void damage(Built& f) {
    Frame& p = f.frame;
    auto at = [&](size_t i) -> uint8_t* { return i < p.size() ? &p[i] : nullptr; };
    switch (below(9)) {
      case 0:
        p.resize(below(static_cast<uint32_t>(std::min(p.size(), f.l4_off + 24) + 1)));
        break;
      case 1:  // IPv4 header length (and version, for IPv6)
        if (uint8_t* v = at(f.ip_off)) *v = static_cast<uint8_t>((*v & 0xf0) | below(16));
        break;
      case 2:  // TCP data offset
        if (uint8_t* v = at(f.l4_off + 12)) *v = static_cast<uint8_t>(below(16) << 4);
        break;
      case 3:  // IP length field
        if (uint8_t* v = at(f.ip_off + (f.v6 ? 4 : 2))) *v = static_cast<uint8_t>(rng_());
        if (uint8_t* v = at(f.ip_off + (f.v6 ? 5 : 3))) *v = static_cast<uint8_t>(rng_());
        break;
      case 4:  // IP version
        if (uint8_t* v = at(f.ip_off)) *v = static_cast<uint8_t>((below(16) << 4) | (*v & 0x0f));
        break;
      case 5: {  // an EtherType or tag type
        static const uint16_t kTypes[] = {0x8100, 0x88a8, 0x9100, 0x0800, 0x86dd, 0x0806, 0x1234};
        const size_t where = f.encap + 12 + 4 * below(static_cast<uint32_t>(f.tags + 1));
        const uint16_t t = kTypes[below(7)];
        if (uint8_t* v = at(where)) *v = static_cast<uint8_t>(t >> 8);
        if (uint8_t* v = at(where + 1)) *v = static_cast<uint8_t>(t);
        break;
      }
      case 6:  // random bytes in the headers
        for (int i = 0; i < 3; ++i) {
          if (uint8_t* v = at(below(static_cast<uint32_t>(f.l4_off + 20)))) {
            *v = static_cast<uint8_t>(rng_());
          }
        }
        break;
      case 7:  // the next-header / protocol field
        if (uint8_t* v = at(f.ip_off + (f.v6 ? 6 : 9))) *v = static_cast<uint8_t>(rng_());
        break;
      default:
        break;
    }
  }

 private:
  std::mt19937 rng_;
};

const l7tap_counter kVerdicts[] = {L7TAP_CNT_TCP, L7TAP_CNT_UNPARSABLE, L7TAP_CNT_NOT_TCP,
                                   L7TAP_CNT_FRAGMENTS};

l7tap_counter replayVerdict(DecodeResult r) {
  switch (r) {
    case DecodeResult::kSegment:
      return L7TAP_CNT_TCP;
    case DecodeResult::kNotIp:
    case DecodeResult::kNotTcp:
      return L7TAP_CNT_NOT_TCP;
    case DecodeResult::kFragment:
      return L7TAP_CNT_FRAGMENTS;
    case DecodeResult::kTruncatedHeader:
    case DecodeResult::kMalformed:
      return L7TAP_CNT_UNPARSABLE;
  }
  return L7TAP_CNT_MAX;
}

// Runs frames through one program (TC ingress or XDP) and compares each
// with replay's decoder.
class Comparison {
 public:
  Comparison(TcProgram& prog, bool xdp) : prog_(prog), xdp_(xdp) {
    for (l7tap_counter c : kVerdicts) last_[c] = prog_.counter(c);
    last_packets_ = prog_.counter(L7TAP_CNT_PACKETS);
  }

  void check(const Frame& f, const std::string& what) {
    SCOPED_TRACE(std::string(xdp_ ? "xdp" : "tc ingress") + ", " + what + ", frame of " +
                 std::to_string(f.size()) + " bytes");
    const TcProgram::RunResult r = xdp_ ? prog_.runXdp(f) : prog_.run(L7TAP_DIR_INGRESS, f);
    const uint64_t packets = prog_.counter(L7TAP_CNT_PACKETS);
    if (r.err == -EINVAL && packets == last_packets_) {
      // BPF_PROG_TEST_RUN refuses some short frames: the program never ran.
      refused_++;
      return;
    }
    ASSERT_EQ(r.err, 0) << strerror(-r.err);
    ASSERT_EQ(packets, last_packets_ + 1);
    last_packets_ = packets;
    l7tap_counter kernel = L7TAP_CNT_MAX;
    for (l7tap_counter c : kVerdicts) {
      const uint64_t v = prog_.counter(c);
      if (v != last_[c]) {
        EXPECT_EQ(kernel, L7TAP_CNT_MAX) << "two verdicts";
        kernel = c;
      }
      last_[c] = v;
    }
    SegmentEvent seg;
    const DecodeResult result = PacketDecoder(DLT_EN10MB).decode(f, seg);
    l7tap_packet pkt{};
    EXPECT_EQ(PacketDecoder(DLT_EN10MB).parse(f, 0, pkt), result);
    if (pkt.tunnel.type != L7TAP_TUNNEL_NONE &&
        (!(L7TAP_BPF_PARSE_TUNNELS & (1u << pkt.tunnel.type)) ||
         pkt.tunnel.depth > L7TAP_BPF_MAX_ENCAP)) {
      // A tunnel the kernel program leaves closed, or one deeper than it goes.
      EXPECT_EQ(kernel, L7TAP_CNT_NOT_TCP) << "replay: " << toString(result);
      verdicts_[kernel]++;
      tunnels_++;
      EXPECT_TRUE(prog_.drain().empty());
      return;
    }
    EXPECT_EQ(kernel, replayVerdict(result)) << "replay: " << toString(result);
    verdicts_[kernel]++;
    const std::vector<Event> events = prog_.drain();
    if (kernel != L7TAP_CNT_TCP || result != DecodeResult::kSegment) {
      EXPECT_TRUE(events.empty());
      return;
    }
    ASSERT_EQ(events.size(), 1u);
    const l7tap_segment_event& e = events[0].seg();
    EXPECT_TRUE(keysEqual(e.key, seg.key));
    EXPECT_EQ(e.seq, seg.seq);
    EXPECT_EQ(e.ack, seg.ack);
    EXPECT_EQ(e.tcp_flags, seg.tcp_flags);
    EXPECT_EQ(e.tcp_window, seg.tcp_window);
    EXPECT_EQ(e.payload_len, seg.payload_len);
    EXPECT_EQ(e.data_offset, 0u);
    // The payload offset: the kernel copied its bytes from the same place
    // in the frame (random payloads make another offset show).
    const size_t offset = static_cast<size_t>(seg.payload.data() - f.data());
    const size_t expected = std::min<size_t>(seg.payload.size(), L7TAP_MAX_EVENT_PAYLOAD);
    ASSERT_EQ(e.captured_len, expected);
    EXPECT_EQ(events[0].data, Frame(f.begin() + static_cast<std::ptrdiff_t>(offset),
                                    f.begin() + static_cast<std::ptrdiff_t>(offset + expected)));
  }

  uint64_t refused() const { return refused_; }
  uint64_t tunnels() const { return tunnels_; }
  uint64_t verdicts(l7tap_counter c) const {
    auto it = verdicts_.find(c);
    return it == verdicts_.end() ? 0 : it->second;
  }

 private:
  TcProgram& prog_;
  bool xdp_;
  uint64_t last_packets_ = 0;
  uint64_t refused_ = 0;
  uint64_t tunnels_ = 0;
  std::map<l7tap_counter, uint64_t> last_;
  std::map<l7tap_counter, uint64_t> verdicts_;
};

TEST(KernelEqualsReplay, PacketParser) {
  L7TAP_SKIP_UNLESS(missingRoot());
  std::string error;
  // One program per hook: TC's owner rule keeps per-flow state.
  const TcConfig cfg{.window = L7TAP_MAX_EVENT_PAYLOAD};
  auto tc = TcProgram::load(cfg, &error);
  ASSERT_NE(tc, nullptr) << error;
  auto xdp = TcProgram::load(cfg, &error);
  ASSERT_NE(xdp, nullptr) << error;
  Comparison on_tc(*tc, false), on_xdp(*xdp, true);
  auto both = [&](const Frame& f, const std::string& what) {
    on_tc.check(f, what);
    on_xdp.check(f, what);
  };

  Generator gen(20261204);
  size_t frames = 0;
  for (int i = 0; i < 600; ++i) {
    Built b = gen.frame();
    const std::string what = "frame " + std::to_string(i);
    both(b.frame, what);
    ++frames;
    // Cut at every length of its headers (and a few payload bytes).
    if (i % 10 == 0) {
      for (size_t n = 0; n < std::min(b.frame.size(), b.l4_off + 24); ++n) {
        both(Frame(b.frame.begin(), b.frame.begin() + static_cast<std::ptrdiff_t>(n)),
             what + " cut to " + std::to_string(n));
        ++frames;
      }
    }
    for (int k = 0; k < 4; ++k) {
      Built d = b;
      gen.damage(d);
      both(d.frame, what + " damaged " + std::to_string(k));
      ++frames;
    }
    if (::testing::Test::HasFailure()) return;
  }
  // Every verdict was reached, on both hooks, and most frames ran.
  for (const Comparison* c : {&on_tc, &on_xdp}) {
    for (l7tap_counter v : kVerdicts) EXPECT_GT(c->verdicts(v), 50u) << v;
    EXPECT_GT(c->tunnels(), 100u);
    EXPECT_LT(c->refused(), frames / 4);
  }
}

}  // namespace
}  // namespace l7tap::testing
