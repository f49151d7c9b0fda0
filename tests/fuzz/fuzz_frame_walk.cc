// The HTTP/2 frame-walk policy (tc/frame_walk.h) driven as the BPF program
// and CapturePolicy drive it, on segments cut from one byte stream at
// arbitrary offsets and lengths (holes, overlaps, retransmissions, re-arms),
// with arbitrary frame headers in the stream.
//
// Checked for every segment: the header loads stay inside the payload (the
// payload is a heap block of exactly its size, so ASan sees any read past
// it), the events cover the payload contiguously from 0 to its end, no event
// copies more than L7TAP_MAX_EVENT_PAYLOAD, the step bound ends every walk;
// and, where the walk follows the frames from the armed boundary, every byte
// that a plain reference loop over the frame headers says must be copied
// (frame headers, whole control frames, DATA prefixes) is copied.
//
// Input: window (u16, 0: unlimited), arm offset (u16), base sequence number
// (u32), record count (u8), records of 5 bytes (control: bit 0 re-arm at
// this record's offset, bit 1 let the capture arm itself on this segment
// as on a first payload; offset u16; length u16), then the stream bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "tc/frame_walk.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

// Which stream bytes the walk must copy when armed at `from`: written from
// the policy's description, not from frame_walk.h.
std::vector<bool> mustCopy(std::span<const uint8_t> stream, size_t from) {
  std::vector<bool> must(stream.size(), false);
  size_t p = from;
  while (p < stream.size()) {
    if (p + 5 > stream.size()) {  // a header cut by the stream's end: its bytes
      for (size_t i = p; i < stream.size(); ++i) must[i] = true;
      break;
    }
    const uint32_t len =
        (uint32_t{stream[p]} << 16) | (uint32_t{stream[p + 1]} << 8) | stream[p + 2];
    const uint8_t type = stream[p + 3];
    const uint8_t flags = stream[p + 4];
    uint64_t copy = 9;
    if (type == 0x0) {
      const uint32_t prefix = (flags & 0x8) ? 6 : 5;
      copy += len < prefix ? len : prefix;
    } else if (type <= 0x9) {
      copy += len;
    }
    for (uint64_t i = p; i < p + copy && i < stream.size(); ++i) must[i] = true;
    p += 9 + static_cast<uint64_t>(len);
  }
  return must;
}

struct Event {
  uint32_t off, skip, copy, rest;
  bool last;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l7tap::fuzz::Reader in(data, size);
  const uint32_t window = in.u16();
  uint32_t arm = in.u16();
  const uint32_t base = in.u32();
  const int records = in.u8() % 65;
  struct Record {
    uint8_t control;
    uint16_t start, len;
  };
  std::vector<Record> recs;
  for (int i = 0; i < records; ++i) recs.push_back({in.u8(), in.u16(), in.u16()});
  const std::span<const uint8_t> stream = in.rest();

  l7tap_frame_walk w{};
  w.state = L7TAP_WALK_ARMED;
  w.next_hdr = base + arm;
  std::vector<bool> must = mustCopy(stream, arm);
  std::vector<Event> events;
  for (const Record& r : recs) {
    if (r.control & 0x01) {  // the daemon re-arms at a boundary it knows
      w = l7tap_frame_walk{};
      w.state = L7TAP_WALK_ARMED;
      w.next_hdr = base + r.start;
      arm = r.start;
      must = mustCopy(stream, arm);
    }
    if (r.start > stream.size()) continue;
    const uint32_t n =
        static_cast<uint32_t>(r.len < stream.size() - r.start ? r.len : stream.size() - r.start);
    // Exactly n bytes on the heap: a read past them is an ASan report.
    std::unique_ptr<uint8_t[]> payload(new uint8_t[n ? n : 1]);
    for (uint32_t i = 0; i < n; ++i) payload[i] = stream[r.start + i];
    const uint32_t seq = base + r.start;
    // The capture's own arming on a first payload that starts HTTP/2.
    if ((r.control & 0x02) && n >= L7TAP_H2_FRAME_HEADER) {
      const uint32_t look =
          n >= L7TAP_H2_PREFACE_LEN ? L7TAP_H2_PREFACE_LEN : L7TAP_H2_FRAME_HEADER;
      if (l7tap_walk_arm_first(payload.get(), look, seq, &w)) {
        arm = w.next_hdr - base;
        must = mustCopy(stream, arm);
      }
    }

    // Bytes from here on are new to the walk (earlier ones were walked).
    const uint8_t state_before = w.state;
    const uint32_t armed_at = w.next_hdr;
    const uint32_t new_from = (state_before == L7TAP_WALK_ARMED ? w.next_hdr : w.pos) - base;
    l7tap_walk_cursor c{};
    if (!l7tap_walk_begin(&w, seq, n, window, &c)) continue;  // the plain window applies
    events.clear();
    bool aborted = true;
    for (int i = 0; i < L7TAP_WALK_MAX_STEPS; ++i) {
      const int step = l7tap_walk_next(&w, &c);
      if (step == L7TAP_WALK_DONE) {
        aborted = false;
        break;
      }
      if (step == L7TAP_WALK_HEADER) {
        if (c.hdr_need == 0 || c.hdr_need > L7TAP_WALK_HEADER_BYTES || c.off + c.hdr_need > n) {
          std::abort();
        }
        l7tap_walk_header(&w, &c, payload.get() + c.off);
      } else if (step == L7TAP_WALK_EVENT) {
        events.push_back({c.ev_off, c.ev_skip, c.ev_copy, c.ev_rest, c.ev_last != 0});
      } else if (step != L7TAP_WALK_AGAIN) {
        std::abort();
      }
    }
    if (aborted) {
      if (l7tap_walk_abort(&w, &c) != L7TAP_WALK_EVENT) std::abort();
      events.push_back({c.ev_off, c.ev_skip, c.ev_copy, c.ev_rest, true});
    }
    if (w.hdr_len >= L7TAP_WALK_HEADER_BYTES) std::abort();

    // The events cover [0, n) contiguously; only the last says so.
    uint32_t covered = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      const Event& e = events[i];
      // Events the walk builds fit an event; only the plain window before an
      // armed boundary can be wider (replay: unlimited, or --window > 4096),
      // and then the event holds that part alone.
      uint32_t max_copy = L7TAP_MAX_EVENT_PAYLOAD;
      if (i == 0 && state_before == L7TAP_WALK_ARMED) {
        const uint32_t before = armed_at - seq;
        const uint32_t plain = l7tap_window_capture_len(before, window);
        if (plain > max_copy && before < n) max_copy = plain;
      }
      if (e.off != covered || e.copy > max_copy) std::abort();
      if (e.last != (i + 1 == events.size())) std::abort();
      covered += e.skip + e.copy + e.rest;
      if (covered > n) std::abort();
    }
    if (covered != n) std::abort();

    // Following the frames from the boundary: the reference's bytes are copied.
    const bool following = (state_before == L7TAP_WALK_ARMED || state_before == L7TAP_WALK_ON) &&
                           !c.whole && !c.lost && !aborted;
    if (!following || new_from >= 0x80000000u) continue;
    for (const Event& e : events) {
      for (uint32_t i = e.off; i < e.off + e.skip + e.copy + e.rest; ++i) {
        const uint32_t o = r.start + i;
        const bool copied = i >= e.off + e.skip && i < e.off + e.skip + e.copy;
        if (o >= arm && o >= new_from && must[o] && !copied) std::abort();
      }
    }
  }
  return 0;
}
