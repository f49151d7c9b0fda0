// HpackDecoder's own inflater against nghttp2's, on the same operations:
// fragments of header blocks, block ends, table losses and SETTINGS table
// sizes (the script format of h2test::Differential). Aborts at the first
// difference in fields, results or table state. First byte: bit 0 bounds the
// table at 64 KiB (Http2Limits' default) instead of not at all.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "tests/parsers/http2/hpack_reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  l7tap::h2test::Differential d((data[0] & 1) ? 64 * 1024 : UINT32_MAX);
  const std::string diff = d.run({data + 1, size - 1});
  if (!diff.empty()) {
    std::fprintf(stderr, "hpack: differs from nghttp2: %s\n", diff.c_str());
    std::abort();
  }
  return 0;
}
