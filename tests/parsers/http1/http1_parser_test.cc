// Http1Parser: pairing, record fields, bodies, upgrades, gaps and resync.
#include "parsers/http1/http1_parser.h"
#include "tests/parsers/http1/http1_test_util.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace l7tap {
namespace {

using testing_http1::bytesOf;
using testing_http1::RecordingSink;

class Http1ParserTest : public ::testing::Test {
 protected:
  ParseResult client(std::string_view s, uint64_t ts) {
    return parser_.onData(Role::kClient, bytesOf(s), ts);
  }
  ParseResult server(std::string_view s, uint64_t ts) {
    return parser_.onData(Role::kServer, bytesOf(s), ts);
  }
  const std::vector<HttpRecord>& records() const { return sink_.records; }

  RecordingSink sink_;
  Http1Limits limits_;
  // These tests are about parsing: targets as sent (redaction: below).
  RedactionPolicy keep_query_{.keep_query = true, .query_allow = {}};
  Http1Parser parser_{sink_, limits_, &keep_query_};
};

constexpr std::string_view kGet =
    "GET /api/user?id=10&x=y HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: curl/7.88\r\n"
    "Accept: */*\r\n"
    "\r\n";
constexpr std::string_view kOk =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 5\r\n"
    "\r\n"
    "hello";
constexpr size_t kOkHeaderBytes = kOk.size() - 5;

TEST_F(Http1ParserTest, SimpleExchangeFillsEveryField) {
  const std::string post =
      "POST /submit HTTP/1.1\r\nHost: h:8080\r\nContent-Type: application/json\r\n"
      "Content-Length: 7\r\n\r\n";
  EXPECT_EQ(client(post, 100).outcome, ParseOutcome::kContinue);
  EXPECT_EQ(client("{\"a\":1}", 110).consumed, 7u);
  EXPECT_TRUE(records().empty());
  server(kOk.substr(0, 10), 200);
  server(kOk.substr(10), 250);
  ASSERT_EQ(records().size(), 1u);
  const HttpRecord& r = records()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/submit");
  EXPECT_EQ(r.query, "");
  EXPECT_EQ(r.host, "h:8080");
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_STREQ(r.version, "1.1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.interim_status, 0);
  EXPECT_EQ(r.request_header_bytes, post.size());
  EXPECT_EQ(r.request_body_bytes, 7u);
  EXPECT_EQ(r.response_header_bytes, kOkHeaderBytes);
  EXPECT_EQ(r.response_body_bytes, 5u);
  EXPECT_EQ(r.request_start_ns, 100u);
  EXPECT_EQ(r.request_end_ns, 110u);
  EXPECT_EQ(r.response_start_ns, 200u);
  EXPECT_EQ(r.response_end_ns, 250u);
  EXPECT_EQ(r.flags, 0u);
}

TEST_F(Http1ParserTest, PathQueryHostAndUserAgent) {
  client(kGet, 1);
  server(kOk, 2);
  ASSERT_EQ(records().size(), 1u);
  const HttpRecord& r = records()[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/api/user");
  EXPECT_EQ(r.query, "id=10&x=y");
  EXPECT_EQ(r.host, "example.com");
  EXPECT_EQ(r.user_agent, "curl/7.88");
  EXPECT_EQ(r.content_type, "");
  EXPECT_EQ(r.request_header_bytes, kGet.size());
  EXPECT_EQ(r.request_body_bytes, 0u);
  EXPECT_EQ(r.request_end_ns, 1u);
}

// A parser given no policy redacts: query values, user info in Host and in
// an absolute-form target, and says so.
TEST(Http1ParserRedaction, ByDefault) {
  RecordingSink sink;
  Http1Parser parser(sink);
  parser.onData(Role::kClient,
                bytesOf("GET http://alice:pa55@h/p?token=s3cr3t&v HTTP/1.1\r\n"
                        "Host: alice:pa55@h\r\n\r\n"),
                1);
  parser.onData(Role::kServer, bytesOf("HTTP/1.1 204 No Content\r\n\r\n"), 2);
  ASSERT_EQ(sink.records.size(), 1u);
  const HttpRecord& r = sink.records[0];
  EXPECT_EQ(r.path, "http://h/p");
  EXPECT_EQ(r.query, "token=REDACTED&v");
  EXPECT_EQ(r.host, "h");
  EXPECT_EQ(r.flags, kFlagRedacted);
}

// Three pipelined requests on a keep-alive connection, then their answers.
std::string pipelinedClient() {
  return "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
         "POST /two HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         "3\r\nabc\r\n0\r\n\r\n"
         "HEAD /three HTTP/1.1\r\nHost: a\r\n\r\n"
         "GET /four HTTP/1.1\r\nHost: a\r\n\r\n";
}
std::string pipelinedServer() {
  return "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
         "HTTP/1.1 100 Continue\r\n\r\n"
         "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
         "4\r\ntwo!\r\n2;ext=1\r\n!!\r\n0\r\nTrailer: x\r\n\r\n"
         "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
         "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n";
}

void expectPipelined(const std::vector<HttpRecord>& recs) {
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0].path, "/one");
  EXPECT_EQ(recs[0].status, 200);
  EXPECT_EQ(recs[0].response_body_bytes, 3u);
  EXPECT_EQ(recs[1].path, "/two");
  EXPECT_EQ(recs[1].method, "POST");
  EXPECT_EQ(recs[1].request_body_bytes, 3u);
  EXPECT_EQ(recs[1].status, 201);
  EXPECT_EQ(recs[1].interim_status, 100);
  EXPECT_EQ(recs[1].response_body_bytes, 6u);
  EXPECT_EQ(recs[1].response_header_bytes,
            std::string("HTTP/1.1 100 Continue\r\n\r\n"
                        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
                .size());
  EXPECT_EQ(recs[2].path, "/three");
  EXPECT_EQ(recs[2].method, "HEAD");
  EXPECT_EQ(recs[2].status, 200);
  EXPECT_EQ(recs[2].response_body_bytes, 0u);
  EXPECT_EQ(recs[3].path, "/four");
  EXPECT_EQ(recs[3].status, 304);
  EXPECT_EQ(recs[3].response_body_bytes, 0u);
  for (const HttpRecord& r : recs) EXPECT_EQ(r.flags, 0u) << r.path;
}

TEST_F(Http1ParserTest, PipeliningPairsByOrder) {
  const std::string c = pipelinedClient();
  const std::string s = pipelinedServer();
  EXPECT_EQ(client(c, 10).consumed, c.size());
  EXPECT_EQ(server(s, 20).consumed, s.size());
  expectPipelined(records());
  parser_.finish(30);
  EXPECT_EQ(records().size(), 4u);
}

TEST(Http1ParserSplit, SameRecordsWhateverTheSplit) {
  const std::string c = pipelinedClient();
  const std::string s = pipelinedServer();
  const size_t longest = std::max(c.size(), s.size());
  for (size_t cut = 0; cut <= longest; ++cut) {
    RecordingSink sink;
    Http1Parser parser(sink);
    const size_t cc = std::min(cut, c.size());
    const size_t sc = std::min(cut, s.size());
    parser.onData(Role::kClient, bytesOf(std::string_view(c).substr(0, cc)), 1);
    parser.onData(Role::kClient, bytesOf(std::string_view(c).substr(cc)), 2);
    parser.onData(Role::kServer, bytesOf(std::string_view(s).substr(0, sc)), 3);
    parser.onData(Role::kServer, bytesOf(std::string_view(s).substr(sc)), 4);
    parser.finish(5);
    SCOPED_TRACE(cut);
    expectPipelined(sink.records);
  }
}

TEST(Http1ParserSplit, ByteByByte) {
  const std::string c = pipelinedClient();
  const std::string s = pipelinedServer();
  RecordingSink sink;
  Http1Parser parser(sink);
  for (size_t i = 0; i < c.size(); ++i) parser.onData(Role::kClient, bytesOf(c).subspan(i, 1), 1);
  for (size_t i = 0; i < s.size(); ++i) parser.onData(Role::kServer, bytesOf(s).subspan(i, 1), 2);
  expectPipelined(sink.records);
}

TEST_F(Http1ParserTest, KeepAliveTimestampsPerExchange) {
  client("GET /a HTTP/1.1\r\nHost: a\r\n\r\n", 10);
  server("HTTP/1.1 204 No Content\r\n\r\n", 20);
  client("GET /b HTTP/1.1\r\nHost: a\r\n\r\n", 30);
  server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].status, 204);
  EXPECT_EQ(records()[0].response_end_ns, 20u);
  EXPECT_EQ(records()[1].request_start_ns, 30u);
  EXPECT_EQ(records()[1].response_start_ns, 40u);
  EXPECT_EQ(records()[1].response_end_ns, 40u);
}

