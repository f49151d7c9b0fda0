// The flow table's CaptureHints: an observer's stream offsets become the
// capture's sequence ranges at once, by canonical key and direction index;
// the capture's walk flags reach the observer before the segment's bytes.
#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "reassembly/flow_table.h"

namespace l7tap {
namespace {

class RecordingControl final : public CaptureControl {
 public:
  void skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) override {
    check(key);
    log.push_back("skip " + std::to_string(dir) + " " + std::to_string(begin) + " " +
                  std::to_string(end));
  }
  void countOnly(const CanonicalFlowKey& key) override {
    check(key);
    log.push_back("count_only");
  }
  void walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) override {
    check(key);
    log.push_back("walk " + std::to_string(dir) + " " + std::to_string(frame_seq));
  }
  void forget(const CanonicalFlowKey& key) override {
    check(key);
    log.push_back("forget");
  }
  CanonicalFlowKey expected{};
  std::vector<std::string> log;

 private:
  void check(const CanonicalFlowKey& key) { EXPECT_TRUE(key == expected); }
};

class WalkLog final : public StreamObserver {
 public:
  explicit WalkLog(std::vector<std::string>& log) : log_(log) {}
  void onData(Side s, std::span<const uint8_t> b, uint64_t) override {
    log_.push_back(std::string(name(s)) + " data " + std::string(b.begin(), b.end()));
  }
  void onGap(Side s, uint64_t n, uint64_t) override {
    log_.push_back(std::string(name(s)) + " gap " + std::to_string(n));
  }
  void onEnd(Side, EndKind, uint64_t) override {}
  void onClose(const ConnectionInfo&) override { log_.push_back("close"); }
  void onCaptureWalk(Side s, CaptureWalk w) override {
    log_.push_back(std::string(name(s)) + (w == CaptureWalk::kOn ? " walk on" : " walk lost"));
  }

 private:
  static const char* name(Side s) { return s == Side::kOrig ? "O" : "R"; }
  std::vector<std::string>& log_;
};

// Keeps the hints handed to the (single) connection's observer.
class HintsFactory final : public StreamObserverFactory {
 public:
  std::unique_ptr<StreamObserver> create(ConnectionInfo&, CaptureHints& h) override {
    hints = &h;
    return std::make_unique<WalkLog>(log);
  }
  CaptureHints* hints = nullptr;
  std::vector<std::string> log;
};

// Client 10.0.0.<client_host>:40000 and server 10.0.0.2:80. ISNs 999 and
// 4999: stream offset 0 is sequence number 1000 and 5000.
struct Pair {
  uint8_t client_host = 1;
  uint64_t ts = 1'000'000'000;
  std::deque<std::string> storage;

  SegmentEvent seg(bool from_client, uint32_t seq, uint8_t flags, const std::string& data = "",
                   uint8_t capture_flags = 0) {
    SegmentEvent e;
    e.ts_ns = ts += 1000;
    e.key.family = 4;
    uint8_t c[4] = {10, 0, 0, client_host}, s[4] = {10, 0, 0, 2};
    setIpv4(e.key.saddr, from_client ? c : s);
    setIpv4(e.key.daddr, from_client ? s : c);
    e.key.sport = from_client ? 40000 : 80;
    e.key.dport = from_client ? 80 : 40000;
    e.seq = seq;
    e.tcp_flags = flags;
    e.tcp_window = 65535;
    e.capture_flags = capture_flags;
    storage.push_back(data);
    e.payload = {reinterpret_cast<const uint8_t*>(storage.back().data()), data.size()};
    e.payload_len = static_cast<uint32_t>(data.size());
    return e;
  }
  CanonicalFlowKey key() { return canonicalKey(seg(true, 0, 0).key); }
};

