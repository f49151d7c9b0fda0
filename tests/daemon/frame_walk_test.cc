// The HTTP/2 frame walk (tc/frame_walk.h) in user space: through
// CapturePolicy::apply (replay's driver of the policy) and through the C
// functions themselves, on built HTTP/2 frame streams cut into segments.
// The last tests run the same packets through the real BPF program and
// through CapturePolicy and require the same events (root only; the kernel
// program comes with l7tap_daemon's skeleton).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "daemon/capture_policy.h"
#include "tc/frame_walk.h"
#include "tests/support/privileged.h"
#include "tests/tc/packet_builder.h"
#include "tests/tc/tc_program.h"

namespace l7tap {
namespace {

constexpr uint8_t kHeaders = 0x1;
constexpr uint8_t kSettings = 0x4;
constexpr uint8_t kPing = 0x6;
constexpr uint8_t kWindowUpdate = 0x8;
constexpr uint8_t kContinuation = 0x9;
constexpr uint8_t kData = 0x0;
constexpr uint8_t kUnknown = 0x20;
constexpr uint8_t kPadded = L7TAP_H2_FLAG_PADDED;
constexpr uint8_t kPshAck = L7TAP_TCP_PSH | L7TAP_TCP_ACK;
constexpr uint32_t kBase = 1000;

// One frame of a built stream: its header starts at stream offset `off`.
struct Frame {
  uint32_t off;
  uint32_t len;
  uint8_t type;
  uint8_t flags;
};

// A built HTTP/2 byte stream (one direction). Payload bytes depend on their
// stream offset, so a copy from the wrong place shows.
struct H2Stream {
  std::vector<uint8_t> bytes;
  std::vector<Frame> frames;

  H2Stream& add(uint8_t type, uint8_t flags, uint32_t len, uint32_t stream_id = 1) {
    frames.push_back({static_cast<uint32_t>(bytes.size()), len, type, flags});
    bytes.push_back(static_cast<uint8_t>(len >> 16));
    bytes.push_back(static_cast<uint8_t>(len >> 8));
    bytes.push_back(static_cast<uint8_t>(len));
    bytes.push_back(type);
    bytes.push_back(flags);
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<uint8_t>(stream_id >> s));
    for (uint32_t i = 0; i < len; ++i) {
      const size_t at = bytes.size();
      bytes.push_back(static_cast<uint8_t>((at * 131u + (at >> 8) * 7u + 3u) & 0xff));
    }
    return *this;
  }
  // `n` bytes that are not frames (what came before an armed boundary).
  H2Stream& filler(uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) bytes.push_back(static_cast<uint8_t>(0xa0 + i % 16));
    return *this;
  }
  uint32_t size() const { return static_cast<uint32_t>(bytes.size()); }

  // Bytes the walk must copy: every byte of frames of known types but DATA,
  // the header of any frame, and the payload prefix of DATA frames.
  std::vector<bool> mustCopy() const {
    std::vector<bool> m(bytes.size(), false);
    for (const Frame& f : frames) {
      uint32_t n = L7TAP_H2_FRAME_HEADER;
      if (f.type == kData) {
        n += std::min<uint32_t>(f.len, (f.flags & kPadded) ? 6 : 5);
      } else if (f.type <= kContinuation) {
        n += f.len;
      }
      for (uint32_t i = 0; i < n; ++i) m[f.off + i] = true;
    }
    return m;
  }
};

// One delivered event, copied out of the borrowed SegmentEvent.
struct Part {
  uint32_t seq = 0;
  uint32_t payload_len = 0;
  uint32_t offset = 0;
  std::vector<uint8_t> data;
  uint8_t tcp_flags = 0;
  uint8_t capture_flags = 0;
};

// 10.0.0.1:40000 -> 10.0.0.2:8080: the canonical low endpoint sends.
l7tap_flow_key clientKey() {
  l7tap_flow_key k{};
  k.family = 4;
  k.saddr[10] = k.saddr[11] = 0xff;
  k.daddr[10] = k.daddr[11] = 0xff;
  k.saddr[12] = 10, k.saddr[15] = 1;
  k.daddr[12] = 10, k.daddr[15] = 2;
  k.sport = 40000;
  k.dport = 8080;
  return k;
}

// CapturePolicy with one frame-walked direction (client to server).
class Walker {
 public:
  explicit Walker(uint32_t window = 1024) : policy_(window, true) {}

  void arm(uint32_t seq) { policy_.walkFrames(canonicalKey(clientKey()), 0, seq); }

  // Sends stream bytes [from, from + len) as a segment at base + from.
  std::vector<Part> send(const H2Stream& s, uint32_t base, uint32_t from, uint32_t len,
                         uint8_t flags = kPshAck) {
    return sendBytes(base + from, std::span<const uint8_t>(s.bytes).subspan(from, len), flags);
  }

  std::vector<Part> sendBytes(uint32_t seq, std::span<const uint8_t> payload,
                              uint8_t flags = kPshAck) {
    SegmentEvent seg;
    seg.key = clientKey();
    seg.seq = seq;
    seg.ack = 77;
    seg.tcp_flags = flags;
    seg.tcp_window = 100;
    seg.payload_len = static_cast<uint32_t>(payload.size());
    seg.payload = payload;
    std::vector<Part> parts;
    policy_.apply(seg, [&](const SegmentEvent& e) {
      EXPECT_EQ(e.ack, 77u);
      EXPECT_EQ(e.tcp_window, 100u);
      EXPECT_TRUE(std::memcmp(&e.key, &seg.key, sizeof e.key) == 0);
      parts.push_back({e.seq, e.payload_len, e.payload_offset,
                       std::vector<uint8_t>(e.payload.begin(), e.payload.end()), e.tcp_flags,
                       e.capture_flags});
    });
    return parts;
  }

  const CopyCounters& counters() const { return policy_.counters(); }

 private:
  CapturePolicy policy_;
};

// The parts cover [seq, seq + len) contiguously, each "skip, then copy, then
// not copied", and copy the stream's own bytes (stream offset = seq - base).
void expectCoverage(const std::vector<Part>& parts, const H2Stream& s, uint32_t base, uint32_t from,
                    uint32_t len) {
  ASSERT_FALSE(parts.empty());
  uint32_t at = from;
  for (size_t i = 0; i < parts.size(); ++i) {
    SCOPED_TRACE("part " + std::to_string(i));
    const Part& p = parts[i];
    EXPECT_EQ(p.seq, base + at);
    EXPECT_LE(p.offset + p.data.size(), p.payload_len);
    EXPECT_LE(p.data.size(), static_cast<size_t>(L7TAP_MAX_EVENT_PAYLOAD));
    const uint32_t copy_from = at + p.offset;
    ASSERT_LE(copy_from + p.data.size(), s.bytes.size());
    EXPECT_TRUE(std::equal(p.data.begin(), p.data.end(), s.bytes.begin() + copy_from))
        << "copied bytes are not the stream's at offset " << copy_from;
    at += p.payload_len;
  }
  EXPECT_EQ(at, from + len) << "the parts do not cover the segment";
}

struct Shape {
  uint32_t skip;
  uint32_t copy;
  uint32_t rest = 0;
  bool operator==(const Shape&) const = default;
};

std::vector<Shape> shapes(const std::vector<Part>& parts) {
  std::vector<Shape> out;
  for (const Part& p : parts) {
    out.push_back({p.offset, static_cast<uint32_t>(p.data.size()),
                   p.payload_len - p.offset - static_cast<uint32_t>(p.data.size())});
  }
  return out;
}

std::string describe(const std::vector<Shape>& v) {
  std::string s;
  for (const Shape& x : v) {
    s += "{skip " + std::to_string(x.skip) + ", copy " + std::to_string(x.copy) + ", rest " +
         std::to_string(x.rest) + "} ";
  }
  return s;
}

#define EXPECT_SHAPES(parts, ...)                                                                \
  do {                                                                                           \
    const std::vector<Shape> expected_shapes = __VA_ARGS__;                                      \
    const std::vector<Shape> actual_shapes = shapes(parts);                                      \
    EXPECT_EQ(actual_shapes, expected_shapes)                                                    \
        << "actual: " << describe(actual_shapes) << "\nexpected: " << describe(expected_shapes); \
  } while (0)

// The capture flags of part i of a walked segment: every part after the
// first is marked as such.
uint8_t walkedFlags(size_t i) { return L7TAP_SEG_WALKED | (i > 0 ? L7TAP_SEG_PART : 0); }

void expectAllWalked(const std::vector<Part>& parts) {
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].capture_flags, walkedFlags(i)) << "part " << i;
  }
}

// The C functions driven directly, as the kernel loop does (max_steps 0: no
// bound), so the walk state can be looked at.
struct CEvent {
  uint32_t off, skip, copy, rest;
  bool last, lost;
};

struct CWalk {
  l7tap_frame_walk w{};

  void arm(uint32_t seq) {
    w = {};
    w.state = L7TAP_WALK_ARMED;
    w.next_hdr = seq;
  }

