// l7tap: HTTP/1.x and HTTP/2 records from TCP traffic, without a sidecar.
#include <getopt.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/json_sink.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"

namespace l7tap {
namespace {

constexpr const char* kUsage =
    "usage: l7tap replay [--window N] [-o FILE] [--quiet] CAPTURE...\n"
    "\n"
    "Replays pcap/pcapng captures and writes one JSON line per HTTP exchange\n"
    "and per TCP connection.\n"
    "\n"
    "  --window N   copy at most N payload bytes per segment, as the kernel\n"
    "               program would (default: unlimited)\n"
    "  -o FILE      write records to FILE instead of standard output\n"
    "  --quiet      no summary on standard error\n"
    "  -h, --help   this help\n";

int usageError(const std::string& message) {
  std::fprintf(stderr, "l7tap: %s\n%s", message.c_str(), kUsage);
  return 2;
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
  std::fprintf(stderr,
               "l7tap: %" PRIu64 " connections (http/1 %" PRIu64 ", h2 %" PRIu64 ", tls %" PRIu64
               ", other %" PRIu64 "), %" PRIu64 " HTTP records, %" PRIu64 " bytes in gaps\n",
               f.connections_opened, s.connections_http1, s.connections_http2, s.connections_tls,
               s.connections_other, s.http_records, f.bytes_in_gaps);
  if (f.connections_evicted) {
    std::fprintf(stderr, "l7tap: %" PRIu64 " connections evicted (table full)\n",
                 f.connections_evicted);
  }
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
  static const option kOptions[] = {{"window", required_argument, nullptr, 'w'},
                                    {"output", required_argument, nullptr, 'o'},
                                    {"quiet", no_argument, nullptr, 'q'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
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

  std::FILE* out = stdout;
  if (output) {
    out = std::fopen(output, "w");
    if (!out) {
      std::fprintf(stderr, "l7tap: %s: %s\n", output, std::strerror(errno));
      return 1;
    }
  }
  JsonLinesSink sink(out);
  Pipeline pipeline(sink);
  ReplayStats stats;
  int status = 0;
  const bool show_progress = !quiet && isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  auto last_progress = started;
  for (const std::string& file : files) {
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
    const bool ok = source.replay(pipeline, window, stats, error,
                                  show_progress ? std::function(progress) : nullptr);
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
  if (std::fflush(out) != 0 || !sink.ok()) {
    std::fprintf(stderr, "l7tap: writing records failed: %s\n", std::strerror(errno));
    status = 1;
  }
  if (output) std::fclose(out);
  if (!quiet) printSummary(pipeline, stats, files.size(), seconds);
  return status;
}

}  // namespace
}  // namespace l7tap

int main(int argc, char** argv) {
  if (argc < 2) return l7tap::usageError("missing command");
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(l7tap::kUsage, stdout);
    return 0;
  }
  if (command == "replay") return l7tap::replayCommand(argc - 1, argv + 1);
  return l7tap::usageError("unknown command '" + command + "'");
}
