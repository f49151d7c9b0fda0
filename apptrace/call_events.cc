#include "apptrace/call_events.h"

#include <cstring>

namespace l7tap {

static_assert(sizeof(l7tap_app_event) == 144, "ABI: app event size");

namespace {

// splitmix64's finaliser: the fields that name a call mixed into one word.
uint64_t mix(uint64_t h, uint64_t v) {
  uint64_t z = h + v + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t toWall(uint64_t mono_ns, int64_t mono_to_real_ns) {
  // A time the kernel did not set stays unset rather than becoming the offset.
  return mono_ns == 0 ? 0 : mono_ns + static_cast<uint64_t>(mono_to_real_ns);
}

}  // namespace

uint64_t CallEvent::callId() const {
  // The entry and the return of one call share these (tid is the entry's
  // in both); a Go call is keyed by its goroutine, the rest by thread.
  uint64_t h = mix(0, tgid);
  h = mix(h, g != 0 ? g : tid);
  h = mix(h, start_ns);
  h = mix(h, function);
  // 53 bits: the id is a JSON number, exact in every reader's double.
  return h & ((uint64_t{1} << 53) - 1);
}

bool decodeCallEvent(std::span<const uint8_t> sample, int64_t mono_to_real_ns, CallEvent& out) {
  if (sample.size() != sizeof(l7tap_app_event)) return false;
  // Copied, not cast: a sample's alignment is the ring's business.
  l7tap_app_event ev;
  std::memcpy(&ev, sample.data(), sizeof ev);
  if (ev.kind != L7TAP_APP_EVENT_CALL && ev.kind != L7TAP_APP_EVENT_ENTER) return false;
  out = CallEvent{};
  out.entry = ev.kind == L7TAP_APP_EVENT_ENTER;
  out.function = ev.function;
  out.flags = ev.flags;
  out.tgid = ev.tgid;
  out.tid = ev.tid;
  out.goid = ev.goid;
  out.g = ev.g;
  out.netns_ino = ev.netns_ino;
  out.start_ns = toWall(ev.start_ns, mono_to_real_ns);
  out.end_ns = out.entry ? 0 : toWall(ev.end_ns, mono_to_real_ns);
  out.io = ev.io;
  // A socket of another family is no socket: the record shows none.
  out.conn_known =
      (ev.flags & L7TAP_APP_F_CONN_KNOWN) != 0 && (ev.conn.family == 4 || ev.conn.family == 6);
  if (out.conn_known) {
    out.conn = ev.conn;
  } else {
    out.flags &= ~L7TAP_APP_F_CONN_KNOWN;
  }
  std::memcpy(out.comm, ev.comm, sizeof out.comm);
  out.comm[sizeof out.comm - 1] = '\0';
  return true;
}

}  // namespace l7tap