  // Returns the events, or one plain pseudo-event {0, 0, 0, len} with
  // `walked` false when the plain window applies.
  std::vector<CEvent> run(uint32_t seq, std::span<const uint8_t> payload, uint32_t window,
                          bool* walked = nullptr, bool* lost = nullptr, int max_steps = 0) {
    l7tap_walk_cursor c;
    std::vector<CEvent> out;
    const uint32_t len = static_cast<uint32_t>(payload.size());
    const int began = l7tap_walk_begin(&w, seq, len, window, &c);
    if (walked) *walked = began && !c.whole;  // copied whole while lost: not walked
    if (lost) *lost = c.lost;
    if (!began) return out;
    for (int steps = 0;; ++steps) {
      int step;
      if (max_steps && steps == max_steps) {
        step = l7tap_walk_abort(&w, &c);
      } else {
        step = l7tap_walk_next(&w, &c);
      }
      if (step == L7TAP_WALK_DONE) break;
      if (step == L7TAP_WALK_HEADER) {
        EXPECT_GE(c.hdr_need, 1u);
        EXPECT_LE(c.hdr_need, static_cast<uint32_t>(L7TAP_WALK_HEADER_BYTES));
        EXPECT_LE(c.off + c.hdr_need, len);
        l7tap_walk_header(&w, &c, payload.data() + c.off);
      } else if (step == L7TAP_WALK_EVENT) {
        out.push_back({c.ev_off, c.ev_skip, c.ev_copy, c.ev_rest, c.ev_last != 0, c.lost != 0});
        if (c.done) break;
      }
      if (max_steps && steps == max_steps) break;
    }
    return out;
  }
};

// --- The policy's building blocks ----------------------------------------------

TEST(FrameWalk, FrameCopyLengths) {
  EXPECT_EQ(l7tap_walk_frame_copy(1000, kData, 0), 5u);
  EXPECT_EQ(l7tap_walk_frame_copy(1000, kData, kPadded), 6u);
  EXPECT_EQ(l7tap_walk_frame_copy(1000, kData, 0x1), 5u);  // END_STREAM only
  EXPECT_EQ(l7tap_walk_frame_copy(3, kData, 0), 3u);
  EXPECT_EQ(l7tap_walk_frame_copy(5, kData, kPadded), 5u);
  EXPECT_EQ(l7tap_walk_frame_copy(0, kData, 0), 0u);
  EXPECT_EQ(l7tap_walk_frame_copy(1000, kHeaders, 0), 1000u);
  EXPECT_EQ(l7tap_walk_frame_copy(7, kContinuation, 0), 7u);
  EXPECT_EQ(l7tap_walk_frame_copy(18, kSettings, 0), 18u);
  for (uint8_t t = 1; t <= kContinuation; ++t) EXPECT_EQ(l7tap_walk_frame_copy(40, t, 0), 40u);
  EXPECT_EQ(l7tap_walk_frame_copy(1000, 0x0a, 0), 0u);
  EXPECT_EQ(l7tap_walk_frame_copy(1000, kUnknown, 0), 0u);
  EXPECT_EQ(l7tap_walk_frame_copy(1000, 0xff, 0xff), 0u);
}

TEST(FrameWalk, OffAndUnarmedDirectionsArePlain) {
  CWalk c;
  const std::vector<uint8_t> bytes(100, 1);
  bool walked = true, lost = true;
  EXPECT_TRUE(c.run(kBase, bytes, 1024, &walked, &lost).empty());
  EXPECT_FALSE(walked);
  EXPECT_FALSE(lost);
  EXPECT_EQ(c.w.state, L7TAP_WALK_OFF);

  // An armed direction, and one without payload: nothing to walk.
  c.arm(kBase);
  EXPECT_TRUE(c.run(kBase, {}, 1024, &walked, &lost).empty());
  EXPECT_FALSE(walked);
  EXPECT_EQ(c.w.state, L7TAP_WALK_ARMED);

  // The other direction of an armed flow is not walked.
  Walker policy;
  policy.arm(kBase);
  SegmentEvent seg;
  seg.key = clientKey();
  std::swap(seg.key.sport, seg.key.dport);
  std::swap(seg.key.saddr, seg.key.daddr);
  seg.seq = kBase;
  seg.payload_len = 100;
  seg.payload = bytes;
  CapturePolicy p(1024, true);
  p.walkFrames(canonicalKey(clientKey()), 0, kBase);
  int n = 0;
  p.apply(seg, [&](const SegmentEvent& e) {
    n++;
    EXPECT_EQ(e.capture_flags, 0);
    EXPECT_EQ(e.payload.size(), 100u);
  });
  EXPECT_EQ(n, 1);
  EXPECT_EQ(p.counters().walked_segments, 0u);
}

// --- One segment -----------------------------------------------------------------

TEST(FrameWalk, SeveralFramesInOneSegment) {
  for (const uint32_t base : {kBase, 0xffffff00u, 0xffffffffu - 50u}) {
    SCOPED_TRACE("base " + std::to_string(base));
    H2Stream s;
    s.add(kHeaders, 0x4, 100).add(kData, 0, 16384).add(kHeaders, 0x5, 50);
    ASSERT_EQ(s.size(), 109u + 16393u + 59u);
    Walker w;
    w.arm(base);
    const auto parts = w.send(s, base, 0, s.size());
    expectCoverage(parts, s, base, 0, s.size());
    // HEADERS whole + DATA header and 5 bytes; then the DATA payload's rest
    // skipped, the last HEADERS copied.
    EXPECT_SHAPES(parts, {{0, 123}, {16379, 59}});
    expectAllWalked(parts);
    EXPECT_EQ(w.counters().walked_segments, 1u);
    EXPECT_EQ(w.counters().skipped_bytes, 16379u);
    EXPECT_EQ(w.counters().copied_bytes, 182u);
    EXPECT_EQ(w.counters().payload_bytes, s.size());
    EXPECT_EQ(w.counters().walk_lost, 0u);

    CWalk c;
    c.arm(base);
    const auto ev = c.run(base, s.bytes, 1024);
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_FALSE(ev[0].last);
    EXPECT_TRUE(ev[1].last);
    EXPECT_EQ(c.w.state, L7TAP_WALK_ON);
    EXPECT_EQ(c.w.pos, base + s.size());
    EXPECT_EQ(c.w.next_hdr, base + s.size());
    EXPECT_EQ(c.w.copy_end, base + s.size());
    EXPECT_EQ(c.w.hdr_len, 0);
  }
}

TEST(FrameWalk, PaddedDataCopiesSixPayloadBytes) {
  H2Stream s;
  s.add(kHeaders, 0x4, 10).add(kData, kPadded, 1000).add(kHeaders, 0x5, 10);
  Walker w;
  w.arm(kBase);
  const auto parts = w.send(s, kBase, 0, s.size());
  expectCoverage(parts, s, kBase, 0, s.size());
  EXPECT_SHAPES(parts, {{0, 19 + 15}, {994, 19}});

  // Without PADDED: five.
  H2Stream t;
  t.add(kHeaders, 0x4, 10).add(kData, 0x1, 1000).add(kHeaders, 0x5, 10);
  Walker w2;
  w2.arm(kBase);
  EXPECT_SHAPES(w2.send(t, kBase, 0, t.size()), {{0, 19 + 14}, {995, 19}});
}

TEST(FrameWalk, UnknownFrameTypeCopiesOnlyItsHeader) {
  H2Stream s;
  s.add(kUnknown, 0, 1000).add(kSettings, 0, 12);
  Walker w;
  w.arm(kBase);
  const auto parts = w.send(s, kBase, 0, s.size());
  expectCoverage(parts, s, kBase, 0, s.size());
  EXPECT_SHAPES(parts, {{0, 9}, {1000, 21}});
}

TEST(FrameWalk, ShortSkipIsCopied) {
  // DATA of 260 bytes: 255 after the prefix, copied.
  H2Stream s;
  s.add(kHeaders, 0x4, 10).add(kData, 0, 260).add(kHeaders, 0x5, 10);
  Walker w;
  w.arm(kBase);
  auto parts = w.send(s, kBase, 0, s.size());
  expectCoverage(parts, s, kBase, 0, s.size());
  EXPECT_SHAPES(parts, {{0, 19 + 269 + 19}});
  EXPECT_EQ(w.counters().skipped_bytes, 0u);

  // 261 bytes: exactly L7TAP_WALK_MIN_SKIP after the prefix, skipped.
  H2Stream t;
  t.add(kHeaders, 0x4, 10).add(kData, 0, 261).add(kHeaders, 0x5, 10);
  Walker w2;
  w2.arm(kBase);
  parts = w2.send(t, kBase, 0, t.size());
  expectCoverage(parts, t, kBase, 0, t.size());
  EXPECT_SHAPES(parts, {{0, 19 + 14}, {256, 19}});

  // Many small DATA frames (a gRPC stream of small messages): all copied,
  // one event.
  H2Stream u;
  for (int i = 0; i < 20; ++i) u.add(kData, 0, 100 + i);
  Walker w3;
  w3.arm(kBase);
  parts = w3.send(u, kBase, 0, u.size());
  EXPECT_SHAPES(parts, {{0, u.size()}});
}

TEST(FrameWalk, ShortRestOfASkipAtTheStartOfASegmentIsCopied) {
  H2Stream s;
  s.add(kHeaders, 0x4, 20).add(kData, 0, 50000).add(kHeaders, 0x5, 20);
  const uint32_t next_hdr = 29 + 50009;
  Walker w;
  w.arm(kBase);
  const uint32_t cut = next_hdr - 100;  // 100 bytes of the DATA payload left
  auto parts = w.send(s, kBase, 0, cut);
  expectCoverage(parts, s, kBase, 0, cut);
  EXPECT_SHAPES(parts, {{0, 43}, {cut - 43, 0}});
  parts = w.send(s, kBase, cut, s.size() - cut);
  expectCoverage(parts, s, kBase, cut, s.size() - cut);
  EXPECT_SHAPES(parts, {{0, 129}});
}

