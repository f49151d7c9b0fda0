// The real kernel program (tc/l7tap.bpf.c) on hostile packets, run with
// BPF_PROG_TEST_RUN on TC ingress, TC egress and XDP: frames truncated at
// every length, bogus IPv4 header lengths and TCP data offsets, IP length
// fields that lie, IPv6 extension header chains (long, self-referencing,
// lengths past the end), VLAN stacks of 0 to 6 tags, mutated and random
// bytes. Every run must pass the packet (TC_ACT_UNSPEC, the verdict the
// program always returns, or XDP_PASS), and the counters must account for
// every packet:
//   packets = tcp + unparsable + not_tcp + fragments
//   tcp     = filtered + not_owner + segment events + ringbuf_full
// (the last without capture control, and with a ring buffer that is drained
// after every run, so it never fills), and the events must be what the
// frames allow. Needs root.
#include <linux/pkt_cls.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/support/privileged.h"
#include "tests/tc/packet_builder.h"
#include "tests/tc/tc_program.h"

namespace l7tap::testing {
namespace {

using Frame = std::vector<uint8_t>;

enum class Hook { kIngress, kEgress, kXdp };
const char* hookName(Hook h) {
  return h == Hook::kIngress ? "ingress" : h == Hook::kEgress ? "egress" : "xdp";
}

// Runs frames through one hook of one loaded program and keeps the books.
class Harness {
 public:
  Harness(TcProgram& prog, Hook hook, uint32_t window, bool walk)
      : prog_(prog), hook_(hook), window_(window), walk_(walk) {}

  // Runs one frame. BPF_PROG_TEST_RUN itself refuses some short frames
  // (EINVAL: for an skb, shorter than an Ethernet header or cut inside the IP
  // header it announces); those never reach the program, which the packets
  // counter shows.
  void run(const Frame& f) {
    const uint64_t before = prog_.counter(L7TAP_CNT_PACKETS);
    const TcProgram::RunResult r =
        hook_ == Hook::kXdp
            ? prog_.runXdp(f)
            : prog_.run(hook_ == Hook::kIngress ? L7TAP_DIR_INGRESS : L7TAP_DIR_EGRESS, f);
    if (r.err == -EINVAL && prog_.counter(L7TAP_CNT_PACKETS) == before) {
      ++refused_;
      return;
    }
    ASSERT_EQ(r.err, 0) << hookName(hook_) << ": " << strerror(-r.err) << ", frame of " << f.size()
                        << " bytes";
    ++runs_;
    const uint32_t pass = hook_ == Hook::kXdp ? static_cast<uint32_t>(XDP_PASS)
                                              : static_cast<uint32_t>(TC_ACT_UNSPEC);
    EXPECT_EQ(r.retval, pass) << hookName(hook_) << ", frame of " << f.size() << " bytes";
    for (const Event& e : prog_.drain()) {
      ASSERT_EQ(e.kind, L7TAP_EVENT_SEGMENT);
      ++segments_;
      const l7tap_segment_event& s = e.seg();
      // What one frame can carry: payload within the frame (headers take at
      // least 14 + 20 + 20 bytes), copied bytes within the window.
      EXPECT_LE(s.payload_len + 54u, f.size());
      // The frame walk skips (data_offset) and copies control frames whole.
      EXPECT_LE(s.data_offset + s.captured_len, s.payload_len);
      EXPECT_LE(s.captured_len, walk_ ? uint32_t{L7TAP_MAX_EVENT_PAYLOAD} : window_);
      if (!walk_) {
        EXPECT_EQ(s.data_offset, 0u);
      }
      EXPECT_EQ(e.data.size(), s.captured_len);
      payload_bytes_ += s.payload_len;
    }
  }

