// The HTTP/1 resync routine: boundary matching and scanning across calls.
#include "parsers/http1/resync.h"

#include <gtest/gtest.h>

#include <string>

namespace l7tap::http1 {
namespace {

TEST(MatchRequestLine, AcceptsRequestLines) {
  EXPECT_EQ(matchRequestLine("GET / HTTP/1.1\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("POST /a?b=c HTTP/1.0\r\nHost: x\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("M-SEARCH * HTTP/1.1\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("CONNECT example.com:443 HTTP/1.1\r\n", 100), LineMatch::kYes);
}

// Any RFC 9110 token is a method: WebDAV's, extensions, lower case (methods
// are case-sensitive: `get` is not GET, but a request all the same).
TEST(MatchRequestLine, AcceptsAnyTokenAsMethod) {
  EXPECT_EQ(matchRequestLine("get / HTTP/1.1\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("GETX / HTTP/1.1\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("BREW /pot HTTP/1.1\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("X-CUSTOM-1 /a HTTP/1.0\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("X / HTTP/1.1\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("!#$%&'*+-.^_`|~09az / HTTP/1.1\r\n", 100), LineMatch::kYes);
  const std::string longest(kMaxMethodBytes, 'M');
  EXPECT_EQ(matchRequestLine(longest + " / HTTP/1.1\r\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine(longest + "M / HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine(longest + "M", 100), LineMatch::kNo);
}

TEST(MatchRequestLine, RejectsNonTokenMethods) {
  EXPECT_EQ(matchRequestLine("GE\"T / HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("GE(T / HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("B\x80W / HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("BREW:/ HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine(" BREW / HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("BREW\t/ HTTP/1.1\r\n", 100), LineMatch::kNo);
  // A word at a line start is no request line without the rest of one.
  EXPECT_EQ(matchRequestLine("hello world\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("BREW /a b HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("BREW /a\r\n", 100), LineMatch::kNo);
}

TEST(MatchRequestLine, RejectsOtherLines) {
  EXPECT_EQ(matchRequestLine("GET / HTTP/2.0\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("PRI * HTTP/2.0\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("GET  HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("GET /\x01 HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("Host: GET / HTTP/1.1\r\n", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("GET /very/long HTTP/1.1\r\n", 10), LineMatch::kNo);
}

// nginx and llhttp take a bare LF as the end of a request line: a server
// answers such a request, so it is a boundary too.
TEST(MatchRequestLine, AcceptsABareLfLineEnd) {
  EXPECT_EQ(matchRequestLine("GET / HTTP/1.1\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("GET / HTTP/1.0\n", 100), LineMatch::kYes);
  EXPECT_EQ(matchRequestLine("GET / HTTP/1.2\n", 100), LineMatch::kNo);
}

TEST(MatchRequestLine, AsksForMoreOnPrefixes) {
  EXPECT_EQ(matchRequestLine("", 100), LineMatch::kNeedMore);
  EXPECT_EQ(matchRequestLine("PO", 100), LineMatch::kNeedMore);
  EXPECT_EQ(matchRequestLine("GET /abc HTT", 100), LineMatch::kNeedMore);
  EXPECT_EQ(matchRequestLine("GET /abc HTTP/1.1\r", 100), LineMatch::kNeedMore);
  EXPECT_EQ(matchRequestLine("XY", 100), LineMatch::kNeedMore);  // maybe `XY / HTTP/1.1`
  EXPECT_EQ(matchRequestLine("BREW /po", 100), LineMatch::kNeedMore);
  EXPECT_EQ(matchRequestLine("X(", 100), LineMatch::kNo);
  EXPECT_EQ(matchRequestLine("GET /abcdefghijkl", 10), LineMatch::kNo);
}

TEST(MatchStatusLine, Matches) {
  EXPECT_EQ(matchStatusLine("HTTP/1.1 200 OK\r\n"), LineMatch::kYes);
  EXPECT_EQ(matchStatusLine("HTTP/1.0 404"), LineMatch::kYes);
  EXPECT_EQ(matchStatusLine("HTTP/1.1 20"), LineMatch::kNeedMore);
  EXPECT_EQ(matchStatusLine("HTT"), LineMatch::kNeedMore);
  EXPECT_EQ(matchStatusLine("HTTP/2 200 "), LineMatch::kNo);
  EXPECT_EQ(matchStatusLine("HTTP/1.1 2x0"), LineMatch::kNo);
  EXPECT_EQ(matchStatusLine("xHTTP/1.1 200"), LineMatch::kNo);
}

TEST(ResyncScanner, FindsBoundaryAfterGarbage) {
  ResyncScanner s(Role::kClient, 100, 1 << 16);
  const std::string in = "tail of a body\r\nHost: x\r\nGET /x HTTP/1.1\r\n\r\n";
  const auto r = s.scan(in);
  ASSERT_TRUE(r.found);
  EXPECT_TRUE(r.replay.empty());
  EXPECT_EQ(r.input_offset, in.find("GET"));
  EXPECT_EQ(r.dropped, in.find("GET"));
}

TEST(ResyncScanner, BeginningOfInputIsALineStart) {
  ResyncScanner s(Role::kServer, 100, 1 << 16);
  const auto r = s.scan("HTTP/1.1 200 OK\r\n\r\n");
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.input_offset, 0u);
  ResyncScanner t(Role::kServer, 100, 1 << 16);
  t.start(false);
  const auto u = t.scan("HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_FALSE(u.found);
}

TEST(ResyncScanner, MidLineMethodIsNoBoundary) {
  ResyncScanner s(Role::kClient, 100, 1 << 16);
  const auto r = s.scan("xx GET / HTTP/1.1\r\nmore");
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.dropped, 19u);
  EXPECT_EQ(s.heldBytes(), 4u);  // `more` may begin a request line
}

TEST(ResyncScanner, BoundarySplitAcrossCalls) {
  const std::string stream = "garbage\r\nGET /split/path HTTP/1.1\r\nHost: h\r\n\r\n";
  const size_t boundary = stream.find("GET");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    ResyncScanner s(Role::kClient, 100, 1 << 16);
    auto r = s.scan(std::string_view(stream).substr(0, cut));
    std::string replayed;
    size_t resumed_at = 0;
    if (r.found) {
      resumed_at = r.input_offset;
    } else {
      r = s.scan(std::string_view(stream).substr(cut));
      ASSERT_TRUE(r.found) << cut;
      replayed = std::string(r.replay);
      resumed_at = cut + r.input_offset;
    }
    EXPECT_EQ(replayed + stream.substr(resumed_at), stream.substr(boundary)) << cut;
  }
}

TEST(ResyncScanner, LineTooLongForTheTailIsDropped) {
  ResyncScanner s(Role::kClient, 40, 1 << 16);
  auto r = s.scan("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_FALSE(r.found);
  EXPECT_GT(s.heldBytes(), 0u);
  r = s.scan("aaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nGET / HTTP/1.1\r\n");
  ASSERT_TRUE(r.found);
  EXPECT_TRUE(r.replay.empty());
  EXPECT_EQ(r.input_offset, 35u);
}

TEST(ResyncScanner, GivesUpAfterScanBound) {
  ResyncScanner s(Role::kServer, 100, 64);
  std::string in;
  for (int i = 0; i < 20; ++i) in += "xxxxxxxxx\n";
  in += "HTTP/1.1 200 OK\r\n";
  auto r = s.scan(in);
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.dropped, in.size());
  // The next bytes are scanned again (not at a line start: they follow dropped bytes).
  r = s.scan("\nHTTP/1.1 204 No Content\r\n");
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.input_offset, 1u);
}

TEST(ResyncScanner, SegmentStartIsACandidate) {
  ResyncScanner s(Role::kServer, 100, 1 << 16);
  auto r = s.scan("end of a body without newline");
  EXPECT_FALSE(r.found);
  r = s.scan("HTTP/1.1 200 OK\r\n", false);
  EXPECT_FALSE(r.found);
  r = s.scan("HTTP/1.1 200 OK\r\n", true);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.input_offset, 0u);
}

TEST(ResyncScanner, HeldLineContinuesIntoTheNextSegment) {
  ResyncScanner s(Role::kServer, 100, 1 << 16);
  auto r = s.scan("body\nHTTP/1.");
  EXPECT_FALSE(r.found);
  EXPECT_EQ(r.dropped, 5u);
  r = s.scan("1 404 Not Found\r\n", true);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.replay, "HTTP/1.");
  EXPECT_EQ(r.input_offset, 0u);
}

TEST(ResyncScanner, FindsAnUnknownMethodMidStream) {
  ResyncScanner s(Role::kClient, 100, 1 << 16);
  const std::string in = "rest of a body\r\nBREW /pot HTTP/1.1\r\n\r\n";
  const auto r = s.scan(in);
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.input_offset, in.find("BREW"));
}

// A request line split across calls comes back whole, so its method token
// is read in one piece.
TEST(ResyncScanner, HandsBackAHeldRequestLineWhole) {
  ResyncScanner s(Role::kClient, 100, 1 << 16);
  auto r = s.scan("body\r\nX-CUS");
  EXPECT_FALSE(r.found);
  r = s.scan("TOM-1 /a HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_TRUE(r.found);
  EXPECT_EQ(r.replay, "X-CUSTOM-1 /a HTTP/1.1\r\n");
  EXPECT_EQ(r.input_offset, std::string_view("TOM-1 /a HTTP/1.1\r\n").size());
}

}  // namespace
}  // namespace l7tap::http1