TEST(FrameWalk, HeadersLargerThanAnEventAreSplit) {
  H2Stream s;
  s.add(kHeaders, 0x4, 10000);
  // The window does not limit walked frames, only plain windows.
  for (const uint32_t window : {1u, 1024u, 0u}) {
    Walker w(window);
    w.arm(kBase);
    const auto parts = w.send(s, kBase, 0, s.size());
    expectCoverage(parts, s, kBase, 0, s.size());
    EXPECT_SHAPES(parts, {{0, 4096}, {0, 4096}, {0, 10009 - 8192}});
    expectAllWalked(parts);
  }

  // A frame header that does not fit the event's room starts the next one.
  H2Stream t;
  t.add(kHeaders, 0x4, 4085).add(kHeaders, 0x5, 10);
  Walker w;
  w.arm(kBase);
  const auto parts = w.send(t, kBase, 0, t.size());
  expectCoverage(parts, t, kBase, 0, t.size());
  EXPECT_SHAPES(parts, {{0, 4094}, {0, 19}});

  // A skip then a large copy: the skip starts the event, copies follow.
  H2Stream u;
  u.add(kData, 0, 1000).add(kHeaders, 0x4, 5000);
  Walker w2;
  w2.arm(kBase);
  const auto parts2 = w2.send(u, kBase, 0, u.size());
  expectCoverage(parts2, u, kBase, 0, u.size());
  EXPECT_SHAPES(parts2, {{0, 14}, {995, 4096}, {0, 5009 - 4096}});
}

// --- Across segments ------------------------------------------------------------

TEST(FrameWalk, FrameHeaderSplitAcrossTwoSegments) {
  for (const uint32_t base : {kBase, 0xffffffffu - 41u}) {
    for (uint32_t k = 0; k <= 9; ++k) {
      SCOPED_TRACE("base " + std::to_string(base) + ", " + std::to_string(k) +
                   " header bytes in the first segment");
      H2Stream s;
      s.add(kHeaders, 0x4, 30).add(kData, 0, 1000).add(kHeaders, 0x5, 30);
      const uint32_t cut = 39 + k;
      Walker w;
      w.arm(base);
      auto parts = w.send(s, base, 0, cut);
      expectCoverage(parts, s, base, 0, cut);
      EXPECT_SHAPES(parts, {{0, cut}});
      parts = w.send(s, base, cut, s.size() - cut);
      expectCoverage(parts, s, base, cut, s.size() - cut);
      EXPECT_SHAPES(parts, {{0, 14 - k}, {995, 39}});
      expectAllWalked(parts);

      // The state between the two: the header bytes seen so far.
      CWalk c;
      c.arm(base);
      c.run(base, std::span<const uint8_t>(s.bytes).first(cut), 1024);
      EXPECT_EQ(c.w.state, L7TAP_WALK_ON);
      EXPECT_EQ(c.w.pos, base + cut);
      if (k < L7TAP_WALK_HEADER_BYTES) {
        EXPECT_EQ(c.w.hdr_len, k);
        EXPECT_EQ(c.w.next_hdr, base + 39);
        EXPECT_TRUE(std::equal(c.w.hdr, c.w.hdr + k, s.bytes.begin() + 39));
      } else {
        EXPECT_EQ(c.w.hdr_len, 0);
        EXPECT_EQ(c.w.next_hdr, base + 39 + 1009);
        EXPECT_EQ(c.w.copy_end, base + 39 + 14);
      }
    }
  }
}

TEST(FrameWalk, FrameHeaderAfterASkipSplitAcrossTwoSegments) {
  for (uint32_t k = 1; k <= 8; ++k) {
    SCOPED_TRACE(std::to_string(k) + " header bytes in the first segment");
    H2Stream s;
    s.add(kHeaders, 0x4, 30).add(kData, 0, 1000).add(kHeaders, 0x5, 30);
    const uint32_t cut = 39 + 1009 + k;
    Walker w;
    w.arm(kBase);
    auto parts = w.send(s, kBase, 0, cut);
    expectCoverage(parts, s, kBase, 0, cut);
    EXPECT_SHAPES(parts, {{0, 53}, {995, k}});
    parts = w.send(s, kBase, cut, s.size() - cut);
    expectCoverage(parts, s, kBase, cut, s.size() - cut);
    EXPECT_SHAPES(parts, {{0, 39 - k}});
  }
}

TEST(FrameWalk, FrameHeaderSplitAcrossSeveralOneByteSegments) {
  H2Stream s;
  s.add(kHeaders, 0x4, 30).add(kData, 0, 1000).add(kHeaders, 0x5, 30);
  Walker w;
  w.arm(kBase);
  uint32_t at = 0;
  for (; at < 39 + 14; ++at) {
    const auto parts = w.send(s, kBase, at, 1);
    expectCoverage(parts, s, kBase, at, 1);
    EXPECT_SHAPES(parts, {{0, 1}});
  }
  const auto parts = w.send(s, kBase, at, s.size() - at);
  EXPECT_SHAPES(parts, {{995, 39}});
}

TEST(FrameWalk, LargeDataFrameSpansManySegments) {
  for (const uint32_t base : {kBase, 0xffff0000u}) {
    SCOPED_TRACE("base " + std::to_string(base));
    H2Stream s;
    s.add(kHeaders, 0x4, 20).add(kData, 0, 50000).add(kHeaders, 0x5, 20);
    ASSERT_EQ(s.size(), 50067u);
    Walker w;
    w.arm(base);
    uint32_t middle = 0;
    for (uint32_t at = 0; at < s.size(); at += 1400) {
      const uint32_t len = std::min<uint32_t>(1400, s.size() - at);
      SCOPED_TRACE("segment at " + std::to_string(at));
      const auto parts = w.send(s, base, at, len);
      expectCoverage(parts, s, base, at, len);
      expectAllWalked(parts);
      if (at == 0) {
        EXPECT_SHAPES(parts, {{0, 43}, {1357, 0}});
      } else if (at + len <= 29 + 50009) {
        // Inside the DATA payload: one header-only event, all skipped.
        EXPECT_SHAPES(parts, {{1400, 0}});
        middle++;
      } else {
        EXPECT_SHAPES(parts, {{29 + 50009 - at, 29}});
      }
    }
    EXPECT_EQ(middle, 34u);
    EXPECT_EQ(w.counters().copied_bytes, 43u + 29u);
    EXPECT_EQ(w.counters().skipped_bytes, 50000u - 5u);
    EXPECT_EQ(w.counters().walked_segments, 36u);
  }
}

TEST(FrameWalk, ArmedInTheMiddleOfASegment) {
  H2Stream s;
  s.filler(300).add(kHeaders, 0x4, 20).add(kData, 0, 1000);
  {
    // The bytes before the boundary fit the window: one event goes on walking.
    Walker w(1024);
    w.arm(kBase + 300);
    const auto parts = w.send(s, kBase, 0, s.size());
    expectCoverage(parts, s, kBase, 0, s.size());
    EXPECT_SHAPES(parts, {{0, 300 + 43}, {995, 0}});
    expectAllWalked(parts);
  }
  {
    // They do not: the plain window, the rest not copied, then the walk.
    Walker w(100);
    w.arm(kBase + 300);
    const auto parts = w.send(s, kBase, 0, s.size());
    expectCoverage(parts, s, kBase, 0, s.size());
    EXPECT_SHAPES(parts, {{0, 100, 200}, {0, 43}, {995, 0}});
    expectAllWalked(parts);
  }
  {
    // Armed at the segment's first byte: no plain part.
    Walker w(100);
    w.arm(kBase + 300);
    const auto parts = w.send(s, kBase, 300, s.size() - 300);
    EXPECT_SHAPES(parts, {{0, 43}, {995, 0}});
  }
}

// Replay's window can be unlimited (or wider than an event): the plain part
// before an armed boundary is then larger than an event, and the walk's
// events after it must still fit one (found by fuzz_frame_walk: the room
// left in the event wrapped around).
TEST(FrameWalk, PlainPartWiderThanAnEventIsAnEventOfItsOwn) {
  H2Stream s;
  s.filler(5000).add(kHeaders, 0x4, 20).add(kData, 0, 1000);
  for (uint32_t window : {0u, 6000u}) {
    CWalk cw;
    cw.arm(kBase + 5000);
    const auto events = cw.run(kBase, s.bytes, window);
    ASSERT_GE(events.size(), 2u) << window;
    EXPECT_EQ(events[0].off, 0u);
    EXPECT_EQ(events[0].copy, 5000u);
    EXPECT_EQ(events[0].rest, 0u);
    EXPECT_EQ(events[1].off, 5000u);
    EXPECT_EQ(events[1].copy, 9u + 20 + 9 + 5);
    for (size_t i = 1; i < events.size(); ++i) {
      EXPECT_LE(events[i].copy, static_cast<uint32_t>(L7TAP_MAX_EVENT_PAYLOAD));
    }
  }
}

TEST(FrameWalk, ArmedBoundaryNotYetReachedIsPlainAndStaysArmed) {
  H2Stream s;
  s.filler(1000).add(kHeaders, 0x4, 20).add(kData, 0, 1000);
  Walker w(256);
  w.arm(kBase + 1000);
  for (const uint32_t at : {0u, 500u}) {
    const auto parts = w.send(s, kBase, at, 500);  // ends at or before the boundary
    ASSERT_EQ(parts.size(), 1u);
    EXPECT_EQ(parts[0].capture_flags, 0);
    EXPECT_SHAPES(parts, {{0, 256, 244}});
  }
  EXPECT_EQ(w.counters().walked_segments, 0u);
  const auto parts = w.send(s, kBase, 1000, s.size() - 1000);
  expectCoverage(parts, s, kBase, 1000, s.size() - 1000);
  EXPECT_SHAPES(parts, {{0, 43}, {995, 0}});
  expectAllWalked(parts);

  CWalk c;
  c.arm(kBase + 1000);
  bool walked = true, lost = true;
  c.run(kBase, std::span<const uint8_t>(s.bytes).first(1000), 1024, &walked, &lost);
  EXPECT_FALSE(walked);
  EXPECT_FALSE(lost);
  EXPECT_EQ(c.w.state, L7TAP_WALK_ARMED);
  EXPECT_EQ(c.w.next_hdr, kBase + 1000);
}

