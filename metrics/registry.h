// Counters, gauges and histograms with label sets, of bounded cardinality,
// written by the pipeline thread and read by a scraper at the same time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/limits.h"

namespace l7tap::metrics {

enum class MetricKind { kCounter, kGauge, kHistogram };

/// What a metric is, in OpenTelemetry terms; exposition.h renders the
/// Prometheus names from it (`http.server.request.duration` in `s` is
/// `http_server_request_duration_seconds`).
struct MetricSpec {
  std::string name;  ///< OTel name, e.g. "http.server.request.duration"
  std::string unit;  ///< UCUM, e.g. "s", "By", "{connection}", or empty
  std::string help;
  std::vector<std::string> label_names;  ///< OTel attribute names, at most kMaxLabels
  std::vector<double> buckets;           ///< histograms: ascending upper bounds, +Inf implied
};

/// The semantic conventions' advice for http.{server,client}.request.duration.
const std::vector<double>& httpDurationBuckets();
/// For http.{request,response}.body.size (the conventions give none):
/// 0 (no body: GETs, 204s, most redirects), then powers of 4 from 64 B to
/// 64 MiB. Sizes span six orders of magnitude; a factor of 4 per bucket
/// separates "small JSON" from "page" from "download" in 13 buckets, the
/// same order of count as the duration histogram.
const std::vector<double>& bodySizeBuckets();

/// The label set that takes every observation past max_series_per_metric:
/// OpenTelemetry's overflow attribute (`otel.metric.overflow=true`, the
/// SDKs' cardinality-limit rule), rendered as `otel_metric_overflow="true"`
/// with no other label. Users of the OTel SDK's Prometheus exporter already
/// see it; queries that select by a real label exclude it, sums over all
/// series still add up, and it cannot be mistaken for a real route or pod
/// as `_overflow` in every label could.
inline constexpr std::string_view kOverflowLabelName = "otel.metric.overflow";
inline constexpr std::string_view kOverflowLabelValue = "true";

/// One label set's values. Written only by the writer thread; every field the
/// scraper reads is atomic, and the label values never change once the
/// series is published.
struct Series {
  /// The label values, each as a length byte then the bytes.
  std::string key;
  uint64_t hash = 0;
  /// Counter: the count. Gauge: the double's bits.
  std::atomic<uint64_t> value{0};
  /// Histogram: the sum's bits.
  std::atomic<uint64_t> sum_bits{0};
  /// Histogram: per bucket (not cumulative), the +Inf bucket last; the
  /// count is their sum, so a scrape never sees _count disagree with +Inf.
  std::unique_ptr<std::atomic<uint64_t>[]> buckets;

  double gauge() const;
  double sum() const;
  /// The label values, decoded from `key`.
  std::vector<std::string_view> labelValues() const;
};

/// One metric and its series. Hot-path methods (add, set, observe) must all
/// be called from one thread; the scrape methods from any thread at the same
/// time.
class Metric {
 public:
  Metric(MetricKind kind, MetricSpec spec, const MetricsLimits& limits, Series* overflow_counter);
  ~Metric();
  Metric(const Metric&) = delete;
  Metric& operator=(const Metric&) = delete;

  /// Counter += n. O(1); allocates only when the label set is new.
  void add(std::span<const std::string_view> labels, uint64_t n = 1);
  /// Gauge = v. Past the series limit the value is dropped (and counted).
  void set(std::span<const std::string_view> labels, double v);
  /// Histogram observation; NaN is ignored.
  void observe(std::span<const std::string_view> labels, double v);
  /// Counter = total, for counters that mirror a monotonic count kept
  /// elsewhere (the pipeline's, the kernel's): set at each update rather
  /// than added to, so the updater keeps no previous value.
  void setTotal(std::span<const std::string_view> labels, uint64_t total);
  /// Histogram = counts and sum kept elsewhere (the kernel's histograms of
  /// apptrace/): `counts` per bucket, not cumulative, +Inf last, one more
  /// than the bounds (else nothing is set). Set rather than observed, as
  /// setTotal; past the series limit the values are dropped (and counted).
  void setHistogram(std::span<const std::string_view> labels, std::span<const uint64_t> counts,
                    double sum);

