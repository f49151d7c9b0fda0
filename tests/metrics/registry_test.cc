// Series created on first use, the overflow series past the limit, and the
// self-metric that counts what went there.
#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>

namespace l7tap::metrics {
namespace {

using Labels = std::array<std::string_view, 2>;

MetricSpec requestsSpec() {
  return {
      "http.server.requests", "{request}", "Requests.", {"http.request.method", "http.route"}, {}};
}

const Series* findSeries(const Metric& m, std::string_view a, std::string_view b) {
  for (size_t i = 0; i < m.seriesCount(); ++i) {
    auto v = m.series(i).labelValues();
    if (v.size() == 2 && v[0] == a && v[1] == b) return &m.series(i);
  }
  return nullptr;
}

TEST(RegistryTest, CountsPerLabelSet) {
  MetricsRegistry registry;
  Metric& requests = registry.counter(requestsSpec());
  requests.add(Labels{"GET", "/a"});
  requests.add(Labels{"GET", "/a"}, 2);
  requests.add(Labels{"POST", "/a"});
  ASSERT_EQ(requests.seriesCount(), 2u);
  EXPECT_EQ(findSeries(requests, "GET", "/a")->value.load(), 3u);
  EXPECT_EQ(findSeries(requests, "POST", "/a")->value.load(), 1u);
  EXPECT_EQ(requests.overflowSeries(), nullptr);
}

TEST(RegistryTest, LabelValuesAreNotConfusedByTheirBoundaries) {
  MetricsRegistry registry;
  Metric& requests = registry.counter(requestsSpec());
  requests.add(Labels{"ab", "c"});
  requests.add(Labels{"a", "bc"});
  requests.add(Labels{"", "abc"});
  EXPECT_EQ(requests.seriesCount(), 3u);
}

TEST(RegistryTest, ExcessSeriesGoToOneOverflowSeriesAndAreCounted) {
  MetricsLimits limits;
  limits.max_series_per_metric = 3;
  MetricsRegistry registry(limits);
  Metric& requests = registry.counter(requestsSpec());
  for (int i = 0; i < 10; ++i) {
    std::string route = "/r" + std::to_string(i);
    requests.add(Labels{"GET", route});
  }
  requests.add(Labels{"GET", "/r0"});  // an existing series still counts as itself
  EXPECT_EQ(requests.seriesCount(), 3u);
  EXPECT_EQ(findSeries(requests, "GET", "/r0")->value.load(), 2u);
  ASSERT_NE(requests.overflowSeries(), nullptr);
  EXPECT_EQ(requests.overflowSeries()->value.load(), 7u);

  uint64_t overflowed = 0;
  registry.forEach([&](const Metric& m) {
    if (m.spec().name != MetricsRegistry::kOverflowMetricName) return;
    for (size_t i = 0; i < m.seriesCount(); ++i) {
      if (m.series(i).labelValues()[0] == "http_server_requests_total") {
        overflowed = m.series(i).value.load();
      }
    }
  });
  EXPECT_EQ(overflowed, 7u);
}

TEST(RegistryTest, HistogramBucketsAndSum) {
  MetricsRegistry registry;
  Metric& duration = registry.histogram({"http.server.request.duration",
                                         "s",
                                         "Duration.",
                                         {"http.request.method", "http.route"},
                                         httpDurationBuckets()});
  for (double v : {0.001, 0.005, 0.0051, 0.3, 10.0, 11.0}) duration.observe(Labels{"GET", "/"}, v);
  duration.observe(Labels{"GET", "/"}, std::nan(""));
  const Series& s = duration.series(0);
  EXPECT_EQ(s.buckets[0].load(), 2u);   // le 0.005: boundaries are inclusive
  EXPECT_EQ(s.buckets[1].load(), 1u);   // le 0.01
  EXPECT_EQ(s.buckets[7].load(), 1u);   // le 0.5
  EXPECT_EQ(s.buckets[13].load(), 1u);  // le 10
  EXPECT_EQ(s.buckets[14].load(), 1u);  // +Inf
  EXPECT_DOUBLE_EQ(s.sum(), 0.001 + 0.005 + 0.0051 + 0.3 + 10.0 + 11.0);
}

// Counts kept elsewhere (the kernel's histograms) replace the series'
// values; a count list of the wrong length or the overflow series changes
// nothing.
TEST(RegistryTest, HistogramSetFromCountsKeptElsewhere) {
  MetricsLimits limits;
  limits.max_series_per_metric = 1;
  MetricsRegistry registry(limits);
  Metric& duration =
      registry.histogram({"l7tap.app.function.duration", "s", "Duration.", {"f"}, {0.1, 1}});
  std::array<std::string_view, 1> a{"a"}, b{"b"};
  const uint64_t first[] = {1, 2, 3};
  duration.setHistogram(a, first, 4.5);
  const uint64_t second[] = {2, 2, 5};
  duration.setHistogram(a, second, 7.5);
  const Series& s = duration.series(0);
  EXPECT_EQ(s.buckets[0].load(), 2u);
  EXPECT_EQ(s.buckets[2].load(), 5u);
  EXPECT_DOUBLE_EQ(s.sum(), 7.5);
  const uint64_t short_list[] = {9, 9};
  duration.setHistogram(a, short_list, 1);
  EXPECT_EQ(s.buckets[0].load(), 2u);
  duration.setHistogram(b, first, 4.5);
  ASSERT_NE(duration.overflowSeries(), nullptr);
  EXPECT_EQ(duration.overflowSeries()->buckets[0].load(), 0u);
  EXPECT_EQ(duration.overflowSeries()->sum(), 0);
}

TEST(RegistryTest, GaugeOverflowDropsTheValue) {
  MetricsLimits limits;
  limits.max_series_per_metric = 1;
  MetricsRegistry registry(limits);
  Metric& flows = registry.gauge({"l7tap.flows", "{flow}", "Flows.", {"interface"}, {}});
  std::array<std::string_view, 1> a{"eth0"}, b{"eth1"};
  flows.set(a, 5);
  flows.set(b, 7);
  flows.set(a, 6);
  EXPECT_EQ(flows.series(0).gauge(), 6);
  ASSERT_NE(flows.overflowSeries(), nullptr);
  EXPECT_EQ(flows.overflowSeries()->gauge(), 0);
}

TEST(RegistryTest, LongLabelValuesAreCut) {
  MetricsLimits limits;
  limits.max_label_value_bytes = 4;
  MetricsRegistry registry(limits);
  Metric& requests = registry.counter(requestsSpec());
  requests.add(Labels{"GET", "/abcdef"});
  requests.add(Labels{"GET", "/abcxyz"});
  EXPECT_EQ(requests.seriesCount(), 1u);
  EXPECT_EQ(requests.series(0).labelValues()[1], "/abc");
  EXPECT_EQ(requests.truncatedLabelValues(), 2u);
}

TEST(RegistryTest, MissingLabelValuesAreEmpty) {
  MetricsRegistry registry;
  Metric& requests = registry.counter(requestsSpec());
  std::array<std::string_view, 1> one{"GET"};
  requests.add(one);
  EXPECT_EQ(requests.series(0).labelValues()[1], "");
}

TEST(RegistryTest, BadSpecsAreRefused) {
  MetricsRegistry registry;
  registry.counter(requestsSpec());
  EXPECT_THROW(registry.counter(requestsSpec()), std::invalid_argument);
  EXPECT_THROW(registry.histogram({"h", "s", "", {}, {1, 1}}), std::invalid_argument);
  EXPECT_THROW(registry.histogram({"h2", "s", "", {}, {2, 1}}), std::invalid_argument);
  MetricSpec wide{"w", "", "", {}, {}};
  wide.label_names.assign(kMaxLabels + 1, "x");
  EXPECT_THROW(registry.counter(wide), std::invalid_argument);
}

// A scraper reading while the writer creates series and counts: every
// series it sees is complete, and the counts it reads never go down. (Run
// under TSan or ASan this also checks the publication; no timing involved.)
TEST(RegistryTest, ReaderSeesOnlyPublishedSeries) {
  MetricsLimits limits;
  limits.max_series_per_metric = 500;
  MetricsRegistry registry(limits);
  Metric& requests = registry.counter(requestsSpec());
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last_total = 0;
    while (!done.load()) {
      uint64_t total = 0;
      size_t n = requests.seriesCount();
      for (size_t i = 0; i < n; ++i) {
        const Series& s = requests.series(i);
        EXPECT_EQ(s.labelValues().size(), 2u);
        total += s.value.load(std::memory_order_relaxed);
      }
      EXPECT_GE(total, last_total);
      last_total = total;
    }
  });
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 500; ++i) {
      std::string route = "/r" + std::to_string(i);
      requests.add(Labels{"GET", route});
    }
  }
  done = true;
  reader.join();
  EXPECT_EQ(requests.seriesCount(), 500u);
}

}  // namespace
}  // namespace l7tap::metrics