TEST(FrameWalk, SegmentAfterAHoleAcrossAFrameHeaderLosesTheWalk) {
  H2Stream s;
  // Frames at [0, 29), [29, 2038), [2038, 5047), [5047, 5076).
  s.add(kHeaders, 0x4, 20).add(kData, 0, 2000).add(kData, 0, 3000).add(kHeaders, 0x5, 20);
  Walker w(1024);
  w.arm(kBase);
  w.send(s, kBase, 0, 1400);
  // [1400, 2800) is never seen: it holds the header at 2038.
  auto parts = w.send(s, kBase, 2800, 1400);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].capture_flags, L7TAP_SEG_WALK_LOST);
  EXPECT_SHAPES(parts, {{0, 1400}});  // lost: copied whole, past the window
  expectCoverage(parts, s, kBase, 2800, 1400);
  EXPECT_EQ(w.counters().walk_lost, 1u);
  // Lost: copied whole (L7TAP_WALK_LOST_COPY bytes), flagged only once.
  parts = w.send(s, kBase, 4200, 800);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].capture_flags, 0);
  EXPECT_SHAPES(parts, {{0, 800}});
  EXPECT_EQ(w.counters().walk_lost, 1u);
  // Re-armed at the last HEADERS (stream offset 5047): walked again.
  w.arm(kBase + 5047);
  parts = w.send(s, kBase, 5000, s.size() - 5000);
  expectCoverage(parts, s, kBase, 5000, s.size() - 5000);
  EXPECT_SHAPES(parts, {{0, 47 + 29}});
  expectAllWalked(parts);

  CWalk c;
  c.arm(kBase);
  c.run(kBase, std::span<const uint8_t>(s.bytes).first(1400), 1024);
  bool walked = true, lost = false;
  c.run(kBase + 2800, std::span<const uint8_t>(s.bytes).subspan(2800, 1400), 1024, &walked, &lost);
  EXPECT_FALSE(walked);
  EXPECT_TRUE(lost);
  EXPECT_EQ(c.w.state, L7TAP_WALK_LOST);
  c.run(kBase + 4200, std::span<const uint8_t>(s.bytes).subspan(4200, 800), 1024, &walked, &lost);
  EXPECT_FALSE(walked);
  EXPECT_FALSE(lost);
}

TEST(FrameWalk, HoleInsideOneFrameKeepsTheWalk) {
  H2Stream s;
  s.add(kHeaders, 0x4, 20).add(kData, 0, 5000).add(kHeaders, 0x5, 20);
  Walker w(1024);
  w.arm(kBase);
  w.send(s, kBase, 0, 1400);
  // [1400, 2800) is never seen, but it lies inside the DATA frame, whose end
  // is known: the walk goes on, the missing bytes are a gap.
  auto parts = w.send(s, kBase, 2800, 1400);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].capture_flags, L7TAP_SEG_WALKED);
  EXPECT_SHAPES(parts, {{1400, 0}});
  EXPECT_EQ(w.counters().walk_lost, 0u);
  parts = w.send(s, kBase, 4200, s.size() - 4200);
  expectCoverage(parts, s, kBase, 4200, s.size() - 4200);
  expectAllWalked(parts);
  // The rest of the DATA payload skipped, the last HEADERS copied whole.
  EXPECT_SHAPES(parts, {{5038 - 4200, 29}});
}

TEST(FrameWalk, ArmedBoundaryAlreadyPassedLosesTheWalk) {
  H2Stream s;
  s.add(kHeaders, 0x4, 20).add(kData, 0, 5000);
  Walker w(1024);
  w.arm(kBase);  // the segment starts after the boundary: too late
  const auto parts = w.send(s, kBase, 100, 1000);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].capture_flags, L7TAP_SEG_WALK_LOST);
  EXPECT_EQ(w.counters().walk_lost, 1u);
}

TEST(FrameWalk, OldRetransmissionIsPlainAndLeavesTheWalkAlone) {
  H2Stream s;
  s.add(kHeaders, 0x4, 1500).add(kData, 0, 5000).add(kHeaders, 0x5, 20);
  Walker w(1024), ref(1024);
  w.arm(kBase);
  ref.arm(kBase);
  std::vector<std::vector<Part>> got, want;
  for (uint32_t at = 0; at < s.size(); at += 1400) {
    const uint32_t len = std::min<uint32_t>(1400, s.size() - at);
    got.push_back(w.send(s, kBase, at, len));
    want.push_back(ref.send(s, kBase, at, len));
    if (at >= 1400) {
      // The segment before, again: wholly before the walk's position.
      const auto parts = w.send(s, kBase, at - 1400, 1400);
      ASSERT_EQ(parts.size(), 1u);
      EXPECT_EQ(parts[0].capture_flags, 0);
      EXPECT_SHAPES(parts, {{0, 1024, 376}});
    }
  }
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(shapes(got[i]), shapes(want[i])) << "segment " << i;
  }
  EXPECT_EQ(w.counters().walk_lost, 0u);
}

TEST(FrameWalk, RetransmissionRunningPastThePosition) {
  H2Stream s;
  s.add(kHeaders, 0x4, 1000).add(kData, 0, 2000).add(kHeaders, 0x5, 20);
  Walker w(1024);
  w.arm(kBase);
  EXPECT_SHAPES(w.send(s, kBase, 0, 600), {{0, 600}});
  // [300, 900): what was walked is skipped, the new bytes walked.
  auto parts = w.send(s, kBase, 300, 600);
  expectCoverage(parts, s, kBase, 300, 600);
  EXPECT_SHAPES(parts, {{300, 300}});
  expectAllWalked(parts);
  // [800, 1500): into the DATA frame, whose payload is then skipped.
  parts = w.send(s, kBase, 800, 700);
  expectCoverage(parts, s, kBase, 800, 700);
  EXPECT_SHAPES(parts, {{100, 1023 - 900}, {1500 - 1023, 0}});
  // Then on from 1500.
  parts = w.send(s, kBase, 1500, s.size() - 1500);
  expectCoverage(parts, s, kBase, 1500, s.size() - 1500);
  EXPECT_SHAPES(parts, {{3018 - 1500, 29}});
}

TEST(FrameWalk, FinAndRstOnlyOnTheLastPartSynOnlyOnTheFirst) {
  H2Stream s;
  s.add(kHeaders, 0x4, 20).add(kData, 0, 1000).add(kHeaders, 0x5, 5000);
  for (const uint8_t edge : {L7TAP_TCP_FIN, L7TAP_TCP_RST}) {
    Walker w;
    w.arm(kBase);
    const auto parts = w.send(s, kBase, 0, s.size(), kPshAck | edge);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_SHAPES(parts, {{0, 43}, {995, 4096}, {0, 5009 - 4096 + 0}});
    EXPECT_EQ(parts[0].tcp_flags, kPshAck);
    EXPECT_EQ(parts[1].tcp_flags, kPshAck);
    EXPECT_EQ(parts[2].tcp_flags, kPshAck | edge);
  }
  Walker w;
  w.arm(kBase);
  const auto parts = w.send(s, kBase, 0, s.size(), L7TAP_TCP_SYN | L7TAP_TCP_FIN);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].tcp_flags, L7TAP_TCP_SYN);
  EXPECT_EQ(parts[1].tcp_flags, 0);
  EXPECT_EQ(parts[2].tcp_flags, L7TAP_TCP_FIN);
}

TEST(FrameWalk, SequenceWrapAround) {
  // Frames whose headers and skips cross 2^32, cut into segments of 700.
  const uint32_t base = 0xffffff00u;
  H2Stream s;
  s.add(kHeaders, 0x4, 100).add(kData, 0, 300).add(kData, kPadded, 2000).add(kHeaders, 0, 60);
  Walker w, ref;
  w.arm(base);
  ref.arm(kBase);
  for (uint32_t at = 0; at < s.size(); at += 700) {
    const uint32_t len = std::min<uint32_t>(700, s.size() - at);
    const auto parts = w.send(s, base, at, len);
    expectCoverage(parts, s, base, at, len);
    expectAllWalked(parts);
    // The same as away from the wrap.
    EXPECT_EQ(shapes(parts), shapes(ref.send(s, kBase, at, len))) << "segment at " << at;
  }
  EXPECT_EQ(w.counters().walk_lost, 0u);
}

