#include "daemon/cli_options.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <pwd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <span>

#include "config/config_file.h"

namespace l7tap {

bool parseUnsigned(const char* text, uint64_t max, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-' || v > max) return false;
  out = v;
  return true;
}

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

bool validMetricsAddress(std::string_view text) {
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    const std::string host(text.substr(1, close - 1));
    in6_addr addr;
    if (inet_pton(AF_INET6, host.c_str(), &addr) != 1) return false;
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    // A name or an IPv4 address; an IPv6 one goes in brackets.
    for (const char c : text.substr(0, colon)) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
    }
    port = text.substr(colon + 1);
  }
  // Digits only: strtoull would take a sign or leading blanks.
  if (port.empty() || port.size() > 5) return false;
  for (const char c : port) {
    if (c < '0' || c > '9') return false;
  }
  uint64_t v = 0;
  return parseUnsigned(std::string(port).c_str(), 65535, v);
}

bool parseWindow(const char* text, uint32_t& window) {
  if (std::strcmp(text, "unlimited") == 0) {
    window = 0;
    return true;
  }
  uint64_t v = 0;
  if (!parseUnsigned(text, UINT32_MAX, v) || v == 0) return false;
  window = static_cast<uint32_t>(v);
  return true;
}

namespace {

// "--NAME needs WHAT, not 'VALUE'": every value error reads the same.
std::string needs(const char* option, const std::string& what, const char* value) {
  return std::string("--") + option + " needs " + what + ", not '" + value + "'";
}

std::string range(uint64_t lo, uint64_t hi) {
  return std::to_string(lo) + ".." + std::to_string(hi);
}

bool parseAttachMode(const char* text, AttachMode& mode) {
  static constexpr struct {
    const char* name;
    AttachMode mode;
  } kModes[] = {{"auto", AttachMode::kAuto},
                {"tcx", AttachMode::kTcx},
                {"clsact", AttachMode::kClsact},
                {"xdp", AttachMode::kXdp}};
  for (const auto& m : kModes) {
    if (std::strcmp(text, m.name) == 0) {
      mode = m.mode;
      return true;
    }
  }
  return false;
}

// Long options without a short letter.
enum LongOnly : int {
  kKubelet = 1000,
  kKubeletToken,
  kKubeletCa,
  kKubeletInsecure,
  kKubeletRefresh,
  kHostProc,
  kNodeName,
  kLockDir,
  kKeepQuery,
  kQueryAllow,
};

// --keep-query and --query-allow, shared by replay and attach; false when
// `option` is not one of them or (with `error` set) its value is refused.
bool applyRedactionOption(int option, const char* value, RedactionPolicy& policy,
                          std::string& error) {
  if (option == kKeepQuery) {
    policy.keep_query = true;
    return true;
  }
  if (option != kQueryAllow) return false;
  if (*value == '\0' || std::strpbrk(value, "&=") != nullptr) {
    error = std::string("--query-allow needs a query key without '&' or '=', not '") + value + "'";
    return false;
  }
  if (policy.query_allow.size() >= RedactionLimits::kMaxAllowedKeys) {
    error = "--query-allow is repeatable at most " +
            std::to_string(RedactionLimits::kMaxAllowedKeys) + " times";
    return false;
  }
  policy.query_allow.emplace_back(value);
  return true;
}

// The longest refresh period of the pod list: names of new pods would wait
// longer than anyone reading records would.
constexpr uint64_t kMaxKubeletRefreshSeconds = 3600;

// An identity option's value; false with `error` set when it is not valid.
bool applyIdentityValue(int option, const char* value, AttachOptions& options, std::string& error) {
  IdentityOptions& id = options.identity;
  uint64_t v = 0;
  switch (option) {
    case kKubelet:
      id.kubelet_url = value;
      // auto: the default, spelled out for a ConfigMap key that must hold something.
      if (id.kubelet_url == "auto") {
        id.kubelet_url.clear();
        return true;
      }
      if (id.kubelet_url == "none" || id.kubelet_url.rfind("https://", 0) == 0 ||
          id.kubelet_url.rfind("http://", 0) == 0) {
        return true;
      }
      error = needs("kubelet", "an https:// or http:// URL, auto or none", value);
      return false;
    case kKubeletToken:
      id.kubelet_token_file = value;
      return true;
    case kKubeletCa:
      id.kubelet_ca_file = value;
      return true;
    case kKubeletRefresh:
      if (!parseUnsigned(value, kMaxKubeletRefreshSeconds, v) || v == 0) {
        error = needs("kubelet-refresh", "seconds (" + range(1, kMaxKubeletRefreshSeconds) + ")",
                      value);
        return false;
      }
      id.refresh_interval_ns = v * 1000000000ull;
      return true;
    case kHostProc:
      id.host_proc = value;
      return true;
    case kNodeName:
      id.node_name = value;
      return true;
    case kLockDir:
      options.live.lock_dir = value;
      return true;
  }
  error = "bad option";
  return false;
}

// One option's value into `live`; false with `error` set when it is out of
// its bound.
bool applyValue(int option, const char* value, AttachOptions& options, std::string& error) {
  using L = LiveLimits;
  LiveConfig& live = options.live;
  uint64_t v = 0;
  if (option >= kKubelet) return applyIdentityValue(option, value, options, error);
  switch (option) {
    case 'i':
      live.interfaces.push_back(value);
      return true;
    case 'o':
      options.output = value;
      if (options.output == "journald" || options.output == "json" || options.output == "both")
        return true;
      error = "--output is journald, json or both, not '" + options.output + "'";
      return false;
    case 'w':
      if (!parseUnsigned(value, L::kMaxWindow, v) || v == 0) {
        error = needs("window", range(1, L::kMaxWindow) + " bytes live", value);
        return false;
      }
      live.window = static_cast<uint32_t>(v);
      return true;
    case 'p':
      if (!parseUnsigned(value, 65535, v) || v == 0) {
        error = needs("port", range(1, 65535), value);
        return false;
      }
      live.ports.push_back(static_cast<uint16_t>(v));
      return true;
    case 'c': {
      LiveConfig::Cidr cidr;
      if (!parseCidr(value, cidr)) {
        error = needs("cidr", "ADDRESS[/PREFIX]", value);
        return false;
      }
      live.cidrs.push_back(cidr);
      return true;
    }
    case 'I':
      if (!parseUnsigned(value, L::kMaxInterimSeconds, v)) {
        error = needs("interim", "seconds (" + range(0, L::kMaxInterimSeconds) + ")", value);
        return false;
      }
      live.interim_interval_ns = v * 1000000000ull;
      return true;
    case 'r':
      if (!parseUnsigned(value, L::kMaxRingKb, v) || v < L::kMinRingKb || (v & (v - 1)) != 0) {
        error = needs("ring-kb", "a power of two, " + range(L::kMinRingKb, L::kMaxRingKb), value);
        return false;
      }
      live.ring_bytes = static_cast<uint32_t>(v << 10);
      return true;
    case 'D':
      if (!parseUnsigned(value, L::kMaxDrainMs, v) || v == 0) {
        error = needs("drain-ms", range(1, L::kMaxDrainMs), value);
        return false;
      }
      live.drain_interval_ms = static_cast<uint32_t>(v);
      return true;
    case 'W':
      if (!parseUnsigned(value, UINT32_MAX, v)) {
        error = needs("wakeup-bytes", "a byte count", value);
        return false;
      }
      live.wakeup_bytes = static_cast<uint32_t>(v);
      return true;
    case 'm':
      if (parseAttachMode(value, live.mode)) return true;
      error = std::string("--attach-mode is auto, tcx, clsact or xdp, not '") + value + "'";
      return false;
  }
  error = "bad option";
  return false;
}

// --metrics-addr, --metrics-out, --route-pattern, --max-series-per-metric
// and --redact-path, alike in replay and attach (both have `metrics` and
// `redaction`).
template <class Options>
bool applyMetricsAddr(Options& o, const char* value, std::string& error) {
  if (std::strcmp(value, "none") == 0) {
    o.metrics.address.clear();
    return true;
  }
  if (!validMetricsAddress(value)) {
    error = needs("metrics-addr", "HOST:PORT, [IPV6]:PORT, :PORT or none", value);
    return false;
  }
  o.metrics.address = value;
  return true;
}

template <class Options>
bool applyRoutePattern(Options& o, const char* value, std::string& error) {
  if (value[0] != '/') {
    error = needs("route-pattern", "a path pattern starting with '/'", value);
    return false;
  }
  if (o.metrics.route_patterns.size() >= o.metrics.limits.max_route_patterns) {
    error = "--route-pattern is repeatable at most " +
            std::to_string(o.metrics.limits.max_route_patterns) + " times";
    return false;
  }
  o.metrics.route_patterns.emplace_back(value);
  return true;
}

template <class Options>
bool applyMaxSeries(Options& o, const char* value, std::string& error) {
  uint64_t v = 0;
  if (!parseUnsigned(value, OptionLimits::kMaxSeriesPerMetric, v) || v == 0) {
    error = needs("max-series-per-metric", range(1, OptionLimits::kMaxSeriesPerMetric), value);
    return false;
  }
  o.metrics.limits.max_series_per_metric = static_cast<uint32_t>(v);
  return true;
}

template <class Options>
bool applyRedactPath(Options& o, const char* value, std::string& error) {
  // redaction/ owns what a pattern is, and says what is wrong with one.
  if (!parsePathPattern(value, error)) return false;
  if (o.redaction.path_patterns.size() >= OptionLimits::kMaxRedactPaths) {
    error = "--redact-path is repeatable at most " + std::to_string(OptionLimits::kMaxRedactPaths) +
            " times";
    return false;
  }
  o.redaction.path_patterns.emplace_back(value);
  return true;
}

template <class Options>
bool applyRecords(Options& o, const char* value, std::string& error) {
  std::string why;
  if (parseRecordPolicy(value, o.records, why)) return true;
  error = std::string("--records ") + value + ": " + why;
  return false;
}

template <class Options>
bool applyKeepQuery(Options& o, const char* value, std::string& error) {
  return applyRedactionOption(kKeepQuery, value, o.redaction, error);
}
template <class Options>
bool applyQueryAllow(Options& o, const char* value, std::string& error) {
  return applyRedactionOption(kQueryAllow, value, o.redaction, error);
}

// One option of a command: its flag and its config key are this entry, so
// both go through `apply` and say the same.
template <class Options>
struct OptionSpec {
  const char* name;  ///< the long name and the config key
  int has_arg;       ///< getopt's no_argument, required_argument, optional_argument
  char short_name;   ///< 0: none
  /// Repeatable options: how many values at most (the config file's list
  /// bound; some also check it in `apply`); 0: one value.
  size_t max_values;
  /// Stores one value (null: a flag without one); false with `error` set.
  bool (*apply)(Options&, const char* value, std::string& error);
  /// Repeatable options: empties the list, so that the command line's
  /// values replace the config file's.
  void (*clear)(Options&);
};

template <class Options>
void clearInterfaces(Options& o) {
  o.live.interfaces.clear();
}

// ---- replay ----

using ReplaySpec = OptionSpec<ReplayCommandOptions>;

bool replayWindow(ReplayCommandOptions& o, const char* value, std::string& error) {
  if (parseWindow(value, o.window)) return true;
  error = std::string("--window needs a positive byte count, not '") + value + "'";
  return false;
}

// Replay's outputs are files; the rest of the options are attach's too.
const ReplaySpec kReplayOptions[] = {
    {"window", required_argument, 'w', 0, replayWindow, nullptr},
    {"capture-control", no_argument, 0, 0,
     [](ReplayCommandOptions& o, const char*, std::string&) { return o.capture_control = true; },
     nullptr},
    {"output", required_argument, 'o', 0,
     [](ReplayCommandOptions& o, const char* value, std::string&) {
       o.output = value;
       return true;
     },
     nullptr},
    {"quiet", no_argument, 'q', 0,
     [](ReplayCommandOptions& o, const char*, std::string&) { return o.quiet = true; }, nullptr},
    {"keep-query", no_argument, 0, 0, applyKeepQuery<ReplayCommandOptions>, nullptr},
    {"query-allow", required_argument, 0, RedactionLimits::kMaxAllowedKeys,
     applyQueryAllow<ReplayCommandOptions>,
     [](ReplayCommandOptions& o) { o.redaction.query_allow.clear(); }},
    {"redact-path", required_argument, 0, OptionLimits::kMaxRedactPaths,
     applyRedactPath<ReplayCommandOptions>,
     [](ReplayCommandOptions& o) { o.redaction.path_patterns.clear(); }},
    {"metrics-addr", required_argument, 0, 0, applyMetricsAddr<ReplayCommandOptions>, nullptr},
    {"metrics-out", required_argument, 0, 0,
     [](ReplayCommandOptions& o, const char* value, std::string& error) {
       if (*value == '\0') {
         error = "--metrics-out needs a file name";
         return false;
       }
       o.metrics.output_file = value;
       return true;
     },
     nullptr},
    {"route-pattern", required_argument, 0, metrics::MetricsLimits{}.max_route_patterns,
     applyRoutePattern<ReplayCommandOptions>,
     [](ReplayCommandOptions& o) { o.metrics.route_patterns.clear(); }},
    {"max-series-per-metric", required_argument, 0, 0, applyMaxSeries<ReplayCommandOptions>,
     nullptr},
    {"records", required_argument, 0, 0, applyRecords<ReplayCommandOptions>, nullptr},
};

// ---- attach ----

using AttachSpec = OptionSpec<AttachOptions>;

// The options whose checks predate the table, by their getopt value.
template <int kOption>
bool attachValue(AttachOptions& o, const char* value, std::string& error) {
  return applyValue(kOption, value, o, error);
}

bool attachUser(AttachOptions& o, const char* value, std::string& error) {
  if (*value == '\0') {
    error = "--user needs an account name";
    return false;
  }
  // Checked now, not only once the program is loaded and attached.
  if (getpwnam(value) == nullptr) {
    error = std::string("--user ") + value + ": no such user";
    return false;
  }
  o.user = value;
  return true;
}

bool attachTlsPid(AttachOptions& o, const char* value, std::string& error) {
  uint64_t v = 0;
  if (!parseUnsigned(value, UINT32_MAX, v) || v == 0) {
    error = needs("tls-pid", "a process id", value);
    return false;
  }
  if (o.live.tls_pids.size() >= LiveLimits::kMaxTlsPids) {
    error = "--tls-pid is repeatable at most " + std::to_string(LiveLimits::kMaxTlsPids) + " times";
    return false;
  }
  o.live.tls_pids.push_back(static_cast<uint32_t>(v));
  return true;
}

bool attachTlsBinary(AttachOptions& o, const char* value, std::string& error) {
  // Whether it is a file the probes can use is said once it is tried (one
  // line, never fatal): a binary may be installed after the daemon starts.
  if (*value == '\0') {
    error = "--tls-binary needs a file name";
    return false;
  }
  if (o.live.tls_binaries.size() >= LiveLimits::kMaxTlsBinaries) {
    error = "--tls-binary is repeatable at most " + std::to_string(LiveLimits::kMaxTlsBinaries) +
            " times";
    return false;
  }
  o.live.tls_binaries.emplace_back(value);
  return true;
}

bool attachKubeletInsecure(AttachOptions& o, const char* value, std::string& error) {
  // A value too, so that a DaemonSet can pass it from a ConfigMap key.
  if (value && std::strcmp(value, "true") != 0 && std::strcmp(value, "false") != 0) {
    error = needs("kubelet-insecure", "true or false (or no value)", value);
    return false;
  }
  o.identity.kubelet_insecure = !value || std::strcmp(value, "true") == 0;
  return true;
}

bool attachNice(AttachOptions& o, const char* value, std::string& error) {
  uint64_t v = 0;
  if (!parseUnsigned(value, OptionLimits::kMaxNice, v)) {
    error = needs("nice", range(0, OptionLimits::kMaxNice) + " (0: leave as is)", value);
    return false;
  }
  o.nice = static_cast<int>(v);
  return true;
}

const AttachSpec kAttachOptions[] = {
    // No bound of its own: each glob costs a match per new interface.
    {"iface", required_argument, 'i', config::ConfigLimits::kMaxListValues, attachValue<'i'>,
     clearInterfaces<AttachOptions>},
    {"output", required_argument, 'o', 0, attachValue<'o'>, nullptr},
    {"window", required_argument, 'w', 0, attachValue<'w'>, nullptr},
    // The count is checked once all are in (finishAttach): the message
    // names the flag.
    {"port", required_argument, 'p', LiveLimits::kMaxPorts, attachValue<'p'>,
     [](AttachOptions& o) { o.live.ports.clear(); }},
    {"cidr", required_argument, 'c', LiveLimits::kMaxCidrs, attachValue<'c'>,
     [](AttachOptions& o) { o.live.cidrs.clear(); }},
    {"interim", required_argument, 0, 0, attachValue<'I'>, nullptr},
    {"ring-kb", required_argument, 0, 0, attachValue<'r'>, nullptr},
    {"drain-ms", required_argument, 0, 0, attachValue<'D'>, nullptr},
    {"wakeup-bytes", required_argument, 0, 0, attachValue<'W'>, nullptr},
    {"attach-mode", required_argument, 0, 0, attachValue<'m'>, nullptr},
    {"no-capture-control", no_argument, 0, 0,
     [](AttachOptions& o, const char*, std::string&) {
       o.live.capture_control = false;
       return true;
     },
     nullptr},
    {"no-tls-uprobes", no_argument, 0, 0,
     [](AttachOptions& o, const char*, std::string&) {
       o.live.tls_uprobes = false;
       return true;
     },
     nullptr},
    {"tls-all-processes", no_argument, 0, 0,
     [](AttachOptions& o, const char*, std::string&) {
       o.live.tls_all_processes = true;
       return true;
     },
     nullptr},
    {"tls-pid", required_argument, 0, LiveLimits::kMaxTlsPids, attachTlsPid,
     [](AttachOptions& o) { o.live.tls_pids.clear(); }},
    {"tls-binary", required_argument, 0, LiveLimits::kMaxTlsBinaries, attachTlsBinary,
     [](AttachOptions& o) { o.live.tls_binaries.clear(); }},
    {"user", required_argument, 0, 0, attachUser, nullptr},
    {"kubelet", required_argument, 0, 0, attachValue<kKubelet>, nullptr},
    {"kubelet-token", required_argument, 0, 0, attachValue<kKubeletToken>, nullptr},
    {"kubelet-ca", required_argument, 0, 0, attachValue<kKubeletCa>, nullptr},
    {"kubelet-insecure", optional_argument, 0, 0, attachKubeletInsecure, nullptr},
    {"kubelet-refresh", required_argument, 0, 0, attachValue<kKubeletRefresh>, nullptr},
    {"host-proc", required_argument, 0, 0, attachValue<kHostProc>, nullptr},
    {"node-name", required_argument, 0, 0, attachValue<kNodeName>, nullptr},
    {"lock-dir", required_argument, 0, 0, attachValue<kLockDir>, nullptr},
    {"keep-query", no_argument, 0, 0, applyKeepQuery<AttachOptions>, nullptr},
    {"query-allow", required_argument, 0, RedactionLimits::kMaxAllowedKeys,
     applyQueryAllow<AttachOptions>, [](AttachOptions& o) { o.redaction.query_allow.clear(); }},
    {"redact-path", required_argument, 0, OptionLimits::kMaxRedactPaths,
     applyRedactPath<AttachOptions>, [](AttachOptions& o) { o.redaction.path_patterns.clear(); }},
    {"metrics-addr", required_argument, 0, 0, applyMetricsAddr<AttachOptions>, nullptr},
    {"route-pattern", required_argument, 0, metrics::MetricsLimits{}.max_route_patterns,
     applyRoutePattern<AttachOptions>, [](AttachOptions& o) { o.metrics.route_patterns.clear(); }},
    {"max-series-per-metric", required_argument, 0, 0, applyMaxSeries<AttachOptions>, nullptr},
    {"records", required_argument, 0, 0, applyRecords<AttachOptions>, nullptr},
    {"nice", required_argument, 0, 0, attachNice, nullptr},
    {"trace-config", required_argument, 0, 0,
     [](AttachOptions& o, const char* value, std::string& error) {
       if (*value == '\0') {
         error = "--trace-config needs a file name";
         return false;
       }
       o.trace_config = value;
       return true;
     },
     nullptr},
};

// ---- trace ----

using TraceSpec = OptionSpec<TraceOptions>;

bool traceSeconds(const char* flag, const char* value, uint32_t& out, std::string& error) {
  uint64_t v = 0;
  if (!parseUnsigned(value, TraceLimits::kMaxSeconds, v) || v == 0) {
    error = needs(flag, "seconds, 1.." + std::to_string(TraceLimits::kMaxSeconds), value);
    return false;
  }
  out = static_cast<uint32_t>(v);
  return true;
}

// A repeatable text value: not empty, at most `max` of them.
bool appendValue(const char* flag, const char* value, size_t max, std::vector<std::string>& list,
                 std::string& error) {
  if (*value == '\0') {
    error = std::string("--") + flag + " needs a value";
    return false;
  }
  if (list.size() >= max) {
    error = std::string("--") + flag + " is repeatable at most " + std::to_string(max) + " times";
    return false;
  }
  list.emplace_back(value);
  return true;
}

const TraceSpec kTraceOptions[] = {
    {"pid", required_argument, 'p', 0,
     [](TraceOptions& o, const char* value, std::string& error) {
       uint64_t v = 0;
       if (!parseUnsigned(value, INT32_MAX, v) || v == 0) {
         error = needs("pid", "a process id", value);
         return false;
       }
       o.pid = static_cast<uint32_t>(v);
       return true;
     },
     nullptr},
    {"binary", required_argument, 'b', 0,
     [](TraceOptions& o, const char* value, std::string& error) {
       if (*value == '\0') {
         error = "--binary needs a file name";
         return false;
       }
       o.binary = value;
       return true;
     },
     nullptr},
    {"func", required_argument, 'f', TraceLimits::kMaxPatterns,
     [](TraceOptions& o, const char* value, std::string& error) {
       return appendValue("func", value, TraceLimits::kMaxPatterns, o.functions, error);
     },
     [](TraceOptions& o) { o.functions.clear(); }},
    {"usdt", required_argument, 0, TraceLimits::kMaxUsdt,
     [](TraceOptions& o, const char* value, std::string& error) {
       return appendValue("usdt", value, TraceLimits::kMaxUsdt, o.usdt, error);
     },
     [](TraceOptions& o) { o.usdt.clear(); }},
    {"histogram", no_argument, 0, 0,
     [](TraceOptions& o, const char*, std::string&) { return o.histogram = true; }, nullptr},
    {"interval", required_argument, 0, 0,
     [](TraceOptions& o, const char* value, std::string& error) {
       return traceSeconds("interval", value, o.interval_s, error);
     },
     nullptr},
    {"duration", required_argument, 0, 0,
     [](TraceOptions& o, const char* value, std::string& error) {
       return traceSeconds("duration", value, o.duration_s, error);
     },
     nullptr},
    {"output", required_argument, 'o', 0,
     [](TraceOptions& o, const char* value, std::string& error) {
       if (std::strcmp(value, "json") != 0 && std::strcmp(value, "journald") != 0) {
         error = needs("output", "json or journald", value);
         return false;
       }
       o.output = value;
       return true;
     },
     nullptr},
    {"metrics-addr", required_argument, 0, 0, applyMetricsAddr<TraceOptions>, nullptr},
};

// getopt values: a spec's index past every short letter; --help is 'h'.
constexpr int kFirstSpec = 256;
constexpr int kConfigOption = 2;

// The config file's settings, in the file's order, each through its spec;
// false with a one-line error naming the file, the line and the key.
template <class Options>
bool applyConfig(const config::ConfigFile& file, std::span<const OptionSpec<Options>> specs,
                 std::string_view command, Options& options, std::string& error) {
  for (const config::Setting& s : file.settings) {
    const auto fail = [&](size_t line, const std::string& message) {
      error = config::settingError(file, s, line, message);
      return false;
    };
    if (s.key == "config") return fail(0, "a config file cannot name another config file");
    const OptionSpec<Options>* spec = nullptr;
    for (const auto& candidate : specs) {
      if (s.key == candidate.name) spec = &candidate;
    }
    if (spec == nullptr) return fail(0, "not an option of " + std::string(command));
    if (s.list && spec->max_values == 0) return fail(0, "one value, not a list");
    if (s.values.size() > std::max<size_t>(spec->max_values, 1)) {
      return fail(0, "at most " + std::to_string(spec->max_values) + " values");
    }
    for (size_t i = 0; i < s.values.size(); ++i) {
      const std::string& value = s.values[i];
      const size_t line = s.value_lines[i];
      if (value.find('\0') != std::string::npos) return fail(line, "a value with a NUL byte");
      std::string why;
      if (spec->has_arg == no_argument) {
        // A flag: true sets it; false leaves the default (no flag unsets).
        if (value != "true" && value != "false")
          return fail(line, "needs true or false, not '" + value + "'");
        if (value == "true" && !spec->apply(options, nullptr, why)) return fail(line, why);
      } else if (!spec->apply(options, value.c_str(), why)) {
        return fail(line, why);
      }
    }
  }
  return true;
}

// Reads the flags of `specs` (and --help, --config) from argv: the config
// file first, then the flags over it, in their order. Positional arguments
// are left from optind on.
template <class Options>
OptionsResult parseWithConfig(std::span<const OptionSpec<Options>> specs, std::string_view command,
                              const char* short_options, int argc, char** argv, Options& options,
                              std::string& error) {
  std::vector<option> long_options;
  for (size_t i = 0; i < specs.size(); ++i) {
    long_options.push_back(
        {specs[i].name, specs[i].has_arg, nullptr, kFirstSpec + static_cast<int>(i)});
  }
  long_options.push_back({"config", required_argument, nullptr, kConfigOption});
  long_options.push_back({"help", no_argument, nullptr, 'h'});
  long_options.push_back({nullptr, 0, nullptr, 0});
  struct Flag {
    int c;
    const char* value;
  };
  std::vector<Flag> flags;
  const char* config_path = nullptr;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, short_options, long_options.data(), nullptr)) != -1;) {
    if (c == kConfigOption) config_path = optarg;
    flags.push_back({c, optarg});
    // Flags past an unknown one are not read: it is reported in its turn.
    if (c == '?' || c == ':') break;
  }
  if (config_path != nullptr) {
    config::ConfigFile file;
    if (!config::readConfigFile(config_path, file, error) ||
        !applyConfig(file, specs, command, options, error)) {
      return OptionsResult::kConfig;
    }
  }
  std::vector<bool> replaced(specs.size());
  for (const Flag& f : flags) {
    if (f.c == kConfigOption) continue;
    if (f.c == 'h') return OptionsResult::kHelp;
    const OptionSpec<Options>* spec = nullptr;
    if (f.c >= kFirstSpec && f.c < kFirstSpec + static_cast<int>(specs.size())) {
      spec = &specs[f.c - kFirstSpec];
    } else {
      for (const auto& candidate : specs) {
        if (candidate.short_name != 0 && candidate.short_name == f.c) spec = &candidate;
      }
    }
    if (spec == nullptr) {
      error = "bad option";
      return OptionsResult::kUsage;
    }
    const size_t index = static_cast<size_t>(spec - specs.data());
    if (spec->clear && !replaced[index]) {
      spec->clear(options);
      replaced[index] = true;
    }
    if (!spec->apply(options, f.value, error)) return OptionsResult::kUsage;
  }
  return OptionsResult::kRun;
}

