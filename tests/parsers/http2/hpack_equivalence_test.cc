// HpackDecoder's own inflater against nghttp2's (the reference it replaced):
// identical fields, identical errors, identical table state, on header
// blocks from nghttp2's deflater and on random representations (dynamic
// table insertions and references, Huffman strings valid and not, size
// updates in and out of place, never-indexed literals, oversized integers),
// cut into random fragments.
#include <gtest/gtest.h>

#include <random>

#include "tests/parsers/http2/h2_test_util.h"
#include "tests/parsers/http2/hpack_reference.h"

namespace l7tap::h2test {
namespace {

TEST(HpackHuffman, CodesAreRfc7541s) {
  EXPECT_EQ(hpack::huffmanCode(0).bits, 0x1ff8u);
  EXPECT_EQ(hpack::huffmanCode(0).length, 13);
  EXPECT_EQ(hpack::huffmanCode('a').bits, 0x3u);
  EXPECT_EQ(hpack::huffmanCode(9).bits, 0xffffeau);
  EXPECT_EQ(hpack::huffmanCode(255).bits, 0x3ffffeeu);
  EXPECT_EQ(hpack::huffmanCode(256).bits, 0x3fffffffu);
  EXPECT_EQ(hpack::huffmanCode(256).length, 30);
  // RFC 7541 C.4.1.
  const Bytes in{0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff};
  char out[hpack::maxHuffmanDecoded(12)];
  const long n = hpack::huffmanDecode(in.data(), in.size(), out);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string_view(out, static_cast<size_t>(n)), "www.example.com");
}

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}

  uint32_t below(uint32_t n) { return n == 0 ? 0 : static_cast<uint32_t>(rng_() % n); }
  bool chance(uint32_t one_in) { return below(one_in) == 0; }

  std::string text() {
    static const char* kWords[] = {"",
                                   "a",
                                   "GET",
                                   "/",
                                   "text/html",
                                   "nginx",
                                   "x-custom",
                                   "Mon, 23 Nov 2026 23:49:32 GMT",
                                   "h2load nghttp2/1.52.0"};
    if (chance(3)) return kWords[below(9)];
    std::string s(below(chance(10) ? 300 : 24), ' ');
    for (char& c : s) c = static_cast<char>(chance(8) ? below(256) : 'a' + below(26));
    return s;
  }

  Bytes integer(uint8_t first, int prefix, uint32_t v) {
    Bytes out = hpackInt(first, prefix, v);
    if (chance(20) && out.size() > 1) {
      // Redundant continuation bytes: legal up to nghttp2's shift limit.
      out.back() |= 0x80;
      for (uint32_t k = below(6); k > 0; --k) out.push_back(0x80);
      out.push_back(0);
    }
    return out;
  }

  Bytes string(const std::string& s) {
    if (chance(2)) {
      Bytes h = huffmanEncode(s);
      switch (below(12)) {
        case 0:  // padding of 8 bits or more
          h.push_back(0xff);
          break;
        case 1:  // padding that is not all ones
          if (!h.empty()) h.back() &= 0xfe;
          break;
        case 2:  // EOS inside
          append(h, {0xff, 0xff, 0xff, 0xfc});
          break;
        default:
          break;
      }
      return cat({integer(0x80, 7, static_cast<uint32_t>(h.size())), h});
    }
    return cat({integer(0, 7, static_cast<uint32_t>(s.size())), Bytes(s.begin(), s.end())});
  }

  Bytes field(size_t entries) {
    const uint32_t max_index = static_cast<uint32_t>(61 + entries);
    auto index = [&]() -> uint32_t {
      if (chance(30)) return chance(2) ? 0 : max_index + 1 + below(3);
      if (entries > 0 && chance(2)) return 62 + below(static_cast<uint32_t>(entries));
      return 1 + below(61);
    };
    switch (below(8)) {
      case 0:
      case 1:
        return integer(0x80, 7, index());
      case 2:
        return cat({Bytes{0x40}, string(text()), string(text())});
      case 3:
        return cat({integer(0x40, 6, index()), string(text())});
      case 4:
        return cat({Bytes{0x00}, string(text()), string(text())});
      case 5:
        return cat({integer(0x00, 4, index()), string(text())});
      case 6:
        return cat({Bytes{0x10}, string(text()), string(text())});
      default:
        return cat({integer(0x10, 4, index()), string(text())});
    }
  }

  uint32_t size() {
    static const uint32_t kSizes[] = {0, 31, 32, 100, 256, 4095, 4096, 4097, 8192, 65536, 1u << 20};
    return chance(4) ? below(5000) : kSizes[below(11)];
  }

  Bytes block(size_t entries) {
    Bytes b;
    if (chance(4)) append(b, integer(0x20, 5, size()));
    if (chance(10)) append(b, integer(0x20, 5, size()));
    for (uint32_t k = below(8); k > 0; --k) {
      append(b, field(entries));
      if (chance(60)) append(b, integer(0x20, 5, size()));  // out of place
    }
    if (chance(40)) b.push_back(static_cast<uint8_t>(below(256)));  // a field cut short
    if (chance(200)) {  // a length nghttp2 refuses, and the largest it takes
      append(b, cat({Bytes{0x00}, integer(0, 7, chance(2) ? 65536 : 65537), Bytes(65537, 'x'),
                     Bytes{0x01, 'v'}}));
    }
    return b;
  }

  std::mt19937 rng_;
};