TEST(FrameWalk, AbortEndsTheSegmentAndLosesTheWalk) {
  H2Stream s;
  s.add(kHeaders, 0x4, 20).add(kData, 0, 1000).add(kHeaders, 0x5, 20);
  const uint32_t len = s.size();
  {
    CWalk c;
    c.arm(kBase);
    l7tap_walk_cursor cur;
    ASSERT_EQ(l7tap_walk_begin(&c.w, kBase, len, 1024, &cur), 1);
    int step;
    while ((step = l7tap_walk_next(&c.w, &cur)) != L7TAP_WALK_EVENT) {
      ASSERT_NE(step, L7TAP_WALK_DONE);
      if (step == L7TAP_WALK_HEADER) l7tap_walk_header(&c.w, &cur, s.bytes.data() + cur.off);
    }
    EXPECT_EQ(cur.ev_copy, 43u);  // the first event: HEADERS and the DATA head
    // The bound runs out while skipping: the rest is not copied.
    ASSERT_EQ(l7tap_walk_next(&c.w, &cur), L7TAP_WALK_AGAIN);  // the skip
    ASSERT_EQ(l7tap_walk_abort(&c.w, &cur), L7TAP_WALK_EVENT);
    EXPECT_EQ(cur.ev_off, 43u);
    EXPECT_EQ(cur.ev_skip, 995u);
    EXPECT_EQ(cur.ev_copy, 0u);
    EXPECT_EQ(cur.ev_rest, 29u);
    EXPECT_TRUE(cur.ev_last);
    EXPECT_TRUE(cur.lost);
    EXPECT_TRUE(cur.done);
    EXPECT_EQ(c.w.state, L7TAP_WALK_LOST);
    EXPECT_EQ(l7tap_walk_next(&c.w, &cur), L7TAP_WALK_DONE);
    // Lost: the next segment is copied whole, not walked, not flagged again.
    bool walked = true, lost = true;
    c.run(kBase + len, s.bytes, 1024, &walked, &lost);
    EXPECT_FALSE(walked);
    EXPECT_FALSE(lost);
  }
  {
    // Aborted right after an armed plain part: its rest grows.
    H2Stream t;
    t.filler(300).add(kHeaders, 0x4, 20);
    CWalk c;
    c.arm(kBase + 300);
    l7tap_walk_cursor cur;
    ASSERT_EQ(l7tap_walk_begin(&c.w, kBase, t.size(), 100, &cur), 1);
    ASSERT_EQ(l7tap_walk_abort(&c.w, &cur), L7TAP_WALK_EVENT);
    EXPECT_EQ(cur.ev_off, 0u);
    EXPECT_EQ(cur.ev_skip, 0u);
    EXPECT_EQ(cur.ev_copy, 100u);
    EXPECT_EQ(cur.ev_rest, t.size() - 100);
    EXPECT_EQ(c.w.state, L7TAP_WALK_LOST);
  }
  {
    // With a step bound the events still cover the segment; the last is lost.
    H2Stream u;
    for (int i = 0; i < 400; ++i) u.add(kUnknown, 0, 1);
    CWalk c;
    c.arm(kBase);
    const auto ev = c.run(kBase, u.bytes, 1024, nullptr, nullptr, 1024);
    ASSERT_FALSE(ev.empty());
    uint32_t at = 0;
    for (const CEvent& e : ev) {
      EXPECT_EQ(e.off, at);
      at += e.skip + e.copy + e.rest;
    }
    EXPECT_EQ(at, u.size());
    EXPECT_TRUE(ev.back().last);
    EXPECT_TRUE(ev.back().lost);
    EXPECT_GT(ev.back().rest, 0u);
    EXPECT_EQ(c.w.state, L7TAP_WALK_LOST);
  }
}

// --- Random streams, random cuts ---------------------------------------------------

H2Stream randomStream(std::mt19937& rng, uint32_t max_bytes) {
  H2Stream s;
  auto pick = [&](uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
  };
  const uint32_t frames = pick(1, 40);
  for (uint32_t i = 0; i < frames && s.size() < max_bytes; ++i) {
    uint8_t type;
    uint8_t flags = static_cast<uint8_t>(pick(0, 255));
    const uint32_t t = pick(0, 99);
    if (t < 40) {
      type = kData;
      flags = pick(0, 2) == 0 ? kPadded : 0x1;
    } else if (t < 60) {
      type = kHeaders;
    } else if (t < 70) {
      type = kContinuation;
    } else if (t < 85) {
      type = static_cast<uint8_t>(pick(2, 8));  // PRIORITY .. WINDOW_UPDATE
    } else {
      type = static_cast<uint8_t>(pick(0x0a, 0xff));
    }
    uint32_t len;
    const uint32_t l = pick(0, 99);
    if (l < 25) {
      len = pick(0, 10);
    } else if (l < 50) {
      len = pick(0, 300);
    } else if (l < 85) {
      len = pick(0, 5000);
    } else {
      len = pick(0, 70000);
    }
    s.add(type, flags, len, pick(1, 99));
  }
  return s;
}

std::vector<uint32_t> randomCuts(std::mt19937& rng, uint32_t size) {
  std::vector<uint32_t> lens;
  auto pick = [&](uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
  };
  const uint32_t mode = pick(0, 3);
  for (uint32_t at = 0; at < size;) {
    uint32_t len;
    const uint32_t r = pick(0, 99);
    if (mode == 0 || r < 30) {
      len = pick(1, 20);
    } else if (r < 90) {
      len = pick(1, 3000);
    } else {
      len = pick(1, 70000);
    }
    len = std::min(len, size - at);
    lens.push_back(len);
    at += len;
  }
  return lens;
}

TEST(FrameWalk, RandomStreamsAndCuts) {
  for (uint32_t iter = 0; iter < 400; ++iter) {
    std::mt19937 rng(iter * 7919u + 17u);
    SCOPED_TRACE("iteration " + std::to_string(iter));
    const H2Stream s = randomStream(rng, 300000);
    const std::vector<bool> must = s.mustCopy();
    const std::vector<uint32_t> cuts = randomCuts(rng, s.size());
    uint32_t base = static_cast<uint32_t>(rng());
    if (iter % 3 == 0) base = 0u - static_cast<uint32_t>(rng() % 100000);
    const uint32_t windows[] = {0, 1, 100, 1024, 4096};
    const uint32_t window = windows[rng() % 5];
    Walker w(window);
    w.arm(base);
    std::vector<bool> copied(s.size(), false);
    uint64_t total_copied = 0;
    uint32_t at = 0;
    for (size_t i = 0; i < cuts.size(); ++i) {
      const uint32_t len = cuts[i];
      const bool last_segment = i + 1 == cuts.size();
      const uint8_t flags = last_segment ? (kPshAck | L7TAP_TCP_FIN) : kPshAck;
      const auto parts = w.send(s, base, at, len, flags);
      ASSERT_NO_FATAL_FAILURE(expectCoverage(parts, s, base, at, len));
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "segment " << i << " at " << at << " len " << len << ": "
                      << describe(shapes(parts));
        return;
      }
      uint32_t p_at = at;
      for (size_t j = 0; j < parts.size(); ++j) {
        const Part& p = parts[j];
        ASSERT_EQ(p.capture_flags, walkedFlags(j)) << "segment " << i << " part " << j;
        // Armed at the stream's start: nothing is left uncopied but skips.
        ASSERT_EQ(p.offset + p.data.size(), p.payload_len) << "segment " << i << " part " << j;
        ASSERT_EQ(p.tcp_flags, j + 1 == parts.size() ? flags : kPshAck);
        // A skip that ends inside the segment ends at a frame header, at
        // least L7TAP_WALK_MIN_SKIP bytes after it started.
        if (p.offset > 0 && p_at + p.offset < at + len) {
          ASSERT_GE(p.offset, static_cast<uint32_t>(L7TAP_WALK_MIN_SKIP))
              << "segment " << i << " part " << j;
        }
        for (uint32_t b = 0; b < p.data.size(); ++b) copied[p_at + p.offset + b] = true;
        total_copied += p.data.size();
        p_at += p.payload_len;
      }
      // Copied bytes beyond what the policy needs come in runs shorter
      // than a worthwhile skip.
      uint32_t run = 0;
      for (uint32_t b = at; b < at + len; ++b) {
        if (copied[b] && !must[b]) {
          ASSERT_LT(++run, static_cast<uint32_t>(L7TAP_WALK_MIN_SKIP)) << "at " << b;
        } else {
          run = 0;
        }
      }
      at += len;
      // Now and then an old retransmission: plain, the walk untouched.
      if (i > 0 && rng() % 10 == 0) {
        const uint32_t from = static_cast<uint32_t>(rng() % at);
        const uint32_t rlen = std::min<uint32_t>(at - from, 1 + rng() % 3000);
        const auto again = w.send(s, base, from, rlen);
        ASSERT_EQ(again.size(), 1u);
        EXPECT_EQ(again[0].capture_flags, 0);
        EXPECT_EQ(again[0].offset, 0u);
        EXPECT_EQ(again[0].data.size(), l7tap_window_capture_len(rlen, window));
      }
    }
    ASSERT_EQ(at, s.size());
    for (uint32_t b = 0; b < s.size(); ++b) {
      ASSERT_TRUE(!must[b] || copied[b]) << "stream byte " << b << " must be copied";
    }
    EXPECT_LE(total_copied, s.size());
    EXPECT_EQ(w.counters().walk_lost, 0u);
  }
}

// --- The capture's own arming on a first payload (l7tap_walk_arm_first) ---------

// A flow table's observers that do nothing: the table only counts bytes.
class NullObserver final : public StreamObserver {
 public:
  void onData(Side, std::span<const uint8_t>, uint64_t) override {}
  void onGap(Side, uint64_t, uint64_t) override {}
  void onEnd(Side, EndKind, uint64_t) override {}
  void onClose(const ConnectionInfo&) override {}
};
class NullObservers final : public StreamObserverFactory {
 public:
  std::unique_ptr<StreamObserver> create(ConnectionInfo&, CaptureHints&) override {
    return std::make_unique<NullObserver>();
  }
};

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

l7tap_flow_key serverKey() {
  l7tap_flow_key k = clientKey();
  std::swap(k.saddr, k.daddr);
  std::swap(k.sport, k.dport);
  return k;
}

// The client's first bytes: the preface, SETTINGS, HEADERS, a request body.
H2Stream clientPrefaceStream() {
  H2Stream s;
  s.bytes.assign(kPreface, kPreface + L7TAP_H2_PREFACE_LEN);
  s.add(kSettings, 0, 18, 0).add(kHeaders, 0x4, 100).add(kData, 0, 2000);
  return s;
}

// The server's first bytes: SETTINGS, an ACK of the client's, HEADERS, a body.
H2Stream serverSettingsStream() {
  H2Stream s;
  s.add(kSettings, 0, 12, 0).add(kSettings, 0x1, 0, 0).add(kHeaders, 0x4, 120);
  s.add(kData, 0, 3000);
  return s;
}

