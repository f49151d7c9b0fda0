// What the command line and the config file say about metrics: where they
// are served or written and how their cardinality is bounded. Shared by
// daemon/ (flags, config) and the metrics sink.
#pragma once

#include <string>
#include <vector>

#include "metrics/limits.h"

namespace l7tap::metrics {

/// The address `attach` serves /metrics, /healthz and /readyz on unless told
/// otherwise (OpenTelemetry's Prometheus exporter port).
inline constexpr const char* kDefaultMetricsAddress = "0.0.0.0:9464";

struct MetricsOptions {
  /// --metrics-addr HOST:PORT ("[v6]:PORT", ":PORT" for every address);
  /// empty: no endpoint (replay's default; attach's `none`).
  std::string address;
  /// replay --metrics-out FILE: the final exposition (text 0.0.4) for CI.
  std::string output_file;
  /// --route-pattern, repeatable: http_route values that take precedence
  /// over the templated path (RouteTemplater).
  std::vector<std::string> route_patterns;
  /// --max-series-per-metric and the other bounds.
  MetricsLimits limits;

  /// Whether any record is aggregated at all: the sink costs nothing when
  /// neither an endpoint nor a file asks for it.
  bool enabled() const { return !address.empty() || !output_file.empty(); }
};

}  // namespace l7tap::metrics
