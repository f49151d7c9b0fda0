// The exact text a small registry renders as, in both formats; names from
// OTel names and units; escaping; and promtool's verdict on the text format.
#include "metrics/exposition.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "metrics/naming.h"

namespace l7tap::metrics {
namespace {

// Two series per metric, so the third label set shows the overflow series.
void fill(MetricsRegistry& registry) {
  Metric& requests = registry.counter({"http.server.requests",
                                       "{request}",
                                       "HTTP requests\\exchanges\nseen.",
                                       {"http.request.method", "http.route"},
                                       {}});
  Metric& duration = registry.histogram({"http.server.request.duration",
                                         "s",
                                         "Duration of HTTP server requests.",
                                         {"http.response.status_code"},
                                         {0.1, 1}});
  Metric& flows = registry.gauge({"l7tap.flows", "{flow}", "Flows tracked.", {}, {}});
  requests.add(std::array<std::string_view, 2>{"GET", "/api/users/{id}"}, 3);
  requests.add(std::array<std::string_view, 2>{"GET", "/say \"hi\"\\\n"});
  requests.add(std::array<std::string_view, 2>{"POST", "/api/users"});
  std::array<std::string_view, 1> ok{"200"}, bad{"500"}, other{"404"};
  duration.observe(ok, 0.05);
  duration.observe(ok, 0.5);
  duration.observe(ok, 2);
  duration.observe(bad, 0.1);
  duration.observe(other, 0.25);
  flows.set(std::span<const std::string_view>(), 12);
}

MetricsLimits twoSeries() {
  MetricsLimits limits;
  limits.max_series_per_metric = 2;
  return limits;
}

TEST(ExpositionTest, PrometheusTextExactly) {
  MetricsRegistry registry(twoSeries());
  fill(registry);
  EXPECT_EQ(
      render(registry, ExpositionFormat::kPrometheusText),
      R"exp(# HELP l7tap_metrics_overflowed_observations_total Observations counted into a metric's overflow series because it had reached its series limit.
# TYPE l7tap_metrics_overflowed_observations_total counter
l7tap_metrics_overflowed_observations_total{metric="http_server_requests_total"} 1
l7tap_metrics_overflowed_observations_total{metric="http_server_request_duration_seconds"} 1
l7tap_metrics_overflowed_observations_total{metric="l7tap_flows"} 0
# HELP http_server_requests_total HTTP requests\\exchanges\nseen.
# TYPE http_server_requests_total counter
http_server_requests_total{http_request_method="GET",http_route="/api/users/{id}"} 3
http_server_requests_total{http_request_method="GET",http_route="/say \"hi\"\\\n"} 1
http_server_requests_total{otel_metric_overflow="true"} 1
# HELP http_server_request_duration_seconds Duration of HTTP server requests.
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="0.1"} 1
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="1"} 2
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="+Inf"} 3
http_server_request_duration_seconds_sum{http_response_status_code="200"} 2.55
http_server_request_duration_seconds_count{http_response_status_code="200"} 3
http_server_request_duration_seconds_bucket{http_response_status_code="500",le="0.1"} 1
http_server_request_duration_seconds_bucket{http_response_status_code="500",le="1"} 1
http_server_request_duration_seconds_bucket{http_response_status_code="500",le="+Inf"} 1
http_server_request_duration_seconds_sum{http_response_status_code="500"} 0.1
http_server_request_duration_seconds_count{http_response_status_code="500"} 1
http_server_request_duration_seconds_bucket{otel_metric_overflow="true",le="0.1"} 0
http_server_request_duration_seconds_bucket{otel_metric_overflow="true",le="1"} 1
http_server_request_duration_seconds_bucket{otel_metric_overflow="true",le="+Inf"} 1
http_server_request_duration_seconds_sum{otel_metric_overflow="true"} 0.25
http_server_request_duration_seconds_count{otel_metric_overflow="true"} 1
# HELP l7tap_flows Flows tracked.
# TYPE l7tap_flows gauge
l7tap_flows 12
)exp");
}

