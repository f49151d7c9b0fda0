// The record schema, written once: which fields a record has, in which order,
// under which OpenTelemetry-style names. Every sink (JSON lines, journald)
// renders the same visit, so the outputs cannot drift apart.
#pragma once

#include <cstdint>
#include <string_view>

#include "parsers/common/records.h"
#include "reassembly/connection_stats.h"
#include "reassembly/segment.h"

namespace l7tap {

/// Names of the HttpFlag bits, in bit order.
inline constexpr const char* kHttpFlagNames[] = {
    "gap",         "truncated",     "midstream", "reset",    "no_response", "no_request",
    "hpack_error", "hpack_unknown", "upgrade",   "overflow", "ambiguous",
};

/// The flags a record is written with: its own plus the connection's.
inline uint32_t effectiveFlags(const ConnectionInfo& conn, const HttpRecord& r) {
  return r.flags | (conn.midstream ? kFlagMidstream : 0u);
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC with nanoseconds.
/// `buf` needs 40 bytes; returns the length written.
size_t formatTime(uint64_t ts_ns, char* buf);

/// Visits an HTTP record's fields in schema order. `V` provides
/// str(name, string_view), num(name, uint64_t), inum(name, int64_t),
/// millis(name, nanoseconds), time(name, nanoseconds) and
/// flags(name, bits, names, count). Absent values are not visited.
template <class V>
void visitHttpRecord(const ConnectionInfo& c, const HttpRecord& r, V& v) {
  const Side client = c.client_side;
  const Side server = opposite(client);
  const uint64_t start = r.request_start_ns ? r.request_start_ns : r.response_start_ns;
  v.str("type", "http");
  if (start) v.time("time", start);
  v.num("l7tap.connection_id", c.id);
  if (c.ifindex) v.num("l7tap.ifindex", c.ifindex);
  v.str("network.protocol.name", "http");
  if (*r.version) v.str("network.protocol.version", r.version);
  if (!r.method.empty()) v.str("http.request.method", r.method);
  if (!r.path.empty()) v.str("url.path", r.path);
  if (!r.query.empty()) v.str("url.query", r.query);
  if (!r.host.empty()) v.str("http.request.header.host", r.host);
  if (!r.user_agent.empty()) v.str("user_agent.original", r.user_agent);
  if (r.status) v.num("http.response.status_code", static_cast<uint64_t>(r.status));
  if (r.interim_status)
    v.num("l7tap.http.interim_status_code", static_cast<uint64_t>(r.interim_status));
  v.addr("client.address", c.addr[index(client)].data(), c.family);
  v.num("client.port", c.port[index(client)]);
  v.addr("server.address", c.addr[index(server)].data(), c.family);
  v.num("server.port", c.port[index(server)]);
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
  v.flags("l7tap.flags", effectiveFlags(c, r), kHttpFlagNames, std::size(kHttpFlagNames));
}

/// Visits a connection record's fields in schema order (same contract).
template <class V>
void visitConnRecord(const ConnectionInfo& c, const ProtocolInfo& p, V& v) {
  const Side client = c.client_side;
  const Side server = opposite(client);
  const DirectionStats& cs = c.stats[index(client)];
  const DirectionStats& ss = c.stats[index(server)];
  v.str("type", "conn");
  v.time("time", c.first_ts_ns);
  v.num("l7tap.connection_id", c.id);
  if (c.ifindex) v.num("l7tap.ifindex", c.ifindex);
  v.str("network.transport", "tcp");
  v.str("network.type", c.family == 4 ? "ipv4" : "ipv6");
  v.addr("client.address", c.addr[index(client)].data(), c.family);
  v.num("client.port", c.port[index(client)]);
  v.addr("server.address", c.addr[index(server)].data(), c.family);
  v.num("server.port", c.port[index(server)]);
  v.str("l7tap.protocol", p.name);
  if (!p.tls_server_name.empty()) v.str("tls.client.server_name", p.tls_server_name);
  if (!p.tls_alpn.empty()) v.str("l7tap.tls.alpn_offered", p.tls_alpn);
  v.num("l7tap.conn.http_exchanges", p.exchanges);
  v.str("l7tap.conn.record", p.interim ? "interim" : "final");
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
        k ? k->retransmits[ci] : cs.retransmitted_segments);
  v.num("l7tap.conn.client.retransmitted_bytes", cs.retransmitted_bytes);
  v.num("l7tap.conn.server.retransmitted_segments",
        k ? k->retransmits[si] : ss.retransmitted_segments);
  v.num("l7tap.conn.server.retransmitted_bytes", ss.retransmitted_bytes);
  v.num("l7tap.conn.client.out_of_order_segments", cs.out_of_order_segments);
  v.num("l7tap.conn.server.out_of_order_segments", ss.out_of_order_segments);
  v.num("l7tap.conn.client.conflicting_overlap_bytes", cs.conflicting_overlap_bytes);
  v.num("l7tap.conn.server.conflicting_overlap_bytes", ss.conflicting_overlap_bytes);
  v.num("l7tap.conn.client.zero_window_events", k ? k->zero_windows[ci] : cs.zero_window_events);
  v.num("l7tap.conn.server.zero_window_events", k ? k->zero_windows[si] : ss.zero_window_events);
  v.num("l7tap.conn.client.missed_bytes", cs.missed_bytes);
  v.num("l7tap.conn.server.missed_bytes", ss.missed_bytes);
  // HPACK: only for HTTP/2 connections where a direction's dynamic table was
  // unknown at some point (joined mid-way, or bytes lost in a header block).
  if (p.hpack[0].losses || p.hpack[1].losses) {
    static constexpr const char* kNames[2][5] = {
        {"l7tap.http2.hpack.client.losses", "l7tap.http2.hpack.client.resumes",
         "l7tap.http2.hpack.client.table_at_end",
         "l7tap.http2.hpack.client.resumed_after_exchanges",
         "l7tap.http2.hpack.client.resumed_after_bytes"},
        {"l7tap.http2.hpack.server.losses", "l7tap.http2.hpack.server.resumes",
         "l7tap.http2.hpack.server.table_at_end",
         "l7tap.http2.hpack.server.resumed_after_exchanges",
         "l7tap.http2.hpack.server.resumed_after_bytes"}};
    for (int i = 0; i < 2; ++i) {
      const HpackSyncInfo& h = p.hpack[i];
      v.num(kNames[i][0], h.losses);
      v.num(kNames[i][1], h.resumes);
      v.str(kNames[i][2], h.synchronised ? "known" : "unknown");
      if (h.resumes) {
        v.num(kNames[i][3], h.resumed_after_exchanges);
        v.num(kNames[i][4], h.resumed_after_bytes);
      }
    }
  }
}

}  // namespace l7tap
