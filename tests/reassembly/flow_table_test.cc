// Hand-built segment sequences for the TCP cases in DESIGN.md.
#include "reassembly/flow_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace l7tap {
namespace {

// Records every call as a line such as "O data hello", "R gap 5", "O end fin".
class LogObserver final : public StreamObserver {
 public:
  LogObserver(std::vector<std::string>& log, std::vector<ConnectionInfo>& closed)
      : log_(log), closed_(closed) {}
  void onData(Side s, std::span<const uint8_t> b, uint64_t) override {
    log_.push_back(std::string(name(s)) + " data " + std::string(b.begin(), b.end()));
  }
  void onGap(Side s, uint64_t n, uint64_t) override {
    log_.push_back(std::string(name(s)) + " gap " + std::to_string(n));
  }
  void onEnd(Side s, EndKind k, uint64_t) override {
    log_.push_back(std::string(name(s)) + " end " + (k == EndKind::kFin ? "fin" : "rst"));
  }
  void onInterim(const ConnectionInfo&) override { log_.push_back("interim"); }
  void onClose(const ConnectionInfo& c) override {
    log_.push_back("close " + std::string(toString(c.close_reason)));
    closed_.push_back(c);
  }

 private:
  static const char* name(Side s) { return s == Side::kOrig ? "O" : "R"; }
  std::vector<std::string>& log_;
  std::vector<ConnectionInfo>& closed_;
};

class LogFactory final : public StreamObserverFactory {
 public:
  std::unique_ptr<StreamObserver> create(ConnectionInfo&, CaptureHints&) override {
    return std::make_unique<LogObserver>(log, closed);
  }
  std::vector<std::string> log;
  std::vector<ConnectionInfo> closed;
};

// Builds the segments of one client (10.0.0.1:40000) / server (10.0.0.2:80) pair.
struct Wire {
  uint32_t cseq = 1000, sseq = 5000;
  uint64_t ts = 1'000'000'000;
  std::deque<std::string> storage;  // stable addresses: segments borrow from it

  SegmentEvent seg(bool from_client, uint32_t seq, uint8_t flags, const std::string& data,
                   uint32_t wire_len = UINT32_MAX) {
    SegmentEvent e;
    e.ts_ns = ts += 1000;
    e.key.family = 4;
    uint8_t c[4] = {10, 0, 0, 1}, s[4] = {10, 0, 0, 2};
    setIpv4(e.key.saddr, from_client ? c : s);
    setIpv4(e.key.daddr, from_client ? s : c);
    e.key.sport = from_client ? 40000 : 80;
    e.key.dport = from_client ? 80 : 40000;
    e.seq = seq;
    e.ack = from_client ? sseq : cseq;
    e.tcp_flags = flags | (flags & L7TAP_TCP_SYN && !from_client ? L7TAP_TCP_ACK : 0);
    if (!(flags & L7TAP_TCP_SYN)) e.tcp_flags |= L7TAP_TCP_ACK;
    e.tcp_window = 65535;
    storage.push_back(data);
    e.payload = {reinterpret_cast<const uint8_t*>(storage.back().data()), data.size()};
    e.payload_len = wire_len == UINT32_MAX ? data.size() : wire_len;
    return e;
  }
};

std::vector<std::string> run(const std::vector<SegmentEvent>& segs, LogFactory& f,
                             ReassemblyLimits limits = {}) {
  FlowTable table(f, limits);
  for (const auto& s : segs) table.onSegment(s);
  table.closeAll(CloseReason::kEndOfInput);
  return f.log;
}

TEST(FlowTable, HandshakeDataAndGracefulClose) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(false, 4999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1000, 0, ""));
  s.push_back(w.seg(true, 1000, L7TAP_TCP_PSH, "hello"));
  w.cseq = 1005;
  s.push_back(w.seg(false, 5000, L7TAP_TCP_PSH, "world!"));
  w.sseq = 5006;
  s.push_back(w.seg(true, 1005, L7TAP_TCP_FIN, ""));
  w.cseq = 1006;
  s.push_back(w.seg(false, 5006, L7TAP_TCP_FIN, ""));
  w.sseq = 5007;
  s.push_back(w.seg(true, 1006, 0, ""));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O data hello", "R data world!", "O end fin",
                                                 "R end fin", "close fin"}));
  ASSERT_EQ(f.closed.size(), 1u);
  const ConnectionInfo& c = f.closed[0];
  EXPECT_STREQ(c.state(), "SF");
  EXPECT_EQ(c.history, "ShADdFf");
  EXPECT_EQ(c.port[0], 40000);
  EXPECT_FALSE(c.midstream);
  EXPECT_EQ(c.stats[0].packets, 5u);
  EXPECT_EQ(c.stats[0].bytes, 5u);
  EXPECT_EQ(c.stats[1].bytes, 6u);
  EXPECT_EQ(c.handshake_rtt_ns, 1000u);
}

