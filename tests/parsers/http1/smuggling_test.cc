// Request smuggling and desync shapes: where a message's framing can be read
// two ways, the parser follows what an RFC 9112 server does, flags the record
// `ambiguous`, and the exchange that follows on the connection is reported
// as the server saw it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parsers/http1/http1_parser.h"
#include "tests/parsers/http1/http1_test_util.h"

namespace l7tap {
namespace {

using testing_http1::bytesOf;
using testing_http1::RecordingSink;

constexpr std::string_view kNext = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA";
constexpr std::string_view kNextOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 1\r\nConnection: close\r\n\r\nB";

class SmugglingTest : public ::testing::Test {
 protected:
  // The client sends `first` and the next request back to back (one segment,
  // or one byte per segment), the server answers both.
  void exchange(std::string_view first, std::string_view first_response, bool bytewise = false) {
    const std::string both = std::string(first) + std::string(kNext);
    if (bytewise) {
      for (size_t i = 0; i < both.size(); ++i) client(both.substr(i, 1), 100);
    } else {
      client(both, 100);
    }
    server(std::string(first_response) + std::string(kNextOk), 200);
    parser_.finish(300);
  }
  void client(std::string_view s, uint64_t ts) { parser_.onData(Role::kClient, bytesOf(s), ts); }
  void server(std::string_view s, uint64_t ts) { parser_.onData(Role::kServer, bytesOf(s), ts); }

  // The second record is the next request with its own answer, clean.
  void expectNextIntact() const {
    ASSERT_EQ(records().size(), 2u);
    const HttpRecord& r = records()[1];
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.path, "/next");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.response_body_bytes, 2u);
    EXPECT_EQ(r.flags, 0u);
  }
  const std::vector<HttpRecord>& records() const { return sink_.records; }

  RecordingSink sink_;
  Http1Parser parser_{sink_};
};

// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length. Read by the
// Content-Length, the body would swallow the start of the next request.
TEST_F(SmugglingTest, ContentLengthWithChunkedIsReadAsChunked) {
  exchange(
      "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].request_body_bytes, 5u);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
  EXPECT_EQ(parser_.stats().ambiguous_messages, 1u);
  EXPECT_EQ(parser_.stats().parse_errors, 0u);
}

TEST_F(SmugglingTest, ChunkedBeforeContentLengthIsReadAsChunked) {
  exchange(
      "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].request_body_bytes, 5u);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
}

// The classic CL.TE shape: by the Transfer-Encoding the body is empty and the
// "smuggled" request is a request of its own, which is what the server runs.
TEST_F(SmugglingTest, SmuggledRequestIsTheServersNextRequest) {
  const std::string smuggled = "GET /admin HTTP/1.1\r\nHost: h\r\n\r\n";
  exchange("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(5 + smuggled.size()) +
               "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
           std::string(kOk) + std::string(kOk));
  ASSERT_EQ(records().size(), 3u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].request_body_bytes, 0u);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  EXPECT_EQ(records()[1].path, "/admin");
  EXPECT_EQ(records()[1].flags, 0u);
  EXPECT_EQ(records()[2].path, "/next");
  EXPECT_EQ(records()[2].response_body_bytes, 2u);
  EXPECT_EQ(records()[2].flags, 0u);
}

// RFC 9110 §8.6: equal repeats are one value to a server that accepts them.
TEST_F(SmugglingTest, EqualContentLengthsAreOneValue) {
  exchange("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].request_body_bytes, 3u);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
}

// Different Content-Lengths: the server answers 400 and closes, so nothing
// after the headers is a request to it, whichever length a proxy used.
TEST_F(SmugglingTest, DifferentContentLengthsAreRejected) {
  const std::string body = "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
  client("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body,
         100);
  client(kNext, 110);
  server(kBadRequest, 200);
  parser_.onEnd(Role::kServer, false, 210);
  parser_.finish(300);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].status, 400);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  EXPECT_EQ(parser_.stats().rejected_requests, 1u);
  // Counted from the rejection on: the blank line ending the headers, the body, the rest.
  EXPECT_EQ(parser_.stats().rejected_dropped_bytes, 2 + body.size() + kNext.size());
}

