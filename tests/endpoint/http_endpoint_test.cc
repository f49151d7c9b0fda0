// The endpoint on real sockets (127.0.0.1 and ::1, port 0) with libcurl as
// the client: format negotiation, probes, errors, and promtool's verdict on
// what /metrics serves.
#include "endpoint/http_endpoint.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "metrics/exposition.h"
#include "metrics/registry.h"

namespace l7tap {
namespace {

struct Fetched {
  CURLcode result = CURLE_OK;
  long status = 0;
  std::string content_type;
  std::string body;
  std::string headers;
};

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Fetched fetch(const std::string& url, const std::string& method = "GET",
              const std::string& accept = "") {
  Fetched f;
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  if (!accept.empty()) headers = curl_slist_append(headers, ("Accept: " + accept).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  // A bound against a hung test, not a timing assumption.
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  if (method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &f.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &f.headers);
  f.result = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &f.status);
  const char* type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  if (type) f.content_type = type;
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return f;
}

// A registry with a counter and a histogram, a series each.
struct Filled {
  metrics::MetricsRegistry registry;
  metrics::Metric& requests =
      registry.counter({"http.server.requests", "{request}", "Requests seen.", {"http.route"}, {}});
  metrics::Metric& duration = registry.histogram({"http.server.request.duration",
                                                  "s",
                                                  "Request durations.",
                                                  {"http.route"},
                                                  metrics::httpDurationBuckets()});
  Filled() {
    requests.add(std::array<std::string_view, 1>{"/api/users/{id}"}, 3);
    duration.observe(std::array<std::string_view, 1>{"/api/users/{id}"}, 0.012);
  }
};

HttpEndpoint::Handlers serve(const metrics::MetricsRegistry& registry) {
  HttpEndpoint::Handlers h;
  h.metrics = [&registry](metrics::ExpositionFormat format) {
    return metrics::render(registry, format);
  };
  return h;
}

std::string base(const HttpEndpoint& endpoint) { return "http://" + endpoint.boundAddress(); }

void startOn(HttpEndpoint& endpoint, const std::string& address, HttpEndpoint::Handlers h) {
  std::string error;
  ASSERT_TRUE(endpoint.bind(address, error)) << error;
  ASSERT_NE(endpoint.port(), 0);
  ASSERT_TRUE(endpoint.start(std::move(h), error)) << error;
}

TEST(HttpEndpointTest, MetricsInTheTextFormatByDefault) {
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, "127.0.0.1:0", serve(m.registry));
  EXPECT_EQ(endpoint.boundAddress(), "127.0.0.1:" + std::to_string(endpoint.port()));
  const Fetched f = fetch(base(endpoint) + "/metrics");
  ASSERT_EQ(f.result, CURLE_OK) << curl_easy_strerror(f.result);
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(f.body, metrics::render(m.registry, metrics::ExpositionFormat::kPrometheusText));
  EXPECT_NE(f.body.find("http_server_requests_total{http_route=\"/api/users/{id}\"} 3"),
            std::string::npos)
      << f.body;
}

TEST(HttpEndpointTest, OpenMetricsWhenTheAcceptHeaderAsksForIt) {
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, "127.0.0.1:0", serve(m.registry));
  // What Prometheus 2.x sends.
  const Fetched f = fetch(base(endpoint) + "/metrics", "GET",
                          "application/openmetrics-text;version=1.0.0,application/"
                          "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/"
                          "*;q=0.1");
  ASSERT_EQ(f.result, CURLE_OK) << curl_easy_strerror(f.result);
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.content_type, metrics::contentType(metrics::ExpositionFormat::kOpenMetrics));
  EXPECT_EQ(f.body, metrics::render(m.registry, metrics::ExpositionFormat::kOpenMetrics));
  EXPECT_TRUE(f.body.ends_with("# EOF\n")) << f.body;
  const Fetched plain = fetch(base(endpoint) + "/metrics", "GET", "text/plain");
  EXPECT_EQ(plain.content_type, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(HttpEndpointTest, ServesOnIpv6Loopback) {
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, "[::1]:0", serve(m.registry));
  EXPECT_EQ(endpoint.boundAddress(), "[::1]:" + std::to_string(endpoint.port()));
  const Fetched f = fetch(base(endpoint) + "/metrics");
  ASSERT_EQ(f.result, CURLE_OK) << curl_easy_strerror(f.result);
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, metrics::render(m.registry, metrics::ExpositionFormat::kPrometheusText));
}

TEST(HttpEndpointTest, EveryAddressTakesBothFamilies) {
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, ":0", serve(m.registry));
  const std::string port = std::to_string(endpoint.port());
  for (const std::string host : {"127.0.0.1", "[::1]"}) {
    const Fetched f = fetch("http://" + host + ":" + port + "/healthz");
    ASSERT_EQ(f.result, CURLE_OK) << host << ": " << curl_easy_strerror(f.result);
    EXPECT_EQ(f.status, 200) << host;
    EXPECT_EQ(f.body, "ok\n") << host;
  }
}