TEST(FlowTable, TunnelOfTheFirstPacketLandsOnTheConnectionBySide) {
  // The first packet comes from the server (mid-stream): its outer source is
  // the server's outer address.
  l7tap_tunnel from_server{};
  from_server.type = L7TAP_TUNNEL_GENEVE;
  from_server.outer_family = 4;
  from_server.has_id = 1;
  from_server.id = 99;
  uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2};
  setIpv4(from_server.outer_saddr, b);
  setIpv4(from_server.outer_daddr, a);
  l7tap_tunnel other = from_server;
  other.id = 100;  // later packets do not change it
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(false, 5000, L7TAP_TCP_PSH, "HTTP/1.1 200 OK\r\n"));
  s.back().tunnel = &from_server;
  s.push_back(w.seg(true, 1000, L7TAP_TCP_PSH, "GET"));
  s.back().tunnel = &other;
  run(s, f);
  ASSERT_EQ(f.closed.size(), 1u);
  const ConnectionInfo& c = f.closed[0];
  ASSERT_NE(c.tunnel.get(), nullptr);
  const ConnectionTunnel& t = *c.tunnel.get();
  EXPECT_EQ(t.type, L7TAP_TUNNEL_GENEVE);
  EXPECT_EQ(t.id, 99u);
  EXPECT_TRUE(t.has_id);
  // Side of the server (10.0.0.2:80) holds 192.0.2.2.
  const int server = c.port[0] == 80 ? 0 : 1;
  EXPECT_EQ(formatAddress(t.outer_addr[server].data(), 4), "192.0.2.2");
  EXPECT_EQ(formatAddress(t.outer_addr[1 - server].data(), 4), "192.0.2.1");

  // Untunnelled: nothing, and the connection holds one pointer for it.
  LogFactory g;
  Wire w2;
  run({w2.seg(true, 999, L7TAP_TCP_SYN, "")}, g);
  ASSERT_EQ(g.closed.size(), 1u);
  EXPECT_EQ(g.closed[0].tunnel.get(), nullptr);
  static_assert(sizeof(TunnelPtr) == sizeof(void*));
}

TEST(FlowTable, OutOfOrderSegmentsAreDeliveredInOrder) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1005, 0, "world"));
  s.push_back(w.seg(true, 1010, 0, "!"));
  s.push_back(w.seg(true, 1000, 0, "hello"));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O data hello", "O data world", "O data !",
                                                 "close end_of_input"}));
  EXPECT_EQ(f.closed[0].stats[0].anomalies().out_of_order_segments, 2u);
  EXPECT_STREQ(f.closed[0].state(), "S0");
}

