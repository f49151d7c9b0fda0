// l7tap: HTTP/1.x and HTTP/2 records from TCP traffic, without a sidecar.
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/attach_metrics.h"
#include "daemon/cli_options.h"
#include "daemon/interface_lock.h"
#include "daemon/journald_sink.h"
#include "daemon/json_sink.h"
#include "daemon/live_capture.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"
#include "daemon/tee_sink.h"
#include "daemon/trace_command.h"
#include "endpoint/http_endpoint.h"
#include "identity/enriching_sink.h"
#include "identity/node_identity.h"
#include "metrics/exposition.h"
#include "metrics/record_metrics.h"
#include "metrics/registry.h"
#include "metrics/self_metrics.h"
#include "privileges/privilege_drop.h"
#include "records/record_policy.h"

namespace l7tap {
namespace {

// The usage text names these bounds; the checks use LiveLimits.
static_assert(LiveLimits::kMaxWindow == 4096 && LiveLimits::kMinRingKb == 4 &&
                  LiveLimits::kMaxTlsPids == 1024 && LiveLimits::kMaxTlsBinaries == 256 &&
                  OptionLimits::kMaxRedactPaths == 64 &&
                  OptionLimits::kMaxSeriesPerMetric == 1000000 && OptionLimits::kMaxNice == 19 &&
                  kDefaultAttachNice == 10 &&
                  metrics::MetricsLimits{}.max_series_per_metric == 2000,
              "update the usage text");

constexpr const char* kUsage =
    "usage: l7tap replay [--window N] [--capture-control] [--keep-query] [--query-allow KEY]\n"
    "                    [--records POLICY] [-o FILE] [--quiet] [--config FILE] CAPTURE...\n"
    "       l7tap attach [--iface NAME|GLOB...] [--config FILE] [options]\n"
    "       l7tap trace (--pid PID | --binary PATH) (--func PATTERN | --usdt SPEC)...\n"
    "                   [--histogram] [options]\n"
    "       l7tap config check [--command attach|replay] FILE\n"
    "\n"
    "replay: replays pcap/pcapng captures and writes one JSON line per HTTP\n"
    "exchange and per TCP connection.\n"
    "  --window N       copy at most N payload bytes per segment, as the kernel\n"
    "                   program would (default: unlimited)\n"
    "  --capture-control  skip what the parsers only count (known-length bodies,\n"
    "                   HTTP/2 DATA), as a live node does\n"
    "  -o FILE          write records to FILE instead of standard output\n"
    "  --quiet          no summary on standard error\n"
    "  --keep-query     write query strings as sent (default: every value is\n"
    "                   replaced by REDACTED, keys kept; replay and attach)\n"
    "  --query-allow KEY  keep the values of query key KEY; repeatable (replay\n"
    "                   and attach)\n"
    "  --redact-path P  replace the path segments P marks by REDACTED: '*' one\n"
    "                   segment, a final '**' all the rest (/users/*/tokens/*);\n"
    "                   repeatable, at most 64 (replay and attach)\n"
    "  --metrics-addr ADDR  serve /metrics, /healthz and /readyz on HOST:PORT,\n"
    "                   [IPV6]:PORT or :PORT (every address; port 0: any free\n"
    "                   one); none: off (default: off in replay, 0.0.0.0:9464 in\n"
    "                   attach)\n"
    "  --metrics-out FILE  write the final metrics (text format 0.0.4) to FILE\n"
    "                   (replay only)\n"
    "  --route-pattern P  http_route label P for paths it matches ('*' or {name}\n"
    "                   one segment, '**' the rest), before the templated path;\n"
    "                   repeatable (replay and attach)\n"
    "  --max-series-per-metric N  label sets per metric, 1..1000000, before new\n"
    "                   ones go to one overflow series (default 2000; replay and\n"
    "                   attach)\n"
    "  --records POLICY  which HTTP exchange records are written: all (default),\n"
    "                   or any of errors (5xx, gRPC non-OK, reset, no response,\n"
    "                   unreadable), slow:DURATION (250ms, 2s) and sample:P\n"
    "                   (0..1, the same exchanges every replay), comma-separated:\n"
    "                   kept if any keeps it. Connection records and metrics\n"
    "                   always count every exchange (replay and attach)\n"
    "  --config FILE    read options from FILE (YAML: each key a long option name,\n"
    "                   `window: 1024`, `iface: [cali*, veth*]`, `keep-query: true`);\n"
    "                   flags override it, a repeatable flag replaces its list\n"
    "                   (replay and attach)\n"
    "\n"
    "attach: attaches the TC programs to matching interfaces (and to ones that\n"
    "appear later) and reports until SIGINT or SIGTERM.\n"
    "  --iface GLOB     interface name or glob; repeatable (default: 'cali*',\n"
    "                   'lxc*', 'veth*': the pod veths of Calico, Cilium, Flannel\n"
    "                   and kindnet)\n"
    "  --output KIND    journald, json (standard output) or both; default:\n"
    "                   journald when /run/systemd/journal/socket exists, else json\n"
    "  --window N       payload bytes copied per packet, 1..4096 (default 1024)\n"
    "  --port P         capture only flows with this port; repeatable\n"
    "  --cidr C         capture only flows with an endpoint in C; repeatable\n"
    "  --interim S      interim connection records every S seconds (default 60, 0: off)\n"
    "  --ring-kb N      ring buffer size in KB, a power of two >= 4 (default 8192)\n"
    "  --drain-ms N     drain the ring buffer every N ms (default 10)\n"
    "  --wakeup-bytes N wake the reader when N bytes are queued (default 262144;\n"
    "                   0: wake it for every event)\n"
    "  --attach-mode M  auto, tcx, clsact or xdp (default auto: tcx where the kernel\n"
    "                   has it). xdp (Linux 5.18+): ingress only, through libxdp's\n"
    "                   dispatcher beside other XDP programs (alone through an XDP\n"
    "                   link where the kernel refuses freplace). It sees what an\n"
    "                   interface receives: on pod veths both directions of\n"
    "                   pod-to-pod traffic, one direction of traffic to elsewhere\n"
    "  --no-capture-control  copy windows of every packet, even of bodies the\n"
    "                   parsers only count and of TLS or unknown protocols\n"
    "  --nice N         run at nice N at least, 0..19, so that drains yield to the\n"
    "                   applications on the same cores (default 10; 0: as started)\n"
    "  --lock-dir DIR   per-interface locks, shared by every l7tap of the node\n"
    "                   (default /run/l7tap)\n"
    "\n"
    "  TLS plaintext (uprobes on OpenSSL's libssl.so* and on executables with\n"
    "  OpenSSL or BoringSSL linked in; records say l7tap.capture.source tls_uprobe):\n"
    "  --no-tls-uprobes  no TLS uprobes (default: on; without CAP_PERFMON to\n"
    "                   load them they are off with one line on standard error;\n"
    "                   attaching them takes CAP_SYS_ADMIN, kept while they run)\n"
    "  --tls-all-processes  every process's TLS (default: only that of processes\n"
    "                   in the network namespaces the attached interfaces carry:\n"
    "                   a veth's peer's, or this one for other interfaces)\n"
    "  --tls-pid PID    only these processes' TLS (in any namespace); repeatable,\n"
    "                   at most 1024\n"
    "  --tls-binary PATH  attach to this file too (a static OpenSSL); repeatable,\n"
    "                   at most 256. With either, TLS uprobes that cannot load\n"
    "                   end the run\n"
    "\n"
    "  Who is behind each interface (fields k8s.*, l7tap.peer.k8s.*, container.id,\n"
    "  process.executable.name on every record):\n"
    "  --kubelet URL    the kubelet's API for pod names (default\n"
    "                   https://NODE:10250 when a service account token exists;\n"
    "                   none: no names)\n"
    "  --kubelet-token FILE  bearer token, re-read at every request (default: the\n"
    "                   service account's)\n"
    "  --kubelet-ca FILE  CA of the kubelet's certificate (default: the service\n"
    "                   account's)\n"
    "  --kubelet-insecure  no certificate check (test clusters)\n"
    "  --kubelet-refresh S  refresh the pod list every S seconds (default 10;\n"
    "                   also sooner, at most every 2 s, for an unknown pod)\n"
    "  --host-proc DIR  the host's /proc (default /proc; /host/proc in a pod)\n"
    "  --node-name NAME  this node (default $NODE_NAME, then the host name)\n"
    "  --user NAME      once attached, run as NAME with only the capabilities still\n"
    "                   needed (all others are dropped with or without it)\n"
    "  --trace-config FILE  time functions of the watched pods' processes and link\n"
    "                   each call to the HTTP exchange it served (YAML: `traces:`,\n"
    "                   a list of {executable: NAME, functions: [GLOB], usdt:\n"
    "                   [PROVIDER:START:END]}; see l7tap trace)\n"
    "\n"
    "trace: times functions of a program with uprobes and reports each call (one\n"
    "JSON line, type app_call) with the TCP I/O it did, until SIGINT or SIGTERM.\n"
    "  --pid PID        that process (its executable)\n"
    "  --binary PATH    every process running PATH\n"
    "  --func PATTERN   a function by its ELF symbol, or a glob ('main.handle*');\n"
    "                   repeatable. Go functions are timed to each RET (never\n"
    "                   uretprobes, which crash Go) and keyed by goroutine\n"
    "  --usdt PROVIDER:START:END  a call is the time from USDT probe START to END\n"
    "                   on the same thread (PROVIDER:NAME: NAME__start..NAME__done\n"
    "                   and the like); repeatable\n"
    "  --histogram      latency histograms kept in the kernel, printed as a table\n"
    "                   every --interval; only the slowest calls are sent as records\n"
    "  --interval S     the histogram table every S seconds (default 10)\n"
    "  --duration S     stop after S seconds (default: at SIGINT or SIGTERM)\n"
    "  --output KIND    json (standard output, default) or journald\n"
    "  --metrics-addr ADDR  serve the histograms on /metrics (as attach)\n"
    "\n"
    "config check: whether FILE is a config file attach (or replay) accepts:\n"
    "  prints 'FILE: ok', or the error (exit 2).\n"
    "\n"
    "  -h, --help       this help\n";

int usageError(const std::string& message) {
  std::fprintf(stderr, "l7tap: %s\n%s", message.c_str(), kUsage);
  return 2;
}

// Bounds that were reached and oddities that were counted, when any was,
// as one "counted:" line: the pipeline's, then `more` (a source's own).
void printCounted(const FlowTableStats& f, const SessionStats& s,
                  std::initializer_list<std::pair<std::string_view, uint64_t>> more = {}) {
  std::vector<std::pair<std::string_view, uint64_t>> counters = {
      {"tcp.out_of_order_overflows", f.out_of_order_overflows},
      {"tcp.conflicting_overlap_bytes", f.conflicting_overlap_bytes},
  };
  for (const ProtocolTotals& p : s.protocols) {
    for (const ProtocolTotals::Counter& c : p.counters) {
      if (c.notable) counters.emplace_back(c.name, c.value);
    }
  }
  counters.insert(counters.end(), more.begin(), more.end());
  std::string counted;
  for (const auto& [name, value] : counters) {
    if (value != 0)
      counted += std::string(counted.empty() ? "" : ", ") + std::string(name) + " " +
                 std::to_string(value);
  }
  if (!counted.empty()) std::fprintf(stderr, "l7tap: counted: %s\n", counted.c_str());
}

// The IP fragments among the packets skipped: what became of them.
void printDefragSummary(const ReplayStats& replay) {
  const DefragStats& d = replay.defrag;
  if (d.fragments == 0) return;
  std::fprintf(stderr,
               "l7tap: IP fragments: %" PRIu64 ", datagrams reassembled %" PRIu64 " (%" PRIu64
               " TCP segments), %" PRIu64 " incomplete at the end\n",
               d.fragments, d.reassembled,
               replay.reassembled_by_result[static_cast<int>(DecodeResult::kSegment)],
               replay.defrag_incomplete);
  const std::pair<const char*, uint64_t> counters[] = {
      {"duplicate fragments", d.duplicates},
      {"overlaps (datagram dropped)", d.overlaps_dropped},
      {"timed out", d.timed_out},
      {"evicted (table full)", d.evicted},
      {"too large", d.too_large},
      {"malformed", d.malformed},
      {"fragments cut by the capture", d.truncated}};
  std::string counted;
  for (const auto& [name, value] : counters) {
    if (value != 0)
      counted += std::string(counted.empty() ? "" : ", ") + name + " " + std::to_string(value);
  }
  if (!counted.empty()) std::fprintf(stderr, "l7tap: IP fragments: %s\n", counted.c_str());
}

void printSummary(const Pipeline& pipeline, const ReplayStats& replay, size_t files,
                  double seconds) {
  const FlowTableStats& f = pipeline.flowStats();
  const SessionStats& s = pipeline.sessionStats();
  std::fprintf(stderr,
               "l7tap: %zu file(s), %" PRIu64 " packets, %" PRIu64 " captured bytes, %" PRIu64
               " TCP segments in %.2f s\n",
               files, replay.packets, replay.captured_bytes,
               replay.by_result[static_cast<int>(DecodeResult::kSegment)], seconds);
  std::string by_protocol;
  for (const ProtocolTotals& p : s.protocols) {
    by_protocol += std::string(p.name) + " " + std::to_string(p.connections) + ", ";
  }
  std::fprintf(stderr,
               "l7tap: %" PRIu64 " connections (%sother %" PRIu64 "), %" PRIu64
               " HTTP records, %" PRIu64 " bytes in gaps\n",
               f.connections_opened, by_protocol.c_str(), s.connections_other, s.http_records,
               f.bytes_in_gaps);
  if (f.connections_evicted) {
    std::fprintf(stderr,
                 "l7tap: %" PRIu64 " connections evicted (table full), %" PRIu64
                 " of them one-sided\n",
                 f.connections_evicted, f.unanswered_evicted);
  }
  printCounted(f, s);
  std::string skipped;
  uint64_t total = 0;
  for (int i = 1; i < kDecodeResultCount; ++i) {
    if (!replay.by_result[i]) continue;
    total += replay.by_result[i];
    skipped += std::string(skipped.empty() ? "" : ", ") + toString(static_cast<DecodeResult>(i)) +
               " " + std::to_string(replay.by_result[i]);
  }
  if (total)
    std::fprintf(stderr, "l7tap: skipped %" PRIu64 " packets: %s\n", total, skipped.c_str());
  printDefragSummary(replay);
}

// Replays one file into `replay`'s pipeline; false (said on standard error)
// when the file could not be read or was cut short.
bool replayFile(const std::string& file, Replay& replay, const JsonLinesSink& sink,
                bool show_progress) {
  PcapSource source;
  std::string error;
  if (!source.open(file, error)) {
    std::fprintf(stderr, "l7tap: %s: %s\n", file.c_str(), error.c_str());
    return false;
  }
  auto last_progress = std::chrono::steady_clock::now();
  auto progress = [&](uint64_t offset, uint64_t size) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress < std::chrono::milliseconds(500) || size == 0) return;
    last_progress = now;
    std::fprintf(stderr, "\rl7tap: %s: %" PRIu64 " of %" PRIu64 " MB (%d%%)", file.c_str(),
                 offset >> 20, size >> 20, static_cast<int>(offset * 100 / size));
  };
  const bool ok = replay.run(source, error, show_progress ? std::function(progress) : nullptr,
                             [&sink] { return sink.ok(); });
  if (show_progress) std::fprintf(stderr, "\r\033[K");
  if (!ok) {
    std::fprintf(stderr, "l7tap: %s: %s (records up to this point were written)\n", file.c_str(),
                 error.c_str());
  }
  return ok;
}

