// Every bound of metrics/, with its default and why.
#pragma once

#include <cstddef>
#include <cstdint>

namespace l7tap::metrics {

/// Storage sizes fixed at compile time: the hot path formats into stack
/// buffers of these sizes, so the run-time limits below are clamped to them.
inline constexpr size_t kRouteBufferBytes = 512;
inline constexpr size_t kMaxRouteSegmentsCap = 64;
// The HTTP duration histogram has 11: method, status, route, protocol
// version, server address and port, the observed and peer namespace and
// workload, and whether the exchange saw a retransmission.
inline constexpr size_t kMaxLabels = 12;
inline constexpr size_t kMaxLabelValueBytesCap = 255;

struct MetricsLimits {
  /// Bytes of an `http_route` label. Templated routes of real APIs are a few
  /// dozen bytes; a longer path is cut at a segment boundary and ends in
  /// `/{tail}`, so one odd client cannot mint a series per request.
  size_t max_route_bytes = 128;
  /// Path segments kept in a route; the rest become `/{tail}` for the same
  /// reason. REST APIs nest four or five levels deep.
  size_t max_route_segments = 16;
  /// User-supplied route patterns. Each is matched against every record's
  /// path (O(patterns x segments)), so this bounds the per-record cost.
  size_t max_route_patterns = 256;
  /// Series per metric before new label sets go to the overflow series.
  /// 2,000 covers a node's pods x routes x statuses for typical services and
  /// keeps a metric under ~1 MB (bench/README.md, memory per series).
  uint32_t max_series_per_metric = 2000;
  /// Open connections whose interim records were counted, each with the
  /// counts so far (~100 bytes): a connection past the bound is counted
  /// whole when it closes instead, as before interim records counted.
  size_t max_connections_in_progress = 65536;
  /// Bytes of one label value; longer values are cut (and counted) so that a
  /// series key always fits the fixed-size key buffer.
  size_t max_label_value_bytes = 128;
};

}  // namespace l7tap::metrics
