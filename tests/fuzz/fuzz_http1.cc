// The HTTP/1 parser fed both directions: the input is a mode byte, then
// chunks (fuzz_input.h) that are client or server bytes, gaps or ends.
// Small limits, so the bounds (pipelining depth, URL and value sizes, the
// resync scan) are crossed often.
#include <cstddef>
#include <cstdint>

#include "parsers/http1/http1_parser.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/record_check.h"

namespace {

using l7tap::fuzz::kChunkEnd;
using l7tap::fuzz::kChunkGap;
using l7tap::fuzz::kChunkServer;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l7tap::fuzz::Reader in(data, size);
  const uint8_t mode = in.u8();
  l7tap::Http1Limits limits;
  if (mode & 0x01) {
    limits.max_pending_requests = 4;
    limits.max_url_bytes = 16;
    limits.max_header_value_bytes = 8;
    limits.max_resync_scan_bytes = 64;
  }
  l7tap::fuzz::CheckingSink sink(limits.max_url_bytes, limits.max_header_value_bytes);
  l7tap::Http1Parser parser(sink, limits);
  uint64_t ts = 1000;
  bool stopped = false;
  bool ended[2] = {false, false};
  l7tap::fuzz::forEachChunk(in.rest(), [&](uint8_t control, std::span<const uint8_t> bytes) {
    if (stopped) return;
    const int r = control & kChunkServer;
    const auto role = r ? l7tap::Role::kServer : l7tap::Role::kClient;
    ts += 1000;
    if (ended[r]) return;  // as the session: nothing follows an end
    if (control & kChunkEnd) {
      ended[r] = true;
      parser.onEnd(role, (control & kChunkGap) != 0, ts);
      return;
    }
    if (control & kChunkGap) {
      const uint64_t len = bytes.size() >= 2 ? bytes[0] | (bytes[1] << 8) : 1;
      parser.onGap(role, len, ts);
      return;
    }
    const l7tap::ParseResult result = parser.onData(role, bytes, ts);
    if (result.consumed > bytes.size()) std::abort();
    if (result.outcome == l7tap::ParseOutcome::kSwitchProtocol) {
      (void)parser.upgradedRequest().path.size();
      stopped = true;
    } else if (result.outcome == l7tap::ParseOutcome::kStop) {
      stopped = true;
    }
    (void)parser.skippableBytes(l7tap::Role::kClient);
    (void)parser.skippableBytes(l7tap::Role::kServer);
  });
  parser.finish(ts + 1);
  return 0;
}