void printReplaySummary(const Pipeline& pipeline, const Replay& replay, size_t files,
                        double seconds) {
  printSummary(pipeline, replay.stats(), files, seconds);
  const CopyCounters& c = replay.copied();
  std::fprintf(stderr,
               "l7tap: payload %" PRIu64 " bytes, copied %" PRIu64
               ", skipped by capture control %" PRIu64 "; HTTP/2 frame walk: %" PRIu64
               " segments, lost %" PRIu64 " times\n",
               c.payload_bytes, c.copied_bytes, c.skipped_bytes, c.walked_segments, c.walk_lost);
  if (c.flow_map_full) {
    std::fprintf(stderr, "l7tap: capture: flow state bound reached %" PRIu64 " times\n",
                 c.flow_map_full);
  }
}

// Replay's counters into the self-metrics, once, at the end: its capture
// imitates the kernel's payload, copy and skip counters.
void updateReplaySelfMetrics(metrics::SelfMetrics& self, const Pipeline& pipeline,
                             const Replay& replay, const JsonLinesSink& json,
                             const metrics::MetricsSink& metrics_sink) {
  const PipelineStats p = pipeline.stats();
  const CopyCounters& c = replay.copied();
  uint64_t capture[L7TAP_CNT_MAX]{};
  capture[L7TAP_CNT_PAYLOAD_BYTES] = c.payload_bytes;
  capture[L7TAP_CNT_COPIED_BYTES] = c.copied_bytes;
  capture[L7TAP_CNT_SKIPPED_BYTES] = c.skipped_bytes;
  capture[L7TAP_CNT_FLOW_MAP_FULL] = c.flow_map_full;
  const metrics::SinkCounts sinks[] = {
      {"json", json.recordsWritten(), json.recordsLost()},
      {"metrics", metrics_sink.recordsCounted(), 0},
  };
  self.update({.flows = &p.flows,
               .sessions = &p.sessions,
               .capture = capture,
               .events_read = replay.stats().by_result[static_cast<int>(DecodeResult::kSegment)],
               .has_events_read = true,
               .sinks = sinks});
}

