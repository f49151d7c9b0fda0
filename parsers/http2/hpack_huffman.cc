#include "parsers/http2/hpack_huffman.h"

#include <array>

namespace l7tap::hpack {

namespace {

// Code lengths of symbols 0-256 (RFC 7541 appendix B). The code is
// canonical: codes of one length are consecutive in symbol order and follow
// the shorter ones, so the lengths determine every code.
constexpr uint8_t kLengths[kHuffmanSymbols] = {
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6,  10, 10, 12, 13, 6,  8,  11, 10, 10, 8,  11, 8,  6,  6,  6,
    5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8,  15, 6,  12, 10, 13, 6,  7,  7,  7,  7,  7,  7,
    7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8,  13, 19, 13, 14, 6,
    15, 5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,  6,  7,  6,  5,  5,  6,  7,  7,
    7,  7,  7,  15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21,
    23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24,
    21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30};

constexpr uint16_t kEos = 256;

// The decoder walks the code tree four bits at a time: 256 internal nodes
// (a complete code of 257 symbols), 16 transitions each.
struct Transition {
  uint8_t next;    // internal node after the nibble (0 = the root)
  uint8_t flags;   // kEmit, kFail
  uint8_t symbol;  // with kEmit
};
constexpr uint8_t kEmit = 1;
constexpr uint8_t kFail = 2;  // the nibble completed EOS

struct Tables {
  std::array<HuffmanCode, kHuffmanSymbols> codes{};
  std::array<std::array<Transition, 16>, 256> next{};
  // Padding may end here: the bits since the last symbol are all ones and
  // fewer than 8.
  std::array<bool, 256> accepting{};

  Tables() {
    uint32_t code = 0;
    uint8_t len = 0;
    for (uint8_t l = 1; l <= 30; ++l) {
      for (size_t s = 0; s < kHuffmanSymbols; ++s) {
        if (kLengths[s] != l) continue;
        code <<= (l - len);
        len = l;
        codes[s] = {code, l};
        ++code;
      }
    }
    // Tree: child[node][bit] >= 0 is an internal node, < 0 is -(symbol + 1).
    int child[256][2];
    for (auto& c : child) c[0] = c[1] = 0;
    int nodes = 1;
    for (size_t s = 0; s < kHuffmanSymbols; ++s) {
      int node = 0;
      for (int b = codes[s].length - 1; b >= 0; --b) {
        const int bit = (codes[s].bits >> b) & 1;
        if (b == 0) {
          child[node][bit] = -static_cast<int>(s) - 1;
        } else {
          if (child[node][bit] == 0) child[node][bit] = nodes++;
          node = child[node][bit];
        }
      }
    }
    // Depth along the all-ones path.
    int node = 0;
    for (int depth = 0; depth < 8 && node >= 0; ++depth) {
      accepting[node] = true;
      node = child[node][1];
    }
    for (int n = 0; n < 256; ++n) {
      for (int nibble = 0; nibble < 16; ++nibble) {
        Transition t{static_cast<uint8_t>(n), 0, 0};
        int at = n;
        for (int b = 3; b >= 0; --b) {
          const int c = child[at][(nibble >> b) & 1];
          if (c >= 0) {
            at = c;
            continue;
          }
          const int sym = -c - 1;
          if (sym == kEos) {
            t.flags |= kFail;
          } else {
            t.flags |= kEmit;
            t.symbol = static_cast<uint8_t>(sym);
          }
          at = 0;
        }
        t.next = static_cast<uint8_t>(at);
        next[n][nibble] = t;
      }
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

HuffmanCode huffmanCode(size_t symbol) { return tables().codes[symbol]; }

long huffmanDecode(const uint8_t* in, size_t n, char* out) {
  const Tables& t = tables();
  char* o = out;
  uint8_t state = 0;
  uint8_t flags = 0;
  for (size_t i = 0; i < n; ++i) {
    const Transition& hi = t.next[state][in[i] >> 4];
    *o = static_cast<char>(hi.symbol);
    o += hi.flags & kEmit;
    const Transition& lo = t.next[hi.next][in[i] & 0xf];
    *o = static_cast<char>(lo.symbol);
    o += lo.flags & kEmit;
    flags |= hi.flags | lo.flags;
    state = lo.next;
  }
  if ((flags & kFail) || !t.accepting[state]) return -1;
  return o - out;
}

bool huffmanPrefixValid(const uint8_t* in, size_t n) {
  const Tables& t = tables();
  uint8_t state = 0;
  for (size_t i = 0; i < n; ++i) {
    const Transition& hi = t.next[state][in[i] >> 4];
    const Transition& lo = t.next[hi.next][in[i] & 0xf];
    if ((hi.flags | lo.flags) & kFail) return false;
    state = lo.next;
  }
  return true;
}

}  // namespace l7tap::hpack
