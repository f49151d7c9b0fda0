// The --trace-config file of `l7tap attach`: which executables' functions
// and USDT probes to trace in the processes it watches. YAML:
//
//   traces:
//     - executable: app            # basename, or absolute path in the container
//       functions: ["main.handle*"]
//       usdt: ["provider:start:end"]
//
// Every error is one line naming the file and, where there is one, the line
// and the key, as config/ does for --config.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace l7tap {

struct TraceConfigLimits {
  /// A trace config is a few lines; anything larger is the wrong file.
  static constexpr size_t kMaxFileBytes = 64 * 1024;
  /// Executables in one file.
  static constexpr size_t kMaxEntries = 64;
  /// Function patterns plus USDT specs of one executable; each pattern may
  /// match FunctionTargetLimits::kMaxMatches functions.
  static constexpr size_t kMaxPatterns = 64;
  /// Bytes of an executable name, pattern or spec (PATH_MAX).
  static constexpr size_t kMaxValueBytes = 4096;
};

struct TraceConfig {
  struct Entry {
    /// A basename ("app") matches /proc/PID/exe's basename; an absolute
    /// path, the whole path as the process's mount namespace sees it.
    std::string executable;
    std::vector<std::string> functions;  ///< exact names or fnmatch globs
    std::vector<std::string> usdt;       ///< "PROVIDER:START:END" or "PROVIDER:NAME"
    size_t line = 0;                     ///< 1-based, of the entry, for later messages
  };
  std::vector<Entry> traces;
};

/// Reads and checks `path`; false with a one-line `error` ("PATH: ...",
/// "PATH:LINE: KEY: ...").
bool loadTraceConfig(const std::string& path, TraceConfig& out, std::string& error);

/// Parses `text` as the contents of a file called `name`.
bool parseTraceConfig(std::string_view text, const std::string& name, TraceConfig& out,
                      std::string& error);

/// True when `entry` names the executable of a process whose /proc/PID/exe
/// link reads `exe_path` (as that process sees it).
bool traceEntryMatches(const TraceConfig::Entry& entry, std::string_view exe_path);

}  // namespace l7tap
