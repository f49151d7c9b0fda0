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
class Registry;
}

/// One interval of one function: the difference of two cumulative reads.
struct FunctionInterval {
  std::string function;
  FunctionStats delta;
  /// Approximate quantile (upper bound of the log2 bucket it falls in), ns.
  uint64_t quantileNs(double q) const;
};

/// Differences of `now` from `before` (shorter `before`: zeros), by index.
std::vector<FunctionInterval> intervalOf(const std::vector<std::string>& functions,
                                         const std::vector<FunctionStats>& before,
                                         const std::vector<FunctionStats>& now);

/// A table for people: function, calls, p50, p90, p99, max bucket, mean,
/// bytes sent/received, and the log2 distribution of the busiest buckets.
std::string formatHistogramTable(const std::vector<FunctionInterval>& rows, uint64_t interval_ns);

/// Adds the cumulative figures to `registry`: l7tap_app_function_calls_total,
/// l7tap_app_function_duration_seconds (histogram, log2 bounds from 1 us to
/// 2^35 ns), l7tap_app_function_bytes_sent_total and _received_total, each
/// labelled by function.
class HistogramExporter {
 public:
  explicit HistogramExporter(metrics::Registry& registry);
  void update(const std::vector<std::string>& functions, const std::vector<FunctionStats>& totals);

 private:
  metrics::Registry& registry_;
};

}  // namespace l7tap
