// Http2Parser on whole conversations: every frame type, concurrency, trailers,
// gRPC, RST_STREAM, GOAWAY, h2c Upgrade, and byte-split invariance.
#include "parsers/http2/http2_parser.h"

#include <gtest/gtest.h>

#include "tests/parsers/http2/h2_test_util.h"

namespace l7tap::h2test {
namespace {

constexpr Role C = Role::kClient;
constexpr Role S = Role::kServer;

struct Conversation {
  Script script;
  // Wire bytes of header block payloads, per stream, for the checks.
  uint64_t rqh1 = 0, rqh3 = 0, rqh5 = 0, rsh1 = 0, rsh3 = 0, rsh5 = 0;
};

// A client and a server on one connection: five request streams, a push,
// interleaving, padding, priority, CONTINUATION, trailers and the dynamic
// table grown past its default size by SETTINGS_HEADER_TABLE_SIZE.
Conversation realisticConversation() {
  Conversation c;
  Script& s = c.script;
  Deflater client(65536), server(4096);

  s.send(C, 1000,
         cat({preface(), settings({{2, 0}, {3, 100}, {4, 65535}}), windowUpdate(0, 1 << 20)}));
  // The server lets the client's encoder use 8 KiB and raises its frame size.
  s.send(S, 2000, cat({settings({{1, 8192}, {5, 32768}}), settingsAck()}));
  client.changeTableSize(8192);

  Bytes b1 = client.encode({{":method", "GET"},
                            {":scheme", "http"},
                            {":authority", "example.com"},
                            {":path", "/index.html?x=1&y=2"},
                            {"user-agent", "curl/8.0"},
                            {"accept", "*/*"}});
  Bytes f1 = headers(1, b1, kEndHeaders | kEndStream, 7, true);
  c.rqh1 = f1.size() - 9;
  s.send(C, 3000, cat({settingsAck(), f1}));

  Bytes b3 = client.encode({{":method", "POST"},
                            {":scheme", "http"},
                            {":authority", "example.com"},
                            {":path", "/upload"},
                            {"user-agent", "curl/8.0"},
                            {"content-type", "application/json"},
                            {"x-big", std::string(5000, 'b')}});
  Bytes f3 = headers(3, b3, kEndHeaders);
  c.rqh3 = f3.size() - 9;
  Bytes b5 = client.encode({{":method", "POST"},
                            {":scheme", "http"},
                            {":authority", "grpc.local"},
                            {":path", "/helloworld.Greeter/SayHello"},
                            {"user-agent", "curl/8.0"},
                            {"content-type", "application/grpc+proto"},
                            {"te", "trailers"},
                            {"x-big", std::string(5000, 'b')}});
  // Split in three: HEADERS (padded) + CONTINUATION + empty CONTINUATION.
  Bytes p1(b5.begin(), b5.begin() + 10), p2(b5.begin() + 10, b5.end());
  Bytes f5 = cat({headers(5, p1, 0, 3), frame(kContinuation, 0, 5, p2),
                  frame(kContinuation, kEndHeaders, 5, {})});
  c.rqh5 = (1 + p1.size() + 3) + p2.size();
  s.send(C, 4000, cat({f3, data(3, 100), f5}));

  Bytes r1 = server.encode({{":status", "200"}, {"content-type", "text/html"}, {"server", "t"}});
  Bytes g1 = headers(1, r1, kEndHeaders);
  c.rsh1 = g1.size() - 9;
  Bytes push = server.encode({{":method", "GET"},
                              {":scheme", "http"},
                              {":authority", "example.com"},
                              {":path", "/style.css"},
                              {"x-push", "yes"}});
  Bytes r3a = server.encode({{":status", "100"}});
  Bytes g3a = headers(3, r3a, kEndHeaders);
  s.send(
      S, 5000,
      cat({g1, data(1, 50, 0, 10), frame(kPushPromise, kEndHeaders, 1, cat({u32(2), push})), g3a}));

  s.send(C, 6000,
         cat({data(3, 200, kEndStream), data(5, 20, kEndStream), ping(), priorityFrame(5)}));

  Bytes r2 = server.encode({{":status", "200"}, {"x-push", "yes"}, {"content-type", "text/css"}});
  Bytes r3 = server.encode({{":status", "201"}, {"server", "t"}, {"content-type", "text/html"}});
  Bytes g3 = headers(3, r3, kEndHeaders);
  c.rsh3 = g3a.size() - 9 + g3.size() - 9;
  s.send(S, 7000,
         cat({data(1, 30, kEndStream), headers(2, r2, kEndHeaders), g3, data(2, 40, kEndStream),
              ping(true), frame(0xfa, 0x3, 0, Bytes(5, 1)), windowUpdate(3, 100),
              data(3, 0, kEndStream)}));

  Bytes r5 = server.encode({{":status", "200"}, {"content-type", "application/grpc"}});
  Bytes t5 = server.encode({{"grpc-status", "0"}, {"grpc-message", "ok"}});
  Bytes g5 = headers(5, r5, kEndHeaders), h5 = headers(5, t5, kEndHeaders | kEndStream, 4);
  c.rsh5 = g5.size() - 9 + h5.size() - 9;
  s.send(S, 8000, cat({g5, data(5, 10), data(5, 5, 0, 2), h5}));

  Bytes b7 = client.encode({{":method", "GET"},
                            {":scheme", "http"},
                            {":authority", "example.com"},
                            {":path", "/slow"},
                            {"user-agent", "curl/8.0"}});
  Bytes b9 = client.encode({{":method", "GET"},
                            {":scheme", "http"},
                            {":authority", "example.com"},
                            {":path", "/never"},
                            {"user-agent", "curl/8.0"}});
  s.send(C, 9000,
         cat({headers(7, b7, kEndHeaders | kEndStream), headers(9, b9, kEndHeaders | kEndStream)}));
  s.send(C, 10000, rst(7, 8));
  s.send(S, 11000, goaway(7));
  s.finish_ts = 12000;
  return c;
}

TEST(Http2Parser, RealisticConversation) {
  Conversation c = realisticConversation();
  std::vector<HttpRecord> rs = play(c.script);
  ASSERT_EQ(rs.size(), 5u);

  const HttpRecord& r1 = rs[0];
  EXPECT_EQ(r1.stream_id, 1u);
  EXPECT_STREQ(r1.version, "2");
  EXPECT_EQ(r1.method, "GET");
  EXPECT_EQ(r1.path, "/index.html");
  EXPECT_EQ(r1.query, "x=REDACTED&y=REDACTED");  // by default (redaction/)
  EXPECT_EQ(r1.host, "example.com");
  EXPECT_EQ(r1.user_agent, "curl/8.0");
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(r1.request_header_bytes, c.rqh1);
  EXPECT_EQ(r1.request_body_bytes, 0u);
  EXPECT_EQ(r1.response_header_bytes, c.rsh1);
  EXPECT_EQ(r1.response_body_bytes, 80u);
  EXPECT_EQ(r1.request_start_ns, 3000u);
  EXPECT_EQ(r1.request_end_ns, 3000u);
  EXPECT_EQ(r1.response_start_ns, 5000u);
  EXPECT_EQ(r1.response_end_ns, 7000u);
  EXPECT_EQ(r1.grpc_status, -1);
  EXPECT_EQ(r1.flags, kFlagRedacted);

  const HttpRecord& r3 = rs[1];
  EXPECT_EQ(r3.stream_id, 3u);
  EXPECT_EQ(r3.method, "POST");
  EXPECT_EQ(r3.path, "/upload");
  EXPECT_EQ(r3.query, "");
  EXPECT_EQ(r3.content_type, "application/json");
  EXPECT_EQ(r3.interim_status, 100);
  EXPECT_EQ(r3.status, 201);
  EXPECT_EQ(r3.request_header_bytes, c.rqh3);
  EXPECT_EQ(r3.request_body_bytes, 300u);
  EXPECT_EQ(r3.response_header_bytes, c.rsh3);
  EXPECT_EQ(r3.response_body_bytes, 0u);
  EXPECT_EQ(r3.request_start_ns, 4000u);
  EXPECT_EQ(r3.request_end_ns, 6000u);
  EXPECT_EQ(r3.response_start_ns, 5000u);
  EXPECT_EQ(r3.response_end_ns, 7000u);
  EXPECT_EQ(r3.flags, 0u);

  const HttpRecord& r5 = rs[2];
  EXPECT_EQ(r5.stream_id, 5u);
  EXPECT_EQ(r5.host, "grpc.local");
  EXPECT_EQ(r5.path, "/helloworld.Greeter/SayHello");
  EXPECT_EQ(r5.rpc_service, "helloworld.Greeter");
  EXPECT_EQ(r5.rpc_method, "SayHello");
  EXPECT_EQ(r5.grpc_status, 0);
  EXPECT_EQ(r5.status, 200);
  EXPECT_EQ(r5.request_header_bytes, c.rqh5);
  EXPECT_EQ(r5.request_body_bytes, 20u);
  EXPECT_EQ(r5.response_header_bytes, c.rsh5);
  EXPECT_EQ(r5.response_body_bytes, 15u);
  EXPECT_EQ(r5.response_end_ns, 8000u);
  EXPECT_EQ(r5.flags, 0u);

  const HttpRecord& r7 = rs[3];
  EXPECT_EQ(r7.stream_id, 7u);
  EXPECT_EQ(r7.path, "/slow");
  EXPECT_EQ(r7.user_agent, "curl/8.0");
  EXPECT_EQ(r7.flags, kFlagReset | kFlagNoResponse);

  const HttpRecord& r9 = rs[4];
  EXPECT_EQ(r9.stream_id, 9u);
  EXPECT_EQ(r9.path, "/never");
  EXPECT_EQ(r9.flags, kFlagNoResponse);
}

TEST(Http2Parser, EverySplitPointGivesTheSameRecords) {
  Conversation c = realisticConversation();
  const std::vector<std::string> whole = describeAll(play(c.script));
  ASSERT_EQ(whole.size(), 5u);
  for (size_t e = 0; e < c.script.events.size(); ++e) {
    const size_t n = c.script.events[e].bytes.size();
    for (size_t k = 0; k <= n; ++k) {
      ASSERT_EQ(describeAll(play(c.script, e, k)), whole) << "event " << e << " split at " << k;
    }
    ASSERT_EQ(describeAll(play(c.script, e, SIZE_MAX)), whole) << "event " << e << " bytewise";
  }
}

TEST(Http2Parser, NoStatsSurprisesOnCleanConversation) {
  Conversation c = realisticConversation();
  Http2Stats st;
  play(c.script, SIZE_MAX, 0, false, {}, &st);
  EXPECT_EQ(st.hpack_errors, 0u);
  EXPECT_EQ(st.desyncs, 0u);
  EXPECT_EQ(st.preface_mismatches, 0u);
  EXPECT_GT(st.frames, 30u);
}

TEST(Http2Parser, HostHeaderWhenNoAuthority) {
  Deflater cd, sd;
  Script s;
  s.send(C, 1,
         cat({preface(), settings({}),
              headers(1,
                      cd.encode({{":method", "GET"},
                                 {":scheme", "http"},
                                 {":path", "/a"},
                                 {"host", "h.example"}}),
                      kEndHeaders | kEndStream)}));
  s.send(
      S, 2,
      cat({settings({}), headers(1, sd.encode({{":status", "404"}}), kEndHeaders | kEndStream)}));
  auto rs = play(s);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].host, "h.example");
  EXPECT_EQ(rs[0].status, 404);
  EXPECT_EQ(rs[0].response_end_ns, 2u);
  EXPECT_EQ(rs[0].flags, 0u);
}

