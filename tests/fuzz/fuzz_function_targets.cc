// What `l7tap trace` and `attach --trace-config` read, as root, from the
// executables they are pointed at (attacker-controlled in a container):
// resolveFunctions (libelf symbols, Go build info, Capstone, libdw) and
// resolveUsdt (.note.stapsdt) on arbitrary bytes. Checks, on success, that
// every probe offset is within the file, the bounds hold, and that a
// failure always says why on one line.
//
// Input: the file's bytes, written to a memfd and opened through
// /proc/self/fd/N, as the daemon opens /proc/PID/root/...
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "apptrace/function_targets.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using namespace l7tap;

void checkError(const std::string& error) {
  if (error.empty() || error.find('\n') != std::string::npos) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::InputFile input("fuzz_function_targets", data, size);
  const std::string path = input.path();
  if (path.empty()) return 0;

  std::string error;
  for (const char* pattern : {"main.handle*", "crypto/tls.(*Conn).Write", "handle_?et", "*"}) {
    std::vector<FunctionTarget> targets;
    if (!resolveFunctions(path, {pattern}, targets, error)) {
      checkError(error);
      if (!targets.empty()) std::abort();
      continue;
    }
    for (const FunctionTarget& t : targets) {
      if (t.entry_offset >= size || t.name.empty()) std::abort();
      if (t.return_offsets.size() > FunctionTargetLimits::kMaxReturns) std::abort();
      for (uint64_t off : t.return_offsets) {
        if (off >= size) std::abort();
      }
      if ((t.kind == FunctionTarget::Kind::kGo) == t.return_offsets.empty()) std::abort();
    }
  }
  for (const char* spec : {"l7tapt:request", "l7tapt:work_begin:work_finish"}) {
    FunctionTarget usdt;
    if (resolveUsdt(path, spec, usdt, error)) {
      if (usdt.kind != FunctionTarget::Kind::kUsdt || usdt.usdt_start.empty() ||
          usdt.usdt_end.empty()) {
        std::abort();
      }
    } else {
      checkError(error);
    }
  }
  return 0;
}
