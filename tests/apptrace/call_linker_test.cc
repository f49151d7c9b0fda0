// Calls tied to the exchanges they served, in every order the two rings can
// deliver them: call before exchange, exchange before call (held while the
// call is in flight), HTTP/2 streams served in parallel on one connection,
// nested calls; the waits' time limits and bounds; and everything else
// passed on untouched.
#include "apptrace/call_linker.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "apptrace/call_record.h"
#include "parsers/common/records.h"
#include "tests/apptrace/record_capture.h"

namespace l7tap {
namespace {

using testing::Captured;
using testing::CaptureSink;
using testing::FieldList;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'700'000'000'000'000'000;  // wall clock

// 10.1.0.4:port (client, kOrig) -> 10.1.0.9:8080 (server).
ConnectionInfo connection(uint64_t id, uint16_t client_port = 41230) {
  ConnectionInfo c;
  c.id = id;
  c.family = 4;
  c.addr[0] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 4};
  c.addr[1] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 9};
  c.port[0] = client_port;
  c.port[1] = 8080;
  c.client_side = Side::kOrig;
  return c;
}

// The request's first byte at `start` ms, the response's last at `end` ms.
HttpRecord exchange(uint64_t start_ms, uint64_t end_ms, uint32_t stream = 0) {
  HttpRecord r;
  r.method = "GET";
  r.path = "/api/user/" + std::to_string(start_ms);
  r.version = stream ? "2" : "1.1";
  r.status = 200;
  r.stream_id = stream;
  r.request_start_ns = kT0 + start_ms * kMs;
  r.request_end_ns = r.request_start_ns + kMs / 10;
  r.response_start_ns = kT0 + end_ms * kMs - kMs / 10;
  r.response_end_ns = kT0 + end_ms * kMs;
  return r;
}

struct CallSpec {
  uint64_t start_ms;
  uint64_t end_ms;
  uint32_t tid = 100;
  uint64_t g = 0;
  uint16_t function = 0;
  bool server_view = true;  // the server's socket; false: the client's
  uint16_t client_port = 41230;
  bool with_conn = true;
};

CallEvent call(const CallSpec& s) {
  CallEvent c;
  c.function = s.function;
  c.tgid = 42;
  c.tid = s.tid;
  c.g = s.g;
  c.goid = s.g ? s.g & 0xffff : 0;
  c.start_ns = kT0 + s.start_ms * kMs;
  c.end_ns = kT0 + s.end_ms * kMs;
  c.io.bytes_sent = 512;
  std::strcpy(c.comm, "server");
  if (!s.with_conn) return c;
  c.conn_known = true;
  c.flags = L7TAP_APP_F_CONN_KNOWN;
  const ConnectionInfo conn = connection(0, s.client_port);
  const int local = s.server_view ? 1 : 0;
  std::memcpy(c.conn.saddr, conn.addr[local].data(), 16);
  std::memcpy(c.conn.daddr, conn.addr[1 - local].data(), 16);
  c.conn.sport = conn.port[local];
  c.conn.dport = conn.port[1 - local];
  c.conn.family = 4;
  return c;
}

CallEvent entryOf(const CallEvent& c) {
  CallEvent e = c;
  e.entry = true;
  e.end_ns = 0;
  e.io = {};
  return e;
}

struct LinkerTest : ::testing::Test {
  CaptureSink sink;
  const std::vector<std::string> functions{"main.handleGetUser", "main.loadUser", "main.render"};
  CallLinker linker{sink, functions};

  const Captured& last() { return sink.records.back(); }
};

