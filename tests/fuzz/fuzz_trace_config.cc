// The --trace-config file (`l7tap attach --trace-config`): arbitrary bytes
// through yaml-cpp and parseTraceConfig. Never a crash or an exception; an
// error is one line naming the file first; what is accepted keeps the
// bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "apptrace/trace_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using l7tap::TraceConfigLimits;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  l7tap::TraceConfig config;
  std::string error;
  if (!l7tap::parseTraceConfig(text, "f.yaml", config, error)) {
    if (error.rfind("f.yaml", 0) != 0 || error.find('\n') != std::string::npos) std::abort();
    if (!config.traces.empty()) std::abort();
    return 0;
  }
  if (config.traces.empty() || config.traces.size() > TraceConfigLimits::kMaxEntries) std::abort();
  for (const auto& entry : config.traces) {
    if (entry.executable.empty() || entry.line == 0) std::abort();
    if (entry.functions.empty() && entry.usdt.empty()) std::abort();
    if (entry.functions.size() + entry.usdt.size() > TraceConfigLimits::kMaxPatterns) std::abort();
    (void)l7tap::traceEntryMatches(entry, "/srv/app (deleted)");
  }
  return 0;
}