TEST_F(Http1ParserTest, HeadResponseHasNoBodyEvenWithContentLength) {
  client("HEAD /big HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n", 1);
  const std::string head_resp = "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n";
  server(head_resp, 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_header_bytes, head_resp.size());
  EXPECT_EQ(records()[0].response_body_bytes, 0u);
  EXPECT_EQ(records()[0].response_end_ns, 2u);
  server(kOk, 3);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].path, "/next");
  EXPECT_EQ(records()[1].response_body_bytes, 5u);
}

TEST_F(Http1ParserTest, ContinueIsInterimAndWaitsForTheFinalResponse) {
  client("PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", 1);
  server("HTTP/1.1 100 Continue\r\n\r\n", 2);
  EXPECT_TRUE(records().empty());
  client("data", 3);
  server("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 4);
  ASSERT_EQ(records().size(), 1u);
  const HttpRecord& r = records()[0];
  EXPECT_EQ(r.interim_status, 100);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.request_end_ns, 3u);
  EXPECT_EQ(r.response_start_ns, 2u);
  EXPECT_EQ(r.response_end_ns, 4u);
  EXPECT_EQ(r.request_body_bytes, 4u);
}

TEST_F(Http1ParserTest, EarlyHintsThenFinal) {
  client(kGet, 1);
  server(
      "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
      "0\r\n\r\n",
      2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].interim_status, 103);
  EXPECT_EQ(records()[0].status, 200);
}

