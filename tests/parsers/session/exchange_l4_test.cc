// Per-exchange L4 events through the flow table and the session, with
// hand-built segments: when a segment's events are counted relative to the
// delivery of its bytes decides which exchange carries them.
#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "parsers/protocols/standard_protocols.h"
#include "parsers/session/session.h"
#include "reassembly/flow_table.h"

namespace l7tap {
namespace {

struct Seen {
  std::vector<HttpRecord> http;
  std::vector<ConnectionInfo> conns;
  // The exchange fields each HTTP record listed, in order.
  std::vector<std::vector<std::string>> fields;
};

class L4Fields final : public FieldVisitor {
 public:
  explicit L4Fields(std::vector<std::string>& out) : out_(out) {}
  void str(std::string_view, std::string_view) override {}
  void num(std::string_view name, uint64_t value) override {
    if (name.starts_with("l7tap.exchange.")) {
      out_.push_back(std::string(name) + "=" + std::to_string(value));
    }
  }
  void inum(std::string_view, int64_t) override {}
  void millis(std::string_view, uint64_t) override {}
  void time(std::string_view, uint64_t) override {}
  void addr(std::string_view, const uint8_t*, uint8_t) override {}
  void flags(std::string_view, uint32_t, const char* const*, size_t) override {}

 private:
  std::vector<std::string>& out_;
};

class Sink final : public RecordSink {
 public:
  explicit Sink(Seen& s) : s_(s) {}
  void onRecord(const ConnectionInfo& conn, const Record& r) override {
    if (const auto* http = dynamic_cast<const HttpRecord*>(&r.inner())) {
      s_.http.push_back(*http);
      L4Fields f(s_.fields.emplace_back());
      r.visit(conn, f);
    } else {
      s_.conns.push_back(conn);
    }
  }

 private:
  Seen& s_;
};

// Client 10.0.0.1:40000, server 10.0.0.2:8080. Each side's bytes are laid out
// in its stream first (at()), then sent as segments in any order.
class Wire {
 public:
  struct Span {
    bool client;
    uint32_t offset;  // in the side's stream, from the first byte after the SYN
    std::string bytes;
  };
  Wire() {
    syn(true);
    syn(false);
  }
  Span client(const std::string& s) { return take(true, s); }
  Span server(const std::string& s) { return take(false, s); }
  void send(const Span& sp, uint16_t window = 1000) {
    push(sp.client, kIsn + 1 + sp.offset, sp.bytes, L7TAP_TCP_ACK, window);
  }
  /// A pure ACK of everything the other side laid out so far.
  void ack(bool from_client, uint16_t window = 1000) {
    push(from_client, kIsn + 1 + next_[from_client ? 0 : 1], "", L7TAP_TCP_ACK, window);
  }

  Seen run() {
    Seen seen;
    Sink sink(seen);
    SessionFactory sessions(sink, standardProtocols());
    FlowTable table(sessions);
    for (size_t i = 0; i < segs_.size(); ++i) {
      segs_[i].payload = {reinterpret_cast<const uint8_t*>(data_[i].data()), data_[i].size()};
      table.onSegment(segs_[i]);
    }
    table.closeAll(CloseReason::kEndOfInput);
    return seen;
  }

 private:
  static constexpr uint32_t kIsn = 1000;
  Span take(bool from_client, const std::string& s) {
    uint32_t& next = next_[from_client ? 0 : 1];
    Span sp{from_client, next, s};
    next += static_cast<uint32_t>(s.size());
    return sp;
  }
  void syn(bool from_client) {
    push(from_client, kIsn, "", from_client ? L7TAP_TCP_SYN : L7TAP_TCP_SYN | L7TAP_TCP_ACK, 1000);
  }
  void push(bool from_client, uint32_t seq, const std::string& data, uint8_t flags,
            uint16_t window) {
    SegmentEvent e;
    e.ts_ns = ts_ += 1000;
    e.key.family = 4;
    uint8_t c[4] = {10, 0, 0, 1}, s[4] = {10, 0, 0, 2};
    setIpv4(e.key.saddr, from_client ? c : s);
    setIpv4(e.key.daddr, from_client ? s : c);
    e.key.sport = from_client ? 40000 : 8080;
    e.key.dport = from_client ? 8080 : 40000;
    e.seq = seq;
    // Acknowledges only what the other side sent up to the SYN: holes stay
    // open until their bytes arrive.
    e.ack = kIsn + 1;
    e.tcp_flags = flags;
    e.tcp_window = window;
    e.payload_len = static_cast<uint32_t>(data.size());
    segs_.push_back(e);
    data_.push_back(data);
  }

