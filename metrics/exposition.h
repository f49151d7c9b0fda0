// A registry rendered as Prometheus text (0.0.4) or OpenMetrics 1.0.
#pragma once

#include <string>
#include <string_view>

#include "metrics/registry.h"

namespace l7tap::metrics {

enum class ExpositionFormat { kPrometheusText, kOpenMetrics };

/// The format a scraper's Accept header asks for: OpenMetrics when it
/// names application/openmetrics-text (Prometheus sends that first when
/// it can parse it), the 0.0.4 text format otherwise.
ExpositionFormat negotiateFormat(std::string_view accept_header);

/// The Content-Type header of a response in `format`.
std::string_view contentType(ExpositionFormat format);

/// Every metric of `registry`: HELP and TYPE lines (and UNIT in
/// OpenMetrics), then one line per series, in registration and creation
/// order. Counters are `<family>_total` (OpenMetrics: TYPE names the family
/// without `_total`); histograms are cumulative `_bucket{le=...}` lines,
/// `_sum` and `_count`. Label values escape backslash, double quote and
/// newline; bytes that are not UTF-8 become U+FFFD. Safe while the writer
/// observes: see MetricsRegistry.
std::string render(const MetricsRegistry& registry, ExpositionFormat format);

}  // namespace l7tap::metrics
