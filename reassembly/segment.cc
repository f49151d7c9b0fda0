#include "reassembly/segment.h"

#include <arpa/inet.h>

#include <cstring>

namespace l7tap {

void setIpv4(uint8_t (&dst)[16], const uint8_t* ipv4) {
  std::memset(dst, 0, 10);
  dst[10] = 0xff;
  dst[11] = 0xff;
  std::memcpy(dst + 12, ipv4, 4);
}

std::string formatAddress(const uint8_t* addr, uint8_t family) {
  char buf[INET6_ADDRSTRLEN];
  if (family == 4) {
    inet_ntop(AF_INET, addr + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, addr, buf, sizeof buf);
  }
  return buf;
}

}  // namespace l7tap
