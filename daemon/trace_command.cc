#include "daemon/trace_command.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "apptrace/app_tracer.h"
#include "apptrace/call_record.h"
#include "apptrace/histograms.h"
#include "daemon/event_loop.h"
#include "daemon/journald_sink.h"
#include "daemon/json_sink.h"
#include "endpoint/http_endpoint.h"
#include "metrics/exposition.h"
#include "metrics/registry.h"

namespace l7tap {
namespace {

// How often the ring is drained when the kernel does not wake the reader
// (events below the wake-up threshold), and the loop looks at the clock.
constexpr uint32_t kDrainMs = 100;
// Per-call events wake the reader once this much is queued: a busy function
// costs one wake-up per batch, not per call.
constexpr uint32_t kWakeupBytes = 64 * 1024;

// Where the trace's records go: standard output as JSON lines, or journald.
class TraceOutput {
 public:
  explicit TraceOutput(const std::string& kind) : journald_(kind == "journald") {}

  bool open(std::string& error) {
    if (journald_ && !JournaldSink::journalAvailable()) {
      error = "no journal socket (/run/systemd/journal/socket); use --output json";
      return false;
    }
    return true;
  }
  RecordSink& sink() { return journald_ ? static_cast<RecordSink&>(journal_) : json_; }
  /// False when records could not be written (said in one line).
  bool finish() {
    if (journald_) {
      std::fprintf(stderr, "l7tap: journald: %" PRIu64 " records sent, %" PRIu64 " lost\n",
                   journal_.sent(), journal_.failures());
      return true;
    }
    if (json_.flush()) return true;
    std::fprintf(stderr, "l7tap: standard output: writing records failed: %s\n",
                 std::strerror(json_.error()));
    return false;
  }
  bool ok() const { return journald_ || json_.ok(); }
  /// The lines of one drain in one write: a busy function's records cost a
  /// system call per drain, not per call.
  void drained() {
    if (!journald_) json_.flush();
  }

 private:
  bool journald_;
  JsonLinesSink json_{STDOUT_FILENO, JsonLinesSink::Flush::kBuffered};
  JournaldSink journal_;
};

void printTable(const AppTracer& tracer, const std::vector<FunctionStats>& before,
                const std::vector<FunctionStats>& now, uint64_t interval_ns) {
  const std::string table =
      formatHistogramTable(intervalOf(tracer.functions(), before, now), interval_ns);
  std::fwrite(table.data(), 1, table.size(), stdout);
  std::fflush(stdout);
}

void printSummary(const AppTracer& tracer, const std::vector<FunctionStats>& totals) {
  const AppTracerStats s = tracer.stats();
  uint64_t calls = 0;
  for (const FunctionStats& f : totals) calls += f.calls;
  std::fprintf(stderr,
               "l7tap: trace: %" PRIu64 " calls, %" PRIu64 " events read (%" PRIu64
               " lost in the kernel)\n",
               calls, s.events_read, s.kernel.lost);
  for (size_t i = 0; i < totals.size() && i < tracer.functions().size(); ++i) {
    std::fprintf(stderr, "l7tap: trace: %s: %" PRIu64 " calls\n", tracer.functions()[i].c_str(),
                 totals[i].calls);
  }
  const TraceProgramCounters& k = s.kernel;
  if (k.no_entry | k.state_full | k.nested | s.malformed) {
    std::fprintf(stderr,
                 "l7tap: trace: counted: returns without entry %" PRIu64
                 ", calls not timed (state full) %" PRIu64 ", nested calls %" PRIu64
                 ", malformed events %" PRIu64 "\n",
                 k.no_entry, k.state_full, k.nested, s.malformed);
  }
}

// trace --metrics-addr: the histograms on /metrics, updated once a second
// from the kernel's maps (a map read per function).
class TraceMetrics {
 public:
  /// Serves when asked to; false (said in one line) when it cannot.
  bool start(const TraceOptions& options) {
    if (!options.metrics.enabled()) return true;
    registry_.emplace(options.metrics.limits);
    exporter_.emplace(*registry_);
    HttpEndpoint::Handlers handlers;
    handlers.metrics = [this](metrics::ExpositionFormat format) {
      return metrics::render(*registry_, format);
    };
    handlers.ready = handlers.healthy = [](std::string&) { return true; };
    std::string error;
    if (!endpoint_.bind(options.metrics.address, error) ||
        !endpoint_.start(std::move(handlers), error)) {
      std::fprintf(stderr, "l7tap: --metrics-addr %s\n", error.c_str());
      return false;
    }
    std::fprintf(stderr, "l7tap: metrics on http://%s/metrics\n", endpoint_.boundAddress().c_str());
    return true;
  }
  /// `now`: CLOCK_MONOTONIC ns; 0 forces the update (the last one).
  void update(const AppTracer& tracer, uint64_t now) {
    if (!exporter_ || (now != 0 && now < next_update_)) return;
    next_update_ = now + kNsPerSec;
    exporter_->update(tracer.functions(), tracer.readStats());
  }
  void stop() { endpoint_.stop(); }

