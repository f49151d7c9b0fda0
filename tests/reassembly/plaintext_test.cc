// Plaintext chunks (what TLS uprobes will deliver) through the same session
// path as TCP segments: the same HTTP records, gaps included, without the
// sequence-space reassembly.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/pipeline.h"

namespace l7tap {
namespace {

struct Records final : public RecordSink {
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    if (const auto* r = dynamic_cast<const HttpRecord*>(&record.inner())) {
      http.push_back(*r);
      http_conn_ids.push_back(conn.id);
    } else if (const auto* c = dynamic_cast<const ConnRecord*>(&record.inner())) {
      conns.push_back(conn);
      protocols.emplace_back(c->protocol);
    }
  }
  std::vector<HttpRecord> http;
  std::vector<uint64_t> http_conn_ids;
  std::vector<ConnectionInfo> conns;
  std::vector<std::string> protocols;
};

// Every field of a record, so two runs compare as a whole.
std::string describe(const HttpRecord& r) {
  std::ostringstream o;
  o << r.method << ' ' << r.path << " ?" << r.query << " host=" << r.host << " ua=" << r.user_agent
    << " ct=" << r.content_type << " v" << r.version << ' ' << r.status << '/' << r.interim_status
    << " stream=" << r.stream_id << " req=" << r.request_header_bytes << '+' << r.request_body_bytes
    << " resp=" << r.response_header_bytes << '+' << r.response_body_bytes
    << " t=" << r.request_start_ns << ',' << r.request_end_ns << ',' << r.response_start_ns << ','
    << r.response_end_ns << " rpc=" << r.rpc_service << '/' << r.rpc_method << '/' << r.grpc_status
    << " flags=" << r.flags;
  return o.str();
}

std::vector<std::string> describe(const std::vector<HttpRecord>& records) {
  std::vector<std::string> out;
  for (const HttpRecord& r : records) out.push_back(describe(r));
  return out;
}

// One side's bytes: `wire` on the wire, of which the first `seen` arrive (the
// rest is a gap of known length).
struct Step {
  bool from_client;
  std::string wire;
  size_t seen;
};

// Client 10.0.0.1:40000, server 10.0.0.2:8080.
l7tap_flow_key keyFrom(bool client) {
  l7tap_flow_key k{};
  k.family = 4;
  uint8_t c[4] = {10, 0, 0, 1}, s[4] = {10, 0, 0, 2};
  setIpv4(k.saddr, client ? c : s);
  setIpv4(k.daddr, client ? s : c);
  k.sport = client ? 40000 : 8080;
  k.dport = client ? 8080 : 40000;
  return k;
}

constexpr uint64_t kStart = 1'000'000'000;

// The steps as TCP segments: handshake, one segment per step (captured to
// `seen`, as a payload window cuts it), FIN from both.
void feedSegments(Pipeline& pipeline, const std::vector<Step>& steps) {
  uint32_t seq[2] = {1000, 5000};  // [0] client
  uint64_t ts = kStart;
  auto send = [&](bool client, uint8_t flags, const std::string& wire, size_t seen) {
    SegmentEvent e;
    e.ts_ns = ts += 1000;
    e.key = keyFrom(client);
    e.seq = seq[client ? 0 : 1];
    e.ack = seq[client ? 1 : 0];
    e.tcp_flags = flags;
    e.tcp_window = 65535;
    e.payload_len = static_cast<uint32_t>(wire.size());
    e.payload = {reinterpret_cast<const uint8_t*>(wire.data()), seen};
    pipeline.onSegment(e);
    seq[client ? 0 : 1] += static_cast<uint32_t>(wire.size()) + ((flags & L7TAP_TCP_SYN) ? 1 : 0) +
                           ((flags & L7TAP_TCP_FIN) ? 1 : 0);
  };
  send(true, L7TAP_TCP_SYN, "", 0);
  send(false, L7TAP_TCP_SYN | L7TAP_TCP_ACK, "", 0);
  for (const Step& s : steps) send(s.from_client, L7TAP_TCP_ACK, s.wire, s.seen);
  send(true, L7TAP_TCP_FIN | L7TAP_TCP_ACK, "", 0);
  send(false, L7TAP_TCP_FIN | L7TAP_TCP_ACK, "", 0);
}

// The same steps as plaintext chunks at the same times: bytes, then a gap for
// what was not seen; each side's end where its FIN was.
void feedChunks(Pipeline& pipeline, const std::vector<Step>& steps,
                PlaintextChunk::Sender client_flag = PlaintextChunk::Sender::kClient) {
  uint64_t ts = kStart + 2000;  // after the handshake's two segments
  auto chunk = [&](bool client, PlaintextChunk::Kind kind) {
    PlaintextChunk c;
    c.ts_ns = ts;
    c.key = keyFrom(client);
    c.kind = kind;
    if (client_flag != PlaintextChunk::Sender::kUnknown) {
      c.sender = client ? client_flag
                        : (client_flag == PlaintextChunk::Sender::kClient
                               ? PlaintextChunk::Sender::kServer
                               : PlaintextChunk::Sender::kClient);
    }
    return c;
  };
  for (const Step& s : steps) {
    ts += 1000;
    PlaintextChunk data = chunk(s.from_client, PlaintextChunk::Kind::kData);
    data.bytes = {reinterpret_cast<const uint8_t*>(s.wire.data()), s.seen};
    pipeline.onPlaintext(data);
    if (s.seen < s.wire.size()) {
      PlaintextChunk gap = chunk(s.from_client, PlaintextChunk::Kind::kGap);
      gap.gap_length = s.wire.size() - s.seen;
      pipeline.onPlaintext(gap);
    }
  }
  for (bool client : {true, false}) {
    ts += 1000;
    pipeline.onPlaintext(chunk(client, PlaintextChunk::Kind::kEnd));
  }
}

const std::string kBody(3000, 'x');
// Two exchanges on one connection; the second response loses most of its
// body, the second request part of its body.
const std::vector<Step> kExchanges = {
    {true, "GET /a?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n", SIZE_MAX},
    {false, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", SIZE_MAX},
    {true, "POST /b HTTP/1.1\r\nHost: example\r\nContent-Length: 3000\r\n\r\n" + kBody, 100},
    {false, "HTTP/1.1 201 Created\r\nContent-Length: 3000\r\n\r\n" + kBody, 60},
};

std::vector<Step> normalised(std::vector<Step> steps) {
  for (Step& s : steps) s.seen = std::min(s.seen, s.wire.size());
  return steps;
}

TEST(Plaintext, SameHttpRecordsAsTheSegmentPath) {
  const std::vector<Step> steps = normalised(kExchanges);
  Records by_segments, by_chunks;
  {
    Pipeline p(by_segments);
    feedSegments(p, steps);
    p.finish();
  }
  {
    Pipeline p(by_chunks);
    feedChunks(p, steps);
    p.finish();
    EXPECT_EQ(p.stats().flows.plaintext_chunks, 8u);
    uint64_t unseen = 0;
    for (const Step& s : steps) unseen += s.wire.size() - s.seen;
    EXPECT_EQ(p.stats().flows.plaintext_gap_bytes, unseen);
  }
  ASSERT_EQ(by_segments.http.size(), 2u);
  EXPECT_NE(by_segments.http[1].flags & kFlagGap, 0u);
  EXPECT_EQ(describe(by_chunks.http), describe(by_segments.http));
  // One connection record, from the plaintext's session, without L4
  // statistics: no segment was seen.
  ASSERT_EQ(by_chunks.conns.size(), 1u);
  EXPECT_EQ(by_chunks.protocols[0], "http/1");
  EXPECT_EQ(by_chunks.conns[0].close_reason, CloseReason::kFin);
  EXPECT_EQ(by_chunks.conns[0].stats[0].bytes, 0u);
  EXPECT_EQ(by_chunks.conns[0].port[index(by_chunks.conns[0].client_side)], 40000);
}

TEST(Plaintext, TheSourcesRolesWinOverThePorts) {
  // Both ports ephemeral and the server speaking first in a protocol that
  // does not tell roles: by the ports, the first sender would be the
  // client; the source knows it is the server.
  for (const auto sender : {PlaintextChunk::Sender::kUnknown, PlaintextChunk::Sender::kServer}) {
    Records records;
    Pipeline p(records);
    PlaintextChunk c;
    c.ts_ns = kStart;
    c.key = keyFrom(false);
    c.key.sport = 50000;
    c.sender = sender;
    const std::string banner = "\x01\x02 hello";
    c.bytes = {reinterpret_cast<const uint8_t*>(banner.data()), banner.size()};
    p.onPlaintext(c);
    p.finish();
    ASSERT_EQ(records.conns.size(), 1u);
    const ConnectionInfo& conn = records.conns[0];
    EXPECT_EQ(conn.port[index(conn.client_side)],
              sender == PlaintextChunk::Sender::kServer ? 40000 : 50000);
  }
}

TEST(Plaintext, ChunksBesideSegmentsKeepTheirOwnStreamOnOneConnection) {
  // As TLS will look: the segments carry ciphertext (here bytes no protocol
  // claims, so the segments' session counts only), the chunks the
  // plaintext. Each stream has its own observer; the connection has one
  // record, the plaintext session's (ConnectionInfo::has_plaintext).
  const std::vector<Step> steps = normalised(kExchanges);
  std::vector<Step> cipher;
  for (const Step& s : steps)
    cipher.push_back({s.from_client, std::string(s.wire.size(), '\x17'), s.wire.size()});
  Records records;
  Pipeline p(records);
  feedSegments(p, cipher);
  feedChunks(p, steps);
  p.finish();
  ASSERT_EQ(records.http.size(), 2u);
  ASSERT_EQ(records.conns.size(), 1u);
  // The plaintext's protocol, with the L4 statistics of the ciphertext.
  EXPECT_EQ(records.protocols, (std::vector<std::string>{"http/1"}));
  EXPECT_EQ(records.http_conn_ids[0], records.conns[0].id);
  size_t client_bytes = 0;
  for (const Step& s : steps) client_bytes += s.from_client ? s.wire.size() : 0;
  EXPECT_EQ(records.conns[0].stats[0].bytes, client_bytes);
  EXPECT_EQ(records.conns[0].stats[0].anomalies().missed_bytes, 0u);
  const PipelineStats stats = p.stats();
  EXPECT_EQ(stats.flows.connections_opened, 1u);
  EXPECT_EQ(stats.flows.plaintext_streams, 1u);
  const ProtocolTotals* http1 = stats.sessions.find("http/1");
  ASSERT_NE(http1, nullptr);
  EXPECT_EQ(http1->connections, 1u);
  EXPECT_EQ(http1->value("http1.exchanges"), 2u);
  EXPECT_FALSE(stats.capture.available);
}

TEST(Plaintext, ChunksAfterTheirSidesEndAreCountedAndDropped) {
  Records records;
  Pipeline p(records);
  feedChunks(p, normalised({kExchanges[0], kExchanges[1]}));
  PlaintextChunk late;
  late.ts_ns = kStart + 10'000;
  late.key = keyFrom(true);
  const std::string more = "GET /late HTTP/1.1\r\n\r\n";
  late.bytes = {reinterpret_cast<const uint8_t*>(more.data()), more.size()};
  p.onPlaintext(late);
  p.finish();
  EXPECT_EQ(records.http.size(), 1u);
  EXPECT_EQ(p.stats().flows.plaintext_late_chunks, 1u);
}

}  // namespace
}  // namespace l7tap
