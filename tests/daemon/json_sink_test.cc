#include "daemon/json_sink.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "daemon/record_schema.h"
#include "parsers/common/records.h"

namespace l7tap {
namespace {

std::string escaped(std::string_view s) {
  std::string out;
  appendJsonEscaped(out, s);
  return out;
}

TEST(JsonEscape, PlainQuotesAndControls) {
  EXPECT_EQ(escaped("abc"), "abc");
  EXPECT_EQ(escaped("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(escaped("\r\n\t"), "\\r\\n\\t");
  EXPECT_EQ(escaped(std::string_view("\0\x01\x7f", 3)), "\\u0000\\u0001\\u007f");
}

TEST(JsonEscape, ValidUtf8PassesInvalidBytesAreHexEscaped) {
  EXPECT_EQ(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(escaped("\xff\xfe"), "\\\\xff\\\\xfe");
  EXPECT_EQ(escaped("\xc3"), "\\\\xc3");                        // cut sequence
  EXPECT_EQ(escaped("\xc0\xaf"), "\\\\xc0\\\\xaf");             // overlong '/'
  EXPECT_EQ(escaped("\xed\xa0\x80"), "\\\\xed\\\\xa0\\\\x80");  // surrogate
}

TEST(JsonNumbers, DecimalAtEveryLengthBoundary) {
  // Each side of the 8- and 16-digit splits, and the extremes.
  for (uint64_t v :
       {uint64_t{0}, uint64_t{9}, uint64_t{10}, uint64_t{99999999}, uint64_t{100000000},
        uint64_t{100000001}, uint64_t{1000000000000000}, uint64_t{9999999999999999},
        uint64_t{10000000000000000}, uint64_t{1795477761242487000}, UINT64_MAX}) {
    char buf[20];
    EXPECT_EQ(std::string(buf, writeDecimal(buf, v)), std::to_string(v));
  }
}

TEST(JsonSink, HttpRecordKeysInSchemaOrder) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  JsonLinesSink sink(fileno(f), JsonLinesSink::Flush::kBuffered);
  ConnectionInfo c;
  c.id = 7;
  c.family = 4;
  c.addr[0] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  c.addr[1] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2};
  c.port[0] = 40000;
  c.port[1] = 80;
  HttpRecord r;
  r.method = "GET";
  r.path = "/a\"b";
  r.version = "1.1";
  r.status = 200;
  r.request_start_ns = 1'700'000'000'000'000'000;
  r.response_end_ns = r.request_start_ns + 1'500'000;
  r.flags = kFlagGap;
  sink.onRecord(c, r);
  ASSERT_TRUE(sink.flush());
  EXPECT_EQ(sink.recordsWritten(), 1u);
  std::string line(4096, '\0');
  std::rewind(f);
  line.resize(std::fread(line.data(), 1, line.size(), f));
  std::fclose(f);
  EXPECT_EQ(line,
            "{\"type\":\"http\",\"time\":\"2023-11-14T22:13:20.000000000Z\","
            "\"l7tap.connection_id\":7,\"network.protocol.name\":\"http\","
            "\"network.protocol.version\":\"1.1\",\"http.request.method\":\"GET\","
            "\"url.path\":\"/a\\\"b\",\"http.response.status_code\":200,"
            "\"client.address\":\"10.0.0.1\",\"client.port\":40000,"
            "\"server.address\":\"10.0.0.2\",\"server.port\":80,\"network.type\":\"ipv4\","
            "\"l7tap.request.header_bytes\":0,\"http.request.body.size\":0,"
            "\"l7tap.response.header_bytes\":0,\"http.response.body.size\":0,"
            "\"l7tap.timing.request_start_ns\":1700000000000000000,"
            "\"l7tap.timing.response_end_ns\":1700000000001500000,"
            "\"l7tap.duration_ms\":1.500000,\"l7tap.flags\":[\"gap\"]}\n");
}

// A file that cannot grow past a limit (a full disk, as RLIMIT_FSIZE makes
// it): the sink stops at the first failed write and the file ends with the
// last complete record, never a cut one. In a child process, for the limit.
TEST(JsonSink, FullDiskLeavesOnlyCompleteRecords) {
  char path[] = "/tmp/l7tap-json-sink-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  constexpr rlim_t kLimit = 5000;  // bytes: a few records, then a cut one
  ConnectionInfo c;
  c.id = 1;
  c.family = 4;
  HttpRecord r;
  r.method = "GET";
  r.path = "/x";
  r.status = 200;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{kLimit, kLimit};
    setrlimit(RLIMIT_FSIZE, &limit);
    JsonLinesSink sink(fd, JsonLinesSink::Flush::kBuffered);
    for (int i = 0; i < 1000; ++i) sink.onRecord(c, r);
    const bool failed = !sink.flush() && sink.error() == EFBIG;
    _exit(failed && sink.recordsWritten() > 0 && sink.recordsLost() > 0
              ? static_cast<int>(sink.recordsWritten())
              : 255);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  close(fd);
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  unlink(path);
  ASSERT_TRUE(WIFEXITED(status));
  const int written = WEXITSTATUS(status);
  ASSERT_NE(written, 255) << "the sink did not report the failed write";
  const std::string text = content.str();
  ASSERT_FALSE(text.empty());
  EXPECT_LE(text.size(), kLimit);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), written);
}

}  // namespace
}  // namespace l7tap
