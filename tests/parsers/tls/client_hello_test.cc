#include "parsers/tls/client_hello.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tests/support/client_hello.h"

namespace l7tap {
namespace {

using testing::clientHello;

TEST(ClientHello, ExtractsSniAndAlpn) {
  auto b = clientHello("api.example.test", {"h2", "http/1.1"});
  ClientHelloInfo info;
  ASSERT_EQ(parseClientHello(b, info), TlsParse::kClientHello);
  EXPECT_EQ(info.server_name, "api.example.test");
  EXPECT_EQ(info.alpn, "h2,http/1.1");
}

TEST(ClientHello, NeedsMoreUntilTheRecordIsComplete) {
  auto b = clientHello("a.test", {"h2"});
  for (size_t n = 1; n < b.size(); ++n) {
    ClientHelloInfo info;
    EXPECT_EQ(parseClientHello(std::span(b).first(n), info), TlsParse::kNeedMore) << n;
  }
}

TEST(ClientHello, RejectsNonTls) {
  const std::string get = "GET / HTTP/1.1\r\n";
  ClientHelloInfo info;
  EXPECT_EQ(parseClientHello({reinterpret_cast<const uint8_t*>(get.data()), get.size()}, info),
            TlsParse::kNotTls);
}

TEST(ClientHello, ServerHelloIsOtherHandshake) {
  std::vector<uint8_t> b = {22, 3, 3, 0, 4, 2, 0, 0, 0};
  ClientHelloInfo info;
  EXPECT_EQ(parseClientHello(b, info), TlsParse::kOtherHandshake);
}

TEST(ClientHello, CorruptLengthsNeverReadOutOfBounds) {
  auto good = clientHello("fuzz.test", {"h2"});
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    auto b = good;
    for (int k = 0; k < 4; ++k) b[5 + rng() % (b.size() - 5)] = static_cast<uint8_t>(rng());
    ClientHelloInfo info;
    parseClientHello(b, info);
    EXPECT_LE(info.server_name.size(), 255u);
  }
}

// A first record shorter than the 4-byte handshake header that starts it
// (found by fuzz_tls): nothing past the record is read (ASan checks), and
// there are no fields to fill.
TEST(ClientHello, RecordShorterThanTheHandshakeHeader) {
  for (uint8_t record_len = 1; record_len <= 4; ++record_len) {
    std::vector<uint8_t> b = {22, 3, 1, 0, record_len, 1};
    b.resize(5 + record_len, 0xff);
    b.shrink_to_fit();
    ClientHelloInfo info;
    EXPECT_EQ(parseClientHello(b, info), TlsParse::kClientHello) << int{record_len};
    EXPECT_TRUE(info.server_name.empty());
    EXPECT_TRUE(info.alpn.empty());
  }
}

}  // namespace
}  // namespace l7tap
