// TLS uprobe events (built as the BPF programs write them) through
// PlaintextStreams into a real Pipeline: the same HTTP records as the same
// bytes carried by TCP segments, loss as gaps, order, sockets learnt late
// and the bounds.
#include "uprobes/plaintext_streams.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "tests/parsers/http2/h2_test_util.h"

namespace l7tap {
namespace {

struct Records final : public RecordSink {
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    if (const auto* r = dynamic_cast<const HttpRecord*>(&record.inner())) {
      http.push_back(*r);
    } else if (const auto* c = dynamic_cast<const ConnRecord*>(&record.inner())) {
      conns.push_back(conn);
      protocols.emplace_back(c->protocol);
    }
  }
  std::vector<HttpRecord> http;
  std::vector<ConnectionInfo> conns;
  std::vector<std::string> protocols;
};

// One side's bytes: `wire` sent, of which the first `seen` are captured.
struct Step {
  bool from_client;
  std::string wire;
  size_t seen = SIZE_MAX;
  bool lost = false;  // its segment, or its event, never arrives
};

std::string str(const h2test::Bytes& b) { return std::string(b.begin(), b.end()); }

// Client 10.0.0.1:40000, server 10.0.0.2:8443.
l7tap_flow_key keyFrom(bool client) {
  l7tap_flow_key k{};
  k.family = 4;
  uint8_t c[4] = {10, 0, 0, 1}, s[4] = {10, 0, 0, 2};
  setIpv4(k.saddr, client ? c : s);
  setIpv4(k.daddr, client ? s : c);
  k.sport = client ? 40000 : 8443;
  k.dport = client ? 8443 : 40000;
  return k;
}

constexpr uint64_t kStart = 1'000'000'000;

void feedSegments(Pipeline& pipeline, const std::vector<Step>& steps) {
  uint32_t seq[2] = {1000, 5000};
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
    e.payload = {reinterpret_cast<const uint8_t*>(wire.data()), std::min(seen, wire.size())};
    pipeline.onSegment(e);
    seq[client ? 0 : 1] += static_cast<uint32_t>(wire.size()) + ((flags & L7TAP_TCP_SYN) ? 1 : 0) +
                           ((flags & L7TAP_TCP_FIN) ? 1 : 0);
  };
  send(true, L7TAP_TCP_SYN, "", 0);
  send(false, L7TAP_TCP_SYN | L7TAP_TCP_ACK, "", 0);
  for (const Step& s : steps) {
    if (s.lost) {
      seq[s.from_client ? 0 : 1] += static_cast<uint32_t>(s.wire.size());
      ts += 1000;
      continue;
    }
    send(s.from_client, L7TAP_TCP_ACK, s.wire, s.seen);
  }
  send(true, L7TAP_TCP_FIN | L7TAP_TCP_ACK, "", 0);
  send(false, L7TAP_TCP_FIN | L7TAP_TCP_ACK, "", 0);
}

// A ring-buffer sample as the BPF programs write it.
struct EventSpec {
  uint8_t kind = L7TAP_TLS_EVENT_DATA;
  uint32_t tgid = 100;
  uint64_t conn_id = 0x5555'0000'1000;
  uint8_t direction = L7TAP_TLS_WRITE;
  uint64_t offset = 0;
  uint32_t seq = 0;
  uint64_t ts = kStart;
  std::string bytes;
  uint32_t len = UINT32_MAX;  // UINT32_MAX: bytes.size()
  bool tuple_known = true;
  uint8_t role = L7TAP_TLS_ROLE_CLIENT;
  l7tap_flow_key key = keyFrom(true);  // the process is the client
};

std::vector<uint8_t> sample(const EventSpec& s) {
  std::vector<uint8_t> out(L7TAP_TLS_EVENT_HEADER_SIZE + s.bytes.size());
  auto* ev = reinterpret_cast<l7tap_tls_event*>(out.data());
  ev->ts_ns = s.ts;
  ev->conn_id = s.conn_id;
  ev->stream_offset = s.offset;
  ev->seq = s.seq;
  ev->tgid = ev->tid = s.tgid;
  ev->captured = static_cast<uint32_t>(s.bytes.size());
  ev->len = s.len == UINT32_MAX ? ev->captured : s.len;
  ev->fd = s.tuple_known ? 7 : -1;
  ev->kind = s.kind;
  ev->direction = s.direction;
  ev->library = L7TAP_TLS_LIB_OPENSSL;
  ev->role = s.role;
  ev->tuple_known = s.tuple_known;
  if (s.tuple_known) ev->key = s.key;
  std::memcpy(ev->comm, "curl", 4);
  std::memcpy(out.data() + L7TAP_TLS_EVENT_HEADER_SIZE, s.bytes.data(), s.bytes.size());
  return out;
}