// Replay's count of exchange records --records did not write, once, at
// the end (attach's is AttachMetrics').
void exportPolicyDropped(metrics::MetricsRegistry& registry, const RecordPolicySink& policy) {
  metrics::Metric& dropped = registry.counter(
      {"l7tap.records.dropped_by_policy",
       "{record}",
       "HTTP exchange records not written because of --records (metrics count them).",
       {},
       {}});
  dropped.setTotal({}, policy.dropped());
}

// The final exposition for --metrics-out; false (said in one line) when it
// could not be written.
bool writeExposition(const std::string& file, const metrics::MetricsRegistry& registry) {
  const std::string text = metrics::render(registry, metrics::ExpositionFormat::kPrometheusText);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  if (fd >= 0 && ::close(fd) != 0) ok = false;
  if (!ok)
    std::fprintf(stderr, "l7tap: --metrics-out %s: %s\n", file.c_str(), std::strerror(errno));
  return ok;
}

// replay --metrics-addr: the metrics as they grow, for a scraper watching a
// long replay (--metrics-out has the final ones). Ready and healthy while
// it runs; false (said in one line) when the address cannot be served.
bool serveWhileReplaying(HttpEndpoint& endpoint, const std::string& address,
                         const metrics::MetricsRegistry& registry) {
  HttpEndpoint::Handlers handlers;
  handlers.metrics = [&registry](metrics::ExpositionFormat format) {
    return metrics::render(registry, format);
  };
  handlers.ready = handlers.healthy = [](std::string&) { return true; };
  std::string error;
  if (!endpoint.bind(address, error) || !endpoint.start(std::move(handlers), error)) {
    std::fprintf(stderr, "l7tap: --metrics-addr %s\n", error.c_str());
    return false;
  }
  std::fprintf(stderr, "l7tap: metrics on http://%s/metrics\n", endpoint.boundAddress().c_str());
  return true;
}

