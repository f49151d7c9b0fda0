// Http1Parser: methods llhttp does not know (WebDAV's it lacks, extension
// tokens, short and lower-case tokens) and HTTP/0.9; the record's method rule.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "parsers/common/http_method.h"
#include "parsers/common/protocol.h"
#include "parsers/http1/http1_parser.h"
#include "parsers/http1/http1_protocol.h"
#include "parsers/http1/resync.h"
#include "tests/parsers/http1/http1_test_util.h"

namespace l7tap {
namespace {

using testing_http1::bytesOf;
using testing_http1::RecordingSink;

class MethodsTest : public ::testing::Test {
 protected:
  void client(std::string_view s, uint64_t ts) {
    EXPECT_EQ(parser_.onData(Role::kClient, bytesOf(s), ts).outcome, ParseOutcome::kContinue);
  }
  void server(std::string_view s, uint64_t ts) {
    EXPECT_EQ(parser_.onData(Role::kServer, bytesOf(s), ts).outcome, ParseOutcome::kContinue);
  }
  const std::vector<HttpRecord>& records() const { return sink_.records; }

  RecordingSink sink_;
  Http1Parser parser_{sink_};
};

constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
constexpr std::string_view kNoContent = "HTTP/1.1 204 No Content\r\n\r\n";

TEST_F(MethodsTest, UnknownTokenWithContentLengthBody) {
  const std::string head = "BREW /pot HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
  client(head + "decaf", 10);
  server(kOk, 20);
  ASSERT_EQ(records().size(), 1u);
  const HttpRecord& r = records()[0];
  EXPECT_EQ(r.method, "BREW");
  EXPECT_EQ(r.path, "/pot");
  EXPECT_EQ(r.host, "h");
  EXPECT_STREQ(r.version, "1.1");
  EXPECT_EQ(r.request_header_bytes, head.size());
  EXPECT_EQ(r.request_body_bytes, 5u);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.response_body_bytes, 2u);
  EXPECT_EQ(r.request_start_ns, 10u);
  EXPECT_EQ(r.request_end_ns, 10u);
  EXPECT_EQ(r.flags, 0u);
  EXPECT_EQ(parser_.stats().parse_errors, 0u);
}

TEST_F(MethodsTest, UnknownTokenWithChunkedBody) {
  const std::string head = "X-CUSTOM-1 /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  client(head + "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 1);
  server("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n", 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].method, "X-CUSTOM-1");
  EXPECT_EQ(records()[0].request_header_bytes, head.size());
  EXPECT_EQ(records()[0].request_body_bytes, 5u);
  EXPECT_EQ(records()[0].status, 201);
  EXPECT_EQ(records()[0].response_body_bytes, 4u);
}

// Shorter than "GET": llhttp is given the three bytes apart from the stream,
// so the counts are those of the bytes on the wire.
TEST_F(MethodsTest, OneAndTwoByteTokens) {
  const std::string one = "X /1 HTTP/1.1\r\n\r\n";
  const std::string two = "MK /2 HTTP/1.1\r\nContent-Length: 1\r\n\r\nz";
  client(one + two, 1);
  server(std::string(kNoContent) + std::string(kOk), 2);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].method, "X");
  EXPECT_EQ(records()[0].path, "/1");
  EXPECT_EQ(records()[0].request_header_bytes, one.size());
  EXPECT_EQ(records()[1].method, "MK");
  EXPECT_EQ(records()[1].path, "/2");
  EXPECT_EQ(records()[1].request_header_bytes, two.size() - 1);
  EXPECT_EQ(records()[1].request_body_bytes, 1u);
  EXPECT_EQ(records()[1].response_body_bytes, 2u);
}

TEST_F(MethodsTest, LowerCaseTokenIsItsOwnMethod) {
  client("get /x HTTP/1.1\r\n\r\n", 1);
  server(kOk, 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].method, "get");
}

TEST_F(MethodsTest, LongestTokenIsTakenLongerIsNot) {
  const std::string longest(http1::kMaxMethodBytes, 'Q');
  client(longest + " /a HTTP/1.1\r\n\r\n", 1);
  server(kNoContent, 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].method, longest);
  client(longest + "Q /b HTTP/1.1\r\n\r\n", 3);
  parser_.finish(5);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(parser_.stats().parse_errors, 1u);
}

