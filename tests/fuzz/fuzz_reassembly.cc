// The reassembler: both directions of a connection fed segments with
// arbitrary sequence and acknowledgement numbers, flags, lengths, captured
// prefixes and skipped prefixes, driven as FlowTable drives them.
//
// Every payload byte is a function of its sequence number (unless the input
// asks for conflicting copies), so the observer can check each delivered
// byte against the sequence number its stream offset maps to: bytes are
// delivered in order, once, at the right place, whatever the overlaps and
// holes. Also: nothing after a direction's end, no empty data or gap, and
// the out-of-order bounds hold.
//
// Input: mode (bit 0 small out-of-order bounds, bit 1 conflicting copies:
// no content check), the two directions' base sequence numbers (u32 each),
// then records of 13 bytes: control (see below), seq and ack relative to
// the bases (u32 each), payload length (u16, up to 4 KiB), captured and
// skipped shares of it (u8 each, in 255ths).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "reassembly/stream_reassembler.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using l7tap::Side;

// A record's control byte.
enum : uint8_t {
  kServer = 0x01,  // from the responder (else the originator)
  kSyn = 0x02,
  kRst = 0x04,
  kFin = 0x08,
  kAck = 0x10,
  kCloseAll = 0x80,  // end of input: flush both directions
};

uint8_t byteAt(uint32_t seq) { return static_cast<uint8_t>((seq * 2654435761u) >> 24); }

class Checker final : public l7tap::StreamObserver {
 public:
  const l7tap::StreamReassembler* dir[2] = {nullptr, nullptr};
  bool oracle = true;

  void onData(Side side, std::span<const uint8_t> bytes, uint64_t) override {
    const int s = l7tap::index(side);
    if (ended_[s] || bytes.empty()) std::abort();
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (oracle && bytes[i] != byteAt(dir[s]->seqAtOffset(offset_[s] + i))) std::abort();
    }
    offset_[s] += bytes.size();
  }
  void onGap(Side side, uint64_t length, uint64_t) override {
    const int s = l7tap::index(side);
    if (ended_[s] || length == 0) std::abort();
    offset_[s] += length;
  }
  void onEnd(Side side, l7tap::EndKind, uint64_t) override {
    const int s = l7tap::index(side);
    if (ended_[s]) std::abort();
    ended_[s] = true;
  }
  void onClose(const l7tap::ConnectionInfo&) override {}

 private:
  uint64_t offset_[2] = {0, 0};
  bool ended_[2] = {false, false};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l7tap::fuzz::Reader in(data, size);
  const uint8_t mode = in.u8();
  l7tap::ReassemblyLimits limits;
  if (mode & 0x01) {
    limits.max_out_of_order_bytes = 2048;
    limits.max_out_of_order_segments = 4;
  }
  const uint32_t base[2] = {in.u32(), in.u32()};
  l7tap::DirectionStats stats[2];
  l7tap::StreamReassembler dir[2] = {l7tap::StreamReassembler(Side::kOrig),
                                     l7tap::StreamReassembler(Side::kResp)};
  Checker out;
  out.dir[0] = &dir[0];
  out.dir[1] = &dir[1];
  out.oracle = !(mode & 0x02);
  const l7tap::StreamReassembler::Context cx[2] = {{limits, stats[0], out},
                                                   {limits, stats[1], out}};
  std::vector<uint8_t> payload;
  uint64_t ts = 0;
  for (int records = 0; !in.empty() && records < 256; ++records) {
    const uint8_t flags = in.u8();
    const int s = flags & kServer;
    const uint32_t seq = base[s] + in.u32();
    const uint32_t ack = base[1 - s] + in.u32();
    const uint32_t payload_len = in.u16() & 0x0fff;
    const uint32_t captured = payload_len * in.u8() / 255;
    const uint32_t skipped = payload_len * in.u8() / 255;
    ts += 1000;
    if (flags & kCloseAll) {  // end of input: what FlowTable::closeAll does
      dir[0].flush(ts, cx[0]);
      dir[1].flush(ts, cx[1]);
      continue;
    }
    const bool syn = flags & kSyn;
    if (syn) dir[s].onSyn(seq);
    if (flags & kAck) dir[1 - s].onPeerAck(ack, ts, cx[1 - s]);
    const uint32_t first = syn ? seq + 1 : seq;
    payload.resize(captured);
    for (uint32_t i = 0; i < captured; ++i) {
      payload[i] = byteAt(first + skipped + i) ^ ((mode & 0x02) ? flags : 0);
    }
    const uint32_t skip = skipped < payload_len ? skipped : payload_len;
    if (skip) dir[s].onSegment(first, skip, {}, false, ts, cx[s]);
    const uint32_t rest = payload_len - skip;
    dir[s].onSegment(first + skip, rest,
                     std::span<const uint8_t>(payload).first(captured < rest ? captured : rest),
                     (flags & kFin) != 0, ts, cx[s]);
    if (flags & kRst) {
      dir[s].reset(ts, cx[s]);
      dir[1 - s].reset(ts, cx[1 - s]);
    }
    for (const auto& d : dir) {
      if (d.bufferedBytes() > limits.max_out_of_order_bytes) std::abort();
    }
  }
  dir[0].flush(ts + 1, cx[0]);
  dir[1].flush(ts + 1, cx[1]);
  return 0;
}
