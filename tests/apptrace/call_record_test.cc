// The ring's call events decoded (sizes and kinds checked, nothing else
// trusted), and the app_call record and the fields a linked exchange gains:
// names, order and message, as DESIGN.md lists them.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "apptrace/call_events.h"
#include "apptrace/call_record.h"
#include "tests/apptrace/record_capture.h"

namespace l7tap {
namespace {

using testing::FieldList;

void setV4(uint8_t (&addr)[16], const char* text) {
  std::memset(addr, 0, sizeof addr);
  addr[10] = addr[11] = 0xff;
  ASSERT_EQ(inet_pton(AF_INET, text, addr + 12), 1);
}

l7tap_app_event nativeReturn() {
  l7tap_app_event ev{};
  ev.kind = L7TAP_APP_EVENT_CALL;
  ev.start_ns = 1'000'000;
  ev.end_ns = 13'300'000;
  ev.tgid = 4242;
  ev.tid = 4243;
  ev.netns_ino = 4026531840u;
  ev.function = 3;
  ev.flags = L7TAP_APP_F_CONN_KNOWN | L7TAP_APP_F_CONN_BEFORE;
  ev.io = {1024, 300, 100'000, 20'000, 1, 2};
  setV4(ev.conn.saddr, "10.1.0.9");
  setV4(ev.conn.daddr, "10.1.0.4");
  ev.conn.sport = 8080;
  ev.conn.dport = 41230;
  ev.conn.family = 4;
  std::memcpy(ev.comm, "server", 7);
  return ev;
}

std::vector<uint8_t> bytesOf(const l7tap_app_event& ev) {
  std::vector<uint8_t> b(sizeof ev);
  std::memcpy(b.data(), &ev, sizeof ev);
  return b;
}

constexpr int64_t kOffset = 1'700'000'000'000'000'000;

CallEvent decoded(const l7tap_app_event& ev) {
  CallEvent out;
  EXPECT_TRUE(decodeCallEvent(bytesOf(ev), kOffset, out));
  return out;
}

TEST(CallEventTest, DecodesAReturnOnTheWallClock) {
  const CallEvent c = decoded(nativeReturn());
  EXPECT_FALSE(c.entry);
  EXPECT_EQ(c.start_ns, 1'000'000 + static_cast<uint64_t>(kOffset));
  EXPECT_EQ(c.end_ns, 13'300'000 + static_cast<uint64_t>(kOffset));
  EXPECT_EQ(c.durationNs(), 12'300'000u);
  EXPECT_EQ(c.function, 3);
  EXPECT_EQ(c.tgid, 4242u);
  EXPECT_EQ(c.tid, 4243u);
  EXPECT_EQ(c.netns_ino, 4026531840u);
  EXPECT_EQ(c.io.bytes_sent, 1024u);
  EXPECT_EQ(c.io.receives, 2u);
  EXPECT_TRUE(c.conn_known);
  EXPECT_EQ(c.conn.sport, 8080);
  EXPECT_STREQ(c.comm, "server");
}

TEST(CallEventTest, AnEntryHasNoEnd) {
  l7tap_app_event ev = nativeReturn();
  ev.kind = L7TAP_APP_EVENT_ENTER;
  ev.end_ns = 99;  // whatever the kernel left there
  const CallEvent c = decoded(ev);
  EXPECT_TRUE(c.entry);
  EXPECT_EQ(c.end_ns, 0u);
  EXPECT_EQ(c.durationNs(), 0u);
}

TEST(CallEventTest, RefusesOtherSizesAndKinds) {
  const std::vector<uint8_t> good = bytesOf(nativeReturn());
  CallEvent out;
  EXPECT_FALSE(decodeCallEvent({good.data(), good.size() - 1}, 0, out));
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_FALSE(decodeCallEvent(longer, 0, out));
  EXPECT_FALSE(decodeCallEvent({}, 0, out));
  for (uint8_t kind : {0, 3, 255}) {
    l7tap_app_event ev = nativeReturn();
    ev.kind = kind;
    EXPECT_FALSE(decodeCallEvent(bytesOf(ev), 0, out)) << int(kind);
  }
}

TEST(CallEventTest, TrustsNeitherTheNameNorTheSocketFamily) {
  l7tap_app_event ev = nativeReturn();
  std::memset(ev.comm, 'x', sizeof ev.comm);  // no NUL
  ev.conn.family = 7;
  const CallEvent c = decoded(ev);
  EXPECT_EQ(std::strlen(c.comm), sizeof c.comm - 1);
  EXPECT_FALSE(c.conn_known);
  EXPECT_EQ(c.flags & L7TAP_APP_F_CONN_KNOWN, 0);
  // Unset times stay unset rather than becoming the offset.
  ev.start_ns = 0;
  EXPECT_EQ(decoded(ev).start_ns, 0u);
}

TEST(CallEventTest, TheCallIdTiesAnEntryToItsReturn) {
  l7tap_app_event ev = nativeReturn();
  const CallEvent ret = decoded(ev);
  ev.kind = L7TAP_APP_EVENT_ENTER;
  ev.io = {};
  ev.flags = 0;
  const CallEvent entry = decoded(ev);
  EXPECT_EQ(entry.callId(), ret.callId());
  EXPECT_LT(ret.callId(), uint64_t{1} << 53);  // exact as a JSON number

  l7tap_app_event other = nativeReturn();
  other.tid += 1;
  EXPECT_NE(decoded(other).callId(), ret.callId());
  other = nativeReturn();
  other.start_ns += 1;
  EXPECT_NE(decoded(other).callId(), ret.callId());
  other = nativeReturn();
  other.function += 1;
  EXPECT_NE(decoded(other).callId(), ret.callId());
  // Go: the goroutine (its g) names the call, whatever thread ran it.
  l7tap_app_event go = nativeReturn();
  go.g = 0xc000001a00;
  go.goid = 35;
  l7tap_app_event go_elsewhere = go;
  go_elsewhere.g = 0xc000001b00;
  EXPECT_NE(decoded(go).callId(), decoded(go_elsewhere).callId());
}

TEST(CallRecordTest, AnUnlinkedCallWithItsSocket) {
  const CallEvent c = decoded(nativeReturn());
  CallRecord r;
  r.call = &c;
  r.function = "handle_request";
  FieldList f;
  r.visit(callConnection(c), f);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"type", "app_call"},
      {"time", "@" + std::to_string(c.start_ns)},
      {"l7tap.app.call_id", std::to_string(c.callId())},
      {"l7tap.app.function", "handle_request"},
      {"l7tap.app.duration_ms", "12300000 ns"},
      {"process.pid", "4242"},
      {"thread.id", "4243"},
      {"process.name", "server"},
      {"l7tap.app.io.bytes_sent", "1024"},
      {"l7tap.app.io.bytes_received", "300"},
      {"l7tap.app.io.send_ms", "100000 ns"},
      {"l7tap.app.io.recv_ms", "20000 ns"},
      {"l7tap.app.io.sends", "1"},
      {"l7tap.app.io.receives", "2"},
      {"network.local.address", "10.1.0.9"},
      {"network.local.port", "8080"},
      {"network.peer.address", "10.1.0.4"},
      {"network.peer.port", "41230"},
      {"l7tap.app.flags", "conn_before"},
  };
  EXPECT_EQ(f.fields, expected);
  std::string message;
  r.appendMessage(message, callConnection(c));
  EXPECT_EQ(message,
            "call handle_request 12.3 ms pid 4242 tid 4243, sent 1.0 KiB in 0.1 ms, received 300 B "
            "in 0.0 ms on 10.1.0.9:8080 -> 10.1.0.4:41230 [conn_before]");
}