TEST(ExpositionTest, OpenMetricsExactly) {
  MetricsRegistry registry(twoSeries());
  fill(registry);
  EXPECT_EQ(
      render(registry, ExpositionFormat::kOpenMetrics),
      R"exp(# HELP l7tap_metrics_overflowed_observations Observations counted into a metric's overflow series because it had reached its series limit.
# TYPE l7tap_metrics_overflowed_observations counter
l7tap_metrics_overflowed_observations_total{metric="http_server_requests_total"} 1
l7tap_metrics_overflowed_observations_total{metric="http_server_request_duration_seconds"} 1
l7tap_metrics_overflowed_observations_total{metric="l7tap_flows"} 0
# HELP http_server_requests HTTP requests\\exchanges\nseen.
# TYPE http_server_requests counter
http_server_requests_total{http_request_method="GET",http_route="/api/users/{id}"} 3
http_server_requests_total{http_request_method="GET",http_route="/say \"hi\"\\\n"} 1
http_server_requests_total{otel_metric_overflow="true"} 1
# HELP http_server_request_duration_seconds Duration of HTTP server requests.
# TYPE http_server_request_duration_seconds histogram
# UNIT http_server_request_duration_seconds seconds
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="0.1"} 1
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="1.0"} 2
http_server_request_duration_seconds_bucket{http_response_status_code="200",le="+Inf"} 3
http_server_request_duration_seconds_sum{http_response_status_code="200"} 2.55
http_server_request_duration_seconds_count{http_response_status_code="200"} 3
http_server_request_duration_seconds_bucket{http_response_status_code="500",le="0.1"} 1
http_server_request_duration_seconds_bucket{http_response_status_code="500",le="1.0"} 1
http_server_request_duration_seconds_bucket{http_response_status_code="500",le="+Inf"} 1
http_server_request_duration_seconds_sum{http_response_status_code="500"} 0.1
http_server_request_duration_seconds_count{http_response_status_code="500"} 1
http_server_request_duration_seconds_bucket{otel_metric_overflow="true",le="0.1"} 0
http_server_request_duration_seconds_bucket{otel_metric_overflow="true",le="1.0"} 1
http_server_request_duration_seconds_bucket{otel_metric_overflow="true",le="+Inf"} 1
http_server_request_duration_seconds_sum{otel_metric_overflow="true"} 0.25
http_server_request_duration_seconds_count{otel_metric_overflow="true"} 1
# HELP l7tap_flows Flows tracked.
# TYPE l7tap_flows gauge
l7tap_flows 12
# EOF
)exp");
}

TEST(ExpositionTest, Names) {
  EXPECT_EQ(prometheusLabelName("http.request.method"), "http_request_method");
  EXPECT_EQ(prometheusLabelName("k8s.pod..name"), "k8s_pod_name");
  EXPECT_EQ(prometheusLabelName("2xx"), "_2xx");
  auto family = [](const char* name, const char* unit, MetricKind kind) {
    return prometheusFamilyName({name, unit, "", {}, {}}, kind);
  };
  EXPECT_EQ(family("http.client.request.duration", "s", MetricKind::kHistogram),
            "http_client_request_duration_seconds");
  EXPECT_EQ(family("http.request.body.size", "By", MetricKind::kHistogram),
            "http_request_body_size_bytes");
  EXPECT_EQ(family("rpc.server.duration", "ms", MetricKind::kHistogram),
            "rpc_server_duration_milliseconds");
  EXPECT_EQ(family("l7tap.tcp.bytes", "By", MetricKind::kCounter), "l7tap_tcp_bytes");
  EXPECT_EQ(family("tcp.connections.closed.total", "{connection}", MetricKind::kCounter),
            "tcp_connections_closed");
  EXPECT_EQ(family("process.memory_bytes", "By", MetricKind::kGauge), "process_memory_bytes");
  EXPECT_EQ(family("l7tap.ring.fill", "1", MetricKind::kGauge), "l7tap_ring_fill_ratio");
  EXPECT_EQ(family("l7tap.drops", "1", MetricKind::kCounter), "l7tap_drops");
}