TEST_F(LinkerTest, ACallBeforeItsExchange) {
  const CallEvent c = call({.start_ms = 2, .end_ms = 8});
  linker.onCall(c);
  EXPECT_TRUE(sink.records.empty());  // held until its exchange
  const ConnectionInfo conn = connection(7);
  const HttpRecord http = exchange(1, 10);
  linker.onRecord(conn, http);
  ASSERT_EQ(sink.records.size(), 2u);
  const Captured& rc = sink.records[0];
  EXPECT_EQ(rc.type(), "app_call");
  EXPECT_EQ(rc.get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(rc.get("l7tap.connection_id"), "7");
  EXPECT_EQ(rc.get("client.address"), "10.1.0.4");
  EXPECT_EQ(rc.get("server.port"), "8080");
  EXPECT_EQ(rc.get("l7tap.app.function"), "main.handleGetUser");
  const Captured& rx = sink.records[1];
  EXPECT_EQ(rx.type(), "http");
  EXPECT_EQ(*rx.inner, typeid(HttpRecord));
  EXPECT_EQ(rx.get("url.path"), "/api/user/1");
  EXPECT_EQ(rx.get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(rx.get("l7tap.app.call_id"), std::to_string(c.callId()));
  EXPECT_EQ(rx.get("l7tap.app.function"), "main.handleGetUser");
  EXPECT_EQ(rx.get("l7tap.app.after_return_ms"), std::to_string(2 * kMs) + " ns");
  // The link's fields are what a wrapper adds, after the exchange's own.
  EXPECT_EQ(rx.added.fields.front().first, "l7tap.exchange_id");
  EXPECT_EQ(rx.fields.fields.back().first, "l7tap.app.after_return_ms");
  EXPECT_NE(rx.message.find("(call main.handleGetUser 6.0 ms)"), std::string::npos) << rx.message;
  EXPECT_EQ(linker.stats().calls, 1u);
  EXPECT_EQ(linker.stats().linked, 1u);
}

TEST_F(LinkerTest, AnExchangeHeldWhileItsCallIsInFlight) {
  const CallEvent c = call({.start_ms = 2, .end_ms = 12});
  linker.onCallEntry(entryOf(c));
  const HttpRecord http = exchange(1, 10);
  linker.onRecord(connection(7), http);
  EXPECT_TRUE(sink.records.empty());
  EXPECT_EQ(linker.stats().exchanges_held, 1u);
  linker.onCall(c);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].type(), "app_call");
  EXPECT_EQ(sink.records[0].get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(sink.records[1].type(), "http");
  EXPECT_EQ(sink.records[1].get("l7tap.exchange_id"), "7:1");
  // The response ended before the return.
  EXPECT_EQ(sink.records[1].get("l7tap.app.after_return_ms"), "0 ns");
  // The held copy is written, with the connection as it was.
  EXPECT_NE(sink.records[1].address, &http);
  EXPECT_EQ(sink.records[1].conn.id, 7u);
}

TEST_F(LinkerTest, EitherOrientationOfTheSocket) {
  // The client process's call: its socket is 10.1.0.4:41230 -> 10.1.0.9:8080.
  linker.onCall(call({.start_ms = 1, .end_ms = 11, .server_view = false}));
  linker.onRecord(connection(7), exchange(1, 10));
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].get("l7tap.exchange_id"), "7:1");
}

// A client's call (its socket is the exchange's client end) starts before
// the request and returns after the response: the request begins in it.
TEST_F(LinkerTest, AClientsCallHoldsTheExchangeItSent) {
  const CallEvent c = call({.start_ms = 1, .end_ms = 12, .server_view = false});
  linker.onCallEntry(entryOf(c));
  linker.onRecord(connection(7), exchange(2, 10));
  EXPECT_TRUE(sink.records.empty());
  linker.onCall(c);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(sink.records[1].get("l7tap.app.function"), "main.handleGetUser");
}

TEST_F(LinkerTest, AClientsCallTakesTheFirstRequestItSent) {
  // A retry on the same connection: two requests in one call.
  linker.onCall(call({.start_ms = 1, .end_ms = 30, .server_view = false}));
  linker.onRecord(connection(7), exchange(2, 10));
  linker.onRecord(connection(7), exchange(12, 20));
  ASSERT_EQ(sink.records.size(), 3u);
  EXPECT_EQ(sink.records[0].get("l7tap.exchange_id"), "7:1");
  EXPECT_TRUE(sink.records[1].fields.has("l7tap.app.call_id"));
  EXPECT_FALSE(sink.records[2].fields.has("l7tap.app.call_id"));
}

