// Protocol detection and role assignment, driven through the flow table
// with hand-built segments.
#include "parsers/session/session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parsers/protocols/standard_protocols.h"
#include "reassembly/flow_table.h"

namespace l7tap {
namespace {

// What a connection record says, as far as these tests look.
struct ConnSeen {
  std::string name;
  uint64_t exchanges = 0;
  std::string tls_server_name;
};

struct Captured {
  std::vector<HttpRecord> http;
  std::vector<ConnSeen> conns;
  std::vector<ConnectionInfo> infos;
};

// Reads a connection record's protocol fields through its visit, as sinks do.
class ConnFields final : public FieldVisitor {
 public:
  explicit ConnFields(ConnSeen& out) : out_(out) {}
  void str(std::string_view name, std::string_view value) override {
    if (name == "l7tap.protocol") out_.name = value;
    if (name == "tls.client.server_name") out_.tls_server_name = value;
  }
  void num(std::string_view name, uint64_t value) override {
    if (name == "l7tap.conn.http_exchanges") out_.exchanges = value;
  }
  void inum(std::string_view, int64_t) override {}
  void millis(std::string_view, uint64_t) override {}
  void time(std::string_view, uint64_t) override {}
  void addr(std::string_view, const uint8_t*, uint8_t) override {}
  void flags(std::string_view, uint32_t, const char* const*, size_t) override {}

 private:
  ConnSeen& out_;
};

class CaptureSink final : public RecordSink {
 public:
  explicit CaptureSink(Captured& c) : c_(c) {}
  void onRecord(const ConnectionInfo& i, const Record& r) override {
    if (const auto* http = dynamic_cast<const HttpRecord*>(&r.inner())) {
      c_.http.push_back(*http);
      return;
    }
    ConnSeen seen;
    ConnFields fields(seen);
    r.visit(i, fields);
    c_.conns.push_back(seen);
    c_.infos.push_back(i);
  }

 private:
  Captured& c_;
};

// A client 10.0.0.1:40000 and a server 10.0.0.2:PORT exchanging payloads.
class Conversation {
 public:
  explicit Conversation(uint16_t server_port = 8080) : port_(server_port) {}
  Conversation& handshake() {
    send(true, "", L7TAP_TCP_SYN);
    send(false, "", L7TAP_TCP_SYN | L7TAP_TCP_ACK);
    return *this;
  }
  Conversation& client(const std::string& data) { return send(true, data, L7TAP_TCP_ACK); }
  Conversation& server(const std::string& data) { return send(false, data, L7TAP_TCP_ACK); }
  /// Only the first `keep` bytes are captured (a payload window).
  Conversation& clientWindowed(const std::string& data, size_t keep) {
    send(true, data, L7TAP_TCP_ACK);
    data_.back().resize(keep);
    return *this;
  }

  Captured run() {
    Captured c;
    CaptureSink sink(c);
    SessionFactory sessions(sink, standardProtocols());
    FlowTable table(sessions);
    for (auto& s : segs_) {
      s.payload = {reinterpret_cast<const uint8_t*>(data_[&s - segs_.data()].data()),
                   data_[&s - segs_.data()].size()};
      table.onSegment(s);
    }
    table.closeAll(CloseReason::kEndOfInput);
    return c;
  }

