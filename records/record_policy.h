// Which HTTP exchange records are written (`--records`): all of them, or
// only those that some rule of a list keeps (errors, slow ones, a
// deterministic sample). The policy sits after the metrics in the sink
// chain, so metrics count every exchange whatever it drops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parsers/common/record.h"
#include "parsers/common/records.h"

namespace l7tap {

/// Bounds of a --records value.
struct RecordPolicyLimits {
  /// The whole value: four rules and their arguments fit many times over.
  static constexpr size_t kMaxTextBytes = 256;
  /// slow:DURATION at most a day: an exchange slower than that is one the
  /// capture would long have given up on (no response).
  static constexpr uint64_t kMaxSlowNs = 86400ull * 1000 * 1000 * 1000;
  /// sample:P takes at most this many digits after the point (1e-9 is
  /// one exchange in a billion).
  static constexpr size_t kMaxSampleDecimals = 9;
};

/// What `--records` asked for. Rules are alternatives: a record is written
/// when any of them keeps it.
struct RecordPolicy {
  bool all = true;       ///< every record (the default); no other rule then
  bool errors = false;   ///< isErrorExchange()
  uint64_t slow_ns = 0;  ///< duration >= this; 0: no slow rule
  bool sample = false;
  /// sample: kept when the exchange's hash is below this (P * 2^64, P < 1),
  /// or every exchange when sample_all (P = 1).
  uint64_t sample_below = 0;
  bool sample_all = false;
  uint64_t sample_per_billion = 0;  ///< P as parsed, in units of 1e-9

  bool keepsEverything() const { return all || (sample && sample_all); }
  /// Whether the exchange record is written.
  bool keeps(const ConnectionInfo& conn, const HttpRecord& record) const;
  /// The canonical spelling (what parseRecordPolicy reads back the same).
  std::string describe() const;
};

/// Parses `all`, or a comma list of `errors`, `slow:DURATION` (an integer
/// with ns, us, ms or s: `slow:250ms`) and `sample:P` (0 <= P <= 1, a
/// decimal: `sample:0.01`), each at most once. False with `error` set (one
/// line, naming the part that is wrong, without the option's name).
bool parseRecordPolicy(std::string_view text, RecordPolicy& policy, std::string& error);

/// The exchange failed, as the `errors` rule sees it: an HTTP status >= 500,
/// a gRPC status other than OK, or a flag that says the exchange did not
/// complete or could not be read cleanly (reset, no_response, no_request,
/// hpack_error, hpack_unknown, overflow, ambiguous). 4xx are not errors:
/// the server did its job (OpenTelemetry's rule for server spans, which is
/// what a capture on the server's side mostly sees).
bool isErrorExchange(const ConnectionInfo& conn, const HttpRecord& record);

/// The HttpFlag bits isErrorExchange counts.
inline constexpr uint32_t kErrorFlags = kFlagReset | kFlagNoResponse | kFlagNoRequest |
                                        kFlagHpackError | kFlagHpackUnknown | kFlagOverflow |
                                        kFlagAmbiguous;

/// The sample rule's hash of an exchange: its connection's id, its HTTP/2
/// stream and its timestamps, each multiplied by its own constant, folded
/// and mixed (splitmix64's finalizer). The same capture gives
/// the same hashes, so a replay writes the same sample every time.
uint64_t exchangeHash(const ConnectionInfo& conn, const HttpRecord& record);

/// Applies a RecordPolicy to HTTP exchange records on their way to `next`;
/// every other record (connections, function calls) passes.
class RecordPolicySink final : public RecordSink {
 public:
  RecordPolicySink(const RecordPolicy& policy, RecordSink& next) : policy_(policy), next_(next) {}
  void onRecord(const ConnectionInfo& conn, const Record& record) override;

  /// HTTP exchange records the policy did not write.
  uint64_t dropped() const { return dropped_; }
  /// HTTP exchange records it passed on.
  uint64_t kept() const { return kept_; }
  const RecordPolicy& policy() const { return policy_; }

 private:
  const RecordPolicy policy_;
  RecordSink& next_;
  uint64_t dropped_ = 0;
  uint64_t kept_ = 0;
};

}  // namespace l7tap