// Each after a first request, so the client's side parses (it starts in
// resync, where what is no boundary is dropped, not a parse error).
TEST_F(MethodsTest, NonTokenBytesAreNoMethod) {
  for (std::string_view bad : {"BR(W /a HTTP/1.1\r\n\r\n", "B\"EW /a HTTP/1.1\r\n\r\n"}) {
    RecordingSink sink;
    Http1Parser parser(sink);
    parser.onData(Role::kClient, bytesOf("GET / HTTP/1.1\r\n\r\n"), 1);
    parser.onData(Role::kClient, bytesOf(bad), 2);
    parser.finish(3);
    ASSERT_EQ(sink.records.size(), 1u) << bad;
    EXPECT_EQ(sink.records[0].method, "GET");
    EXPECT_EQ(parser.stats().parse_errors, 1u) << bad;
  }
}

// Cut right after its first bytes, a bad token is refused all the same.
TEST_F(MethodsTest, NonTokenBytesAfterACutToken) {
  client("GET / HTTP/1.1\r\n\r\nB", 1);
  client("R(W /a HTTP/1.1\r\n\r\n", 2);
  parser_.finish(3);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(parser_.stats().parse_errors, 1u);
}

// A line that starts with a word is no request without a version at its end.
TEST_F(MethodsTest, UnknownTokenWithoutVersionIsNoRequest) {
  client("GET / HTTP/1.1\r\n\r\n", 0);
  client("BREW /pot\r\n\r\n", 1);
  parser_.finish(2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/");
  EXPECT_EQ(parser_.stats().parse_errors, 1u);
}

TEST_F(MethodsTest, PipelinedUnknownMethods) {
  client(
      "PROPFIND /d HTTP/1.1\r\nDepth: 1\r\n\r\n"
      "BREW /pot HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "X-CUSTOM-1 /c HTTP/1.1\r\n\r\n"
      "GET /g HTTP/1.1\r\n\r\n",
      1);
  server(std::string(kOk) + std::string(kNoContent) + std::string(kOk) + std::string(kOk), 2);
  ASSERT_EQ(records().size(), 4u);
  EXPECT_EQ(records()[0].method, "PROPFIND");
  EXPECT_EQ(records()[1].method, "BREW");
  EXPECT_EQ(records()[1].request_body_bytes, 3u);
  EXPECT_EQ(records()[1].status, 204);
  EXPECT_EQ(records()[2].method, "X-CUSTOM-1");
  EXPECT_EQ(records()[3].method, "GET");
  EXPECT_EQ(records()[3].path, "/g");
  for (const HttpRecord& r : records()) EXPECT_EQ(r.flags, 0u) << r.method;
  EXPECT_EQ(parser_.stats().resyncs, 0u);
}

// Split inside the token or the line: held until the line is whole, timed
// from its first byte, counted as if it had come in one piece.
TEST_F(MethodsTest, UnknownRequestLineSplitAcrossSegments) {
  const std::string req = "GET /a HTTP/1.1\r\n\r\nBREW /pot HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t cut = req.find("BREW") + 1; cut < req.find("Host"); ++cut) {
    RecordingSink sink;
    Http1Parser parser(sink);
    parser.onData(Role::kClient, bytesOf(std::string_view(req).substr(0, cut)), 10);
    parser.onData(Role::kClient, bytesOf(std::string_view(req).substr(cut)), 20);
    parser.onData(Role::kServer, bytesOf(std::string(kOk) + std::string(kOk)), 30);
    ASSERT_EQ(sink.records.size(), 2u) << cut;
    const HttpRecord& r = sink.records[1];
    EXPECT_EQ(r.method, "BREW") << cut;
    EXPECT_EQ(r.path, "/pot") << cut;
    EXPECT_EQ(r.request_header_bytes, req.size() - req.find("BREW")) << cut;
    EXPECT_EQ(r.request_start_ns, 10u) << cut;
    EXPECT_EQ(r.request_end_ns, 20u) << cut;
    EXPECT_EQ(r.flags, 0u) << cut;
    EXPECT_EQ(parser.stats().parse_errors, 0u) << cut;
    EXPECT_EQ(parser.stats().resync_dropped_bytes, 0u) << cut;
  }
}

