// The config file (--config, `l7tap config check`): arbitrary bytes through
// yaml-cpp and every option's check, as attach and as replay. Never a crash
// or an exception; an error always names the file first.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/cli_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const char* command : {"attach", "replay"}) {
    std::string error;
    if (l7tap::checkConfigText(command, text, "f.yaml", error)) continue;
    // Every error names the file first (a value it echoes may hold a
    // newline the file quoted: that is the file's text, not the format).
    if (error.rfind("f.yaml", 0) != 0) std::abort();
  }
  return 0;
}