// What holds only once every value is in, from the file and the flags.
bool finishAttach(AttachOptions& options, std::string& error) {
  if (options.live.interfaces.empty()) options.live.interfaces = kDefaultInterfaces;
  // TLS libraries are found in the same /proc as the pods' processes.
  if (!options.identity.host_proc.empty()) options.live.tls_proc = options.identity.host_proc;
  if (!options.live.tls_uprobes &&
      (!options.live.tls_pids.empty() || !options.live.tls_binaries.empty())) {
    error = "--tls-pid and --tls-binary do not go with --no-tls-uprobes";
    return false;
  }
  // libxdp pins its dispatcher in the bpffs (root's, mode 0700) for each
  // interface it attaches to, which another user cannot.
  if (!options.user.empty() && options.live.mode == AttachMode::kXdp) {
    error = "--user does not go with --attach-mode xdp";
    return false;
  }
  if (options.live.ports.size() > LiveLimits::kMaxPorts) {
    error = "at most " + std::to_string(LiveLimits::kMaxPorts) + " --port";
    return false;
  }
  if (options.live.cidrs.size() > LiveLimits::kMaxCidrs) {
    error = "at most " + std::to_string(LiveLimits::kMaxCidrs) + " --cidr";
    return false;
  }
  return true;
}

template <class Options>
std::vector<std::string> keysOf(std::span<const OptionSpec<Options>> specs) {
  std::vector<std::string> keys;
  for (const auto& spec : specs) keys.emplace_back(spec.name);
  return keys;
}

}  // namespace