TEST_F(Http1ParserTest, NoContentAndNotModifiedHaveNoBody) {
  client("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n", 1);
  server(
      "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
      2);
  ASSERT_EQ(records().size(), 3u);
  EXPECT_EQ(records()[0].status, 204);
  EXPECT_EQ(records()[1].status, 304);
  EXPECT_EQ(records()[1].response_body_bytes, 0u);
  EXPECT_EQ(records()[2].status, 200);
  EXPECT_EQ(records()[2].response_body_bytes, 1u);
}

TEST_F(Http1ParserTest, Http10CloseDelimitedBodyEndsAtServerFin) {
  client("GET /old HTTP/1.0\r\nHost: a\r\n\r\n", 1);
  server("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", 2);
  server("</html>", 3);
  EXPECT_TRUE(records().empty());
  parser_.onEnd(Role::kServer, false, 4);
  ASSERT_EQ(records().size(), 1u);
  const HttpRecord& r = records()[0];
  EXPECT_STREQ(r.version, "1.0");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.response_body_bytes, 13u);
  EXPECT_EQ(r.response_end_ns, 4u);
  EXPECT_EQ(r.flags, 0u);
  parser_.finish(5);
  EXPECT_EQ(records().size(), 1u);
}

TEST_F(Http1ParserTest, ResponseWithoutRequest) {
  server("HTTP/1.0 500 Oops\r\nContent-Length: 0\r\n\r\n", 7);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].flags, kFlagNoRequest);
  EXPECT_EQ(records()[0].status, 500);
  EXPECT_STREQ(records()[0].version, "1.0");
  EXPECT_EQ(records()[0].method, "");
}

TEST_F(Http1ParserTest, ResponseStartedBeforeTheRequestCannotAnswerIt) {
  server("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", 5);
  client(kGet, 6);
  server("cd", 7);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].flags, kFlagNoRequest);
  server(kOk, 8);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].path, "/api/user");
  EXPECT_EQ(records()[1].flags, 0u);
}

TEST_F(Http1ParserTest, FinishEmitsPendingAndPartialResponses) {
  client("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nHost: x", 1);
  server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", 2);
  parser_.finish(3);
  ASSERT_EQ(records().size(), 3u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].response_body_bytes, 5u);
  EXPECT_EQ(records()[0].response_start_ns, 2u);
  EXPECT_EQ(records()[0].response_end_ns, 0u);
  EXPECT_EQ(records()[0].flags, kFlagNoResponse);
  EXPECT_EQ(records()[1].path, "/b");
  EXPECT_EQ(records()[1].flags, kFlagNoResponse);
  EXPECT_EQ(records()[2].path, "/c");
  EXPECT_EQ(records()[2].request_end_ns, 0u);
  EXPECT_EQ(records()[2].flags, kFlagNoResponse);
  parser_.finish(4);
  EXPECT_EQ(records().size(), 3u);
}

