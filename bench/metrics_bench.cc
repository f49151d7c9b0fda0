// metrics/: the cost of one observation on an existing series, the heap a
// series takes, and the time to render 10,000 series (bench/README.md).
//
//   build/bench/l7tap_bench --benchmark_filter='Metrics|Route'
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "identity/enriching_sink.h"
#include "metrics/exposition.h"
#include "metrics/record_metrics.h"
#include "metrics/registry.h"
#include "metrics/route.h"
#include "parsers/common/records.h"

namespace l7tap::metrics {
namespace {

constexpr size_t kSeries = 10000;
constexpr size_t kLabels = 5;
using LabelSet = std::array<std::string_view, kLabels>;

MetricSpec durationSpec() {
  return {"http.server.request.duration",
          "s",
          "Duration of HTTP server requests.",
          {"http.request.method", "http.response.status_code", "http.route",
           "network.protocol.version", "k8s.deployment.name"},
          httpDurationBuckets()};
}

// Label values the size of real ones: routes of 20-30 bytes, workload names.
struct LabelValues {
  std::vector<std::string> routes, workloads;
  std::vector<LabelSet> sets;
  explicit LabelValues(size_t n) {
    static const char* methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char* statuses[] = {"200", "201", "404", "500", "503"};
    routes.reserve(n);
    workloads.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      routes.push_back("/api/v1/resource" + std::to_string(i) + "/{id}");
      workloads.push_back("checkout-service-" + std::to_string(i % 97));
    }
    for (size_t i = 0; i < n; ++i) {
      sets.push_back({methods[i % 4], statuses[i % 5], routes[i], "1.1", workloads[i]});
    }
  }
};

MetricsLimits limitsFor(size_t n) {
  MetricsLimits limits;
  limits.max_series_per_metric = static_cast<uint32_t>(n);
  return limits;
}

// One observation on a series that exists, cycling through `range` of them
// (1: always the same, cache-hot; 10,000: a busy node's spread).
void BM_MetricsObserveExisting(benchmark::State& state) {
  size_t range = static_cast<size_t>(state.range(0));
  LabelValues values(range);
  MetricsRegistry registry(limitsFor(kSeries));
  Metric& duration = registry.histogram(durationSpec());
  for (const LabelSet& s : values.sets) duration.observe(s, 0.01);
  size_t i = 0;
  double v = 0.0001;
  for (auto _ : state) {
    duration.observe(values.sets[i], v);
    if (++i == range) i = 0;
    v = v < 20 ? v * 1.7 : 0.0001;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MetricsObserveExisting)->Arg(1)->Arg(kSeries);

void BM_MetricsCounterAddExisting(benchmark::State& state) {
  LabelValues values(kSeries);
  MetricsRegistry registry(limitsFor(kSeries));
  MetricSpec spec = durationSpec();
  spec.name = "http.server.requests";
  spec.unit = "{request}";
  spec.buckets.clear();
  Metric& requests = registry.counter(spec);
  for (const LabelSet& s : values.sets) requests.add(s);
  size_t i = 0;
  for (auto _ : state) {
    requests.add(values.sets[i]);
    if (++i == kSeries) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MetricsCounterAddExisting);

// Heap per histogram series (15 buckets, 5 labels), from malloc's own
// accounting before and after creating 10,000 of them.
void BM_MetricsMemoryPerSeries(benchmark::State& state) {
  LabelValues values(kSeries);
  for (auto _ : state) {
    size_t before = mallinfo2().uordblks;
    {
      MetricsRegistry registry(limitsFor(kSeries));
      Metric& duration = registry.histogram(durationSpec());
      size_t empty = mallinfo2().uordblks;
      for (const LabelSet& s : values.sets) duration.observe(s, 0.01);
      size_t full = mallinfo2().uordblks;
      state.counters["bytes_per_series"] = double(full - empty) / kSeries;
      state.counters["metric_fixed_bytes"] = double(empty - before);
    }
  }
}
BENCHMARK(BM_MetricsMemoryPerSeries)->Iterations(1)->Unit(benchmark::kMillisecond);

// A scrape: 10,000 histogram label sets rendered (15 bucket lines, _sum and
// _count each: 170,000 Prometheus series).
void BM_MetricsScrape(benchmark::State& state) {
  auto format = static_cast<ExpositionFormat>(state.range(0));
  LabelValues values(kSeries);
  MetricsRegistry registry(limitsFor(kSeries));
  Metric& duration = registry.histogram(durationSpec());
  for (const LabelSet& s : values.sets) duration.observe(s, 0.03);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = render(registry, format);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["output_bytes"] = double(bytes);
  state.SetLabel(format == ExpositionFormat::kOpenMetrics ? "openmetrics" : "text-0.0.4");
}
BENCHMARK(BM_MetricsScrape)
    ->Arg(static_cast<int>(ExpositionFormat::kPrometheusText))
    ->Arg(static_cast<int>(ExpositionFormat::kOpenMetrics))
    ->Unit(benchmark::kMillisecond);

// The same with counters: 10,000 label sets are 10,000 Prometheus series.
void BM_MetricsScrapeCounters(benchmark::State& state) {
  LabelValues values(kSeries);
  MetricsRegistry registry(limitsFor(kSeries));
  MetricSpec spec = durationSpec();
  spec.name = "http.server.requests";
  spec.unit = "{request}";
  spec.buckets.clear();
  Metric& requests = registry.counter(spec);
  for (const LabelSet& s : values.sets) requests.add(s);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = render(registry, ExpositionFormat::kPrometheusText);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["output_bytes"] = double(bytes);
}
BENCHMARK(BM_MetricsScrapeCounters)->Unit(benchmark::kMillisecond);

// http_route from a request target, no patterns and 20 patterns (none match).
void BM_RouteTemplate(benchmark::State& state) {
  std::vector<std::string> patterns;
  for (int i = 0; i < state.range(0); ++i)
    patterns.push_back("/internal/p" + std::to_string(i) + "/{x}");
  RouteTemplater templater(patterns);
  RouteBuffer buffer;
  const char* targets[] = {"/api/v2/users/12345/orders?page=2",
                           "/orders/550e8400-e29b-41d4-a716-446655440000/items", "/healthz",
                           "/static/js/main.js"};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(templater.route(targets[i & 3], buffer).size());
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RouteTemplate)->Arg(0)->Arg(20);

// The same names for every connection: a server pod of a Deployment and its
// client, as identity/ gives a node's records.
class FixedNames final : public NameSource {
 public:
  FixedNames() {
    auto observed = std::make_shared<ObservedIdentity>();
    observed->node_name = "node-1";
    observed->pod = pod("shop", "checkout-7d9f8b6c5-x2k4p", WorkloadKind::kDeployment, "checkout");
    names_.observed = std::move(observed);
    names_.side = ConnectionNames::Side::kServer;
    names_.container_name = "checkout";
    names_.peer = pod("shop", "frontend-0", WorkloadKind::kStatefulSet, "frontend");
  }
  const ConnectionNames& namesOf(const ConnectionInfo&) override { return names_; }

 private:
  static std::shared_ptr<const Pod> pod(const char* ns, const char* name, WorkloadKind kind,
                                        const char* workload) {
    auto p = std::make_shared<Pod>();
    p->namespace_name = ns;
    p->name = name;
    p->uid = std::string("uid-") + name;
    p->workload = kind;
    p->workload_name = workload;
    return p;
  }
  ConnectionNames names_;
};

// MetricsSink's cost per HTTP record: reading its fields, the label set's
// cache and three observations. paths: distinct paths cycled through (1: the
// cache always hits; 1000: it mostly misses and routes, formats and looks
// up). names: 0 a bare HttpRecord (replay), 1 through identity's
// EnrichingSink with the observed pod and the peer named (a node's records).
void BM_MetricsSinkHttpRecord(benchmark::State& state) {
  MetricsRegistry registry;
  MetricsSink sink(registry);
  ConnectionInfo conn;
  conn.addr[1][15] = 9;
  conn.port[1] = 8080;
  conn.client_side = Side::kOrig;
  std::vector<HttpRecord> records(static_cast<size_t>(state.range(0)));
  for (size_t i = 0; i < records.size(); ++i) {
    HttpRecord& r = records[i];
    r.method = "GET";
    r.path = "/api/v2/users/" + std::to_string(i) + "/orders";
    r.host = "shop.example";
    r.user_agent = "curl/7.88.1";
    r.version = "1.1";
    r.status = 200;
    r.request_header_bytes = 120;
    r.response_header_bytes = 200;
    r.response_body_bytes = 1500;
    r.request_start_ns = 1'000'000'000;
    r.request_end_ns = 1'000'010'000;
    r.response_start_ns = 1'003'000'000;
    r.response_end_ns = 1'004'000'000 + i;
  }
  FixedNames names;
  EnrichingSink named(names, sink);
  RecordSink& into = state.range(1) != 0 ? static_cast<RecordSink&>(named) : sink;
  size_t i = 0;
  for (auto _ : state) {
    into.onRecord(conn, records[i]);
    if (++i == records.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MetricsSinkHttpRecord)->ArgNames({"paths", "names"})->ArgsProduct({{1, 1000}, {0, 1}});

}  // namespace
}  // namespace l7tap::metrics