// What --records left out, when it was not `all`.
void printPolicySummary(const RecordPolicySink& policy) {
  if (policy.policy().keepsEverything()) return;
  std::fprintf(stderr,
               "l7tap: records %s: %" PRIu64 " HTTP records written, %" PRIu64
               " dropped by the policy\n",
               policy.policy().describe().c_str(), policy.kept(), policy.dropped());
}

int runReplay(const ReplayCommandOptions& options) {
  const char* output = options.output.empty() ? nullptr : options.output.c_str();
  int out = STDOUT_FILENO;
  if (output) {
    out = ::open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      std::fprintf(stderr, "l7tap: %s: %s\n", output, std::strerror(errno));
      return 1;
    }
  }
  const std::string out_name = output ? output : "standard output";
  JsonLinesSink sink(out, JsonLinesSink::Flush::kBuffered);
  // Metrics beside the JSON lines, from the same (redacted) records.
  metrics::MetricsRegistry registry(options.metrics.limits);
  std::optional<metrics::MetricsSink> metrics_sink;
  std::optional<metrics::SelfMetrics> self_metrics;
  // The policy after the metrics' tap: they count every exchange.
  RecordPolicySink policy(options.records, sink);
  TeeSink sinks;
  sinks.add(options.records.keepsEverything() ? static_cast<RecordSink&>(sink) : policy);
  if (options.metrics.enabled()) {
    metrics_sink.emplace(registry, options.metrics);
    self_metrics.emplace(registry);
    sinks.add(*metrics_sink);
  }
  PipelineConfig config;
  config.redaction = options.redaction;
  Pipeline pipeline(sinks, config);
  Replay replay(pipeline, {options.window, options.capture_control});
  HttpEndpoint endpoint;
  if (!options.metrics.address.empty() &&
      !serveWhileReplaying(endpoint, options.metrics.address, registry)) {
    return 1;
  }
  int status = 0;
  const bool show_progress = !options.quiet && isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  for (const std::string& file : options.files) {
    if (!sink.ok()) break;  // nowhere to write the records to
    if (!replayFile(file, replay, sink, show_progress)) status = 1;
    // Each file is a capture of its own: its connections end with it.
    pipeline.finish();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!sink.flush()) {
    std::fprintf(stderr,
                 "l7tap: %s: writing records failed: %s; stopped after %" PRIu64
                 " complete records\n",
                 out_name.c_str(), std::strerror(sink.error()), sink.recordsWritten());
    status = 1;
  }
  if (output && ::close(out) != 0 && sink.ok()) {
    std::fprintf(stderr, "l7tap: %s: %s\n", output, std::strerror(errno));
    status = 1;
  }
  if (!options.quiet) {
    printReplaySummary(pipeline, replay, options.files.size(), seconds);
    printPolicySummary(policy);
  }
  if (self_metrics) {
    updateReplaySelfMetrics(*self_metrics, pipeline, replay, sink, *metrics_sink);
    exportPolicyDropped(registry, policy);
    if (!options.metrics.output_file.empty() &&
        !writeExposition(options.metrics.output_file, registry)) {
      status = 1;
    }
  }
  return status;
}

