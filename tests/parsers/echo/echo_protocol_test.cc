// A protocol added without touching the session, the sinks or any other
// protocol: the toy echo protocol (echo_protocol.h) is registered here next
// to the standard ones, and its exchanges come out of the ordinary pipeline
// (flow table, session) through the JSON and journald sinks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <typeinfo>
#include <vector>

#include "daemon/journald_sink.h"
#include "daemon/json_sink.h"
#include "parsers/protocols/standard_protocols.h"
#include "parsers/session/session.h"
#include "reassembly/flow_table.h"
#include "tests/parsers/echo/echo_protocol.h"

namespace l7tap {
namespace {

// The registration: the standard protocols plus the echo protocol.
ProtocolRegistry protocolsWithEcho() {
  ProtocolRegistry registry = standardProtocols();
  echo::registerEcho(registry);
  return registry;
}

// Connections between 10.0.0.1:40000+n and 10.0.0.2:PORT, one after another.
class Traffic {
 public:
  Traffic& connection(uint16_t port, std::vector<std::pair<bool, std::string>> payloads) {
    const uint16_t cport = static_cast<uint16_t>(40000 + conns_++);
    uint32_t cseq = 100, sseq = 900;
    auto send = [&](bool from_client, const std::string& data, uint8_t flags) {
      SegmentEvent e;
      e.ts_ns = ts_ += 1000;
      e.key.family = 4;
      uint8_t c[4] = {10, 0, 0, 1}, s[4] = {10, 0, 0, 2};
      setIpv4(e.key.saddr, from_client ? c : s);
      setIpv4(e.key.daddr, from_client ? s : c);
      e.key.sport = from_client ? cport : port;
      e.key.dport = from_client ? port : cport;
      uint32_t& seq = from_client ? cseq : sseq;
      e.seq = seq;
      e.ack = from_client ? sseq : cseq;
      e.tcp_flags = flags;
      e.tcp_window = 1000;
      e.payload_len = static_cast<uint32_t>(data.size());
      seq += static_cast<uint32_t>(data.size()) + ((flags & L7TAP_TCP_SYN) ? 1 : 0);
      segs_.push_back(e);
      data_.push_back(data);
    };
    send(true, "", L7TAP_TCP_SYN);
    send(false, "", L7TAP_TCP_SYN | L7TAP_TCP_ACK);
    for (const auto& [from_client, data] : payloads) send(from_client, data, L7TAP_TCP_ACK);
    return *this;
  }

  void run(RecordSink& sink, SessionStats* stats = nullptr) {
    SessionFactory sessions(sink, protocolsWithEcho());
    FlowTable table(sessions);
    for (size_t i = 0; i < segs_.size(); ++i) {
      segs_[i].payload = {reinterpret_cast<const uint8_t*>(data_[i].data()), data_[i].size()};
      table.onSegment(segs_[i]);
    }
    table.closeAll(CloseReason::kEndOfInput);
    if (stats) *stats = sessions.stats();
  }

 private:
  int conns_ = 0;
  uint64_t ts_ = 1'700'000'000'000'000'000;
  std::vector<SegmentEvent> segs_;
  std::vector<std::string> data_;
};

std::vector<std::string> jsonLines(Traffic& traffic, SessionStats* stats = nullptr) {
  std::FILE* f = std::tmpfile();
  EXPECT_NE(f, nullptr);
  {
    JsonLinesSink sink(fileno(f), JsonLinesSink::Flush::kEveryRecord);
    traffic.run(sink, stats);
  }
  std::rewind(f);
  std::vector<std::string> lines;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f)) lines.emplace_back(buf);
  std::fclose(f);
  return lines;
}

