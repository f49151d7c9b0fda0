// What records of TLS plaintext say of themselves: `l7tap.capture.source`
// (packet or tls_uprobe) on every record of a session, and the SNI and ALPN
// of the ClientHello the segments carried on the plaintext's records.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "daemon/pipeline.h"
#include "tests/support/client_hello.h"

namespace l7tap {
namespace {

using testing::clientHello;

// Every string field of every record, by record.
struct Fields final : public RecordSink, private FieldVisitor {
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    records.emplace_back();
    record.visit(conn, *this);
  }
  std::vector<std::map<std::string, std::string>> records;
  std::vector<uint64_t> ifindex;  // of every record that has one
  std::vector<std::map<std::string, std::string>> ofType(const std::string& type) const {
    std::vector<std::map<std::string, std::string>> out;
    for (const auto& r : records) {
      if (r.at("type") == type) out.push_back(r);
    }
    return out;
  }

 private:
  void str(std::string_view name, std::string_view value) override {
    records.back()[std::string(name)] = std::string(value);
  }
  void num(std::string_view name, uint64_t value) override {
    if (name == "l7tap.ifindex") ifindex.push_back(value);
  }
  void inum(std::string_view, int64_t) override {}
  void millis(std::string_view, uint64_t) override {}
  void time(std::string_view, uint64_t) override {}
  void addr(std::string_view, const uint8_t*, uint8_t) override {}
  void flags(std::string_view, uint32_t, const char* const*, size_t) override {}
};

l7tap_flow_key keyFrom(bool client) {
  l7tap_flow_key k{};
  k.family = 4;
  uint8_t c[4] = {10, 0, 0, 1}, s[4] = {10, 0, 0, 2};
  setIpv4(k.saddr, client ? c : s);
  setIpv4(k.daddr, client ? s : c);
  k.sport = client ? 40000 : 443;
  k.dport = client ? 443 : 40000;
  return k;
}

struct Connection {
  Pipeline& p;
  uint64_t ts = 1'000'000'000;
  uint32_t seq[2] = {1000, 5000};
  void segment(bool client, uint8_t flags, const std::vector<uint8_t>& payload) {
    SegmentEvent e;
    e.ifindex = 5;
    e.ts_ns = ts += 1000;
    e.key = keyFrom(client);
    e.seq = seq[client ? 0 : 1];
    e.ack = seq[client ? 1 : 0];
    e.tcp_flags = flags;
    e.tcp_window = 65535;
    e.payload_len = static_cast<uint32_t>(payload.size());
    e.payload = payload;
    p.onSegment(e);
    seq[client ? 0 : 1] +=
        static_cast<uint32_t>(payload.size()) + ((flags & (L7TAP_TCP_SYN | L7TAP_TCP_FIN)) ? 1 : 0);
  }
  void plaintext(bool client, const std::string& bytes) {
    PlaintextChunk c;
    c.ts_ns = ts += 1000;
    c.key = keyFrom(client);
    c.sender = client ? PlaintextChunk::Sender::kClient : PlaintextChunk::Sender::kServer;
    c.bytes = {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
    p.onPlaintext(c);
  }
};

const std::string kRequest = "GET /secret HTTP/1.1\r\nHost: api.example.test\r\n\r\n";
const std::string kResponse = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

TEST(CaptureSource, PlaintextRecordsCarryTheClientHellosNames) {
  for (bool plaintext_first : {false, true}) {
    SCOPED_TRACE(plaintext_first ? "plaintext before the ClientHello" : "ClientHello first");
    Fields fields;
    Pipeline p(fields);
    Connection c{p};
    // The packets' ring is read first in each drain, but the plaintext of
    // a connection can still come before its handshake reached the table
    // (a drain between the two rings' events).
    if (plaintext_first) c.plaintext(true, kRequest);
    c.segment(true, L7TAP_TCP_SYN, {});
    c.segment(false, L7TAP_TCP_SYN | L7TAP_TCP_ACK, {});
    c.segment(true, L7TAP_TCP_ACK, clientHello("api.example.test", {"h2", "http/1.1"}));
    if (!plaintext_first) c.plaintext(true, kRequest);
    c.plaintext(false, kResponse);
    c.segment(false, L7TAP_TCP_ACK, std::vector<uint8_t>(100, 0x17));
    p.finish();
    const auto http = fields.ofType("http");
    ASSERT_EQ(http.size(), 1u);
    // The interface comes from the segments, whoever opened the connection.
    EXPECT_EQ(fields.ifindex, (std::vector<uint64_t>{5, 5}));
    EXPECT_EQ(http[0].at("l7tap.capture.source"), "tls_uprobe");
    EXPECT_EQ(http[0].at("url.path"), "/secret");
    EXPECT_EQ(http[0].at("tls.client.server_name"), "api.example.test");
    EXPECT_EQ(http[0].at("l7tap.tls.alpn_offered"), "h2,http/1.1");
    // One connection record: the plaintext's protocol and exchanges, with
    // the names the packets' session read.
    const auto conns = fields.ofType("conn");
    ASSERT_EQ(conns.size(), 1u);
    EXPECT_EQ(conns[0].at("l7tap.capture.source"), "tls_uprobe");
    EXPECT_EQ(conns[0].at("l7tap.protocol"), "http/1");
    EXPECT_EQ(conns[0].at("tls.client.server_name"), "api.example.test");
  }
}

TEST(CaptureSource, CleartextRecordsSayPacketAndPlaintextAloneHasNoNames) {
  Fields fields;
  Pipeline p(fields);
  Connection c{p};
  c.plaintext(true, kRequest);
  c.plaintext(false, kResponse);
  p.finish();
  ASSERT_EQ(fields.ofType("http").size(), 1u);
  EXPECT_EQ(fields.ofType("http")[0].at("l7tap.capture.source"), "tls_uprobe");
  EXPECT_EQ(fields.ofType("http")[0].count("tls.client.server_name"), 0u);

  Fields cleartext;
  Pipeline q(cleartext);
  Connection d{q};
  d.segment(true, L7TAP_TCP_SYN, {});
  d.segment(false, L7TAP_TCP_SYN | L7TAP_TCP_ACK, {});
  d.segment(true, L7TAP_TCP_ACK, {kRequest.begin(), kRequest.end()});
  d.segment(false, L7TAP_TCP_ACK, {kResponse.begin(), kResponse.end()});
  q.finish();
  for (const auto& r : cleartext.records) EXPECT_EQ(r.at("l7tap.capture.source"), "packet");
  EXPECT_EQ(cleartext.records.size(), 2u);
}

}  // namespace
}  // namespace l7tap