TEST_F(Http1ParserTest, InterimOnlyThenFinish) {
  client("POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 1);
  server("HTTP/1.1 100 Continue\r\n\r\n", 2);
  parser_.finish(3);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].interim_status, 100);
  EXPECT_EQ(records()[0].status, 0);
  EXPECT_EQ(records()[0].flags, kFlagNoResponse);
}

TEST_F(Http1ParserTest, ResetMarksOpenExchanges) {
  client(kGet, 1);
  client("GET /b HTTP/1.1\r\n\r\n", 1);
  server(kOk, 2);
  server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 3);
  parser_.onEnd(Role::kServer, true, 4);
  server("more", 5);
  parser_.finish(6);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].flags, 0u);
  EXPECT_EQ(records()[1].path, "/b");
  EXPECT_EQ(records()[1].flags, kFlagReset | kFlagNoResponse);
  EXPECT_EQ(records()[1].response_body_bytes, 2u);
}

TEST_F(Http1ParserTest, ConnectTunnelStops) {
  client("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 1);
  const std::string ok = "HTTP/1.1 200 Connection Established\r\n\r\n";
  const std::string tls = "\x16\x03\x01\x02\x00\x01";
  const ParseResult res = server(ok + tls, 2);
  EXPECT_EQ(res.outcome, ParseOutcome::kStop);
  EXPECT_EQ(res.consumed, ok.size());
  ASSERT_EQ(records().size(), 1u);
  const HttpRecord& r = records()[0];
  EXPECT_EQ(r.method, "CONNECT");
  EXPECT_EQ(r.path, "example.com:443");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.response_header_bytes, ok.size());
  EXPECT_EQ(r.flags, kFlagUpgrade);
  EXPECT_EQ(server("HTTP/1.1 200 OK\r\n\r\n", 3).outcome, ParseOutcome::kStop);
  EXPECT_EQ(client("GET / HTTP/1.1\r\n\r\n", 3).outcome, ParseOutcome::kStop);
  parser_.finish(4);
  EXPECT_EQ(records().size(), 1u);
}

TEST_F(Http1ParserTest, RefusedConnectKeepsParsing) {
  client("CONNECT example.com:443 HTTP/1.1\r\n\r\n", 1);
  server("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", 2);
  client("GET /after HTTP/1.1\r\n\r\n", 3);
  server(kOk, 4);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].status, 407);
  EXPECT_EQ(records()[0].flags, 0u);
  EXPECT_EQ(records()[1].path, "/after");
}

TEST_F(Http1ParserTest, WebSocketUpgradeStops) {
  client(
      "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: x\r\n\r\n",
      1);
  const std::string sw =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  const ParseResult res = server(sw + "\x81\x05hello", 2);
  EXPECT_EQ(res.outcome, ParseOutcome::kStop);
  EXPECT_EQ(res.consumed, sw.size());
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 101);
  EXPECT_EQ(records()[0].path, "/chat");
  EXPECT_EQ(records()[0].flags, kFlagUpgrade);
}

const std::string kH2cRequest =
    "GET /h2 HTTP/1.1\r\nHost: srv\r\nUser-Agent: nghttp\r\n"
    "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: "
    "AAMAAABkAAQAAP__\r\n\r\n";

TEST_F(Http1ParserTest, H2cUpgradeSwitchesToHttp2) {
  client(kH2cRequest, 1);
  const std::string sw =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  const std::string frames("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  const ParseResult res = server(sw + frames, 2);
  EXPECT_EQ(res.outcome, ParseOutcome::kSwitchProtocol);
  EXPECT_EQ(res.consumed, sw.size());
  EXPECT_TRUE(records().empty());
  const HttpRecord& up = parser_.upgradedRequest();
  EXPECT_EQ(up.method, "GET");
  EXPECT_EQ(up.path, "/h2");
  EXPECT_EQ(up.host, "srv");
  EXPECT_EQ(up.user_agent, "nghttp");
  EXPECT_EQ(up.request_start_ns, 1u);
  EXPECT_EQ(up.request_end_ns, 1u);
  EXPECT_EQ(up.request_header_bytes, kH2cRequest.size());
  EXPECT_EQ(up.interim_status, 101);
  EXPECT_EQ(up.response_start_ns, 2u);
  EXPECT_EQ(server(frames, 3).outcome, ParseOutcome::kSwitchProtocol);
  parser_.finish(4);
  EXPECT_TRUE(records().empty());
}

TEST_F(Http1ParserTest, H2cSwitchWhenThe101EndsInALaterSegment) {
  client(kH2cRequest, 1);
  const std::string sw =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
  EXPECT_EQ(server(sw.substr(0, 20), 2).outcome, ParseOutcome::kContinue);
  const ParseResult res = server(sw.substr(20) + "PRI-free frames", 3);
  EXPECT_EQ(res.outcome, ParseOutcome::kSwitchProtocol);
  EXPECT_EQ(res.consumed, sw.size() - 20);
  EXPECT_EQ(parser_.upgradedRequest().path, "/h2");
  EXPECT_EQ(parser_.upgradedRequest().response_start_ns, 2u);
}

TEST_F(Http1ParserTest, ClientResetMarksPendingRequests) {
  client(kGet, 1);
  parser_.onEnd(Role::kClient, true, 2);
  parser_.finish(3);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].flags, kFlagReset | kFlagNoResponse);
}