TEST_F(LinkerTest, AServersCallThatBeganBeforeTheRequestIsNotItsHandler) {
  // A connection's serving loop, traced: it spans the exchange, served none.
  const CallEvent loop = call({.start_ms = 0, .end_ms = 50});
  linker.onCallEntry(entryOf(loop));
  const HttpRecord http = exchange(1, 10);
  linker.onRecord(connection(7), http);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].address, &http);
  linker.onCall(loop);
  linker.expire(loop.end_ns + LinkerLimits::kMaxWaitNs + 1);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_FALSE(last().fields.has("l7tap.exchange_id"));
}

TEST_F(LinkerTest, ExchangesAreNumberedPerConnection) {
  const ConnectionInfo conn = connection(7);
  linker.onRecord(conn, exchange(1, 2));
  linker.onRecord(conn, exchange(3, 4));
  linker.onCall(call({.start_ms = 6, .end_ms = 7}));
  linker.onRecord(conn, exchange(5, 8));
  ASSERT_EQ(sink.records.size(), 4u);
  EXPECT_EQ(sink.records[2].get("l7tap.exchange_id"), "7:3");
  // Its final record ends the count; the next connection on the same
  // endpoints counts from 1.
  ConnRecord final_record;
  linker.onRecord(conn, final_record);
  linker.onCall(call({.start_ms = 21, .end_ms = 22}));
  linker.onRecord(connection(9), exchange(20, 23));
  EXPECT_EQ(last().get("l7tap.exchange_id"), "9:1");
  // So does a new connection on them without a final record (port reuse).
  linker.onCall(call({.start_ms = 31, .end_ms = 32}));
  linker.onRecord(connection(11), exchange(30, 33));
  EXPECT_EQ(last().get("l7tap.exchange_id"), "11:1");
}

TEST_F(LinkerTest, AnInterimConnectionRecordKeepsTheCount) {
  const ConnectionInfo conn = connection(7);
  linker.onRecord(conn, exchange(1, 2));
  ConnRecord interim;
  interim.interim = true;
  linker.onRecord(conn, interim);
  linker.onCall(call({.start_ms = 4, .end_ms = 5}));
  linker.onRecord(conn, exchange(3, 6));
  EXPECT_EQ(last().get("l7tap.exchange_id"), "7:2");
}

TEST_F(LinkerTest, EverythingElsePassesUntouched) {
  const ConnectionInfo conn = connection(7);
  const HttpRecord http = exchange(1, 2);
  ConnRecord conn_record;
  struct Other final : Record {
    void visit(const ConnectionInfo&, FieldVisitor& v) const override { v.str("type", "other"); }
    void appendMessage(std::string& out, const ConnectionInfo&) const override { out += "o"; }
  } other;
  // No call anywhere: nothing is held or wrapped.
  linker.onRecord(conn, http);
  linker.onRecord(conn, other);
  linker.onRecord(conn, conn_record);
  ASSERT_EQ(sink.records.size(), 3u);
  EXPECT_EQ(sink.records[0].address, &http);
  EXPECT_EQ(sink.records[1].address, &other);
  EXPECT_EQ(sink.records[2].address, &conn_record);
  // Calls on one connection leave the others' exchanges alone.
  linker.onCallEntry(entryOf(call({.start_ms = 5, .end_ms = 50})));
  linker.onCall(call({.start_ms = 6, .end_ms = 7, .tid = 101}));
  const HttpRecord elsewhere = exchange(5, 8);
  linker.onRecord(connection(8, 50000), elsewhere);
  linker.onRecord(connection(8, 50000), other);
  ASSERT_EQ(sink.records.size(), 5u);
  EXPECT_EQ(sink.records[3].address, &elsewhere);
  EXPECT_EQ(sink.records[4].address, &other);
  EXPECT_FALSE(sink.records[3].fields.has("l7tap.exchange_id"));
}

TEST_F(LinkerTest, AnExchangeWithoutRequestIsNotHeld) {
  linker.onCallEntry(entryOf(call({.start_ms = 2, .end_ms = 12})));
  HttpRecord response_only = exchange(1, 10);
  response_only.request_start_ns = response_only.request_end_ns = 0;
  linker.onRecord(connection(7), response_only);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].address, &response_only);
}

