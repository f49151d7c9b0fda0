// redaction/ on arbitrary bytes: queries, authorities, targets and
// --redact-path patterns the fuzzer chooses. Each function is idempotent,
// keeps its bound, and leaves no value the policy redacts: query values and
// path segments are checked against a plain reference written here, so a
// wrong match is a finding too, not only a crash.
//
// Input: a policy byte (0x01 keep_query), a 2-byte bound (LE; 0 means the
// parsers' 2048), then chunks split at `\x01PKT` (fuzz_input.h) whose first
// byte says what the rest is: 0 a path pattern, 1 a --query-allow key, 2 a
// query, 3 an authority, 4 a target, 5 a record (its path; 0x10 set: the
// method is CONNECT) with the last query and authority seen.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/common/records.h"
#include "redaction/redaction.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using l7tap::kRedactedValue;
using l7tap::RedactionLimits;

// Which invariant broke, for the log beside the crash input.
#define check(ok)                                                   \
  do {                                                              \
    if (!(ok)) {                                                    \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #ok); \
      std::abort();                                                 \
    }                                                               \
  } while (0)

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (size_t pos = 0;;) {
    const size_t end = std::min(s.find(sep, pos), s.size());
    out.push_back(s.substr(pos, end - pos));
    if (end == s.size()) return out;
    pos = end + 1;
  }
}

void checkQuery(std::string query, const l7tap::RedactionPolicy& policy, size_t max) {
  const std::string in = query;
  const l7tap::QueryRedaction r = l7tap::redactQuery(query, policy, max);
  if (!r.changed) check(query == in);
  if (r.changed) check(query.size() <= std::min(max, RedactionLimits::kMaxQueryBytes));
  if (!policy.keep_query) {
    for (std::string_view pair : split(query, '&')) {
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || eq + 1 == pair.size()) continue;
      check(policy.allows(pair.substr(0, eq)) || pair.substr(eq + 1) == kRedactedValue);
    }
  }
  std::string again = query;
  const l7tap::QueryRedaction second = l7tap::redactQuery(again, policy, max);
  check(!second.changed && again == query);
}

bool isSchemeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

// Where the authority of an absolute-form target starts, or npos.
size_t authorityStart(std::string_view t) {
  const size_t scheme = t.find("://");
  if (scheme == std::string_view::npos || scheme == 0) return std::string_view::npos;
  if (!std::all_of(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(scheme), isSchemeChar)) {
    return std::string_view::npos;
  }
  return scheme + 3;
}

// Where the path of `target` starts (see PathRedactor::redact), or npos.
size_t pathStart(std::string_view t) {
  if (!t.empty() && t[0] == '/') return 0;
  const size_t authority = authorityStart(t);
  if (authority == std::string_view::npos) return authority;
  const size_t p = t.find_first_of("/?#", authority);
  return p != std::string_view::npos && t[p] == '/' ? p : std::string_view::npos;
}

void checkUserinfo(std::string authority, std::string target) {
  l7tap::stripAuthorityUserinfo(authority);
  check(authority.find('@') == std::string::npos);
  check(!l7tap::stripAuthorityUserinfo(authority));
  l7tap::stripTargetUserinfo(target);
  if (const size_t start = authorityStart(target); start != std::string::npos) {
    const size_t end = std::min(target.find_first_of("/?#", start), target.size());
    check(std::string_view(target).substr(start, end - start).find('@') == std::string::npos);
  }
  std::string again = target;
  check(!l7tap::stripTargetUserinfo(again) && again == target);
}

// The plain reading of the patterns: split everything into strings, mark
// what every valid pattern (the first 64) matches, rebuild.
std::string referenceRedact(const std::vector<std::string>& patterns, const std::string& target,
                            size_t max, bool& truncated) {
  truncated = false;
  const size_t start = pathStart(target);
  if (start == std::string_view::npos) return target;
  const size_t end = std::min(target.find('?', start), target.size());
  const std::vector<std::string_view> segs =
      split(std::string_view(target).substr(start + 1, end - start - 1), '/');
  std::vector<bool> marked(segs.size(), false);
  size_t valid = 0;
  std::string error;
  for (const std::string& p : patterns) {
    if (valid == RedactionLimits::kMaxPathPatterns) break;
    if (!l7tap::parsePathPattern(p, error)) continue;
    ++valid;
    std::vector<std::string_view> ps = split(std::string_view(p).substr(1), '/');
    const bool rest = ps.back() == "**";
    if (rest) ps.pop_back();
    if (rest ? segs.size() <= ps.size() : segs.size() != ps.size()) continue;
    bool match = true;
    for (size_t i = 0; i < ps.size() && match; ++i) match = ps[i] == "*" || ps[i] == segs[i];
    if (!match) continue;
    for (size_t i = 0; i < segs.size(); ++i) {
      if ((i < ps.size() && ps[i] == "*") || (rest && i >= ps.size())) marked[i] = true;
    }
  }
  std::string out = target.substr(0, start);
  bool changed = false;
  for (size_t i = 0; i < segs.size(); ++i) {
    out += '/';
    if (marked[i] && !segs[i].empty()) {
      changed |= segs[i] != kRedactedValue;
      out += kRedactedValue;
    } else {
      out += segs[i];
    }
  }
  out += target.substr(end);
  if (!changed) return target;
  if (out.size() > std::min(max, RedactionLimits::kMaxPathBytes)) {
    truncated = true;
    return target.substr(0, start) + "/" + std::string(kRedactedValue);
  }
  return out;
}