TEST_F(Http1ParserTest, H2cUpgradeRefusedIsAnOrdinaryExchange) {
  client(kH2cRequest, 1);
  const ParseResult res = server(kOk, 2);
  EXPECT_EQ(res.outcome, ParseOutcome::kContinue);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].flags, 0u);
  client("GET /again HTTP/1.1\r\n\r\n", 3);
  server(kOk, 4);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].path, "/again");
}

TEST_F(Http1ParserTest, LongFieldsAreCutAndFlagged) {
  limits_.max_url_bytes = 8;
  limits_.max_header_value_bytes = 4;
  Http1Parser parser(sink_, limits_);
  const std::string req = "GET /abcdef?ghijkl HTTP/1.1\r\nHost: example.com\r\n\r\n";
  parser.onData(Role::kClient, bytesOf(req), 1);
  parser.onData(Role::kServer, bytesOf(kOk), 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/abcdef");
  EXPECT_EQ(records()[0].query, "g");
  EXPECT_EQ(records()[0].host, "exam");
  EXPECT_EQ(records()[0].flags, kFlagTruncated);
  EXPECT_EQ(parser.stats().truncated_fields, 1u);
}

TEST_F(Http1ParserTest, PendingOverflowKeepsPairingAligned) {
  limits_.max_pending_requests = 2;
  Http1Parser parser(sink_, limits_);
  parser.onData(Role::kClient,
                bytesOf("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
                1);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/1");
  EXPECT_EQ(records()[0].flags, kFlagNoResponse | kFlagOverflow);
  const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n";
  parser.onData(Role::kServer, bytesOf(r + "1" + r + "2" + r + "3"), 2);
  ASSERT_EQ(records().size(), 4u);
  EXPECT_EQ(records()[1].flags, kFlagNoRequest | kFlagOverflow);
  EXPECT_EQ(records()[2].path, "/2");
  EXPECT_EQ(records()[2].flags, 0u);
  EXPECT_EQ(records()[3].path, "/3");
  EXPECT_EQ(parser.stats().pending_overflows, 1u);
}

TEST_F(Http1ParserTest, ResponseBeforeRequestBodyEnds) {
  client("POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789", 1);
  server("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n", 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 413);
  EXPECT_EQ(records()[0].request_body_bytes, 10u);
  EXPECT_EQ(records()[0].request_end_ns, 0u);
  client(std::string(90, 'x'), 3);
  client("GET /next HTTP/1.1\r\n\r\n", 4);
  server(kOk, 5);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].path, "/next");
  EXPECT_EQ(records()[1].flags, 0u);
}

// ---- gaps -------------------------------------------------------------------

TEST_F(Http1ParserTest, GapInsideContentLengthBodyIsSkipped) {
  client(kGet, 1);
  server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 2);
  parser_.onGap(Role::kServer, 80, 3);
  EXPECT_TRUE(records().empty());
  server("abcdefghij", 4);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 100u);
  EXPECT_EQ(records()[0].response_end_ns, 4u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
  EXPECT_EQ(parser_.stats().gap_skipped_body_bytes, 80u);
  // The connection goes on cleanly.
  client(kGet, 5);
  server(kOk, 6);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].flags, 0u);
  EXPECT_EQ(records()[1].response_body_bytes, 5u);
}