TEST(CallRecordTest, ALinkedGoCallNamesItsExchange) {
  l7tap_app_event ev = nativeReturn();
  ev.g = 0xc000001a00;
  ev.goid = 35;
  ev.flags = L7TAP_APP_F_CONN_KNOWN | L7TAP_APP_F_EXEMPLAR | L7TAP_APP_F_MULTI_CONN;
  ev.io = {1024, 0, 100'000, 0, 1, 0};
  const CallEvent c = decoded(ev);
  ConnectionInfo exchange_conn;
  exchange_conn.id = 17;
  exchange_conn.ifindex = 5;
  exchange_conn.addr[0] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 4};
  exchange_conn.addr[1] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 9};
  exchange_conn.port[0] = 41230;
  exchange_conn.port[1] = 8080;
  CallRecord r;
  r.call = &c;
  r.function = "main.handleGetUser";
  r.exchange_id = "17:2";
  FieldList f;
  r.visit(exchange_conn, f);
  EXPECT_EQ(f.get("l7tap.app.goroutine"), "35");
  EXPECT_FALSE(f.has("thread.id"));
  EXPECT_EQ(f.get("l7tap.connection_id"), "17");
  EXPECT_EQ(f.get("l7tap.ifindex"), "5");
  EXPECT_EQ(f.get("l7tap.exchange_id"), "17:2");
  EXPECT_EQ(f.get("client.address"), "10.1.0.4");
  EXPECT_EQ(f.get("client.port"), "41230");
  EXPECT_EQ(f.get("server.address"), "10.1.0.9");
  EXPECT_EQ(f.get("server.port"), "8080");
  EXPECT_FALSE(f.has("network.local.address"));
  EXPECT_EQ(f.get("l7tap.app.flags"), "multi_conn,exemplar");
  // The linked fields come after the call's own, the flags last.
  const std::vector<std::string> names = f.names();
  EXPECT_EQ(names[14], "l7tap.connection_id");
  EXPECT_EQ(names.back(), "l7tap.app.flags");
  std::string message;
  r.appendMessage(message, exchange_conn);
  EXPECT_EQ(message,
            "call main.handleGetUser 12.3 ms pid 4242 goroutine 35, sent 1.0 KiB in 0.1 ms -> "
            "exchange 17:2 [multi_conn,exemplar]");
}