// A command: its options parsed, then run; usage errors and --help alike
// for every command.
template <class Options>
int runCommand(int argc, char** argv, OptionsResult (*parse)(int, char**, Options&, std::string&),
               int (*run)(const Options&)) {
  Options options;
  std::string error;
  switch (parse(argc, argv, options, error)) {
    case OptionsResult::kRun:
      return run(options);
    case OptionsResult::kHelp:
      std::fputs(kUsage, stdout);
      return 0;
    case OptionsResult::kUsage:
      break;
    case OptionsResult::kConfig:
      // One line says it all; the usage would bury it.
      std::fprintf(stderr, "l7tap: %s\n", error.c_str());
      return 2;
  }
  return usageError(error);
}

// `l7tap config check [--command attach|replay] FILE`: the file as that
// command's --config would take it (attach by default: the DaemonSet's).
int runConfig(int argc, char** argv) {
  std::string command = "attach";
  std::vector<std::string> files;
  if (argc < 2 || std::strcmp(argv[1], "check") != 0) return usageError("config check FILE");
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--command" && i + 1 < argc) {
      command = argv[++i];
      if (command != "attach" && command != "replay") {
        return usageError("--command is attach or replay, not '" + command + "'");
      }
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      return usageError("unknown option '" + arg + "' of config check");
    } else {
      files.push_back(arg);
    }
  }
  if (files.size() != 1) return usageError("config check needs one FILE");
  std::string error;
  if (!checkConfigFile(command, files[0], error)) {
    std::fprintf(stderr, "l7tap: %s\n", error.c_str());
    return 2;
  }
  std::printf("%s: ok\n", files[0].c_str());
  return 0;
}

