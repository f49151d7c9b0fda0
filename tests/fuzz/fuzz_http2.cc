// The HTTP/2 parser (frames, HPACK, the resync state) fed both directions:
// the input is a mode byte, then chunks (fuzz_input.h) that are client or
// server bytes, gaps or ends. Mode bit 0: the connection was joined mid-way
// (no preface expected); bit 1: small limits.
#include <cstddef>
#include <cstdint>

#include "parsers/http2/http2_parser.h"
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
  l7tap::Http2Limits limits;
  if (mode & 0x02) {
    limits.max_open_streams = 4;
    limits.max_header_list_bytes = 256;
    limits.max_url_bytes = 16;
    limits.max_header_value_bytes = 8;
    limits.max_resync_bytes = 512;
    limits.max_frame_bytes = 4096;
  }
  l7tap::fuzz::CheckingSink sink(limits.max_url_bytes, limits.max_header_value_bytes);
  l7tap::Http2Parser parser(sink, limits);
  if (mode & 0x01) parser.startMidstream();
  if (mode & 0x04) {
    l7tap::HttpRecord upgraded;
    upgraded.method = "GET";
    upgraded.path = "/";
    upgraded.version = "1.1";
    parser.adoptUpgradedRequest(upgraded);
  }
  uint64_t ts = 1000;
  bool ended[2] = {false, false};
  l7tap::fuzz::forEachChunk(in.rest(), [&](uint8_t control, std::span<const uint8_t> bytes) {
    const int r = control & kChunkServer;
    const auto role = r ? l7tap::Role::kServer : l7tap::Role::kClient;
    ts += 1000;
    if (ended[r]) return;
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
    const int64_t next = parser.bytesToNextFrame(role);
    if (next < -1) std::abort();
    (void)parser.skippableBytes(role);
  });
  for (int r = 0; r < 2; ++r) {
    const l7tap::Http2HpackSync& s = parser.hpackSync(static_cast<l7tap::Role>(r));
    if (s.resumes > s.losses) std::abort();
  }
  parser.finish(ts + 1);
  (void)l7tap::looksLikeHttp2Frames(in.rest());
  return 0;
}