TEST(CallRecordTest, WithoutASocketOrAGoroutineId) {
  l7tap_app_event ev = nativeReturn();
  ev.flags = L7TAP_APP_F_NESTED;
  ev.g = 0xc000001a00;  // Go, but the goid offset is unknown
  ev.io = {};
  const CallEvent c = decoded(ev);
  CallRecord r;
  r.call = &c;
  r.function = "main.fib";
  FieldList f;
  const ConnectionInfo conn = callConnection(c);
  EXPECT_EQ(conn.id, 0u);
  r.visit(conn, f);
  EXPECT_FALSE(f.has("thread.id"));
  EXPECT_FALSE(f.has("l7tap.app.goroutine"));
  EXPECT_FALSE(f.has("network.local.address"));
  EXPECT_FALSE(f.has("l7tap.connection_id"));
  // No I/O is information too.
  EXPECT_EQ(f.get("l7tap.app.io.bytes_sent"), "0");
  EXPECT_EQ(f.get("l7tap.app.flags"), "nested");
  std::string message;
  r.appendMessage(message, conn);
  EXPECT_EQ(message, "call main.fib 12.3 ms pid 4242 [nested]");
}

TEST(CallRecordTest, AnUntrustedNameIsPrintableInTheMessage) {
  const CallEvent c = decoded(nativeReturn());
  CallRecord r;
  r.call = &c;
  r.function = "evil\n\x1b[2Jname";
  std::string message;
  r.appendMessage(message, callConnection(c));
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_NE(message.find("evil\\x0a\\x1b[2Jname"), std::string::npos) << message;
}

TEST(CallRecordTest, TheSocketIsTheProcesssEndFirst) {
  l7tap_app_event ev = nativeReturn();
  ev.conn.family = 6;
  std::memset(ev.conn.saddr, 0, 16);
  ev.conn.saddr[15] = 1;
  const CallEvent c = decoded(ev);
  const ConnectionInfo conn = callConnection(c);
  EXPECT_EQ(conn.family, 6);
  EXPECT_EQ(conn.client_side, Side::kOrig);
  EXPECT_EQ(conn.addr[0][15], 1);
  EXPECT_EQ(conn.port[0], 8080);
  EXPECT_EQ(conn.port[1], 41230);
  FieldList f;
  CallRecord r;
  r.call = &c;
  r.function = "f";
  r.visit(conn, f);
  EXPECT_EQ(f.get("network.local.address"), "::1");
}

TEST(CallRecordTest, TheFieldsALinkedExchangeGains) {
  const CallEvent c = decoded(nativeReturn());
  FieldList f;
  visitCallOnExchange(c, "handle_request", c.end_ns + 400'000, f);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"l7tap.app.call_id", std::to_string(c.callId())},
      {"l7tap.app.function", "handle_request"},
      {"l7tap.app.duration_ms", "12300000 ns"},
      {"l7tap.app.pid", "4242"},
      {"l7tap.app.tid", "4243"},
      {"l7tap.app.io.bytes_sent", "1024"},
      {"l7tap.app.io.bytes_received", "300"},
      {"l7tap.app.io.send_ms", "100000 ns"},
      {"l7tap.app.io.recv_ms", "20000 ns"},
      {"l7tap.app.after_return_ms", "400000 ns"},
  };
  EXPECT_EQ(f.fields, expected);
  // A response that ended before the return spent nothing after it.
  FieldList before;
  visitCallOnExchange(c, "handle_request", c.end_ns - 1, before);
  EXPECT_EQ(before.get("l7tap.app.after_return_ms"), "0 ns");
}

}  // namespace
}  // namespace l7tap