void feedCut(Differential& d, Gen& g, const Bytes& block, const std::string& where) {
  size_t at = 0;
  while (at < block.size()) {
    const size_t n =
        g.chance(3) ? block.size() - at : std::min<size_t>(1 + g.below(8), block.size() - at);
    const std::string diff = d.feed(std::span<const uint8_t>(block).subspan(at, n));
    ASSERT_EQ(diff, "") << where;
    at += n;
  }
}

TEST(HpackEquivalence, RandomRepresentations) {
  for (uint32_t seed = 1; seed <= 400; ++seed) {
    Gen g(seed);
    Differential d(g.chance(2) ? UINT32_MAX : 64 * 1024);
    for (int blocks = 0; blocks < 60; ++blocks) {
      const std::string where = "seed " + std::to_string(seed) + " block " + std::to_string(blocks);
      if (g.chance(6)) {
        ASSERT_EQ(d.setSettingsTableSize(g.size()), "") << where;
      }
      if (g.chance(40)) {
        ASSERT_EQ(d.resetUnknown(), "") << where;
      }
      const Bytes block = g.block(d.reference().entries());
      feedCut(d, g, block, where);
      if (g.chance(15)) {
        ASSERT_EQ(d.setSettingsTableSize(g.size()), "") << where;
      }  // in a block
      ASSERT_EQ(d.endBlock(), "") << where;
    }
  }
}

TEST(HpackEquivalence, DeflaterBlocks) {
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    Gen g(seed);
    Differential d(64 * 1024);
    nghttp2_hd_deflater* deflater = nullptr;
    ASSERT_EQ(nghttp2_hd_deflate_new(&deflater, 4096), 0);
    for (int blocks = 0; blocks < 200; ++blocks) {
      const std::string where = "seed " + std::to_string(seed) + " block " + std::to_string(blocks);
      if (g.chance(25)) {
        const uint32_t size = g.chance(2) ? 4096 : g.below(8192);
        ASSERT_EQ(nghttp2_hd_deflate_change_table_size(deflater, size), 0);
        ASSERT_EQ(d.setSettingsTableSize(size), "") << where;
      }
      Headers h{{":method", g.chance(2) ? "GET" : "POST"},
                {":path", "/p/" + std::to_string(g.below(50))},
                {":authority", "host" + std::to_string(g.below(3))},
                {"user-agent", "ua" + std::to_string(g.below(4))}};
      for (uint32_t k = g.below(6); k > 0; --k)
        h.push_back({"x-" + std::to_string(g.below(20)), g.text()});
      std::vector<nghttp2_nv> nva;
      for (auto& [n, v] : h) {
        nva.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                       n.size(), v.size(),
                       static_cast<uint8_t>(g.chance(10) ? NGHTTP2_NV_FLAG_NO_INDEX : 0)});
      }
      Bytes block(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()));
      const ssize_t n =
          nghttp2_hd_deflate_hd(deflater, block.data(), block.size(), nva.data(), nva.size());
      ASSERT_GE(n, 0);
      block.resize(static_cast<size_t>(n));
      if (g.chance(50)) {
        ASSERT_EQ(d.resetUnknown(), "") << where;
      }  // bytes lost before
      feedCut(d, g, block, where);
      ASSERT_EQ(d.endBlock(), "") << where;
    }
    nghttp2_hd_deflate_del(deflater);
  }
}

TEST(HpackEquivalence, RandomScripts) {
  std::mt19937 rng(7);
  for (int run = 0; run < 3000; ++run) {
    Bytes script(1 + rng() % 400);
    for (uint8_t& b : script) b = static_cast<uint8_t>(rng());
    Differential d(run % 2 ? UINT32_MAX : 64 * 1024);
    ASSERT_EQ(d.run(script), "") << "run " << run;
  }
}

}  // namespace
}  // namespace l7tap::h2test