// Buffered bytes are delivered at the time of the packet that made them
// contiguous, not of the packet that brought them: a stream's times never
// go back (a body that overtook its headers ends when the headers came).
TEST(FlowTable, BufferedBytesTakeTheTimeTheyBecameDeliverable) {
  struct Times final : StreamObserver {
    std::vector<std::pair<std::string, uint64_t>>& data;
    explicit Times(std::vector<std::pair<std::string, uint64_t>>& d) : data(d) {}
    void onData(Side, std::span<const uint8_t> b, uint64_t ts) override {
      data.emplace_back(std::string(b.begin(), b.end()), ts);
    }
    void onGap(Side, uint64_t, uint64_t) override {}
    void onEnd(Side, EndKind, uint64_t) override {}
    void onInterim(const ConnectionInfo&) override {}
    void onClose(const ConnectionInfo&) override {}
  };
  struct Factory final : StreamObserverFactory {
    std::vector<std::pair<std::string, uint64_t>> data;
    std::unique_ptr<StreamObserver> create(ConnectionInfo&, CaptureHints&) override {
      return std::make_unique<Times>(data);
    }
  } f;
  Wire w;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1005, 0, "body"));  // overtakes the headers
  s.push_back(w.seg(true, 1000, 0, "head:"));
  FlowTable table(f, {});
  for (const auto& seg : s) table.onSegment(seg);
  ASSERT_EQ(f.data.size(), 2u);
  EXPECT_EQ(f.data[0], std::make_pair(std::string("head:"), s[2].ts_ns));
  EXPECT_EQ(f.data[1], std::make_pair(std::string("body"), s[2].ts_ns));
}

TEST(FlowTable, RetransmissionsAreCountedNotRedelivered) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1000, 0, "hello"));
  s.push_back(w.seg(true, 1000, 0, "hello"));
  s.push_back(w.seg(true, 1003, 0, "loworld"));  // partial overlap
  EXPECT_EQ(run(s, f),
            (std::vector<std::string>{"O data hello", "O data world", "close end_of_input"}));
  EXPECT_EQ(f.closed[0].stats[0].anomalies().retransmitted_segments, 2u);
  EXPECT_EQ(f.closed[0].stats[0].anomalies().retransmitted_bytes, 7u);
  EXPECT_NE(f.closed[0].history.find('T'), std::string::npos);
}

// As Linux does (tcp_data_queue, tcp_ofo_queue): the in-order copy is delivered
// whole and the buffered one only past it (tests/reassembly/overlap_policy_test.cc).
TEST(FlowTable, ConflictingOverlapIsCountedAndInOrderCopyWins) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1003, 0, "XXxyz"));    // arrives first, out of order
  s.push_back(w.seg(true, 1000, 0, "abcdefg"));  // covers 1000-1007, differs at 1003-1006
  EXPECT_EQ(run(s, f),
            (std::vector<std::string>{"O data abcdefg", "O data z", "close end_of_input"}));
  EXPECT_EQ(f.closed[0].stats[0].anomalies().conflicting_overlap_bytes, 4u);
}

TEST(FlowTable, LossBecomesGapWhenPeerAcknowledgesPastIt) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(false, 4999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1000, 0, "aaaa"));
  // 1004..1008 lost; the server acknowledges everything.
  w.cseq = 1012;
  s.push_back(w.seg(false, 5000, 0, "resp"));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O data aaaa", "O gap 8", "R data resp",
                                                 "close end_of_input"}));
  EXPECT_EQ(f.closed[0].stats[0].anomalies().missed_bytes, 8u);
}

TEST(FlowTable, HoleBeforeBufferedDataIsGapAtFlush) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1000, 0, "ab"));
  s.push_back(w.seg(true, 1005, 0, "fg"));
  EXPECT_EQ(run(s, f),
            (std::vector<std::string>{"O data ab", "O gap 3", "O data fg", "close end_of_input"}));
}

TEST(FlowTable, WindowTruncationIsAGapOfKnownLength) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1000, 0, "abc", 10));
  s.push_back(w.seg(true, 1010, 0, "xyz"));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O data abc", "O gap 7", "O data xyz",
                                                 "close end_of_input"}));
}

TEST(FlowTable, SkippedPayloadBeforeTheCapturedBytesIsAGap) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  auto e = w.seg(true, 1000, 0, "xyz", 10);
  e.payload_offset = 4;  // bytes 1000..1003 skipped, 1004..1006 captured, 1007..1009 cut
  s.push_back(e);
  s.push_back(w.seg(true, 1010, 0, "next"));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O gap 4", "O data xyz", "O gap 3", "O data next",
                                                 "close end_of_input"}));
}

TEST(FlowTable, SequenceNumbersWrapAround) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 0xfffffffd, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 0xfffffffe, 0, "abcd"));  // crosses 2^32
  s.push_back(w.seg(true, 3, 0, "ef"));             // out of order after the wrap
  s.push_back(w.seg(true, 2, 0, "Z"));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O data abcd", "O data Z", "O data ef",
                                                 "close end_of_input"}));
}

