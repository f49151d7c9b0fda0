// Replay throughput on the recorded fixtures, from packets already in memory
// (decoder, capture, reassembly, HTTP/1 and HTTP/2) to records handed to a
// sink that drops them: the replay loop `l7tap replay` runs. ReplayMetrics
// is the same with a MetricsSink beside that sink (the budget: no
// more than 10 % of the throughput).
//
//   build/bench/l7tap_bench --benchmark_filter=Replay
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "daemon/json_sink.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"
#include "daemon/tee_sink.h"
#include "metrics/record_metrics.h"
#include "metrics/registry.h"

namespace l7tap {
namespace {

class CountingSink final : public RecordSink {
 public:
  void onRecord(const ConnectionInfo&, const Record& r) override {
    if (typeid(r) == typeid(HttpRecord)) {
      exchanges++;
      benchmark::DoNotOptimize(static_cast<const HttpRecord&>(r).status);
    } else {
      connections++;
    }
  }
  uint64_t exchanges = 0;
  uint64_t connections = 0;
};

// What the records go to besides the counting sink.
enum class Extra { kNone, kMetrics, kJson, kJsonMetrics };

void BM_Replay(benchmark::State& state, const std::string& file, uint32_t window, Extra extra) {
  LoadedCapture cap;
  std::string error;
  if (!loadCapture(file, cap, error) || cap.frames.empty()) {
    state.SkipWithError("fixture missing");
    return;
  }
  // One registry for the whole run, as a daemon has: series are created by
  // the first iteration and found by the others.
  metrics::MetricsRegistry registry;
  metrics::MetricsSink metrics_sink(registry);
  const bool with_metrics = extra == Extra::kMetrics || extra == Extra::kJsonMetrics;
  const bool with_json = extra == Extra::kJson || extra == Extra::kJsonMetrics;
  // `l7tap replay`'s own sink, formatting every record into /dev/null.
  const int null_fd = with_json ? ::open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
  JsonLinesSink json(null_fd, JsonLinesSink::Flush::kBuffered);
  uint64_t exchanges = 0;
  for (auto _ : state) {
    CountingSink counting;
    TeeSink tee;
    tee.add(counting);
    if (with_json) tee.add(json);
    if (with_metrics) tee.add(metrics_sink);
    Pipeline pipeline(tee);
    {
      // The window as `l7tap replay --window` applies it: in the capture.
      Replay replay(pipeline, {window, false});
      replay.run(cap);
    }
    pipeline.finish();
    exchanges += counting.exchanges;
  }
  json.flush();
  if (null_fd >= 0) ::close(null_fd);
  state.SetBytesProcessed(int64_t(state.iterations() * cap.bytes));
  state.counters["exchanges/s"] =
      benchmark::Counter(double(exchanges), benchmark::Counter::kIsRate);
}

void registerCapture(const std::string& path, const std::string& label) {
  for (uint32_t window : {0u, 1024u, 256u}) {
    const std::string name =
        "Replay/" + label + "/window:" + (window ? std::to_string(window) : "unlimited");
    benchmark::RegisterBenchmark(name.c_str(), BM_Replay, path, window, Extra::kNone);
  }
  // The metrics budget (bench/README.md): the strict measure against the
  // counting sink, and against the JSON lines replay writes.
  for (auto [extra, prefix] :
       {std::pair{Extra::kMetrics, "ReplayMetrics/"}, std::pair{Extra::kJson, "ReplayJson/"},
        std::pair{Extra::kJsonMetrics, "ReplayJsonMetrics/"}}) {
    const std::string name = prefix + label + "/window:unlimited";
    benchmark::RegisterBenchmark(name.c_str(), BM_Replay, path, 0u, extra);
  }
}

void registerAll() {
  // Extra captures, e.g. from bench/record_load.sh: L7TAP_BENCH_PCAPS="a.pcap b.pcap".
  if (const char* extra = std::getenv("L7TAP_BENCH_PCAPS")) {
    std::istringstream in(extra);
    for (std::string path; in >> path;) {
      registerCapture(path, std::filesystem::path(path).filename().string());
    }
  }
  const char* fixtures[] = {"http1-keepalive.pcap", "http1-pipelining.pcap",
                            "http1-large-download.pcap", "h2c-many-streams.pcap",
                            "h2c-prior-knowledge.pcap"};
  for (const char* f : fixtures) {
    const std::string path = std::string(L7TAP_SOURCE_DIR) + "/pcaps/" + f;
    if (std::filesystem::exists(path)) registerCapture(path, f);
  }
}

const int registered = (registerAll(), 0);

}  // namespace
}  // namespace l7tap

BENCHMARK_MAIN();
