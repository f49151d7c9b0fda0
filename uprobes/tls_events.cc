#include "uprobes/tls_events.h"

#include <cstring>

namespace l7tap {

static_assert(sizeof(l7tap_tls_event) == L7TAP_TLS_EVENT_HEADER_SIZE + L7TAP_TLS_MAX_CHUNK,
              "ABI: TLS event size");
static_assert(offsetof(l7tap_tls_event, data) == L7TAP_TLS_EVENT_HEADER_SIZE,
              "ABI: TLS event header");

TlsEventKind decodeTlsEvent(const void* sample, size_t size, TlsEvent& out) {
  // The sample ends right after the captured bytes: never read past them.
  if (size < L7TAP_TLS_EVENT_HEADER_SIZE) return TlsEventKind::kMalformed;
  const auto* ev = static_cast<const l7tap_tls_event*>(sample);
  TlsEventKind kind;
  switch (ev->kind) {
    case L7TAP_TLS_EVENT_DATA:
      kind = TlsEventKind::kData;
      break;
    case L7TAP_TLS_EVENT_CLOSE:
      kind = TlsEventKind::kClose;
      break;
    case L7TAP_TLS_EVENT_EXEC:
      kind = TlsEventKind::kExec;
      break;
    default:
      return TlsEventKind::kOtherKind;
  }
  if (ev->captured > L7TAP_TLS_MAX_CHUNK || ev->captured > ev->len ||
      size < L7TAP_TLS_EVENT_HEADER_SIZE + ev->captured ||
      (ev->direction != L7TAP_TLS_WRITE && ev->direction != L7TAP_TLS_READ)) {
    return TlsEventKind::kMalformed;
  }
  out.ts_ns = ev->ts_ns;
  out.conn_id = ev->conn_id;
  out.stream_offset = ev->stream_offset;
  out.seq = ev->seq;
  out.tgid = ev->tgid;
  out.tid = ev->tid;
  out.len = ev->len;
  out.fd = ev->fd;
  out.netns_ino = ev->netns_ino;
  out.direction = ev->direction;
  out.library = ev->library;
  out.role = ev->role;
  out.tuple_known = ev->tuple_known != 0;
  out.key = ev->key;
  out.comm = {ev->comm, strnlen(ev->comm, sizeof ev->comm)};
  out.data = {ev->data, ev->captured};
  return kind;
}

}  // namespace l7tap