TEST(EchoProtocol, ExchangesComeOutOfTheSessionAsJson) {
  Traffic t;
  t.connection(7, {{true, "ECHO hello\n"},
                   {false, "ECHO hello\n"},
                   {true, "ECHO a\nECHO b"},
                   {true, "\n"},
                   {false, "ECHO a\nECHO x\n"}});
  SessionStats stats;
  const auto lines = jsonLines(t, &stats);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "{\"type\":\"echo\",\"time\":\"2023-11-14T22:13:20.000003000Z\","
            "\"l7tap.connection_id\":1,\"client.address\":\"10.0.0.1\",\"client.port\":40000,"
            "\"server.address\":\"10.0.0.2\",\"server.port\":7,\"echo.text\":\"hello\","
            "\"echo.duration_ms\":0.001000,\"l7tap.capture.source\":\"packet\"}\n");
  EXPECT_NE(lines[1].find("\"echo.text\":\"a\""), std::string::npos) << lines[1];
  EXPECT_EQ(lines[1].find("echo.flags"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("\"echo.text\":\"b\""), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("\"echo.flags\":[\"mismatch\"]"), std::string::npos) << lines[2];
  // The connection record names the protocol and counts its exchanges.
  EXPECT_NE(lines[3].find("\"type\":\"conn\""), std::string::npos);
  EXPECT_NE(lines[3].find("\"l7tap.protocol\":\"echo\""), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("\"l7tap.conn.http_exchanges\":3"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("\"l7tap.conn.roles\":\"handshake\""), std::string::npos);
  // The summary's totals know it by its registered name and counters.
  const ProtocolTotals* echo = stats.find("echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->connections, 1u);
  ASSERT_EQ(echo->counters.size(), 2u);
  EXPECT_EQ(echo->counters[0].name, "echo.mismatches");
  EXPECT_EQ(echo->counters[0].value, 1u);
  EXPECT_EQ(stats.http_records, 3u);
}

TEST(EchoProtocol, StandardProtocolsStillDetectedBesideIt) {
  Traffic t;
  t.connection(8080, {{true, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
                      {false, "HTTP/1.1 204 No Content\r\n\r\n"}});
  t.connection(7, {{true, "EC"}, {true, "HO x\n"}, {false, "ECHO x\n"}});  // need-more, then yes
  t.connection(9, {{true, "HELLO\n"}, {false, "HELLO\n"}});                // nobody's
  SessionStats stats;
  const auto lines = jsonLines(t, &stats);
  // Exchanges as they complete, connection records when all are closed.
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_TRUE(lines[0].starts_with("{\"type\":\"http\""));
  EXPECT_TRUE(lines[1].starts_with("{\"type\":\"echo\""));
  std::multiset<std::string> protocols;
  for (size_t i = 2; i < lines.size(); ++i) {
    const size_t at = lines[i].find("\"l7tap.protocol\":\"");
    ASSERT_NE(at, std::string::npos) << lines[i];
    protocols.insert(lines[i].substr(at + 18, lines[i].find('"', at + 18) - at - 18));
  }
  EXPECT_EQ(protocols, (std::multiset<std::string>{"echo", "http/1", "unknown"}));
  EXPECT_EQ(stats.find("http/1")->connections, 1u);
  EXPECT_EQ(stats.find("echo")->connections, 1u);
  EXPECT_EQ(stats.connections_other, 1u);
}

// The journald sink renders it too: MESSAGE and PRIORITY from the record
// kind, one field per schema name (no journald needed: the entry is kept).
class LastJournaldEntry final : public RecordSink {
 public:
  explicit LastJournaldEntry(JournaldSink& sink) : sink_(sink) {}
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    sink_.onRecord(conn, record);
    if (typeid(record.inner()) != typeid(echo::EchoRecord)) return;
    entries.emplace_back();
    for (const iovec& v : sink_.lastEntry()) {
      entries.back().emplace_back(static_cast<const char*>(v.iov_base), v.iov_len);
    }
  }
  std::vector<std::vector<std::string>> entries;

 private:
  JournaldSink& sink_;
};

TEST(EchoProtocol, JournaldEntry) {
  Traffic t;
  t.connection(7, {{true, "ECHO hi\n"}, {false, "ECHO ho\n"}});
  JournaldSink journald("l7tap-echo-test");
  LastJournaldEntry sink(journald);
  t.run(sink);
  ASSERT_EQ(sink.entries.size(), 1u);
  const auto& e = sink.entries[0];
  EXPECT_EQ(e[0], "MESSAGE=ECHO hi -> echoed 0.0 ms 10.0.0.1:40000 -> 10.0.0.2:7 [mismatch]");
  EXPECT_EQ(e[1], "PRIORITY=4");
  auto has = [&](const std::string& f) { return std::find(e.begin(), e.end(), f) != e.end(); };
  EXPECT_TRUE(has("L7TAP_TYPE=echo"));
  EXPECT_TRUE(has("ECHO_TEXT=hi"));
  EXPECT_TRUE(has("ECHO_FLAGS=mismatch"));
  EXPECT_TRUE(has("SERVER_PORT=7"));
}

}  // namespace
}  // namespace l7tap
