// The physical reference: how fast this machine copies memory, and how fast
// the kernel program's ring buffer delivers events to a reader that does
// nothing with them, so the pipeline's MB/s can be read as a fraction of
// the limit.
//
//   build/bench/l7tap_bench --benchmark_filter='Memcpy|RingDelivery'
//
// RingDelivery (root: it loads BPF) loads the real TC program from its
// embedded skeleton, runs it on one built TCP segment of 1448 payload bytes
// with BPF_PROG_TEST_RUN (`repeat` runs per call, each producing one event,
// 6 MB of events per call: the 8 MB ring never fills), then drains the ring with
// ring_buffer__consume into a callback that reads each event's header and counts its bytes
// (borrowed, as the daemon's reader does). Both halves run on the calling
// core, one after the other. Counters: events/s end to end, bytes/s of
// samples consumed, kernel_ns (the program per event, from the test run's
// own duration) and consume_ns (per event).
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tc/l7tap_abi.h"
// The skeleton refers to struct l7tap_config: include it after the ABI.
#include "l7tap_tc.skel.h"

namespace l7tap {
namespace {

void BM_Memcpy(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> src(n, 0x5a), dst(n, 0);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), n);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_Memcpy)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20)->Arg(64 << 20);

// Ethernet + IPv4 + TCP (ACK|PSH) + `payload` bytes, 10.1.0.4:41230 -> 10.1.0.9:8080.
std::vector<uint8_t> tcpFrame(size_t payload) {
  std::vector<uint8_t> f(14 + 20 + 20 + payload, 0);
  uint8_t* eth = f.data();
  const uint8_t dst[6] = {2, 0, 0, 0, 0, 2}, src[6] = {2, 0, 0, 0, 0, 1};
  std::memcpy(eth, dst, 6);
  std::memcpy(eth + 6, src, 6);
  eth[12] = 0x08;
  uint8_t* ip = eth + 14;
  ip[0] = 0x45;
  const uint16_t total = htons(static_cast<uint16_t>(40 + payload));
  std::memcpy(ip + 2, &total, 2);
  ip[6] = 0x40;  // DF
  ip[8] = 64;
  ip[9] = 6;
  const uint8_t saddr[4] = {10, 1, 0, 4}, daddr[4] = {10, 1, 0, 9};
  std::memcpy(ip + 12, saddr, 4);
  std::memcpy(ip + 16, daddr, 4);
  uint8_t* tcp = ip + 20;
  const uint16_t sport = htons(41230), dport = htons(8080);
  std::memcpy(tcp, &sport, 2);
  std::memcpy(tcp + 2, &dport, 2);
  const uint32_t seq = htonl(1000), ack = htonl(2000);
  std::memcpy(tcp + 4, &seq, 4);
  std::memcpy(tcp + 8, &ack, 4);
  tcp[12] = 5 << 4;
  tcp[13] = 0x18;  // ACK|PSH
  tcp[14] = 0xff;
  tcp[15] = 0xff;
  for (size_t i = 0; i < payload; ++i) tcp[20 + i] = static_cast<uint8_t>('a' + i % 26);
  return f;
}

struct Consumed {
  uint64_t events = 0;
  uint64_t bytes = 0;
};

int onSample(void* ctx, void* data, size_t size) {
  auto* c = static_cast<Consumed*>(ctx);
  const auto* h = static_cast<const l7tap_event_header*>(data);
  c->events++;
  c->bytes += size;
  benchmark::DoNotOptimize(h->kind);
  return 0;
}

void BM_RingDelivery(benchmark::State& state) {
  if (geteuid() != 0) {
    state.SkipWithError("needs root: loads the BPF program (skipped)");
    return;
  }
  const uint32_t window = static_cast<uint32_t>(state.range(0));
  const uint32_t wakeup_bytes = static_cast<uint32_t>(state.range(1));
  constexpr size_t kPayload = 1448;
  l7tap_tc* skel = l7tap_tc__open();
  if (skel == nullptr) {
    state.SkipWithError(("l7tap_tc__open: " + std::string(strerror(errno))).c_str());
    return;
  }
  skel->rodata->l7tap_cfg.window = window;
  skel->rodata->l7tap_cfg.wakeup_bytes = wakeup_bytes;
  bpf_program__set_autoload(skel->progs.l7tap_xdp, false);
  if (int err = l7tap_tc__load(skel); err != 0) {
    state.SkipWithError(("l7tap_tc__load: " + std::string(strerror(-err))).c_str());
    l7tap_tc__destroy(skel);
    return;
  }
  Consumed consumed;
  ring_buffer* ring =
      ring_buffer__new(bpf_map__fd(skel->maps.events), onSample, &consumed, nullptr);
  if (ring == nullptr) {
    state.SkipWithError("ring_buffer__new failed");
    l7tap_tc__destroy(skel);
    return;
  }
  const std::vector<uint8_t> frame = tcpFrame(kPayload);
  // As many events per test run as fit in the 8 MB ring with room to spare.
  const uint32_t sample = L7TAP_SEGMENT_EVENT_HEADER_SIZE + 8 +
                          (window <= 1024   ? 1024u
                           : window <= 2048 ? 2048u
                                            : 4096u);
  const int repeat = static_cast<int>(std::min<uint32_t>(4096, (6u << 20) / sample));
  __sk_buff ctx{};
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof(ctx);
  opts.repeat = repeat;
  const int prog = bpf_program__fd(skel->progs.l7tap_ingress);
  double kernel_ns = 0, consume_ns = 0;
  for (auto _ : state) {
    if (bpf_prog_test_run_opts(prog, &opts) != 0) {
      state.SkipWithError(("BPF_PROG_TEST_RUN: " + std::string(strerror(errno))).c_str());
      break;
    }
    kernel_ns += double(opts.duration) * repeat;  // duration: mean ns per run
    const auto t0 = std::chrono::steady_clock::now();
    ring_buffer__consume(ring);
    consume_ns +=
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  }
  uint32_t key = L7TAP_CNT_RINGBUF_FULL;
  std::vector<uint64_t> full(static_cast<size_t>(libbpf_num_possible_cpus()));
  uint64_t dropped = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &key, full.data()) == 0)
    for (uint64_t v : full) dropped += v;
  state.SetBytesProcessed(static_cast<int64_t>(consumed.bytes));
  state.counters["events/s"] =
      benchmark::Counter(double(consumed.events), benchmark::Counter::kIsRate);
  const double events = consumed.events ? double(consumed.events) : 1.0;
  state.counters["kernel_ns"] = kernel_ns / events;
  state.counters["consume_ns"] = consume_ns / events;
  state.counters["ringbuf_full"] = double(dropped);
  state.counters["sample_B"] = double(consumed.bytes) / events;
  ring_buffer__free(ring);
  l7tap_tc__destroy(skel);
}
// Windows as in the pipeline benchmark (4096 copies the whole 1448-byte
// payload). wakeup_bytes: 0 is the kernel's own rule (wake when the reader
// had caught up: once per batch here), 262144 the daemon's default (force a
// wake-up once that much is queued), 4294967295 never.
constexpr int64_t kNever = 0xffffffff;
BENCHMARK(BM_RingDelivery)
    ->ArgNames({"window", "wakeup_bytes"})
    ->Args({256, kNever})
    ->Args({1024, kNever})
    ->Args({4096, kNever})
    ->Args({1024, 0})
    ->Args({1024, 256 * 1024})
    ->UseRealTime();

}  // namespace
}  // namespace l7tap
