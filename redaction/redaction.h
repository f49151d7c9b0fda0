// What l7tap never writes down: secrets in URLs (query values, user info)
// and the request and response headers that carry credentials. Pure
// functions on the record's own strings, so every sink (JSON, journald,
// metrics) sees the same redacted values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace l7tap {

struct RedactionLimits {
  /// Keys --query-allow may name: each record compares every query key
  /// against them.
  static constexpr size_t kMaxAllowedKeys = 64;
  /// Bytes of a redacted query at most (the parsers' URL bound is lower by
  /// default): `a=1` grows to `a=REDACTED`, so a query of many short values
  /// grows; pairs past the bound are dropped whole (the record is flagged
  /// truncated). The rewrite uses a stack buffer this size.
  static constexpr size_t kMaxQueryBytes = 4096;
};

/// What replaces a query value.
inline constexpr std::string_view kRedactedValue = "REDACTED";

/// Headers that carry credentials or session state. l7tap captures none of
/// them today; a future header capture must never record one of these
/// unless the operator names that header explicitly (a generic "capture all
/// headers" option does not count as naming it).
inline constexpr std::array<std::string_view, 14> kDeniedHeaders = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "api-key",
    "proxy-authenticate",
    "www-authenticate",
    "x-access-token",
};

/// Whether `name` (any case) is on kDeniedHeaders.
bool isDeniedHeader(std::string_view name);

/// How records are redacted; the default redacts.
struct RedactionPolicy {
  /// --keep-query: query strings are written as sent.
  bool keep_query = false;
  /// --query-allow KEY: values of these keys (compared byte for byte, as
  /// sent, percent-encoding included) are kept.
  std::vector<std::string> query_allow;
  /// --redact-path PATTERN: paths that match have their variable segments
  /// replaced (issue 12; redaction/README.md says how patterns read).
  std::vector<std::string> path_patterns;

  bool allows(std::string_view key) const;
};

/// The policy of a parser given none: redact everything.
const RedactionPolicy& defaultRedactionPolicy();

struct QueryRedaction {
  bool changed = false;    ///< a value was replaced
  bool truncated = false;  ///< pairs were dropped at RedactionLimits::kMaxQueryBytes
};

/// Replaces every non-empty value of `query` (the part after '?', pairs
/// split on '&', key and value on the first '=') by kRedactedValue, unless
/// its key is allowed: `a=1&b` -> `a=REDACTED&b`. Keys, order, empty pairs
/// and keys without '=' stay as they are; nothing is decoded. The result is
/// at most min(`max`, RedactionLimits::kMaxQueryBytes) bytes: the pairs past
/// it are dropped whole.
QueryRedaction redactQuery(std::string& query, const RedactionPolicy& policy,
                           size_t max = RedactionLimits::kMaxQueryBytes);

/// Removes user info from an authority (Host, :authority, CONNECT's
/// target): `user:pass@host:8080` -> `host:8080`. True when changed.
bool stripAuthorityUserinfo(std::string& authority);

/// Removes user info from an absolute-form target (`http://u:p@host/p` ->
/// `http://host/p`); other targets are left alone. True when changed.
bool stripTargetUserinfo(std::string& target);

}  // namespace l7tap
