#include "parsers/common/records.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <iterator>

#include "parsers/common/http_method.h"
#include "parsers/common/utf8.h"

namespace l7tap {

bool appendBounded(std::string& dst, std::string_view src, size_t max) {
  if (dst.size() >= max) return src.empty();
  size_t room = max - dst.size();
  if (src.size() <= room) {
    dst.append(src);
    return true;
  }
  dst.append(src.substr(0, room));
  return false;
}

// ---------------------------------------------------------------------------
// Helpers every record kind may use.

namespace {

// Length of the valid UTF-8 sequence at s[i] that encodes a printable code
// point (not C1), or 0.
size_t printableUtf8Length(std::string_view s, size_t i) {
  uint32_t cp = 0;
  const size_t n = utf8SequenceLength(s, i, &cp);
  if (cp >= 0x80 && cp <= 0x9f) return 0;  // C1 controls: journalctl shows a blob
  return n;
}

void appendEndpoint(std::string& out, const uint8_t* addr16, uint8_t family, uint16_t port) {
  char buf[INET6_ADDRSTRLEN + 16];
  if (family == 4) {
    inet_ntop(AF_INET, addr16 + 12, buf, INET6_ADDRSTRLEN);
    out.append(buf);
  } else {
    inet_ntop(AF_INET6, addr16, buf, INET6_ADDRSTRLEN);
    out.push_back('[');
    out.append(buf);
    out.push_back(']');
  }
  out.append(buf, std::snprintf(buf, sizeof buf, ":%u", static_cast<unsigned>(port)));
}

}  // namespace

void appendPrintable(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    size_t n = 0;
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      n = 1;
    } else if (c >= 0x80) {
      n = printableUtf8Length(s, i);
    }
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
      ++i;
    }
  }
}

void appendPrintableBounded(std::string& out, std::string_view s, size_t& budget) {
  const bool cut = s.size() > budget;
  appendPrintable(out, s.substr(0, budget));
  budget -= std::min(budget, s.size());
  if (cut) out.append("...");
}

void appendClientServer(std::string& out, const ConnectionInfo& c) {
  const int client = index(c.client_side);
  const int server = index(opposite(c.client_side));
  appendEndpoint(out, c.addr[client].data(), c.family, c.port[client]);
  out.append(" -> ");
  appendEndpoint(out, c.addr[server].data(), c.family, c.port[server]);
}

void appendMillis(std::string& out, uint64_t ns) {
  const uint64_t tenths = ns / 100000 + (ns % 100000 >= 50000 ? 1 : 0);
  char buf[32];
  out.append(
      buf, std::snprintf(buf, sizeof buf, "%" PRIu64 ".%" PRIu64 " ms", tenths / 10, tenths % 10));
}

void appendBytes(std::string& out, uint64_t n) {
  char buf[32];
  if (n < 1024) {
    out.append(buf, std::snprintf(buf, sizeof buf, "%" PRIu64 " B", n));
    return;
  }
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n) / 1024;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  out.append(buf, std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]));
}

void visitConnectionId(const ConnectionInfo& c, FieldVisitor& v) {
  v.num("l7tap.connection_id", c.id);
  if (c.ifindex) v.num("l7tap.ifindex", c.ifindex);
}

void visitEndpoints(const ConnectionInfo& c, FieldVisitor& v) {
  const int client = index(c.client_side);
  const int server = index(opposite(c.client_side));
  v.addr("client.address", c.addr[client].data(), c.family);
  v.num("client.port", c.port[client]);
  v.addr("server.address", c.addr[server].data(), c.family);
  v.num("server.port", c.port[server]);
}

// ---------------------------------------------------------------------------
// HTTP exchange records.

