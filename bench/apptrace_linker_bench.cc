// The per-record cost of CallLinker (apptrace/) on the way to the sinks: an
// exchange record passed through it when no call waits anywhere (attach
// with --trace-config on a node whose traced processes are idle) or only on
// other connections, against the sink alone; and a call linked to its
// exchange (entry, exchange held, return: two records out).
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "apptrace/call_linker.h"
#include "parsers/common/records.h"

namespace l7tap {
namespace {

const std::vector<std::string> kFunctions{"main.handle"};

constexpr uint64_t kT0 = 1'700'000'000'000'000'000;

class CountingSink final : public RecordSink {
 public:
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    benchmark::DoNotOptimize(&record);
    records += conn.id != 0 ? 1 : 0;
  }
  uint64_t records = 0;
};

std::vector<ConnectionInfo> connections(int n) {
  std::vector<ConnectionInfo> out(n);
  for (int i = 0; i < n; ++i) {
    ConnectionInfo& c = out[i];
    c.id = i + 1;
    c.addr[0] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 4};
    c.addr[1] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 9};
    c.port[0] = static_cast<uint16_t>(20000 + i);
    c.port[1] = 8080;
  }
  return out;
}

HttpRecord sampleExchange() {
  HttpRecord r;
  r.method = "GET";
  r.path = "/api/user/10";
  r.version = "1.1";
  r.status = 200;
  r.request_start_ns = kT0;
  r.request_end_ns = kT0 + 1000;
  r.response_start_ns = kT0 + 900'000;
  r.response_end_ns = kT0 + 1'000'000;
  return r;
}

CallEvent callOn(const ConnectionInfo& c, uint64_t start_ns, uint64_t end_ns) {
  CallEvent e;
  e.tgid = 42;
  e.tid = 43;
  e.start_ns = start_ns;
  e.end_ns = end_ns;
  e.conn_known = true;
  e.flags = L7TAP_APP_F_CONN_KNOWN;
  std::memcpy(e.conn.saddr, c.addr[1].data(), 16);
  std::memcpy(e.conn.daddr, c.addr[0].data(), 16);
  e.conn.sport = c.port[1];
  e.conn.dport = c.port[0];
  e.conn.family = 4;
  return e;
}

// The sink alone: the baseline.
void BM_ExchangeDirect(benchmark::State& state) {
  CountingSink sink;
  const std::vector<ConnectionInfo> conns = connections(static_cast<int>(state.range(0)));
  const HttpRecord r = sampleExchange();
  size_t i = 0;
  for (auto _ : state) {
    sink.onRecord(conns[i], r);
    if (++i == conns.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExchangeDirect)->Arg(1)->Arg(1000);

// Through the linker, no call anywhere: one lookup (the exchange count).
void BM_ExchangeThroughLinker(benchmark::State& state) {
  CountingSink sink;
  CallLinker linker(sink, kFunctions);
  const std::vector<ConnectionInfo> conns = connections(static_cast<int>(state.range(0)));
  const HttpRecord r = sampleExchange();
  size_t i = 0;
  for (auto _ : state) {
    linker.onRecord(conns[i], r);
    if (++i == conns.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExchangeThroughLinker)->Arg(1)->Arg(1000);

// A call in flight on another connection: a second lookup, nothing held.
void BM_ExchangeThroughLinkerCallElsewhere(benchmark::State& state) {
  CountingSink sink;
  CallLinker linker(sink, kFunctions);
  const std::vector<ConnectionInfo> conns = connections(static_cast<int>(state.range(0)) + 1);
  CallEvent entry = callOn(conns.back(), kT0, 0);
  entry.entry = true;
  linker.onCallEntry(entry);
  const HttpRecord r = sampleExchange();
  size_t i = 0;
  for (auto _ : state) {
    linker.onRecord(conns[i], r);
    if (++i == conns.size() - 1) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExchangeThroughLinkerCallElsewhere)->Arg(1)->Arg(1000);

// One call linked to its exchange, the exchange held while the call runs:
// entry, exchange, return; a call record and a linked exchange written.
void BM_CallLinkedToItsExchange(benchmark::State& state) {
  CountingSink sink;
  CallLinker linker(sink, kFunctions);
  const std::vector<ConnectionInfo> conns = connections(1);
  HttpRecord r = sampleExchange();
  uint64_t t = kT0;
  for (auto _ : state) {
    r.request_start_ns = t;
    r.response_end_ns = t + 1'000'000;
    CallEvent call = callOn(conns[0], t + 10'000, t + 1'100'000);
    CallEvent entry = call;
    entry.entry = true;
    entry.end_ns = 0;
    linker.onCallEntry(entry);
    linker.onRecord(conns[0], r);
    linker.onCall(call);
    t += 2'000'000;
  }
  if (linker.stats().linked != static_cast<uint64_t>(state.iterations())) {
    state.SkipWithError("calls not linked");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CallLinkedToItsExchange);

}  // namespace
}  // namespace l7tap