 private:
  std::optional<metrics::MetricsRegistry> registry_;
  std::optional<HistogramExporter> exporter_;
  uint64_t next_update_ = 0;
  // Last: its thread reads the registry until it is stopped.
  HttpEndpoint endpoint_;
};

// Drains the tracer into `output` until SIGINT, SIGTERM or --duration, with
// a histogram table every --interval. False when the output failed or the
// loop could not run (`error`, empty when the output said it).
bool traceUntilStopped(const TraceOptions& options, AppTracer& tracer, TraceOutput& output,
                       TraceMetrics& metrics, std::string& error) {
  LoopFds loop;
  if (!loop.open(kDrainMs, {tracer.fd()}, error)) return false;
  const uint64_t start = clockNs(CLOCK_MONOTONIC);
  const uint64_t interval_ns = uint64_t{options.interval_s} * kNsPerSec;
  const uint64_t end = options.duration_s ? start + uint64_t{options.duration_s} * kNsPerSec : 0;
  uint64_t table_start = start;
  std::vector<FunctionStats> before;
  for (bool running = true; running;) {
    epoll_event events[4];
    const int n = epoll_wait(loop.ep.fd, events, 4, 1000);
    if (n < 0 && errno != EINTR) {
      error = std::string("epoll: ") + std::strerror(errno);
      return false;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == loop.sig.fd) running = false;
      if (events[i].data.fd == loop.timer.fd) loop.ackTimer();
    }
    tracer.consume();
    output.drained();
    if (!output.ok()) return false;
    const uint64_t now = clockNs(CLOCK_MONOTONIC);
    if (end && now >= end) running = false;
    metrics.update(tracer, now);
    if (options.histogram && running && now - table_start >= interval_ns) {
      std::vector<FunctionStats> totals = tracer.readStats();
      printTable(tracer, before, totals, now - table_start);
      before = std::move(totals);
      table_start = now;
      tracer.resetExemplars();
    }
  }
  tracer.consume();  // what was queued before the signal
  // The last table covers the whole run: what people read when it ends.
  if (options.histogram)
    printTable(tracer, {}, tracer.readStats(), clockNs(CLOCK_MONOTONIC) - start);
  return true;
}

}  // namespace

int runTrace(const TraceOptions& options) {
  std::string error;
  std::string path = options.binary;
  pid_t pid = -1;
  if (options.pid != 0) {
    pid = static_cast<pid_t>(options.pid);
    if (!executableOfPid(pid, path, error)) {
      std::fprintf(stderr, "l7tap: trace: %s\n", error.c_str());
      return 1;
    }
  }
  // Arguments first: a stripped binary or a missing function is said before
  // anything needs a privilege.
  std::vector<FunctionTarget> targets;
  if (!AppTracer::resolve(path, options.functions, options.usdt, targets, error)) {
    std::fprintf(stderr, "l7tap: trace: %s: %s\n", path.c_str(), error.c_str());
    return 1;
  }
  TraceOutput output(options.output);
  if (!output.open(error)) {
    std::fprintf(stderr, "l7tap: %s\n", error.c_str());
    return 1;
  }
  TraceMetrics metrics;
  if (!metrics.start(options)) return 1;

  AppTracer tracer;
  const auto write_call = [&output, &tracer](const CallEvent& call) {
    CallRecord record;
    record.call = &call;
    record.function = tracer.functions()[call.function];
    output.sink().onRecord(callConnection(call), record);
  };
  std::vector<uint16_t> rows;
  TraceProgramConfig config;
  config.mode = options.histogram ? TraceProgramConfig::Mode::kHistograms
                                  : TraceProgramConfig::Mode::kPerCall;
  config.wakeup_bytes = kWakeupBytes;
  if (!tracer.start(config, monoToRealNs(), write_call, error) ||
      !tracer.attach(path, pid, targets, rows, error)) {
    std::fprintf(stderr, "l7tap: trace: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "l7tap: tracing %zu functions in %s (%s); stop with SIGINT or SIGTERM\n",
               tracer.functions().size(), path.c_str(),
               pid > 0 ? ("pid " + std::to_string(pid)).c_str() : "every process running it");
  const bool traced = traceUntilStopped(options, tracer, output, metrics, error);
  if (!error.empty()) std::fprintf(stderr, "l7tap: %s\n", error.c_str());
  metrics.update(tracer, 0);
  printSummary(tracer, tracer.readStats());
  tracer.stop();
  metrics.stop();
  const bool written = output.finish();
  return traced && written ? 0 : 1;
}

}  // namespace l7tap