  std::vector<SegmentEvent> segs_;
  std::deque<std::string> data_;  // stable addresses for the payload spans
  uint32_t next_[2]{};
  uint64_t ts_ = 0;
};

const std::string kGet1 = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
const std::string kGet2 = "GET /two HTTP/1.1\r\nHost: a\r\n\r\n";
const std::string kGet3 = "GET /three HTTP/1.1\r\nHost: a\r\n\r\n";
const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const std::string kHead2 = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";

TEST(SessionExchangeL4, OnlyTheExchangeInFlightCarriesItsSegmentsEvents) {
  Wire w;
  const auto q1 = w.client(kGet1);
  const auto r1 = w.server(kOk);
  const auto q2 = w.client(kGet2);
  const auto r2a = w.server(kHead2);
  const auto r2b = w.server("body");
  const auto q3 = w.client(kGet3);
  const auto r3 = w.server(kOk);

  w.send(q1);
  w.send(r1);
  w.send(q2);
  w.send(q2);      // the request again: a client retransmission
  w.ack(true, 0);  // the client's window closes...
  w.ack(true);     // ...and opens
  w.send(r2b);     // the body before the headers: out of order
  w.send(r2a);     // fills the hole: /two is complete
  w.send(r2b);     // after /two was written: no exchange in flight
  w.send(q3);
  w.send(r3);
  const Seen seen = w.run();

  ASSERT_EQ(seen.http.size(), 3u);
  EXPECT_EQ(seen.http[1].path, "/two");
  EXPECT_TRUE(seen.fields[0].empty());
  EXPECT_EQ(seen.fields[1],
            (std::vector<std::string>{
                "l7tap.exchange.client.retransmitted_segments=1",
                "l7tap.exchange.client.retransmitted_bytes=" + std::to_string(kGet2.size()),
                "l7tap.exchange.client.zero_window_events=1",
                "l7tap.exchange.server.out_of_order_segments=1",
            }));
  EXPECT_TRUE(seen.fields[2].empty());
  // The connection counts the late retransmission too.
  ASSERT_EQ(seen.conns.size(), 1u);
  const DirectionAnomalies& server = seen.conns[0].stats[index(Side::kResp)].anomalies();
  EXPECT_EQ(server.retransmitted_segments, 1u);
  EXPECT_EQ(server.retransmitted_bytes, 4u);
  EXPECT_EQ(server.out_of_order_segments, 1u);
}

TEST(SessionExchangeL4, EventsOfTheSegmentThatStartsAnExchangeAreNotItsOwn) {
  // The segment carrying /two's first byte also repeats /one's last bytes
  // and advertises a zero window: both are counted before its bytes are
  // delivered, so before /two starts (and after /one ended).
  Wire w;
  const auto q1 = w.client(kGet1);
  const auto r1 = w.server(kOk);
  const auto q2 = w.client(kGet2);
  const auto r2 = w.server(kOk);
  w.send(q1);
  w.send(r1);
  Wire::Span overlap = q1;
  overlap.offset = static_cast<uint32_t>(kGet1.size() - 4);
  overlap.bytes = kGet1.substr(kGet1.size() - 4) + kGet2;
  w.send(overlap, 0);
  w.send(r2);
  const Seen seen = w.run();

  ASSERT_EQ(seen.http.size(), 2u);
  EXPECT_TRUE(seen.fields[0].empty());
  EXPECT_TRUE(seen.fields[1].empty());
  ASSERT_EQ(seen.conns.size(), 1u);
  EXPECT_EQ(seen.conns[0].stats[index(Side::kOrig)].anomalies().retransmitted_segments, 1u);
  EXPECT_EQ(seen.conns[0].stats[index(Side::kOrig)].anomalies().zero_window_events, 1u);
}

TEST(SessionExchangeL4, EventsOfTheSegmentThatEndsAnExchangeAreItsOwn) {
  // The response's last segment repeats bytes already seen and carries the
  // rest: its retransmission is counted before the exchange completes.
  Wire w;
  const auto q1 = w.client(kGet1);
  const auto r1 = w.server(kOk);
  w.send(q1);
  Wire::Span head = r1;
  head.bytes = kOk.substr(0, 10);
  w.send(head);
  w.send(r1);
  const Seen seen = w.run();

  ASSERT_EQ(seen.http.size(), 1u);
  EXPECT_EQ(seen.http[0].exchange_l4[kExchangeServer].retransmitted_segments, 1u);
  EXPECT_EQ(seen.http[0].exchange_l4[kExchangeServer].retransmitted_bytes, 10u);
}

}  // namespace
}  // namespace l7tap