// CapturePolicy with control on, both directions, and (optionally) the flow
// table replay feeds with what the policy delivers, wired as in replay. The
// policy tells a direction's first payload by its own flow counters.
class FirstPayloads {
 public:
  explicit FirstPayloads(uint32_t window = 1024, bool control = true, bool with_table = true)
      : policy_(window, control) {
    if (with_table) {
      table_ = std::make_unique<FlowTable>(factory_);
      table_->setCaptureControl(&policy_);
      table_->setCloseHook(&policy_);
    }
  }

  std::vector<Part> send(bool from_client, uint32_t seq, std::span<const uint8_t> payload,
                         uint8_t flags = kPshAck) {
    SegmentEvent seg;
    seg.key = from_client ? clientKey() : serverKey();
    seg.seq = seq;
    seg.ack = 77;
    seg.tcp_flags = flags;
    seg.payload_len = static_cast<uint32_t>(payload.size());
    seg.payload = payload;
    std::vector<Part> parts;
    policy_.apply(seg, [&](const SegmentEvent& e) {
      parts.push_back({e.seq, e.payload_len, e.payload_offset,
                       std::vector<uint8_t>(e.payload.begin(), e.payload.end()), e.tcp_flags,
                       e.capture_flags});
      if (table_) table_->onSegment(e);
    });
    return parts;
  }
  std::vector<Part> send(bool from_client, const H2Stream& s, uint32_t base, uint32_t from,
                         uint32_t len) {
    return send(from_client, base + from, std::span<const uint8_t>(s.bytes).subspan(from, len));
  }
  std::vector<Part> send(bool from_client, uint32_t seq, const std::string& text,
                         uint8_t flags = kPshAck) {
    return send(
        from_client, seq,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
        flags);
  }
  // The three-way handshake: segments without payload.
  void handshake(uint32_t client_isn, uint32_t server_isn) {
    send(true, client_isn, std::span<const uint8_t>(), L7TAP_TCP_SYN);
    send(false, server_isn, std::span<const uint8_t>(), L7TAP_TCP_SYN | L7TAP_TCP_ACK);
    send(true, client_isn + 1, std::span<const uint8_t>(), L7TAP_TCP_ACK);
  }

  CapturePolicy& policy() { return policy_; }
  const CopyCounters& counters() const { return policy_.counters(); }

 private:
  CapturePolicy policy_;
  NullObservers factory_;
  std::unique_ptr<FlowTable> table_;
};

void expectPlain(const std::vector<Part>& parts, uint32_t copied) {
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].capture_flags, 0);
  EXPECT_EQ(parts[0].offset, 0u);
  EXPECT_EQ(parts[0].data.size(), copied);
}

TEST(FrameWalkArm, ClientPrefaceArmsAfterThePreface) {
  for (const bool with_table : {true, false}) {
    SCOPED_TRACE(with_table ? "with a flow table" : "without a flow table");
    FirstPayloads f(1024, true, with_table);
    const uint32_t c_base = 3001, s_base = 0xfffffff1u;
    f.handshake(c_base - 1, s_base - 1);
    const H2Stream c = clientPrefaceStream();
    ASSERT_EQ(c.size(), 24u + 27u + 109u + 2009u);
    auto parts = f.send(true, c, c_base, 0, c.size());
    // The preface, then the walk from the SETTINGS frame: the preface,
    // SETTINGS and HEADERS whole and the DATA frame's header and prefix, the
    // rest of the DATA frame skipped.
    EXPECT_SHAPES(parts, {{0, 24 + 27 + 109 + 14}, {1995, 0}});
    expectCoverage(parts, c, c_base, 0, c.size());
    expectAllWalked(parts);
    EXPECT_EQ(f.counters().walked_segments, 1u);

    // The server's first payload, SETTINGS: armed at the frame.
    const H2Stream s = serverSettingsStream();
    parts = f.send(false, s, s_base, 0, s.size());
    EXPECT_SHAPES(parts, {{0, 21 + 9 + 129 + 14}, {2995, 0}});
    expectCoverage(parts, s, s_base, 0, s.size());
    expectAllWalked(parts);
    EXPECT_EQ(f.counters().walked_segments, 2u);
    EXPECT_EQ(f.counters().walk_lost, 0u);
  }
}

TEST(FrameWalkArm, ServerSettingsArmsAtTheFrame) {
  // A small window: the walk copies whole frames whatever the window.
  FirstPayloads f(100);
  const H2Stream s = serverSettingsStream();
  const uint32_t base = 0xfffffff1u;
  auto parts = f.send(false, s, base, 0, 2000);
  EXPECT_SHAPES(parts, {{0, 173}, {2000 - 173, 0}});
  expectCoverage(parts, s, base, 0, 2000);
  expectAllWalked(parts);
  parts = f.send(false, s, base, 2000, s.size() - 2000);
  EXPECT_SHAPES(parts, {{s.size() - 2000, 0}});
  expectAllWalked(parts);
  // The client's direction is not armed by the server's SETTINGS.
  const std::string get = "GET / HTTP/1.1\r\n\r\n";
  expectPlain(f.send(true, 1, get), static_cast<uint32_t>(get.size()));
  EXPECT_EQ(f.counters().walked_segments, 2u);
}

TEST(FrameWalkArm, NothingArmedWithoutCaptureControl) {
  FirstPayloads f(1024, false);
  const H2Stream c = clientPrefaceStream(), s = serverSettingsStream();
  expectPlain(f.send(true, c, 1, 0, c.size()), 1024);
  expectPlain(f.send(false, s, 1, 0, s.size()), 1024);
  expectPlain(f.send(true, c, 1, 0, c.size()), 1024);
  EXPECT_EQ(f.counters().walked_segments, 0u);
}

TEST(FrameWalkArm, OnlyTheFirstPayloadArms) {
  const H2Stream c = clientPrefaceStream();
  const uint32_t base = 3001;
  {
    SCOPED_TRACE("the preface after other bytes");
    FirstPayloads f;
    f.handshake(base - 1, 9);
    expectPlain(f.send(true, base, std::string("hello there")), 11);
    expectPlain(f.send(true, c, base + 11, 0, c.size()), 1024);
    EXPECT_EQ(f.counters().walked_segments, 0u);
  }
  {
    SCOPED_TRACE("a first payload shorter than a frame header");
    FirstPayloads f;
    expectPlain(f.send(true, c, base, 0, 8), 8);
    expectPlain(f.send(true, c, base, 8, c.size() - 8), 1024);
    EXPECT_EQ(f.counters().walked_segments, 0u);
  }
  {
    SCOPED_TRACE("a retransmission of the first payload");
    FirstPayloads f;
    f.handshake(base - 1, 9);
    auto parts = f.send(true, c, base, 0, 500);
    EXPECT_SHAPES(parts, {{0, 174}, {326, 0}});
    expectAllWalked(parts);
    // Not re-armed at the preface: wholly before the walk's position, plain.
    expectPlain(f.send(true, c, base, 0, 500), 500);
    EXPECT_EQ(f.counters().walked_segments, 1u);
    // Preface-like bytes in a later packet (inside the DATA frame): walked on.
    std::vector<uint8_t> more(kPreface, kPreface + L7TAP_H2_PREFACE_LEN);
    parts = f.send(true, base + 500, more);
    EXPECT_SHAPES(parts, {{24, 0}});
    expectAllWalked(parts);
    EXPECT_EQ(f.counters().walked_segments, 2u);
  }
  {
    // Without a flow table: the capture's own flow counters (the kernel's)
    // tell a first payload, as the kernel's do.
    SCOPED_TRACE("a retransmission of the first payload, without a flow table");
    FirstPayloads f(1024, true, false);
    auto parts = f.send(true, c, base, 0, 500);
    EXPECT_SHAPES(parts, {{0, 174}, {326, 0}});
    expectAllWalked(parts);
    expectPlain(f.send(true, c, base, 0, 500), 500);
  }
}

TEST(FrameWalkArm, Http1FirstPayloadArmsNothing) {
  FirstPayloads f;
  f.handshake(100, 200);
  const std::string get = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  expectPlain(f.send(true, 101, get), static_cast<uint32_t>(get.size()));
  expectPlain(f.send(false, 201, ok), static_cast<uint32_t>(ok.size()));
  // An HTTP/2 preface later on the connection (an h2c upgrade is armed by
  // user space at a boundary it knows, not here).
  const H2Stream c = clientPrefaceStream();
  expectPlain(f.send(true, c, 101 + static_cast<uint32_t>(get.size()), 0, 500), 500);
  EXPECT_EQ(f.counters().walked_segments, 0u);
}

struct FirstFrame {
  const char* what;
  uint8_t type;
  uint8_t flags;
  uint32_t len;
  uint32_t stream;
  bool armed;
};

const FirstFrame kFirstFrames[] = {
    {"SETTINGS", kSettings, 0, 18, 0, true},
    {"empty SETTINGS", kSettings, 0, 0, 0, true},
    {"largest SETTINGS", kSettings, 0, 16380, 0, true},
    {"SETTINGS ACK", kSettings, 0x1, 0, 0, false},
    {"SETTINGS with another flag", kSettings, 0x20, 6, 0, false},
    {"SETTINGS length not a multiple of 6", kSettings, 0, 7, 0, false},
    {"SETTINGS length 16386", kSettings, 0, 16386, 0, false},
    {"SETTINGS on stream 1", kSettings, 0, 6, 1, false},
    {"SETTINGS on stream 2^24", kSettings, 0, 6, 1u << 24, false},
    {"HEADERS", kHeaders, 0x4, 12, 0, false},
    {"DATA", kData, 0, 12, 0, false},
};

