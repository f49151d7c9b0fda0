// Test input shared by the TLS tests: a well-formed ClientHello record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace l7tap::testing {

/// A minimal but well-formed TLS 1.2 ClientHello with SNI and ALPN.
inline std::vector<uint8_t> clientHello(const std::string& sni,
                                        const std::vector<std::string>& alpn) {
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
  for (const auto& p : alpn) {
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

}  // namespace l7tap::testing
