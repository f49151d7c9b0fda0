// MetricsSink on replayed fixtures: the exact exposition of an HTTP/1 and a
// gRPC capture, L4 by workload pair with names from a table (as identity/
// adds them), the overflow series, and the redaction fixtures: no secret in
// any label, whatever the window or capture control. promtool checks what
// `l7tap replay --metrics-out` writes.
#include "metrics/record_metrics.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <typeinfo>

#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"
#include "identity/enriching_sink.h"
#include "metrics/exposition.h"

namespace l7tap::metrics {
namespace {

std::string pcap(const std::string& name) {
  return std::string(L7TAP_SOURCE_DIR) + "/pcaps/" + name + ".pcap";
}

// Replays `fixture` into `sink` as `l7tap replay` does.
void replay(const std::string& fixture, RecordSink& sink, uint32_t window = 0,
            bool capture_control = false) {
  LoadedCapture cap;
  std::string error;
  ASSERT_TRUE(loadCapture(pcap(fixture), cap, error)) << error;
  Pipeline pipeline(sink);
  {
    Replay r(pipeline, {window, capture_control});
    r.run(cap);
  }
  pipeline.finish();
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The expected text lives beside the test; L7TAP_WRITE_EXPECTED=1 rewrites
// it (then read the diff before committing it).
void expectExposition(const std::string& name, const std::string& actual) {
  const std::string path =
      std::string(L7TAP_SOURCE_DIR) + "/tests/metrics/expected/" + name + ".prom";
  if (std::getenv("L7TAP_WRITE_EXPECTED") != nullptr) {
    std::ofstream(path) << actual;
  }
  EXPECT_EQ(actual, readFile(path)) << path;
}

// Only the series lines that contain `what`, for focused checks.
std::string linesWith(const std::string& text, const std::string& what) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(what) != std::string::npos && line[0] != '#') out += line + "\n";
  }
  return out;
}

TEST(MetricsSinkTest, Http1KeepaliveExactly) {
  MetricsRegistry registry;
  MetricsSink sink(registry);
  replay("http1-keepalive", sink);
  EXPECT_EQ(sink.recordsCounted(), 4u);  // three exchanges and the connection
  expectExposition("http1-keepalive", render(registry, ExpositionFormat::kPrometheusText));
}

TEST(MetricsSinkTest, GrpcExactly) {
  MetricsRegistry registry;
  MetricsSink sink(registry, {.route_patterns = {"/helloworld.Greeter/*"}});
  replay("h2c-grpc-trailers", sink);
  const std::string text = render(registry, ExpositionFormat::kPrometheusText);
  expectExposition("h2c-grpc-trailers", text);
  EXPECT_NE(linesWith(text, "rpc_server_duration_seconds_count"), "");
}

// The names EnrichingSink adds, from a table keyed by the server's port.
class TableNames final : public NameSource {
 public:
  struct Entry {
    ConnectionNames::Side side;
    Pod observed, peer;
  };
  std::map<uint16_t, Entry> by_server_port;

  const ConnectionNames& namesOf(const ConnectionInfo& conn) override {
    const auto it = by_server_port.find(conn.port[index(opposite(conn.client_side))]);
    if (it == by_server_port.end()) return names_ = {};
    auto observed = std::make_shared<ObservedIdentity>();
    observed->pod = std::make_shared<Pod>(it->second.observed);
    ConnectionNames names;
    names.observed = observed;
    names.side = it->second.side;
    if (!it->second.peer.name.empty()) names.peer = std::make_shared<Pod>(it->second.peer);
    return names_ = std::move(names);
  }

 private:
  ConnectionNames names_;
};

Pod pod(std::string ns, std::string name, WorkloadKind kind, std::string workload) {
  Pod p;
  p.namespace_name = std::move(ns);
  p.name = std::move(name);
  p.uid = "uid-" + p.name;
  p.workload = kind;
  p.workload_name = std::move(workload);
  return p;
}