TEST(ExpositionTest, MethodsOutsideTheConventionsAreOther) {
  EXPECT_EQ(httpMethodLabel("GET"), "GET");
  EXPECT_EQ(httpMethodLabel("PATCH"), "PATCH");
  EXPECT_EQ(httpMethodLabel("get"), "_OTHER");
  EXPECT_EQ(httpMethodLabel("PROPFIND"), "_OTHER");
  EXPECT_EQ(httpMethodLabel(""), "_OTHER");
}

TEST(ExpositionTest, LabelValuesAreValidUtf8) {
  MetricsRegistry registry;
  Metric& m = registry.counter({"c", "", "h", {"v"}, {}});
  m.add(std::array<std::string_view, 1>{"caf\xc3\xa9 \xff\xc0\x80 \xe2\x82"});
  std::string text = render(registry, ExpositionFormat::kPrometheusText);
  EXPECT_NE(text.find("c_total{v=\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                      "\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"),
            std::string::npos)
      << text;
}

// A scrape while the writer observes and creates series: every histogram
// line set it renders is whole, and _count equals the +Inf bucket. (Under
// TSan this checks the publication; no timing involved.)
TEST(ExpositionTest, RendersWhileTheWriterObserves) {
  MetricsLimits limits;
  limits.max_series_per_metric = 300;
  MetricsRegistry registry(limits);
  Metric& duration = registry.histogram({"d", "s", "h", {"r"}, {0.1, 1}});
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      std::string text = render(registry, ExpositionFormat::kPrometheusText);
      size_t pos = 0;
      while ((pos = text.find("le=\"+Inf\"} ", pos)) != std::string::npos) {
        pos += 11;
        std::string inf = text.substr(pos, text.find('\n', pos) - pos);
        size_t count = text.find("d_seconds_count{", pos);
        ASSERT_NE(count, std::string::npos);
        count = text.find("} ", count) + 2;
        EXPECT_EQ(text.substr(count, text.find('\n', count) - count), inf);
      }
    }
  });
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 400; ++i) {
      std::string r = "/r" + std::to_string(i);
      duration.observe(std::array<std::string_view, 1>{r}, 0.01 * i);
    }
  }
  done = true;
  scraper.join();
}

TEST(ExpositionTest, Negotiation) {
  EXPECT_EQ(negotiateFormat(""), ExpositionFormat::kPrometheusText);
  EXPECT_EQ(negotiateFormat("text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
            ExpositionFormat::kPrometheusText);
  // What Prometheus 2.42 sends.
  EXPECT_EQ(
      negotiateFormat("application/openmetrics-text;version=1.0.0,application/"
                      "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/"
                      "*;q=0.1"),
      ExpositionFormat::kOpenMetrics);
  EXPECT_EQ(contentType(ExpositionFormat::kPrometheusText),
            "text/plain; version=0.0.4; charset=utf-8");
}

// promtool (Debian's prometheus package, installed by .ci/deps) parses and
// lints the text format: a required check, not an optional one.
TEST(ExpositionTest, PromtoolAcceptsTheTextFormat) {
  const char* promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool, X_OK), 0) << "promtool missing: apt-get install prometheus (.ci/deps)";
  MetricsRegistry registry(twoSeries());
  fill(registry);
  Metric& body = registry.histogram(
      {"http.response.body.size", "By", "Response body sizes.", {"http.route"}, bodySizeBuckets()});
  body.observe(std::array<std::string_view, 1>{"/"}, 1500);
  char path[] = "/tmp/l7tap-metrics-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << render(registry, ExpositionFormat::kPrometheusText);
  }
  std::string command = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  int status = pclose(pipe);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace l7tap::metrics
