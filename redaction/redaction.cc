#include "redaction/redaction.h"

#include <algorithm>
#include <cstring>

namespace l7tap {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool isSchemeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

// Where the authority of an absolute-form target starts (after "scheme://"),
// or npos for any other form.
size_t absoluteFormAuthority(std::string_view target) {
  const size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return std::string_view::npos;
  for (size_t i = 0; i < scheme_end; ++i) {
    if (!isSchemeChar(target[i])) return std::string_view::npos;
  }
  return scheme_end + 3;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

bool isDeniedHeader(std::string_view name) {
  return std::any_of(kDeniedHeaders.begin(), kDeniedHeaders.end(),
                     [&](std::string_view d) { return equalsIgnoreCase(name, d); });
}

bool RedactionPolicy::allows(std::string_view key) const {
  return std::any_of(query_allow.begin(), query_allow.end(),
                     [&](const std::string& k) { return k == key; });
}

const RedactionPolicy& defaultRedactionPolicy() {
  static const RedactionPolicy policy;
  return policy;
}

QueryRedaction redactQuery(std::string& query, const RedactionPolicy& policy, size_t max) {
  QueryRedaction result;
  if (policy.keep_query || query.empty()) return result;
  // Nothing to replace: no allocation, no copy.
  if (query.find('=') == std::string::npos) return result;
  char out[RedactionLimits::kMaxQueryBytes];
  const size_t cap = std::min(max, sizeof out);
  size_t n = 0;
  const std::string_view in(query);
  size_t pos = 0;
  while (pos <= in.size()) {
    size_t end = in.find('&', pos);
    if (end == std::string_view::npos) end = in.size();
    const std::string_view pair = in.substr(pos, end - pos);
    const size_t eq = pair.find('=');
    std::string_view kept = pair;
    bool replace = false;
    if (eq != std::string_view::npos && eq + 1 < pair.size() &&
        !policy.allows(pair.substr(0, eq)) && pair.substr(eq + 1) != kRedactedValue) {
      kept = pair.substr(0, eq + 1);
      replace = true;
    }
    const size_t sep = pos == 0 ? 0 : 1;
    const size_t need = sep + kept.size() + (replace ? kRedactedValue.size() : 0);
    if (n + need > cap) {
      result.truncated = true;
      result.changed = true;
      break;
    }
    if (sep) out[n++] = '&';
    if (!kept.empty()) std::memcpy(out + n, kept.data(), kept.size());
    n += kept.size();
    if (replace) {
      std::memcpy(out + n, kRedactedValue.data(), kRedactedValue.size());
      n += kRedactedValue.size();
      result.changed = true;
    }
    if (end == in.size()) break;
    pos = end + 1;
  }
  if (result.changed) query.assign(out, n);
  return result;
}

bool stripAuthorityUserinfo(std::string& authority) {
  // The last '@': a password may hold an unencoded '@', a host never does.
  const size_t at = authority.rfind('@');
  if (at == std::string::npos) return false;
  authority.erase(0, at + 1);
  return true;
}

bool stripTargetUserinfo(std::string& target) {
  // An absolute form starts with a scheme: letters, digits, '+', '-', '.'.
  const size_t start = absoluteFormAuthority(target);
  if (start == std::string::npos) return false;
  size_t end = target.find_first_of("/?#", start);
  if (end == std::string::npos) end = target.size();
  const size_t at = std::string_view(target).substr(start, end - start).rfind('@');
  if (at == std::string_view::npos) return false;
  target.erase(start, at + 1);
  return true;
}

namespace {

// The pattern as the message shows it: control bytes as \xNN, so that the
// error stays on one line whatever the flag or file held.
void appendPrintable(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out.push_back(c);
      continue;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out.append("\\x");
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xf]);
  }
}

bool fail(std::string& error, std::string_view pattern, std::string_view why) {
  error = "--redact-path '";
  appendPrintable(error, pattern);
  error.append("': ");
  error.append(why);
  return false;
}

// A path's segments as offsets into it: the first kLookedSegments, which is
// one more than a pattern can have, so an exact pattern never matches a
// longer path.
constexpr size_t kLookedSegments = RedactionLimits::kMaxPatternSegments + 1;
static_assert(kLookedSegments <= 64, "the redaction mask is 64 bits");

