// l7tap: HTTP/1.x and HTTP/2 records from TCP traffic, without a sidecar.
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>

#include "daemon/journald_sink.h"
#include "daemon/json_sink.h"
#include "daemon/live_capture.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"
#include "daemon/tee_sink.h"

namespace l7tap {
namespace {

constexpr const char* kUsage =
    "usage: l7tap replay [--window N] [--capture-control] [-o FILE] [--quiet] CAPTURE...\n"
    "       l7tap attach --iface NAME|GLOB... [options]\n"
    "\n"
    "replay: replays pcap/pcapng captures and writes one JSON line per HTTP\n"
    "exchange and per TCP connection.\n"
    "  --window N       copy at most N payload bytes per segment, as the kernel\n"
    "                   program would (default: unlimited)\n"
    "  --capture-control  skip what the parsers only count (known-length bodies,\n"
    "                   HTTP/2 DATA), as a live node does\n"
    "  -o FILE          write records to FILE instead of standard output\n"
    "  --quiet          no summary on standard error\n"
    "\n"
    "attach: attaches the TC programs to matching interfaces (and to ones that\n"
    "appear later) and reports until SIGINT or SIGTERM.\n"
    "  --iface GLOB     interface name or glob; repeatable (e.g. 'veth*')\n"
    "  --output KIND    journald, json (standard output) or both; default:\n"
    "                   journald when /run/systemd/journal/socket exists, else json\n"
    "  --window N       payload bytes copied per packet, 1..4096 (default 1024)\n"
    "  --port P         capture only flows with this port; repeatable\n"
    "  --cidr C         capture only flows with an endpoint in C; repeatable\n"
    "  --interim S      interim connection records every S seconds (default 60, 0: off)\n"
    "  --ring-kb N      ring buffer size in KB, a power of two >= 4 (default 8192)\n"
    "  --drain-ms N     drain the ring buffer every N ms (default 2)\n"
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
    "\n"
    "  -h, --help       this help\n";

int usageError(const std::string& message) {
  std::fprintf(stderr, "l7tap: %s\n%s", message.c_str(), kUsage);
  return 2;
}

bool parseUnsigned(const char* text, uint64_t max, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-' || v > max) return false;
  out = v;
  return true;
}

// "10.0.0.0/8" or "fd00::/8" into the 128-bit IPv4-mapped form.
bool parseCidr(const std::string& text, LiveConfig::Cidr& out) {
  const size_t slash = text.find('/');
  const std::string addr = text.substr(0, slash);
  uint64_t prefix = 0;
  std::memset(out.addr, 0, sizeof out.addr);
  uint8_t v4[4];
  if (inet_pton(AF_INET, addr.c_str(), v4) == 1) {
    if (slash != std::string::npos && !parseUnsigned(text.c_str() + slash + 1, 32, prefix)) {
      return false;
    }
    if (slash == std::string::npos) prefix = 32;
    out.addr[10] = out.addr[11] = 0xff;
    std::memcpy(out.addr + 12, v4, 4);
    out.prefix_len = static_cast<uint8_t>(96 + prefix);
    return true;
  }
  if (inet_pton(AF_INET6, addr.c_str(), out.addr) == 1) {
    if (slash != std::string::npos && !parseUnsigned(text.c_str() + slash + 1, 128, prefix)) {
      return false;
    }
    if (slash == std::string::npos) prefix = 128;
    out.prefix_len = static_cast<uint8_t>(prefix);
    return true;
  }
  return false;
}

bool parseWindow(const char* text, uint32_t& window) {
  if (std::strcmp(text, "unlimited") == 0) {
    window = 0;
    return true;
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-' || v == 0 || v > UINT32_MAX) return false;
  window = static_cast<uint32_t>(v);
  return true;
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
  // Bounds that were reached and oddities that were counted, when any was.
  std::vector<std::pair<std::string_view, uint64_t>> counters = {
      {"tcp.out_of_order_overflows", f.out_of_order_overflows},
      {"tcp.conflicting_overlap_bytes", f.conflicting_overlap_bytes},
  };
  for (const ProtocolTotals& p : s.protocols) {
    for (const ProtocolTotals::Counter& c : p.counters) {
      if (c.notable) counters.emplace_back(c.name, c.value);
    }
  }
  std::string counted;
  for (const auto& [name, value] : counters) {
    if (value != 0)
      counted += std::string(counted.empty() ? "" : ", ") + std::string(name) + " " +
                 std::to_string(value);
  }
  if (!counted.empty()) std::fprintf(stderr, "l7tap: counted: %s\n", counted.c_str());
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
}

int replayCommand(int argc, char** argv) {
  uint32_t window = 0;
  const char* output = nullptr;
  bool quiet = false;
  bool capture_control = false;
  static const option kOptions[] = {
      {"window", required_argument, nullptr, 'w'}, {"capture-control", no_argument, nullptr, 'C'},
      {"output", required_argument, nullptr, 'o'}, {"quiet", no_argument, nullptr, 'q'},
      {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0}};
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "w:o:qh", kOptions, nullptr)) != -1;) {
    switch (c) {
      case 'w':
        if (!parseWindow(optarg, window)) {
          return usageError(std::string("--window needs a positive byte count, not '") + optarg +
                            "'");
        }
        break;
      case 'o':
        output = optarg;
        break;
      case 'C':
        capture_control = true;
        break;
      case 'q':
        quiet = true;
        break;
      case 'h':
        std::fputs(kUsage, stdout);
        return 0;
      default:
        return usageError("bad option");
    }
  }
  std::vector<std::string> files(argv + optind, argv + argc);
  if (files.empty()) return usageError("replay needs at least one capture file");

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
  Pipeline pipeline(sink);
  Replay replay(pipeline, {window, capture_control});
  int status = 0;
  const bool show_progress = !quiet && isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  auto last_progress = started;
  for (const std::string& file : files) {
    if (!sink.ok()) break;  // nowhere to write the records to
    PcapSource source;
    std::string error;
    if (!source.open(file, error)) {
      std::fprintf(stderr, "l7tap: %s: %s\n", file.c_str(), error.c_str());
      status = 1;
      continue;
    }
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
      status = 1;
    }
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
  if (!quiet) {
    printSummary(pipeline, replay.stats(), files.size(), seconds);
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
  return status;
}

int attachCommand(int argc, char** argv) {
  LiveConfig config;
  std::string output;
  static const option kOptions[] = {{"iface", required_argument, nullptr, 'i'},
                                    {"output", required_argument, nullptr, 'o'},
                                    {"window", required_argument, nullptr, 'w'},
                                    {"port", required_argument, nullptr, 'p'},
                                    {"cidr", required_argument, nullptr, 'c'},
                                    {"interim", required_argument, nullptr, 'I'},
                                    {"ring-kb", required_argument, nullptr, 'r'},
                                    {"drain-ms", required_argument, nullptr, 'D'},
                                    {"wakeup-bytes", required_argument, nullptr, 'W'},
                                    {"attach-mode", required_argument, nullptr, 'm'},
                                    {"no-capture-control", no_argument, nullptr, 'N'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  optind = 1;
  uint64_t v = 0;
  for (int c; (c = getopt_long(argc, argv, "i:o:w:p:c:h", kOptions, nullptr)) != -1;) {
    switch (c) {
      case 'i':
        config.interfaces.push_back(optarg);
        break;
      case 'o':
        output = optarg;
        break;
      case 'w':
        if (!parseUnsigned(optarg, L7TAP_MAX_EVENT_PAYLOAD, v) || v == 0) {
          return usageError(std::string("--window needs 1..4096 bytes live, not '") + optarg + "'");
        }
        config.window = static_cast<uint32_t>(v);
        break;
      case 'p':
        if (!parseUnsigned(optarg, 65535, v) || v == 0) {
          return usageError(std::string("--port needs 1..65535, not '") + optarg + "'");
        }
        config.ports.push_back(static_cast<uint16_t>(v));
        break;
      case 'c': {
        LiveConfig::Cidr cidr;
        if (!parseCidr(optarg, cidr)) {
          return usageError(std::string("--cidr needs ADDRESS[/PREFIX], not '") + optarg + "'");
        }
        config.cidrs.push_back(cidr);
        break;
      }
      case 'I':
        if (!parseUnsigned(optarg, 86400, v)) {
          return usageError(std::string("--interim needs seconds (0..86400), not '") + optarg +
                            "'");
        }
        config.interim_interval_ns = v * 1000000000ull;
        break;
      case 'r':
        if (!parseUnsigned(optarg, 1u << 20, v) || v < 4 || (v & (v - 1)) != 0) {
          return usageError(std::string("--ring-kb needs a power of two, 4..1048576, not '") +
                            optarg + "'");
        }
        config.ring_bytes = static_cast<uint32_t>(v << 10);
        break;
      case 'D':
        if (!parseUnsigned(optarg, 10000, v) || v == 0) {
          return usageError(std::string("--drain-ms needs 1..10000, not '") + optarg + "'");
        }
        config.drain_interval_ms = static_cast<uint32_t>(v);
        break;
      case 'W':
        if (!parseUnsigned(optarg, UINT32_MAX, v)) {
          return usageError(std::string("--wakeup-bytes needs a byte count, not '") + optarg + "'");
        }
        config.wakeup_bytes = static_cast<uint32_t>(v);
        break;
      case 'm':
        if (std::strcmp(optarg, "auto") == 0)
          config.mode = AttachMode::kAuto;
        else if (std::strcmp(optarg, "tcx") == 0)
          config.mode = AttachMode::kTcx;
        else if (std::strcmp(optarg, "clsact") == 0)
          config.mode = AttachMode::kClsact;
        else if (std::strcmp(optarg, "xdp") == 0)
          config.mode = AttachMode::kXdp;
        else
          return usageError(std::string("--attach-mode is auto, tcx, clsact or xdp, not '") +
                            optarg + "'");
        break;
      case 'N':
        config.capture_control = false;
        break;
      case 'h':
        std::fputs(kUsage, stdout);
        return 0;
      default:
        return usageError("bad option");
    }
  }
  if (optind != argc) return usageError(std::string("unexpected argument '") + argv[optind] + "'");
  if (config.interfaces.empty()) return usageError("attach needs at least one --iface");
  if (config.ports.size() > L7TAP_MAX_FILTER_PORTS) return usageError("at most 16 --port");
  if (config.cidrs.size() > L7TAP_MAX_FILTER_CIDRS) return usageError("at most 8 --cidr");
  if (output.empty()) output = JournaldSink::journalAvailable() ? "journald" : "json";
  if (output != "journald" && output != "json" && output != "both") {
    return usageError("--output is journald, json or both, not '" + output + "'");
  }

  JsonLinesSink json(STDOUT_FILENO, JsonLinesSink::Flush::kEveryRecord);
  JournaldSink journal;
  TeeSink sinks;
  if (output != "journald") sinks.add(json);
  if (output != "json") {
    if (!JournaldSink::journalAvailable()) {
      std::fprintf(stderr,
                   "l7tap: no journal socket (/run/systemd/journal/socket); use --output json\n");
      return 1;
    }
    sinks.add(journal);
  }
  Pipeline pipeline(sinks);
  LiveCapture live;
  pipeline.setCloseHook(&live);
  if (config.capture_control) pipeline.setCaptureControl(&live);
  std::string error;
  if (!live.start(config, error)) {
    std::fprintf(stderr, "l7tap: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "l7tap: reporting to %s; window %u bytes; stop with SIGINT or SIGTERM\n",
               output.c_str(), config.window);
  // Records that cannot be written end the run: a closed pipe stays closed,
  // and a JSON stream with a hole in it would pass for a complete one.
  // journald is different: it can come back, and what it missed is counted.
  const bool json_out = output != "journald";
  const bool ok = live.run(pipeline, error, [&](std::string& why) {
    if (!json_out || json.ok()) return true;
    why = std::string("standard output: ") + std::strerror(json.error()) +
          "; stopped writing records, detaching";
    return false;
  });
  // Stop reading, then write what is open: exchanges without their response
  // and the final record of every connection.
  const KernelCounters k = live.counters();
  pipeline.finish();
  live.stop();
  const FlowTableStats& f = pipeline.flowStats();
  const SessionStats& s = pipeline.sessionStats();
  std::fprintf(stderr,
               "l7tap: %" PRIu64 " events read, %" PRIu64 " connections, %" PRIu64
               " HTTP records, %" PRIu64 " bytes in gaps, %" PRIu64 " of them in holes\n",
               live.eventsRead(), f.connections_opened, s.http_records, f.bytes_in_gaps,
               f.bytes_in_holes);
  std::string kernel;
  for (int i = 0; i < L7TAP_CNT_MAX; ++i) {
    kernel += std::string(i ? ", " : "") + kernelCounterName(i) + " " + std::to_string(k.value[i]);
  }
  std::fprintf(stderr, "l7tap: kernel: %s\n", kernel.c_str());
  if (output != "json") {
    std::fprintf(stderr, "l7tap: journald: %" PRIu64 " records sent, %" PRIu64 " lost%s%s\n",
                 journal.sent(), journal.failures(), journal.failures() ? ": " : "",
                 journal.failures() ? std::strerror(journal.lastError()) : "");
  }
  if (json_out && !json.ok()) {
    std::fprintf(stderr,
                 "l7tap: standard output: %" PRIu64 " records written, %" PRIu64
                 " lost after the error\n",
                 json.recordsWritten(), json.recordsLost());
  }
  if (k.value[L7TAP_CNT_RINGBUF_FULL]) {
    std::fprintf(stderr,
                 "l7tap: %" PRIu64 " events (%" PRIu64
                 " payload bytes) were lost to a full ring buffer (--ring-kb raises it)\n",
                 k.value[L7TAP_CNT_RINGBUF_FULL], k.value[L7TAP_CNT_RINGBUF_FULL_BYTES]);
  }
  if (!ok) {
    std::fprintf(stderr, "l7tap: %s\n", error.c_str());
    return 1;
  }
  // Stopped by a signal, but the last records (written while stopping)
  // could not be: the output is incomplete.
  return json_out && !json.ok() ? 1 : 0;
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
  if (command == "replay") return l7tap::replayCommand(argc - 1, argv + 1);
  if (command == "attach") return l7tap::attachCommand(argc - 1, argv + 1);
  return l7tap::usageError("unknown command '" + command + "'");
}