void feed(PlaintextStreams& streams, const EventSpec& s) {
  const std::vector<uint8_t> bytes = sample(s);
  TlsEvent e;
  const TlsEventKind kind = decodeTlsEvent(bytes.data(), bytes.size(), e);
  ASSERT_TRUE(kind == TlsEventKind::kData || kind == TlsEventKind::kClose);
  streams.onEvent(kind, e);
}

// The steps as the client process's uprobe sees them: its writes (requests)
// and reads (responses), with the times the segments had; then SSL_free.
void feedEvents(PlaintextStreams& streams, const std::vector<Step>& steps) {
  uint64_t offset[2] = {}, ts = kStart + 2000;
  uint32_t seq[2] = {};
  for (const Step& st : steps) {
    EventSpec s;
    s.direction = st.from_client ? L7TAP_TLS_WRITE : L7TAP_TLS_READ;
    s.ts = ts += 1000;
    s.offset = offset[s.direction];
    s.seq = seq[s.direction]++;
    s.bytes = st.wire.substr(0, std::min(st.seen, st.wire.size()));
    s.len = static_cast<uint32_t>(st.wire.size());
    offset[s.direction] += st.wire.size();
    if (!st.lost) feed(streams, s);
  }
  EventSpec close;
  close.kind = L7TAP_TLS_EVENT_CLOSE;
  close.ts = ts + 1000;
  feed(streams, close);
}

std::vector<std::string> describe(const std::vector<HttpRecord>& rs) {
  return h2test::describeAll(rs);
}

