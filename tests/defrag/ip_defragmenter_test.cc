// IpDefragmenter on fragments built here: whole datagrams cut at chosen
// offsets, fed in orders the network makes, compared byte by byte with the
// datagram the receiving host rebuilds.
#include "defrag/ip_defragmenter.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "tests/defrag/fragment_builder.h"

namespace l7tap {
namespace {

using Bytes = std::vector<uint8_t>;
using test::fragmentV4;
using test::fragmentV6;
using test::ipv4Datagram;
using test::ipv6Datagram;
using test::pattern;

constexpr uint64_t kSecond = 1'000'000'000;

Bytes got(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

// The datagram the host rebuilds from `whole`'s fragments: `whole` with the
// first fragment's header checksum (the defragmenter keeps it).
Bytes expectedV4(Bytes whole, const Bytes& first_fragment) {
  whole[10] = first_fragment[10];
  whole[11] = first_fragment[11];
  return whole;
}

TEST(IpDefragmenter, Ipv4InOrder) {
  const Bytes whole = ipv4Datagram(0x1234, 6, pattern(3000, 1));
  const auto frags = fragmentV4(whole, {0, 1480, 2960});
  IpDefragmenter d;
  EXPECT_TRUE(d.add(frags[0], 1).empty());
  EXPECT_TRUE(d.add(frags[1], 2).empty());
  EXPECT_EQ(got(d.add(frags[2], 3)), expectedV4(whole, frags[0]));
  EXPECT_EQ(d.stats().fragments, 3u);
  EXPECT_EQ(d.stats().reassembled, 1u);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(IpDefragmenter, Ipv4RebuiltHeaderByteByByte) {
  const Bytes whole = ipv4Datagram(0xabcd, 6, pattern(24, 7));
  const auto frags = fragmentV4(whole, {0, 16});
  IpDefragmenter d;
  d.add(frags[1], 1);
  const Bytes out = got(d.add(frags[0], 2));
  ASSERT_EQ(out.size(), 44u);
  const Bytes header(out.begin(), out.begin() + 20);
  // tot_len 44, id kept, MF and offset cleared, the first
  // fragment's checksum, addresses kept.
  const Bytes want = {0x45,         0x00,         0x00, 44, 0xab, 0xcd, 0x00, 0x00, 64, 6,
                      frags[0][10], frags[0][11], 10,   0,  0,    1,    10,   0,    0,  2};
  EXPECT_EQ(header, want);
  EXPECT_EQ(Bytes(out.begin() + 20, out.end()), pattern(24, 7));
}

TEST(IpDefragmenter, Ipv4Reversed) {
  const Bytes whole = ipv4Datagram(7, 6, pattern(4000, 2));
  const auto frags = fragmentV4(whole, {0, 1000, 2000, 3000});
  IpDefragmenter d;
  for (size_t i = frags.size() - 1; i > 0; --i) EXPECT_TRUE(d.add(frags[i], i).empty());
  EXPECT_EQ(got(d.add(frags[0], 9)), expectedV4(whole, frags[0]));
}

TEST(IpDefragmenter, Ipv4InterleavedDatagrams) {
  const Bytes a = ipv4Datagram(1, 6, pattern(2000, 3));
  const Bytes b = ipv4Datagram(2, 6, pattern(2000, 4));
  const auto fa = fragmentV4(a, {0, 800, 1600});
  const auto fb = fragmentV4(b, {0, 800, 1600});
  IpDefragmenter d;
  EXPECT_TRUE(d.add(fa[1], 1).empty());
  EXPECT_TRUE(d.add(fb[2], 2).empty());
  EXPECT_TRUE(d.add(fa[0], 3).empty());
  EXPECT_TRUE(d.add(fb[0], 4).empty());
  EXPECT_EQ(d.pending(), 2u);
  EXPECT_EQ(got(d.add(fb[1], 5)), expectedV4(b, fb[0]));
  EXPECT_EQ(got(d.add(fa[2], 6)), expectedV4(a, fa[0]));
  EXPECT_EQ(d.stats().reassembled, 2u);
}

TEST(IpDefragmenter, SameIdOtherProtocolOrScopeIsAnotherDatagram) {
  const Bytes tcp = ipv4Datagram(5, 6, pattern(32, 1));
  const Bytes udp = ipv4Datagram(5, 17, pattern(32, 2));
  const auto ft = fragmentV4(tcp, {0, 16});
  const auto fu = fragmentV4(udp, {0, 16});
  IpDefragmenter d;
  d.add(ft[0], 1);
  d.add(fu[0], 1);
  d.add(ft[0], 1, /*scope=*/9);
  EXPECT_EQ(d.pending(), 3u);
  EXPECT_EQ(got(d.add(fu[1], 2)), expectedV4(udp, fu[0]));
  EXPECT_EQ(got(d.add(ft[1], 2, 9)), expectedV4(tcp, ft[0]));
  EXPECT_EQ(got(d.add(ft[1], 2)), expectedV4(tcp, ft[0]));
  EXPECT_EQ(d.stats().overlaps_dropped, 0u);
}

TEST(IpDefragmenter, DuplicatesAreIgnored) {
  const Bytes whole = ipv4Datagram(3, 6, pattern(48, 5));
  const auto frags = fragmentV4(whole, {0, 16, 32});
  // A fragment inside bytes already held: [16, 24) of the run [0, 32).
  const Bytes inner = fragmentV4(whole, {0, 16, 24}).at(1);
  IpDefragmenter d;
  d.add(frags[0], 1);
  d.add(frags[1], 2);
  EXPECT_TRUE(d.add(frags[1], 3).empty());
  EXPECT_TRUE(d.add(frags[0], 3).empty());
  EXPECT_TRUE(d.add(inner, 3).empty());
  EXPECT_EQ(d.stats().duplicates, 3u);
  EXPECT_EQ(got(d.add(frags[2], 4)), expectedV4(whole, frags[0]));
  EXPECT_EQ(d.stats().overlaps_dropped, 0u);
}

TEST(IpDefragmenter, OverlapDropsTheDatagramNotTheOthers) {
  const Bytes a = ipv4Datagram(10, 6, pattern(48, 6));
  const Bytes b = ipv4Datagram(11, 6, pattern(48, 7));
  const auto fa = fragmentV4(a, {0, 16, 32});
  const auto fb = fragmentV4(b, {0, 16, 32});
  // [8, 24): overlaps [0, 16) partly (an evasion's second copy).
  Bytes evil = fragmentV4(a, {0, 8, 24}).at(1);
  evil.back() ^= 0xff;
  IpDefragmenter d;
  d.add(fa[0], 1);
  d.add(fb[0], 1);
  EXPECT_TRUE(d.add(evil, 2).empty());
  EXPECT_EQ(d.stats().overlaps_dropped, 1u);
  EXPECT_EQ(d.pending(), 1u);
  // What is left of `a` never completes: its first fragment went with it.
  EXPECT_TRUE(d.add(fa[1], 3).empty());
  EXPECT_TRUE(d.add(fa[2], 3).empty());
  d.add(fb[2], 4);
  EXPECT_EQ(got(d.add(fb[1], 5)), expectedV4(b, fb[0]));
  EXPECT_EQ(d.stats().reassembled, 1u);
}

TEST(IpDefragmenter, OverlapBeyondTheTailDropsTheDatagram) {
  const Bytes a = ipv4Datagram(12, 6, pattern(48, 6));
  IpDefragmenter d;
  d.add(fragmentV4(a, {0, 16}).at(0), 1);
  // [8, 32) starts inside [0, 16) and ends past it.
  d.add(fragmentV4(a, {0, 8, 32}).at(1), 2);
  EXPECT_EQ(d.stats().overlaps_dropped, 1u);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(IpDefragmenter, MissingFragmentTimesOut) {
  const Bytes a = ipv4Datagram(20, 6, pattern(48, 8));
  const Bytes b = ipv4Datagram(21, 6, pattern(48, 9));
  const auto fa = fragmentV4(a, {0, 16, 32});
  const auto fb = fragmentV4(b, {0, 16, 32});
  IpDefragmenter d;
  d.add(fa[0], 0);
  d.add(fa[2], 29 * kSecond);  // the timeout runs from the first fragment
  d.add(fb[0], 29 * kSecond);
  EXPECT_EQ(d.stats().timed_out, 0u);
  d.add(fb[1], 30 * kSecond);
  EXPECT_EQ(d.stats().timed_out, 1u);
  EXPECT_EQ(d.pending(), 1u);
  // The late fragment starts a datagram of its own that never completes.
  EXPECT_TRUE(d.add(fa[1], 30 * kSecond).empty());
  EXPECT_EQ(got(d.add(fb[2], 31 * kSecond)), expectedV4(b, fb[0]));
}

TEST(IpDefragmenter, CaptureTimeGoingBackExpiresNothing) {
  const Bytes a = ipv4Datagram(22, 6, pattern(32, 8));
  const auto fa = fragmentV4(a, {0, 16});
  IpDefragmenter d;
  d.add(fa[0], 100 * kSecond);
  EXPECT_EQ(got(d.add(fa[1], 1 * kSecond)), expectedV4(a, fa[0]));
  EXPECT_EQ(d.stats().timed_out, 0u);
}

TEST(IpDefragmenter, FullTableEvictsTheOldest) {
  IpDefragmenter d({.max_datagrams = 2});
  std::vector<Bytes> whole;
  std::vector<std::vector<Bytes>> frags;
  for (uint16_t id = 0; id < 3; ++id) {
    whole.push_back(ipv4Datagram(id, 6, pattern(32, id)));
    frags.push_back(fragmentV4(whole.back(), {0, 16}));
  }
  d.add(frags[1][0], 10);
  d.add(frags[0][0], 20);
  d.add(frags[2][0], 30);  // evicts id 1, the first to arrive
  EXPECT_EQ(d.stats().evicted, 1u);
  EXPECT_EQ(d.pending(), 2u);
  EXPECT_EQ(got(d.add(frags[0][1], 40)), expectedV4(whole[0], frags[0][0]));
  EXPECT_EQ(got(d.add(frags[2][1], 40)), expectedV4(whole[2], frags[2][0]));
  EXPECT_TRUE(d.add(frags[1][1], 40).empty());
}

TEST(IpDefragmenter, MemoryBoundEvictsTheOldest) {
  IpDefragmenter d({.max_bytes = 6000});
  const Bytes a = ipv4Datagram(1, 6, pattern(4000, 1));
  const Bytes b = ipv4Datagram(2, 6, pattern(4000, 2));
  const auto fa = fragmentV4(a, {0, 2000});
  const auto fb = fragmentV4(b, {0, 2000});
  d.add(fa[1], 1);
  EXPECT_LE(d.memoryBytes(), 6000u);
  d.add(fb[1], 2);  // both would need 8000 bytes: `a` goes
  EXPECT_EQ(d.stats().evicted, 1u);
  EXPECT_LE(d.memoryBytes(), 6000u);
  EXPECT_EQ(got(d.add(fb[0], 3)), expectedV4(b, fb[0]));
  EXPECT_TRUE(d.add(fa[0], 4).empty());
  EXPECT_LE(d.memoryBytes(), 6000u);
  // A datagram larger than the bound alone is dropped, counted.
  IpDefragmenter small({.max_bytes = 1000});
  small.add(fa[1], 1);
  EXPECT_EQ(small.stats().evicted, 1u);
  EXPECT_EQ(small.pending(), 0u);
  EXPECT_LE(small.memoryBytes(), 1000u);
}

TEST(IpDefragmenter, BuffersAreReused) {
  IpDefragmenter d;
  const Bytes a = ipv4Datagram(1, 6, pattern(3000, 1));
  const auto fa = fragmentV4(a, {0, 1480, 2960});
  for (int round = 0; round < 3; ++round) {
    for (const Bytes& f : fa) d.add(f, round);
  }
  const size_t held = d.memoryBytes();
  for (int round = 0; round < 10; ++round) {
    for (const Bytes& f : fa) d.add(f, round);
  }
  EXPECT_EQ(d.memoryBytes(), held);
  EXPECT_EQ(d.stats().reassembled, 13u);
}

TEST(IpDefragmenter, ClearForgetsPendingDatagrams) {
  const Bytes a = ipv4Datagram(1, 6, pattern(32, 1));
  const auto fa = fragmentV4(a, {0, 16});
  IpDefragmenter d;
  d.add(fa[0], 1);
  EXPECT_EQ(d.clear(), 1u);
  EXPECT_EQ(d.pending(), 0u);
  EXPECT_TRUE(d.add(fa[1], 2).empty());
  EXPECT_EQ(got(d.add(fa[0], 3)), expectedV4(a, fa[0]));
}

TEST(IpDefragmenter, TooLarge) {
  IpDefragmenter d;
  // Offset 65528 plus 16 bytes: past 65535 with the header.
  const Bytes big = ipv4Datagram(1, 6, pattern(16, 1));
  EXPECT_TRUE(d.add(test::ipv4Fragment(big, 65528, false), 1).empty());
  EXPECT_EQ(d.stats().too_large, 1u);
  // IPv6: the fragmentable part past 65535.
  const Bytes big6 = ipv6Datagram({}, 6, pattern(16, 1));
  EXPECT_TRUE(d.add(test::ipv6Fragment(big6, 40, 1, 65528, 16, false), 1).empty());
  EXPECT_EQ(d.stats().too_large, 2u);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(IpDefragmenter, Malformed) {
  const Bytes whole = ipv4Datagram(1, 6, pattern(48, 1));
  IpDefragmenter d;
  // Not a multiple of 8 with more to come.
  EXPECT_TRUE(d.add(fragmentV4(whole, {0, 12, 24}).at(0), 1).empty());
  EXPECT_EQ(d.stats().malformed, 1u);
  EXPECT_EQ(d.pending(), 0u);
  // Empty: drops the datagram it belongs to.
  d.add(fragmentV4(whole, {0, 16}).at(0), 1);
  EXPECT_EQ(d.pending(), 1u);
  d.add(test::ipv4Fragment(ipv4Datagram(1, 6, {}), 16, true), 1);
  EXPECT_EQ(d.stats().malformed, 2u);
  EXPECT_EQ(d.pending(), 0u);
  // Two last fragments that disagree.
  const auto a = fragmentV4(whole, {0, 16, 32});
  d.add(a[2], 1);
  d.add(fragmentV4(ipv4Datagram(1, 6, pattern(40, 1)), {0, 32}).at(1), 1);
  EXPECT_EQ(d.stats().malformed, 3u);
  EXPECT_EQ(d.pending(), 0u);
  // Bytes past the last fragment's end.
  d.add(a[2], 1);
  d.add(fragmentV4(ipv4Datagram(1, 6, pattern(64, 1)), {0, 48, 56}).at(1), 1);
  EXPECT_EQ(d.stats().malformed, 4u);
  // Header garbage: version, IHL, lengths.
  EXPECT_TRUE(d.add(Bytes{0x15, 0, 0, 20}, 1).empty());
  Bytes bad_ihl = a[1];
  bad_ihl[0] = 0x44;
  d.add(bad_ihl, 1);
  d.add(Bytes{}, 1);
  EXPECT_EQ(d.stats().malformed, 7u);
  // Cut by the capture: counted apart.
  d.add(std::span(a[1]).first(a[1].size() - 1), 1);
  d.add(std::span(a[1]).first(10), 1);
  EXPECT_EQ(d.stats().truncated, 2u);
}

TEST(IpDefragmenter, Ipv4PaddingAfterTotLenIsIgnored) {
  const Bytes whole = ipv4Datagram(1, 6, pattern(24, 1));
  auto frags = fragmentV4(whole, {0, 16});
  frags[1].resize(frags[1].size() + 18, 0xee);  // Ethernet minimum frame padding
  IpDefragmenter d;
  d.add(frags[0], 1);
  EXPECT_EQ(got(d.add(frags[1], 2)), expectedV4(whole, frags[0]));
}

TEST(IpDefragmenter, Ipv4OptionsOfTheFirstFragmentKept) {
  // Record route (not copied into later fragments) and a NOP pad: 8 bytes.
  const Bytes options = {0x07, 0x07, 0x04, 0, 0, 0, 0, 0x01};
  const Bytes whole = ipv4Datagram(0x55, 6, pattern(40, 3), options);
  ASSERT_EQ(whole[0], 0x47);
  const auto frags = fragmentV4(whole, {0, 16, 32}, /*options_in_later=*/false);
  ASSERT_EQ(frags[1][0], 0x45);
  IpDefragmenter d;
  d.add(frags[2], 1);
  d.add(frags[1], 2);
  const Bytes out = got(d.add(frags[0], 3));
  EXPECT_EQ(out, expectedV4(whole, frags[0]));
  EXPECT_EQ(Bytes(out.begin() + 20, out.begin() + 28), options);
}

TEST(IpDefragmenter, Ipv6WithoutExtensionHeaders) {
  const Bytes whole = ipv6Datagram({}, 6, pattern(3000, 4));
  const auto frags = fragmentV6(whole, 40, 0xdeadbeef, {0, 1232, 2464});
  IpDefragmenter d;
  d.add(frags[2], 1);
  d.add(frags[0], 2);
  EXPECT_EQ(got(d.add(frags[1], 3)), whole);
  EXPECT_EQ(d.stats().reassembled, 1u);
}

TEST(IpDefragmenter, Ipv6AfterHopByHopRoutingAndDestinationOptions) {
  // Hop-by-hop (8 bytes, PadN), routing type 0 with no addresses left (8),
  // destination options (16, PadN): the unfragmentable part.
  const Bytes hbh = {43, 0, 1, 4, 0, 0, 0, 0};
  const Bytes rt = {60, 0, 0, 0, 0, 0, 0, 0};
  const Bytes dst = {6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  Bytes ext = hbh;
  ext.insert(ext.end(), rt.begin(), rt.end());
  ext.insert(ext.end(), dst.begin(), dst.end());
  const Bytes whole = ipv6Datagram(ext, /*first=*/0, pattern(100, 5));
  ASSERT_EQ(whole[6], 0);
  const auto frags = fragmentV6(whole, 40 + 32, 77, {0, 48});
  // Each fragment: the Fragment header where TCP was, named by the
  // destination options header.
  ASSERT_EQ(frags[0][40 + 16], 44);
  IpDefragmenter d;
  d.add(frags[1], 1);
  const Bytes out = got(d.add(frags[0], 2));
  EXPECT_EQ(out, whole);
  EXPECT_EQ(out[40 + 16], 6);  // next header fixed
  EXPECT_EQ(out[4] << 8 | out[5], 32 + 100);
}

TEST(IpDefragmenter, Ipv6FragmentOfEachKindAfterTheOther) {
  // The same id from another source is another datagram; an IPv4 datagram
  // with the same numbers too.
  const Bytes whole = ipv6Datagram({}, 6, pattern(64, 6));
  Bytes other = whole;
  other[8] ^= 1;
  const auto f1 = fragmentV6(whole, 40, 5, {0, 32});
  const auto f2 = fragmentV6(other, 40, 5, {0, 32});
  IpDefragmenter d;
  d.add(f1[0], 1);
  d.add(f2[0], 1);
  EXPECT_EQ(got(d.add(f2[1], 2)), other);
  EXPECT_EQ(got(d.add(f1[1], 2)), whole);
}

TEST(IpDefragmenter, Ipv6OverlapDropsTheDatagram) {
  const Bytes whole = ipv6Datagram({}, 6, pattern(64, 6));
  const auto frags = fragmentV6(whole, 40, 5, {0, 32});
  const auto shifted = fragmentV6(whole, 40, 5, {0, 24});
  IpDefragmenter d;
  d.add(frags[0], 1);
  EXPECT_TRUE(d.add(shifted[1], 2).empty());
  EXPECT_EQ(d.stats().overlaps_dropped, 1u);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(IpDefragmenter, Ipv6AtomicFragment) {
  const Bytes whole = ipv6Datagram({}, 6, pattern(20, 6));
  const auto frags = fragmentV6(whole, 40, 5, {0});
  ASSERT_EQ(frags.size(), 1u);
  IpDefragmenter d;
  EXPECT_EQ(got(d.add(frags[0], 1)), whole);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(IpDefragmenter, Ipv6Malformed) {
  const Bytes whole = ipv6Datagram({}, 6, pattern(64, 6));
  IpDefragmenter d;
  // No Fragment header at all.
  d.add(whole, 1);
  // An unknown extension header before it.
  Bytes unknown = fragmentV6(whole, 40, 5, {0, 32}).at(0);
  unknown[6] = 50;  // ESP
  d.add(unknown, 1);
  // Not a multiple of 8 with more to come.
  d.add(fragmentV6(whole, 40, 5, {0, 30}).at(0), 1);
  EXPECT_EQ(d.stats().malformed, 3u);
  EXPECT_EQ(d.pending(), 0u);
}

}  // namespace
}  // namespace l7tap
