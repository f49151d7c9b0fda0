#include "apptrace/call_record.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>

namespace l7tap {

namespace {

// l7tap.app.flags: the event's flags from L7TAP_APP_F_CONN_BEFORE on (the
// first bit, CONN_KNOWN, shows as the socket's fields instead).
constexpr const char* kCallFlagNames[] = {"conn_before", "multi_conn", "exemplar", "nested"};
constexpr unsigned kCallFlagShift = 1;
static_assert(L7TAP_APP_F_CONN_BEFORE == 1u << kCallFlagShift &&
                  L7TAP_APP_F_NESTED == 1u << (kCallFlagShift + std::size(kCallFlagNames) - 1),
              "kCallFlagNames follows the L7TAP_APP_F_* bits");

uint32_t shownFlags(const CallEvent& call) { return call.flags >> kCallFlagShift; }

std::string_view commOf(const CallEvent& call) {
  return {call.comm, strnlen(call.comm, sizeof call.comm)};
}

void appendNum(std::string& out, const char* prefix, uint64_t n) {
  char buf[48];
  out.append(buf, std::snprintf(buf, sizeof buf, "%s%" PRIu64, prefix, n));
}

}  // namespace

void CallRecord::visit(const ConnectionInfo& conn, FieldVisitor& v) const {
  const CallEvent& c = *call;
  v.str("type", "app_call");
  if (c.start_ns) v.time("time", c.start_ns);
  v.num("l7tap.app.call_id", c.callId());
  v.str("l7tap.app.function", function);
  v.millis("l7tap.app.duration_ms", c.durationNs());
  v.num("process.pid", c.tgid);
  // A goroutine moves between threads: its id names it, the thread does not.
  if (c.g == 0) {
    v.num("thread.id", c.tid);
  } else if (c.goid != 0) {
    v.num("l7tap.app.goroutine", c.goid);
  }
  if (const std::string_view comm = commOf(c); !comm.empty()) v.str("process.name", comm);
  // Always written: a handler that did no I/O of its own is worth knowing.
  v.num("l7tap.app.io.bytes_sent", c.io.bytes_sent);
  v.num("l7tap.app.io.bytes_received", c.io.bytes_received);
  v.millis("l7tap.app.io.send_ms", c.io.send_ns);
  v.millis("l7tap.app.io.recv_ms", c.io.recv_ns);
  v.num("l7tap.app.io.sends", c.io.sends);
  v.num("l7tap.app.io.receives", c.io.receives);
  if (!exchange_id.empty()) {
    visitConnectionId(conn, v);
    v.str("l7tap.exchange_id", exchange_id);
    visitEndpoints(conn, v);
  } else if (c.conn_known) {
    // Roles are the exchange's to say: unlinked, only which end is ours.
    v.addr("network.local.address", c.conn.saddr, c.conn.family);
    v.num("network.local.port", c.conn.sport);
    v.addr("network.peer.address", c.conn.daddr, c.conn.family);
    v.num("network.peer.port", c.conn.dport);
  }
  v.flags("l7tap.app.flags", shownFlags(c), kCallFlagNames, std::size(kCallFlagNames));
}

void CallRecord::appendMessage(std::string& out, const ConnectionInfo& conn) const {
  const CallEvent& c = *call;
  out.append("call ");
  appendPrintable(out, function);
  out.push_back(' ');
  appendMillis(out, c.durationNs());
  appendNum(out, " pid ", c.tgid);
  if (c.g == 0) {
    appendNum(out, " tid ", c.tid);
  } else if (c.goid != 0) {
    appendNum(out, " goroutine ", c.goid);
  }
  if (c.io.bytes_sent) {
    out.append(", sent ");
    appendBytes(out, c.io.bytes_sent);
    out.append(" in ");
    appendMillis(out, c.io.send_ns);
  }
  if (c.io.bytes_received) {
    out.append(", received ");
    appendBytes(out, c.io.bytes_received);
    out.append(" in ");
    appendMillis(out, c.io.recv_ns);
  }
  if (!exchange_id.empty()) {
    out.append(" -> exchange ");
    appendPrintable(out, exchange_id);
  } else if (c.conn_known) {
    out.append(" on ");
    appendClientServer(out, conn);
  }
  if (const uint32_t bits = shownFlags(c)) {
    out.append(" [");
    bool first = true;
    for (size_t i = 0; i < std::size(kCallFlagNames); ++i) {
      if (!(bits & (1u << i))) continue;
      if (!first) out.push_back(',');
      first = false;
      out.append(kCallFlagNames[i]);
    }
    out.push_back(']');
  }
}

ConnectionInfo callConnection(const CallEvent& call) {
  ConnectionInfo c;
  c.first_ts_ns = call.start_ns;
  c.last_ts_ns = call.end_ns > call.start_ns ? call.end_ns : call.start_ns;
  if (!call.conn_known) return c;
  const int local = index(Side::kOrig), peer = index(Side::kResp);
  c.family = call.conn.family;
  std::memcpy(c.addr[local].data(), call.conn.saddr, 16);
  std::memcpy(c.addr[peer].data(), call.conn.daddr, 16);
  c.port[local] = call.conn.sport;
  c.port[peer] = call.conn.dport;
  c.client_side = Side::kOrig;
  return c;
}

void visitCallOnExchange(const CallEvent& call, std::string_view function, uint64_t response_end_ns,
                         FieldVisitor& v) {
  v.num("l7tap.app.call_id", call.callId());
  v.str("l7tap.app.function", function);
  v.millis("l7tap.app.duration_ms", call.durationNs());
  v.num("l7tap.app.pid", call.tgid);
  if (call.g == 0) {
    v.num("l7tap.app.tid", call.tid);
  } else if (call.goid != 0) {
    v.num("l7tap.app.goroutine", call.goid);
  }
  v.num("l7tap.app.io.bytes_sent", call.io.bytes_sent);
  v.num("l7tap.app.io.bytes_received", call.io.bytes_received);
  v.millis("l7tap.app.io.send_ms", call.io.send_ns);
  v.millis("l7tap.app.io.recv_ms", call.io.recv_ns);
  v.millis("l7tap.app.after_return_ms",
           response_end_ns > call.end_ns && call.end_ns != 0 ? response_end_ns - call.end_ns : 0);
}

}  // namespace l7tap