TEST(HttpEndpointTest, OtherPathsAre404AndOtherMethods405) {
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, "127.0.0.1:0", serve(m.registry));
  for (const char* path : {"/", "/metric", "/metrics/", "/healthz/x", "/favicon.ico"}) {
    const Fetched f = fetch(base(endpoint) + path);
    ASSERT_EQ(f.result, CURLE_OK) << path;
    EXPECT_EQ(f.status, 404) << path;
  }
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
    for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
      const Fetched f = fetch(base(endpoint) + path, method);
      ASSERT_EQ(f.result, CURLE_OK) << method << " " << path;
      EXPECT_EQ(f.status, 405) << method << " " << path;
      EXPECT_NE(f.headers.find("Allow: GET, HEAD"), std::string::npos) << f.headers;
    }
  }
  // A query string does not change the path.
  EXPECT_EQ(fetch(base(endpoint) + "/metrics?x=1").status, 200);
}

TEST(HttpEndpointTest, HeadHasTheHeadersWithoutTheBody) {
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, "127.0.0.1:0", serve(m.registry));
  const Fetched f = fetch(base(endpoint) + "/metrics", "HEAD");
  ASSERT_EQ(f.result, CURLE_OK) << curl_easy_strerror(f.result);
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, "");
  EXPECT_EQ(f.content_type, "text/plain; version=0.0.4; charset=utf-8");
  const std::string length = std::to_string(
      metrics::render(m.registry, metrics::ExpositionFormat::kPrometheusText).size());
  EXPECT_NE(f.headers.find("Content-Length: " + length), std::string::npos) << f.headers;
  EXPECT_EQ(fetch(base(endpoint) + "/readyz", "HEAD").status, 200);
}

TEST(HttpEndpointTest, ReadinessAndHealthFlip) {
  std::atomic<bool> ready{false};
  std::atomic<bool> healthy{true};
  HttpEndpoint::Handlers h;
  h.ready = [&](std::string& why) {
    if (ready) return true;
    why = "not attached yet";
    return false;
  };
  h.healthy = [&](std::string& why) {
    if (healthy) return true;
    why = "pipeline stalled for 12 s";
    return false;
  };
  HttpEndpoint endpoint;
  startOn(endpoint, "127.0.0.1:0", std::move(h));
  Fetched f = fetch(base(endpoint) + "/readyz");
  EXPECT_EQ(f.status, 503);
  EXPECT_EQ(f.body, "not attached yet\n");
  EXPECT_EQ(fetch(base(endpoint) + "/healthz").body, "ok\n");
  ready = true;
  f = fetch(base(endpoint) + "/readyz");
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, "ok\n");
  EXPECT_EQ(f.content_type, "text/plain; charset=utf-8");
  healthy = false;
  f = fetch(base(endpoint) + "/healthz");
  EXPECT_EQ(f.status, 503);
  EXPECT_EQ(f.body, "pipeline stalled for 12 s\n");
  // No metrics handler: unavailable, not a crash.
  EXPECT_EQ(fetch(base(endpoint) + "/metrics").status, 503);
}

TEST(HttpEndpointTest, BadAddressesAreOneLineErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"9464", "9464: expected HOST:PORT, [IPv6]:PORT or :PORT"},
      {"", ": expected HOST:PORT, [IPv6]:PORT or :PORT"},
      {"::1:9464", "::1:9464: an IPv6 address goes in brackets ([::1]:PORT)"},
      {"[::1]9464", "[::1]9464: expected [IPv6]:PORT"},
      {"[::1:9464", "[::1:9464: expected [IPv6]:PORT"},
      {"[]:9464", "[]:9464: empty IPv6 address in brackets"},
      {"127.0.0.1:", "127.0.0.1:: port '' is not a number from 0 to 65535"},
      {"127.0.0.1:65536", "127.0.0.1:65536: port '65536' is not a number from 0 to 65535"},
      {"127.0.0.1:http", "127.0.0.1:http: port 'http' is not a number from 0 to 65535"},
      {"127.0.0.1:-1", "127.0.0.1:-1: port '-1' is not a number from 0 to 65535"},
      {"256.1.1.1:80", "256.1.1.1:80: '256.1.1.1' is not a numeric IPv4 or IPv6 address"},
      {"example.com:80", "example.com:80: 'example.com' is not a numeric IPv4 or IPv6 address"},
      {"[fe80::zz]:80", "[fe80::zz]:80: 'fe80::zz' is not a numeric IPv4 or IPv6 address"},
      // TEST-NET-1: not an address of this host.
      {"192.0.2.1:0", "192.0.2.1:0: Cannot assign requested address"},
  };
  for (const auto& [address, message] : cases) {
    HttpEndpoint endpoint;
    std::string error;
    EXPECT_FALSE(endpoint.bind(address, error)) << address;
    EXPECT_EQ(error, message) << address;
    EXPECT_EQ(error.find('\n'), std::string::npos);
    EXPECT_EQ(endpoint.port(), 0);
    EXPECT_FALSE(endpoint.start({}, error));
    EXPECT_EQ(error, "not bound");
  }
}

