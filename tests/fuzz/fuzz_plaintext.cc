// The plaintext source (Pipeline::onPlaintext, what TLS uprobes will feed):
// ordered chunks of data, gaps and ends of two connections, through the
// same sessions and parsers as segments, every record rendered field by
// field so ASan sees each value.
//
// Input: chunks separated by fuzz::kChunkMagic (fuzz_input.h); a chunk's
// control byte: kChunkServer, kChunkGap (length in the next 2 bytes),
// kChunkEnd (RST with kChunkGap), and here also 0x08 the sender is known,
// 0x10 the source joined mid-stream, 0x20 the second connection.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/pipeline.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/record_check.h"

namespace {

using namespace l7tap;

enum : uint8_t { kSenderKnown = 0x08, kMidstream = 0x10, kSecond = 0x20 };

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::RenderingSink sink;
  Pipeline pipeline(sink);
  uint64_t ts = 1'000'000'000;
  fuzz::forEachChunk({data, size}, [&](uint8_t control, std::span<const uint8_t> bytes) {
    PlaintextChunk c;
    c.ts_ns = ts += 1000;
    c.ifindex = 1;
    const bool server = control & fuzz::kChunkServer;
    // Client 10.0.0.1 (port 40000 or 40001), server 10.0.0.2:443.
    uint8_t client[4] = {10, 0, 0, 1}, peer[4] = {10, 0, 0, 2};
    setIpv4(c.key.saddr, server ? peer : client);
    setIpv4(c.key.daddr, server ? client : peer);
    const uint16_t client_port = (control & kSecond) ? 40001 : 40000;
    c.key.sport = server ? 443 : client_port;
    c.key.dport = server ? client_port : 443;
    c.key.family = 4;
    if (control & kSenderKnown) {
      c.sender = server ? PlaintextChunk::Sender::kServer : PlaintextChunk::Sender::kClient;
    }
    c.midstream = control & kMidstream;
    if (control & fuzz::kChunkEnd) {
      c.kind = PlaintextChunk::Kind::kEnd;
      c.end = (control & fuzz::kChunkGap) ? EndKind::kRst : EndKind::kFin;
    } else if (control & fuzz::kChunkGap) {
      c.kind = PlaintextChunk::Kind::kGap;
      c.gap_length = bytes.size() >= 2 ? (bytes[0] | (bytes[1] << 8)) : 1;
    } else {
      c.kind = PlaintextChunk::Kind::kData;
      c.bytes = bytes;
    }
    pipeline.onPlaintext(c);
  });
  pipeline.finish();
  return 0;
}
