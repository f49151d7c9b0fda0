// Capture control end to end in user space: the session asks to skip what
// the parsers only count, the flow table turns stream offsets into sequence
// numbers, and the policy skips those bytes the way the kernel program does.
#include "daemon/capture_policy.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"
#include "tc/frame_walk.h"

namespace l7tap {
namespace {

class Records final : public RecordSink {
 public:
  void onRecord(const ConnectionInfo&, const Record& r) override {
    if (const auto* h = dynamic_cast<const HttpRecord*>(&r.inner())) http.push_back(*h);
    if (const auto* c = dynamic_cast<const ConnRecord*>(&r.inner()))
      protocols.emplace_back(c->protocol);
  }
  std::vector<HttpRecord> http;
  std::vector<std::string> protocols;
};

struct Replayed {
  Records records;
  CopyCounters copied;
};

// `dropped(i)`: frame i of the capture never reached the capture point.
void replay(const std::string& name, uint32_t window, bool control, Replayed& out,
            const std::function<bool(size_t)>& dropped = {}) {
  LoadedCapture cap;
  std::string error;
  ASSERT_TRUE(loadCapture(std::string(L7TAP_SOURCE_DIR) + "/pcaps/" + name, cap, error)) << error;
  if (dropped) {
    LoadedCapture kept;
    kept.dlt = cap.dlt;
    for (size_t i = 0; i < cap.frames.size(); ++i) {
      if (dropped(i)) continue;
      kept.frames.push_back(cap.frames[i]);
      kept.wire_len.push_back(cap.wire_len[i]);
      kept.ts_ns.push_back(cap.ts_ns[i]);
    }
    cap = std::move(kept);
  }
  Pipeline pipeline(out.records);
  Replay replay(pipeline, {window, control});
  replay.run(cap);
  pipeline.finish();
  out.copied = replay.copied();
}

TEST(CaptureControl, KnownLengthBodyIsSkippedAndTheRecordIsTheSame) {
  Replayed plain, controlled;
  replay("http1-large-download.pcap", 1024, false, plain);
  replay("http1-large-download.pcap", 1024, true, controlled);
  ASSERT_EQ(plain.records.http.size(), 1u);
  ASSERT_EQ(controlled.records.http.size(), 1u);
  const HttpRecord& a = plain.records.http[0];
  const HttpRecord& b = controlled.records.http[0];
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.response_body_bytes, 1000000u);
  EXPECT_EQ(b.response_body_bytes, 1000000u);
  EXPECT_EQ(a.flags, b.flags);
  // Only the headers and the first body bytes before the hint are copied.
  EXPECT_GT(controlled.copied.skipped_bytes, 990000u);
  EXPECT_LT(controlled.copied.copied_bytes, 4096u);
  EXPECT_GT(plain.copied.copied_bytes, 500000u);
}

TEST(CaptureControl, UnknownProtocolIsCountedOnly) {
  Replayed controlled;
  replay("tcp-not-http.pcap", 0, true, controlled);
  ASSERT_EQ(controlled.records.protocols.size(), 1u);
  EXPECT_EQ(controlled.records.protocols[0], "unknown");
  EXPECT_GT(controlled.copied.count_only_packets, 0u);
}

TEST(CaptureControl, SmallBodiesAreNotWorthAHint) {
  Replayed controlled;
  replay("http1-keepalive.pcap", 0, true, controlled);
  EXPECT_EQ(controlled.copied.skipped_bytes, 0u);
  EXPECT_EQ(controlled.records.http.size(), 3u);
}

TEST(CapturePolicy, SkipRangeWrapsAroundTheSequenceSpace) {
  CapturePolicy policy(0, true);
  SegmentEvent seg;
  seg.key.family = 4;
  seg.key.saddr[15] = 1;
  seg.key.daddr[15] = 2;
  seg.key.sport = 1000;
  seg.key.dport = 80;
  const CanonicalFlowKey key = canonicalKey(seg.key);
  policy.skip(key, 0, 0xfffffff0u, 0x10u);  // 32 bytes across the wrap
  std::vector<uint8_t> payload(64, 'x');
  seg.seq = 0xfffffff8u;
  seg.payload_len = 64;
  seg.payload = payload;
  int delivered = 0;
  policy.apply(seg, [&](const SegmentEvent& part) {
    delivered++;
    EXPECT_EQ(part.payload_offset, 24u);  // to 0x10
    EXPECT_EQ(part.payload.size(), 40u);
  });
  EXPECT_EQ(delivered, 1);
  policy.forget(key);
  seg.payload = payload;
  policy.apply(seg, [&](const SegmentEvent& part) {
    delivered++;
    EXPECT_EQ(part.payload_offset, 0u);
  });
  EXPECT_EQ(delivered, 2);
}

TEST(FrameWalk, DaemonArmsAConnectionJoinedMidway) {
  // No first payload to arm on: the session arms the walk at a frame
  // boundary its parser knows.
  Replayed controlled;
  replay("midstream-h2-after10.pcap", 1024, true, controlled);
  EXPECT_GT(controlled.copied.walked_segments, 50u);
  EXPECT_EQ(controlled.copied.walk_lost, 0u);
}

TEST(FrameWalk, LostWalkIsArmedAgainByTheDaemon) {
  Replayed whole, holed;
  replay("h2c-large-responses.pcap", 1024, true, whole);
  ASSERT_EQ(whole.copied.walk_lost, 0u);
  ASSERT_EQ(whole.records.http.size(), 2u);
  // 40 packets in the middle never reach the capture: a hole across frame
  // headers. The walk is lost, copies whole for a while, and the session
  // re-arms it: most of the rest is walked again.
  replay("h2c-large-responses.pcap", 1024, true, holed,
         [](size_t i) { return i >= 600 && i < 640; });
  EXPECT_GE(holed.copied.walk_lost, 1u);
  EXPECT_GT(holed.copied.walked_segments, whole.copied.walked_segments * 3 / 4);
  EXPECT_LT(holed.copied.copied_bytes, whole.copied.copied_bytes + L7TAP_WALK_LOST_COPY + 4096);
  ASSERT_EQ(holed.records.http.size(), 2u);
  for (const HttpRecord& r : holed.records.http) EXPECT_EQ(r.status, 200) << r.path;
}

// A client's first segment: the preface (which arms the walk), a SETTINGS
// frame and a DATA frame large enough to be skipped, so the walk hands out
// several parts for one segment.
struct H2Segment {
  std::vector<uint8_t> payload;
  SegmentEvent seg;
  H2Segment() {
    const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    payload.assign(preface.begin(), preface.end());
    const uint8_t settings[9] = {0, 0, 0, 0x4, 0, 0, 0, 0, 0};
    payload.insert(payload.end(), settings, settings + 9);
    const uint8_t data[9] = {0, 0x10, 0, 0x0, 0, 0, 0, 0, 1};  // DATA, 4096 bytes, stream 1
    payload.insert(payload.end(), data, data + 9);
    payload.resize(payload.size() + 4096, 'd');
    payload.insert(payload.end(), data, data + 9);  // another DATA frame's header
    seg.key.family = 4;
    seg.key.saddr[15] = 1;
    seg.key.daddr[15] = 2;
    seg.key.sport = 40000;
    seg.key.dport = 80;
    seg.seq = 1000;
    seg.payload_len = static_cast<uint32_t>(payload.size());
    seg.payload = payload;
  }
};

TEST(FrameWalk, FlowForgottenWhileItsSegmentIsWalked) {
  // Delivering a part reaches the session, which may close the connection
  // and forget its capture control before the walk's loop ends. The loop
  // must not touch the erased entry (a heap-use-after-free under ASan,
  // found by mutating fixtures).
  CapturePolicy policy(256, true);
  H2Segment h2;
  const CanonicalFlowKey key = canonicalKey(h2.seg.key);
  int parts = 0;
  policy.apply(h2.seg, [&](const SegmentEvent& part) {
    parts++;
    EXPECT_NE(part.capture_flags & L7TAP_SEG_WALKED, 0);
    policy.forget(key);
  });
  EXPECT_GE(parts, 2);
  // Forgotten: the next segment is a plain window again.
  H2Segment next;
  next.seg.seq = h2.seg.seq + h2.seg.payload_len;
  next.payload.assign(600, 'x');
  next.seg.payload_len = 600;
  next.seg.payload = next.payload;
  policy.apply(next.seg, [&](const SegmentEvent& part) {
    EXPECT_EQ(part.capture_flags, 0);
    EXPECT_EQ(part.payload.size(), 256u);
  });
}

TEST(FrameWalk, RearmWhileItsSegmentIsWalkedWins) {
  // The daemon re-arms the direction while the walk's loop runs: the loop
  // finishes on its own state and the re-arm is kept, as in the kernel,
  // where user space replaces the map entry under the running program.
  CapturePolicy policy(256, true);
  H2Segment h2;
  const CanonicalFlowKey key = canonicalKey(h2.seg.key);
  const uint32_t dir = 0;  // 0.0.0.1:40000 is the lower endpoint
  const uint32_t next_seq = h2.seg.seq + h2.seg.payload_len;
  policy.apply(h2.seg, [&](const SegmentEvent&) { policy.walkFrames(key, dir, next_seq); });
  // The next segment starts with a frame header exactly where it was armed.
  H2Segment next;
  next.seg.seq = next_seq;
  next.payload.assign(h2.payload.end() - 9, h2.payload.end());
  next.payload[1] = 0;  // a 16-byte frame: copied whole, nothing lost
  next.payload[2] = 16;
  next.payload.resize(9 + 16, 'e');
  next.seg.payload_len = static_cast<uint32_t>(next.payload.size());
  next.seg.payload = next.payload;
  int parts = 0;
  policy.apply(next.seg, [&](const SegmentEvent& part) {
    parts++;
    EXPECT_EQ(part.capture_flags & L7TAP_SEG_WALK_LOST, 0);
    EXPECT_EQ(part.payload.size(), next.payload.size());
  });
  EXPECT_EQ(parts, 1);
  EXPECT_EQ(policy.counters().walk_lost, 0u);
}

}  // namespace
}  // namespace l7tap