TEST(HttpEndpointTest, PortInUseFailsAtBind) {
  HttpEndpoint first;
  std::string error;
  ASSERT_TRUE(first.bind("127.0.0.1:0", error)) << error;
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());
  HttpEndpoint second;
  EXPECT_FALSE(second.bind(taken, error));
  EXPECT_EQ(error, taken + ": Address already in use");
  // Still refused once the first serves; localhost names the same address.
  ASSERT_TRUE(first.start({}, error)) << error;
  EXPECT_FALSE(second.bind("localhost:" + std::to_string(first.port()), error));
  EXPECT_EQ(error, "localhost:" + std::to_string(first.port()) + ": Address already in use");
  // And free again once it stops.
  first.stop();
  EXPECT_TRUE(second.bind(taken, error)) << error;
}

TEST(HttpEndpointTest, StopIsIdempotentAndClosesThePort) {
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, "127.0.0.1:0", serve(m.registry));
  const std::string url = base(endpoint) + "/metrics";
  ASSERT_EQ(fetch(url).status, 200);
  std::string error;
  EXPECT_FALSE(endpoint.start(serve(m.registry), error));
  EXPECT_NE(error.find("already serving"), std::string::npos) << error;
  endpoint.stop();
  endpoint.stop();
  EXPECT_EQ(fetch(url).result, CURLE_COULDNT_CONNECT);
  // Bound but never started: stop closes the socket.
  HttpEndpoint bound_only;
  ASSERT_TRUE(bound_only.bind("127.0.0.1:0", error)) << error;
  EXPECT_FALSE(bound_only.bind("127.0.0.1:0", error));
  bound_only.stop();
  bound_only.stop();
  EXPECT_EQ(fetch(url).result, CURLE_COULDNT_CONNECT);
}

// attach takes SIGTERM through a signalfd in its own thread: the server's
// thread must not be one the kernel can pick to deliver it to.
TEST(HttpEndpointTest, TheServerThreadBlocksEverySignal) {
  HttpEndpoint endpoint;
  sigset_t seen;
  sigemptyset(&seen);
  HttpEndpoint::Handlers h;
  h.ready = [&seen](std::string&) {
    pthread_sigmask(SIG_SETMASK, nullptr, &seen);
    return true;
  };
  startOn(endpoint, "127.0.0.1:0", std::move(h));
  ASSERT_EQ(fetch(base(endpoint) + "/readyz").status, 200);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGUSR1}) {
    EXPECT_EQ(sigismember(&seen, sig), 1) << sig;
  }
  // And the caller's mask is what it was.
  sigset_t now;
  pthread_sigmask(SIG_SETMASK, nullptr, &now);
  EXPECT_EQ(sigismember(&now, SIGTERM), 0);
}

// The pipeline thread keeps observing while scrapes render: every scrape is
// whole (sanitizer builds check the rest).
TEST(HttpEndpointTest, ScrapesWhileTheWriterObserves) {
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, "127.0.0.1:0", serve(m.registry));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint64_t i = 0; !done; ++i) {
      const std::string route = "/r" + std::to_string(i % 3000);
      m.requests.add(std::array<std::string_view, 1>{route}, 1);
      m.duration.observe(std::array<std::string_view, 1>{route}, 0.001 * (i % 50));
    }
  });
  for (int i = 0; i < 30; ++i) {
    const Fetched f = fetch(base(endpoint) + "/metrics");
    ASSERT_EQ(f.status, 200);
    EXPECT_NE(f.body.find("# TYPE http_server_request_duration_seconds histogram"),
              std::string::npos);
    EXPECT_TRUE(f.body.ends_with("\n"));
  }
  done = true;
  writer.join();
}

// promtool (Debian's prometheus, in .ci/deps) lints what a scrape gets.
TEST(HttpEndpointTest, PromtoolAcceptsWhatMetricsServes) {
  const char* promtool = "/usr/bin/promtool";
  ASSERT_EQ(access(promtool, X_OK), 0) << "promtool missing: apt-get install prometheus (.ci/deps)";
  Filled m;
  HttpEndpoint endpoint;
  startOn(endpoint, "127.0.0.1:0", serve(m.registry));
  const Fetched f = fetch(base(endpoint) + "/metrics");
  ASSERT_EQ(f.status, 200);
  char path[] = "/tmp/l7tap-endpoint-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << f.body;
  const std::string command = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  unlink(path);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_EQ(output, "");
}

}  // namespace
}  // namespace l7tap