const std::string kBody(3000, 'x');
const std::vector<Step> kHttp1 = {
    {true, "GET /a?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n"},
    {false, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
    {true, "POST /b HTTP/1.1\r\nHost: example\r\nContent-Length: 3000\r\n\r\n" + kBody, 100},
    {false, "HTTP/1.1 201 Created\r\nContent-Length: 3000\r\n\r\n" + kBody, 60},
};

std::vector<Step> http2Steps() {
  using namespace h2test;
  Deflater req, resp;
  const Bytes h1 = req.encode(
      {{":method", "GET"}, {":scheme", "https"}, {":authority", "example"}, {":path", "/one"}});
  const Bytes h3 = req.encode({{":method", "POST"},
                               {":scheme", "https"},
                               {":authority", "example"},
                               {":path", "/pkg.Svc/Call"},
                               {"content-type", "application/grpc"}});
  const Bytes r1 = resp.encode({{":status", "200"}});
  const Bytes r3 = resp.encode({{":status", "200"}, {"content-type", "application/grpc"}});
  const Bytes t3 = resp.encode({{"grpc-status", "0"}});
  return {
      {true, str(cat({preface(), settings({}), headers(1, h1, kEndHeaders | kEndStream)}))},
      {false, str(cat({settings({}), settingsAck(), headers(1, r1, kEndHeaders), data(1, 10, 0),
                       data(1, 0, kEndStream)}))},
      {true, str(cat({settingsAck(), headers(3, h3, kEndHeaders), data(3, 12, kEndStream)}))},
      {false, str(cat({headers(3, r3, kEndHeaders), data(3, 7),
                       headers(3, t3, kEndHeaders | kEndStream)}))},
  };
}

// Records by segments and by uprobe events of the same bytes.
void expectSameRecords(const std::vector<Step>& steps, size_t expected_records) {
  Records by_segments, by_events;
  {
    Pipeline p(by_segments);
    feedSegments(p, steps);
    p.finish();
  }
  {
    Pipeline p(by_events);
    PlaintextStreams streams(p, 0);
    feedEvents(streams, steps);
    p.finish();
  }
  ASSERT_EQ(by_segments.http.size(), expected_records);
  EXPECT_EQ(describe(by_events.http), describe(by_segments.http));
  ASSERT_EQ(by_events.conns.size(), 1u);
  const ConnectionInfo& conn = by_events.conns[0];
  EXPECT_EQ(conn.port[index(conn.client_side)], 40000);
  EXPECT_FALSE(conn.midstream);
}

TEST(PlaintextStreams, Http1LikeTheSegments) { expectSameRecords(kHttp1, 2); }

TEST(PlaintextStreams, Http2AndGrpcLikeTheSegments) { expectSameRecords(http2Steps(), 2); }

TEST(PlaintextStreams, TheServersViewGivesTheSameRecords) {
  // The server process: it reads requests and writes responses, its key
  // is server -> client.
  Records by_client, by_server;
  for (bool server : {false, true}) {
    Records& out = server ? by_server : by_client;
    Pipeline p(out);
    PlaintextStreams streams(p, 0);
    std::vector<Step> steps = kHttp1;
    if (server) {
      uint64_t offset[2] = {}, ts = kStart + 2000;
      uint32_t seq[2] = {};
      for (const Step& st : steps) {
        EventSpec s;
        s.role = L7TAP_TLS_ROLE_SERVER;
        s.key = keyFrom(false);
        s.direction = st.from_client ? L7TAP_TLS_READ : L7TAP_TLS_WRITE;
        s.ts = ts += 1000;
        s.offset = offset[s.direction];
        s.seq = seq[s.direction]++;
        s.bytes = st.wire.substr(0, std::min(st.seen, st.wire.size()));
        s.len = static_cast<uint32_t>(st.wire.size());
        offset[s.direction] += st.wire.size();
        feed(streams, s);
      }
    } else {
      feedEvents(streams, steps);
    }
    p.finish();
  }
  EXPECT_EQ(describe(by_server.http), describe(by_client.http));
  ASSERT_EQ(by_server.conns.size(), 1u);
  EXPECT_EQ(by_server.conns[0].port[index(by_server.conns[0].client_side)], 40000);
}

TEST(PlaintextStreams, BothEndsTracedReportEachExchangeOnce) {
  // Client and server on one node: the request is the client's write and
  // the server's read. The first end heard from speaks for the connection.
  Records alone, both;
  for (bool with_server : {false, true}) {
    Records& out = with_server ? both : alone;
    Pipeline p(out);
    PlaintextStreams streams(p, 0);
    uint64_t offset[2] = {}, ts = kStart + 2000;
    uint32_t seq[2] = {};
    for (const Step& st : kHttp1) {
      EventSpec c;
      c.direction = st.from_client ? L7TAP_TLS_WRITE : L7TAP_TLS_READ;
      c.ts = ts += 1000;
      c.offset = offset[c.direction];
      c.seq = seq[c.direction]++;
      c.bytes = st.wire.substr(0, std::min(st.seen, st.wire.size()));
      c.len = static_cast<uint32_t>(st.wire.size());
      offset[c.direction] += st.wire.size();
      EventSpec sv = c;
      sv.tgid = 200;
      sv.conn_id = 0x7777;
      sv.role = L7TAP_TLS_ROLE_SERVER;
      sv.key = keyFrom(false);
      sv.direction = c.direction ^ 1;
      // The sender's event first: the receiver reads what was written.
      const bool server_first = !st.from_client;
      if (with_server && server_first) feed(streams, sv);
      feed(streams, c);
      if (with_server && !server_first) feed(streams, sv);
    }
    if (with_server) {
      EXPECT_EQ(streams.stats().peer_events, kHttp1.size());
    }
    p.finish();
  }
  EXPECT_EQ(describe(both.http), describe(alone.http));
  EXPECT_EQ(both.conns.size(), 1u);
}

TEST(PlaintextStreams, ALostEventIsAGapOfItsLength) {
  // The first response's event is lost (the ring was full): a gap of its
  // length, as the lost segment is on the TCP path, and the same records.
  std::vector<Step> steps = kHttp1;
  steps[1].lost = true;
  expectSameRecords(steps, 2);
  Records records;
  Pipeline p(records);
  PlaintextStreams streams(p, 0);
  feedEvents(streams, steps);
  EXPECT_EQ(streams.stats().lost_events, 1u);
  uint64_t unseen = 0;
  for (const Step& st : steps)
    unseen += st.lost ? st.wire.size() : st.wire.size() - std::min(st.seen, st.wire.size());
  EXPECT_EQ(streams.stats().gap_bytes, unseen);
  p.finish();
  ASSERT_EQ(records.http.size(), 2u);
  EXPECT_NE(records.http[1].flags & kFlagGap, 0u);
}

TEST(PlaintextStreams, ALostFirstEventOfADirectionIsAGapToo) {
  // Both directions of the session start at 0 unless attached late: when
  // the writes were seen from their first byte, reads that start later lost
  // their beginning.
  std::vector<Step> steps = kHttp1;
  steps[1].lost = true;
  steps[3].lost = true;
  expectSameRecords(steps, 2);
}

TEST(PlaintextStreams, BytesBehindTheStreamAreDroppedAndCounted) {
  Records records;
  Pipeline p(records);
  PlaintextStreams streams(p, 0);
  const std::string req = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  EventSpec s;
  s.bytes = req.substr(0, 10);
  feed(streams, s);
  s.seq = 1;
  s.offset = 10;
  s.bytes = req.substr(10);
  feed(streams, s);
  feed(streams, s);  // a duplicate
  s.direction = L7TAP_TLS_READ;
  s.offset = 0;
  s.seq = 0;
  s.bytes = resp;
  feed(streams, s);
  s.offset = 5;  // overlaps what was delivered
  s.seq = 1;
  s.bytes = "xx";
  feed(streams, s);
  EXPECT_EQ(streams.stats().behind_events, 2u);
  p.finish();
  ASSERT_EQ(records.http.size(), 1u);
  EXPECT_EQ(records.http[0].status, 200);
  EXPECT_EQ(records.http[0].flags & kFlagGap, 0u);
}

TEST(PlaintextStreams, ACallLargerThanTheChunksIsAGapOfTheRest) {
  Records records;
  Pipeline p(records);
  PlaintextStreams streams(p, 0);
  const std::string req = "GET /big HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
  EventSpec s;
  s.bytes = req;
  feed(streams, s);
  s.direction = L7TAP_TLS_READ;
  s.bytes = head + std::string(1000, 'y');
  s.len = static_cast<uint32_t>(head.size() + 100000);
  feed(streams, s);
  EXPECT_EQ(streams.stats().gap_bytes, 99000u);
  p.finish();
  ASSERT_EQ(records.http.size(), 1u);
  EXPECT_EQ(records.http[0].status, 200);
  EXPECT_EQ(records.http[0].response_body_bytes, 100000u);
  EXPECT_NE(records.http[0].flags & kFlagGap, 0u);
}

TEST(PlaintextStreams, EventsBeforeTheSocketIsKnownWaitForIt) {
  // The first write happens before the library's first syscall told the
  // probe which socket the session is on.
  Records records;
  Pipeline p(records);
  PlaintextStreams streams(p, 0);
  const std::string req = "GET /held HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string resp = "HTTP/1.1 204 No Content\r\n\r\n";
  EventSpec s;
  s.tuple_known = false;
  s.bytes = req;
  feed(streams, s);
  EXPECT_EQ(p.stats().flows.plaintext_chunks, 0u);
  EXPECT_EQ(streams.heldBytes(), req.size());
  s.tuple_known = true;
  s.direction = L7TAP_TLS_READ;
  s.ts += 1000;
  s.bytes = resp;
  feed(streams, s);
  EXPECT_EQ(streams.heldBytes(), 0u);
  EXPECT_EQ(streams.stats().held_events, 1u);
  p.finish();
  ASSERT_EQ(records.http.size(), 1u);
  EXPECT_EQ(records.http[0].path, "/held");
  EXPECT_EQ(records.http[0].status, 204);
  EXPECT_EQ(records.http[0].flags, 0u);
}

TEST(PlaintextStreams, HeldBeyondTheBoundIsAGap) {
  Records records;
  Pipeline p(records);
  PlaintextStreamLimits limits;
  limits.max_held_events = 1;
  PlaintextStreams streams(p, 0, limits);
  const std::string req1 = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string req2 = "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string req3 = "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
  EventSpec s;
  s.tuple_known = false;
  s.bytes = req1;
  feed(streams, s);
  s.seq = 1;
  s.offset = req1.size();
  s.bytes = req2;
  feed(streams, s);  // over the bound: dropped
  EXPECT_EQ(streams.stats().held_dropped, 1u);
  s.seq = 2;
  s.offset += req2.size();
  s.bytes = req3;
  s.tuple_known = true;
  feed(streams, s);
  EXPECT_EQ(streams.stats().gap_bytes, req2.size());
  p.finish();
  std::vector<std::string> paths;
  for (const HttpRecord& r : records.http) paths.push_back(r.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/1", "/3"}));
}

TEST(PlaintextStreams, AttachedMidConnection) {
  // The first event is 5000 bytes into the stream: mid-stream, no gap.
  Records records;
  Pipeline p(records);
  PlaintextStreams streams(p, 0);
  EventSpec s;
  s.offset = 5000;
  s.seq = 7;
  s.bytes = "GET /mid HTTP/1.1\r\nHost: a\r\n\r\n";
  feed(streams, s);
  s.direction = L7TAP_TLS_READ;
  s.offset = 9000;
  s.bytes = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  feed(streams, s);
  EXPECT_EQ(streams.stats().gap_bytes, 0u);
  p.finish();
  ASSERT_EQ(records.http.size(), 1u);
  EXPECT_EQ(records.http[0].path, "/mid");
  ASSERT_EQ(records.conns.size(), 1u);
  EXPECT_TRUE(records.conns[0].midstream);
}

TEST(PlaintextStreams, BoundedSessionsAndExpiry) {
  Records records;
  Pipeline p(records);
  PlaintextStreamLimits limits;
  limits.max_sessions = 2;
  limits.idle_timeout_ns = 1000;
  PlaintextStreams streams(p, 0, limits);
  for (uint64_t id = 1; id <= 3; ++id) {
    EventSpec s;
    s.conn_id = id;
    s.ts = kStart + id;
    s.key.sport = static_cast<uint16_t>(40000 + id);
    s.bytes = "x";
    feed(streams, s);
  }
  EXPECT_EQ(streams.sessionCount(), 2u);
  EXPECT_EQ(streams.stats().sessions_evicted, 1u);
  streams.expire(kStart + 3 + 1000);
  EXPECT_EQ(streams.sessionCount(), 0u);
  EXPECT_EQ(streams.stats().sessions_expired, 2u);
}

TEST(PlaintextStreams, CloseAndExecEndBothSides) {
  Records records;
  Pipeline p(records);
  PlaintextStreams streams(p, 0);
  EventSpec s;
  s.bytes = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
  feed(streams, s);
  EventSpec other = s;
  other.conn_id = 2;
  other.key.sport = 40001;
  feed(streams, other);
  EventSpec close;
  close.kind = L7TAP_TLS_EVENT_CLOSE;
  feed(streams, close);
  EXPECT_EQ(streams.sessionCount(), 1u);
  streams.endProcess(100, kStart + 10);
  EXPECT_EQ(streams.sessionCount(), 0u);
  // Both connections closed by their plaintext ends, without segments.
  p.expire(kStart + 10'000'000'000ull);
  EXPECT_EQ(records.conns.size(), 2u);
  EXPECT_EQ(records.http.size(), 2u);  // requests without responses
}

TEST(PlaintextStreams, AReusedConnIdStartsANewSession) {
  Records records;
  Pipeline p(records);
  PlaintextStreams streams(p, 0);
  EventSpec s;
  s.bytes = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
  feed(streams, s);
  // The CLOSE was lost; the address is reused by a session on another socket.
  s.key.sport = 40002;
  feed(streams, s);
  EXPECT_EQ(streams.stats().sessions_reused, 1u);
  EXPECT_EQ(streams.stats().behind_events, 0u);
}

TEST(TlsEvents, MalformedSamplesAreRefused) {
  EventSpec s;
  s.bytes = "abc";
  std::vector<uint8_t> b = sample(s);
  TlsEvent e;
  EXPECT_EQ(decodeTlsEvent(b.data(), b.size(), e), TlsEventKind::kData);
  EXPECT_EQ(e.comm, "curl");
  EXPECT_EQ(e.data.size(), 3u);
  EXPECT_EQ(decodeTlsEvent(b.data(), b.size() - 1, e), TlsEventKind::kMalformed);
  EXPECT_EQ(decodeTlsEvent(b.data(), 100, e), TlsEventKind::kMalformed);
  auto* ev = reinterpret_cast<l7tap_tls_event*>(b.data());
  ev->len = 2;  // captured > len
  EXPECT_EQ(decodeTlsEvent(b.data(), b.size(), e), TlsEventKind::kMalformed);
  ev->len = 3;
  ev->direction = 9;
  EXPECT_EQ(decodeTlsEvent(b.data(), b.size(), e), TlsEventKind::kMalformed);
  ev->kind = 77;
  EXPECT_EQ(decodeTlsEvent(b.data(), b.size(), e), TlsEventKind::kOtherKind);
}

}  // namespace
}  // namespace l7tap