  // The counters account for every run (see the file comment).
  void checkBooks(bool exact_events) const {
    SCOPED_TRACE(hookName(hook_));
    const uint64_t packets = prog_.counter(L7TAP_CNT_PACKETS);
    const uint64_t tcp = prog_.counter(L7TAP_CNT_TCP);
    EXPECT_EQ(packets, runs_);
    EXPECT_EQ(packets, tcp + prog_.counter(L7TAP_CNT_UNPARSABLE) +
                           prog_.counter(L7TAP_CNT_NOT_TCP) + prog_.counter(L7TAP_CNT_FRAGMENTS));
    EXPECT_EQ(prog_.counter(L7TAP_CNT_RINGBUF_FULL), 0u);
    EXPECT_EQ(prog_.counter(L7TAP_CNT_EVENTS), segments_);
    if (exact_events) {
      EXPECT_EQ(tcp,
                prog_.counter(L7TAP_CNT_FILTERED) + prog_.counter(L7TAP_CNT_NOT_OWNER) + segments_);
      EXPECT_EQ(prog_.counter(L7TAP_CNT_PAYLOAD_BYTES), payload_bytes_);
    }
    // Each kind of hostile frame below reaches each outcome.
    EXPECT_GT(tcp, 0u);
    EXPECT_GT(prog_.counter(L7TAP_CNT_UNPARSABLE), 0u);
    EXPECT_GT(prog_.counter(L7TAP_CNT_NOT_TCP), 0u);
    EXPECT_GT(prog_.counter(L7TAP_CNT_FRAGMENTS), 0u);
  }

  uint64_t runs() const { return runs_; }
  uint64_t refused() const { return refused_; }