TEST_F(LinkerTest, AnExchangeWithoutResponseStaysOpenForItsCall) {
  // The connection closed before the response: the window has no end.
  const CallEvent c = call({.start_ms = 2, .end_ms = 5'000});
  linker.onCallEntry(entryOf(c));
  HttpRecord no_response = exchange(1, 10);
  no_response.status = 0;
  no_response.response_start_ns = no_response.response_end_ns = 0;
  no_response.flags = kFlagNoResponse;
  linker.onRecord(connection(7), no_response);
  EXPECT_TRUE(sink.records.empty());
  linker.onCall(c);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[1].get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(sink.records[1].get("l7tap.app.after_return_ms"), "0 ns");
}

TEST_F(LinkerTest, Ipv6Connections) {
  ConnectionInfo conn = connection(7);
  conn.family = 6;
  conn.addr[0] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4};
  conn.addr[1] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
  CallEvent c = call({.start_ms = 2, .end_ms = 8});
  c.conn.family = 6;
  std::memcpy(c.conn.saddr, conn.addr[1].data(), 16);
  std::memcpy(c.conn.daddr, conn.addr[0].data(), 16);
  linker.onCall(c);
  linker.onRecord(conn, exchange(1, 10));
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].get("server.address"), "fd00::9");
  EXPECT_EQ(sink.records[1].get("l7tap.exchange_id"), "7:1");
}

TEST_F(LinkerTest, CallsWithoutASocketAreWrittenAtOnce) {
  linker.onCall(call({.start_ms = 1, .end_ms = 2, .with_conn = false}));
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(last().type(), "app_call");
  EXPECT_FALSE(last().fields.has("l7tap.exchange_id"));
  EXPECT_FALSE(last().fields.has("network.local.address"));
}

TEST_F(LinkerTest, ACallWhoseExchangeNeverComes) {
  const CallEvent c = call({.start_ms = 1, .end_ms = 2});
  linker.onCall(c);
  linker.expire(c.end_ns + LinkerLimits::kMaxWaitNs);
  EXPECT_TRUE(sink.records.empty());
  linker.expire(c.end_ns + LinkerLimits::kMaxWaitNs + 1);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(last().type(), "app_call");
  EXPECT_EQ(last().get("network.local.port"), "8080");
  EXPECT_FALSE(last().fields.has("l7tap.exchange_id"));
  EXPECT_EQ(linker.stats().calls_timed_out, 1u);
  EXPECT_EQ(linker.stats().linked, 0u);
}

TEST_F(LinkerTest, AnExchangeWhoseCallNeverReturns) {
  linker.onCallEntry(entryOf(call({.start_ms = 2, .end_ms = 0})));
  const HttpRecord http = exchange(1, 10);
  linker.onRecord(connection(7), http);
  linker.expire(http.response_end_ns + LinkerLimits::kMaxWaitNs);
  EXPECT_TRUE(sink.records.empty());
  linker.expire(http.response_end_ns + LinkerLimits::kMaxWaitNs + 1);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(last().get("url.path"), "/api/user/1");
  EXPECT_FALSE(last().fields.has("l7tap.exchange_id"));
  EXPECT_EQ(linker.stats().exchanges_timed_out, 1u);
}

TEST_F(LinkerTest, ACallInFlightTooLongIsForgotten) {
  const CallEvent loop = call({.start_ms = 1, .end_ms = 0});
  linker.onCallEntry(entryOf(loop));
  linker.expire(loop.start_ns + LinkerLimits::kMaxInFlightNs + 1);
  EXPECT_EQ(linker.stats().in_flight_expired, 1u);
  const HttpRecord http = exchange(0, 70'000);
  linker.onRecord(connection(7), http);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].address, &http);
}

TEST_F(LinkerTest, TheFinalConnectionRecordEndsTheCallsWait) {
  linker.onCall(call({.start_ms = 1, .end_ms = 2}));
  ConnRecord final_record;
  linker.onRecord(connection(7), final_record);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].type(), "conn");
  EXPECT_EQ(sink.records[1].type(), "app_call");
  EXPECT_EQ(linker.stats().calls_timed_out, 1u);
}

