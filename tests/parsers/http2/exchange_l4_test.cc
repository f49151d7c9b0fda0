// Which HTTP/2 streams an L4 event belongs to: every stream in flight when
// it was counted. The connection's counters are bumped by hand between the
// parser's calls, as the flow table bumps them before delivering bytes.
#include <gtest/gtest.h>

#include "parsers/http2/http2_parser.h"
#include "tests/parsers/http2/h2_test_util.h"

namespace l7tap::h2test {
namespace {

constexpr Role C = Role::kClient;
constexpr Role S = Role::kServer;

TEST(Http2ExchangeL4, OverlappingStreamsEachCarryTheEventsOfTheirOverlap) {
  ConnectionInfo conn;
  conn.client_side = Side::kOrig;
  DirectionStats& client = conn.stats[index(Side::kOrig)];
  DirectionStats& server = conn.stats[index(Side::kResp)];
  RecordingSink sink;
  Http2Parser parser(sink, {}, nullptr, &conn);
  Deflater enc_c, enc_s;
  auto get = [&](uint32_t sid, const char* path) {
    return headers(
        sid,
        enc_c.encode(
            {{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", path}}),
        kEndHeaders | kEndStream);
  };
  auto ok = [&](uint32_t sid) {
    return headers(sid, enc_s.encode({{":status", "200"}}), kEndHeaders);
  };
  uint64_t ts = 0;
  auto send = [&](Role role, const Bytes& b) { parser.onData(role, b, ts += 1000); };

  send(C, cat({preface(), settings({})}));
  send(S, settings({}));
  send(C, get(1, "/one"));
  server.countAnomaly().zero_window_events++;  // stream 1 alone
  send(C, get(3, "/three"));
  client.countAnomaly().retransmitted_segments++;  // streams 1 and 3
  client.countAnomaly().retransmitted_bytes += 50;
  send(S, cat({ok(1), data(1, 10, kEndStream)}));  // stream 1 ends
  server.countAnomaly().out_of_order_segments++;   // stream 3 alone
  send(S, ok(3));
  server.countAnomaly().retransmitted_segments++;  // stream 3 alone, still in flight
  server.countAnomaly().retransmitted_bytes += 7;
  send(S, data(3, 10, kEndStream));
  server.countAnomaly().retransmitted_segments++;  // after both: neither
  send(C, get(5, "/five"));
  send(S, cat({ok(5), data(5, 1, kEndStream)}));
  parser.finish(ts + 1000);

  ASSERT_EQ(sink.records.size(), 3u);
  const HttpRecord& one = sink.records[0];
  const HttpRecord& three = sink.records[1];
  const HttpRecord& five = sink.records[2];
  ASSERT_EQ(one.stream_id, 1u);
  ASSERT_EQ(three.stream_id, 3u);
  ASSERT_EQ(five.stream_id, 5u);
  EXPECT_EQ(one.exchange_l4[kExchangeServer].zero_window_events, 1u);
  EXPECT_EQ(one.exchange_l4[kExchangeClient].retransmitted_segments, 1u);
  EXPECT_EQ(one.exchange_l4[kExchangeClient].retransmitted_bytes, 50u);
  EXPECT_EQ(one.exchange_l4[kExchangeServer].out_of_order_segments, 0u);
  EXPECT_EQ(one.exchange_l4[kExchangeServer].retransmitted_segments, 0u);

  EXPECT_EQ(three.exchange_l4[kExchangeServer].zero_window_events, 0u);
  EXPECT_EQ(three.exchange_l4[kExchangeClient].retransmitted_segments, 1u);
  EXPECT_EQ(three.exchange_l4[kExchangeClient].retransmitted_bytes, 50u);
  EXPECT_EQ(three.exchange_l4[kExchangeServer].out_of_order_segments, 1u);
  EXPECT_EQ(three.exchange_l4[kExchangeServer].retransmitted_segments, 1u);
  EXPECT_EQ(three.exchange_l4[kExchangeServer].retransmitted_bytes, 7u);

  EXPECT_FALSE(five.exchange_l4[kExchangeClient].any());
  EXPECT_FALSE(five.exchange_l4[kExchangeServer].any());
}

}  // namespace
}  // namespace l7tap::h2test