struct Span {
  uint32_t offset;
  uint32_t size;
};

}  // namespace

bool parsePathPattern(std::string_view pattern, std::string& error) {
  if (pattern.empty() || pattern[0] != '/') {
    error = "--redact-path needs a pattern starting with '/', not '";
    appendPrintable(error, pattern);
    error.push_back('\'');
    return false;
  }
  if (pattern.size() > RedactionLimits::kMaxPatternBytes) {
    return fail(error, pattern.substr(0, 64),
                "longer than " + std::to_string(RedactionLimits::kMaxPatternBytes) + " bytes");
  }
  if (pattern.find('?') != std::string_view::npos) {
    return fail(error, pattern,
                "a pattern matches the path only, no '?' (the query is always redacted)");
  }
  size_t count = 0;
  bool wildcard = false;
  for (size_t pos = 1;; ++count) {
    size_t end = pattern.find('/', pos);
    if (end == std::string_view::npos) end = pattern.size();
    const std::string_view seg = pattern.substr(pos, end - pos);
    if (seg.empty()) return fail(error, pattern, "empty segment (no '//', no trailing '/')");
    if (count == RedactionLimits::kMaxPatternSegments) {
      return fail(
          error, pattern,
          "more than " + std::to_string(RedactionLimits::kMaxPatternSegments) + " segments");
    }
    if (seg == "**") {
      if (end != pattern.size()) return fail(error, pattern, "'**' must be the last segment");
      wildcard = true;
    } else if (seg == "*") {
      wildcard = true;
    } else if (seg.find('*') != std::string_view::npos) {
      return fail(error, pattern, "'*' and '**' stand for whole segments only");
    } else if (seg.front() == '{' && seg.back() == '}') {
      std::string why = "use '*' for a variable segment, not '";
      appendPrintable(why, seg);
      return fail(error, pattern, why + "'");
    } else if (seg == kRedactedValue) {
      return fail(error, pattern, "'REDACTED' is what redaction writes, not a literal segment");
    }
    if (end == pattern.size()) break;
    pos = end + 1;
  }
  if (!wildcard) return fail(error, pattern, "no '*' or '**': it would redact nothing");
  return true;
}

bool checkPathPatterns(const std::vector<std::string>& patterns, std::string& error) {
  if (patterns.size() > RedactionLimits::kMaxPathPatterns) {
    error = "--redact-path: at most " + std::to_string(RedactionLimits::kMaxPathPatterns) +
            " patterns, not " + std::to_string(patterns.size());
    return false;
  }
  for (const std::string& p : patterns) {
    if (!parsePathPattern(p, error)) return false;
  }
  return true;
}

PathRedactor::PathRedactor(const std::vector<std::string>& patterns) : source_(patterns) {
  std::string error;
  for (const std::string& text : patterns) {
    if (patterns_.size() == RedactionLimits::kMaxPathPatterns) break;
    if (!parsePathPattern(text, error)) continue;
    Pattern p;
    p.first = static_cast<uint32_t>(literals_.size());
    const auto base = static_cast<uint32_t>(text_.size());
    text_.append(text);
    for (size_t pos = 1;;) {
      size_t end = text.find('/', pos);
      if (end == std::string::npos) end = text.size();
      const std::string_view seg = std::string_view(text).substr(pos, end - pos);
      if (seg == "**") {
        p.rest = true;
        break;
      }
      if (seg == "*") {
        p.wildcards |= uint64_t{1} << p.count;
      } else {
        literals_.push_back(
            {base + static_cast<uint32_t>(pos), static_cast<uint32_t>(seg.size()), p.count});
        ++p.literals;
      }
      ++p.count;
      if (end == text.size()) break;
      pos = end + 1;
    }
    patterns_.push_back(p);
  }
}