TEST_F(LinkerTest, FlushWritesWhatWaits) {
  linker.onCall(call({.start_ms = 1, .end_ms = 2}));
  linker.onCallEntry(entryOf(call({.start_ms = 5, .end_ms = 0, .client_port = 50000})));
  linker.onRecord(connection(8, 50000), exchange(4, 6));
  EXPECT_TRUE(sink.records.empty());
  linker.flush();
  ASSERT_EQ(sink.records.size(), 2u);
  linker.flush();
  EXPECT_EQ(sink.records.size(), 2u);
}

TEST_F(LinkerTest, HeldCallsAreBounded) {
  for (size_t i = 0; i < LinkerLimits::kMaxHeldCalls; ++i) {
    linker.onCall(call({.start_ms = i, .end_ms = i + 1, .tid = static_cast<uint32_t>(i)}));
  }
  EXPECT_TRUE(sink.records.empty());
  linker.onCall(call({.start_ms = 1, .end_ms = 2, .tid = 999'999}));
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(last().get("thread.id"), "999999");
  EXPECT_EQ(linker.stats().dropped_over_bound, 1u);
}

TEST_F(LinkerTest, HeldExchangesAreBounded) {
  // One connection per exchange, each with its call in flight.
  for (size_t i = 0; i <= LinkerLimits::kMaxHeldExchanges; ++i) {
    const uint16_t port = static_cast<uint16_t>(10000 + i);
    linker.onCallEntry(
        entryOf(call({.start_ms = 2, .end_ms = 0, .tid = port, .client_port = port})));
    linker.onRecord(connection(i + 1, port), exchange(1, 10));
  }
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(last().conn.id, LinkerLimits::kMaxHeldExchanges + 1);
  EXPECT_EQ(linker.stats().exchanges_held, LinkerLimits::kMaxHeldExchanges);
  EXPECT_EQ(linker.stats().dropped_over_bound, 1u);
}

TEST_F(LinkerTest, CallsInFlightAreBounded) {
  for (size_t i = 0; i < LinkerLimits::kMaxInFlight; ++i) {
    linker.onCallEntry(
        entryOf(call({.start_ms = i, .end_ms = 0, .tid = static_cast<uint32_t>(i)})));
  }
  EXPECT_EQ(linker.stats().dropped_over_bound, 0u);
  // Past the bound an entry is not remembered: its exchange is not held.
  const CallEvent late = call({.start_ms = 100'000, .end_ms = 100'005, .client_port = 50000});
  linker.onCallEntry(entryOf(late));
  EXPECT_EQ(linker.stats().dropped_over_bound, 1u);
  linker.onRecord(connection(8, 50000), exchange(99'999, 100'001));
  EXPECT_EQ(sink.records.size(), 1u);
}

// HTTP/2: streams 1 and 3 on one connection, served by goroutines A and B,
// their windows overlapping. Each call goes to the stream whose window
// holds its start, in whichever order the records arrive.
struct Streams {
  // Stream 1 [0, 10] ms, stream 3 [2, 20] ms.
  HttpRecord s1 = exchange(0, 10, 1);
  HttpRecord s3 = exchange(2, 20, 3);
  CallEvent a = call({.start_ms = 1, .end_ms = 9, .g = 0xa000});
  CallEvent b = call({.start_ms = 3, .end_ms = 19, .g = 0xb000});
};

void expectStreamsLinked(const CaptureSink& sink) {
  std::string linked_a, linked_b, s1, s3;
  for (const Captured& r : sink.records) {
    if (r.type() == "app_call" && r.get("l7tap.app.goroutine") == std::to_string(0xa000)) {
      linked_a = r.get("l7tap.exchange_id");
    } else if (r.type() == "app_call") {
      linked_b = r.get("l7tap.exchange_id");
    } else if (r.get("l7tap.http2.stream_id") == "1") {
      s1 = r.get("l7tap.app.goroutine");
    } else {
      s3 = r.get("l7tap.app.goroutine");
    }
  }
  EXPECT_EQ(linked_a, "7:1");
  EXPECT_EQ(linked_b, "7:2");
  EXPECT_EQ(s1, std::to_string(0xa000));
  EXPECT_EQ(s3, std::to_string(0xb000));
}

TEST_F(LinkerTest, Http2StreamsCallsFirst) {
  Streams s;
  linker.onCallEntry(entryOf(s.a));
  linker.onCallEntry(entryOf(s.b));
  linker.onCall(s.a);
  linker.onRecord(connection(7), s.s1);  // B in flight, started in its window: not its
  linker.onCall(s.b);
  linker.onRecord(connection(7), s.s3);
  ASSERT_EQ(sink.records.size(), 4u);
  expectStreamsLinked(sink);
  EXPECT_EQ(linker.stats().exchanges_held, 0u);
}

TEST_F(LinkerTest, Http2StreamsBothReturnedFirst) {
  Streams s;
  linker.onCall(s.a);
  linker.onCall(s.b);
  linker.onRecord(connection(7), s.s1);  // claims A, leaves B (another goroutine)
  linker.onRecord(connection(7), s.s3);
  ASSERT_EQ(sink.records.size(), 4u);
  expectStreamsLinked(sink);
}

TEST_F(LinkerTest, Http2StreamsExchangesFirst) {
  Streams s;
  linker.onCallEntry(entryOf(s.a));
  linker.onCallEntry(entryOf(s.b));
  linker.onRecord(connection(7), s.s1);
  linker.onRecord(connection(7), s.s3);
  EXPECT_TRUE(sink.records.empty());
  linker.onCall(s.a);
  linker.onCall(s.b);
  ASSERT_EQ(sink.records.size(), 4u);
  expectStreamsLinked(sink);
}

TEST_F(LinkerTest, NestedCallsNameOneExchangeWhichShowsTheOutermost) {
  const CallEvent outer = call({.start_ms = 2, .end_ms = 9, .function = 0});
  const CallEvent inner = call({.start_ms = 3, .end_ms = 5, .function = 1});
  linker.onCallEntry(entryOf(outer));
  linker.onCallEntry(entryOf(inner));
  linker.onCall(inner);
  linker.onRecord(connection(7), exchange(1, 8));  // still waits for the outer call
  EXPECT_EQ(sink.records.size(), 1u);
  linker.onCall(outer);
  ASSERT_EQ(sink.records.size(), 3u);
  EXPECT_EQ(sink.records[0].get("l7tap.app.function"), "main.loadUser");
  EXPECT_EQ(sink.records[0].get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(sink.records[1].get("l7tap.app.function"), "main.handleGetUser");
  EXPECT_EQ(sink.records[1].get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(sink.records[2].type(), "http");
  EXPECT_EQ(sink.records[2].get("l7tap.app.function"), "main.handleGetUser");
}

TEST_F(LinkerTest, NestedCallsBothReturnedFirst) {
  linker.onCall(call({.start_ms = 3, .end_ms = 5, .function = 1}));
  linker.onCall(call({.start_ms = 2, .end_ms = 9, .function = 0}));
  linker.onRecord(connection(7), exchange(1, 10));
  ASSERT_EQ(sink.records.size(), 3u);
  EXPECT_EQ(sink.records[2].get("l7tap.app.function"), "main.handleGetUser");
  EXPECT_EQ(linker.stats().linked, 2u);
}

TEST_F(LinkerTest, ACallIsLookedForOnItsEntrysConnectionFirst) {
  // The handler read its request on the HTTP connection, then did I/O on
  // another (its database): the return names that one.
  CallEvent c = call({.start_ms = 2, .end_ms = 12});
  linker.onCallEntry(entryOf(c));
  linker.onRecord(connection(7), exchange(1, 10));
  c.conn.dport = 5432;
  c.flags |= L7TAP_APP_F_MULTI_CONN;
  linker.onCall(c);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(sink.records[1].get("l7tap.exchange_id"), "7:1");
}

TEST_F(LinkerTest, AWrappedExchangeIsHeldWithTheFieldsItsWrapperAdded) {
  // A wrapper as the session's is (every pipeline record has its capture
  // source), adding one field.
  struct Sourced final : Record {
    const Record& inner_record;
    explicit Sourced(const Record& r) : inner_record(r) {}
    void visit(const ConnectionInfo& c, FieldVisitor& v) const override {
      inner_record.visit(c, v);
      v.str("l7tap.capture.source", "packet");
    }
    void appendMessage(std::string& out, const ConnectionInfo& c) const override {
      inner_record.appendMessage(out, c);
    }
    const Record& inner() const override { return inner_record.inner(); }
    void visitAdded(const ConnectionInfo&, FieldVisitor& v) const override {
      v.str("l7tap.capture.source", "packet");
    }
  };
  linker.onCall(call({.start_ms = 2, .end_ms = 8}));
  const HttpRecord first = exchange(1, 10);
  linker.onRecord(connection(7), Sourced(first));
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(last().get("l7tap.capture.source"), "packet");
  EXPECT_EQ(last().get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(last().added.get("l7tap.capture.source"), "packet");
  EXPECT_EQ(last().added.get("l7tap.exchange_id"), "7:1");
  // In flight: held, copied, and written with its wrapper's field once the
  // call returns, in the same order as a record that was not held.
  const CallEvent c = call({.start_ms = 21, .end_ms = 35});
  linker.onCallEntry(entryOf(c));
  {
    const HttpRecord second = exchange(20, 30);
    linker.onRecord(connection(7), Sourced(second));
  }
  ASSERT_EQ(sink.records.size(), 2u);
  linker.onCall(c);
  ASSERT_EQ(sink.records.size(), 4u);
  const Captured& held = sink.records[3].type() == "http" ? sink.records[3] : sink.records[2];
  EXPECT_EQ(held.get("l7tap.capture.source"), "packet");
  EXPECT_EQ(held.get("l7tap.exchange_id"), "7:2");
  EXPECT_EQ(held.added.get("l7tap.capture.source"), "packet");
  EXPECT_EQ(held.get("url.path"), "/api/user/20");
  EXPECT_EQ(held.fields.names(), sink.records[1].fields.names());
}

TEST_F(LinkerTest, CallsQueuedMeanwhileAreReadBeforeAnExchangeIsDecided) {
  // The capture's ring is read while the call starts (and here also ends):
  // its events are queued, not yet read, when the exchange arrives.
  const CallEvent c = call({.start_ms = 21, .end_ms = 35});
  std::vector<CallEvent> queued{entryOf(c)};
  int reads = 0;
  linker.setCatchUp([&] {
    ++reads;
    for (const CallEvent& e : queued) {
      if (e.entry) {
        linker.onCallEntry(e);
      } else {
        linker.onCall(e);
      }
    }
    queued.clear();
  });
  linker.onRecord(connection(7), exchange(20, 30));
  EXPECT_EQ(reads, 1);
  EXPECT_TRUE(sink.records.empty());  // held: its call was found in flight
  queued.push_back(c);
  linker.onRecord(connection(8, 41231), exchange(40, 50));  // another connection: reads the return
  ASSERT_EQ(sink.records.size(), 3u);
  EXPECT_EQ(sink.records[0].get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(sink.records[1].get("l7tap.exchange_id"), "7:1");
  EXPECT_EQ(sink.records[2].get("l7tap.connection_id"), "8");
  EXPECT_EQ(linker.stats().linked, 1u);
}

TEST_F(LinkerTest, SequentialExchangesOnAKeepAliveConnection) {
  const ConnectionInfo conn = connection(7);
  for (uint64_t i = 0; i < 5; ++i) {
    const CallEvent c = call({.start_ms = 10 * i + 1, .end_ms = 10 * i + 5});
    if (i % 2) {
      linker.onCallEntry(entryOf(c));
      linker.onRecord(conn, exchange(10 * i, 10 * i + 4));
      linker.onCall(c);
    } else {
      linker.onCall(c);
      linker.onRecord(conn, exchange(10 * i, 10 * i + 6));
    }
  }
  ASSERT_EQ(sink.records.size(), 10u);
  for (uint64_t i = 0; i < 5; ++i) {
    const std::string id = "7:" + std::to_string(i + 1);
    EXPECT_EQ(sink.records[2 * i].get("l7tap.exchange_id"), id);
    EXPECT_EQ(sink.records[2 * i + 1].get("l7tap.exchange_id"), id);
    EXPECT_EQ(sink.records[2 * i + 1].get("url.path"), "/api/user/" + std::to_string(10 * i));
  }
  EXPECT_EQ(linker.stats().linked, 5u);
}

}  // namespace
}  // namespace l7tap
