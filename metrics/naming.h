// OpenTelemetry names rendered the way Prometheus expects them.
#pragma once

#include <string>
#include <string_view>

#include "metrics/registry.h"
#include "parsers/common/http_method.h"

namespace l7tap::metrics {

/// An OTel attribute or metric name as a Prometheus name: every character
/// outside [a-zA-Z0-9_] becomes `_`, runs of `_` collapse to one, and a
/// leading digit gets a `_` before it (`http.request.method` is
/// `http_request_method`).
std::string prometheusLabelName(std::string_view otel_name);

/// The unit suffix of a UCUM unit, or "" for none: `s` is `seconds`, `By`
/// `bytes`, `ms` `milliseconds`, `1` `ratio` (gauges only); annotations in
/// braces (`{request}`) have none; other units are sanitised as names.
std::string prometheusUnit(std::string_view ucum, MetricKind kind);

/// A metric's family name: the sanitised name, then `_<unit>` unless it
/// already ends so. Without `_total` (exposition.h adds it to counters).
std::string prometheusFamilyName(const MetricSpec& spec, MetricKind kind);

/// The `http.request.method` label: the records' rule, one definition.
using ::l7tap::httpMethodLabel;

}  // namespace l7tap::metrics
