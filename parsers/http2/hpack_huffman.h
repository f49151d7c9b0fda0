// HPACK's Huffman code (RFC 7541 section 5.2 and appendix B).
#pragma once

#include <cstddef>
#include <cstdint>

namespace l7tap::hpack {

/// Symbols 0-255 and EOS (256).
inline constexpr size_t kHuffmanSymbols = 257;

/// The code of `symbol`, right-aligned, and its length in bits.
struct HuffmanCode {
  uint32_t bits;
  uint8_t length;
};
HuffmanCode huffmanCode(size_t symbol);

/// Decodes `n` Huffman-coded bytes into `out`, which must have room for
/// maxHuffmanDecoded(n) bytes. Returns the decoded length, or -1 when the
/// input is not a valid string: it contains EOS, or ends with padding longer
/// than 7 bits or not made of the most significant bits of EOS (all ones).
long huffmanDecode(const uint8_t* in, size_t n, char* out);

/// False when the first `n` bytes of a Huffman string already contain EOS
/// (an error whatever follows).
bool huffmanPrefixValid(const uint8_t* in, size_t n);

/// The shortest code is 5 bits: at most 8 symbols per 5 input bytes.
constexpr size_t maxHuffmanDecoded(size_t n) { return n * 8 / 5 + 1; }

}  // namespace l7tap::hpack
