// http_route: a URL path turned into a label of bounded cardinality.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/limits.h"

namespace l7tap::metrics {

/// The placeholder that replaces an identifier-like path segment. One name
/// for every kind (number, UUID, hex, token, e-mail) so that a route does not
/// change when an API switches from numeric ids to UUIDs.
inline constexpr std::string_view kIdPlaceholder = "{id}";
/// What replaces the segments past max_route_segments or max_route_bytes.
inline constexpr std::string_view kTailPlaceholder = "{tail}";

/// Where a route is written: a fixed-size buffer, so templating a path on the
/// pipeline thread allocates nothing.
struct RouteBuffer {
  std::array<char, kRouteBufferBytes> bytes;
  size_t size = 0;
  std::string_view view() const { return {bytes.data(), size}; }
};

/// Turns request targets into `http_route` values.
///
/// A route is, in order of precedence:
///  1. the first user-supplied pattern that matches the path, verbatim.
///     Pattern segments are literals, `{name}` or `*` (exactly one segment),
///     or `**` as the last segment (any number of remaining segments, none
///     included);
///  2. the path with identifier-like segments replaced by `{id}` (see
///     isIdentifierSegment), empty segments dropped (`//a/` is `/a`), the
///     query and fragment removed, and at most max_route_segments segments
///     and max_route_bytes bytes kept (the rest is `/{tail}`).
/// `*` (OPTIONS *) stays `*`; an absolute-form target (`http://h/p`) is
/// routed by its path; anything else that does not start with `/` is
/// `{other}`.
class RouteTemplater {
 public:
  /// Patterns past limits.max_route_patterns, and patterns that do not start
  /// with `/`, are ignored and counted in ignoredPatterns().
  explicit RouteTemplater(const std::vector<std::string>& patterns = {},
                          const MetricsLimits& limits = {});

  /// The route of `target` (a request target or path), written into `out`.
  /// The view points into `out` or into this templater's patterns.
  std::string_view route(std::string_view target, RouteBuffer& out) const;
  /// The same, as an owned string (tests and start-up code).
  std::string route(std::string_view target) const;

  size_t ignoredPatterns() const { return ignored_patterns_; }

 private:
  struct Pattern {
    std::string text;
    std::vector<std::string> segments;
    bool rest = false;  // ended in `**`
  };
  // `more`: the path has segments past `count` (only `**` patterns match).
  const Pattern* match(const std::string_view* segments, size_t count, bool more) const;

  std::vector<Pattern> patterns_;
  size_t max_route_bytes_;
  size_t max_route_segments_;
  size_t ignored_patterns_ = 0;
};

/// Whether a path segment looks like an identifier rather than a fixed part
/// of the API: all digits; digits and punctuation without letters (dates,
/// versions such as 1.2.3, amounts); a UUID; 16 or more hex digits; an
/// e-mail address (contains `@`); percent-encoded text; bytes outside
/// printable ASCII; longer than 64 bytes; or 16 to 64 bytes of token
/// characters mixing letters and digits with at least 3 digits, or both
/// letter cases and no dot (base64 and most API keys, while
/// `configuration-v2`, `oauth2` or a gRPC service such as
/// `grpc.health.v1.Health` stay).
bool isIdentifierSegment(std::string_view segment);

}  // namespace l7tap::metrics