// A server that answers anyway (not what RFC 9112 allows): its answers stand
// alone rather than being paired with bytes the parser cannot frame.
TEST_F(SmugglingTest, AnswersAfterARejectedRequestArePairedWithNothing) {
  exchange("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
           kBadRequest);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].status, 400);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  EXPECT_EQ(records()[1].method, "");
  EXPECT_EQ(records()[1].flags, kFlagNoRequest);
}

TEST_F(SmugglingTest, ContentLengthListIsRejected) {
  exchange("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", kBadRequest);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 400);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  EXPECT_EQ(parser_.stats().rejected_requests, 1u);
}

TEST_F(SmugglingTest, ObsFoldIsJoinedAndFlagged) {
  exchange("GET /a HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n", kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
}

TEST_F(SmugglingTest, ObsFoldedTransferEncodingIsChunked) {
  exchange(
      "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n",
      kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].request_body_bytes, 3u);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
}

TEST_F(SmugglingTest, ObsFoldIsSeenAcrossSegments) {
  exchange(
      "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n",
      kOk, /*bytewise=*/true);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
}

// llhttp and nginx end a request line, and the headers, at a bare LF.
TEST_F(SmugglingTest, BareLfAfterTheRequestLineIsFlagged) {
  exchange("GET /a HTTP/1.1\nHost: h\r\n\r\n", kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].host, "h");
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
}

TEST_F(SmugglingTest, BareLfEndOfHeadersIsFlaggedAcrossSegments) {
  exchange("GET /a HTTP/1.1\r\nHost: h\r\n\n", kOk, /*bytewise=*/true);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
}

// After a header value llhttp refuses a bare LF (nginx does not): the
// request is closed as at any parse error, and flagged.
TEST_F(SmugglingTest, BareLfAfterAHeaderValueIsFlagged) {
  exchange("GET /a HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous | kFlagGap);
  expectNextIntact();
}

// Chunk extensions are legal (RFC 9112 §7.1.1) and change nothing.
TEST_F(SmugglingTest, ChunkExtensionsAreIgnored) {
  exchange(
      "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;name=\"v;x\"\r\nabc\r\n2;a=b\r\nde\r\n0;last\r\n\r\n",
      kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].request_body_bytes, 5u);
  EXPECT_EQ(records()[0].flags, 0u);
  expectNextIntact();
}

// RFC 9112 §6.3: a request whose last transfer coding is not chunked has no
// knowable length; the server answers 400 and closes.
TEST_F(SmugglingTest, TransferEncodingNotEndingInChunkedIsRejected) {
  for (const char* te : {"gzip", "chunked, gzip", "identity"}) {
    SCOPED_TRACE(te);
    RecordingSink sink;
    Http1Parser parser(sink);
    const std::string req = std::string("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ") + te +
                            "\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + std::string(kNext);
    parser.onData(Role::kClient, bytesOf(req), 100);
    parser.onData(Role::kServer, bytesOf(kBadRequest), 200);
    parser.finish(300);
    ASSERT_EQ(sink.records.size(), 1u);
    EXPECT_EQ(sink.records[0].status, 400);
    EXPECT_EQ(sink.records[0].flags, kFlagAmbiguous);
    EXPECT_EQ(parser.stats().rejected_requests, 1u);
  }
}

TEST_F(SmugglingTest, TransferEncodingNotLastHeaderLineStillEndsInChunked) {
  exchange(
      "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      kOk);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].request_body_bytes, 3u);
  EXPECT_EQ(records()[0].flags, 0u);
  expectNextIntact();
}

// RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
TEST_F(SmugglingTest, TransferEncodingOnHttp10IsRejected) {
  exchange("POST /a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
           kBadRequest);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 400);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  EXPECT_EQ(parser_.stats().rejected_requests, 1u);
}

