// UTF-8 validation for whatever must keep arbitrary bytes
// readable (JSON strings, record messages).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace l7tap {

/// Length of the valid UTF-8 sequence at s[i] (1 for ASCII), or 0 when the
/// bytes there are not one: cut short, overlong, a surrogate, or past
/// U+10FFFF. The decoded code point goes to `code_point` if given.
inline size_t utf8SequenceLength(std::string_view s, size_t i, uint32_t* code_point = nullptr) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) {
    n = 1, cp = c;
  } else if ((c & 0xe0) == 0xc0) {
    n = 2, cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (b(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return 0;
  if (code_point) *code_point = cp;
  return n;
}

}  // namespace l7tap
