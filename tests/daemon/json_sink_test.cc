#include "daemon/json_sink.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "daemon/record_schema.h"

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

TEST(JsonSink, HttpRecordKeysInSchemaOrder) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  JsonLinesSink sink(f);
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
  sink.onHttp(c, r);
  fclose(f);
  const std::string line(buf, len);
  free(buf);
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

}  // namespace
}  // namespace l7tap