TEST(Http2Parser, RestOfADataFrameIsSkippableAndAGapThereKeepsFraming) {
  Deflater cd, sd;
  RecordingSink sink;
  Http2Parser parser(sink);
  const Bytes req =
      cat({preface(), settings({}),
           headers(1, cd.encode({{":method", "GET"}, {":scheme", "http"}, {":path", "/big"}}),
                   kEndHeaders | kEndStream)});
  parser.onData(Role::kClient, req, 1);
  EXPECT_EQ(parser.skippableBytes(Role::kClient), 0u);
  // A 20000-byte DATA frame of which only the header and 100 bytes arrive.
  const Bytes resp = cat({settings({}), headers(1, sd.encode({{":status", "200"}}), kEndHeaders),
                          data(1, 20000, kEndStream)});
  const size_t cut = resp.size() - 20000 + 100;
  parser.onData(Role::kServer, std::span(resp).first(cut), 2);
  EXPECT_EQ(parser.skippableBytes(Role::kServer), 19900u);
  parser.onGap(Role::kServer, 19900, 3);  // what capture control skips
  EXPECT_EQ(parser.skippableBytes(Role::kServer), 0u);
  parser.finish(4);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].status, 200);
  EXPECT_EQ(sink.records[0].response_body_bytes, 20000u);
  EXPECT_EQ(sink.records[0].flags, kFlagGap);  // complete, with bytes not seen
}