TEST(MetricsSinkTest, ServerSideNamesReplaceTheServerAddress) {
  TableNames names;
  names.by_server_port[8080] = {
      ConnectionNames::Side::kServer,
      pod("shop", "checkout-7d9f-abcde", WorkloadKind::kDeployment, "checkout"),
      pod("shop", "frontend-0", WorkloadKind::kStatefulSet, "frontend")};
  MetricsRegistry registry;
  MetricsSink sink(registry);
  EnrichingSink named(names, sink);
  replay("http1-keepalive", named);
  const std::string text = render(registry, ExpositionFormat::kPrometheusText);
  EXPECT_EQ(
      linesWith(text, "http_server_request_duration_seconds_count"),
      R"(http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/index.html",network_protocol_version="1.1",server_address="",server_port="",k8s_namespace_name="shop",k8s_workload_name="checkout",l7tap_peer_k8s_namespace_name="shop",l7tap_peer_k8s_workload_name="frontend",l7tap_retransmitted="false"} 1
http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/small.txt",network_protocol_version="1.1",server_address="",server_port="",k8s_namespace_name="shop",k8s_workload_name="checkout",l7tap_peer_k8s_namespace_name="shop",l7tap_peer_k8s_workload_name="frontend",l7tap_retransmitted="false"} 1
http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="404",http_route="/missing",network_protocol_version="1.1",server_address="",server_port="",k8s_namespace_name="shop",k8s_workload_name="checkout",l7tap_peer_k8s_namespace_name="shop",l7tap_peer_k8s_workload_name="frontend",l7tap_retransmitted="false"} 1
)");
  EXPECT_EQ(linesWith(text, "http_client_request_duration_seconds_count"), "");
  // L4 by workload pair: neither address, the client's and the server's workloads.
  EXPECT_EQ(
      linesWith(text, "tcp_connections_closed_total{"),
      R"(tcp_connections_closed_total{l7tap_protocol="http/1",l7tap_client_k8s_namespace_name="shop",l7tap_client_k8s_workload_name="frontend",client_address="",l7tap_server_k8s_namespace_name="shop",l7tap_server_k8s_workload_name="checkout",server_address="",server_port="",l7tap_conn_close_reason="fin"} 1
)");
  EXPECT_EQ(
      linesWith(text, "tcp_bytes_total{"),
      R"(tcp_bytes_total{l7tap_protocol="http/1",l7tap_client_k8s_namespace_name="shop",l7tap_client_k8s_workload_name="frontend",client_address="",l7tap_server_k8s_namespace_name="shop",l7tap_server_k8s_workload_name="checkout",server_address="",server_port="",l7tap_sender="client"} 260
tcp_bytes_total{l7tap_protocol="http/1",l7tap_client_k8s_namespace_name="shop",l7tap_client_k8s_workload_name="frontend",client_address="",l7tap_server_k8s_namespace_name="shop",l7tap_server_k8s_workload_name="checkout",server_address="",server_port="",l7tap_sender="server"} 1440
)");
}

TEST(MetricsSinkTest, ClientSideCountsAsClientWithTheServerNamedByThePeer) {
  TableNames names;
  // The observed pod is the client; the server is a pod without a workload
  // (its pod name stands in) in another namespace.
  names.by_server_port[8080] = {ConnectionNames::Side::kClient,
                                pod("shop", "frontend-0", WorkloadKind::kStatefulSet, "frontend"),
                                pod("db", "cache", WorkloadKind::kNone, "")};
  MetricsRegistry registry;
  MetricsSink sink(registry);
  EnrichingSink named(names, sink);
  replay("http1-keepalive", named);
  const std::string text = render(registry, ExpositionFormat::kPrometheusText);
  EXPECT_EQ(linesWith(text, "http_server_request_duration_seconds_count"), "");
  EXPECT_EQ(
      linesWith(text,
                "http_client_request_duration_seconds_count{http_request_method=\"GET\","
                "http_response_status_code=\"404\""),
      R"(http_client_request_duration_seconds_count{http_request_method="GET",http_response_status_code="404",http_route="/missing",network_protocol_version="1.1",server_address="",server_port="",k8s_namespace_name="shop",k8s_workload_name="frontend",l7tap_peer_k8s_namespace_name="db",l7tap_peer_k8s_workload_name="cache",l7tap_retransmitted="false"} 1
)");
  EXPECT_EQ(
      linesWith(text, "tcp_connections_opened_total{"),
      R"(tcp_connections_opened_total{l7tap_protocol="http/1",l7tap_client_k8s_namespace_name="shop",l7tap_client_k8s_workload_name="frontend",client_address="",l7tap_server_k8s_namespace_name="db",l7tap_server_k8s_workload_name="cache",server_address="",server_port=""} 1
)");
}

