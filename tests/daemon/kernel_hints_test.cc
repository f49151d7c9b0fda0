// The hints writer and the close hook on maps shaped like the kernel
// program's (created here, root), and the direction mapping without any.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "daemon/kernel_flows.h"
#include "daemon/kernel_hints.h"
#include "tests/support/privileged.h"

namespace l7tap {
namespace {

// A map of the kernel program's key and value types, closed at the end.
struct Map {
  Map(size_t key_size, size_t value_size, uint32_t entries)
      : fd(bpf_map_create(BPF_MAP_TYPE_HASH, "l7tap_test", static_cast<uint32_t>(key_size),
                          static_cast<uint32_t>(value_size), entries, nullptr)) {}
  ~Map() {
    if (fd >= 0) close(fd);
  }
  int fd;
};

l7tap_flow_key flow(uint8_t last) {
  l7tap_flow_key k{};
  k.saddr[10] = k.saddr[11] = k.daddr[10] = k.daddr[11] = 0xff;
  k.saddr[15] = 1;
  k.daddr[15] = last;
  k.sport = 41230;
  k.dport = 8080;
  k.family = 4;
  return k;
}

class KernelHints : public ::testing::Test {
 protected:
  void SetUp() override {
    L7TAP_SKIP_UNLESS(testing::missingRoot());
    ASSERT_GE(ctl_.fd, 0) << std::strerror(errno);
    ASSERT_GE(walk_.fd, 0) << std::strerror(errno);
  }
  l7tap_capture_ctl ctl(const l7tap_flow_key& k) {
    l7tap_capture_ctl c{};
    found_ = bpf_map_lookup_elem(ctl_.fd, &k, &c) == 0;
    return c;
  }
  Map ctl_{sizeof(l7tap_flow_key), sizeof(l7tap_capture_ctl), 2};
  Map walk_{sizeof(l7tap_frame_walk_key), sizeof(l7tap_frame_walk), 4};
  KernelCaptureHints hints_{ctl_.fd, walk_.fd};
  bool found_ = false;
};

TEST_F(KernelHints, SkipKeepsTheOtherDirectionsRange) {
  const l7tap_flow_key k = flow(2);
  hints_.skip(k, 1, 1000, 2000);
  hints_.skip(k, 0, 10, 20);
  const l7tap_capture_ctl c = ctl(k);
  ASSERT_TRUE(found_);
  EXPECT_EQ(c.skip_start[0], 10u);
  EXPECT_EQ(c.skip_end[0], 20u);
  EXPECT_EQ(c.skip_start[1], 1000u);
  EXPECT_EQ(c.skip_end[1], 2000u);
  EXPECT_EQ(c.l4_only, 0);
  EXPECT_EQ(hints_.failures(), 0u);
}

TEST_F(KernelHints, CountOnly) {
  const l7tap_flow_key k = flow(2);
  hints_.countOnly(k);
  EXPECT_EQ(ctl(k).l4_only, 1);
}

TEST_F(KernelHints, WalkFramesArmsOneDirectionAndFlagsTheFlow) {
  const l7tap_flow_key k = flow(2);
  hints_.skip(k, 0, 10, 20);
  hints_.walkFrames(k, 1, 5000);
  l7tap_frame_walk_key wk{};
  wk.flow = k;
  wk.dir = 1;
  l7tap_frame_walk w{};
  ASSERT_EQ(bpf_map_lookup_elem(walk_.fd, &wk, &w), 0);
  EXPECT_EQ(w.state, L7TAP_WALK_ARMED);
  EXPECT_EQ(w.next_hdr, 5000u);
  wk.dir = 0;
  EXPECT_NE(bpf_map_lookup_elem(walk_.fd, &wk, &w), 0);
  const l7tap_capture_ctl c = ctl(k);
  EXPECT_EQ(c.frame_walk, 1);
  EXPECT_EQ(c.skip_end[0], 20u);  // kept

  hints_.forget(k);
  ctl(k);
  EXPECT_FALSE(found_);
  wk.dir = 1;
  EXPECT_NE(bpf_map_lookup_elem(walk_.fd, &wk, &w), 0);
}

TEST_F(KernelHints, AFullMapIsCountedNotFatal) {
  for (uint8_t i = 2; i < 5; ++i) hints_.countOnly(flow(i));  // room for 2
  EXPECT_EQ(hints_.failures(), 1u);
  ctl(flow(4));
  EXPECT_FALSE(found_);
}

TEST_F(KernelHints, CloseHookReadsTheFlowsCountersBySide) {
  Map flows(sizeof(l7tap_flow_key), sizeof(l7tap_flow_counters), 4);
  ASSERT_GE(flows.fd, 0);
  const l7tap_flow_key k = flow(2);  // canonical: ::ffff:0.0.0.1 is the source
  l7tap_flow_counters c{};
  c.packets[0] = 3;
  c.packets[1] = 5;
  c.bytes[0] = 300;
  c.bytes[1] = 500;
  ASSERT_EQ(bpf_map_update_elem(flows.fd, &k, &c, BPF_ANY), 0);
  KernelFlows hook(flows.fd, kDefaultReassemblyLimits.idle_timeout_ns);
  // The originator is the higher endpoint: Side 0 is the kernel's index 1.
  ConnectionInfo::KernelCounts counts;
  ASSERT_TRUE(hook.onClosing(k, 1, counts));
  EXPECT_EQ(counts.packets[0], 5u);
  EXPECT_EQ(counts.bytes[0], 500u);
  EXPECT_EQ(counts.packets[1], 3u);
  EXPECT_EQ(counts.bytes[1], 300u);
  ASSERT_TRUE(hook.onClosing(k, 0, counts));
  EXPECT_EQ(counts.packets[0], 3u);
  EXPECT_EQ(counts.bytes[1], 500u);
  EXPECT_FALSE(hook.onClosing(flow(3), 0, counts));  // not in the map
}

TEST_F(KernelHints, SweepRemovesEndedAndIdleFlows) {
  Map flows(sizeof(l7tap_flow_key), sizeof(l7tap_flow_counters), 4);
  ASSERT_GE(flows.fd, 0);
  const uint64_t s = 1000ull * 1000 * 1000;
  const uint64_t now = 1000 * s;
  const l7tap_flow_key recent = flow(2), ended = flow(3), idle = flow(4);
  l7tap_flow_counters c{};
  c.last_ns = now - 10 * s;
  bpf_map_update_elem(flows.fd, &recent, &c, BPF_ANY);
  c.ended = 1;
  c.last_ns = now - KernelFlows::kEndedFlowGraceNs - s;
  bpf_map_update_elem(flows.fd, &ended, &c, BPF_ANY);
  c.ended = 0;
  c.last_ns = now - 301 * s;  // past the idle timeout given below
  bpf_map_update_elem(flows.fd, &idle, &c, BPF_ANY);
  KernelFlows(flows.fd, 300 * s).sweep(now);
  l7tap_flow_counters v;
  EXPECT_EQ(bpf_map_lookup_elem(flows.fd, &recent, &v), 0);
  EXPECT_NE(bpf_map_lookup_elem(flows.fd, &ended, &v), 0);
  EXPECT_NE(bpf_map_lookup_elem(flows.fd, &idle, &v), 0);
}

// Without any map: the kernel counts by direction, a record by side.
TEST(KernelFlowCounters, BySide) {
  l7tap_flow_counters c{};
  c.packets[0] = 1;
  c.packets[1] = 2;
  c.bytes[0] = 10;
  c.bytes[1] = 20;
  c.retransmits[0] = 3;
  c.retransmits[1] = 4;
  c.zero_windows[0] = 5;
  c.zero_windows[1] = 6;
  ConnectionInfo::KernelCounts k;
  kernelCountsBySide(c, 0, k);
  EXPECT_EQ(k.packets[0], 1u);
  EXPECT_EQ(k.bytes[1], 20u);
  EXPECT_EQ(k.retransmits[0], 3u);
  EXPECT_EQ(k.zero_windows[1], 6u);
  kernelCountsBySide(c, 1, k);
  EXPECT_EQ(k.packets[0], 2u);
  EXPECT_EQ(k.bytes[1], 10u);
  EXPECT_EQ(k.retransmits[0], 4u);
  EXPECT_EQ(k.zero_windows[1], 5u);
}

}  // namespace
}  // namespace l7tap