TEST(Http2Parser, GrpcTrailersOnlyResponse) {
  Deflater cd, sd;
  Script s;
  s.send(C, 1,
         cat({preface(), settings({}),
              headers(1,
                      cd.encode({{":method", "POST"},
                                 {":scheme", "http"},
                                 {":path", "/pkg.Svc/Do"},
                                 {":authority", "x"},
                                 {"content-type", "application/grpc"}}),
                      kEndHeaders),
              data(1, 12, kEndStream)}));
  s.send(S, 2,
         headers(
             1,
             sd.encode(
                 {{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "12"}}),
             kEndHeaders | kEndStream));
  auto rs = play(s);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].rpc_service, "pkg.Svc");
  EXPECT_EQ(rs[0].rpc_method, "Do");
  EXPECT_EQ(rs[0].grpc_status, 12);
  EXPECT_EQ(rs[0].request_body_bytes, 12u);
}

TEST(Http2Parser, NonGrpcContentTypeHasNoRpcFields) {
  Deflater cd;
  Script s;
  s.send(C, 1,
         cat({preface(), headers(1,
                                 cd.encode({{":method", "POST"},
                                            {":path", "/pkg.Svc/Do"},
                                            {"content-type", "application/json"}}),
                                 kEndHeaders | kEndStream)}));
  auto rs = play(s);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].rpc_service, "");
  EXPECT_EQ(rs[0].flags, kFlagNoResponse);
}