// What a sink that failed says, as replay says it: the output, the error and
// how far it got.
void reportFailedOutput(const char* name, const JsonLinesSink& sink) {
  std::fprintf(stderr,
               "l7tap: %s: writing records failed: %s; stopped after %" PRIu64
               " complete records, %" PRIu64 " lost after the error\n",
               name, std::strerror(sink.error()), sink.recordsWritten(), sink.recordsLost());
}

void printAttachSummary(const Pipeline& pipeline, const LiveCapture::Stats& live) {
  const FlowTableStats& f = pipeline.flowStats();
  const SessionStats& s = pipeline.sessionStats();
  const RingStats& ring = live.ring;
  std::fprintf(stderr,
               "l7tap: %" PRIu64 " events read, %" PRIu64 " connections, %" PRIu64
               " HTTP records, %" PRIu64 " bytes in gaps, %" PRIu64 " of them in holes\n",
               ring.events_read, f.connections_opened, s.http_records, f.bytes_in_gaps,
               f.bytes_in_holes);
  const KernelCounters& k = live.kernel;
  std::string kernel;
  for (int i = 0; i < L7TAP_CNT_MAX; ++i) {
    kernel += std::string(i ? ", " : "") + kernelCounterName(i) + " " + std::to_string(k.value[i]);
  }
  std::fprintf(stderr, "l7tap: kernel: %s\n", kernel.c_str());
  // Besides the pipeline's, the live path's own oddities: events this daemon
  // cannot read (a kernel program of another build) and capture control the
  // kernel's maps had no room for (those bytes were copied).
  printCounted(f, s,
               {{"ring.malformed_events", ring.malformed},
                {"ring.other_events", ring.other_kinds},
                {"ring.tunnel_missing", ring.tunnel_missing},
                {"capture_control.map_full", live.hint_failures},
                {"tls.malformed_events", live.tls_capture.malformed},
                {"tls.other_events", live.tls_capture.other_kinds},
                {"tls.behind_events", live.tls_capture.streams.behind_events},
                {"tls.held_dropped", live.tls_capture.streams.held_dropped},
                {"tls.sockets_ambiguous", live.tls_capture.kernel.fd_ambiguous},
                {"tls.sessions_evicted", live.tls_capture.streams.sessions_evicted},
                {"tls.sessions_reused", live.tls_capture.streams.sessions_reused},
                {"tls.peer_events", live.tls_capture.streams.peer_events},
                {"tls.exec_rescans_dropped", live.tls_capture.discovery.pending_dropped}});
  if (live.apptrace) {
    const AppCaptureStats& a = live.apptrace_capture;
    std::fprintf(stderr,
                 "l7tap: apptrace: %" PRIu64 " processes traced (%" PRIu64 " refused), %" PRIu64
                 " events read (%" PRIu64 " lost in the kernel), %" PRIu64 " calls, %" PRIu64
                 " linked to an exchange; %" PRIu64 " calls and %" PRIu64
                 " exchanges waited past their bound\n",
                 a.processes_traced, a.processes_refused, a.tracer.events_read,
                 a.tracer.kernel.lost, a.linker.calls, a.linker.linked, a.linker.calls_timed_out,
                 a.linker.exchanges_timed_out);
  }
  if (live.tls) {
    const TlsCaptureStats& t = live.tls_capture;
    std::fprintf(
        stderr,
        "l7tap: tls: %" PRIu64 " events read (%" PRIu64 " lost in the kernel, %" PRIu64
        " plaintext bytes; %" PRIu64 " of processes outside the attached namespaces), %" PRIu64
        " sessions, %" PRIu64 " bytes in gaps; %" PRIu64 " files attached, %" PRIu64 " refused\n",
        t.events_read, t.kernel.lost, t.kernel.lost_bytes, t.out_of_scope, t.streams.sessions,
        t.streams.gap_bytes, t.discovery.attached, t.discovery.refused);
  }
  if (k.value[L7TAP_CNT_RINGBUF_FULL]) {
    std::fprintf(stderr,
                 "l7tap: %" PRIu64 " events (%" PRIu64
                 " payload bytes) were lost to a full ring buffer (--ring-kb raises it)\n",
                 k.value[L7TAP_CNT_RINGBUF_FULL], k.value[L7TAP_CNT_RINGBUF_FULL_BYTES]);
  }
}