TEST_F(SmugglingTest, ResponseWithContentLengthAndChunkedIsReadAsChunked) {
  client(std::string("GET /a HTTP/1.1\r\nHost: h\r\n\r\n") + std::string(kNext), 100);
  server(std::string("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1\r\nA\r\n0\r\n\r\n") +
             std::string(kNextOk),
         200);
  parser_.finish(300);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].response_body_bytes, 1u);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous);
  expectNextIntact();
}

// Chunk extensions llhttp 8.1 cannot read (a second one without a value, a
// bare LF) end the message as a parse error does; the next one is intact.
TEST_F(SmugglingTest, ChunkExtensionsLlhttpRefusesDoNotDesync) {
  for (const char* chunks : {"3;a=b;c\r\nabc\r\n0\r\n\r\n", "3;a=b\nabc\r\n0\r\n\r\n"}) {
    SCOPED_TRACE(chunks);
    RecordingSink sink;
    Http1Parser parser(sink);
    const std::string req =
        std::string("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n") + chunks +
        std::string(kNext);
    parser.onData(Role::kClient, bytesOf(req), 100);
    parser.onData(Role::kServer, bytesOf(std::string(kOk) + std::string(kNextOk)), 200);
    parser.finish(300);
    ASSERT_EQ(sink.records.size(), 2u);
    EXPECT_EQ(sink.records[0].path, "/a");
    EXPECT_EQ(sink.records[0].flags, kFlagGap);
    EXPECT_EQ(sink.records[1].path, "/next");
    EXPECT_EQ(sink.records[1].response_body_bytes, 2u);
    EXPECT_EQ(sink.records[1].flags, 0u);
  }
}

// A response whose length cannot be known: its exchange ends there, and the
// request sent meanwhile is not paired with bytes that might belong to it.
TEST_F(SmugglingTest, ResponseWithDifferentContentLengthsEndsTheExchange) {
  client(std::string("GET /a HTTP/1.1\r\nHost: h\r\n\r\n") + std::string(kNext), 100);
  server("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nAB", 200);
  server(kNextOk, 210);
  parser_.finish(300);
  ASSERT_EQ(records().size(), 3u);
  EXPECT_EQ(records()[0].path, "/a");
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous | kFlagGap);
  EXPECT_EQ(records()[1].path, "/next");
  EXPECT_EQ(records()[1].flags, kFlagNoResponse | kFlagGap);
  EXPECT_EQ(records()[2].status, 200);
  EXPECT_EQ(records()[2].flags, kFlagNoRequest);
}

// A chunk size past 2^64-1: the response is closed with what it had,
// flagged overflow (its body size cannot be known), and the next exchange
// is found at the next status line.
TEST_F(SmugglingTest, ChunkSizeOverflowIsFlagged) {
  client(std::string("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"), 100);
  server(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nabc\r\n0\r\n\r\n",
      200);
  client(kNext, 300);
  server(kNextOk, 400);
  parser_.finish(500);
  ASSERT_EQ(records().size(), 2u);
  EXPECT_EQ(records()[0].status, 200);
  EXPECT_EQ(records()[0].flags, kFlagOverflow | kFlagGap);
  EXPECT_EQ(parser_.stats().length_overflows, 1u);
  expectNextIntact();
}

TEST_F(SmugglingTest, ContentLengthOverflowIsRejectedAndFlagged) {
  exchange("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
           kBadRequest);
  ASSERT_GE(records().size(), 1u);
  EXPECT_EQ(records()[0].status, 400);
  EXPECT_EQ(records()[0].flags, kFlagAmbiguous | kFlagOverflow);
  EXPECT_EQ(parser_.stats().rejected_requests, 1u);
}

}  // namespace
}  // namespace l7tap