TEST(CaptureHints, OffsetsBecomeSequenceRangesAtOnce) {
  Pair p;  // the client, 10.0.0.1, is the lower endpoint: direction 0
  HintsFactory f;
  RecordingControl control;
  control.expected = p.key();
  ReassemblyLimits limits;
  limits.max_skip_bytes = 1000;
  FlowTable table(f, limits);
  table.setCaptureControl(&control);
  table.onSegment(p.seg(true, 999, L7TAP_TCP_SYN));
  ASSERT_NE(f.hints, nullptr);
  f.hints->skip(Side::kOrig, 10, 100);
  EXPECT_EQ(control.log, (std::vector<std::string>{"skip 0 1010 1110"}));
  // Cut to the longest skip the capture takes at once.
  f.hints->skip(Side::kOrig, 0, 5000);
  EXPECT_EQ(control.log.back(), "skip 0 1000 2000");
  // The server has sent nothing: its hint waits for its first segment.
  f.hints->walkFrames(Side::kResp, 5);
  EXPECT_EQ(control.log.size(), 2u);
  table.onSegment(p.seg(false, 4999, L7TAP_TCP_SYN | L7TAP_TCP_ACK));
  EXPECT_EQ(control.log.back(), "walk 1 5005");
  f.hints->countOnly();
  f.hints->skip(Side::kResp, 0, 100);  // count-only: nothing more to skip
  f.hints->walkFrames(Side::kOrig, 0);
  table.closeAll(CloseReason::kEndOfInput);
  EXPECT_EQ(control.log, (std::vector<std::string>{"skip 0 1010 1110", "skip 0 1000 2000",
                                                   "walk 1 5005", "count_only", "forget"}));
}

TEST(CaptureHints, DirectionIndexIsTheCapturesNotTheSide) {
  Pair p;
  p.client_host = 9;  // the server, 10.0.0.2, is the lower endpoint: direction 0
  HintsFactory f;
  RecordingControl control;
  control.expected = p.key();
  FlowTable table(f);
  table.setCaptureControl(&control);
  table.onSegment(p.seg(true, 999, L7TAP_TCP_SYN));
  table.onSegment(p.seg(false, 4999, L7TAP_TCP_SYN | L7TAP_TCP_ACK));
  f.hints->skip(Side::kOrig, 1, 9);
  f.hints->walkFrames(Side::kResp, 0);
  EXPECT_EQ(control.log, (std::vector<std::string>{"skip 1 1001 1010", "walk 0 5000"}));
}

TEST(CaptureHints, WithoutCaptureControlHintsAreDropped) {
  Pair p;
  HintsFactory f;
  FlowTable table(f);
  table.onSegment(p.seg(true, 999, L7TAP_TCP_SYN));
  f.hints->skip(Side::kOrig, 0, 100);
  f.hints->walkFrames(Side::kResp, 0);  // would wait for the server otherwise
  f.hints->countOnly();
  table.onSegment(p.seg(false, 4999, L7TAP_TCP_SYN | L7TAP_TCP_ACK));
  table.closeAll(CloseReason::kEndOfInput);
  EXPECT_EQ(f.log, (std::vector<std::string>{"close"}));
}

TEST(CaptureHints, WalkFlagsReachTheObserverBeforeTheBytes) {
  Pair p;
  HintsFactory f;
  RecordingControl control;
  control.expected = p.key();
  FlowTable table(f);
  table.setCaptureControl(&control);
  table.onSegment(p.seg(true, 999, L7TAP_TCP_SYN));
  table.onSegment(p.seg(true, 1000, L7TAP_TCP_ACK, "ab", L7TAP_SEG_WALKED));
  table.onSegment(p.seg(true, 1002, L7TAP_TCP_ACK, "cd"));
  table.onSegment(p.seg(true, 1004, L7TAP_TCP_ACK, "ef", L7TAP_SEG_WALK_LOST));
  table.closeAll(CloseReason::kEndOfInput);
  EXPECT_EQ(f.log, (std::vector<std::string>{"O walk on", "O data ab", "O data cd", "O walk lost",
                                             "O data ef", "close"}));
  // The capture keeps state for a flow it walks (it may have armed the walk
  // itself, unasked): it is told to forget it.
  EXPECT_EQ(control.log, (std::vector<std::string>{"forget"}));
}

}  // namespace
}  // namespace l7tap
