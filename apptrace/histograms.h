// The in-kernel latency histograms as people and Prometheus read them: the
// differences between two reads of TraceProgram::readStats(), printed as a
// table (l7tap trace --histogram) or exported as Prometheus histograms
// (l7tap_app_function_duration_seconds) on the metrics endpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apptrace/trace_program.h"

namespace l7tap {

namespace metrics {
class MetricsRegistry;
class Metric;
}  // namespace metrics

/// One interval of one function: the difference of two cumulative reads.
struct FunctionInterval {
  std::string function;
  FunctionStats delta;
  /// Approximate quantile (upper bound of the log2 bucket it falls in), ns;
  /// 0 without calls. `q` in [0, 1].
  uint64_t quantileNs(double q) const;
};

/// Differences of `now` from `before` (shorter `before`: zeros), by index;
/// a count that went down (the program was reloaded) gives `now`'s. A row
/// without a name in `functions` is named "#INDEX".
std::vector<FunctionInterval> intervalOf(const std::vector<std::string>& functions,
                                         const std::vector<FunctionStats>& before,
                                         const std::vector<FunctionStats>& now);

/// A table for people: a header line starting with "function", then per
/// function its calls, calls per second over `interval_ns` (0: not shown),
/// p50, p90, p99 and max (bucket upper bounds, so "<"), mean, bytes sent and
/// received; under each function with calls, its busiest log2 buckets
/// (at most kMaxTableBuckets, in order) as bars.
std::string formatHistogramTable(const std::vector<FunctionInterval>& rows, uint64_t interval_ns);

struct HistogramLimits {
  /// Buckets drawn per function in the table: the busiest ones.
  static constexpr size_t kMaxTableBuckets = 8;
  /// Bytes of a function's name in the table ("..." when cut).
  static constexpr size_t kMaxTableName = 48;
};

/// The Prometheus histogram's bounds, in seconds: 2^10 ns (~1 us) to 2^35
/// ns (~34 s), one per log2 bucket of the kernel's; faster calls count in
/// the first, slower ones in +Inf.
const std::vector<double>& functionDurationBounds();

/// Sets the cumulative figures in `registry`, labelled by code.function.name
/// (OpenTelemetry's attribute): l7tap.app.function.calls
/// (l7tap_app_function_calls_total), l7tap.app.function.duration
/// (l7tap_app_function_duration_seconds, functionDurationBounds()),
/// l7tap.app.function.sent and .received (l7tap_app_function_sent_bytes_total,
/// l7tap_app_function_received_bytes_total). Registered by the constructor.
class HistogramExporter {
 public:
  explicit HistogramExporter(metrics::MetricsRegistry& registry);
  void update(const std::vector<std::string>& functions, const std::vector<FunctionStats>& totals);

 private:
  metrics::Metric& calls_;
  metrics::Metric& duration_;
  metrics::Metric& sent_;
  metrics::Metric& received_;
};

}  // namespace l7tap
