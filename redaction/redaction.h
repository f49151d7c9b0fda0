// What l7tap never writes down: secrets in URLs (query values, user info)
// and the request and response headers that carry credentials. Pure
// functions on the record's own strings, so every sink (JSON, journald,
// metrics) sees the same redacted values.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
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
  /// Patterns --redact-path may give: each record's path is compared with
  /// every one (after a segment-count check), so this bounds the per-record
  /// cost (bench/redaction_bench.cc, BM_RedactPath*).
  static constexpr size_t kMaxPathPatterns = 64;
  /// Segments of one pattern, `**` included. REST paths nest a handful of
  /// levels; the bound also sizes the per-record match state (a 64-bit mask
  /// of the segments to redact) and the path segments looked at.
  static constexpr size_t kMaxPatternSegments = 32;
  /// Bytes of one pattern: the parsers keep paths of at most 2048 bytes.
  static constexpr size_t kMaxPatternBytes = 2048;
  /// Bytes of a path once redacted at most: `/a/b` grows to
  /// `/REDACTED/REDACTED`. The rewrite uses a stack buffer this size; a path
  /// that would not fit (nor the caller's bound) becomes `/REDACTED` whole,
  /// flagged truncated.
  static constexpr size_t kMaxPathBytes = 4096;
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

/// Checks one --redact-path pattern: `/` then segments separated by `/`, each
/// a literal (matched byte for byte), `*` (any one segment, redacted) or,
/// last only, `**` (every remaining segment, at least one, redacted). False
/// with a one-line message naming the flag and the pattern otherwise (no
/// leading `/`, an empty segment, `**` before the end, `*` inside a
/// segment, `{name}`, `?`, a literal `REDACTED`, no `*` at all, or past
/// RedactionLimits). For the option parser and the config file.
bool parsePathPattern(std::string_view pattern, std::string& error);

/// parsePathPattern on each, and at most RedactionLimits::kMaxPathPatterns.
bool checkPathPatterns(const std::vector<std::string>& patterns, std::string& error);

struct PathRedaction {
  bool changed = false;    ///< a segment was replaced
  bool truncated = false;  ///< the result would not fit: the path became `/REDACTED`
};

/// Path patterns compiled once: literal segments are views into one owned
/// copy of the patterns, so matching a record splits its path once and
/// compares bytes, without parsing a pattern or allocating.
class PathRedactor {
 public:
  PathRedactor() = default;
  /// Keeps the patterns parsePathPattern accepts, the first
  /// RedactionLimits::kMaxPathPatterns of them; the others are ignored
  /// (option parsing reports them before anything runs).
  explicit PathRedactor(const std::vector<std::string>& patterns);

  /// Whether this was compiled from exactly `patterns`.
  bool compiledFrom(const std::vector<std::string>& patterns) const { return patterns == source_; }
  bool empty() const { return patterns_.empty(); }
  size_t size() const { return patterns_.size(); }

  /// Replaces, in the path of `target`, every segment a pattern's `*` or
  /// `**` matches by kRedactedValue (empty segments stay empty). The path is
  /// an origin-form target (`/a/b`) or the part of an absolute-form target
  /// after its authority (`http://h/a/b`), up to the first `?`; other targets
  /// (CONNECT's authority, `*`) are left alone. Segments are what lies
  /// between slashes, as sent: nothing is decoded or normalised, so `/a//b`
  /// has three. Every matching pattern applies. The result is at most
  /// min(`max`, RedactionLimits::kMaxPathBytes) bytes; a path that would
  /// not fit becomes its scheme and authority, if any, and `/REDACTED`
  /// (which every valid pattern leaves as it is: the function is idempotent).
  PathRedaction redact(std::string& target, size_t max = RedactionLimits::kMaxPathBytes) const;

 private:
  // A literal segment: its bytes in text_, and where in the path it is.
  struct Literal {
    uint32_t offset = 0;
    uint32_t size = 0;
    uint32_t index = 0;
  };
  struct Pattern {
    uint32_t first = 0;      // into literals_
    uint32_t literals = 0;   // how many
    uint32_t count = 0;      // segments before `**`, or all of them
    bool rest = false;       // ended in `**`
    uint64_t wildcards = 0;  // bit i: segment i is `*`
  };
  std::vector<std::string> source_;
  std::string text_;
  std::vector<Literal> literals_;
  std::vector<Pattern> patterns_;
};

/// A policy's compiled path patterns, built at first use and checked
/// against the patterns at every use (a list compare, cheaper than one
/// match): patterns changed after a policy was used are compiled again, the
/// older form kept until the policy goes (a record on another thread may
/// still be reading it). A copy compiles its own.
class CompiledPathPatterns {
 public:
  CompiledPathPatterns() = default;
  CompiledPathPatterns(const CompiledPathPatterns&) noexcept {}
  CompiledPathPatterns& operator=(const CompiledPathPatterns&) noexcept { return *this; }
  ~CompiledPathPatterns();

  const PathRedactor& get(const std::vector<std::string>& patterns) const;

 private:
  mutable std::atomic<const PathRedactor*> current_{nullptr};
  mutable std::mutex mutex_;  // compiling and retiring, never a record's match
  mutable std::vector<std::unique_ptr<const PathRedactor>> retired_;
};

/// How records are redacted; the default redacts.
struct RedactionPolicy {
  /// --keep-query: query strings are written as sent.
  bool keep_query = false;
  /// --query-allow KEY: values of these keys (compared byte for byte, as
  /// sent, percent-encoding included) are kept.
  std::vector<std::string> query_allow;
  /// --redact-path PATTERN: paths that match have their variable segments
  /// replaced (parsePathPattern and redaction/README.md say how patterns
  /// read).
  std::vector<std::string> path_patterns;
  /// Not an option: path_patterns compiled (pathRedactor()).
  CompiledPathPatterns compiled_path_patterns;

  bool allows(std::string_view key) const;
  /// path_patterns, compiled once per policy object.
  const PathRedactor& pathRedactor() const { return compiled_path_patterns.get(path_patterns); }
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