TEST(Http2Parser, H2cUpgradeAdoptsStreamOne) {
  HttpRecord up;
  up.method = "GET";
  up.path = "/up";
  up.host = "u.example";
  up.user_agent = "ua";
  up.version = "1.1";
  up.status = 101;
  up.request_header_bytes = 120;
  up.request_start_ns = 10;
  up.request_end_ns = 11;
  up.response_start_ns = 20;

  Deflater sd, cd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.adoptUpgradedRequest(up);
  Bytes cl = cat({preface(), settings({}), settingsAck()});
  Bytes sv =
      cat({settings({}), settingsAck(), headers(1, sd.encode({{":status", "200"}}), kEndHeaders),
           data(1, 33, kEndStream)});
  p.onData(C, cl, 30);
  p.onData(S, sv, 40);
  ASSERT_EQ(sink.records.size(), 1u);
  const HttpRecord& r = sink.records[0];
  EXPECT_EQ(r.stream_id, 1u);
  EXPECT_STREQ(r.version, "2");
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/up");
  EXPECT_EQ(r.host, "u.example");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.interim_status, 101);
  EXPECT_EQ(r.request_header_bytes, 120u);
  EXPECT_EQ(r.request_start_ns, 10u);
  EXPECT_EQ(r.request_end_ns, 11u);
  EXPECT_EQ(r.response_start_ns, 20u);
  EXPECT_EQ(r.response_end_ns, 40u);
  EXPECT_EQ(r.response_body_bytes, 33u);
  EXPECT_EQ(r.flags, 0u);

  // The next client stream is 3 and works normally.
  p.onData(
      C, headers(3, cd.encode({{":method", "GET"}, {":path", "/next"}}), kEndHeaders | kEndStream),
      50);
  p.onData(S, headers(3, sd.encode({{":status", "204"}}), kEndHeaders | kEndStream), 60);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[1].path, "/next");
  EXPECT_EQ(sink.records[1].status, 204);
}