namespace {

ExchangeL4 countersOf(const DirectionStats& s) {
  const DirectionAnomalies& d = s.anomalies();
  return {d.retransmitted_segments, d.retransmitted_bytes, d.zero_window_events,
          d.out_of_order_segments, d.conflicting_overlap_bytes};
}

// Counters only grow; saturating anyway, so that a mark from elsewhere (a
// record copied across connections in a test) cannot wrap.
uint64_t since(uint64_t now, uint64_t mark) { return now >= mark ? now - mark : 0; }

// Static field names, by role: no string is built per record.
struct ExchangeL4Names {
  std::string_view segments, bytes, zero_windows, out_of_order;
};
constexpr ExchangeL4Names kExchangeL4Names[2] = {
    {"l7tap.exchange.client.retransmitted_segments", "l7tap.exchange.client.retransmitted_bytes",
     "l7tap.exchange.client.zero_window_events", "l7tap.exchange.client.out_of_order_segments"},
    {"l7tap.exchange.server.retransmitted_segments", "l7tap.exchange.server.retransmitted_bytes",
     "l7tap.exchange.server.zero_window_events", "l7tap.exchange.server.out_of_order_segments"},
};

void visitExchangeL4(const ExchangeL4& e, int role, FieldVisitor& v) {
  const ExchangeL4Names& n = kExchangeL4Names[role];
  if (e.retransmitted_segments) v.num(n.segments, e.retransmitted_segments);
  if (e.retransmitted_bytes) v.num(n.bytes, e.retransmitted_bytes);
  if (e.zero_window_events) v.num(n.zero_windows, e.zero_window_events);
  if (e.out_of_order_segments) v.num(n.out_of_order, e.out_of_order_segments);
}

}  // namespace

void markExchangeL4(const ConnectionInfo* conn, ExchangeL4 (&by_role)[2]) {
  if (conn == nullptr) {
    by_role[kExchangeClient] = by_role[kExchangeServer] = ExchangeL4{};
    return;
  }
  by_role[kExchangeClient] = countersOf(conn->stats[index(conn->client_side)]);
  by_role[kExchangeServer] = countersOf(conn->stats[index(opposite(conn->client_side))]);
}

void HttpRecord::endL4(const ConnectionInfo* conn) {
  for (int role = 0; role < 2; ++role) {
    ExchangeL4& e = exchange_l4[role];
    if (conn == nullptr) {
      e = ExchangeL4{};
      continue;
    }
    const Side side = role == kExchangeClient ? conn->client_side : opposite(conn->client_side);
    const ExchangeL4 now = countersOf(conn->stats[index(side)]);
    e.retransmitted_segments = since(now.retransmitted_segments, e.retransmitted_segments);
    e.retransmitted_bytes = since(now.retransmitted_bytes, e.retransmitted_bytes);
    e.zero_window_events = since(now.zero_window_events, e.zero_window_events);
    e.out_of_order_segments = since(now.out_of_order_segments, e.out_of_order_segments);
    e.conflicting_overlap_bytes = since(now.conflicting_overlap_bytes, e.conflicting_overlap_bytes);
    if (e.conflicting_overlap_bytes != 0) flags |= kFlagAmbiguous;
  }
}

void HttpRecord::visit(const ConnectionInfo& c, FieldVisitor& v) const {
  const HttpRecord& r = *this;
  const uint64_t start = r.request_start_ns ? r.request_start_ns : r.response_start_ns;
  v.str("type", "http");
  if (start) v.time("time", start);
  visitConnectionId(c, v);
  v.str("network.protocol.name", "http");
  if (*r.version) v.str("network.protocol.version", r.version);
  if (!r.method.empty()) {
    v.str("http.request.method", httpMethodLabel(r.method));
    if (!isKnownHttpMethod(r.method)) v.str("http.request.method_original", r.method);
  }
  if (!r.path.empty()) v.str("url.path", r.path);
  if (!r.query.empty()) v.str("url.query", r.query);
  if (!r.host.empty()) v.str("http.request.header.host", r.host);
  if (!r.user_agent.empty()) v.str("user_agent.original", r.user_agent);
  if (r.status) v.num("http.response.status_code", static_cast<uint64_t>(r.status));
  if (r.interim_status)
    v.num("l7tap.http.interim_status_code", static_cast<uint64_t>(r.interim_status));
  visitEndpoints(c, v);
  v.str("network.type", c.family == 4 ? "ipv4" : "ipv6");
  if (r.stream_id) v.num("l7tap.http2.stream_id", r.stream_id);
  if (!r.rpc_service.empty() || !r.rpc_method.empty() || r.grpc_status >= 0) {
    v.str("rpc.system", "grpc");
    if (!r.rpc_service.empty()) v.str("rpc.service", r.rpc_service);
    if (!r.rpc_method.empty()) v.str("rpc.method", r.rpc_method);
    if (r.grpc_status >= 0) v.num("rpc.grpc.status_code", static_cast<uint64_t>(r.grpc_status));
  }
  v.num("l7tap.request.header_bytes", r.request_header_bytes);
  v.num("http.request.body.size", r.request_body_bytes);
  v.num("l7tap.response.header_bytes", r.response_header_bytes);
  v.num("http.response.body.size", r.response_body_bytes);
  if (r.request_start_ns) v.num("l7tap.timing.request_start_ns", r.request_start_ns);
  if (r.request_end_ns) v.num("l7tap.timing.request_end_ns", r.request_end_ns);
  if (r.response_start_ns) v.num("l7tap.timing.response_start_ns", r.response_start_ns);
  if (r.response_end_ns) v.num("l7tap.timing.response_end_ns", r.response_end_ns);
  if (r.request_start_ns && r.response_end_ns >= r.request_start_ns) {
    v.millis("l7tap.duration_ms", r.response_end_ns - r.request_start_ns);
  }
  visitExchangeL4(r.exchange_l4[kExchangeClient], kExchangeClient, v);
  visitExchangeL4(r.exchange_l4[kExchangeServer], kExchangeServer, v);
  v.flags("l7tap.flags", effectiveFlags(c), kHttpFlagNames, std::size(kHttpFlagNames));
}