// A record with an HTTP exchange's fields, plus the exchange L4 fields the
// exchange-l4 work adds, as a wrapper would show them.
class RetransmittedExchange final : public Record {
 public:
  explicit RetransmittedExchange(const HttpRecord& inner) : inner_(inner) {}
  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override {
    inner_.visit(conn, v);
    v.num("l7tap.exchange.server.retransmitted_segments", 2);
  }
  void appendMessage(std::string&, const ConnectionInfo&) const override {}

 private:
  const HttpRecord& inner_;
};

TEST(MetricsSinkTest, ExchangeRetransmissionsLabelTheDuration) {
  MetricsRegistry registry;
  MetricsSink sink(registry);
  ConnectionInfo conn;
  conn.port[1] = 80;
  HttpRecord r;
  r.method = "GET";
  r.path = "/a";
  r.version = "1.1";
  r.status = 200;
  r.request_start_ns = 1'000'000'000;
  r.response_end_ns = 1'020'000'000;
  sink.onRecord(conn, r);
  sink.onRecord(conn, RetransmittedExchange(r));
  sink.onRecord(conn, RetransmittedExchange(r));
  const std::string text = render(registry, ExpositionFormat::kPrometheusText);
  EXPECT_NE(linesWith(text, "l7tap_retransmitted=\"false\"} 1"), "");
  EXPECT_NE(linesWith(text, "l7tap_retransmitted=\"true\"} 2"), "");
}

// A long-lived connection: each interim record adds what grew since the
// last, the final one the rest; opened and the handshake count once, with
// the first record, closed with the last.
TEST(MetricsSinkTest, InterimRecordsCountWhatGrewAndTheFinalOneTheRest) {
  MetricsRegistry registry;
  MetricsSink sink(registry);
  ConnectionInfo conn;
  conn.id = 7;
  conn.port[1] = 443;
  conn.history.add('S');
  conn.history.add('h');
  conn.handshake_rtt_ns = 200'000;
  ConnRecord record;
  record.protocol = "h2";
  const auto packets = [&] {
    return linesWith(render(registry, ExpositionFormat::kPrometheusText), "tcp_packets_total{");
  };
  const auto count = [&](const std::string& what) {
    return linesWith(render(registry, ExpositionFormat::kPrometheusText), what);
  };
  record.interim = true;
  conn.stats[0].packets = 10;
  conn.stats[1].packets = 4;
  sink.onRecord(conn, record);
  EXPECT_NE(count("tcp_connections_opened_total{").find("} 1\n"), std::string::npos);
  EXPECT_EQ(count("tcp_connections_closed_total{"), "");
  EXPECT_NE(packets().find("l7tap_sender=\"client\"} 10"), std::string::npos) << packets();
  conn.stats[0].packets = 25;
  sink.onRecord(conn, record);
  EXPECT_NE(packets().find("l7tap_sender=\"client\"} 25"), std::string::npos) << packets();
  EXPECT_NE(packets().find("l7tap_sender=\"server\"} 4"), std::string::npos) << packets();
  record.interim = false;
  conn.close_reason = CloseReason::kFin;
  conn.stats[0].packets = 30;
  conn.stats[1].packets = 9;
  sink.onRecord(conn, record);
  EXPECT_NE(packets().find("l7tap_sender=\"client\"} 30"), std::string::npos) << packets();
  EXPECT_NE(packets().find("l7tap_sender=\"server\"} 9"), std::string::npos) << packets();
  EXPECT_NE(count("tcp_connections_opened_total{").find("} 1\n"), std::string::npos);
  EXPECT_NE(count("tcp_connections_closed_total{").find("close_reason=\"fin\"} 1"),
            std::string::npos)
      << count("tcp_connections_closed_total{");
  EXPECT_NE(count("tcp_handshake_rtt_seconds_count{").find("} 1\n"), std::string::npos);
  // Another connection with the same id later (ids are per process, but a
  // sink must not carry counts over): counted from zero.
  conn.stats[0].packets = 2;
  conn.stats[1].packets = 1;
  sink.onRecord(conn, record);
  EXPECT_NE(packets().find("l7tap_sender=\"client\"} 32"), std::string::npos) << packets();
}