TEST(Http2Parser, RstStreamFromServerEndsStream) {
  Deflater cd;
  Script s;
  s.send(C, 1,
         cat({preface(), headers(1, cd.encode({{":method", "GET"}, {":path", "/r"}}),
                                 kEndHeaders | kEndStream)}));
  s.send(S, 2, rst(1, 7));
  s.send(S, 3, data(1, 10, kEndStream));  // in flight: must not open a new exchange
  auto rs = play(s);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].flags, kFlagReset | kFlagNoResponse);
}

// Frames that carry no header and no body byte (RST_STREAM, WINDOW_UPDATE,
// an empty DATA) on a stream never seen open nothing worth a record: after a
// resync onto a false frame boundary their stream id is misread bytes.
TEST(Http2Parser, StreamWithNothingButItsIdLeavesNoRecord) {
  Deflater cd;
  Script s;
  s.send(C, 1,
         cat({settings({}), rst(4153, 8), windowUpdate(77, 1000), data(99, 0, kEndStream),
              headers(101, cd.encode({{":method", "GET"}, {":path", "/a"}}),
                      kEndHeaders | kEndStream)}));
  s.send(S, 2, headers(101, Deflater().encode({{":status", "200"}}), kEndHeaders | kEndStream));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, /*midstream=*/true, {}, &st);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].stream_id, 101u);
  EXPECT_EQ(rs[0].path, "/a");
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_GE(st.empty_streams_dropped, 1u);
}

// A HEADERS frame whose block does not decode (as one read at a false
// boundary after a resync) does not close the stream ids below its own:
// the real requests that follow are still reported.
TEST(Http2Parser, UndecodableHeadersDoNotShutOutLowerStreams) {
  Deflater cd, sd;
  Script s;
  s.send(
      C, 1,
      cat({preface(), settings({}),
           headers(1, cd.encode({{":method", "GET"}, {":path", "/a"}}), kEndHeaders | kEndStream),
           headers(24641913, {0xff, 0xff, 0xff, 0xff, 0x0f}, kEndHeaders | kEndStream),
           headers(3, cd.encode({{":method", "GET"}, {":path", "/next"}}),
                   kEndHeaders | kEndStream)}));
  s.send(S, 2, headers(3, sd.encode({{":status", "200"}}), kEndHeaders | kEndStream));
  auto rs = play(s);
  bool next_found = false;
  for (const HttpRecord& r : rs) {
    if (r.stream_id != 3) continue;
    next_found = true;
    EXPECT_EQ(r.path, "/next");
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_TRUE(next_found);
}

TEST(Http2Parser, TcpResetFlagsOpenStreams) {
  Deflater cd, sd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(
      C,
      cat({preface(),
           headers(1, cd.encode({{":method", "GET"}, {":path", "/1"}}), kEndHeaders | kEndStream),
           headers(3, cd.encode({{":method", "GET"}, {":path", "/3"}}), kEndHeaders | kEndStream)}),
      1);
  p.onData(S, headers(3, sd.encode({{":status", "200"}}), kEndHeaders), 2);
  p.onEnd(S, true, 3);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].stream_id, 1u);
  EXPECT_EQ(sink.records[0].flags, kFlagReset | kFlagNoResponse);
  EXPECT_EQ(sink.records[1].stream_id, 3u);
  EXPECT_EQ(sink.records[1].status, 200);
  EXPECT_EQ(sink.records[1].flags, kFlagReset | kFlagNoResponse);
  p.finish(4);
  EXPECT_EQ(sink.records.size(), 2u);
}