TEST_F(Http1ParserTest, GapEndingExactlyAtBodyEndCompletesNow) {
  client(kGet, 1);
  client("GET /2 HTTP/1.1\r\n\r\n", 1);
  server("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 2);
  parser_.onGap(Role::kServer, 1000, 3);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 1000u);
  EXPECT_EQ(records()[0].response_end_ns, 3u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
  server(kOk, 4);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].path, "/2");
  EXPECT_EQ(records()[1].flags, 0u);
}

TEST_F(Http1ParserTest, GapInsideRequestBodyIsSkipped) {
  client("POST /up HTTP/1.1\r\nContent-Length: 50\r\n\r\nabc", 1);
  parser_.onGap(Role::kClient, 47, 2);
  client("GET /2 HTTP/1.1\r\n\r\n", 3);
  server(kOk, 4);
  server(kOk, 5);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].request_body_bytes, 50u);
  EXPECT_EQ(records()[0].request_end_ns, 2u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
  EXPECT_EQ(records()[1].path, "/2");
  EXPECT_EQ(records()[1].flags, 0u);
}

TEST_F(Http1ParserTest, GapInsideChunkDataIsSkipped) {
  client(kGet, 1);
  server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n0123", 2);
  parser_.onGap(Role::kServer, 20, 3);
  server("456789ab\r\n", 4);
  EXPECT_TRUE(records().empty());
  server("0\r\n\r\n", 5);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 32u);
  EXPECT_EQ(records()[0].response_end_ns, 5u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
}

TEST_F(Http1ParserTest, GapCoveringAWholeChunk) {
  client(kGet, 1);
  server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n", 2);
  parser_.onGap(Role::kServer, 16, 3);
  server("\r\n3\r\nabc\r\n0\r\n\r\n", 4);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 19u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
  EXPECT_EQ(records()[0].response_end_ns, 4u);
}

TEST_F(Http1ParserTest, GapInChunkSizeLineResyncs) {
  client(kGet, 1);
  client("GET /2 HTTP/1.1\r\n\r\n", 1);
  server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 2);
  parser_.onGap(Role::kServer, 5, 3);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].path, "/api/user");
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].response_body_bytes, 3u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
  // "/2" was fully sent before the server side lost sync: its answer may be lost.
  EXPECT_EQ(records()[1].path, "/2");
  EXPECT_EQ(records()[1].flags, kFlagGap | kFlagNoResponse);
  // The resync skips the rest of the broken response and finds the next one.
  server("\r\nbody bytes\r\n0\r\n\r\n", 4);
  client("GET /3 HTTP/1.1\r\n\r\n", 5);
  server(kOk, 6);
  ASSERT_EQ(records().size(), 3u);
  EXPECT_EQ(records()[2].path, "/3");
  EXPECT_EQ(records()[2].flags, 0u);
}

TEST_F(Http1ParserTest, GapPastTheBodyEndClosesTheExchange) {
  client(kGet, 1);
  server("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234", 2);
  parser_.onGap(Role::kServer, 20, 3);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 10u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
  EXPECT_EQ(records()[0].status, 200);
  // Misaligned bytes after the gap produce nothing; the next response does.
  server("nt-Length: 3\r\n\r\nabc", 4);
  EXPECT_EQ(records().size(), 1u);
  client("GET /later HTTP/1.1\r\n\r\n", 5);
  server(kOk, 6);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].path, "/later");
  EXPECT_EQ(records()[1].flags, 0u);
}

TEST_F(Http1ParserTest, RestOfAKnownLengthBodyIsSkippable) {
  client(kGet, 1);
  EXPECT_EQ(parser_.skippableBytes(Role::kClient), 0u);
  server("HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n0123456789", 2);
  EXPECT_EQ(parser_.skippableBytes(Role::kServer), 9990u);
  parser_.onGap(Role::kServer, 9990, 3);
  EXPECT_EQ(parser_.skippableBytes(Role::kServer), 0u);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].response_body_bytes, 10000u);
}

TEST_F(Http1ParserTest, CloseDelimitedBodyIsNotSkippable) {
  client("GET / HTTP/1.0\r\n\r\n", 1);
  server("HTTP/1.0 200 OK\r\n\r\nsome body", 2);
  EXPECT_EQ(parser_.skippableBytes(Role::kServer), 0u);
}

TEST_F(Http1ParserTest, GapInResponseHeadersResyncs) {
  client(kGet, 1);
  server("HTTP/1.1 200 OK\r\nConte", 2);
  parser_.onGap(Role::kServer, 30, 3);
  ASSERT_EQ(records().size(), 1u);
  // The status line was complete: the status is known, the rest is a gap.
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].response_start_ns, 2u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
}