// Past max_connections_in_progress, interim records are not counted and the
// final one counts the connection whole.
TEST(MetricsSinkTest, ConnectionsPastTheInProgressBoundCountWholeAtClose) {
  MetricsRegistry registry;
  MetricsOptions options;
  options.limits.max_connections_in_progress = 1;
  MetricsSink sink(registry, options);
  ConnectionInfo a, b;
  a.id = 1;
  b.id = 2;
  a.port[1] = b.port[1] = 80;
  a.stats[0].packets = b.stats[0].packets = 5;
  ConnRecord interim;
  interim.interim = true;
  ConnRecord final_record;
  sink.onRecord(a, interim);
  sink.onRecord(b, interim);  // no room: counted at close
  const std::string before =
      linesWith(render(registry, ExpositionFormat::kPrometheusText), "l7tap_sender=\"client\"");
  EXPECT_NE(before.find("} 5\n"), std::string::npos) << before;
  sink.onRecord(a, final_record);
  sink.onRecord(b, final_record);
  const std::string after =
      linesWith(render(registry, ExpositionFormat::kPrometheusText), "tcp_packets_total{");
  EXPECT_NE(after.find("l7tap_sender=\"client\"} 10"), std::string::npos) << after;
}

// Checks every bare HttpRecord: the sink's fast path (members) reads what
// the record's visit shows.
class FastPathCheck final : public RecordSink {
 public:
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    if (typeid(record.inner()) != typeid(HttpRecord)) return;
    ++checked;
    if (!MetricsSink::typedFieldsMatchVisit(conn, static_cast<const HttpRecord&>(record.inner()))) {
      ++mismatched;
    }
  }
  size_t checked = 0;
  size_t mismatched = 0;
};

TEST(MetricsSinkTest, FastPathReadsWhatTheVisitShowsOnEveryFixture) {
  size_t total = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(L7TAP_SOURCE_DIR) + "/pcaps")) {
    if (entry.path().extension() != ".pcap") continue;
    for (uint32_t window : {0u, 256u}) {
      FastPathCheck check;
      replay(entry.path().stem().string(), check, window, window != 0);
      EXPECT_EQ(check.mismatched, 0u) << entry.path() << " window " << window;
      total += check.checked;
    }
  }
  EXPECT_GT(total, 100u);
}

TEST(MetricsSinkTest, OverflowPastTheSeriesLimit) {
  MetricsRegistry registry({.max_series_per_metric = 2});
  MetricsSink sink(registry);
  replay("http1-keepalive", sink);  // three routes
  const std::string text = render(registry, ExpositionFormat::kPrometheusText);
  EXPECT_EQ(linesWith(text, "http_server_request_duration_seconds_count{otel_metric_overflow"),
            "http_server_request_duration_seconds_count{otel_metric_overflow=\"true\"} 1\n");
  EXPECT_EQ(linesWith(text, "metric=\"http_server_request_duration_seconds\""),
            "l7tap_metrics_overflowed_observations_total{metric=\"http_server_request_duration_"
            "seconds\"} 1\n");
}