OptionsResult parseReplayOptions(int argc, char** argv, ReplayCommandOptions& options,
                                 std::string& error) {
  const OptionsResult result = parseWithConfig<ReplayCommandOptions>(
      kReplayOptions, "replay", "w:o:qh", argc, argv, options, error);
  if (result != OptionsResult::kRun) return result;
  options.files.assign(argv + optind, argv + argc);
  if (options.files.empty()) {
    error = "replay needs at least one capture file";
    return OptionsResult::kUsage;
  }
  return OptionsResult::kRun;
}

OptionsResult parseAttachOptions(int argc, char** argv, AttachOptions& options,
                                 std::string& error) {
  const OptionsResult result = parseWithConfig<AttachOptions>(
      kAttachOptions, "attach", "i:o:w:p:c:h", argc, argv, options, error);
  if (result != OptionsResult::kRun) return result;
  if (optind != argc) {
    error = std::string("unexpected argument '") + argv[optind] + "'";
    return OptionsResult::kUsage;
  }
  return finishAttach(options, error) ? OptionsResult::kRun : OptionsResult::kUsage;
}

OptionsResult parseTraceOptions(int argc, char** argv, TraceOptions& options, std::string& error) {
  const OptionsResult result = parseWithConfig<TraceOptions>(kTraceOptions, "trace", "p:b:f:o:h",
                                                             argc, argv, options, error);
  if (result != OptionsResult::kRun) return result;
  if (optind != argc) {
    error = std::string("unexpected argument '") + argv[optind] + "'";
    return OptionsResult::kUsage;
  }
  if ((options.pid != 0) == !options.binary.empty()) {
    error = "trace needs one of --pid and --binary";
    return OptionsResult::kUsage;
  }
  if (options.functions.empty() && options.usdt.empty()) {
    error = "trace needs --func or --usdt";
    return OptionsResult::kUsage;
  }
  return OptionsResult::kRun;
}

