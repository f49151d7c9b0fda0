#include "metrics/registry.h"

#include "metrics/naming.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace l7tap::metrics {
namespace {

constexpr size_t kMaxKeyBytes = kMaxLabels * (1 + kMaxLabelValueBytesCap);
static_assert(kMaxLabelValueBytesCap <= 255, "label value lengths are one byte in keys");

// Single writer: a load and a store, not a locked read-modify-write.
void bump(std::atomic<uint64_t>& a, uint64_t n) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

void addDouble(std::atomic<uint64_t>& bits, double v) {
  double d = std::bit_cast<double>(bits.load(std::memory_order_relaxed)) + v;
  bits.store(std::bit_cast<uint64_t>(d), std::memory_order_relaxed);
}

}  // namespace

const std::vector<double>& httpDurationBuckets() {
  static const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                              0.5,   0.75, 1,     2.5,  5,     7.5, 10};
  return buckets;
}

const std::vector<double>& bodySizeBuckets() {
  static const std::vector<double> buckets = {0,     64,     256,     1024,    4096,     16384,
                                              65536, 262144, 1048576, 4194304, 16777216, 67108864};
  return buckets;
}

double Series::gauge() const {
  return std::bit_cast<double>(value.load(std::memory_order_relaxed));
}
double Series::sum() const {
  return std::bit_cast<double>(sum_bits.load(std::memory_order_relaxed));
}

std::vector<std::string_view> Series::labelValues() const {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < key.size();) {
    size_t len = static_cast<unsigned char>(key[i]);
    out.emplace_back(key.data() + i + 1, len);
    i += 1 + len;
  }
  return out;
}

Metric::Metric(MetricKind kind, MetricSpec spec, const MetricsLimits& limits,
               Series* overflow_counter)
    : kind_(kind),
      spec_(std::move(spec)),
      max_series_(std::max<uint32_t>(limits.max_series_per_metric, 1)),
      max_label_value_bytes_(std::min(limits.max_label_value_bytes, kMaxLabelValueBytesCap)),
      index_(std::bit_ceil(size_t{max_series_} * 2), 0),
      series_(new std::unique_ptr<Series>[max_series_]),
      overflow_(newSeries()),
      overflow_counter_(overflow_counter) {}

Metric::~Metric() = default;

std::unique_ptr<Series> Metric::newSeries() const {
  auto s = std::make_unique<Series>();
  if (kind_ == MetricKind::kHistogram) {
    size_t n = spec_.buckets.size() + 1;
    s->buckets.reset(new std::atomic<uint64_t>[n]);
    for (size_t i = 0; i < n; ++i) s->buckets[i].store(0, std::memory_order_relaxed);
  }
  return s;
}

Series* Metric::lookup(std::span<const std::string_view> labels) {
  // The key is built on the stack: an existing series costs no allocation.
  char key[kMaxKeyBytes];
  size_t len = 0;
  size_t label_count = spec_.label_names.size();
  for (size_t i = 0; i < label_count; ++i) {
    std::string_view v = i < labels.size() ? labels[i] : std::string_view();
    if (v.size() > max_label_value_bytes_) {
      v = v.substr(0, max_label_value_bytes_);
      bump(truncated_label_values_, 1);
    }
    key[len++] = static_cast<char>(v.size());
    if (!v.empty()) std::memcpy(key + len, v.data(), v.size());  // a missing value has no data
    len += v.size();
  }
  std::string_view k(key, len);
  uint64_t hash = std::hash<std::string_view>{}(k);
  size_t mask = index_.size() - 1;
  size_t i = hash & mask;
  for (; index_[i] != 0; i = (i + 1) & mask) {
    Series* s = series_[index_[i] - 1].get();
    if (s->hash == hash && s->key == k) return s;
  }
  uint32_t count = published_.load(std::memory_order_relaxed);
  if (count == max_series_) {
    if (overflow_counter_ != nullptr) bump(overflow_counter_->value, 1);
    if (!overflow_used_.load(std::memory_order_relaxed)) {
      overflow_used_.store(true, std::memory_order_release);
    }
    return overflow_.get();
  }
  std::unique_ptr<Series> s = newSeries();
  s->key.assign(k);
  s->hash = hash;
  Series* raw = s.get();
  series_[count] = std::move(s);
  index_[i] = count + 1;
  published_.store(count + 1, std::memory_order_release);
  return raw;
}

void Metric::add(std::span<const std::string_view> labels, uint64_t n) {
  bump(lookup(labels)->value, n);
}

