// What l7tap reads, as root, from the executables of a node's containers
// (attacker-controlled files): analyseGoBinary and isGoExecutable (libelf,
// Capstone, libdw) and the TLS file classification (elfDefinesSymbol,
// classifyTlsFile) on arbitrary bytes. Checks, on success, that every probe
// offset is within the file and that no function has more RETs than the
// limit.
//
// Input: the file's bytes, written to a memfd and opened through
// /proc/self/fd/N, as the daemon opens /proc/PID/root/...
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_input.h"
#include "uprobes/go_binary.h"
#include "uprobes/library_discovery.h"

namespace {

using namespace l7tap;

void checkFunction(const GoTlsTarget::Function& f, size_t size) {
  if (f.entry_offset >= size) std::abort();
  if (f.return_offsets.size() > GoBinaryLimits::kMaxReturns) std::abort();
  for (uint64_t off : f.return_offsets) {
    if (off >= size) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::InputFile input("fuzz_go_binary", data, size);
  const std::string path = input.path();
  if (path.empty()) return 0;

  GoTlsTarget target;
  std::string error;
  if (analyseGoBinary(path, target, error)) {
    checkFunction(target.write, size);
    checkFunction(target.read, size);
    if (target.close.entry_offset >= size) std::abort();
  } else if (error.empty()) {
    std::abort();  // a failure always says why
  }
  (void)isGoExecutable(path);
  (void)elfDefinesSymbol(path, "SSL_write");
  MappedFile file;
  file.mapped_path = "/usr/bin/app";
  file.open_path = path;
  file.executable = true;
  std::string why;
  if (classifyTlsFile(file, why) == TlsFileKind::kNotTls && why.empty()) std::abort();
  return 0;
}
