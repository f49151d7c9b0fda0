// Which HTTP/1 exchange an L4 event belongs to: the counters of the
// connection are bumped by hand between the parser's calls, as the flow
// table bumps them before it delivers a segment's bytes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parsers/http1/http1_parser.h"

namespace l7tap {
namespace {

class Records final : public ExchangeSink {
 public:
  void onExchange(const Record& record) override {
    records.push_back(static_cast<const HttpRecord&>(record));
  }
  std::vector<HttpRecord> records;
};

class Http1ExchangeL4 : public ::testing::Test {
 protected:
  Http1ExchangeL4() {
    // The server sent the SYN+ACK; the client is kOrig.
    conn_.client_side = Side::kOrig;
  }
  DirectionStats& client() { return conn_.stats[index(Side::kOrig)]; }
  DirectionStats& server() { return conn_.stats[index(Side::kResp)]; }
  void send(Role role, const std::string& s) {
    ts_ += 1000;
    parser_.onData(role, {reinterpret_cast<const uint8_t*>(s.data()), s.size()}, ts_);
  }

  static constexpr const char* kGet1 = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
  static constexpr const char* kGet2 = "GET /two HTTP/1.1\r\nHost: a\r\n\r\n";
  static constexpr const char* kGet3 = "GET /three HTTP/1.1\r\nHost: a\r\n\r\n";
  static constexpr const char* kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

  ConnectionInfo conn_;
  Records sink_;
  Http1Parser parser_{sink_, {}, nullptr, &conn_};
  uint64_t ts_ = 0;
};

TEST_F(Http1ExchangeL4, KeepAliveEventsGoToTheExchangeInFlight) {
  send(Role::kClient, kGet1);
  send(Role::kServer, kOk);
  // Between exchanges: no exchange is in flight, only the connection counts it.
  server().countAnomaly().retransmitted_segments++;
  server().countAnomaly().retransmitted_bytes += 40;
  send(Role::kClient, kGet2);
  client().countAnomaly().retransmitted_segments++;  // the request again
  client().countAnomaly().retransmitted_bytes += 30;
  client().countAnomaly().zero_window_events++;
  server().countAnomaly().out_of_order_segments++;
  send(Role::kServer, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  server().countAnomaly().retransmitted_segments++;
  server().countAnomaly().retransmitted_bytes += 38;
  send(Role::kServer, "ok");
  send(Role::kClient, kGet3);
  send(Role::kServer, kOk);

  ASSERT_EQ(sink_.records.size(), 3u);
  const HttpRecord& one = sink_.records[0];
  const HttpRecord& two = sink_.records[1];
  const HttpRecord& three = sink_.records[2];
  for (const HttpRecord* r : {&one, &three}) {
    EXPECT_FALSE(r->exchange_l4[kExchangeClient].any()) << r->path;
    EXPECT_FALSE(r->exchange_l4[kExchangeServer].any()) << r->path;
    EXPECT_FALSE(r->sawRetransmission()) << r->path;
  }
  EXPECT_TRUE(two.sawRetransmission());
  const ExchangeL4& c = two.exchange_l4[kExchangeClient];
  const ExchangeL4& s = two.exchange_l4[kExchangeServer];
  EXPECT_EQ(c.retransmitted_segments, 1u);
  EXPECT_EQ(c.retransmitted_bytes, 30u);
  EXPECT_EQ(c.zero_window_events, 1u);
  EXPECT_EQ(c.out_of_order_segments, 0u);
  EXPECT_EQ(s.retransmitted_segments, 1u);
  EXPECT_EQ(s.retransmitted_bytes, 38u);
  EXPECT_EQ(s.zero_window_events, 0u);
  EXPECT_EQ(s.out_of_order_segments, 1u);
}

TEST_F(Http1ExchangeL4, PipelinedExchangesEachCarryTheirOverlap) {
  send(Role::kClient, kGet1);
  server().countAnomaly().zero_window_events++;  // only /one is in flight
  send(Role::kClient, kGet2);
  client().countAnomaly().retransmitted_segments++;  // /one and /two are in flight
  client().countAnomaly().retransmitted_bytes += 10;
  send(Role::kServer, kOk);                         // /one ends
  server().countAnomaly().out_of_order_segments++;  // only /two
  send(Role::kServer, kOk);

  ASSERT_EQ(sink_.records.size(), 2u);
  const HttpRecord& one = sink_.records[0];
  const HttpRecord& two = sink_.records[1];
  EXPECT_EQ(one.exchange_l4[kExchangeServer].zero_window_events, 1u);
  EXPECT_EQ(one.exchange_l4[kExchangeClient].retransmitted_segments, 1u);
  EXPECT_EQ(one.exchange_l4[kExchangeServer].out_of_order_segments, 0u);
  EXPECT_EQ(two.exchange_l4[kExchangeServer].zero_window_events, 0u);
  EXPECT_EQ(two.exchange_l4[kExchangeClient].retransmitted_segments, 1u);
  EXPECT_EQ(two.exchange_l4[kExchangeClient].retransmitted_bytes, 10u);
  EXPECT_EQ(two.exchange_l4[kExchangeServer].out_of_order_segments, 1u);
}

TEST_F(Http1ExchangeL4, RolesFollowTheClientNotThePacketDirection) {
  // The responder's side is the client here (roles from the protocol).
  conn_.client_side = Side::kResp;
  send(Role::kClient, kGet1);
  conn_.stats[index(Side::kResp)].countAnomaly().retransmitted_segments++;
  send(Role::kServer, kOk);
  ASSERT_EQ(sink_.records.size(), 1u);
  EXPECT_EQ(sink_.records[0].exchange_l4[kExchangeClient].retransmitted_segments, 1u);
  EXPECT_EQ(sink_.records[0].exchange_l4[kExchangeServer].retransmitted_segments, 0u);
}

TEST_F(Http1ExchangeL4, ResponseWithoutRequestCountsFromItsFirstByte) {
  // Joined mid-way: the server's answer comes first.
  send(Role::kServer, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
  server().countAnomaly().retransmitted_segments++;
  send(Role::kServer, "ok");
  ASSERT_EQ(sink_.records.size(), 1u);
  EXPECT_TRUE(sink_.records[0].flags & kFlagNoRequest);
  EXPECT_EQ(sink_.records[0].exchange_l4[kExchangeServer].retransmitted_segments, 1u);
}

TEST_F(Http1ExchangeL4, RequestWithoutResponseCountsUntilItIsWritten) {
  send(Role::kClient, kGet1);
  client().countAnomaly().zero_window_events++;
  parser_.finish(ts_ + 1000);
  ASSERT_EQ(sink_.records.size(), 1u);
  EXPECT_TRUE(sink_.records[0].flags & kFlagNoResponse);
  EXPECT_EQ(sink_.records[0].exchange_l4[kExchangeClient].zero_window_events, 1u);
}

TEST(Http1ExchangeL4WithoutConnection, RecordsCarryNoEvents) {
  Records sink;
  Http1Parser parser(sink);
  const std::string get = "GET / HTTP/1.1\r\n\r\n";
  const std::string ok = "HTTP/1.1 204 No Content\r\n\r\n";
  parser.onData(Role::kClient, {reinterpret_cast<const uint8_t*>(get.data()), get.size()}, 1);
  parser.onData(Role::kServer, {reinterpret_cast<const uint8_t*>(ok.data()), ok.size()}, 2);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_FALSE(sink.records[0].exchange_l4[kExchangeClient].any());
  EXPECT_FALSE(sink.records[0].exchange_l4[kExchangeServer].any());
}

}  // namespace
}  // namespace l7tap
