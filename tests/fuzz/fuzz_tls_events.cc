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
#include "uprobes/plaintext_streams.h"
#include "uprobes/tls_events.h"

namespace {

using namespace l7tap;

class RenderingSink final : public RecordSink, private FieldVisitor {
 public:
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    record.visit(conn, *this);
    std::string message;
    record.appendMessage(message, conn);
    sum_ += message.size() + static_cast<size_t>(record.priority());
  }

 private:
  void str(std::string_view, std::string_view value) override {
    for (char c : value) sum_ += static_cast<unsigned char>(c);
  }
  void num(std::string_view, uint64_t value) override { sum_ += value; }
  void inum(std::string_view, int64_t value) override { sum_ += static_cast<uint64_t>(value); }
  void millis(std::string_view, uint64_t ns) override { sum_ += ns; }
  void time(std::string_view, uint64_t ns) override { sum_ += ns; }
  void addr(std::string_view, const uint8_t* addr16, uint8_t) override {
    for (int i = 0; i < 16; ++i) sum_ += addr16[i];
  }
  void flags(std::string_view, uint32_t bits, const char* const*, size_t) override { sum_ += bits; }

  size_t sum_ = 0;
};

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
  RenderingSink sink;
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