void Metric::set(std::span<const std::string_view> labels, double v) {
  Series* s = lookup(labels);
  // A gauge's overflow series would hold whichever label set came last:
  // meaningless, so the value is dropped (the overflow count says so).
  if (s == overflow_.get()) return;
  s->value.store(std::bit_cast<uint64_t>(v), std::memory_order_relaxed);
}

void Metric::observe(std::span<const std::string_view> labels, double v) {
  if (std::isnan(v)) return;
  observe(*lookup(labels), v);
}

void Metric::setTotal(std::span<const std::string_view> labels, uint64_t total) {
  Series* s = lookup(labels);
  // A total set on the overflow series would replace another label set's:
  // dropped, as a gauge's value is (the overflow count says so).
  if (s == overflow_.get()) return;
  s->value.store(total, std::memory_order_relaxed);
}

void Metric::setHistogram(std::span<const std::string_view> labels,
                          std::span<const uint64_t> counts, double sum) {
  if (kind_ != MetricKind::kHistogram || counts.size() != spec_.buckets.size() + 1) return;
  Series* s = lookup(labels);
  // Another label set's counts would replace the overflow series' own.
  if (s == overflow_.get()) return;
  for (size_t b = 0; b < counts.size(); ++b)
    s->buckets[b].store(counts[b], std::memory_order_relaxed);
  s->sum_bits.store(std::bit_cast<uint64_t>(sum), std::memory_order_relaxed);
}

void Metric::add(Series& s, uint64_t n) { bump(s.value, n); }

void Metric::observe(Series& s, double v) {
  if (std::isnan(v)) return;
  const std::vector<double>& bounds = spec_.buckets;
  // Linear: 12 to 15 bounds, most observations in the first few.
  size_t b = 0;
  while (b < bounds.size() && v > bounds[b]) ++b;
  bump(s.buckets[b], 1);
  addDouble(s.sum_bits, v);
}

MetricsRegistry::MetricsRegistry(const MetricsLimits& limits) : limits_(limits) {
  MetricsLimits self_limits = limits;
  self_limits.max_series_per_metric = kMaxMetrics;
  metrics_.push_back(std::make_unique<Metric>(
      MetricKind::kCounter,
      MetricSpec{std::string(kOverflowMetricName),
                 "{observation}",
                 "Observations counted into a metric's overflow series because it had reached "
                 "its series limit.",
                 {"metric"},
                 {}},
      self_limits, nullptr));
  overflow_metric_ = metrics_.back().get();
}

Metric& MetricsRegistry::counter(MetricSpec spec) {
  return add(MetricKind::kCounter, std::move(spec));
}
Metric& MetricsRegistry::gauge(MetricSpec spec) { return add(MetricKind::kGauge, std::move(spec)); }
Metric& MetricsRegistry::histogram(MetricSpec spec) {
  return add(MetricKind::kHistogram, std::move(spec));
}

Metric& MetricsRegistry::add(MetricKind kind, MetricSpec spec) {
  if (spec.label_names.size() > kMaxLabels) {
    throw std::invalid_argument("metric " + spec.name + ": more than kMaxLabels labels");
  }
  if (kind == MetricKind::kHistogram &&
      std::adjacent_find(spec.buckets.begin(), spec.buckets.end(), std::greater_equal<>()) !=
          spec.buckets.end()) {
    throw std::invalid_argument("metric " + spec.name + ": buckets not strictly ascending");
  }
  std::lock_guard lock(mutex_);
  if (metrics_.size() == kMaxMetrics) {
    throw std::invalid_argument("metric " + spec.name + ": more than kMaxMetrics metrics");
  }
  for (const auto& m : metrics_) {
    if (m->spec().name == spec.name) {
      throw std::invalid_argument("metric " + spec.name + ": registered twice");
    }
  }
  // The self-metric's series for this metric, created now so that counting
  // an overflow later is one store.
  // Labelled by the name Prometheus users see.
  std::string family = prometheusFamilyName(spec, kind);
  if (kind == MetricKind::kCounter) family += "_total";
  std::string_view name = family;
  overflow_metric_->add(std::span(&name, 1), 0);
  Series* overflow_counter =
      const_cast<Series*>(&overflow_metric_->series(overflow_metric_->seriesCount() - 1));
  metrics_.push_back(std::make_unique<Metric>(kind, std::move(spec), limits_, overflow_counter));
  return *metrics_.back();
}

}  // namespace l7tap::metrics
