// NetnsIdMap on a /proc built by the test, with the kernel's nsids as a
// table: built once, rebuilt on a miss, and never trusting an entry whose
// nsid or pid was reused.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "metadata/veth_peer.h"
#include "tests/metadata/fake_proc.h"

namespace l7tap::metadata {
namespace {

using testing::FakeProc;

/// What RTM_GETNSID would say: the namespace of the path (read from the
/// fake /proc, as opening it would give) and its nsid from the table.
class TableProbe final : public NsidProbe {
 public:
  std::optional<int32_t> nsidOf(const std::string& ns_path, uint64_t* inode) override {
    ++calls;
    const std::optional<uint64_t> found = readNetnsInode(ns_path);
    if (!found) return std::nullopt;
    *inode = *found;
    const auto it = nsids.find(*found);
    if (it == nsids.end()) return std::nullopt;
    return it->second;
  }
  std::map<uint64_t, int32_t> nsids;  // inode -> nsid
  int calls = 0;
};

TEST(NetnsIdMap, BuiltOnceThenOneCheckPerLookup) {
  FakeProc proc;
  proc.add(1, 1000, "systemd", "");  // our own namespace: no nsid
  for (int pod = 0; pod < 50; ++pod) {
    proc.add(100 + 2 * pod, 2000 + pod, "pause", "");
    proc.add(101 + 2 * pod, 2000 + pod, "app", "");
  }
  TableProbe probe;
  for (int pod = 0; pod < 50; ++pod) probe.nsids[2000 + pod] = pod;
  NetnsScanner scanner(proc.root());
  NetnsIdMap map(scanner, probe);

  EXPECT_EQ(map.inodeOf(7), 2007u);
  EXPECT_EQ(map.stats().rebuilds, 1u);
  EXPECT_EQ(map.stats().entries, 50u);
  EXPECT_EQ(probe.calls, 51);  // each namespace once, by its lowest pid
  for (int pod = 0; pod < 50; ++pod) EXPECT_EQ(map.inodeOf(pod), 2000u + pod);
  EXPECT_EQ(map.stats().rebuilds, 1u);
  EXPECT_EQ(map.stats().hits, 50u);
  EXPECT_EQ(probe.calls, 51 + 50);
  EXPECT_FALSE(map.stats().truncated);
}

TEST(NetnsIdMap, NewNamespaceRebuilds) {
  FakeProc proc;
  proc.add(10, 2000, "app", "");
  TableProbe probe;
  probe.nsids[2000] = 0;
  NetnsScanner scanner(proc.root());
  NetnsIdMap map(scanner, probe);
  EXPECT_EQ(map.inodeOf(0), 2000u);

  proc.add(20, 2001, "app", "");
  probe.nsids[2001] = 1;
  EXPECT_EQ(map.inodeOf(1), 2001u);
  EXPECT_EQ(map.stats().rebuilds, 2u);
  EXPECT_EQ(map.inodeOf(0), 2000u);
  EXPECT_EQ(map.stats().rebuilds, 2u);
}

TEST(NetnsIdMap, NsidReusedByANewNamespace) {
  FakeProc proc;
  proc.add(10, 2000, "old-pod", "");
  TableProbe probe;
  probe.nsids[2000] = 0;
  NetnsScanner scanner(proc.root());
  NetnsIdMap map(scanner, probe);
  EXPECT_EQ(map.inodeOf(0), 2000u);

  // The pod dies; the kernel gives its nsid to the next namespace.
  proc.remove(10);
  probe.nsids.erase(2000);
  proc.add(30, 2005, "new-pod", "");
  probe.nsids[2005] = 0;
  EXPECT_EQ(map.inodeOf(0), 2005u);
  EXPECT_EQ(map.stats().stale, 1u);
  EXPECT_EQ(map.stats().rebuilds, 2u);
}

TEST(NetnsIdMap, PidReusedInAnotherNamespace) {
  FakeProc proc;
  proc.add(10, 2000, "old-pod", "");
  TableProbe probe;
  probe.nsids[2000] = 0;
  probe.nsids[2001] = 1;
  NetnsScanner scanner(proc.root());
  NetnsIdMap map(scanner, probe);
  EXPECT_EQ(map.inodeOf(0), 2000u);

  // pid 10 now lives in namespace 2001; 2000 still exists with pid 40.
  proc.remove(10);
  proc.add(10, 2001, "other", "");
  proc.add(40, 2000, "old-pod", "");
  EXPECT_EQ(map.inodeOf(0), 2000u);
  EXPECT_EQ(map.stats().stale, 1u);
  EXPECT_EQ(map.inodeOf(1), 2001u);
  EXPECT_EQ(map.stats().rebuilds, 2u);
}

TEST(NetnsIdMap, GoneNamespaceAndUnknownNsid) {
  FakeProc proc;
  proc.add(10, 2000, "app", "");
  TableProbe probe;
  probe.nsids[2000] = 3;
  NetnsScanner scanner(proc.root());
  NetnsIdMap map(scanner, probe);
  EXPECT_FALSE(map.inodeOf(9));
  EXPECT_EQ(map.inodeOf(3), 2000u);
  proc.remove(10);
  probe.nsids.clear();
  EXPECT_FALSE(map.inodeOf(3));
  EXPECT_EQ(map.stats().entries, 0u);
}

TEST(NetnsIdMap, BoundedByNetnsProbed) {
  FakeProc proc;
  TableProbe probe;
  for (int pod = 0; pod < 10; ++pod) {
    proc.add(100 + pod, 2000 + pod, "app", "");
    probe.nsids[2000 + pod] = pod;
  }
  MetadataLimits limits;
  limits.max_netns_probed = 4;
  NetnsScanner scanner(proc.root(), limits);
  NetnsIdMap map(scanner, probe);
  EXPECT_EQ(map.inodeOf(2), 2002u);
  EXPECT_FALSE(map.inodeOf(8));
  EXPECT_TRUE(map.stats().truncated);
  EXPECT_EQ(map.stats().entries, 4u);
}

}  // namespace
}  // namespace l7tap::metadata