TEST(Http2Parser, FinishEmitsOpenStreams) {
  Deflater cd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(
      C,
      cat({preface(), headers(5, cd.encode({{":method", "GET"}, {":path", "/5"}}), kEndHeaders)}),
      1);
  p.onEnd(C, false, 2);
  EXPECT_TRUE(sink.records.empty());
  p.finish(3);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].stream_id, 5u);
  EXPECT_EQ(sink.records[0].flags, kFlagNoResponse);
}

TEST(Http2Parser, OverflowDropsOldestStream) {
  Http2Limits lim;
  lim.max_open_streams = 2;
  Deflater cd;
  Script s;
  Bytes b = preface();
  for (uint32_t sid : {1u, 3u, 5u}) {
    append(b, headers(sid, cd.encode({{":method", "GET"}, {":path", "/" + std::to_string(sid)}}),
                      kEndHeaders | kEndStream));
  }
  s.send(C, 1, b);
  s.send(S, 2, data(1, 5, kEndStream));  // stream 1 is gone: no new exchange
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, lim, &st);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].stream_id, 1u);
  EXPECT_EQ(rs[0].flags, kFlagOverflow | kFlagNoResponse);
  EXPECT_EQ(rs[1].stream_id, 3u);
  EXPECT_EQ(rs[1].flags, kFlagNoResponse);
  EXPECT_EQ(rs[2].stream_id, 5u);
  EXPECT_EQ(st.streams_evicted, 1u);
}

TEST(Http2Parser, LongFieldsAreBoundedAndFlagged) {
  Http2Limits lim;
  lim.max_url_bytes = 8;
  lim.max_header_value_bytes = 4;
  Deflater cd;
  Script s;
  s.send(C, 1,
         cat({preface(), headers(1,
                                 cd.encode({{":method", "GET"},
                                            {":path", "/0123456789?abcdefghij"},
                                            {"user-agent", "agent-long"}}),
                                 kEndHeaders | kEndStream)}));
  auto rs = play(s, SIZE_MAX, 0, false, lim);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].path, "/0123456");
  EXPECT_EQ(rs[0].query, "abcdefgh");
  EXPECT_EQ(rs[0].user_agent, "agen");
  EXPECT_EQ(rs[0].flags & kFlagTruncated, kFlagTruncated);
}

TEST(Http2Parser, HeaderTableSizeDecreaseAppliedAtAck) {
  // The client announces a 0-byte table; the server sends one block with its
  // old table before acknowledging, then shrinks (size update 0).
  Deflater cd, sd;
  Script s;
  s.send(
      C, 1,
      cat({preface(), settings({{1, 0}}),
           headers(1, cd.encode({{":method", "GET"}, {":path", "/a"}}), kEndHeaders | kEndStream),
           headers(3, cd.encode({{":method", "GET"}, {":path", "/b"}}),
                   kEndHeaders | kEndStream)}));
  Bytes early = sd.encode({{":status", "200"}, {"x-one", "1"}});
  sd.changeTableSize(0);
  Bytes late = sd.encode({{":status", "200"}, {"x-one", "1"}});
  s.send(S, 2,
         cat({settings({}), headers(1, early, kEndHeaders | kEndStream), settingsAck(),
              headers(3, late, kEndHeaders | kEndStream)}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].flags, 0u);
  EXPECT_EQ(rs[1].flags, 0u);
  EXPECT_EQ(rs[1].status, 200);
  EXPECT_EQ(st.hpack_errors, 0u);
}

TEST(Http2Parser, HeaderTableSizeIncreaseLetsLargeTablesDecode) {
  // The server allows a 64 KiB table for the client's encoder; the client's
  // blocks then reference entries a 4 KiB table could not hold. The client
  // uses the larger table before its ACK (allowed: raising needs no ACK).
  Deflater cd(65536), sd;
  Script s;
  s.send(S, 1, settings({{1, 65536}}));
  cd.changeTableSize(65536);
  Bytes b = cat({preface(), settings({})});
  for (uint32_t sid = 1; sid <= 9; sid += 2) {
    append(b, headers(sid,
                      cd.encode({{":method", "GET"},
                                 {":path", "/p"},
                                 {"x-a", std::string(3000, 'a')},
                                 {"x-b", std::string(3000, 'b')},
                                 {"x-c", std::string(3000, 'c')}}),
                      kEndHeaders | kEndStream));
  }
  append(b, settingsAck());
  s.send(C, 2, b);
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  ASSERT_EQ(rs.size(), 5u);
  for (const HttpRecord& r : rs) {
    EXPECT_EQ(r.path, "/p");
    EXPECT_EQ(r.flags, kFlagNoResponse);
  }
  EXPECT_EQ(st.hpack_errors, 0u);
}

