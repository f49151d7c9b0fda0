// IpDefragmenter (defrag/) on fragments of a few IPv4 and IPv6 datagrams,
// built from fuzzer-chosen offsets, lengths, flags, extension headers and
// capture times, with raw fuzzer bytes mixed in, under small limits.
//
// Every fragmentable payload byte is a function of its datagram and offset,
// so each rebuilt datagram can be checked byte by byte. Also checked after
// every fragment: memory and the table stay within their limits; a rebuilt
// datagram's length fields agree with its size, IPv4's MF and offset are
// clear, IPv6's header chain ends in the upper-layer protocol with no
// Fragment header left.
//
// Input: limits (u8 datagrams, u16 bytes in 64-byte units), then records of
// 8 bytes: control (bit 0 IPv6, bit 1 more fragments, bit 2 raw: the next
// u8 bytes of input as the packet instead, bits 3-4 IPv6 extension headers
// before the Fragment header, bit 5 IPv4 options, bit 6 cut the last byte,
// bit 7 scope 1), datagram id (u8, 0-3 used), offset (u16, 8-byte units),
// length (u16), time step (u8, in 100 ms).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "defrag/ip_defragmenter.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

enum : uint8_t {
  kV6 = 0x01,
  kMore = 0x02,
  kRaw = 0x04,
  kExtShift = 3,
  kOptions = 0x20,
  kCut = 0x40,
  kScope = 0x80,
};

constexpr uint8_t kUpper = 6;

uint8_t byteAt(uint32_t id, size_t offset) {
  return static_cast<uint8_t>(((offset + 1) * 2654435761u + id * 40503u) >> 13);
}

void put16(std::vector<uint8_t>& b, size_t at, size_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

void buildV4(std::vector<uint8_t>& b, uint8_t control, uint32_t id, size_t offset, size_t len) {
  const size_t ihl = control & kOptions ? 24 : 20;
  b.assign(ihl, 0);
  b[0] = static_cast<uint8_t>(0x40 | ihl / 4);
  put16(b, 4, id);
  put16(b, 6, (offset / 8) | (control & kMore ? 0x2000 : 0));
  b[8] = 64;
  b[9] = kUpper;
  b[12] = 10, b[15] = 1, b[16] = 10, b[19] = 2;
  if (ihl > 20) b[20] = 1, b[21] = 1, b[22] = 1, b[23] = 0;  // NOPs, EOL
  for (size_t i = 0; i < len; ++i) b.push_back(byteAt(id, offset + i));
  put16(b, 2, b.size() & 0xffff);
}

void buildV6(std::vector<uint8_t>& b, uint8_t control, uint32_t id, size_t offset, size_t len) {
  static constexpr uint8_t kChain[] = {0, 43, 60};  // hop-by-hop, routing, destination options
  const int ext = (control >> kExtShift) & 3;
  b.assign(40, 0);
  b[0] = 0x60;
  b[8] = 0x20, b[23] = 1, b[24] = 0x20, b[39] = 2;
  b[6] = ext ? kChain[0] : 44;
  for (int i = 0; i < ext; ++i) {
    const uint8_t next = i + 1 < ext ? kChain[i + 1] : 44;
    const uint8_t h[8] = {next, 0, 1, 4, 0, 0, 0, 0};
    b.insert(b.end(), h, h + 8);
  }
  const uint8_t frag[8] = {kUpper,
                           0,
                           static_cast<uint8_t>(offset >> 8),
                           static_cast<uint8_t>((offset & 0xf8) | (control & kMore ? 1 : 0)),
                           0,
                           0,
                           0,
                           static_cast<uint8_t>(id)};
  b.insert(b.end(), frag, frag + 8);
  for (size_t i = 0; i < len; ++i) b.push_back(byteAt(id, offset + i));
  put16(b, 4, (b.size() - 40) & 0xffff);
}

// The invariants of one rebuilt datagram.
void check(std::span<const uint8_t> d, bool structured) {
  if (d.empty()) return;
  if (d[0] >> 4 == 4) {
    if (d.size() < 20) std::abort();
    const size_t ihl = (d[0] & 0x0f) * 4u;
    if (ihl < 20 || ihl > d.size()) std::abort();
    if (static_cast<size_t>(d[2] << 8 | d[3]) != d.size() || d.size() > 65535) std::abort();
    if ((d[6] << 8 | d[7]) & 0x3fff) std::abort();
    if (!structured) return;
    const uint32_t id = d[4] << 8 | d[5];
    for (size_t i = ihl; i < d.size(); ++i) {
      if (d[i] != byteAt(id, i - ihl)) std::abort();
    }
  } else if (d[0] >> 4 == 6) {
    if (d.size() < 40) std::abort();
    if (static_cast<size_t>(d[4] << 8 | d[5]) + 40 != d.size()) std::abort();
    size_t off = 40;
    uint8_t nh = d[6];
    for (int i = 0; i < 8 && (nh == 0 || nh == 43 || nh == 60); ++i) {
      if (off + 2 > d.size()) std::abort();
      nh = d[off];
      off += (d[off + 1] + 1u) * 8u;
    }
    if (nh == 44 || off > d.size()) std::abort();
    if (!structured) return;
    if (nh != kUpper) std::abort();
    // The id is not in the rebuilt datagram: one of the four must match.
    bool matched = false;
    for (uint32_t id = 0; id < 4 && !matched; ++id) {
      matched = true;
      for (size_t i = off; i < d.size() && matched; ++i) matched = d[i] == byteAt(id, i - off);
    }
    if (!matched) std::abort();
  } else {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l7tap::fuzz::Reader in(data, size);
  l7tap::DefragLimits limits;
  limits.max_datagrams = 1 + in.u8() % 8;
  limits.max_bytes = 64u * in.u16();
  l7tap::IpDefragmenter defrag(limits);
  std::vector<uint8_t> packet;
  uint64_t ts = 0;
  // Raw bytes may complete a datagram begun by structured fragments with
  // bytes of their own: content is checked only while none were fed.
  bool raw_seen = false;
  for (int records = 0; !in.empty() && records < 512; ++records) {
    const uint8_t control = in.u8();
    const uint32_t id = in.u8() & 3;
    const size_t offset = (in.u16() & 0x1fff) * 8u;
    const size_t len = in.u16() % 4096;
    ts += in.u8() * 100'000'000ull;
    const bool structured = !(control & kRaw);
    if (!structured) {
      packet.clear();
      for (uint8_t n = in.u8(); n > 0 && !in.empty(); --n) packet.push_back(in.u8());
    } else if (control & kV6) {
      buildV6(packet, control, id, offset, len);
    } else {
      buildV4(packet, control, id, offset, len);
    }
    std::span<const uint8_t> ip(packet);
    if ((control & kCut) && !ip.empty()) ip = ip.first(ip.size() - 1);
    raw_seen |= !structured;
    const std::span<const uint8_t> out = defrag.add(ip, ts, control & kScope ? 1 : 0);
    check(out, !raw_seen);
    if (defrag.memoryBytes() > limits.max_bytes) std::abort();
    if (defrag.pending() > limits.max_datagrams) std::abort();
    const l7tap::DefragStats& s = defrag.stats();
    if (s.reassembled > s.fragments) std::abort();
  }
  return 0;
}