PathRedaction PathRedactor::redact(std::string& target, size_t max) const {
  PathRedaction result;
  if (patterns_.empty()) return result;
  size_t start = 0;
  if (target.empty() || target[0] != '/') {
    const size_t authority = absoluteFormAuthority(target);
    if (authority == std::string::npos) return result;
    start = target.find_first_of("/?#", authority);
    if (start == std::string::npos || target[start] != '/') return result;
  }
  const std::string_view in(target);
  const size_t end = std::min(in.find('?', start), in.size());

  std::array<Span, kLookedSegments> spans;
  size_t n = 0;
  bool more = false;
  for (size_t pos = start; pos < end;) {
    size_t seg_end = in.find('/', pos + 1);
    if (seg_end == std::string_view::npos || seg_end > end) seg_end = end;
    if (n == spans.size()) {
      more = true;
      break;
    }
    spans[n++] = {static_cast<uint32_t>(pos + 1), static_cast<uint32_t>(seg_end - pos - 1)};
    pos = seg_end;
  }

  // Which segments to redact: a bit per looked-at segment, and every
  // segment from `tail` on (a `**`).
  uint64_t mask = 0;
  size_t tail = std::string::npos;
  for (const Pattern& p : patterns_) {
    if (p.rest ? n <= p.count : (more || n != p.count)) continue;
    // Last literal first: an API's paths share their first segments
    // (`/api/v1/...`) and differ further on.
    bool match = true;
    for (uint32_t k = p.literals; match && k-- > 0;) {
      const Literal& l = literals_[p.first + k];
      const Span& seg = spans[l.index];
      match = l.size == seg.size &&
              (l.size == 0 ||
               std::memcmp(text_.data() + l.offset, in.data() + seg.offset, l.size) == 0);
    }
    if (!match) continue;
    mask |= p.wildcards;
    if (p.rest) tail = std::min<size_t>(tail, p.count);
  }
  if (mask == 0 && tail == std::string::npos) return result;

  // The redacted length first: nothing is written when nothing changes.
  auto redacted = [&](size_t index) {
    return index >= tail || (index < 64 && ((mask >> index) & 1) != 0);
  };
  size_t out_size = start;
  size_t index = 0;
  for (size_t pos = start; pos < end; ++index) {
    size_t seg_end = in.find('/', pos + 1);
    if (seg_end == std::string_view::npos || seg_end > end) seg_end = end;
    const std::string_view seg = in.substr(pos + 1, seg_end - pos - 1);
    if (redacted(index) && !seg.empty()) {
      result.changed |= seg != kRedactedValue;
      out_size += 1 + kRedactedValue.size();
    } else {
      out_size += 1 + seg.size();
    }
    pos = seg_end;
  }
  if (!result.changed) return result;
  out_size += in.size() - end;

  const size_t cap = std::min(max, RedactionLimits::kMaxPathBytes);
  if (out_size > cap) {
    // `/REDACTED` is left alone by every valid pattern (none has a literal
    // REDACTED segment), so this is as idempotent as the rewrite below.
    result.truncated = true;
    target.resize(start);
    target.push_back('/');
    target.append(kRedactedValue);
    return result;
  }
  char out[RedactionLimits::kMaxPathBytes];
  size_t o = 0;
  auto put = [&](std::string_view s) {
    if (!s.empty()) std::memcpy(out + o, s.data(), s.size());
    o += s.size();
  };
  put(in.substr(0, start));
  index = 0;
  for (size_t pos = start; pos < end; ++index) {
    size_t seg_end = in.find('/', pos + 1);
    if (seg_end == std::string_view::npos || seg_end > end) seg_end = end;
    const std::string_view seg = in.substr(pos + 1, seg_end - pos - 1);
    put("/");
    put(redacted(index) && !seg.empty() ? kRedactedValue : seg);
    pos = seg_end;
  }
  put(in.substr(end));
  target.assign(out, o);
  return result;
}

CompiledPathPatterns::~CompiledPathPatterns() { delete current_.load(std::memory_order_acquire); }

const PathRedactor& CompiledPathPatterns::get(const std::vector<std::string>& patterns) const {
  const PathRedactor* p = current_.load(std::memory_order_acquire);
  if (p != nullptr && p->compiledFrom(patterns)) return *p;
  // Once per policy object (and again if its patterns change).
  auto fresh = std::make_unique<const PathRedactor>(patterns);
  const std::lock_guard<std::mutex> lock(mutex_);
  p = current_.load(std::memory_order_acquire);
  if (p != nullptr && p->compiledFrom(patterns)) return *p;
  if (p != nullptr) retired_.emplace_back(p);
  current_.store(fresh.get(), std::memory_order_release);
  return *fresh.release();
}

}  // namespace l7tap