  /// The series of `labels` (created if new, the overflow series past the
  /// limit), for a writer that observes the same label set several times:
  /// the pointer stays valid as long as the metric, so a caller may keep it
  /// and skip the lookup (MetricsSink's last-label-set cache).
  Series* find(std::span<const std::string_view> labels) { return lookup(labels); }
  /// The same as add/set/observe, on a series this metric's find() returned.
  void add(Series& s, uint64_t n = 1);
  void observe(Series& s, double v);

  MetricKind kind() const { return kind_; }
  const MetricSpec& spec() const { return spec_; }
  /// Series published so far; series(i) for i below it are safe to read.
  size_t seriesCount() const { return published_.load(std::memory_order_acquire); }
  const Series& series(size_t i) const { return *series_[i]; }
  /// The overflow series, once an observation has gone to it.
  const Series* overflowSeries() const {
    return overflow_used_.load(std::memory_order_acquire) ? overflow_.get() : nullptr;
  }
  /// Label values cut to max_label_value_bytes (writer-side count).
  uint64_t truncatedLabelValues() const {
    return truncated_label_values_.load(std::memory_order_relaxed);
  }

 private:
  Series* lookup(std::span<const std::string_view> labels);
  std::unique_ptr<Series> newSeries() const;

  MetricKind kind_;
  MetricSpec spec_;
  uint32_t max_series_;
  size_t max_label_value_bytes_;
  // Writer-only open-addressing index (slot + 1, 0 empty), sized at twice
  // the series limit so it never fills and never rehashes.
  std::vector<uint32_t> index_;
  // Published series; slots below published_ are immutable pointers.
  std::unique_ptr<std::unique_ptr<Series>[]> series_;
  std::atomic<uint32_t> published_{0};
  std::unique_ptr<Series> overflow_;
  std::atomic<bool> overflow_used_{false};
  Series* overflow_counter_;
  std::atomic<uint64_t> truncated_label_values_{0};
};

/// The metrics of one daemon. Registration takes a mutex (start-up, or a
/// new metric at run time); observations never do; a scrape holds the mutex
/// only to walk the list of metrics, so it delays registration, never the
/// writer.
///
/// Why per-series atomics rather than a snapshot under a lock: the writer
/// is the pipeline thread, which must not wait for a scrape of 10,000 series
/// (bench/README.md: milliseconds). Relaxed atomic loads and stores of
/// 64-bit words compile to plain moves on x86-64 and arm64, so the writer
/// pays nothing for them; with one writer, increments are load + store, not
/// locked read-modify-writes. A scrape may see one histogram's buckets and
/// sum from slightly different moments, which Prometheus tolerates (the
/// count is derived from the buckets, so those always agree).
class MetricsRegistry {
 public:
  /// The self-metric every overflowed observation is counted in, by metric.
  static constexpr std::string_view kOverflowMetricName = "l7tap.metrics.overflowed_observations";
  /// Metrics in one registry (the self-metric's series limit).
  static constexpr uint32_t kMaxMetrics = 512;

  explicit MetricsRegistry(const MetricsLimits& limits = {});

  /// Registers a metric; the reference stays valid as long as the registry.
  /// Specs with more than kMaxLabels labels, a duplicate name or, for
  /// histograms, unsorted buckets are a programming error: this throws
  /// std::invalid_argument (start-up only, never on the data path).
  Metric& counter(MetricSpec spec);
  Metric& gauge(MetricSpec spec);
  Metric& histogram(MetricSpec spec);

  /// Calls f(const Metric&) for every metric in registration order, the
  /// self-metric first. Safe during observations.
  template <typename F>
  void forEach(F&& f) const {
    std::lock_guard lock(mutex_);
    for (const auto& m : metrics_) f(*m);
  }

 private:
  Metric& add(MetricKind kind, MetricSpec spec);

  MetricsLimits limits_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Metric>> metrics_;
  Metric* overflow_metric_ = nullptr;
};

}  // namespace l7tap::metrics