void checkPath(const l7tap::PathRedactor& redactor, const std::vector<std::string>& patterns,
               std::string target, size_t max) {
  bool ref_truncated = false;
  const std::string expected = referenceRedact(patterns, target, max, ref_truncated);
  const size_t start = pathStart(target);
  const l7tap::PathRedaction r = redactor.redact(target, max);
  check(target == expected);
  check(r.truncated == ref_truncated);
  if (r.changed && !r.truncated)
    check(target.size() <= std::min(max, RedactionLimits::kMaxPathBytes));
  if (r.truncated) check(target.size() == start + 1 + kRedactedValue.size());
  std::string again = target;
  const l7tap::PathRedaction second = redactor.redact(again, max);
  check(!second.changed && !second.truncated && again == target);
}

void checkRecord(const l7tap::RedactionPolicy& policy, bool connect, std::string_view path,
                 const std::string& query, const std::string& host, size_t max) {
  l7tap::HttpRecord r;
  r.method = connect ? "CONNECT" : "GET";
  r.path.assign(path);
  r.query = query;
  r.host = host;
  r.redact(policy, max);
  check(r.host.find('@') == std::string::npos);
  l7tap::HttpRecord again = r;
  again.redact(policy, max);
  if (again.path != r.path || again.flags != r.flags) {
    std::fprintf(stderr, "record %s [%.*s] -> [%s] flags %x -> [%s] flags %x\n", r.method.c_str(),
                 static_cast<int>(path.size()), path.data(), r.path.c_str(), r.flags,
                 again.path.c_str(), again.flags);
  }
  check(again.path == r.path && again.query == r.query && again.host == r.host &&
        again.flags == r.flags);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l7tap::fuzz::Reader in(data, size);
  l7tap::RedactionPolicy policy;
  policy.keep_query = (in.u8() & 0x01) != 0;
  const size_t bound = in.u16();
  const size_t max = bound == 0 ? 2048 : bound;

  struct Value {
    uint8_t control;
    std::string bytes;
  };
  std::vector<Value> values;
  l7tap::fuzz::forEachChunk(in.rest(), [&](uint8_t control, std::span<const uint8_t> bytes) {
    std::string s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    switch (control & 0x0f) {
      case 0:
        // Beyond the bound, so that the ones PathRedactor ignores are tried too.
        if (policy.path_patterns.size() < 2 * RedactionLimits::kMaxPathPatterns) {
          policy.path_patterns.push_back(std::move(s));
        }
        break;
      case 1:
        if (policy.query_allow.size() < RedactionLimits::kMaxAllowedKeys) {
          policy.query_allow.push_back(std::move(s));
        }
        break;
      default:
        values.push_back({control, std::move(s)});
    }
  });

  std::string error;
  for (const std::string& p : policy.path_patterns) {
    // A message for every refusal, on one line.
    if (!l7tap::parsePathPattern(p, error)) check(!error.empty() && error.find('\n') == error.npos);
  }
  (void)l7tap::checkPathPatterns(policy.path_patterns, error);
  const l7tap::PathRedactor& redactor = policy.pathRedactor();
  check(redactor.size() <= RedactionLimits::kMaxPathPatterns);

  std::string query, authority;
  for (const Value& v : values) {
    switch (v.control & 0x0f) {
      case 2:
        query = v.bytes;
        checkQuery(v.bytes, policy, max);
        break;
      case 3:
        authority = v.bytes;
        checkUserinfo(v.bytes, v.bytes);
        break;
      case 4:
        checkUserinfo(v.bytes, v.bytes);
        checkPath(redactor, policy.path_patterns, v.bytes, max);
        break;
      case 5:
        checkRecord(policy, (v.control & 0x10) != 0, v.bytes, query, authority, max);
        break;
      default:
        break;
    }
  }
  return 0;
}
