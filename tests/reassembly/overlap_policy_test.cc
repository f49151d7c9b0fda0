// Overlapping segments whose copies differ: the delivered stream must be what
// a Linux receiver's application reads (net/ipv4/tcp_input.c), and the
// difference must be counted whichever copy wins.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "parsers/common/records.h"
#include "reassembly/stream_reassembler.h"

namespace l7tap {
namespace {

// Collects the stream and, for every onData call, the conflicting bytes
// counted when it was made: the count must come right after the bytes that
// hold the first differing one, so that the exchange they belong to sees it.
class StreamLog final : public StreamObserver {
 public:
  explicit StreamLog(const DirectionStats& stats) : stats_(stats) {}
  void onData(Side, std::span<const uint8_t> b, uint64_t) override {
    stream.append(b.begin(), b.end());
    calls.emplace_back(std::string(b.begin(), b.end()),
                       stats_.anomalies().conflicting_overlap_bytes);
  }
  void onGap(Side, uint64_t n, uint64_t) override {
    stream.append("<gap " + std::to_string(n) + ">");
  }
  void onEnd(Side, EndKind, uint64_t) override { stream.append("<end>"); }
  void onClose(const ConnectionInfo&) override {}

  std::string stream;
  std::vector<std::pair<std::string, uint64_t>> calls;

 private:
  const DirectionStats& stats_;
};

// One direction whose first byte after the SYN is sequence number 1000.
class OverlapPolicy : public ::testing::Test {
 protected:
  OverlapPolicy() { r_.onSyn(999); }

  void seg(uint32_t seq, const std::string& data) {
    ts_ += 1000;
    r_.onSegment(seq, static_cast<uint32_t>(data.size()),
                 {reinterpret_cast<const uint8_t*>(data.data()), data.size()}, false, ts_, cx_);
  }
  const std::string& flushed() {
    r_.flush(ts_, cx_);
    return log_.stream;
  }
  uint64_t conflicts() const { return stats_.anomalies().conflicting_overlap_bytes; }

