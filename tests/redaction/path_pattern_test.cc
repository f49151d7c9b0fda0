// --redact-path patterns: how they read, what they redact, and that records
// from both parsers and from a replayed capture carry the result.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "daemon/json_sink.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"
#include "parsers/common/records.h"
#include "parsers/http1/http1_parser.h"
#include "redaction/redaction.h"
#include "tests/parsers/http2/h2_test_util.h"

namespace l7tap {
namespace {

TEST(ParsePathPattern, Accepts) {
  for (const char* p : {"/reset-password/*", "/users/*/tokens/*", "/files/**", "/*", "/**",
                        "/a/*/b/**", "/v1/keys/*/%2F", "/a.b/~c/*"}) {
    std::string error;
    EXPECT_TRUE(parsePathPattern(p, error)) << p << ": " << error;
  }
}

TEST(ParsePathPattern, RejectsWithOneLineNamingTheFlag) {
  struct Case {
    std::string pattern, error;
  };
  const Case cases[] = {
      {"x", "--redact-path needs a pattern starting with '/', not 'x'"},
      {"", "--redact-path needs a pattern starting with '/', not ''"},
      {"users/*", "--redact-path needs a pattern starting with '/', not 'users/*'"},
      {"/", "--redact-path '/': empty segment (no '//', no trailing '/')"},
      {"/a//*", "--redact-path '/a//*': empty segment (no '//', no trailing '/')"},
      {"/a/*/", "--redact-path '/a/*/': empty segment (no '//', no trailing '/')"},
      {"/a/**/b", "--redact-path '/a/**/b': '**' must be the last segment"},
      {"/a/**/*", "--redact-path '/a/**/*': '**' must be the last segment"},
      {"/a/x*", "--redact-path '/a/x*': '*' and '**' stand for whole segments only"},
      {"/a/***", "--redact-path '/a/***': '*' and '**' stand for whole segments only"},
      {"/users/{id}", "--redact-path '/users/{id}': use '*' for a variable segment, not '{id}'"},
      {"/a/*?x=1",
       "--redact-path '/a/*?x=1': a pattern matches the path only, no '?' (the query is always "
       "redacted)"},
      {"/REDACTED/*",
       "--redact-path '/REDACTED/*': 'REDACTED' is what redaction writes, not a literal segment"},
      {"/a/b", "--redact-path '/a/b': no '*' or '**': it would redact nothing"},
      // Control bytes are shown escaped: the message stays one line.
      {"/a/\n*\x7f", "--redact-path '/a/\\x0a*\\x7f': '*' and '**' stand for whole segments only"},
      {"\t", "--redact-path needs a pattern starting with '/', not '\\x09'"},
  };
  for (const Case& c : cases) {
    std::string error;
    EXPECT_FALSE(parsePathPattern(c.pattern, error)) << c.pattern;
    EXPECT_EQ(error, c.error);
    EXPECT_EQ(error.find('\n'), std::string::npos);
  }
}

TEST(ParsePathPattern, Bounds) {
  std::string deep;
  for (size_t i = 0; i < RedactionLimits::kMaxPatternSegments; ++i) deep += "/*";
  std::string error;
  EXPECT_TRUE(parsePathPattern(deep, error)) << error;
  EXPECT_FALSE(parsePathPattern(deep + "/*", error));
  EXPECT_EQ(error, "--redact-path '" + deep + "/*': more than 32 segments");

  const std::string long_pattern = "/*/" + std::string(RedactionLimits::kMaxPatternBytes, 'a');
  EXPECT_FALSE(parsePathPattern(long_pattern, error));
  EXPECT_EQ(error, "--redact-path '" + long_pattern.substr(0, 64) + "': longer than 2048 bytes");

  std::vector<std::string> many(RedactionLimits::kMaxPathPatterns, "/a/*");
  EXPECT_TRUE(checkPathPatterns(many, error)) << error;
  many.push_back("/b/*");
  EXPECT_FALSE(checkPathPatterns(many, error));
  EXPECT_EQ(error, "--redact-path: at most 64 patterns, not 65");
  EXPECT_FALSE(checkPathPatterns({"/a/*", "b"}, error));
  EXPECT_EQ(error, "--redact-path needs a pattern starting with '/', not 'b'");
}

struct PathCase {
  const char* name;
  std::string in, out;
};

PathRedaction redactTwice(const PathRedactor& r, std::string& path, size_t max = 2048) {
  const PathRedaction first = r.redact(path, max);
  std::string again = path;
  const PathRedaction second = r.redact(again, max);
  EXPECT_EQ(again, path) << "not idempotent";
  EXPECT_FALSE(second.changed);
  EXPECT_FALSE(second.truncated);
  return first;
}

TEST(PathRedactor, Table) {
  const PathRedactor r({"/reset-password/*", "/users/*/tokens/*", "/files/**"});
  ASSERT_EQ(r.size(), 3u);
  const PathCase cases[] = {
      {"one segment", "/reset-password/abc123", "/reset-password/REDACTED"},
      {"too few segments", "/reset-password", "/reset-password"},
      {"too many segments", "/reset-password/abc/x", "/reset-password/abc/x"},
      {"an empty segment stays empty", "/reset-password/", "/reset-password/"},
      {"two wildcards", "/users/42/tokens/t0k3n", "/users/REDACTED/tokens/REDACTED"},
      {"a literal differs", "/users/42/keys/t0k3n", "/users/42/keys/t0k3n"},
      {"literals are case-sensitive", "/Users/42/tokens/x", "/Users/42/tokens/x"},
      {"nothing is decoded", "/users/%34%32/tokens/a%2Fb", "/users/REDACTED/tokens/REDACTED"},
      {"an encoded slash is no separator", "/reset-password/a%2Fb", "/reset-password/REDACTED"},
      {"'**' redacts every remaining segment", "/files/a/b/c.txt",
       "/files/REDACTED/REDACTED/REDACTED"},
      {"'**' needs one segment", "/files", "/files"},
      {"'**' keeps empty segments", "/files//x/", "/files//REDACTED/"},
      {"a leading '//' is one more segment", "//reset-password/x", "//reset-password/x"},
      {"unmatched", "/api/v1/users/42", "/api/v1/users/42"},
      {"root", "/", "/"},
      {"the query is not the path's", "/reset-password/x?token=1",
       "/reset-password/REDACTED?token=1"},
      {"already redacted", "/users/REDACTED/tokens/REDACTED", "/users/REDACTED/tokens/REDACTED"},
      {"absolute form", "http://h:8080/users/1/tokens/2",
       "http://h:8080/users/REDACTED/tokens/REDACTED"},
      {"absolute form, https and v6", "https://[::1]/files/x", "https://[::1]/files/REDACTED"},
      {"absolute form without a path", "http://h", "http://h"},
      {"absolute form, query only", "http://h?/files/x", "http://h?/files/x"},
      {"not a scheme", "/x://h/files/a", "/x://h/files/a"},
      {"CONNECT's authority", "h:443", "h:443"},
      {"asterisk form", "*", "*"},
      {"empty", "", ""},
      {"non-UTF-8 bytes", std::string("/files/\xff\x00z", 10), "/files/REDACTED"},
  };
  for (const PathCase& c : cases) {
    std::string path = c.in;
    const PathRedaction res = redactTwice(r, path);
    EXPECT_EQ(path, c.out) << c.name;
    EXPECT_EQ(res.changed, c.in != c.out) << c.name;
    EXPECT_FALSE(res.truncated) << c.name;
  }
}

TEST(PathRedactor, EveryMatchingPatternApplies) {
  // Each matches the path as sent; the union is redacted, and the result is
  // matched by neither any more (their literals are gone), so it is stable.
  const PathRedactor r({"/a/*/c", "/a/b/*"});
  std::string path = "/a/b/c";
  EXPECT_TRUE(redactTwice(r, path).changed);
  EXPECT_EQ(path, "/a/REDACTED/REDACTED");
}

TEST(PathRedactor, KeepsOnlyValidPatternsUpToTheBound) {
  EXPECT_TRUE(PathRedactor().empty());
  EXPECT_TRUE(PathRedactor(std::vector<std::string>{}).empty());
  EXPECT_EQ(PathRedactor({"x", "/a/b", "/a//*", "/a/*"}).size(), 1u);
  std::vector<std::string> many;
  for (size_t i = 0; i < RedactionLimits::kMaxPathPatterns + 10; ++i) {
    many.push_back("/p" + std::to_string(i) + "/*");
  }
  const PathRedactor r(many);
  EXPECT_EQ(r.size(), RedactionLimits::kMaxPathPatterns);
  std::string last_kept = "/p63/x", first_dropped = "/p64/x";
  EXPECT_TRUE(r.redact(last_kept).changed);
  EXPECT_FALSE(r.redact(first_dropped).changed);
  // Nothing to redact: the path is not even copied.
  std::string untouched = "/p1";
  const char* data = untouched.data();
  EXPECT_FALSE(r.redact(untouched).changed);
  EXPECT_EQ(untouched.data(), data);
}

TEST(PathRedactor, DeepPaths) {
  std::string deepest;
  for (size_t i = 0; i < RedactionLimits::kMaxPatternSegments; ++i) deepest += "/*";
  const PathRedactor r({deepest, "/files/**"});
  std::string exact;
  for (size_t i = 0; i < RedactionLimits::kMaxPatternSegments; ++i) exact += "/s";
  std::string expected;
  for (size_t i = 0; i < RedactionLimits::kMaxPatternSegments; ++i) expected += "/REDACTED";
  EXPECT_TRUE(redactTwice(r, exact).changed);
  EXPECT_EQ(exact, expected);

  // One segment more: the 32-segment pattern no longer matches.
  std::string one_more = expected + "/s";
  std::string kept = one_more;
  EXPECT_FALSE(r.redact(kept).changed);
  EXPECT_EQ(kept, one_more);

  // `**` reaches segments past those a pattern can name.
  std::string files = "/files";
  std::string files_redacted = "/files";
  for (int i = 0; i < 100; ++i) {
    files += "/f" + std::to_string(i);
    files_redacted += "/REDACTED";
  }
  EXPECT_TRUE(redactTwice(r, files).changed);
  EXPECT_EQ(files, files_redacted);
}

TEST(PathRedactor, GrowthBeyondTheBoundRedactsTheWholePath) {
  const PathRedactor r({"/files/**"});
  std::string path = "/files";
  while (path.size() < 2000) path += "/a";
  const PathRedaction res = redactTwice(r, path, 2048);
  EXPECT_TRUE(res.changed);
  EXPECT_TRUE(res.truncated);
  EXPECT_EQ(path, "/REDACTED");

  std::string target = "http://h:1/files/a/b/c/d";
  EXPECT_TRUE(redactTwice(r, target, 30).truncated);
  EXPECT_EQ(target, "http://h:1/REDACTED");

  // Exactly at the bound: kept whole.
  std::string fits = "/files/a";
  EXPECT_FALSE(r.redact(fits, 15).truncated);
  EXPECT_EQ(fits, "/files/REDACTED");
}

TEST(RedactionPolicy, CompilesOncePerObject) {
  RedactionPolicy policy;
  policy.path_patterns = {"/users/*"};
  const PathRedactor& first = policy.pathRedactor();
  EXPECT_EQ(&policy.pathRedactor(), &first);
  EXPECT_EQ(first.size(), 1u);

  // A copy compiles its own, so it can be changed before its first use.
  RedactionPolicy copy = policy;
  copy.path_patterns.push_back("/files/**");
  EXPECT_EQ(copy.pathRedactor().size(), 2u);
  EXPECT_EQ(policy.pathRedactor().size(), 1u);

  RedactionPolicy assigned;
  EXPECT_TRUE(assigned.pathRedactor().empty());
  assigned = copy;
  EXPECT_EQ(assigned.pathRedactor().size(), 2u);

  RedactionPolicy moved = std::move(copy);
  EXPECT_EQ(moved.pathRedactor().size(), 2u);
  EXPECT_TRUE(defaultRedactionPolicy().pathRedactor().empty());

  // Patterns changed after use, even in place, are compiled again; the
  // older form stays readable until the policy goes.
  policy.path_patterns[0] = "/c/*";
  std::string path = "/c/x";
  EXPECT_TRUE(policy.pathRedactor().redact(path).changed);
  EXPECT_NE(&policy.pathRedactor(), &first);
  EXPECT_EQ(first.size(), 1u);
  std::string old_path = "/users/x";
  EXPECT_TRUE(first.redact(old_path).changed);
}

HttpRecord request(const char* method, const char* path, const char* query, const char* host) {
  HttpRecord r;
  r.method = method;
  r.path = path;
  r.query = query;
  r.host = host;
  return r;
}

void redactTwice(HttpRecord& r, const RedactionPolicy& policy, size_t max = 2048) {
  r.redact(policy, max);
  HttpRecord again = r;
  again.redact(policy, max);
  EXPECT_EQ(again.path, r.path);
  EXPECT_EQ(again.query, r.query);
  EXPECT_EQ(again.host, r.host);
  EXPECT_EQ(again.flags, r.flags);
}

TEST(HttpRecordRedact, PathWithQueryAndUserinfo) {
  RedactionPolicy policy;
  policy.path_patterns = {"/users/*/tokens/*"};
  HttpRecord r = request("GET", "http://alice:pa55@h/users/42/tokens/t0k", "token=s3cr3t", "u@h");
  redactTwice(r, policy);
  EXPECT_EQ(r.path, "http://h/users/REDACTED/tokens/REDACTED");
  EXPECT_EQ(r.query, "token=REDACTED");
  EXPECT_EQ(r.host, "h");
  EXPECT_EQ(r.flags, kFlagRedacted);

  // The path alone is enough for the flag; --keep-query does not keep it.
  policy.keep_query = true;
  HttpRecord p = request("GET", "/users/42/tokens/t0k", "token=s3cr3t", "h");
  redactTwice(p, policy);
  EXPECT_EQ(p.path, "/users/REDACTED/tokens/REDACTED");
  EXPECT_EQ(p.query, "token=s3cr3t");
  EXPECT_EQ(p.flags, kFlagRedacted);

  HttpRecord none = request("GET", "/users/42", "", "h");
  redactTwice(none, policy);
  EXPECT_EQ(none.path, "/users/42");
  EXPECT_EQ(none.flags, 0u);
}

TEST(HttpRecordRedact, ConnectAuthorityIsNoPath) {
  RedactionPolicy policy;
  policy.path_patterns = {"/**", "/*"};
  HttpRecord r = request("CONNECT", "u:p@h:443", "", "u:p@h:443");
  redactTwice(r, policy);
  EXPECT_EQ(r.path, "h:443");
  EXPECT_EQ(r.host, "h:443");
  EXPECT_EQ(r.flags, kFlagRedacted);
  // An extended CONNECT (RFC 8441) has a path: patterns apply, and an '@'
  // in it is no user info.
  policy.path_patterns = {"/chat/*"};
  HttpRecord ws = request("CONNECT", "/chat/a@b", "", "h");
  redactTwice(ws, policy);
  EXPECT_EQ(ws.path, "/chat/REDACTED");
  // What is left of an authority after its user info is a path: redacted as
  // one, so that a second redaction finds nothing to do.
  HttpRecord odd = request("CONNECT", "u:p@/chat/x", "", "h");
  redactTwice(odd, policy);
  EXPECT_EQ(odd.path, "/chat/REDACTED");
  HttpRecord at = request("CONNECT", "/room/a@b", "", "h");
  redactTwice(at, policy);
  EXPECT_EQ(at.path, "/room/a@b");
  EXPECT_EQ(at.flags, 0u);
}

TEST(HttpRecordRedact, PathPastTheParsersBoundIsFlaggedTruncated) {
  RedactionPolicy policy;
  policy.path_patterns = {"/f/**"};
  std::string path = "/f";
  while (path.size() < 500) path += "/a";
  HttpRecord r = request("GET", path.c_str(), "", "h");
  redactTwice(r, policy, 512);
  EXPECT_EQ(r.path, "/REDACTED");
  EXPECT_EQ(r.flags, kFlagRedacted | kFlagTruncated);
}

class Records final : public ExchangeSink {
 public:
  void onExchange(const Record& record) override {
    records.push_back(static_cast<const HttpRecord&>(record));
  }
  std::vector<HttpRecord> records;
};

std::span<const uint8_t> bytesOf(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(PathRedactionInParsers, Http1) {
  RedactionPolicy policy;
  policy.path_patterns = {"/reset-password/*"};
  Records sink;
  Http1Parser parser(sink, {}, &policy);
  parser.onData(Role::kClient,
                bytesOf("POST /reset-password/s3cr3t?token=x HTTP/1.1\r\nHost: h\r\n"
                        "Content-Length: 0\r\n\r\n"
                        "GET http://h/reset-password/s3cr3t HTTP/1.1\r\nHost: h\r\n\r\n"),
                1);
  parser.onData(Role::kServer,
                bytesOf("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), 2);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].path, "/reset-password/REDACTED");
  EXPECT_EQ(sink.records[0].query, "token=REDACTED");
  EXPECT_EQ(sink.records[1].path, "http://h/reset-password/REDACTED");
  for (const HttpRecord& r : sink.records) EXPECT_EQ(r.flags, kFlagRedacted);
}

TEST(PathRedactionInParsers, Http2Path) {
  using namespace h2test;
  RedactionPolicy policy;
  policy.path_patterns = {"/users/*/tokens/*"};
  Records sink;
  Http2Parser parser(sink, {}, &policy);
  Deflater client, server;
  const Bytes request = cat({preface(), settings({}),
                             headers(1,
                                     client.encode({{":method", "GET"},
                                                    {":scheme", "http"},
                                                    {":authority", "u:p@h"},
                                                    {":path", "/users/42/tokens/t0k?x=1"}}),
                                     kEndHeaders | kEndStream)});
  const Bytes response = cat(
      {settings({}), headers(1, server.encode({{":status", "200"}}), kEndHeaders | kEndStream)});
  parser.onData(Role::kClient, request, 1);
  parser.onData(Role::kServer, response, 2);
  ASSERT_EQ(sink.records.size(), 1u);
  const HttpRecord& r = sink.records[0];
  EXPECT_EQ(r.path, "/users/REDACTED/tokens/REDACTED");
  EXPECT_EQ(r.query, "x=REDACTED");
  EXPECT_EQ(r.host, "h");
  EXPECT_EQ(r.flags, kFlagRedacted);
}

// The curl fixtures (tests/daemon/redaction_fixture_test.cc) with `/*`:
// their one path segment, `small.txt`, is in no JSON line, whatever the
// window or capture control; origin and absolute forms both.
TEST(PathRedactionReplay, SegmentInNoRecord) {
  struct Setting {
    uint32_t window;
    bool capture_control;
  };
  for (const char* fixture : {"http1-redaction", "h2c-redaction"}) {
    for (const Setting s :
         {Setting{0, false}, Setting{256, false}, Setting{0, true}, Setting{256, true}}) {
      SCOPED_TRACE(std::string(fixture) + " window " + std::to_string(s.window) +
                   (s.capture_control ? " capture control" : ""));
      const int fd = memfd_create("l7tap-path-redaction", 0);
      ASSERT_GE(fd, 0);
      {
        JsonLinesSink sink(fd, JsonLinesSink::Flush::kBuffered);
        PipelineConfig config;
        config.redaction.path_patterns = {"/*"};
        Pipeline pipeline(sink, config);
        Replay replay(pipeline, {s.window, s.capture_control});
        PcapSource source;
        std::string error;
        ASSERT_TRUE(
            source.open(std::string(L7TAP_SOURCE_DIR) + "/pcaps/" + fixture + ".pcap", error))
            << error;
        ASSERT_TRUE(replay.run(source, error)) << error;
        pipeline.finish();
        ASSERT_TRUE(sink.flush());
      }
      std::string json(static_cast<size_t>(lseek(fd, 0, SEEK_END)), '\0');
      ASSERT_EQ(pread(fd, json.data(), json.size(), 0), static_cast<ssize_t>(json.size()));
      close(fd);
      size_t http = 0;
      for (size_t at = 0; (at = json.find("\"type\":\"http\"", at)) != std::string::npos; ++at) {
        ++http;
      }
      EXPECT_EQ(http, 2u) << json;
      EXPECT_EQ(json.find("small.txt"), std::string::npos) << json;
      EXPECT_EQ(json.find("s3cr3t"), std::string::npos) << json;
      EXPECT_NE(json.find("/REDACTED\""), std::string::npos) << json;
    }
  }
}

}  // namespace
}  // namespace l7tap