// Loaded and attached: keep only what attaching later interfaces and TLS
// libraries and reading other processes' /proc take (privileges/README.md).
// uprobes_running: TLS or function uprobes, attached to processes found later.
bool dropAttachPrivileges(const AttachOptions& options, bool uprobes_running, std::string& error) {
  const AttachMode mode = options.live.mode;
  privileges::DropOutcome dropped;
  if (!privileges::dropPrivileges(
          {.needed = {.clsact_filters = mode == AttachMode::kAuto || mode == AttachMode::kClsact,
                      .load_programs = mode == AttachMode::kXdp,
                      .attach_uprobes = uprobes_running},
           .user = options.user,
           .owned_directories = {options.live.lock_dir}},
          dropped, error)) {
    error = "dropping privileges: " + error;
    return false;
  }
  std::fprintf(stderr, "l7tap: %s\n", privileges::describe(dropped).c_str());
  return true;
}

// Every sink's outcome, whether or not it ended the run; false when the JSON
// lines are incomplete.
bool reportSinks(bool json_out, JsonLinesSink& json, bool journal_out,
                 const JournaldSink& journal) {
  if (journal_out) {
    std::fprintf(stderr, "l7tap: journald: %" PRIu64 " records sent, %" PRIu64 " lost%s%s\n",
                 journal.sent(), journal.failures(), journal.failures() ? ": " : "",
                 journal.failures() ? std::strerror(journal.lastError()) : "");
  }
  const bool json_failed = json_out && !json.flush();
  if (json_failed) reportFailedOutput("standard output", json);
  return !json_failed;
}

// --nice: the daemon's drains come in bursts every few milliseconds, on the
// cores the applications it watches run on; at a higher nice value they
// wait for the applications instead of preempting them. Never raises the
// priority (a nice value already higher stays). Before any thread starts:
// threads inherit it, and on Linux it is per thread.
void lowerPriority(int nice) {
  if (nice == 0) return;
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, 0);
  if (errno == 0 && now >= nice) return;
  if (setpriority(PRIO_PROCESS, 0, nice) != 0) {
    std::fprintf(stderr, "l7tap: --nice %d: %s; running at nice %d\n", nice, std::strerror(errno),
                 now);
  }
}

// The JSON lines go out in kBufferBytes writes; into a pipe of the default
// 64 KiB (a container runtime's, a shell's) each write fills it, so the
// daemon sleeps until the reader catches up and is woken again: two context
// switches per write. A larger pipe takes a drain's worth without blocking.
// Best effort: a pipe the kernel will not grow (pipe-max-size, the user's
// pipe quota) keeps working as it was.
constexpr int kStdoutPipeBytes = 1 << 20;

void growStdoutPipe() {
  struct stat st;
  if (fstat(STDOUT_FILENO, &st) != 0 || !S_ISFIFO(st.st_mode)) return;
  if (fcntl(STDOUT_FILENO, F_GETPIPE_SZ) >= kStdoutPipeBytes) return;
  (void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, kStdoutPipeBytes);
}