TEST(FlowTable, MidstreamStartUsesFirstSegmentAndPortHeuristic) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(false, 7000, 0, "tail of a response"));
  s.push_back(w.seg(true, 2000, 0, "GET"));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"R data tail of a response", "O data GET",
                                                 "close end_of_input"}));
  const ConnectionInfo& c = f.closed[0];
  EXPECT_TRUE(c.midstream);
  EXPECT_EQ(c.port[0], 40000);  // the unprivileged port is taken as the client
  EXPECT_STREQ(c.state(), "OTH");
}

TEST(FlowTable, ResetEndsBothSidesAndFlushesBufferedData) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(false, 4999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1000, 0, "ab"));
  s.push_back(w.seg(true, 1004, 0, "ef"));
  s.push_back(w.seg(false, 5000, L7TAP_TCP_RST, ""));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O data ab", "R end rst", "O gap 2", "O data ef",
                                                 "O end rst", "close rst"}));
  EXPECT_STREQ(f.closed[0].state(), "RSTR");
}

TEST(FlowTable, HalfCloseKeepsTheOtherDirectionOpen) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(false, 4999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1000, L7TAP_TCP_FIN, "req"));
  w.cseq = 1004;
  s.push_back(w.seg(false, 5000, 0, "still talking"));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O data req", "O end fin", "R data still talking",
                                                 "close end_of_input"}));
  EXPECT_STREQ(f.closed[0].state(), "S2");
}

TEST(FlowTable, ZeroWindowEventsAreCounted) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  for (int i = 0; i < 3; ++i) {
    auto e = w.seg(false, 5000, 0, "");
    e.tcp_window = 0;
    s.push_back(e);
  }
  s.push_back(w.seg(false, 5000, 0, ""));
  auto e = w.seg(false, 5000, 0, "");
  e.tcp_window = 0;
  s.push_back(e);
  run(s, f);
  EXPECT_EQ(f.closed[0].stats[1].anomalies().zero_window_events, 2u);
}

TEST(FlowTable, PortReuseAfterCloseStartsANewConnection) {
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1000, L7TAP_TCP_RST, ""));
  s.push_back(w.seg(true, 77777, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 77778, 0, "again"));
  EXPECT_EQ(run(s, f), (std::vector<std::string>{"O end rst", "R end rst", "close rst",
                                                 "O data again", "close end_of_input"}));
  ASSERT_EQ(f.closed.size(), 2u);
  EXPECT_LT(f.closed[0].id, f.closed[1].id);
}

TEST(FlowTable, AConnectionClosedBeforeItsCloseDelayLeavesTheNextOneItsOwn) {
  // The first connection is reset (closing), then replaced by a new SYN on
  // the same port pair before its close delay ran out; the second one is
  // reset too and must close once, by its own delay, not the first one's.
  Wire w;
  LogFactory f;
  ReassemblyLimits limits;
  limits.close_delay_ns = 1'000'000;  // 1 ms
  FlowTable table(f, limits);
  table.onSegment(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  table.onSegment(w.seg(true, 1000, L7TAP_TCP_RST, ""));
  table.onSegment(w.seg(true, 77777, L7TAP_TCP_SYN, ""));
  ASSERT_EQ(f.closed.size(), 1u);
  table.onSegment(w.seg(true, 77778, L7TAP_TCP_RST, ""));
  EXPECT_EQ(f.closed.size(), 1u);
  w.ts += 2'000'000;
  auto other = w.seg(true, 999, L7TAP_TCP_SYN, "");
  other.key.sport = 40001;
  table.onSegment(other);
  ASSERT_EQ(f.closed.size(), 2u);
  EXPECT_EQ(f.closed[1].close_reason, CloseReason::kRst);
  EXPECT_LT(f.closed[0].id, f.closed[1].id);
  EXPECT_EQ(table.stats().connections_active, 1u);
  table.closeAll(CloseReason::kEndOfInput);
  EXPECT_EQ(f.closed.size(), 3u);
}

TEST(FlowTable, HandshakeRttFromASynThatDidNotOpenTheConnection) {
  // A bare ACK from the server opens the connection; the client's SYN comes
  // 1 us later and the SYN-ACK 1 us after it: the round trip is SYN to
  // SYN-ACK, not first packet to SYN-ACK.
  Wire w;
  LogFactory f;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(false, 5000, 0, ""));
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(false, 4999, L7TAP_TCP_SYN, ""));
  run(s, f);
  ASSERT_EQ(f.closed.size(), 1u);
  EXPECT_EQ(f.closed[0].handshake_rtt_ns, 1000u);
}

