// InterfaceIdentityResolver with a table for the peer namespaces and a /proc
// built by the test: the pod chosen (or not), and the cache.
#include "metadata/interface_identity.h"

#include <gtest/gtest.h>

#include <map>
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

std::string pod(const std::string& uid, const std::string& id) {
  return "0::/kubepods/besteffort/pod" + uid + "/" + id + "\n";
}

class TablePeers final : public PeerNetnsSource {
 public:
  Peer peerOf(uint32_t ifindex) override {
    ++queries;
    const auto it = table.find(ifindex);
    return it == table.end() ? Peer{} : it->second;
  }
  std::map<uint32_t, Peer> table;
  int queries = 0;
};

PeerNetnsSource::Peer inNetns(uint64_t inode) { return {IdentityStatus::kResolved, inode, 2}; }

TEST(InterfaceIdentity, PodBehindVeth) {
  FakeProc proc;
  proc.add(10, 1001, "pause", pod(kUid, kPause));
  proc.add(11, 1001, "checkout", pod(kUid, kApp));
  NetnsScanner scanner(proc.root());
  TablePeers peers;
  peers.table[7] = inNetns(1001);
  InterfaceIdentityResolver resolver(peers, scanner);

  const InterfaceIdentity id = resolver.lookup(7);
  EXPECT_EQ(id.status, IdentityStatus::kResolved);
  EXPECT_EQ(id.ifindex, 7u);
  EXPECT_EQ(id.netns_inode, 1001u);
  EXPECT_EQ(id.peer_ifindex, 2u);
  EXPECT_EQ(id.pod.pod_uid, kUid);
  EXPECT_EQ(id.pod.container_ids, (std::vector<std::string>{kPause, kApp}));
  EXPECT_EQ(id.pod.process_name, "checkout");
  EXPECT_TRUE(id.pod.pod_name.empty());
  EXPECT_TRUE(id.pod.namespace_name.empty());
}

TEST(InterfaceIdentity, HostNetworkNamesNoPod) {
  FakeProc proc;
  proc.add(1, 1000, "systemd", "0::/init.scope\n");
  proc.add(20, 1000, "kube-proxy", pod(kUid, kApp));
  proc.add(21, 1000, "node-exporter", pod(kUid2, kPause));
  NetnsScanner scanner(proc.root());
  TablePeers peers;
  peers.table[3] = inNetns(1000);
  InterfaceIdentityResolver resolver(peers, scanner);
  const InterfaceIdentity id = resolver.lookup(3);
  EXPECT_EQ(id.status, IdentityStatus::kManyPods);
  EXPECT_TRUE(id.pod.pod_uid.empty());
  EXPECT_TRUE(id.pod.container_ids.empty());
}

TEST(InterfaceIdentity, PlainNetnsAndDockerContainer) {
  FakeProc proc;
  proc.add(30, 1002, "python3", "0::/user.slice/session-1.scope\n");
  proc.add(40, 1003, "redis-server", "0::/system.slice/docker-" + kApp + ".scope\n");
  NetnsScanner scanner(proc.root());
  TablePeers peers;
  peers.table[4] = inNetns(1002);
  peers.table[5] = inNetns(1003);
  InterfaceIdentityResolver resolver(peers, scanner);

  const InterfaceIdentity plain = resolver.lookup(4);
  EXPECT_EQ(plain.status, IdentityStatus::kResolved);
  EXPECT_TRUE(plain.pod.pod_uid.empty());
  EXPECT_TRUE(plain.pod.container_ids.empty());
  EXPECT_EQ(plain.pod.process_name, "python3");

  const InterfaceIdentity docker = resolver.lookup(5);
  EXPECT_TRUE(docker.pod.pod_uid.empty());
  EXPECT_EQ(docker.pod.container_ids, std::vector<std::string>{kApp});
  EXPECT_EQ(docker.pod.process_name, "redis-server");
}

TEST(InterfaceIdentity, PeerFailuresPassThrough) {
  FakeProc proc;
  NetnsScanner scanner(proc.root());
  TablePeers peers;
  peers.table[8] = {IdentityStatus::kNoPeerNetns, 0, 9};
  peers.table[9] = {IdentityStatus::kNsidUnmapped, 0, 2};
  peers.table[10] = inNetns(5555);
  InterfaceIdentityResolver resolver(peers, scanner);
  EXPECT_EQ(resolver.lookup(99).status, IdentityStatus::kNoLink);
  EXPECT_EQ(resolver.lookup(8).status, IdentityStatus::kNoPeerNetns);
  EXPECT_EQ(resolver.lookup(9).status, IdentityStatus::kNsidUnmapped);
  EXPECT_EQ(resolver.lookup(10).status, IdentityStatus::kNoProcesses);
  EXPECT_EQ(resolver.scans(), 1u);
}