void HttpRecord::appendMessage(std::string& out, const ConnectionInfo& conn) const {
  const HttpRecord& r = *this;
  if (r.method.empty()) {
    out.push_back('-');
  } else {
    size_t budget = kMaxMessageMethod;
    appendPrintableBounded(out, r.method, budget);
  }
  out.push_back(' ');
  if (r.path.empty() && r.query.empty()) {
    out.push_back('-');
  } else {
    size_t budget = kMaxMessageTarget;
    const bool path_cut = r.path.size() > budget;
    appendPrintableBounded(out, r.path, budget);
    if (!r.query.empty() && !path_cut) {
      if (budget == 0) {
        out.append("...");
      } else {
        out.push_back('?');
        --budget;
        appendPrintableBounded(out, r.query, budget);
      }
    }
  }
  out.append(" -> ");
  if (r.status) {
    char buf[16];
    out.append(buf, std::snprintf(buf, sizeof buf, "%d", r.status));
  } else {
    out.append("no response");
  }
  out.push_back(' ');
  if (r.request_start_ns && r.response_end_ns >= r.request_start_ns) {
    appendMillis(out, r.response_end_ns - r.request_start_ns);
  } else {
    out.push_back('-');
  }
  out.push_back(' ');
  appendClientServer(out, conn);
  const uint32_t bits = effectiveFlags(conn);
  if (bits) {
    out.append(" [");
    bool first = true;
    for (size_t i = 0; i < std::size(kHttpFlagNames); ++i) {
      if (!(bits & (1u << i))) continue;
      if (!first) out.push_back(',');
      first = false;
      out.append(kHttpFlagNames[i]);
    }
    out.push_back(']');
  }
}

int HttpRecord::priority() const {
  if (status >= 500) return 4;  // LOG_WARNING
  if (status >= 400) return 5;  // LOG_NOTICE
  return 6;                     // LOG_INFO
}

// ---------------------------------------------------------------------------
// Connection records.