 private:
  Conversation& send(bool from_client, const std::string& data, uint8_t flags) {
    SegmentEvent e;
    e.ts_ns = ts_ += 1000;
    e.key.family = 4;
    uint8_t c[4] = {10, 0, 0, 1}, s[4] = {10, 0, 0, 2};
    setIpv4(e.key.saddr, from_client ? c : s);
    setIpv4(e.key.daddr, from_client ? s : c);
    e.key.sport = from_client ? 40000 : port_;
    e.key.dport = from_client ? port_ : 40000;
    uint32_t& seq = from_client ? cseq_ : sseq_;
    e.seq = seq;
    e.ack = from_client ? sseq_ : cseq_;
    e.tcp_flags = flags;
    e.tcp_window = 1000;
    e.payload_len = static_cast<uint32_t>(data.size());
    seq += static_cast<uint32_t>(data.size()) + ((flags & L7TAP_TCP_SYN) ? 1 : 0);
    segs_.push_back(e);
    data_.push_back(data);
    return *this;
  }
  uint16_t port_;
  uint32_t cseq_ = 100, sseq_ = 900;
  uint64_t ts_ = 1'000'000;
  std::vector<SegmentEvent> segs_;
  std::vector<std::string> data_;
};

TEST(Session, Http1RequestAndResponse) {
  auto c = Conversation()
               .handshake()
               .client("GET /x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n")
               .server("HTTP/1.1 204 No Content\r\n\r\n")
               .run();
  ASSERT_EQ(c.http.size(), 1u);
  EXPECT_EQ(c.http[0].method, "GET");
  EXPECT_EQ(c.http[0].path, "/x");
  EXPECT_EQ(c.http[0].query, "y=REDACTED");  // by default (redaction/)
  EXPECT_EQ(c.http[0].status, 204);
  ASSERT_EQ(c.conns.size(), 1u);
  EXPECT_EQ(c.conns[0].name, "http/1");
  EXPECT_EQ(c.conns[0].exchanges, 1u);
}

TEST(Session, RequestLineSplitAcrossSegmentsIsStillDetected) {
  auto c = Conversation()
               .handshake()
               .client("GE")
               .client("T / HTTP/1.1\r\n\r\n")
               .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
               .run();
  ASSERT_EQ(c.http.size(), 1u);
  EXPECT_EQ(c.http[0].status, 200);
}

// The protocol is decided on a first segment longer than the detection
// buffer (SessionLimits::max_detect_bytes): the parser gets all of it.
TEST(Session, FirstSegmentLongerThanTheDetectionBufferIsParsedWhole) {
  std::string requests, responses;
  for (int i = 0; i < 1000; ++i) {
    requests += "GET /p/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
    responses += "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  }
  ASSERT_GT(requests.size(), SessionLimits{}.max_detect_bytes);
  auto whole = Conversation()
                   .handshake()
                   .client(requests)
                   .server(responses.substr(0, responses.size() / 2))
                   .server(responses.substr(responses.size() / 2))
                   .run();
  ASSERT_EQ(whole.http.size(), 1000u + 936u);  // 936 unpaired at max_pending_requests
  EXPECT_EQ(whole.http.back().path, "/p/999");
  EXPECT_EQ(whole.http.back().status, 200);
  EXPECT_EQ(whole.http.back().flags, 0u);
}

TEST(Session, Http2ServerSettingsBeforeClientPreface) {
  const std::string settings("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  auto c = Conversation()
               .handshake()
               .server(settings)
               .client(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + settings)
               .run();
  ASSERT_EQ(c.conns.size(), 1u);
  EXPECT_EQ(c.conns[0].name, "h2");
  EXPECT_EQ(c.infos[0].client_side, Side::kOrig);
}

TEST(Session, ResponseFirstMidstreamSetsRolesFromTheProtocol) {
  // No handshake; the server's bytes come first, from the higher port.
  auto c = Conversation(50000)
               .server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
               .client("GET /next HTTP/1.1\r\n\r\n")
               .server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
               .run();
  ASSERT_EQ(c.infos.size(), 1u);
  EXPECT_TRUE(c.infos[0].roles_from_protocol);
  EXPECT_EQ(c.infos[0].port[index(c.infos[0].client_side)], 40000);
  ASSERT_GE(c.http.size(), 1u);
  EXPECT_EQ(c.http.back().path, "/next");
  EXPECT_EQ(c.http.back().status, 404);
}

TEST(Session, TlsClientHelloNamesTheConnection) {
  // A ClientHello whose only extension is SNI "x.test".
  std::string ext = std::string("\x00\x00\x00\x0b\x00\x09\x00\x00\x06", 9) + "x.test";
  std::string body = std::string("\x03\x03", 2) + std::string(32, '\0') +
                     std::string("\x00\x00\x02\x13\x01\x01\x00", 7) + std::string(1, '\0') +
                     static_cast<char>(ext.size()) + ext;
  std::string hs = std::string("\x01\x00", 2) + static_cast<char>(body.size() >> 8) +
                   static_cast<char>(body.size()) + body;
  std::string rec = std::string("\x16\x03\x01", 3) + static_cast<char>(hs.size() >> 8) +
                    static_cast<char>(hs.size()) + hs;
  auto c = Conversation(443).handshake().client(rec).run();
  ASSERT_EQ(c.conns.size(), 1u);
  EXPECT_EQ(c.conns[0].name, "tls");
  EXPECT_EQ(c.conns[0].tls_server_name, "x.test");
}

TEST(Session, UnknownProtocolIsCountedWithoutRecords) {
  auto c = Conversation(6379).handshake().client("*1\r\n$4\r\nPING\r\n").server("+PONG\r\n").run();
  EXPECT_TRUE(c.http.empty());
  ASSERT_EQ(c.conns.size(), 1u);
  EXPECT_EQ(c.conns[0].name, "unknown");
}

TEST(Session, GapBeforeDetectionAllowsAMidstreamStart) {
  // The window kept only 2 bytes of the first request: too few to detect
  // anything. The next request is still found.
  auto c = Conversation()
               .handshake()
               .clientWindowed("GET /first HTTP/1.1\r\nHost: h\r\n\r\n", 2)
               .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
               .client("GET /second HTTP/1.1\r\n\r\n")
               .server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
               .run();
  ASSERT_EQ(c.conns.size(), 1u);
  EXPECT_EQ(c.conns[0].name, "http/1");
  ASSERT_FALSE(c.http.empty());
  EXPECT_EQ(c.http.back().path, "/second");
  EXPECT_EQ(c.http.back().status, 200);
}

}  // namespace
}  // namespace l7tap
