#include "reassembly/segment.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace l7tap {

void setIpv4(uint8_t (&dst)[16], const uint8_t* ipv4) {
  std::memset(dst, 0, 10);
  dst[10] = 0xff;
  dst[11] = 0xff;
  std::memcpy(dst + 12, ipv4, 4);
}

size_t formatAddress(const uint8_t* addr, uint8_t family, char* buf) {
  if (family == 4) {
    // Every record has two addresses: dotted quads by hand, not inet_ntop.
    char* p = buf;
    for (int i = 12; i < 16; ++i) {
      if (i > 12) *p++ = '.';
      p = std::to_chars(p, buf + INET6_ADDRSTRLEN, addr[i]).ptr;
    }
    *p = '\0';
    return static_cast<size_t>(p - buf);
  }
  inet_ntop(AF_INET6, addr, buf, INET6_ADDRSTRLEN);
  return std::strlen(buf);
}

std::string formatAddress(const uint8_t* addr, uint8_t family) {
  char buf[INET6_ADDRSTRLEN];
  return std::string(buf, formatAddress(addr, family, buf));
}

}  // namespace l7tap
