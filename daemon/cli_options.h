// Command-line values shared by the commands, and the options of `replay`
// and `attach`. Each bound comes from the Limits of the room that owns it
// (LiveLimits for live capture), so a message and a check never disagree.
// A config file (--config, config/) sets the same options by their long
// names, through the same code as the flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/live_config.h"
#include "identity/node_identity.h"
#include "metrics/options.h"
#include "records/record_policy.h"
#include "redaction/redaction.h"

namespace l7tap {

/// A decimal number 0..max, nothing else (no sign, no suffix).
bool parseUnsigned(const char* text, uint64_t max, uint64_t& out);
/// "10.0.0.0/8" or "fd00::/8" (no prefix: one address) into the 128-bit
/// IPv4-mapped form the kernel program compares.
bool parseCidr(const std::string& text, LiveConfig::Cidr& out);
/// Replay's --window: a positive byte count, or "unlimited" (0).
bool parseWindow(const char* text, uint32_t& window);
/// --metrics-addr: HOST:PORT, [IPV6]:PORT or :PORT, port 0..65535 (0: any
/// free port). Only the shape: binding it is the endpoint's.
bool validMetricsAddress(std::string_view text);

/// Bounds of options whose room has none of its own.
struct OptionLimits {
  /// --redact-path patterns: each is compared with every record's path.
  static constexpr size_t kMaxRedactPaths = RedactionLimits::kMaxPathPatterns;
  /// --max-series-per-metric: a million series of one metric is already
  /// hundreds of MB and a scrape nobody can read.
  static constexpr uint32_t kMaxSeriesPerMetric = 1000000;
  /// --nice: the nice values that lower a process's priority (setpriority).
  static constexpr int kMaxNice = 19;
};

/// attach's default nice value: the daemon's drains yield to the
/// applications it watches, on the cores they share.
inline constexpr int kDefaultAttachNice = 10;

/// Everything `l7tap replay` was asked to do.
struct ReplayCommandOptions {
  std::vector<std::string> files;
  uint32_t window = 0;              ///< 0: unlimited
  bool capture_control = false;     ///< as a live node: skip what the parsers only count
  std::string output;               ///< -o FILE; empty: standard output
  bool quiet = false;               ///< no summary, no progress
  RedactionPolicy redaction;        ///< --keep-query, --query-allow, --redact-path
  metrics::MetricsOptions metrics;  ///< off unless --metrics-addr or --metrics-out
  RecordPolicy records;             ///< --records: which exchange records are written
};

/// What `attach` follows when no --iface is given: the host side of pod
/// veths of common CNIs (Calico, Cilium, Flannel/bridge and kindnet).
inline const std::vector<std::string> kDefaultInterfaces = {"cali*", "lxc*", "veth*"};

/// Bounds of `trace`'s options.
struct TraceLimits {
  /// --func patterns (each may match up to FunctionTargetLimits::kMaxMatches).
  static constexpr size_t kMaxPatterns = 64;
  /// --usdt pairs.
  static constexpr size_t kMaxUsdt = 64;
  /// --interval and --duration, seconds: a day.
  static constexpr uint32_t kMaxSeconds = 86400;
};

/// Everything `l7tap trace` was asked to do.
struct TraceOptions {
  uint32_t pid = 0;                    ///< --pid: that process only
  std::string binary;                  ///< --binary: every process running this file
  std::vector<std::string> functions;  ///< --func: symbols or globs
  std::vector<std::string> usdt;       ///< --usdt PROVIDER:START:END
  bool histogram = false;              ///< in-kernel histograms, no per-call records
  uint32_t interval_s = 10;            ///< --interval: histogram table every N s
  uint32_t duration_s = 0;             ///< --duration: stop after N s; 0: at a signal
  std::string output = "json";         ///< json or journald
  metrics::MetricsOptions metrics;     ///< off unless --metrics-addr
};

/// Everything `l7tap attach` was asked to do.
struct AttachOptions {
  LiveConfig live;
  /// Who is behind the interfaces: pod names, containers, processes.
  IdentityOptions identity;
  /// journald, json or both; empty: journald when its socket exists, else json.
  std::string output;
  /// --user: the account to run as once attached; empty: stay.
  std::string user;
  RedactionPolicy redaction;  ///< --keep-query, --query-allow, --redact-path
  /// Served on kDefaultMetricsAddress unless --metrics-addr says otherwise.
  metrics::MetricsOptions metrics{.address = metrics::kDefaultMetricsAddress};
  /// --trace-config: functions to time in the watched pods' processes
  /// (apptrace/trace_config.h); empty: none.
  std::string trace_config;
  RecordPolicy records;  ///< --records: which exchange records are written
  /// --nice: the nice value attach runs at (setpriority at start, inherited
  /// by its threads); 0: leave it as it is.
  int nice = kDefaultAttachNice;
};

enum class OptionsResult : uint8_t {
  kRun,    ///< options complete and within their bounds
  kHelp,   ///< --help: print the usage, exit 0
  kUsage,  ///< `error` says what is wrong: print it with the usage, exit 2
  /// `error` says what is wrong with the --config file, in one line naming
  /// the file (and line and key): print it alone, exit 2.
  kConfig,
};

/// Parses `replay`'s arguments (argv[0] is the command name).
OptionsResult parseReplayOptions(int argc, char** argv, ReplayCommandOptions& options,
                                 std::string& error);
/// Parses `attach`'s arguments (argv[0] is the command name).
OptionsResult parseAttachOptions(int argc, char** argv, AttachOptions& options, std::string& error);

/// Parses `trace`'s arguments (argv[0] is the command name).
OptionsResult parseTraceOptions(int argc, char** argv, TraceOptions& options, std::string& error);

/// The keys a config file of `command` ("attach", "replay" or "trace") may set: the
/// long name of every flag but --help and --config. Empty for another command.
std::vector<std::string> configKeys(std::string_view command);

/// Whether `path` is a config file `command` accepts, as `l7tap config
/// check` says: false with the one-line error (the one `--config` gives).
bool checkConfigFile(std::string_view command, const std::string& path, std::string& error);
/// The same on text already read; `name` stands for the file in messages.
bool checkConfigText(std::string_view command, std::string_view text, const std::string& name,
                     std::string& error);

}  // namespace l7tap