  ReassemblyLimits limits_;
  DirectionStats stats_;
  StreamLog log_{stats_};
  StreamReassembler::Context cx_{limits_, stats_, log_};
  StreamReassembler r_{Side::kOrig};
  uint64_t ts_ = 1'000'000'000;
};

// tcp_data_queue: a segment below rcv_nxt is trimmed at its front; what the
// application may already have read is never replaced.
TEST_F(OverlapPolicy, DeliveredBytesAreNeverReplaced) {
  seg(1000, "hello");
  seg(1000, "HELLOworld");
  EXPECT_EQ(flushed(), "helloworld");
  // Delivered bytes are not kept, so no comparison is possible.
  EXPECT_EQ(conflicts(), 0u);
  EXPECT_EQ(stats_.anomalies().retransmitted_bytes, 5u);
}

// tcp_data_queue then tcp_ofo_queue: the in-order segment is queued whole and
// the buffered one is trimmed at its front to what lies past it.
TEST_F(OverlapPolicy, InOrderSegmentWinsOverBufferedCopy) {
  seg(1003, "XXxyz");    // 1003..1008, out of order
  seg(1000, "abcdefg");  // 1000..1007: differs from the buffered copy at 1003..1006
  EXPECT_EQ(flushed(), "abcdefgz");
  EXPECT_EQ(conflicts(), 4u);
  // Counted once the bytes holding the first differing one (1003) were
  // handed on: the exchange they belong to has begun by then.
  EXPECT_EQ(log_.calls, (std::vector<std::pair<std::string, uint64_t>>{{"abcdefg", 0}, {"z", 4}}));
}

// tcp_data_queue_ofo, "All the bits are present": a new out-of-order segment
// wholly inside a queued one is dropped; an exact duplicate too.
TEST_F(OverlapPolicy, OutOfOrderSegmentInsideQueuedOneIsDropped) {
  seg(1005, "abcdef");  // 1005..1011
  seg(1007, "XY");      // inside
  seg(1005, "ABCDEF");  // same start, same end
  seg(1000, "01234");
  EXPECT_EQ(flushed(), "01234abcdef");
  EXPECT_EQ(conflicts(), 8u);
}

// tcp_data_queue_ofo, rb_replace_node: same start, reaching further: the new
// segment replaces the queued one.
TEST_F(OverlapPolicy, SameStartReachingFurtherReplacesQueuedOne) {
  seg(1005, "abc");   // 1005..1008
  seg(1005, "XYZW");  // 1005..1009
  seg(1000, "01234");
  EXPECT_EQ(flushed(), "01234XYZW");
  EXPECT_EQ(conflicts(), 3u);
}

// tcp_data_queue_ofo, merge_right: queued segments the new one covers from
// their start to their end are removed.
TEST_F(OverlapPolicy, QueuedSegmentsCoveredByNewOneAreRemoved) {
  seg(1006, "bc");    // 1006..1008
  seg(1009, "e");     // 1009..1010
  seg(1005, "XYZW");  // 1005..1009 covers the first, not the second
  seg(1000, "01234");
  EXPECT_EQ(flushed(), "01234XYZWe");
  EXPECT_EQ(conflicts(), 2u);
}

// Partial overlaps keep both; tcp_ofo_queue then delivers the one earlier in
// sequence whole and trims the later one at its front, in whichever order
// they came.
TEST_F(OverlapPolicy, PartialOverlapEarlierInSequenceWinsWhenItCameSecond) {
  seg(1007, "cdef");  // 1007..1011
  seg(1005, "XYZW");  // 1005..1009
  seg(1000, "01234");
  EXPECT_EQ(flushed(), "01234XYZWef");
  EXPECT_EQ(conflicts(), 2u);
  EXPECT_EQ(log_.calls,
            (std::vector<std::pair<std::string, uint64_t>>{{"01234", 0}, {"XYZW", 0}, {"ef", 2}}));
}

TEST_F(OverlapPolicy, PartialOverlapEarlierInSequenceWinsWhenItCameFirst) {
  seg(1005, "XYZW");
  seg(1007, "cdef");
  seg(1000, "01234");
  EXPECT_EQ(flushed(), "01234XYZWef");
  EXPECT_EQ(conflicts(), 2u);
}

// A conflict in bytes that end up a gap (the hole before them never filled)
// is still counted, when the stream passes it.
TEST_F(OverlapPolicy, ConflictBeyondAHoleIsCountedWhenFlushed) {
  seg(1005, "abc");
  seg(1005, "XYZW");
  EXPECT_EQ(conflicts(), 0u);  // not reached yet
  EXPECT_EQ(flushed(), "<gap 5>XYZW");
  EXPECT_EQ(conflicts(), 3u);
}

// The buffered bytes are counted once even when buffered copies overlap each
// other and are delivered one after the other.
TEST_F(OverlapPolicy, BufferedCopiesAreComparedOnce) {
  seg(1005, "XYZW");
  seg(1007, "cdef");
  seg(1000, "01234");
  EXPECT_EQ(conflicts(), 2u);
  seg(1011, "g");
  EXPECT_EQ(flushed(), "01234XYZWefg");
  EXPECT_EQ(conflicts(), 2u);
}

// An exchange in flight when the stream reaches a conflict is flagged
// ambiguous; one that is not, is not.
TEST_F(OverlapPolicy, ExchangeThatSawAConflictIsFlaggedAmbiguous) {
  ConnectionInfo conn;
  HttpRecord before;
  before.startL4(&conn);
  before.endL4(&conn);
  EXPECT_EQ(before.flags & kFlagAmbiguous, 0u);

  HttpRecord during;
  during.startL4(&conn);
  conn.stats[index(Side::kResp)].countAnomaly().conflicting_overlap_bytes = 1;
  during.endL4(&conn);
  EXPECT_NE(during.flags & kFlagAmbiguous, 0u);

  HttpRecord after;
  after.startL4(&conn);
  after.endL4(&conn);
  EXPECT_EQ(after.flags & kFlagAmbiguous, 0u);
}

}  // namespace
}  // namespace l7tap