std::vector<std::string> configKeys(std::string_view command) {
  if (command == "replay") return keysOf<ReplayCommandOptions>(kReplayOptions);
  if (command == "attach") return keysOf<AttachOptions>(kAttachOptions);
  if (command == "trace") return keysOf<TraceOptions>(kTraceOptions);
  return {};
}

namespace {

// As the command would take the file with no flags (replay's capture files
// aside).
bool checkConfig(std::string_view command, const config::ConfigFile& file, std::string& error) {
  if (command == "replay") {
    ReplayCommandOptions options;
    return applyConfig<ReplayCommandOptions>(file, kReplayOptions, command, options, error);
  }
  AttachOptions options;
  if (!applyConfig<AttachOptions>(file, kAttachOptions, command, options, error)) return false;
  if (finishAttach(options, error)) return true;
  error = file.name + ": " + error;
  return false;
}

}  // namespace

bool checkConfigText(std::string_view command, std::string_view text, const std::string& name,
                     std::string& error) {
  config::ConfigFile file;
  return config::parseConfigText(text, name, file, error) && checkConfig(command, file, error);
}

bool checkConfigFile(std::string_view command, const std::string& path, std::string& error) {
  config::ConfigFile file;
  return config::readConfigFile(path, file, error) && checkConfig(command, file, error);
}

}  // namespace l7tap