TEST(FrameWalkArm, OnlyAPlainSettingsFrameArms) {
  for (const FirstFrame& ff : kFirstFrames) {
    for (const uint32_t extra : {0u, 30u}) {  // the header alone, or more
      SCOPED_TRACE(std::string(ff.what) + ", " + std::to_string(9 + extra) + " bytes");
      H2Stream s;
      s.add(ff.type, ff.flags, ff.len, ff.stream);
      s.bytes.resize(9 + extra, 0x42);
      l7tap_frame_walk w{};
      EXPECT_EQ(l7tap_walk_arm_first(s.bytes.data(), 9, 500, &w), ff.armed ? 1 : 0);
      FirstPayloads f;
      const auto parts = f.send(false, s, 500, 0, s.size());
      if (ff.armed) {
        EXPECT_EQ(w.state, L7TAP_WALK_ARMED);
        EXPECT_EQ(w.next_hdr, 500u);
        CWalk ref;
        ref.w = w;
        std::vector<Shape> want;
        for (const CEvent& e : ref.run(500, s.bytes, 1024))
          want.push_back({e.skip, e.copy, e.rest});
        EXPECT_SHAPES(parts, want);
        expectAllWalked(parts);
        expectCoverage(parts, s, 500, 0, s.size());
      } else {
        expectPlain(parts, s.size());
      }
    }
  }
}

TEST(FrameWalkArm, CountOnlyFlowIsNotArmed) {
  FirstPayloads f;
  f.policy().countOnly(canonicalKey(clientKey()));
  const H2Stream c = clientPrefaceStream(), s = serverSettingsStream();
  EXPECT_TRUE(f.send(true, c, 1, 0, c.size()).empty());
  EXPECT_TRUE(f.send(false, s, 1, 0, s.size()).empty());
  // Still count-only: the FIN is sent without payload.
  const auto fin = f.send(true, 1 + c.size(), std::string("x"), L7TAP_TCP_FIN | L7TAP_TCP_ACK);
  ASSERT_EQ(fin.size(), 1u);
  EXPECT_TRUE(fin[0].data.empty());
  EXPECT_EQ(fin[0].capture_flags, 0);
  EXPECT_EQ(f.counters().count_only_packets, 3u);
  EXPECT_EQ(f.counters().walked_segments, 0u);
}

// --- The kernel program and CapturePolicy: the same events --------------------------

using testing::Event;
using testing::PacketBuilder;
using testing::TcProgram;

struct Packet {
  bool from_client;
  uint32_t seq;
  std::vector<uint8_t> payload;
  uint8_t flags = kPshAck;
};

// Runs packets through the kernel program (TC egress for the client's,
// ingress for the server's) and through CapturePolicy, both armed alike, and
// compares every segment event.
class KernelAndReplay {
 public:
  // `first_payload`: the capture arms a direction itself on a first payload
  // that starts HTTP/2, as the daemon configures it with capture control
  // (l7tap_config.frame_walk); replay then tells first payloads by a flow
  // table fed with what it delivers, as its pipeline does.
  explicit KernelAndReplay(uint32_t window, bool first_payload = false) : policy_(window, true) {
    std::string error;
    testing::TcConfig cfg;
    cfg.window = window;
    cfg.frame_walk = first_payload;
    prog_ = TcProgram::load(cfg, &error);
    EXPECT_NE(prog_, nullptr) << error;
    if (first_payload) {
      table_ = std::make_unique<FlowTable>(factory_);
      table_->setCaptureControl(&policy_);
    }
  }
  bool loaded() const { return prog_ != nullptr; }

  void arm(bool from_client, uint32_t seq) {
    policy_.walkFrames(l7tap::canonicalKey(clientKey()), from_client ? 0 : 1, seq);
    ASSERT_EQ(prog_->armFrameWalk(testing::canonicalKey(clientKey()), from_client ? 0 : 1, seq), 0);
  }

  void send(const Packet& p) {
    PacketBuilder b;
    if (p.from_client) {
      b.ipv4("10.0.0.1", "10.0.0.2").ports(40000, 8080);
    } else {
      b.ipv4("10.0.0.2", "10.0.0.1").ports(8080, 40000);
    }
    b.seq(p.seq).ack(4242).flags(p.flags).window(300).payload(p.payload);
    const auto frame = b.build();
    ASSERT_LE(frame.size(), 3712u) << "BPF_PROG_TEST_RUN takes no larger frame";
    const auto r = prog_->run(p.from_client ? L7TAP_DIR_EGRESS : L7TAP_DIR_INGRESS, frame);
    ASSERT_EQ(r.err, 0);

    SegmentEvent seg;
    seg.key = b.key();
    seg.seq = p.seq;
    seg.ack = 4242;
    seg.tcp_flags = p.flags;
    seg.tcp_window = 300;
    seg.payload_len = static_cast<uint32_t>(p.payload.size());
    seg.payload = p.payload;
    policy_.apply(seg, [&](const SegmentEvent& e) {
      Part part{e.seq,
                e.payload_len,
                e.payload_offset,
                std::vector<uint8_t>(e.payload.begin(), e.payload.end()),
                e.tcp_flags,
                e.capture_flags};
      replay_.push_back(std::move(part));
      if (table_) table_->onSegment(e);
    });
    for (const Event& e : prog_->drain()) {
      if (e.kind != L7TAP_EVENT_SEGMENT) continue;
      const auto& s = e.seg();
      kernel_.push_back(
          {s.seq, s.payload_len, s.data_offset, e.data, s.tcp_flags, s.capture_flags});
      EXPECT_EQ(s.ack, 4242u);
      EXPECT_EQ(s.tcp_window, 300u);
      EXPECT_TRUE(testing::keysEqual(s.key, b.key()));
    }
  }

  void expectSame() {
    ASSERT_EQ(kernel_.size(), replay_.size());
    for (size_t i = 0; i < kernel_.size(); ++i) {
      SCOPED_TRACE("event " + std::to_string(i));
      const Part &k = kernel_[i], &r = replay_[i];
      EXPECT_EQ(k.seq, r.seq);
      EXPECT_EQ(k.payload_len, r.payload_len);
      EXPECT_EQ(k.offset, r.offset);
      EXPECT_EQ(k.data.size(), r.data.size());
      EXPECT_TRUE(k.data == r.data);
      EXPECT_EQ(k.tcp_flags, r.tcp_flags);
      EXPECT_EQ(k.capture_flags, r.capture_flags);
    }
    const CopyCounters& c = policy_.counters();
    EXPECT_EQ(prog_->counter(L7TAP_CNT_PAYLOAD_BYTES), c.payload_bytes);
    EXPECT_EQ(prog_->counter(L7TAP_CNT_COPIED_BYTES), c.copied_bytes);
    EXPECT_EQ(prog_->counter(L7TAP_CNT_SKIPPED_BYTES), c.skipped_bytes);
    EXPECT_EQ(prog_->counter(L7TAP_CNT_WALKED), c.walked_segments);
    EXPECT_EQ(prog_->counter(L7TAP_CNT_WALK_LOST), c.walk_lost);
  }

  const std::vector<Part>& kernelEvents() const { return kernel_; }
  uint64_t kernelCounter(l7tap_counter c) const { return prog_->counter(c); }

 private:
  CapturePolicy policy_;
  std::unique_ptr<TcProgram> prog_;
  std::vector<Part> kernel_, replay_;
  NullObservers factory_;
  std::unique_ptr<FlowTable> table_;
};

// Cuts `s` into packets of the given sizes (stream offset `from` on), at
// seq base + offset.
std::vector<Packet> cut(const H2Stream& s, bool from_client, uint32_t base, uint32_t from,
                        const std::vector<uint32_t>& sizes) {
  std::vector<Packet> out;
  uint32_t at = from;
  for (uint32_t n : sizes) {
    n = std::min(n, s.size() - at);
    if (n == 0) break;
    out.push_back({from_client, base + at,
                   std::vector<uint8_t>(s.bytes.begin() + at, s.bytes.begin() + at + n)});
    at += n;
  }
  return out;
}