TEST_F(MethodsTest, HeldLineThatIsNoRequestIsAParseError) {
  client("GET /a HTTP/1.1\r\n\r\nhello wor", 1);
  client("ld\r\nGET /b HTTP/1.1\r\n\r\n", 2);
  server(std::string(kOk) + std::string(kOk), 3);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[1].path, "/b");
  EXPECT_EQ(parser_.stats().parse_errors, 1u);
  EXPECT_EQ(parser_.stats().resync_dropped_bytes, 13u);
}

TEST_F(MethodsTest, ResyncFindsUnknownMethodMidStream) {
  client("the end of an earlier body\r\nMKCALENDARX /cal HTTP/1.1\r\n\r\n", 1);
  server(kOk, 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].method, "MKCALENDARX");
  EXPECT_EQ(records()[0].path, "/cal");
  EXPECT_NE(records()[0].flags & kFlagMidstream, 0u);
}

// Framing as for GET: a response to an unknown method has its body (it is
// not HEAD), and the connection is no tunnel (it is not CONNECT).
TEST_F(MethodsTest, ResponseFramingIsAsForGet) {
  client("HEADX /a HTTP/1.1\r\n\r\nCONNECTX /h HTTP/1.1\r\n\r\n", 1);
  server(std::string(kOk) + std::string(kOk), 2);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].response_body_bytes, 2u);
  EXPECT_EQ(records()[1].method, "CONNECTX");
  EXPECT_EQ(records()[1].flags & kFlagUpgrade, 0u);
}

// ---- HTTP/0.9 ---------------------------------------------------------------

TEST_F(MethodsTest, Http09ResponseIsTheBytesUntilTheClose) {
  client("GET /hello.txt\r\n", 10);
  server("Hello, HTTP/0.9\n", 20);
  server("second line\n", 25);
  EXPECT_TRUE(records().empty());
  parser_.onEnd(Role::kServer, false, 30);
  ASSERT_EQ(records().size(), 1u);
  const HttpRecord& r = records()[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/hello.txt");
  EXPECT_STREQ(r.version, "0.9");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.request_header_bytes, 16u);
  EXPECT_EQ(r.request_body_bytes, 0u);
  EXPECT_EQ(r.response_header_bytes, 0u);
  EXPECT_EQ(r.response_body_bytes, 28u);
  EXPECT_EQ(r.request_start_ns, 10u);
  EXPECT_EQ(r.request_end_ns, 10u);
  EXPECT_EQ(r.response_start_ns, 20u);
  EXPECT_EQ(r.response_end_ns, 30u);
  EXPECT_EQ(r.flags, 0u);
  parser_.finish(40);
  EXPECT_EQ(records().size(), 1u);
  const Http1Stats st = parser_.stats();
  EXPECT_EQ(st.parse_errors, 0u);
  EXPECT_EQ(st.resync_dropped_bytes, 0u);
}

// Nothing else on the connection: what the client sends after is ignored,
// and a body that looks like a request or a status line is still body.
TEST_F(MethodsTest, Http09EndsTheConnectionsHttp) {
  client("GET /x\nUser-Agent: y\r\n\r\nGET /y HTTP/1.1\r\n\r\n", 1);
  server("<html>\r\nHTTP/1.1 200 OK\r\n\r\n", 2);
  parser_.onEnd(Role::kClient, false, 3);
  parser_.onEnd(Role::kServer, false, 4);
  parser_.finish(5);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/x");
  EXPECT_EQ(records()[0].request_header_bytes, 7u);  // a bare LF ends the line too
  EXPECT_EQ(records()[0].response_body_bytes, 27u);
  EXPECT_EQ(records()[0].user_agent, "");
}

TEST_F(MethodsTest, Http09ResponseCutByAGap) {
  client("GET /big\r\n", 1);
  server("abcd", 2);
  parser_.onGap(Role::kServer, 100, 3);
  server("efgh", 4);
  parser_.onEnd(Role::kServer, false, 5);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 108u);
  EXPECT_NE(records()[0].flags & kFlagGap, 0u);
  EXPECT_EQ(records()[0].response_end_ns, 5u);
}

TEST_F(MethodsTest, Http09ResponseNotClosedIsIncomplete) {
  client("GET /x\r\n", 1);
  server("partial", 2);
  parser_.onEnd(Role::kServer, true, 3);  // a reset: the body's end is unknown
  parser_.finish(4);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 7u);
  EXPECT_NE(records()[0].flags & kFlagReset, 0u);
  EXPECT_NE(records()[0].flags & kFlagNoResponse, 0u);
}