int runAttach(const AttachOptions& options) {
  std::string output = options.output;
  if (output.empty()) output = JournaldSink::journalAvailable() ? "journald" : "json";
  const bool json_out = output != "journald";
  const bool journal_out = output != "json";
  lowerPriority(options.nice);
  if (json_out) growStdoutPipe();
  // Buffered, and flushed after every drain (below): one write per drain
  // instead of one per record, and no record waits longer than a drain.
  JsonLinesSink json(STDOUT_FILENO, JsonLinesSink::Flush::kBuffered);
  JournaldSink journal;
  AttachMetrics metrics(options.metrics);
  TeeSink outputs;
  if (json_out) outputs.add(json);
  if (journal_out) {
    if (!JournaldSink::journalAvailable()) {
      std::fprintf(stderr,
                   "l7tap: no journal socket (/run/systemd/journal/socket); use --output json\n");
      return 1;
    }
    outputs.add(journal);
  }
  // The policy after the metrics' tap: they count every exchange.
  RecordPolicySink policy(options.records, outputs);
  TeeSink sinks;
  sinks.add(options.records.keepsEverything() ? static_cast<RecordSink&>(outputs) : policy);
  // After the names, so the metrics' labels carry them too.
  if (metrics.sink()) sinks.add(*metrics.sink());
  // Names are added on the way to every sink, so all of them say the same.
  NodeIdentity identity(resolveIdentityOptions(options.identity));
  EnrichingSink named(identity, sinks);
  std::string error;
  // Function calls meet the exchanges they served before the names are
  // added: both records get the same names.
  AppCaptureConfig trace_config;
  std::optional<AppCapture> apptrace;
  if (!options.trace_config.empty()) {
    if (!loadTraceConfig(options.trace_config, trace_config.traces, error)) {
      std::fprintf(stderr, "l7tap: %s\n", error.c_str());
      return 2;
    }
    apptrace.emplace(named);
  }
  PipelineConfig config;
  config.redaction = options.redaction;
  Pipeline pipeline(apptrace ? apptrace->sink() : named, config);
  LiveCapture live;
  if (apptrace) live.setAppCapture(&*apptrace, std::move(trace_config));
  metrics.watch(pipeline, live, json_out ? &json : nullptr, journal_out ? &journal : nullptr);
  metrics.watchPolicy(policy);
  if (apptrace) metrics.watchFunctions(*apptrace);
  // Bound now, served after the drop: a port in use ends the run before
  // anything is attached, and the server's thread starts after the drop
  // (which refuses to run beside other threads).
  if (!metrics.bind(error)) {
    std::fprintf(stderr, "l7tap: %s\n", error.c_str());
    return 1;
  }
  const auto follow = [&identity, &metrics](const InterfaceEvent& iface, bool attached) {
    metrics.interfaceChanged(attached);
    if (attached) {
      identity.attached(static_cast<uint32_t>(iface.ifindex), iface.name);
    } else {
      identity.detached(static_cast<uint32_t>(iface.ifindex));
    }
  };
  if (!live.start(options.live, pipeline, error, follow) ||
      !dropAttachPrivileges(options, live.stats().tls || live.stats().apptrace, error)) {
    std::fprintf(stderr, "l7tap: %s\n", error.c_str());
    return 1;
  }
  // After the drop, which refuses to run beside other threads (capabilities
  // are per thread: one started before would keep them all). Interfaces
  // attached so far are queued for it.
  identity.start();
  const auto names_settled = [&identity](std::string& why) {
    if (identity.namesSettled()) return true;
    why = "waiting for the kubelet's first pod list";
    return false;
  };
  if (!metrics.serve(names_settled, error)) {
    std::fprintf(stderr, "l7tap: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "l7tap: reporting to %s; window %u bytes; stop with SIGINT or SIGTERM\n",
               output.c_str(), options.live.window);
  // Records that cannot be written end the run: a closed pipe stays closed,
  // and a JSON stream with a hole in it would pass for a complete one.
  // journald is different: it can come back, and what it missed is counted.
  const bool ok = live.run(error, [&](std::string& why) {
    metrics.drained();
    if (!json_out || json.flush()) return true;
    why = std::string("standard output: ") + std::strerror(json.error()) +
          "; stopped writing records, detaching";
    return false;
  });
  // Stop reading, then write what is open: exchanges without their response
  // and the final record of every connection.
  metrics.detaching();
  const LiveCapture::Stats stats = live.stats();
  pipeline.finish();
  // Calls still waiting for their exchange, and exchanges for their call.
  if (apptrace) apptrace->finish();
  // The last records (open exchanges, every connection's) in the
  // self-metrics too, while the kernel's counters can still be read.
  metrics.finished();
  live.stop();
  identity.stop();
  metrics.stop();
  printAttachSummary(pipeline, stats);
  printPolicySummary(policy);
  for (const std::string& line : identity.summary())
    std::fprintf(stderr, "l7tap: %s\n", line.c_str());
  const bool sinks_ok = reportSinks(json_out, json, journal_out, journal);
  if (!ok) {
    std::fprintf(stderr, "l7tap: %s\n", error.c_str());
    return 1;
  }
  // Stopped by a signal, but the last records (written while stopping)
  // could not be: the output is incomplete.
  return sinks_ok ? 0 : 1;
}

}  // namespace
}  // namespace l7tap

int main(int argc, char** argv) {
  // A closed output pipe is an error the sinks report, not a silent death.
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) return l7tap::usageError("missing command");
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(l7tap::kUsage, stdout);
    return 0;
  }
  if (command == "replay") {
    return l7tap::runCommand(argc - 1, argv + 1, l7tap::parseReplayOptions, l7tap::runReplay);
  }
  if (command == "attach") {
    return l7tap::runCommand(argc - 1, argv + 1, l7tap::parseAttachOptions, l7tap::runAttach);
  }
  if (command == "trace") {
    return l7tap::runCommand(argc - 1, argv + 1, l7tap::parseTraceOptions, l7tap::runTrace);
  }
  if (command == "config") return l7tap::runConfig(argc - 1, argv + 1);
  return l7tap::usageError("unknown command '" + command + "'");
}