TEST(FrameWalkKernel, SameEventsAsReplayOnAScriptedFlow) {
  L7TAP_SKIP_UNLESS(testing::missingRoot());
  KernelAndReplay k(1024);
  ASSERT_TRUE(k.loaded());
  const uint32_t c_base = 0xfffff000u;  // the client's stream crosses 2^32
  const uint32_t s_base = 5000;
  H2Stream cs, sc;
  // Client: preface-less SETTINGS, HEADERS, a large request body in DATA
  // frames (one PADDED), a CONTINUATION, an unknown frame, PING.
  cs.add(kSettings, 0, 18).add(kHeaders, 0x4, 300).add(kData, 0, 16384).add(kData, kPadded, 9000);
  cs.add(kHeaders, 0, 5000).add(kContinuation, 0x4, 200).add(kUnknown, 0, 700).add(kPing, 0, 8);
  cs.add(kData, 0x1, 100).add(kWindowUpdate, 0, 4);
  // Server: HEADERS, a 60 KB DATA frame, small DATA frames, trailers.
  sc.add(kSettings, 0, 0).add(kHeaders, 0x4, 120).add(kData, 0, 60000);
  for (int i = 0; i < 30; ++i) sc.add(kData, 0, 40 + 13 * i);
  sc.add(kHeaders, 0x5, 30);
  k.arm(true, c_base);
  k.arm(false, s_base);

  // Client: MSS-like packets, then packets that split frame headers.
  std::vector<Packet> client = cut(cs, true, c_base, 0, {1448, 1448, 3, 1448, 7, 1, 1});
  uint32_t c_at = 0;
  for (const auto& p : client) c_at += static_cast<uint32_t>(p.payload.size());
  for (const auto& p : cut(cs, true, c_base, c_at, std::vector<uint32_t>(100, 1448))) {
    client.push_back(p);
  }
  // Server: 3600-byte packets, one lost (a hole), an old retransmission, a
  // retransmission running past the position, then a re-arm.
  std::vector<Packet> server = cut(sc, false, s_base, 0, std::vector<uint32_t>(100, 3600));
  ASSERT_GT(server.size(), 18u);
  std::vector<Packet> server_sent;
  for (size_t i = 0; i < server.size(); ++i) {
    if (i == 2) {
      server_sent.push_back(server[0]);  // old retransmission
      continue;
    }
    if (i == 3) {
      // [part of 1 .. part of 3]: runs past the position (the end of 1).
      Packet p = server[1];
      p.seq += 1000;
      p.payload.erase(p.payload.begin(), p.payload.begin() + 1000);
      p.payload.insert(p.payload.end(), server[2].payload.begin(), server[2].payload.begin() + 500);
      server_sent.push_back(p);
      server_sent.push_back(server[2]);  // the rest of 2 as a retransmission
    }
    // Lost, among the small DATA frames (a hole across frame headers): the
    // walk is lost at 17. (A hole inside the 60 KB frame would cost nothing.)
    if (i == 16) continue;
    server_sent.push_back(server[i]);
  }
  size_t ci = 0, si = 0;
  bool rearmed = false;
  while (ci < client.size() || si < server_sent.size()) {
    if (ci < client.size()) {
      ASSERT_NO_FATAL_FAILURE(k.send(client[ci++]));
    }
    if (si < server_sent.size()) {
      const Packet& p = server_sent[si++];
      ASSERT_NO_FATAL_FAILURE(k.send(p));
      // Once lost, re-armed at the next frame header after this packet.
      if (!rearmed && p.seq == server[17].seq) {
        const uint32_t end = p.seq - s_base + static_cast<uint32_t>(p.payload.size());
        for (const Frame& f : sc.frames) {
          if (f.off >= end) {
            k.arm(false, s_base + f.off);
            rearmed = true;
            break;
          }
        }
      }
    }
  }
  ASSERT_TRUE(rearmed);
  // The last packet of each side with FIN.
  Packet fin{true, c_base + cs.size(), {}, L7TAP_TCP_FIN | L7TAP_TCP_ACK};
  k.send(fin);
  k.expectSame();

  size_t lost = 0, walked = 0;
  for (const Part& e : k.kernelEvents()) {
    if (e.capture_flags & L7TAP_SEG_WALK_LOST) lost++;
    if (e.capture_flags & L7TAP_SEG_WALKED) walked++;
  }
  EXPECT_EQ(lost, 1u);
  EXPECT_GT(walked, 40u);
}

TEST(FrameWalkKernel, SameEventsAsReplayOnRandomFlows) {
  L7TAP_SKIP_UNLESS(testing::missingRoot());
  for (uint32_t iter = 0; iter < 16; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    std::mt19937 rng(iter * 104729u + 5u);
    const uint32_t windows[] = {1, 128, 1024, 4096};
    KernelAndReplay k(windows[iter % 4]);
    ASSERT_TRUE(k.loaded());
    H2Stream s;
    // Frames of 20 bytes and more: the kernel's step bound is not reached
    // in a packet of at most 3658 payload bytes (replay has no bound).
    while (s.size() < 60000) {
      const H2Stream one = randomStream(rng, 1);
      const Frame& f = one.frames[0];
      s.add(f.type, f.flags, std::max<uint32_t>(f.len, 11));
    }
    const uint32_t base = iter % 2 ? static_cast<uint32_t>(rng()) : 0u - 30000u;
    const bool from_client = iter % 3 != 0;
    std::vector<uint32_t> sizes;
    for (uint32_t at = 0; at < s.size();) {
      const uint32_t n = rng() % 4 == 0 ? 1 + rng() % 12 : 1 + rng() % 3658;
      sizes.push_back(n);
      at += n;
    }
    // Armed at a frame boundary some way in: the packets before are plain,
    // the one holding it is partly plain.
    const uint32_t arm_frame = static_cast<uint32_t>(rng() % std::min<size_t>(4, s.frames.size()));
    k.arm(from_client, base + s.frames[arm_frame].off);
    const auto packets = cut(s, from_client, base, 0, sizes);
    for (size_t i = 0; i < packets.size(); ++i) {
      if (i > 3 && rng() % 25 == 0) continue;  // lost now and then
      ASSERT_NO_FATAL_FAILURE(k.send(packets[i]));
      if (!k.kernelEvents().empty() &&
          (k.kernelEvents().back().capture_flags & L7TAP_SEG_WALK_LOST)) {
        // As the daemon does: re-armed at the next frame header it knows.
        const uint32_t end =
            packets[i].seq - base + static_cast<uint32_t>(packets[i].payload.size());
        for (const Frame& f : s.frames) {
          if (f.off >= end) {
            k.arm(from_client, base + f.off);
            break;
          }
        }
      }
      if (i > 0 && rng() % 15 == 0) {
        ASSERT_NO_FATAL_FAILURE(k.send(packets[i - 1]));
      }
    }
    k.expectSame();
    EXPECT_GT(k.kernelCounter(L7TAP_CNT_WALKED), 0u);
    if (::testing::Test::HasFailure()) return;
  }
}

// A connection that starts HTTP/2 with prior knowledge: the capture arms both
// directions itself (the client at the end of its preface, the server at its
// SETTINGS) and walks a 60 KB response; kernel and replay agree.
TEST(FrameWalkKernel, SameEventsAsReplayWhenTheFirstPayloadArms) {
  L7TAP_SKIP_UNLESS(testing::missingRoot());
  for (const uint32_t window : {128u, 1024u}) {
    SCOPED_TRACE("window " + std::to_string(window));
    KernelAndReplay k(window, true);
    ASSERT_TRUE(k.loaded());
    const uint32_t c_isn = 0xfffffff0u, s_isn = 77000;
    const uint32_t c_base = c_isn + 1, s_base = s_isn + 1;
    H2Stream cs, sc;
    cs.bytes.assign(kPreface, kPreface + L7TAP_H2_PREFACE_LEN);
    cs.add(kSettings, 0, 18, 0).add(kWindowUpdate, 0, 4, 0).add(kHeaders, 0x5, 60, 1);
    const uint32_t c_first = cs.size();
    cs.add(kSettings, 0x1, 0, 0).add(kWindowUpdate, 0, 4, 0);
    sc.add(kSettings, 0, 12, 0).add(kSettings, 0x1, 0, 0);
    const uint32_t s_first = sc.size();
    sc.add(kHeaders, 0x4, 120, 1);
    for (uint32_t left = 60000; left > 0;) {
      const uint32_t n = std::min<uint32_t>(left, 16384);
      left -= n;
      sc.add(kData, left == 0 ? 0x1 : 0, n, 1);
    }
    // The handshake.
    k.send({true, c_isn, {}, L7TAP_TCP_SYN});
    k.send({false, s_isn, {}, L7TAP_TCP_SYN | L7TAP_TCP_ACK});
    k.send({true, c_base, {}, L7TAP_TCP_ACK});
    // The client's preface, SETTINGS and request; the server's SETTINGS and
    // ACK; a retransmission of each (not re-armed); the client's ACK.
    const auto client = cut(cs, true, c_base, 0, {c_first, cs.size() - c_first});
    const auto server_first = cut(sc, false, s_base, 0, {s_first});
    ASSERT_EQ(client.size(), 2u);
    ASSERT_EQ(server_first.size(), 1u);
    k.send(client[0]);
    k.send(server_first[0]);
    k.send(client[0]);
    k.send(server_first[0]);
    k.send(client[1]);
    // The response in 3600-byte packets.
    const auto response = cut(sc, false, s_base, s_first, std::vector<uint32_t>(100, 3600));
    EXPECT_EQ(response.size(), (sc.size() - s_first + 3599) / 3600);
    for (const auto& p : response) ASSERT_NO_FATAL_FAILURE(k.send(p));
    k.send({true, c_base + cs.size(), {}, L7TAP_TCP_FIN | L7TAP_TCP_ACK});
    k.expectSame();

    // Every payload packet walked but the two retransmissions, nothing lost.
    EXPECT_EQ(k.kernelCounter(L7TAP_CNT_WALKED), 3u + response.size());
    EXPECT_EQ(k.kernelCounter(L7TAP_CNT_WALK_LOST), 0u);
    uint64_t copied = 0;
    for (const Part& e : k.kernelEvents()) {
      if (e.payload_len == 0) continue;
      EXPECT_EQ(e.capture_flags & L7TAP_SEG_WALK_LOST, 0);
      copied += e.data.size();
    }
    // The client's first event holds the preface and its frames.
    const auto& first = k.kernelEvents()[3];
    EXPECT_EQ(first.seq, c_base);
    EXPECT_EQ(first.capture_flags, L7TAP_SEG_WALKED);
    EXPECT_EQ(first.data.size(), c_first);
    // Walked, every frame but DATA whole, of the 4 DATA frames their heads
    // (and a short skip copied where a packet ends near a frame's end);
    // the retransmissions in the plain window.
    const uint64_t walked_copy = cs.size() + s_first + 129u + 4u * 14u;
    const uint64_t plain_copy = std::min(window, c_first) + s_first;
    EXPECT_GE(copied, walked_copy + plain_copy);
    EXPECT_LE(copied, walked_copy + plain_copy + response.size() * L7TAP_WALK_MIN_SKIP);
  }
}

}  // namespace
}  // namespace l7tap
