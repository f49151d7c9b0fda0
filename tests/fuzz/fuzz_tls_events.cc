// The TLS uprobes' ring samples (uprobes/bpf/tls_abi.h) as TlsCapture reads
// them: decodeTlsEvent, then PlaintextStreams into a real Pipeline (data,
// close, exec, held events, reused conn ids, lost seqs, offsets behind and
// ahead, len > captured, tuples changing, idle expiry), with small limits so
// the fuzzer reaches them. Checks the streams keep within their bounds, and
// renders every record field by field so ASan sees each value.
//
// Input: samples separated by fuzz::kChunkMagic (fuzz_input.h), each the
// raw sample: a struct l7tap_tls_event header, then the captured bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "daemon/pipeline.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/record_check.h"
#include "uprobes/plaintext_streams.h"
#include "uprobes/tls_events.h"

namespace {

using namespace l7tap;

// Small enough that a few samples reach every bound.
PlaintextStreamLimits smallLimits() {
  PlaintextStreamLimits l;
  l.max_sessions = 4;
  l.max_held_bytes = 512;
  l.max_held_events = 3;
  l.idle_timeout_ns = 1'000'000'000;
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const PlaintextStreamLimits limits = smallLimits();
  fuzz::RenderingSink sink;
  Pipeline pipeline(sink);
  {
    PlaintextStreams streams(pipeline, 1'000'000'000, limits);
    uint64_t now = 0;
    fuzz::forEachChunk({data, size}, [&](uint8_t, std::span<const uint8_t> rest) {
      // forEachChunk splits off a control byte: this target has none, the
      // sample starts one byte before `rest`. The ring's samples are 8-byte
      // aligned: so is the copy.
      const size_t n = rest.size() + 1;
      std::vector<uint64_t> sample((n + 7) / 8);
      std::memcpy(sample.data(), rest.data() - 1, n);
      TlsEvent event;
      const TlsEventKind kind = decodeTlsEvent(sample.data(), n, event);
      switch (kind) {
        case TlsEventKind::kData:
        case TlsEventKind::kClose:
          if (event.data.size() > event.len) std::abort();
          streams.onEvent(kind, event);
          break;
        case TlsEventKind::kExec:
          streams.endProcess(event.tgid, event.ts_ns);
          break;
        case TlsEventKind::kMalformed:
        case TlsEventKind::kOtherKind:
          break;
      }
      // TlsCapture expires on its own clock; the newest event's time stands in.
      if (event.ts_ns > now) {
        now = event.ts_ns;
        streams.expire(now);
      }
      if (streams.heldBytes() > limits.max_held_bytes) std::abort();
      if (streams.sessionCount() > limits.max_sessions) std::abort();
    });
  }
  pipeline.finish();
  return 0;
}
