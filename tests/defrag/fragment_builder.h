// IPv4 and IPv6 datagrams and their fragments, built byte by byte as a
// sender's stack cuts them, for the defragmenter's and replay's tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace l7tap::test {

using Bytes = std::vector<uint8_t>;

inline Bytes pattern(size_t n, int seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + seed * 31 + (i >> 8));
  return b;
}

inline void put16(Bytes& b, size_t at, size_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

/// 10.0.0.1 -> 10.0.0.2, TTL 64, no fragmentation flags, checksum 0.
inline Bytes ipv4Datagram(uint16_t id, uint8_t protocol, const Bytes& payload,
                          const Bytes& options = {}) {
  Bytes b = {0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
  // Reserved first: GCC 12 sees the growth of a 20-byte vector as an overrun.
  b.reserve(20 + options.size() + payload.size());
  b[0] = static_cast<uint8_t>(0x40 | (20 + options.size()) / 4);
  put16(b, 4, id);
  b.insert(b.end(), options.begin(), options.end());
  b.insert(b.end(), payload.begin(), payload.end());
  put16(b, 2, b.size());
  return b;
}

/// `whole`'s header (IHL bytes, or the first 20 without its options) with
/// `payload` at `offset` bytes; the checksum field set to `checksum`, as a
/// sender would have computed it for each fragment.
inline Bytes ipv4FragmentOf(const Bytes& whole, size_t offset, const Bytes& payload, bool more,
                            bool with_options = true, uint16_t checksum = 0xc000) {
  const size_t ihl = with_options ? (whole[0] & 0x0f) * 4u : 20u;
  Bytes b(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(ihl));
  b.reserve(ihl + payload.size());
  b[0] = static_cast<uint8_t>(0x40 | ihl / 4);
  b.insert(b.end(), payload.begin(), payload.end());
  put16(b, 2, b.size());
  put16(b, 6, offset / 8 | (more ? 0x2000 : 0));
  put16(b, 10, checksum);
  return b;
}

/// A fragment holding all of `whole`'s payload at `offset` bytes.
inline Bytes ipv4Fragment(const Bytes& whole, size_t offset, bool more) {
  const size_t ihl = (whole[0] & 0x0f) * 4u;
  return ipv4FragmentOf(whole, offset,
                        Bytes(whole.begin() + static_cast<ptrdiff_t>(ihl), whole.end()), more);
}

/// `whole` cut at `offsets` (payload bytes, the first 0); each fragment's
/// checksum field differs.
inline std::vector<Bytes> fragmentV4(const Bytes& whole, const std::vector<size_t>& offsets,
                                     bool options_in_later = true) {
  const size_t ihl = (whole[0] & 0x0f) * 4u;
  const size_t len = whole.size() - ihl;
  std::vector<Bytes> out;
  for (size_t i = 0; i < offsets.size(); ++i) {
    const size_t end = i + 1 < offsets.size() ? offsets[i + 1] : len;
    const auto from = whole.begin() + static_cast<ptrdiff_t>(ihl + offsets[i]);
    out.push_back(ipv4FragmentOf(
        whole, offsets[i], Bytes(from, from + static_cast<ptrdiff_t>(end - offsets[i])),
        i + 1 < offsets.size(), i == 0 || options_in_later, static_cast<uint16_t>(0xc000 + i)));
  }
  return out;
}

/// 2001:db8::1 -> 2001:db8::2, `ext` (extension headers, already chained)
/// after the IPv6 header whose next header is `next_header`.
inline Bytes ipv6Datagram(const Bytes& ext, uint8_t next_header, const Bytes& payload) {
  Bytes b(40, 0);
  b.reserve(40 + ext.size() + payload.size());
  b[0] = 0x60;
  b[6] = next_header;
  b[7] = 64;
  b[8] = 0x20, b[9] = 0x01, b[10] = 0x0d, b[11] = 0xb8, b[23] = 1;
  b[24] = 0x20, b[25] = 0x01, b[26] = 0x0d, b[27] = 0xb8, b[39] = 2;
  b.insert(b.end(), ext.begin(), ext.end());
  b.insert(b.end(), payload.begin(), payload.end());
  put16(b, 4, b.size() - 40);
  return b;
}

/// Where the byte naming the header after `whole`'s first `unfrag_len` bytes is.
inline size_t ipv6NextHeaderOffset(const Bytes& whole, size_t unfrag_len) {
  size_t nh = 6;
  for (size_t off = 40; off < unfrag_len; off += (whole[off + 1] + 1u) * 8u) nh = off;
  return nh;
}

/// `len` bytes of `whole`'s fragmentable part (after `unfrag_len`; repeated
/// when shorter) at `offset`, behind a Fragment header with `id`.
inline Bytes ipv6Fragment(const Bytes& whole, size_t unfrag_len, uint32_t id, size_t offset,
                          size_t len, bool more) {
  const size_t nh = ipv6NextHeaderOffset(whole, unfrag_len);
  Bytes b(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(unfrag_len));
  b[nh] = 44;
  const Bytes frag = {whole[nh],
                      0,
                      static_cast<uint8_t>(offset >> 8),
                      static_cast<uint8_t>((offset & 0xf8) | (more ? 1 : 0)),
                      static_cast<uint8_t>(id >> 24),
                      static_cast<uint8_t>(id >> 16),
                      static_cast<uint8_t>(id >> 8),
                      static_cast<uint8_t>(id)};
  b.insert(b.end(), frag.begin(), frag.end());
  const size_t part = whole.size() - unfrag_len;
  for (size_t i = 0; i < len; ++i) b.push_back(whole[unfrag_len + (offset + i) % part]);
  put16(b, 4, b.size() - 40);
  return b;
}

/// `whole`'s fragmentable part (after `unfrag_len`) cut at `offsets`.
inline std::vector<Bytes> fragmentV6(const Bytes& whole, size_t unfrag_len, uint32_t id,
                                     const std::vector<size_t>& offsets) {
  const size_t len = whole.size() - unfrag_len;
  std::vector<Bytes> out;
  for (size_t i = 0; i < offsets.size(); ++i) {
    const size_t end = i + 1 < offsets.size() ? offsets[i + 1] : len;
    out.push_back(
        ipv6Fragment(whole, unfrag_len, id, offsets[i], end - offsets[i], i + 1 < offsets.size()));
  }
  return out;
}

}  // namespace l7tap::test