TEST(FlowTable, IdleConnectionsExpireByPacketTime) {
  Wire w;
  LogFactory f;
  ReassemblyLimits limits;
  limits.idle_timeout_ns = 1'000'000;  // 1 ms
  FlowTable table(f, limits);
  table.onSegment(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  w.ts += 5'000'000;
  auto other = w.seg(true, 999, L7TAP_TCP_SYN, "");
  other.key.sport = 40001;
  table.onSegment(other);
  ASSERT_EQ(f.closed.size(), 1u);
  EXPECT_EQ(f.closed[0].close_reason, CloseReason::kIdle);
  EXPECT_EQ(table.stats().connections_active, 1u);
}

TEST(FlowTable, InterimReportsForLongLivedConnectionsOnly) {
  Wire w;
  LogFactory f;
  FlowTable table(f);
  table.onSegment(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  const uint64_t opened = w.ts;
  table.reportInterim(opened + 500, 1000);  // too young
  table.reportInterim(opened + 1000, 1000);
  table.reportInterim(opened + 1500, 1000);  // reported 500 ns ago
  table.reportInterim(opened + 2000, 1000);
  EXPECT_EQ(std::count(f.log.begin(), f.log.end(), "interim"), 2);
}

TEST(FlowTable, FullTableEvictsLeastRecentlyActive) {
  Wire w;
  LogFactory f;
  ReassemblyLimits limits;
  limits.max_connections = 2;
  FlowTable table(f, limits);
  for (uint16_t port = 1; port <= 3; ++port) {
    auto e = w.seg(true, 999, L7TAP_TCP_SYN, "");
    e.key.sport = 40000 + port;
    table.onSegment(e);
  }
  ASSERT_EQ(f.closed.size(), 1u);
  EXPECT_EQ(f.closed[0].close_reason, CloseReason::kEvicted);
  EXPECT_EQ(f.closed[0].port[0], 40001);
  EXPECT_EQ(table.stats().connections_evicted, 1u);
}

// A flood of connections only one side speaks on (SYN flood, one-packet
// connections) evicts its own kind: established connections stay, however
// long they have been idle.
TEST(FlowTable, FloodEvictsOneSidedConnectionsFirst) {
  Wire w;
  LogFactory f;
  ReassemblyLimits limits;
  limits.max_connections = 3;
  FlowTable table(f, limits);
  for (uint16_t port : {40001, 40002}) {
    auto syn = w.seg(true, 999, L7TAP_TCP_SYN, "");
    syn.key.sport = port;
    table.onSegment(syn);
    auto synack = w.seg(false, 4999, L7TAP_TCP_SYN, "");
    synack.key.dport = port;
    table.onSegment(synack);
  }
  for (uint16_t port = 50000; port < 50010; ++port) {
    auto e = w.seg(true, 999, L7TAP_TCP_SYN, "");
    e.key.sport = port;
    table.onSegment(e);
  }
  ASSERT_EQ(f.closed.size(), 9u);
  for (const ConnectionInfo& c : f.closed) {
    EXPECT_EQ(c.close_reason, CloseReason::kEvicted);
    EXPECT_GE(c.port[0], 50000);
  }
  EXPECT_EQ(table.stats().connections_evicted, 9u);
  EXPECT_EQ(table.stats().unanswered_evicted, 9u);
}

// The index grows and shifts entries back on deletion: every connection is
// still found from both directions after thousands of opens and closes in
// an order unrelated to the slots.
TEST(FlowTable, EveryConnectionIsFoundThroughGrowthAndDeletions) {
  Wire w;
  LogFactory f;
  FlowTable table(f);
  constexpr uint32_t kConns = 5000;
  auto keyed = [&](bool from_client, uint32_t i, uint8_t flags) {
    auto e = w.seg(from_client, from_client ? 999 : 4999, flags, "");
    uint8_t client[4] = {10, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i), 1};
    setIpv4(from_client ? e.key.saddr : e.key.daddr, client);
    (from_client ? e.key.sport : e.key.dport) = static_cast<uint16_t>(40000 + i % 7);
    return e;
  };
  for (uint32_t i = 0; i < kConns; ++i) table.onSegment(keyed(true, i, L7TAP_TCP_SYN));
  for (uint32_t i = 0; i < kConns; ++i) table.onSegment(keyed(false, i, L7TAP_TCP_SYN));
  uint32_t reset = 0;
  for (uint32_t k = 0; k < kConns; ++k) {
    const uint32_t i = (k * 7919u) % kConns;  // a permutation: 7919 is prime, no factor of kConns
    if (i % 3 != 0) continue;
    table.onSegment(keyed(k % 2 == 0, i, L7TAP_TCP_RST));
    ++reset;
  }
  w.ts += 10'000'000'000;  // past the close delay: the reset ones are removed
  for (uint32_t i = 0; i < kConns; ++i) {
    if (i % 3 != 0) table.onSegment(keyed(false, i, 0));
  }
  EXPECT_EQ(table.stats().connections_opened, kConns);
  EXPECT_EQ(table.stats().connections_closed, reset);
  EXPECT_EQ(table.stats().connections_active, kConns - reset);
  table.closeAll(CloseReason::kEndOfInput);
  ASSERT_EQ(f.closed.size(), kConns);
  for (const ConnectionInfo& c : f.closed) {
    EXPECT_EQ(c.stats[0].packets + c.stats[1].packets, 3u);  // no packet went elsewhere
    EXPECT_TRUE(c.roles_from_handshake);
  }
}

// IPv4 keys are IPv4-mapped IPv6 addresses: the family tells them apart.
TEST(FlowTable, SameAddressBytesInTwoFamiliesAreTwoConnections) {
  Wire w;
  LogFactory f;
  FlowTable table(f);
  auto v4 = w.seg(true, 999, L7TAP_TCP_SYN, "");
  auto v6 = v4;
  v6.key.family = 6;
  table.onSegment(v4);
  table.onSegment(v6);
  EXPECT_EQ(table.stats().connections_opened, 2u);
}

TEST(FlowTable, OutOfOrderBoundTurnsTheOldestHoleIntoAGap) {
  Wire w;
  LogFactory f;
  ReassemblyLimits limits;
  limits.max_out_of_order_bytes = 4;
  std::vector<SegmentEvent> s;
  s.push_back(w.seg(true, 999, L7TAP_TCP_SYN, ""));
  s.push_back(w.seg(true, 1002, 0, "cd"));
  s.push_back(w.seg(true, 1006, 0, "ghij"));  // would exceed 4 buffered bytes
  EXPECT_EQ(run(s, f, limits), (std::vector<std::string>{"O gap 2", "O data cd", "O gap 2",
                                                         "O data ghij", "close end_of_input"}));
  EXPECT_GE(f.closed[0].stats[0].anomalies().out_of_order_overflows, 1u);
}

TEST(FlowTable, Ipv6KeysWork) {
  Wire w;
  LogFactory f;
  auto e = w.seg(true, 999, L7TAP_TCP_SYN, "");
  e.key.family = 6;
  std::memset(e.key.saddr, 0, 16);
  std::memset(e.key.daddr, 0, 16);
  e.key.saddr[0] = 0xfd;
  e.key.daddr[0] = 0xfd;
  e.key.daddr[15] = 2;
  FlowTable table(f);
  table.onSegment(e);
  table.closeAll(CloseReason::kEndOfInput);
  ASSERT_EQ(f.closed.size(), 1u);
  EXPECT_EQ(formatAddress(f.closed[0].addr[1].data(), 6), "fd00::2");
}

}  // namespace
}  // namespace l7tap