TEST_F(Http1ParserTest, GapInResponseStatusLineLeavesNoStatus) {
  client(kGet, 1);
  server("HTTP/1.1 2", 2);
  parser_.onGap(Role::kServer, 30, 3);
  parser_.finish(4);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 0);
  EXPECT_TRUE(records()[0].flags & kFlagNoResponse);
}

TEST_F(Http1ParserTest, GapInRequestHeadersKeepsTheRequestQueued) {
  client("GET /cut HTTP/1.1\r\nHost: a", 1);
  parser_.onGap(Role::kClient, 100, 2);
  client("er: x\r\n\r\nGET /next HTTP/1.1\r\nHost: b\r\n\r\n", 3);
  server(kOk, 4);
  server(kOk, 5);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].path, "/cut");
  // The Host value was cut by the gap: what is kept is a prefix.
  EXPECT_EQ(records()[0].host, "a");
  EXPECT_EQ(records()[0].flags, kFlagGap | kFlagTruncated);
  EXPECT_EQ(records()[1].path, "/next");
  EXPECT_EQ(records()[1].host, "b");
  EXPECT_EQ(records()[1].flags, 0u);
}

// A gap between two header lines cuts no value: the kept fields are whole.
TEST_F(Http1ParserTest, GapBetweenHeaderLinesTruncatesNothing) {
  client("GET /cut HTTP/1.1\r\nHost: a\r\n", 1);
  parser_.onGap(Role::kClient, 100, 2);
  client("\r\nGET /next HTTP/1.1\r\nHost: b\r\n\r\n", 3);
  server(kOk, 4);
  server(kOk, 5);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].host, "a");
  EXPECT_EQ(records()[0].flags, kFlagGap);
}

// A whole request lost: its response goes out alone, and says it lost its
// request to a gap; the next exchange is clean again.
TEST_F(Http1ParserTest, ResponseWhoseRequestWasLostIsFlaggedGap) {
  client(kGet, 1);
  server(kOk, 2);
  parser_.onGap(Role::kClient, 40, 3);
  server(kOk, 4);
  client("GET /next HTTP/1.1\r\n\r\n", 5);
  server(kOk, 6);
  ASSERT_EQ(records().size(), 3u);
  EXPECT_EQ(records()[0].flags, 0u);
  EXPECT_EQ(records()[1].flags, kFlagNoRequest | kFlagGap);
  EXPECT_EQ(records()[2].path, "/next");
  EXPECT_EQ(records()[2].flags, 0u);
  // Later, a response without request and no loss since: not a gap.
  server(kOk, 7);
  ASSERT_EQ(records().size(), 4u);
  EXPECT_EQ(records()[3].flags, kFlagNoRequest);
}

TEST_F(Http1ParserTest, GapInCloseDelimitedBodyIsCounted) {
  client("GET / HTTP/1.0\r\n\r\n", 1);
  server("HTTP/1.0 200 OK\r\n\r\nabc", 2);
  parser_.onGap(Role::kServer, 1000, 3);
  server("def", 4);
  parser_.onEnd(Role::kServer, false, 5);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 1006u);
  EXPECT_EQ(records()[0].flags, kFlagGap);
  EXPECT_EQ(records()[0].response_end_ns, 5u);
}

TEST_F(Http1ParserTest, GapBetweenRequestsResyncs) {
  client("GET /1 HTTP/1.1\r\n\r\n", 1);
  parser_.onGap(Role::kClient, 25, 2);  // perhaps a whole request
  client("GET /3 HTTP/1.1\r\n\r\n", 3);
  server(kOk, 4);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/1");
  EXPECT_EQ(records()[0].flags, 0u);
}

// ---- mid-stream starts and resync ---------------------------------------------

TEST_F(Http1ParserTest, MidstreamStartRecoversAtNextBoundaries) {
  client("dy of an earlier POST\r\nmore\r\nGET /first HTTP/1.1\r\nHost: a\r\n\r\n", 1);
  server("lo world</html>\r\n", 2);
  server(kOk, 3);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/first");
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].flags, kFlagMidstream);
  EXPECT_GT(parser_.stats().resync_dropped_bytes, 0u);
  client(kGet, 4);
  server(kOk, 5);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].flags, 0u);
}

