// The kernel's cumulative histograms as intervals, quantiles, the table
// people read, and the Prometheus histograms (checked by promtool).
#include "apptrace/histograms.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/exposition.h"
#include "metrics/registry.h"

namespace l7tap {
namespace {

// `n` calls in bucket `b` ([2^b, 2^(b+1)) ns), each lasting 1.5 * 2^b ns.
void addCalls(FunctionStats& s, int b, uint64_t n) {
  s.buckets[b] += n;
  s.calls += n;
  s.sum_ns += n * ((uint64_t{3} << b) / 2);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(HistogramsTest, AnIntervalIsTheDifferenceOfTwoReads) {
  FunctionStats before, now;
  addCalls(before, 17, 10);
  before.bytes_sent = 100;
  now = before;
  addCalls(now, 17, 5);
  addCalls(now, 20, 1);
  now.bytes_sent = 150;
  now.bytes_received = 7;
  FunctionStats other;
  addCalls(other, 3, 2);
  const std::vector<FunctionInterval> rows = intervalOf({"a"}, {before}, {now, other});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].function, "a");
  EXPECT_EQ(rows[0].delta.calls, 6u);
  EXPECT_EQ(rows[0].delta.buckets[17], 5u);
  EXPECT_EQ(rows[0].delta.buckets[20], 1u);
  EXPECT_EQ(rows[0].delta.sum_ns, 5 * ((uint64_t{3} << 17) / 2) + (uint64_t{3} << 20) / 2);
  EXPECT_EQ(rows[0].delta.bytes_sent, 50u);
  EXPECT_EQ(rows[0].delta.bytes_received, 7u);
  // No earlier read of the second function (attached since): all of it.
  EXPECT_EQ(rows[1].function, "#1");
  EXPECT_EQ(rows[1].delta.calls, 2u);
  // Counts that went down (a reloaded program) start over.
  const std::vector<FunctionInterval> reset = intervalOf({"a"}, {now}, {other});
  EXPECT_EQ(reset[0].delta.calls, 2u);
  EXPECT_EQ(reset[0].delta.buckets[3], 2u);
}

TEST(HistogramsTest, QuantilesAreBucketUpperBounds) {
  FunctionInterval row;
  EXPECT_EQ(row.quantileNs(0.5), 0u);
  addCalls(row.delta, 10, 50);  // [1024, 2048) ns
  addCalls(row.delta, 20, 45);  // [~1 ms, ~2 ms)
  addCalls(row.delta, 30, 5);   // [~1 s, ~2 s)
  EXPECT_EQ(row.quantileNs(0.0), 2048u);
  EXPECT_EQ(row.quantileNs(0.5), 2048u);
  EXPECT_EQ(row.quantileNs(0.51), uint64_t{1} << 21);
  EXPECT_EQ(row.quantileNs(0.95), uint64_t{1} << 21);
  EXPECT_EQ(row.quantileNs(0.96), uint64_t{1} << 31);
  EXPECT_EQ(row.quantileNs(1.0), uint64_t{1} << 31);
  FunctionInterval slowest;
  addCalls(slowest.delta, L7TAP_APP_HIST_BUCKETS - 1, 1);
  EXPECT_EQ(slowest.quantileNs(0.99), uint64_t{1} << L7TAP_APP_HIST_BUCKETS);
}

TEST(HistogramsTest, TheTableForPeople) {
  std::vector<FunctionInterval> rows(2);
  rows[0].function = "main.handleGetUser";
  addCalls(rows[0].delta, 17, 60);  // ~131 us
  addCalls(rows[0].delta, 18, 30);
  addCalls(rows[0].delta, 21, 10);
  rows[0].delta.bytes_sent = 120 * 1024;
  rows[0].delta.bytes_received = 300;
  rows[1].function = "main.idle";
  const std::string table = formatHistogramTable(rows, 10'000'000'000);
  EXPECT_EQ(table,
            "function                 calls   calls/s       p50       p90       p99       max     "
            " mean       sent   received\n"
            "main.handleGetUser         100      10.0   <262 us   <524 us  <4.19 ms  <4.19 ms    "
            "551 us  120.0 KiB      300 B\n"
            "  [131 us, 262 us)          60 |########################################|\n"
            "  [262 us, 524 us)          30 |####################                    |\n"
            "  [2.10 ms, 4.19 ms)        10 |######                                  |\n"
            "main.idle                    0       0.0         -         -         -         -      "
            "   -          -          -\n")
      << table;
  // The columns line up: every function's row is as wide as the header.
  const std::vector<std::string> l = lines(table);
  EXPECT_EQ(l[1].size(), l[0].size());
  EXPECT_EQ(l[5].size(), l[0].size());
}

TEST(HistogramsTest, TheTableShowsTheBusiestBucketsAndPrintableNames) {
  std::vector<FunctionInterval> rows(1);
  rows[0].function = std::string("f\n\x1b", 3) + std::string(100, 'x');
  for (int b = 0; b < 12; ++b) addCalls(rows[0].delta, b, 1 + b);
  const std::string table = formatHistogramTable(rows, 0);
  const std::vector<std::string> l = lines(table);
  ASSERT_EQ(l.size(), 2 + HistogramLimits::kMaxTableBuckets);
  EXPECT_EQ(l[0].rfind("function", 0), 0u);
  EXPECT_EQ(l[0].find("calls/s"), std::string::npos);  // no interval, no rate
  EXPECT_EQ(l[1].rfind("f\\x0a\\x1b", 0), 0u) << l[1];
  EXPECT_NE(l[1].find("..."), std::string::npos);
  // The eight busiest of twelve: buckets 4 to 11, in order.
  EXPECT_EQ(l[2].rfind("  [16 ns, 32 ns)", 0), 0u) << l[2];
  EXPECT_EQ(l.back().rfind("  [2.05 us, 4.10 us)", 0), 0u) << l.back();
}

TEST(HistogramsTest, TheBoundsAreTheKernelsFrom1usTo2To35ns) {
  const std::vector<double>& b = functionDurationBounds();
  ASSERT_EQ(b.size(), 26u);
  EXPECT_DOUBLE_EQ(b.front(), 1024e-9);
  EXPECT_DOUBLE_EQ(b.back(), static_cast<double>(uint64_t{1} << 35) / 1e9);
}

std::string exposition(const metrics::MetricsRegistry& registry) {
  return metrics::render(registry, metrics::ExpositionFormat::kPrometheusText);
}

TEST(HistogramsTest, TheExporterSetsTheKernelsFigures) {
  metrics::MetricsRegistry registry;
  HistogramExporter exporter(registry);
  FunctionStats s;
  addCalls(s, 3, 2);   // below 1 us: the first bucket
  addCalls(s, 10, 1);  // [1024, 2048) ns: le 2^11 ns
  addCalls(s, 34, 1);  // le 2^35 ns, the last bound
  addCalls(s, 40, 1);  // +Inf
  s.bytes_sent = 4096;
  s.bytes_received = 10;
  exporter.update({"main.handle"}, {s});
  std::string text = exposition(registry);
  const std::string label = "code_function_name=\"main.handle\"";
  EXPECT_NE(text.find("l7tap_app_function_calls_total{" + label + "} 5\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("l7tap_app_function_sent_bytes_total{" + label + "} 4096\n"),
            std::string::npos);
  EXPECT_NE(text.find("l7tap_app_function_received_bytes_total{" + label + "} 10\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE l7tap_app_function_duration_seconds histogram"), std::string::npos);
  const std::string bucket = "l7tap_app_function_duration_seconds_bucket{" + label + ",le=\"";
  EXPECT_NE(text.find(bucket + "1.024e-06\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find(bucket + "2.048e-06\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find(bucket + "34.359738368\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find(bucket + "+Inf\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("l7tap_app_function_duration_seconds_count{" + label + "} 5\n"),
            std::string::npos);
  // Totals are set, not added: a second read replaces the first.
  addCalls(s, 10, 1);
  exporter.update({"main.handle"}, {s});
  text = exposition(registry);
  EXPECT_NE(text.find("l7tap_app_function_calls_total{" + label + "} 6\n"), std::string::npos);
  EXPECT_NE(text.find(bucket + "2.048e-06\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find(bucket + "+Inf\"} 6\n"), std::string::npos) << text;
}

// promtool (Debian's prometheus, installed by .ci/deps) parses and lints
// the exposition, as tests/metrics does for the other metrics.
TEST(HistogramsTest, PromtoolAcceptsTheExposition) {
  const char* promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool, X_OK), 0) << "promtool missing: apt-get install prometheus (.ci/deps)";
  metrics::MetricsRegistry registry;
  HistogramExporter exporter(registry);
  FunctionStats a, b;
  addCalls(a, 20, 3);
  addCalls(b, 5, 1);
  exporter.update({"main.handleGetUser", "handle_request"}, {a, b});
  char path[] = "/tmp/a14r-apptrace-metrics-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << exposition(registry);
  }
  const std::string command = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace l7tap
