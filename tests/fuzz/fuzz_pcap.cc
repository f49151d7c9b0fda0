// Whole capture files through the replay pipeline, as `l7tap replay` runs
// them: libpcap reads the file (pcap or pcapng), the packet decoder, the
// capture policy, reassembly, the sessions and parsers, and the JSON sink.
// Each input is replayed twice: as `l7tap replay` and as
// `l7tap replay --window 256 --capture-control`.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "daemon/json_sink.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

void replay(const std::string& path, int out, uint32_t window, bool control) {
  l7tap::PcapSource source;
  std::string error;
  if (!source.open(path, error)) return;
  l7tap::JsonLinesSink sink(out, l7tap::JsonLinesSink::Flush::kBuffered);
  l7tap::Pipeline pipeline(sink);
  l7tap::Replay replay(pipeline, {window, control});
  (void)replay.run(source, error);
  pipeline.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Records go nowhere; writing them still runs the JSON escaping.
  static const int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
  const l7tap::fuzz::InputFile file("l7tap-fuzz-pcap", data, size);
  const std::string path = file.path();
  if (path.empty() || out < 0) return 0;
  replay(path, out, 0, false);
  replay(path, out, 256, true);
  return 0;
}
