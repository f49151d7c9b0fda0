#include "redaction/redaction.h"

#include <algorithm>
#include <cstring>

namespace l7tap {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

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
  const size_t scheme_end = target.find("://");
  if (scheme_end == std::string::npos) return false;
  // An absolute form starts with a scheme: letters, digits, '+', '-', '.'.
  if (scheme_end == 0 || target[0] == '/') return false;
  for (size_t i = 0; i < scheme_end; ++i) {
    const char c = target[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '-' || c == '.';
    if (!ok) return false;
  }
  const size_t start = scheme_end + 3;
  size_t end = target.find_first_of("/?#", start);
  if (end == std::string::npos) end = target.size();
  const size_t at = std::string_view(target).substr(start, end - start).rfind('@');
  if (at == std::string_view::npos) return false;
  target.erase(start, at + 1);
  return true;
}

}  // namespace l7tap
