#include "parsers/tls/client_hello.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace l7tap {
namespace {

// A minimal but well-formed TLS 1.2 ClientHello with SNI and ALPN.
std::vector<uint8_t> clientHello(const std::string& sni, std::vector<std::string> alpn) {
  auto u16 = [](std::vector<uint8_t>& v, size_t x) {
    v.push_back(static_cast<uint8_t>(x >> 8));
    v.push_back(static_cast<uint8_t>(x));
  };
  std::vector<uint8_t> ext;
  // server_name
  std::vector<uint8_t> sn;
  u16(sn, sni.size() + 3);
  sn.push_back(0);
  u16(sn, sni.size());
  sn.insert(sn.end(), sni.begin(), sni.end());
  u16(ext, 0);
  u16(ext, sn.size());
  ext.insert(ext.end(), sn.begin(), sn.end());
  // ALPN
  std::vector<uint8_t> al, list;
  for (auto& p : alpn) {
    list.push_back(static_cast<uint8_t>(p.size()));
    list.insert(list.end(), p.begin(), p.end());
  }
  u16(al, list.size());
  al.insert(al.end(), list.begin(), list.end());
  u16(ext, 16);
  u16(ext, al.size());
  ext.insert(ext.end(), al.begin(), al.end());

  std::vector<uint8_t> hello = {3, 3};
  hello.resize(2 + 32, 7);
  hello.push_back(0);  // session id
  u16(hello, 2);       // cipher suites
  hello.push_back(0x13);
  hello.push_back(0x01);
  hello.push_back(1);  // compression methods
  hello.push_back(0);
  u16(hello, ext.size());
  hello.insert(hello.end(), ext.begin(), ext.end());

  std::vector<uint8_t> hs = {1, 0, static_cast<uint8_t>(hello.size() >> 8),
                             static_cast<uint8_t>(hello.size())};
  hs.insert(hs.end(), hello.begin(), hello.end());
  std::vector<uint8_t> rec = {22, 3, 1};
  u16(rec, hs.size());
  rec.insert(rec.end(), hs.begin(), hs.end());
  return rec;
}

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
