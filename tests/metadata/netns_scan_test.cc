// NetnsScanner on a /proc built by the test: which processes share a
// namespace, what their cgroups say, and the bounds.
#include "metadata/netns_scan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/metadata/fake_proc.h"

namespace l7tap::metadata {
namespace {

using testing::FakeProc;

const std::string kUid = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const std::string kUid2 = "11111111-2222-4333-8444-555555555555";
const std::string kPause = "a000000000000000000000000000000000000000000000000000000000000000";
const std::string kApp = "b000000000000000000000000000000000000000000000000000000000000000";
const std::string kSidecar = "c000000000000000000000000000000000000000000000000000000000000000";

std::string podCgroup(const std::string& uid, const std::string& id) {
  std::string underscored = uid;
  for (char& c : underscored) c = c == '-' ? '_' : c;
  return "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + underscored +
         ".slice/cri-containerd-" + id + ".scope\n";
}

constexpr uint64_t kPodNetns = 4026532001;
constexpr uint64_t kOtherNetns = 4026532002;
constexpr uint64_t kHostNetns = 4026531840;

TEST(NetnsScan, PodWithTwoContainers) {
  FakeProc proc;
  proc.add(1, kHostNetns, "systemd", "0::/init.scope\n");
  proc.add(100, kPodNetns, "pause", podCgroup(kUid, kPause));
  proc.add(120, kPodNetns, "nginx", podCgroup(kUid, kApp));
  proc.add(121, kPodNetns, "nginx", podCgroup(kUid, kApp), /*as_file=*/true);
  proc.add(130, kPodNetns, "envoy", podCgroup(kUid, kSidecar));
  proc.add(200, kOtherNetns, "redis", podCgroup(kUid2, kApp));

  const NetnsScan scan = NetnsScanner(proc.root()).scan(kPodNetns);
  EXPECT_EQ(scan.netns_inode, kPodNetns);
  ASSERT_EQ(scan.processes.size(), 4u);
  EXPECT_EQ(scan.processes[0].pid, 100);
  EXPECT_EQ(scan.processes[0].comm, "pause");
  EXPECT_EQ(scan.processes[2].pid, 121);
  EXPECT_EQ(scan.processes[3].comm, "envoy");
  EXPECT_EQ(scan.pod_uids, std::vector<std::string>{kUid});
  EXPECT_EQ(scan.container_ids, (std::vector<std::string>{kPause, kApp, kSidecar}));
  EXPECT_EQ(scan.pids_examined, 6u);
  EXPECT_EQ(scan.ambiguous_cgroups, 0u);
  EXPECT_FALSE(scan.truncated);
}

TEST(NetnsScan, HostNetworkHoldsManyPods) {
  FakeProc proc;
  proc.add(1, kHostNetns, "systemd", "0::/init.scope\n");
  proc.add(300, kHostNetns, "kube-proxy", podCgroup(kUid, kApp));
  proc.add(400, kHostNetns, "node-exporter", podCgroup(kUid2, kSidecar));
  const NetnsScan scan = NetnsScanner(proc.root()).scan(kHostNetns);
  EXPECT_EQ(scan.processes.size(), 3u);
  EXPECT_EQ(scan.pod_uids, (std::vector<std::string>{kUid2, kUid}));
}

TEST(NetnsScan, VanishedAndUnreadableProcesses) {
  FakeProc proc;
  proc.addVanished(50);
  proc.add(100, kPodNetns, "app",
           "4:cpu:/kubepods/pod" + kUid + "/" + kApp + "\n0::/kubepods/pod" + kUid2 + "\n");
  const NetnsScan scan = NetnsScanner(proc.root()).scan(kPodNetns);
  ASSERT_EQ(scan.processes.size(), 1u);
  EXPECT_TRUE(scan.pod_uids.empty());
  EXPECT_EQ(scan.ambiguous_cgroups, 1u);
  EXPECT_EQ(scan.pids_examined, 2u);
}

TEST(NetnsScan, UnknownNamespaceIsEmpty) {
  FakeProc proc;
  proc.add(100, kPodNetns, "app", podCgroup(kUid, kApp));
  const NetnsScan scan = NetnsScanner(proc.root()).scan(12345);
  EXPECT_TRUE(scan.processes.empty());
  EXPECT_FALSE(scan.truncated);
}

TEST(NetnsScan, MissingProcIsEmpty) {
  const NetnsScan scan = NetnsScanner("/nonexistent-i11c").scan(kPodNetns);
  EXPECT_TRUE(scan.processes.empty());
  EXPECT_EQ(scan.pids_examined, 0u);
}

TEST(NetnsScan, ProcessCapTruncates) {
  FakeProc proc;
  for (int pid = 1; pid <= 10; ++pid) proc.add(pid, kPodNetns, "p", podCgroup(kUid, kApp));
  MetadataLimits limits;
  limits.max_processes_per_scan = 4;
  const NetnsScan scan = NetnsScanner(proc.root(), limits).scan(kPodNetns);
  EXPECT_TRUE(scan.truncated);
  EXPECT_EQ(scan.pids_examined, 4u);
  EXPECT_EQ(scan.processes.size(), 4u);
}

TEST(NetnsScan, PerNamespaceCapTruncates) {
  FakeProc proc;
  for (int pid = 1; pid <= 10; ++pid) proc.add(pid, kPodNetns, "p", podCgroup(kUid, kApp));
  MetadataLimits limits;
  limits.max_processes_per_netns = 3;
  const NetnsScan scan = NetnsScanner(proc.root(), limits).scan(kPodNetns);
  EXPECT_TRUE(scan.truncated);
  EXPECT_EQ(scan.processes.size(), 3u);
  EXPECT_EQ(scan.pod_uids, std::vector<std::string>{kUid});
}

TEST(NetnsScan, CgroupFileIsReadBounded) {
  FakeProc proc;
  // The pod line lies past the bound: not read, so no pod.
  proc.add(100, kPodNetns, "app", std::string(200, '\n') + podCgroup(kUid, kApp));
  MetadataLimits limits;
  limits.max_cgroup_file_bytes = 100;
  const NetnsScan scan = NetnsScanner(proc.root(), limits).scan(kPodNetns);
  ASSERT_EQ(scan.processes.size(), 1u);
  EXPECT_TRUE(scan.pod_uids.empty());
}

TEST(NetnsScan, NamespacesMapsEachToItsLowestPid) {
  FakeProc proc;
  proc.add(7, kHostNetns, "a", "");
  proc.add(3, kHostNetns, "b", "");
  proc.add(12, kPodNetns, "c", "");
  bool truncated = true;
  const auto namespaces = NetnsScanner(proc.root()).namespaces(&truncated);
  EXPECT_FALSE(truncated);
  ASSERT_EQ(namespaces.size(), 2u);
  EXPECT_EQ(namespaces.at(kHostNetns), 3);
  EXPECT_EQ(namespaces.at(kPodNetns), 12);
}

TEST(NetnsScan, IndexIsOneWalkAndRechecked) {
  FakeProc proc;
  proc.add(1, 1000, "systemd", "0::/init.scope\n");
  proc.add(10, 2000, "pause", "");
  proc.add(11, 2000, "app", "");
  proc.add(20, 2001, "other", "");
  NetnsScanner scanner(proc.root());
  const ProcessIndex index = scanner.index();
  EXPECT_EQ(index.pids_examined, 4u);
  EXPECT_EQ(index.pids_by_netns.size(), 3u);
  EXPECT_EQ(index.pids_by_netns.at(2000), (std::vector<int>{10, 11}));

  NetnsScan scan = scanner.scan(2000, index);
  ASSERT_EQ(scan.processes.size(), 2u);
  EXPECT_EQ(scan.pids_examined, 2u);

  // pid 11 is gone and its pid now runs in another namespace: not counted.
  proc.remove(11);
  proc.add(11, 2001, "reused", "");
  scan = scanner.scan(2000, index);
  ASSERT_EQ(scan.processes.size(), 1u);
  EXPECT_EQ(scan.processes[0].comm, "pause");
  EXPECT_TRUE(scanner.scan(4242, index).processes.empty());
}

TEST(NetnsInode, ParsesLinkTextOnly) {
  FakeProc proc;
  const std::filesystem::path base(proc.root());
  std::ofstream(base / "good") << "net:[42]\n";
  std::ofstream(base / "bad1") << "mnt:[42]";
  std::ofstream(base / "bad2") << "net:[42";
  std::ofstream(base / "bad3") << "net:[]";
  std::ofstream(base / "bad4") << "net:[4x2]";
  EXPECT_EQ(readNetnsInode((base / "good").string()), 42u);
  EXPECT_FALSE(readNetnsInode((base / "bad1").string()));
  EXPECT_FALSE(readNetnsInode((base / "bad2").string()));
  EXPECT_FALSE(readNetnsInode((base / "bad3").string()));
  EXPECT_FALSE(readNetnsInode((base / "bad4").string()));
  EXPECT_FALSE(readNetnsInode((base / "missing").string()));
}

}  // namespace
}  // namespace l7tap::metadata