 private:
  TcProgram& prog_;
  Hook hook_;
  uint32_t window_;
  bool walk_;
  uint64_t runs_ = 0;
  uint64_t refused_ = 0;
  uint64_t segments_ = 0;
  uint64_t payload_bytes_ = 0;
};

constexpr uint8_t kPshAck = L7TAP_TCP_PSH | L7TAP_TCP_ACK;
constexpr size_t kEth = 14;

PacketBuilder v4() {
  return PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ports(40000, 8080).flags(kPshAck).ack(7);
}
PacketBuilder v6() {
  return PacketBuilder().ipv6("fd00::1", "fd00::2").ports(40000, 8080).flags(kPshAck).ack(7);
}

void put16(Frame& f, size_t at, uint16_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}

// Every hostile frame of the test, deterministic (fixed seeds).
std::vector<Frame> hostileFrames() {
  std::vector<Frame> out;
  const std::string body = "GET /hostile HTTP/1.1\r\nHost: x\r\n\r\n";
  // The client preface, an empty SETTINGS frame and a HEADERS frame: a
  // first payload that arms the frame walk where it is on.
  const std::string h2(
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
      "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
      "\x00\x00\x03\x01\x05\x00\x00\x00\x01\x82\x84\x86",
      24 + 9 + 12);
  const std::vector<Frame> valid = {
      v4().payload(body).build(),
      v6().payload(body).build(),
      v4().vlan(10).vlan(20, 0x88a8).payload(body).build(),
      v6().ipv6Ext(0).ipv6Ext(43, 1).ipv6Ext(60).payload(body).build(),
      v4().ipv4Options(3).tcpOptions(4).payload(body).build(),
      v4().fragment(0, true).payload(body).build(),
      v6().fragment(8, false).payload(body).build(),
      v4().udp().payload(body).build(),
      v4().ports(40001, 8080).payload(h2).build(),
      v6().ports(40001, 8080).payload(h2.substr(24)).build(),
  };
  // Truncated at every length, headers and payload alike.
  for (const Frame& f : valid) {
    for (size_t n = 0; n <= f.size(); ++n) out.emplace_back(f.begin(), f.begin() + n);
  }
  // IPv4 header length 0..15 words; TCP data offset 0..15 words.
  const Frame base4 = v4().payload(body).build();
  for (uint8_t ihl = 0; ihl < 16; ++ihl) {
    Frame f = base4;
    f[kEth] = static_cast<uint8_t>(0x40 | ihl);
    out.push_back(f);
  }
  for (uint8_t doff = 0; doff < 16; ++doff) {
    Frame f = base4;
    f[kEth + 20 + 12] = static_cast<uint8_t>(doff << 4);
    out.push_back(f);
    Frame g = v6().payload(body).build();
    g[kEth + 40 + 12] = static_cast<uint8_t>(doff << 4);
    out.push_back(g);
  }
  // IP version fields that lie.
  for (uint8_t version = 0; version < 16; ++version) {
    Frame f = base4;
    f[kEth] = static_cast<uint8_t>((version << 4) | 5);
    out.push_back(f);
    Frame g = v6().payload(body).build();
    g[kEth] = static_cast<uint8_t>(version << 4);
    out.push_back(g);
  }
  // IP length fields that lie: shorter than the headers, inside them,
  // inside the payload, past the frame, and at their maximum; with and
  // without Ethernet padding after the datagram.
  const uint16_t ip_len = static_cast<uint16_t>(base4.size() - kEth);
  for (int lie : {0, 1, 19, 20, 39, 40, 41, ip_len - 1, ip_len + 0, ip_len + 1, 1500, 0xffff}) {
    const auto len = static_cast<uint16_t>(lie);
    for (size_t pad : {size_t{0}, size_t{64}}) {
      Frame f = base4;
      put16(f, kEth + 2, len);
      f.resize(f.size() + pad, 0);
      out.push_back(f);
      Frame g = v6().payload(body).build();
      put16(g, kEth + 4, len);
      g.resize(g.size() + pad, 0);
      out.push_back(g);
    }
  }
  // IPv6 extension chains: 0..12 headers (the program follows 6), the
  // largest header length (2 KB, past any frame here), every kind
  // pointing at itself, and chains cut inside a header.
  for (int n = 0; n <= 12; ++n) {
    PacketBuilder b = v6().payload(body);
    for (int i = 0; i < n; ++i) b.ipv6Ext(i % 2 ? 60 : 43, static_cast<uint8_t>(i % 3));
    out.push_back(b.build());
  }
  for (uint8_t type : {0, 43, 60}) {
    Frame f = v6().ipv6Ext(type).payload(body).build();
    f[kEth + 40 + 1] = 0xff;  // (255 + 1) * 8 bytes
    out.push_back(f);
    Frame loop = v6().ipv6Ext(type).ipv6Ext(type).payload(body).build();
    loop[kEth + 40] = type;  // the chain never reaches TCP
    loop[kEth + 48] = type;
    out.push_back(loop);
    Frame cut = v6().ipv6Ext(type, 4).payload("").build();
    cut.resize(kEth + 40 + 3);
    out.push_back(cut);
  }
  // VLAN stacks of 0..6 tags (the program skips 2), both TPIDs.
  for (int n = 0; n <= 6; ++n) {
    PacketBuilder b = v4().payload(body);
    for (int i = 0; i < n; ++i) b.vlan(static_cast<uint16_t>(i + 1), i % 2 ? 0x88a8 : 0x8100);
    out.push_back(b.build());
    Frame cut = b.build();
    cut.resize(kEth + 4 * static_cast<size_t>(n) + 2);
    out.push_back(cut);
  }
  // Valid frames with random bytes changed, and random bytes.
  std::mt19937 rng(20261204);
  for (int i = 0; i < 3000; ++i) {
    Frame f = valid[rng() % valid.size()];
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) f[rng() % f.size()] = static_cast<uint8_t>(rng());
    out.push_back(f);
  }
  for (int i = 0; i < 2000; ++i) {
    Frame f(kEth + rng() % 1500);
    for (uint8_t& b : f) b = static_cast<uint8_t>(rng());
    // Half of them claim IPv4 or IPv6, so the parser goes further.
    if (i % 2) put16(f, 12, i % 4 == 1 ? 0x0800 : 0x86dd);
    out.push_back(f);
  }
  return out;
}

struct Case {
  Hook hook;
  bool frame_walk;  // arm the HTTP/2 frame walk on first payloads (capture control)
};

class HostilePackets : public ::testing::TestWithParam<Case> {};

TEST_P(HostilePackets, EveryFrameIsPassedAndCounted) {
  L7TAP_SKIP_UNLESS(missingRoot());
  const Case c = GetParam();
  const uint32_t window = 256;
  std::string error;
  auto prog = TcProgram::load({.window = window, .frame_walk = c.frame_walk}, &error);
  ASSERT_NE(prog, nullptr) << error;
  Harness h(*prog, c.hook, window, c.frame_walk);
  const std::vector<Frame> frames = hostileFrames();
  for (const Frame& f : frames) {
    h.run(f);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_EQ(h.runs() + h.refused(), frames.size());
  // Only frames cut short are refused, and most frames run.
  EXPECT_LT(h.refused(), frames.size() / 10);
  // Walked segments can become several events; without the walk each TCP
  // packet is exactly one event.
  h.checkBooks(!c.frame_walk);
  // The HTTP/2 first payloads armed the walk, and it shaped segments.
  if (c.frame_walk) {
    EXPECT_GT(prog->counter(L7TAP_CNT_WALKED), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Hooks, HostilePackets,
                         ::testing::Values(Case{Hook::kIngress, false}, Case{Hook::kEgress, false},
                                           Case{Hook::kXdp, false}, Case{Hook::kIngress, true},
                                           Case{Hook::kXdp, true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(hookName(info.param.hook)) +
                                  (info.param.frame_walk ? "_frame_walk" : "");
                         });

}  // namespace
}  // namespace l7tap::testing
