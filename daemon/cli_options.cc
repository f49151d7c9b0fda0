#include "daemon/cli_options.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <pwd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

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

}  // namespace

OptionsResult parseReplayOptions(int argc, char** argv, ReplayCommandOptions& options,
                                 std::string& error) {
  static const option kOptions[] = {{"window", required_argument, nullptr, 'w'},
                                    {"capture-control", no_argument, nullptr, 'C'},
                                    {"output", required_argument, nullptr, 'o'},
                                    {"quiet", no_argument, nullptr, 'q'},
                                    {"keep-query", no_argument, nullptr, kKeepQuery},
                                    {"query-allow", required_argument, nullptr, kQueryAllow},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "w:o:qh", kOptions, nullptr)) != -1;) {
    switch (c) {
      case kKeepQuery:
      case kQueryAllow:
        if (!applyRedactionOption(c, optarg, options.redaction, error))
          return OptionsResult::kUsage;
        break;
      case 'w':
        if (!parseWindow(optarg, options.window)) {
          error = std::string("--window needs a positive byte count, not '") + optarg + "'";
          return OptionsResult::kUsage;
        }
        break;
      case 'o':
        options.output = optarg;
        break;
      case 'C':
        options.capture_control = true;
        break;
      case 'q':
        options.quiet = true;
        break;
      case 'h':
        return OptionsResult::kHelp;
      default:
        error = "bad option";
        return OptionsResult::kUsage;
    }
  }
  options.files.assign(argv + optind, argv + argc);
  if (options.files.empty()) {
    error = "replay needs at least one capture file";
    return OptionsResult::kUsage;
  }
  return OptionsResult::kRun;
}

OptionsResult parseAttachOptions(int argc, char** argv, AttachOptions& options,
                                 std::string& error) {
  static const option kOptions[] = {
      {"iface", required_argument, nullptr, 'i'},
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
      {"user", required_argument, nullptr, 'u'},
      {"kubelet", required_argument, nullptr, kKubelet},
      {"kubelet-token", required_argument, nullptr, kKubeletToken},
      {"kubelet-ca", required_argument, nullptr, kKubeletCa},
      {"kubelet-insecure", optional_argument, nullptr, kKubeletInsecure},
      {"kubelet-refresh", required_argument, nullptr, kKubeletRefresh},
      {"host-proc", required_argument, nullptr, kHostProc},
      {"node-name", required_argument, nullptr, kNodeName},
      {"lock-dir", required_argument, nullptr, kLockDir},
      {"keep-query", no_argument, nullptr, kKeepQuery},
      {"query-allow", required_argument, nullptr, kQueryAllow},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "i:o:w:p:c:h", kOptions, nullptr)) != -1;) {
    if (c == 'h') return OptionsResult::kHelp;
    if (c == 'N') {
      options.live.capture_control = false;
      continue;
    }
    if (c == kKeepQuery || c == kQueryAllow) {
      if (!applyRedactionOption(c, optarg, options.redaction, error)) return OptionsResult::kUsage;
      continue;
    }
    if (c == kKubeletInsecure) {
      // A value too, so that a DaemonSet can pass it from a ConfigMap key.
      if (optarg && std::strcmp(optarg, "true") != 0 && std::strcmp(optarg, "false") != 0) {
        error = needs("kubelet-insecure", "true or false (or no value)", optarg);
        return OptionsResult::kUsage;
      }
      options.identity.kubelet_insecure = !optarg || std::strcmp(optarg, "true") == 0;
      continue;
    }
    if (c == 'u') {
      if (*optarg == '\0') {
        error = "--user needs an account name";
        return OptionsResult::kUsage;
      }
      // Checked now, not only once the program is loaded and attached.
      if (getpwnam(optarg) == nullptr) {
        error = std::string("--user ") + optarg + ": no such user";
        return OptionsResult::kUsage;
      }
      options.user = optarg;
      continue;
    }
    if (c == '?' || c == ':' || !applyValue(c, optarg, options, error)) {
      if (c == '?' || c == ':') error = "bad option";
      return OptionsResult::kUsage;
    }
  }
  if (optind != argc) {
    error = std::string("unexpected argument '") + argv[optind] + "'";
    return OptionsResult::kUsage;
  }
  if (options.live.interfaces.empty()) options.live.interfaces = kDefaultInterfaces;
  // libxdp pins its dispatcher in the bpffs (root's, mode 0700) for each
  // interface it attaches to, which another user cannot.
  if (!options.user.empty() && options.live.mode == AttachMode::kXdp) {
    error = "--user does not go with --attach-mode xdp";
    return OptionsResult::kUsage;
  }
  if (options.live.ports.size() > LiveLimits::kMaxPorts) {
    error = "at most " + std::to_string(LiveLimits::kMaxPorts) + " --port";
    return OptionsResult::kUsage;
  }
  if (options.live.cidrs.size() > LiveLimits::kMaxCidrs) {
    error = "at most " + std::to_string(LiveLimits::kMaxCidrs) + " --cidr";
    return OptionsResult::kUsage;
  }
  return OptionsResult::kRun;
}

}  // namespace l7tap