// A server that answers a version-less request with a status line anyway.
TEST_F(MethodsTest, Http09RequestAnsweredWithAStatusLine) {
  client("GET /x\r\n", 1);
  server("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc", 2);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].response_body_bytes, 3u);
  EXPECT_STREQ(records()[0].version, "0.9");
}

// ---- detection --------------------------------------------------------------

TEST(MethodDetection, UnknownTokenNeedsTheWholeRequestLine) {
  ProtocolRegistry registry;
  registerHttp1(registry);
  const auto detect = [&](std::string_view bytes) {
    return registry.detectStart(bytesOf(bytes), StartContext{}).match;
  };
  EXPECT_EQ(detect("GET "), Match::kYes);  // known: the first bytes decide
  EXPECT_EQ(detect("BREW /pot HTTP/1.1\r\n"), Match::kYes);
  EXPECT_EQ(detect("X-CUSTOM-1 /a?b HTTP/1.0\n"), Match::kYes);
  EXPECT_EQ(detect("BREW /pot HTTP/1."), Match::kNeedMore);
  EXPECT_EQ(detect("BREW"), Match::kNeedMore);
  EXPECT_EQ(detect("hello world\r\n"), Match::kNo);
  EXPECT_EQ(detect("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), Match::kNo);
  EXPECT_EQ(detect("220 mail.example ESMTP ready\r\n"), Match::kNo);
  EXPECT_EQ(detect("BREW /pot HTTP/2.0\r\n"), Match::kNo);
  EXPECT_EQ(detect(std::string(http1::kMaxMethodBytes + 1, 'A') + " / HTTP/1.1\r\n"), Match::kNo);
}

TEST(MethodDetection, MidStreamBoundaryAtAnUnknownMethod) {
  ProtocolRegistry registry;
  registerHttp1(registry);
  const std::string held = "tail of a body\r\nBREW /pot HTTP/1.1\r\nHost: h\r\n\r\n";
  const auto found = registry.findBoundary(bytesOf(held), bytesOf(held));
  EXPECT_TRUE(found.boundary.found);
  EXPECT_EQ(found.boundary.sender, Sender::kClient);
  const std::string text = "tail of a body\r\nbrew some tea, then\r\n";
  EXPECT_FALSE(registry.findBoundary(bytesOf(text), bytesOf(text)).boundary.found);
}

// ---- the record's method rule ----------------------------------------------

class Fields : public FieldVisitor {
 public:
  void str(std::string_view n, std::string_view v) override { s[std::string(n)] = v; }
  void num(std::string_view, uint64_t) override {}
  void inum(std::string_view, int64_t) override {}
  void millis(std::string_view, uint64_t) override {}
  void time(std::string_view, uint64_t) override {}
  void addr(std::string_view, const uint8_t*, uint8_t) override {}
  void flags(std::string_view, uint32_t, const char* const*, size_t) override {}
  std::map<std::string, std::string> s;
};

TEST(HttpMethodRule, KnownMethodsStandOthersAreOther) {
  for (std::string_view m :
       {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}) {
    EXPECT_EQ(httpMethodLabel(m), m);
    EXPECT_TRUE(isKnownHttpMethod(m));
  }
  for (std::string_view m : {"PROPFIND", "MKCOL", "QUERY", "BREW", "get", "", "GET "}) {
    EXPECT_EQ(httpMethodLabel(m), "_OTHER") << m;
    EXPECT_FALSE(isKnownHttpMethod(m)) << m;
  }
}

TEST(HttpMethodRule, RecordCarriesTheOriginalOfAnOtherMethod) {
  ConnectionInfo c;
  HttpRecord r;
  r.method = "PROPFIND";
  Fields f;
  r.visit(c, f);
  EXPECT_EQ(f.s["http.request.method"], "_OTHER");
  EXPECT_EQ(f.s["http.request.method_original"], "PROPFIND");
  std::string message;
  r.appendMessage(message, c);
  EXPECT_TRUE(message.starts_with("PROPFIND ")) << message;

  r.method = "PATCH";
  Fields g;
  r.visit(c, g);
  EXPECT_EQ(g.s["http.request.method"], "PATCH");
  EXPECT_EQ(g.s.count("http.request.method_original"), 0u);
}

}  // namespace
}  // namespace l7tap