void ConnRecord::visit(const ConnectionInfo& c, FieldVisitor& v) const {
  const Side client = c.client_side;
  const Side server = opposite(client);
  const DirectionStats& cs = c.stats[index(client)];
  const DirectionStats& ss = c.stats[index(server)];
  v.str("type", "conn");
  v.time("time", c.first_ts_ns);
  visitConnectionId(c, v);
  v.str("network.transport", "tcp");
  v.str("network.type", c.family == 4 ? "ipv4" : "ipv6");
  visitEndpoints(c, v);
  // The encapsulation its packets came in: the outer addresses by role.
  if (const ConnectionTunnel* t = c.tunnel.get()) {
    if (const char* name = tunnelTypeName(t->type)) {
      v.str("l7tap.tunnel.type", name);
      if (t->has_id) v.num("l7tap.tunnel.id", t->id);
      if (t->outer_family != 0) {
        v.addr("l7tap.tunnel.client.address", t->outer_addr[index(client)].data(), t->outer_family);
        v.addr("l7tap.tunnel.server.address", t->outer_addr[index(server)].data(), t->outer_family);
      }
    }
  }
  v.str("l7tap.protocol", protocol);
  if (facts) facts->visitIdentity(v);
  v.num("l7tap.conn.http_exchanges", exchanges);
  v.str("l7tap.conn.record", interim ? "interim" : "final");
  v.str("l7tap.conn.state", c.state());
  v.str("l7tap.conn.history", c.history);
  v.str("l7tap.conn.close_reason", toString(c.close_reason));
  v.str("l7tap.conn.roles", c.roles_from_protocol    ? "protocol"
                            : c.roles_from_handshake ? "handshake"
                                                     : "guess");
  v.millis("l7tap.conn.duration_ms", c.last_ts_ns - c.first_ts_ns);
  if (c.handshake_rtt_ns) v.millis("l7tap.conn.handshake_rtt_ms", c.handshake_rtt_ns);
  // Packets, bytes, retransmitted segments and zero windows come from the
  // kernel program's flow entry when a live source read it (it saw every
  // packet, also those whose events were lost); else from the capture.
  const ConnectionInfo::KernelCounts* k = c.kernel;
  const int ci = index(client), si = index(server);
  v.str("l7tap.conn.counted_by", k ? "kernel" : "capture");
  v.num("l7tap.conn.client.packets", k ? k->packets[ci] : cs.packets);
  v.num("l7tap.conn.client.bytes", k ? k->bytes[ci] : cs.bytes);
  v.num("l7tap.conn.server.packets", k ? k->packets[si] : ss.packets);
  v.num("l7tap.conn.server.bytes", k ? k->bytes[si] : ss.bytes);
  v.num("l7tap.conn.client.retransmitted_segments",
        k ? k->retransmits[ci] : cs.anomalies().retransmitted_segments);
  v.num("l7tap.conn.client.retransmitted_bytes", cs.anomalies().retransmitted_bytes);
  v.num("l7tap.conn.server.retransmitted_segments",
        k ? k->retransmits[si] : ss.anomalies().retransmitted_segments);
  v.num("l7tap.conn.server.retransmitted_bytes", ss.anomalies().retransmitted_bytes);
  v.num("l7tap.conn.client.out_of_order_segments", cs.anomalies().out_of_order_segments);
  v.num("l7tap.conn.server.out_of_order_segments", ss.anomalies().out_of_order_segments);
  v.num("l7tap.conn.client.conflicting_overlap_bytes", cs.anomalies().conflicting_overlap_bytes);
  v.num("l7tap.conn.server.conflicting_overlap_bytes", ss.anomalies().conflicting_overlap_bytes);
  v.num("l7tap.conn.client.zero_window_events",
        k ? k->zero_windows[ci] : cs.anomalies().zero_window_events);
  v.num("l7tap.conn.server.zero_window_events",
        k ? k->zero_windows[si] : ss.anomalies().zero_window_events);
  v.num("l7tap.conn.client.missed_bytes", cs.anomalies().missed_bytes);
  v.num("l7tap.conn.server.missed_bytes", ss.anomalies().missed_bytes);
  if (facts) facts->visitState(interim, v);
}

void ConnRecord::appendMessage(std::string& out, const ConnectionInfo& conn) const {
  out.append("conn ");
  appendClientServer(out, conn);
  out.push_back(' ');
  out.append(protocol);
  out.push_back(' ');
  out.append(conn.state());
  char buf[48];
  out.append(buf, std::snprintf(buf, sizeof buf, " %" PRIu64 " %s ", exchanges,
                                exchanges == 1 ? "exchange" : "exchanges"));
  appendMillis(out, conn.last_ts_ns >= conn.first_ts_ns ? conn.last_ts_ns - conn.first_ts_ns : 0);
  if (interim) out.append(" interim");
}

void HttpRecord::redact(const RedactionPolicy& policy, size_t max_query) {
  bool changed = false;
  const QueryRedaction q = redactQuery(query, policy, max_query);
  changed |= q.changed;
  if (q.truncated) flags |= kFlagTruncated;
  changed |= stripAuthorityUserinfo(host);
  // CONNECT's target is an authority, unless it is an HTTP/2 extended
  // CONNECT (RFC 8441), whose :path is a path like any other.
  const bool authority = method == "CONNECT" && !path.starts_with('/');
  changed |= authority ? stripAuthorityUserinfo(path) : stripTargetUserinfo(path);
  // Patterns leave an authority alone, but what remains of one after its
  // user info may read as a path (`u@/a`): it is treated as the next call
  // would, so that redacting twice changes nothing.
  if (!policy.path_patterns.empty()) {
    const PathRedaction p = policy.pathRedactor().redact(path, max_query);
    changed |= p.changed;
    if (p.truncated) flags |= kFlagTruncated;
  }
  if (changed) flags |= kFlagRedacted;
}

}  // namespace l7tap
