// metrics/ route templating on arbitrary targets, patterns and limits: an
// http_route stays within max_route_bytes and max_route_segments (the label
// is what bounds a metric's cardinality), never leaves the fixed buffer, and
// is the same every time for the same target. Targets double as Accept
// headers for the exposition's format negotiation.
//
// Input: limits (2 bytes max_route_bytes LE, 1 byte max_route_segments, 1
// byte max_route_patterns), then chunks split at `\x01PKT` (fuzz_input.h)
// whose first byte says what the rest is: 0 a route pattern, else a target.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/exposition.h"
#include "metrics/route.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using l7tap::metrics::kRouteBufferBytes;

// Which invariant broke, for the log beside the crash input.
#define check(ok)                                                   \
  do {                                                              \
    if (!(ok)) {                                                    \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #ok); \
      std::abort();                                                 \
    }                                                               \
  } while (0)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l7tap::fuzz::Reader in(data, size);
  l7tap::metrics::MetricsLimits limits;
  // Around and past the compiled-in caps, down to zero.
  limits.max_route_bytes = in.u16() % (kRouteBufferBytes + 64);
  limits.max_route_segments = in.u8() % (l7tap::metrics::kMaxRouteSegmentsCap + 8);
  limits.max_route_patterns = in.u8();

  std::vector<std::string> patterns, targets;
  l7tap::fuzz::forEachChunk(in.rest(), [&](uint8_t control, std::span<const uint8_t> bytes) {
    std::string s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    (control == 0 ? patterns : targets).push_back(std::move(s));
  });

  const l7tap::metrics::RouteTemplater templater(patterns, limits);
  const l7tap::metrics::RouteTemplater same(patterns, limits);
  check(templater.ignoredPatterns() <= patterns.size());
  // What the templater may write: the configured bytes (clamped to the
  // buffer), or a pattern verbatim, or one of its fixed routes.
  // `/{tail}` is written even when max_route_bytes is shorter.
  const size_t max_bytes = std::max(std::min(limits.max_route_bytes, kRouteBufferBytes),
                                    1 + l7tap::metrics::kTailPlaceholder.size());
  const size_t max_segments =
      std::min(limits.max_route_segments, l7tap::metrics::kMaxRouteSegmentsCap);
  for (const std::string& target : targets) {
    // The scraper's Accept header is untrusted too (endpoint/): any bytes
    // give one of the two formats.
    const auto format = l7tap::metrics::negotiateFormat(target);
    check(format == l7tap::metrics::ExpositionFormat::kOpenMetrics ||
          format == l7tap::metrics::ExpositionFormat::kPrometheusText);
    l7tap::metrics::RouteBuffer buffer;
    const std::string_view route = templater.route(target, buffer);
    const std::string owned(route);
    check(templater.route(target) == owned);
    check(same.route(target) == owned);
    check(buffer.size <= buffer.bytes.size());
    bool is_pattern = false;
    for (const std::string& p : patterns) is_pattern |= p == owned;
    if (!is_pattern && owned != "*" && owned != "/" && owned != "{other}") {
      check(owned.size() <= max_bytes);
      size_t segments = 0;
      for (char c : owned) segments += c == '/';
      // The kept segments and one `{tail}`.
      check(segments <= max_segments + 1);
      check(!owned.empty() && owned[0] == '/');
    }
    if (is_pattern) check(owned.size() <= max_bytes);
    for (size_t pos = 0; pos <= target.size();) {
      const size_t end = std::min(target.find('/', pos), target.size());
      const std::string_view seg = std::string_view(target).substr(pos, end - pos);
      const bool id = l7tap::metrics::isIdentifierSegment(seg);
      check(id == l7tap::metrics::isIdentifierSegment(seg));
      if (seg.size() > 64) check(id);
      if (seg.empty()) check(!id);
      pos = end + 1;
    }
  }
  return 0;
}