TEST(InterfaceIdentity, CachedByNamespaceUntilRefreshed) {
  FakeProc proc;
  proc.add(10, 1001, "pause", pod(kUid, kPause));
  NetnsScanner scanner(proc.root());
  TablePeers peers;
  peers.table[7] = inNetns(1001);
  peers.table[8] = inNetns(1001);  // two links into one namespace: one scan
  InterfaceIdentityResolver resolver(peers, scanner);

  EXPECT_EQ(resolver.lookup(7).pod.process_name, "pause");
  EXPECT_EQ(resolver.lookup(8).pod.process_name, "pause");
  EXPECT_EQ(resolver.scans(), 1u);

  // The app container starts; the cache keeps the old view until refreshed.
  proc.add(11, 1001, "checkout", pod(kUid, kApp));
  EXPECT_EQ(resolver.lookup(7).pod.process_name, "pause");
  EXPECT_EQ(resolver.refresh(7).pod.process_name, "checkout");
  EXPECT_EQ(resolver.lookup(8).pod.process_name, "checkout");
  EXPECT_EQ(resolver.scans(), 2u);
  // The link is asked every time, so a moved veth is never served stale.
  EXPECT_EQ(peers.queries, 5);
}

TEST(InterfaceIdentity, CacheIsBoundedLeastRecentlyUsedOut) {
  FakeProc proc;
  for (int i = 0; i < 3; ++i) proc.add(10 + i, 2000 + i, "p" + std::to_string(i), pod(kUid, kApp));
  NetnsScanner scanner(proc.root());
  TablePeers peers;
  for (uint32_t i = 0; i < 3; ++i) peers.table[i + 1] = inNetns(2000 + i);
  MetadataLimits limits;
  limits.max_cached_netns = 2;
  InterfaceIdentityResolver resolver(peers, scanner, limits);

  resolver.lookup(1);
  resolver.lookup(2);
  resolver.lookup(1);  // 2 is now the least recent
  resolver.lookup(3);  // evicts 2
  EXPECT_EQ(resolver.cachedNamespaces(), 2u);
  EXPECT_EQ(resolver.scans(), 3u);
  resolver.lookup(1);
  EXPECT_EQ(resolver.scans(), 3u);
  resolver.lookup(2);
  EXPECT_EQ(resolver.scans(), 4u);
}

TEST(InterfaceIdentity, ZeroCacheStillResolves) {
  FakeProc proc;
  proc.add(10, 1001, "app", pod(kUid, kApp));
  NetnsScanner scanner(proc.root());
  TablePeers peers;
  peers.table[7] = inNetns(1001);
  MetadataLimits limits;
  limits.max_cached_netns = 0;
  InterfaceIdentityResolver resolver(peers, scanner, limits);
  EXPECT_EQ(resolver.lookup(7).pod.pod_uid, kUid);
  EXPECT_EQ(resolver.lookup(7).pod.pod_uid, kUid);
  EXPECT_EQ(resolver.cachedNamespaces(), 0u);
  EXPECT_EQ(resolver.scans(), 2u);
}

TEST(InterfaceIdentity, AllAtOnceMatchesOneByOne) {
  FakeProc proc;
  proc.add(1, 1000, "systemd", "0::/init.scope\n");
  for (int i = 0; i < 5; ++i) {
    proc.add(10 + 2 * i, 2000 + i, "pause", pod(kUid, kPause));
    proc.add(11 + 2 * i, 2000 + i, "app" + std::to_string(i), pod(kUid, kApp));
  }
  NetnsScanner scanner(proc.root());
  TablePeers peers;
  for (uint32_t i = 0; i < 5; ++i) peers.table[i + 1] = inNetns(2000 + i);
  peers.table[6] = {IdentityStatus::kNoPeerNetns, 0, 0};
  const std::vector<uint32_t> all = {1, 2, 3, 4, 5, 6, 7};

  InterfaceIdentityResolver one_by_one(peers, scanner);
  InterfaceIdentityResolver batch(peers, scanner);
  const std::vector<InterfaceIdentity> identities = batch.lookupAll(all);
  ASSERT_EQ(identities.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const InterfaceIdentity single = one_by_one.lookup(all[i]);
    EXPECT_EQ(identities[i].ifindex, all[i]);
    EXPECT_EQ(identities[i].status, single.status) << i;
    EXPECT_EQ(identities[i].netns_inode, single.netns_inode);
    EXPECT_EQ(identities[i].pod.process_name, single.pod.process_name);
    EXPECT_EQ(identities[i].pod.container_ids, single.pod.container_ids);
  }
  EXPECT_EQ(identities[2].pod.process_name, "app2");
  EXPECT_EQ(batch.scans(), 5u);

  // Everything cached: no scan; refreshAll scans again, seeing a new process.
  batch.lookupAll(all);
  EXPECT_EQ(batch.scans(), 5u);
  proc.remove(13);
  proc.add(13, 2001, "worker", pod(kUid, kApp));
  EXPECT_EQ(batch.refreshAll(all)[1].pod.process_name, "worker");
  EXPECT_EQ(batch.scans(), 10u);
}

}  // namespace
}  // namespace l7tap::metadata
