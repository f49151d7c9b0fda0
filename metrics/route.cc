#include "metrics/route.h"

#include <algorithm>
#include <cstring>

namespace l7tap::metrics {
namespace {

constexpr size_t kLongSegmentBytes = 64;
constexpr size_t kMinTokenBytes = 16;
constexpr size_t kMinHexBytes = 16;
constexpr std::string_view kOtherPlaceholder = "{other}";

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool isLower(char c) { return c >= 'a' && c <= 'z'; }
bool isUpper(char c) { return c >= 'A' && c <= 'Z'; }

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isHex(s[i])) return false;
  }
  return true;
}

// Splits the path part of `target` into at most `max` non-empty segments;
// returns how many, and sets `more` if segments were left out.
size_t split(std::string_view path, std::string_view* out, size_t max, bool& more) {
  size_t n = 0;
  more = false;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i == path.size()) break;
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    if (n == max) {
      more = true;
      break;
    }
    out[n++] = path.substr(i, end - i);
    i = end;
  }
  return n;
}

}  // namespace

bool isIdentifierSegment(std::string_view s) {
  if (s.empty()) return false;
  if (s.size() > kLongSegmentBytes) return true;
  size_t digits = 0, lower = 0, upper = 0, dots = 0;
  bool all_hex = true;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e || c == '%' || c == '@') return true;
    if (isDigit(c)) {
      ++digits;
    } else if (isLower(c)) {
      ++lower;
    } else if (isUpper(c)) {
      ++upper;
    } else if (c == '.') {
      ++dots;
    }
    all_hex = all_hex && isHex(c);
  }
  if (digits > 0 && lower == 0 && upper == 0) return true;  // 42, 2026-12-05, 1.2.3
  if (isUuid(s)) return true;
  if (all_hex && s.size() >= kMinHexBytes) return true;
  if (s.size() >= kMinTokenBytes && digits > 0 && lower + upper > 0) {
    bool token_chars = std::all_of(s.begin(), s.end(), [](char c) {
      return isDigit(c) || isLower(c) || isUpper(c) || std::strchr("-_.~+=", c) != nullptr;
    });
    if (token_chars && (digits >= 3 || (lower > 0 && upper > 0 && dots == 0))) return true;
  }
  return false;
}

RouteTemplater::RouteTemplater(const std::vector<std::string>& patterns,
                               const MetricsLimits& limits)
    : max_route_bytes_(std::min(limits.max_route_bytes, kRouteBufferBytes - 16)),
      max_route_segments_(std::min(limits.max_route_segments, kMaxRouteSegmentsCap)) {
  for (const std::string& text : patterns) {
    if (patterns_.size() == limits.max_route_patterns || text.empty() || text[0] != '/' ||
        text.size() > max_route_bytes_) {
      ++ignored_patterns_;
      continue;
    }
    Pattern p{text, {}, false};
    std::array<std::string_view, kMaxRouteSegmentsCap> segs;
    bool more = false;
    size_t n = split(p.text, segs.data(), segs.size(), more);
    if (more) {
      ++ignored_patterns_;
      continue;
    }
    for (size_t i = 0; i < n; ++i) p.segments.emplace_back(segs[i]);
    if (!p.segments.empty() && p.segments.back() == "**") {
      p.rest = true;
      p.segments.pop_back();
    }
    patterns_.push_back(std::move(p));
  }
}

const RouteTemplater::Pattern* RouteTemplater::match(const std::string_view* segments, size_t count,
                                                     bool more) const {
  for (const Pattern& p : patterns_) {
    if (more && !p.rest) continue;
    if (p.rest ? count < p.segments.size() : count != p.segments.size()) continue;
    bool ok = true;
    for (size_t i = 0; ok && i < p.segments.size(); ++i) {
      const std::string& ps = p.segments[i];
      bool wildcard = ps == "*" || (ps.size() >= 2 && ps.front() == '{' && ps.back() == '}');
      ok = wildcard || ps == segments[i];
    }
    if (ok) return &p;
  }
  return nullptr;
}

std::string_view RouteTemplater::route(std::string_view target, RouteBuffer& out) const {
  out.size = 0;
  auto append = [&out](std::string_view s) {
    if (!s.empty()) std::memcpy(out.bytes.data() + out.size, s.data(), s.size());
    out.size += s.size();
  };
  if (target == "*") return "*";
  // Absolute form (a proxy's request line, or :path from some clients).
  if (size_t scheme = target.find("://");
      scheme != std::string_view::npos && target.find_first_of("/?#") > scheme) {
    size_t path = target.find_first_of("/?#", scheme + 3);
    target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
  }
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty()) return "/";
  if (target[0] != '/') return kOtherPlaceholder;

  // One segment more than is kept, so a pattern of max_route_segments
  // segments cannot match a longer path.
  std::array<std::string_view, kMaxRouteSegmentsCap + 1> segs;
  bool more = false;
  size_t n = split(target, segs.data(), max_route_segments_ + 1, more);
  if (const Pattern* p = match(segs.data(), n, more)) return p->text;
  if (n == 0) return "/";
  bool truncated = more || n > max_route_segments_;
  n = std::min(n, max_route_segments_);
  std::array<size_t, kMaxRouteSegmentsCap> ends;  // the route's size after each segment
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string_view seg = isIdentifierSegment(segs[i]) ? kIdPlaceholder : segs[i];
    if (out.size + 1 + seg.size() > max_route_bytes_) {
      truncated = true;
      break;
    }
    append("/");
    append(seg);
    ends[kept++] = out.size;
  }
  if (truncated) {
    // `/{tail}` fits within max_route_bytes too: the registry cuts label
    // values at max_label_value_bytes (the same 128 by default), which would
    // make a cut route end in `/{ta`.
    while (kept > 0 && ends[kept - 1] + 1 + kTailPlaceholder.size() > max_route_bytes_) --kept;
    out.size = kept > 0 ? ends[kept - 1] : 0;
    append("/");
    append(kTailPlaceholder);
  }
  return out.view();
}

std::string RouteTemplater::route(std::string_view target) const {
  RouteBuffer buffer;
  return std::string(route(target, buffer));
}

}  // namespace l7tap::metrics
