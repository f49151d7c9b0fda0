// Replay throughput on the recorded fixtures, from packets already in memory
// (decoder, capture, reassembly, HTTP/1 and HTTP/2) to records handed to a
// sink that drops them: the replay loop `l7tap replay` runs.
//
//   build/bench/l7tap_bench --benchmark_filter=Replay
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"

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

void BM_Replay(benchmark::State& state, const std::string& file, uint32_t window) {
  LoadedCapture cap;
  std::string error;
  if (!loadCapture(file, cap, error) || cap.frames.empty()) {
    state.SkipWithError("fixture missing");
    return;
  }
  uint64_t exchanges = 0;
  for (auto _ : state) {
    CountingSink sink;
    Pipeline pipeline(sink);
    {
      // The window as `l7tap replay --window` applies it: in the capture.
      Replay replay(pipeline, {window, false});
      replay.run(cap);
    }
    pipeline.finish();
    exchanges += sink.exchanges;
  }
  state.SetBytesProcessed(int64_t(state.iterations() * cap.bytes));
  state.counters["exchanges/s"] =
      benchmark::Counter(double(exchanges), benchmark::Counter::kIsRate);
}

void registerCapture(const std::string& path, const std::string& label) {
  for (uint32_t window : {0u, 1024u, 256u}) {
    const std::string name =
        "Replay/" + label + "/window:" + (window ? std::to_string(window) : "unlimited");
    benchmark::RegisterBenchmark(name.c_str(), BM_Replay, path, window);
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