std::string run(const std::string& command, int* status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  *status = pclose(p);
  return out;
}

// The secrets of pcaps/http1-redaction and h2c-redaction as sent
// (tests/daemon/redaction_fixture_test.cc has the same list).
const char* const kSecrets[] = {
    "s3cr3t",       "bob",       "pa55",      "alice",  "YWxpY2U6cGE1NQ",
    "t0k3n-h34d3r", "c00k13v4l", "k3y-v4lu3", "Bearer", "Basic",
};

TEST(MetricsSinkTest, NoSecretInTheExpositionOfTheRedactionFixtures) {
  char dir[] = "/tmp/l7tap-metrics-redaction-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  for (const char* fixture : {"http1-redaction", "h2c-redaction"}) {
    for (const char* window : {"", "--window 1024", "--window 256"}) {
      for (const char* control : {"", "--capture-control"}) {
        const std::string out = std::string(dir) + "/metrics.prom";
        const std::string cmd = std::string(L7TAP_BINARY) + " replay --quiet -o /dev/null " +
                                window + " " + control + " --metrics-out " + out + " " +
                                pcap(fixture);
        int status = 0;
        run(cmd, &status);
        ASSERT_EQ(status, 0) << cmd;
        const std::string text = readFile(out);
        ASSERT_NE(linesWith(text, "http_server_request_duration_seconds_count"), "") << cmd;
        for (const char* secret : kSecrets) {
          EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << cmd;
        }
        unlink(out.c_str());
      }
    }
  }
  rmdir(dir);
}

TEST(MetricsSinkTest, PromtoolAcceptsReplaysExposition) {
  const char* promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool, X_OK), 0) << "promtool missing: apt-get install prometheus (.ci/deps)";
  char dir[] = "/tmp/l7tap-metrics-promtool-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string out = std::string(dir) + "/metrics.prom";
  int status = 0;
  run(std::string(L7TAP_BINARY) + " replay --quiet -o /dev/null --metrics-out " + out + " " +
          pcap("http1-keepalive") + " " + pcap("h2c-grpc-trailers") + " " + pcap("tcp-loss"),
      &status);
  ASSERT_EQ(status, 0);
  const std::string verdict =
      run(std::string(promtool) + " check metrics < " + out + " 2>&1", &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << verdict;
  EXPECT_EQ(verdict, "");
  unlink(out.c_str());
  rmdir(dir);
}

// replay --metrics-addr serves while the replay runs (not silently
// ignored), and an address it cannot bind ends it before any record.
TEST(MetricsSinkTest, ReplayServesMetricsAddrOrSaysWhyNot) {
  int status = 0;
  std::string err = run(std::string(L7TAP_BINARY) + " replay --quiet -o /dev/null " +
                            "--metrics-addr 127.0.0.1:0 " + pcap("http1-keepalive") + " 2>&1",
                        &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err;
  EXPECT_EQ(err.rfind("l7tap: metrics on http://127.0.0.1:", 0), 0u) << err;
  err = run(std::string(L7TAP_BINARY) + " replay --quiet -o /dev/null " +
                "--metrics-addr 192.0.2.1:9 " + pcap("http1-keepalive") + " 2>&1",
            &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << err;
  EXPECT_EQ(err.rfind("l7tap: --metrics-addr 192.0.2.1:9: ", 0), 0u) << err;
}

TEST(MetricsSinkTest, UnwritableMetricsOutIsOneLineAndExitOne) {
  int status = 0;
  const std::string err =
      run(std::string(L7TAP_BINARY) + " replay --quiet -o /dev/null --metrics-out " +
              "/nonexistent-dir/m.prom " + pcap("http1-keepalive") + " 2>&1",
          &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << err;
  EXPECT_EQ(err, "l7tap: --metrics-out /nonexistent-dir/m.prom: No such file or directory\n");
}

}  // namespace
}  // namespace l7tap::metrics