TEST_F(Http1ParserTest, BoundarySplitAcrossSegmentsWhileResyncing) {
  const std::string c = "xx\r\nGET /split HTTP/1.1\r\nHost: a\r\n\r\n";
  client(c.substr(0, 8), 1);  // "xx\r\nGET " is held, not parsed yet
  client(c.substr(8, 6), 2);
  client(c.substr(14), 3);
  server(kOk, 4);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/split");
  EXPECT_EQ(records()[0].request_start_ns, 1u);
  EXPECT_EQ(records()[0].request_end_ns, 3u);
  EXPECT_EQ(records()[0].request_header_bytes, c.size() - 4);
}

TEST_F(Http1ParserTest, ParseErrorResyncsAtTheNextRequest) {
  client("GET /ok HTTP/1.1\r\n\r\n", 1);
  client("this is not http\r\n\r\nGET /good HTTP/1.1\r\nHost: g\r\n\r\n", 2);
  server(kOk, 3);
  server(kOk, 4);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].path, "/ok");
  EXPECT_EQ(records()[1].path, "/good");
  EXPECT_EQ(records()[1].flags, 0u);
  EXPECT_EQ(parser_.stats().parse_errors, 1u);
}

TEST_F(Http1ParserTest, MalformedHeaderInRequestFlagsItAndResyncs) {
  client("GET /bad HTTP/1.1\r\nBad Header\r\n\r\nGET /good HTTP/1.1\r\n\r\n", 1);
  server(kOk, 2);
  server(kOk, 3);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].path, "/bad");
  EXPECT_EQ(records()[0].flags, kFlagGap);
  EXPECT_EQ(records()[1].path, "/good");
}

TEST_F(Http1ParserTest, ServerParseErrorDropsAnsweredRequests) {
  client("GET /1 HTTP/1.1\r\n\r\n", 1);
  server("HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n", 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/1");
  EXPECT_NE(records()[0].flags & kFlagGap, 0u);
  client("GET /2 HTTP/1.1\r\n\r\n", 3);
  server(kOk, 4);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].path, "/2");
  EXPECT_EQ(records()[1].flags, 0u);
}

TEST(Http1ParserGarbage, RandomBytesNeverCrash) {
  std::mt19937 rng(1234);
  const std::string valid_c = pipelinedClient();
  const std::string valid_s = pipelinedServer();
  for (int round = 0; round < 300; ++round) {
    RecordingSink sink;
    Http1Parser parser(sink);
    uint64_t ts = 1;
    for (int step = 0; step < 40; ++step) {
      std::string chunk;
      const int kind = static_cast<int>(rng() % 4);
      if (kind == 0) {
        chunk.resize(rng() % 200);
        for (char& c : chunk) c = static_cast<char>(rng());
      } else {
        const std::string& src = (rng() % 2) ? valid_c : valid_s;
        const size_t a = rng() % src.size();
        chunk = src.substr(a, rng() % (src.size() - a + 1));
        if (kind == 3 && !chunk.empty()) chunk[rng() % chunk.size()] = static_cast<char>(rng());
      }
      const Role role = (rng() % 2) ? Role::kClient : Role::kServer;
      switch (rng() % 10) {
        case 0:
          parser.onGap(role, rng() % 5000, ++ts);
          break;
        case 1:
          if (step > 35) parser.onEnd(role, rng() % 2, ++ts);
          break;
        default: {
          const ParseResult r = parser.onData(role, bytesOf(chunk), ++ts);
          ASSERT_LE(r.consumed, chunk.size());
        }
      }
    }
    parser.finish(++ts);
    for (const HttpRecord& r : sink.records) {
      ASSERT_LE(r.path.size(), Http1Limits{}.max_url_bytes);
      ASSERT_LE(r.host.size(), Http1Limits{}.max_header_value_bytes);
    }
  }
}

TEST(Http1ParserGarbage, PureGarbageMakesNoRecords) {
  std::mt19937 rng(99);
  RecordingSink sink;
  Http1Parser parser(sink);
  for (int i = 0; i < 200; ++i) {
    std::string chunk(rng() % 1500, '\0');
    for (char& c : chunk) c = static_cast<char>(rng() % 0x7f == 0 ? '\n' : rng());
    parser.onData(i % 2 ? Role::kClient : Role::kServer, bytesOf(chunk), i);
  }
  parser.finish(1000);
  EXPECT_TRUE(sink.records.empty());
}

}  // namespace
}  // namespace l7tap