// SETTINGS_HEADER_TABLE_SIZE up to 2^32-1 would let an encoder make the
// decoder keep ~160 bytes of heap per 3 bytes it sends: the table is kept at
// Http2Limits::max_hpack_table_bytes, and an encoder using more gets decode
// errors, never wrong fields.
TEST(Http2Parser, HeaderTableSizeAboveTheBoundIsCutAndCounted) {
  constexpr uint32_t kHuge = 1u << 20;
  Deflater cd(kHuge);
  Script s;
  s.send(S, 1, settings({{1, 0xffffffffu}}));
  cd.changeTableSize(kHuge);
  Bytes b = cat({preface(), settings({})});
  for (uint32_t sid = 1; sid <= 5; sid += 2) {
    append(b, headers(sid,
                      cd.encode({{":method", "GET"},
                                 {":path", "/p"},
                                 {"x-a", std::string(40000, 'a')},
                                 {"x-b", std::string(40000, 'b')}}),
                      kEndHeaders | kEndStream));
  }
  append(b, settingsAck());
  s.send(C, 2, b);
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(st.hpack_table_size_cut, 1u);
  EXPECT_GE(st.hpack_errors, 1u);
  EXPECT_NE(rs[0].flags & kFlagHpackError, 0u);
  for (const HttpRecord& r : rs) EXPECT_TRUE(r.path.empty() || r.path == "/p") << r.path;
}

TEST(Http2Parser, LargeDataFrameStreamsInSmallPieces) {
  Deflater cd, sd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(C,
           cat({preface(), settings({{5, 1 << 20}}),
                headers(1, cd.encode({{":method", "GET"}, {":path", "/big"}}),
                        kEndHeaders | kEndStream)}),
           1);
  Bytes resp = cat({settings({}), headers(1, sd.encode({{":status", "200"}}), kEndHeaders),
                    data(1, 1 << 20, kEndStream, 255)});
  for (size_t off = 0; off < resp.size(); off += 1000) {
    p.onData(S,
             std::span<const uint8_t>(resp).subspan(off, std::min<size_t>(1000, resp.size() - off)),
             2);
  }
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].response_body_bytes, 1u << 20);
  EXPECT_EQ(sink.records[0].flags, 0u);
}

TEST(Http2Parser, HeadersInterruptedByOtherFrameIsHpackError) {
  Deflater cd;
  Script s;
  Bytes b = cd.encode({{":method", "GET"}, {":path", "/x"}, {"user-agent", "z"}});
  s.send(C, 1,
         cat({preface(), headers(1, Bytes(b.begin(), b.begin() + 2), kEndStream), ping(),
              headers(3, cd.encode({{":method", "GET"}, {":path", "/y"}}),
                      kEndHeaders | kEndStream)}));
  auto rs = play(s);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].stream_id, 1u);
  EXPECT_TRUE(rs[0].flags & kFlagHpackError);
  EXPECT_EQ(rs[1].stream_id, 3u);
  // Stream 3's block referenced nothing from stream 1's lost block.
  EXPECT_EQ(rs[1].path, "/y");
}

TEST(Http2Parser, PrefaceMismatchResyncsOnFrames) {
  Deflater cd;
  Script s;
  s.send(
      C, 1,
      cat({Bytes{'P', 'R', 'X'}, settings({}),
           headers(1, cd.encode({{":method", "GET"}, {":path", "/m"}}), kEndHeaders | kEndStream),
           ping()}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  EXPECT_EQ(st.preface_mismatches, 1u);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].path, "/m");
}

}  // namespace
}  // namespace l7tap::h2test
