// The pod cache on canned pod lists: lookups, refresh rules, failures.
#include "kubelet/pod_cache.h"

#include <gtest/gtest.h>

#include <deque>
#include <nlohmann/json.hpp>
#include <string>

namespace l7tap {
namespace {

constexpr uint64_t kSecond = 1000ull * 1000 * 1000;

// Answers with the queued bodies in turn, then repeats the last one; an
// empty body is a failed request.
class CannedSource : public PodListSource {
 public:
  bool fetch(std::string& body, std::string& error) override {
    ++fetches;
    if (answers.size() > 1) {
      body = answers.front();
      answers.pop_front();
    } else {
      body = answers.empty() ? std::string() : answers.front();
    }
    if (body.empty()) {
      error = "kubelet down";
      return false;
    }
    return true;
  }
  std::deque<std::string> answers;
  int fetches = 0;
};

nlohmann::json pod(const std::string& name, const std::string& uid, const std::string& ip,
                   const std::string& container_id = {}) {
  nlohmann::json p = {{"metadata", {{"name", name}, {"namespace", "shop"}, {"uid", uid}}},
                      {"spec", {{"containers", {{{"name", "app"}}}}}},
                      {"status", {{"phase", "Running"}}}};
  if (!ip.empty()) p["status"]["podIPs"] = {{{"ip", ip}}};
  if (!container_id.empty()) {
    p["status"]["containerStatuses"] = {
        {{"name", "app"}, {"containerID", "containerd://" + container_id}}};
  }
  return p;
}

std::string list(std::initializer_list<nlohmann::json> pods) {
  nlohmann::json items = nlohmann::json::array();
  for (const nlohmann::json& p : pods) items.push_back(p);
  return nlohmann::json{{"kind", "PodList"}, {"items", items}}.dump();
}

PodAddress addr(const char* text) {
  PodAddress a{};
  EXPECT_TRUE(parsePodAddress(text, a)) << text;
  return a;
}

TEST(PodCache, LooksUpByUidContainerIdAndAddress) {
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.4", "c0ffee"), pod("b", "uid-b", "fd00::9")})};
  PodCache cache(src, kDefaultKubeletLimits);
  EXPECT_TRUE(cache.tick(1 * kSecond));  // the first tick always fetches
  ASSERT_NE(cache.byUid("uid-a"), nullptr);
  EXPECT_EQ(cache.byUid("uid-a")->name, "a");
  const ContainerMatch m = cache.byContainerId("c0ffee");
  ASSERT_NE(m.pod, nullptr);
  EXPECT_EQ(m.pod->name, "a");
  ASSERT_NE(m.container, nullptr);
  EXPECT_EQ(m.container->name, "app");
  ASSERT_NE(cache.byAddress(addr("10.1.0.4")), nullptr);
  EXPECT_EQ(cache.byAddress(addr("10.1.0.4"))->name, "a");
  ASSERT_NE(cache.byAddress(addr("fd00::9")), nullptr);
  EXPECT_EQ(cache.byAddress(addr("fd00::9"))->name, "b");
  EXPECT_EQ(cache.byAddress(addr("10.1.0.5")), nullptr);
  EXPECT_EQ(cache.stats().pods, 2u);
  EXPECT_EQ(cache.stats().refreshes, 1u);
}

TEST(PodCache, TimerRefreshesAtTheInterval) {
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.4")})};
  PodCache cache(src, kDefaultKubeletLimits);
  const uint64_t t0 = 100 * kSecond;
  EXPECT_TRUE(cache.tick(t0));
  EXPECT_FALSE(cache.tick(t0 + kDefaultKubeletLimits.refresh_interval_ns - 1));
  EXPECT_TRUE(cache.tick(t0 + kDefaultKubeletLimits.refresh_interval_ns));
  EXPECT_EQ(src.fetches, 2);
}

TEST(PodCache, UnknownUidAsksForARateLimitedRefresh) {
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.4")}),
                 list({pod("a", "uid-a", "10.1.0.4"), pod("new", "uid-new", "10.1.0.5")})};
  PodCache cache(src, kDefaultKubeletLimits);
  const uint64_t t0 = 100 * kSecond;
  const uint64_t gap = kDefaultKubeletLimits.min_unknown_refresh_interval_ns;
  cache.tick(t0);
  EXPECT_FALSE(cache.tick(t0 + gap));  // nothing unknown yet: waits for the timer
  EXPECT_EQ(cache.byUid("uid-new"), nullptr);
  EXPECT_TRUE(cache.tick(t0 + gap));
  ASSERT_NE(cache.byUid("uid-new"), nullptr);
  EXPECT_EQ(cache.stats().unknown_refreshes, 1u);
  // Another unknown id right after a refresh waits for the rate limit.
  EXPECT_EQ(cache.byUid("uid-other"), nullptr);
  EXPECT_FALSE(cache.tick(t0 + gap + gap - 1));
  EXPECT_TRUE(cache.tick(t0 + gap + gap));
  EXPECT_EQ(src.fetches, 3);
  EXPECT_EQ(cache.stats().unknown_lookups, 2u);
}

TEST(PodCache, IdsThatStayUnknownWaitForTheTimer) {
  // A sandbox container or one outside Kubernetes is never in the list: it
  // asks for one refresh, then waits for the timer like everything else.
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.4", "ca")})};
  PodCache cache(src, kDefaultKubeletLimits);
  const uint64_t t0 = 100 * kSecond;
  const uint64_t gap = kDefaultKubeletLimits.min_unknown_refresh_interval_ns;
  const uint64_t period = kDefaultKubeletLimits.refresh_interval_ns;
  cache.tick(t0);
  EXPECT_EQ(cache.byContainerId("sandbox").pod, nullptr);
  EXPECT_TRUE(cache.tick(t0 + gap));  // its one refresh
  EXPECT_EQ(cache.byContainerId("sandbox").pod, nullptr);
  EXPECT_FALSE(cache.tick(t0 + 2 * gap));
  EXPECT_FALSE(cache.tick(t0 + 3 * gap));
  // Another unknown id still asks.
  EXPECT_EQ(cache.byUid("uid-b"), nullptr);
  EXPECT_TRUE(cache.tick(t0 + 3 * gap));
  EXPECT_EQ(cache.stats().unknown_refreshes, 2u);
  // The timer refresh gives every id one more chance.
  EXPECT_TRUE(cache.tick(t0 + 3 * gap + period));
  EXPECT_EQ(cache.byContainerId("sandbox").pod, nullptr);
  EXPECT_TRUE(cache.tick(t0 + 3 * gap + period + gap));
  EXPECT_EQ(cache.stats().unknown_refreshes, 3u);
  EXPECT_EQ(src.fetches, 5);
}

TEST(PodCache, UnknownContainerIdAsksForARefreshToo) {
  CannedSource src;
  src.answers = {list({}), list({pod("a", "uid-a", "", "abc123")})};
  PodCache cache(src, kDefaultKubeletLimits);
  cache.tick(10 * kSecond);
  EXPECT_EQ(cache.byContainerId("abc123").pod, nullptr);
  EXPECT_TRUE(cache.tick(10 * kSecond + kDefaultKubeletLimits.min_unknown_refresh_interval_ns));
  EXPECT_NE(cache.byContainerId("abc123").pod, nullptr);
}

TEST(PodCache, PodRestartedOnAReusedAddressNamesOnlyTheNewPod) {
  CannedSource src;
  // While the old pod terminates, both are listed with the same address.
  nlohmann::json old_pod = pod("web-1", "uid-old", "10.1.0.7");
  old_pod["metadata"]["deletionTimestamp"] = "2026-12-04T10:00:00Z";
  nlohmann::json failed = pod("web-0", "uid-failed", "10.1.0.8");
  failed["status"]["phase"] = "Failed";
  src.answers = {list({pod("web-1", "uid-old", "10.1.0.7")}),
                 list({old_pod, pod("web-1", "uid-new", "10.1.0.7"), failed,
                       pod("web-0", "uid-next", "10.1.0.8")}),
                 list({pod("web-1", "uid-new", "10.1.0.7")})};
  PodCache cache(src, kDefaultKubeletLimits);
  cache.refresh(1);
  EXPECT_EQ(cache.byAddress(addr("10.1.0.7"))->uid, "uid-old");
  cache.refresh(2);
  EXPECT_EQ(cache.byAddress(addr("10.1.0.7"))->uid, "uid-new");
  EXPECT_EQ(cache.byAddress(addr("10.1.0.8"))->uid, "uid-next");
  EXPECT_NE(cache.byUid("uid-old"), nullptr);  // still listed, by UID
  cache.refresh(3);
  EXPECT_EQ(cache.byAddress(addr("10.1.0.7"))->uid, "uid-new");
  EXPECT_EQ(cache.byUid("uid-old"), nullptr);
}

TEST(PodCache, AddressClaimedByTwoLivePodsNamesNeither) {
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.4"), pod("b", "uid-b", "10.1.0.4")})};
  PodCache cache(src, kDefaultKubeletLimits);
  cache.refresh(1);
  EXPECT_EQ(cache.byAddress(addr("10.1.0.4")), nullptr);
  EXPECT_EQ(cache.stats().ambiguous_addresses, 1u);
  EXPECT_NE(cache.byUid("uid-a"), nullptr);
}

TEST(PodCache, HostNetworkPodsAreNotNamedByAddress) {
  CannedSource src;
  nlohmann::json host = pod("exporter", "uid-h", "192.168.1.10", "d4");
  host["spec"]["hostNetwork"] = true;
  src.answers = {list({host})};
  PodCache cache(src, kDefaultKubeletLimits);
  cache.refresh(1);
  EXPECT_EQ(cache.byAddress(addr("192.168.1.10")), nullptr);
  ASSERT_NE(cache.byUid("uid-h"), nullptr);  // but by UID and container id, yes
  EXPECT_TRUE(cache.byUid("uid-h")->host_network);
  EXPECT_NE(cache.byContainerId("d4").pod, nullptr);
}

TEST(PodCache, DeletedPodDisappearsAtTheNextRefresh) {
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.4", "ca"), pod("b", "uid-b", "10.1.0.5")}),
                 list({pod("b", "uid-b", "10.1.0.5")})};
  PodCache cache(src, kDefaultKubeletLimits);
  cache.refresh(1);
  // A record being written holds its pod across the refresh.
  const std::shared_ptr<const Pod> held = cache.byUid("uid-a");
  const ContainerMatch held_container = cache.byContainerId("ca");
  cache.refresh(2);
  EXPECT_EQ(cache.byUid("uid-a"), nullptr);
  EXPECT_EQ(cache.byContainerId("ca").pod, nullptr);
  EXPECT_EQ(cache.byAddress(addr("10.1.0.4")), nullptr);
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->name, "a");
  EXPECT_EQ(held_container.container->name, "app");
}

TEST(PodCache, FailedRefreshKeepsTheLastGoodListAndSaysWhy) {
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.4")}), "", "{garbage", list({})};
  PodCache cache(src, kDefaultKubeletLimits);
  EXPECT_TRUE(cache.refresh(1));
  EXPECT_FALSE(cache.refresh(2));
  EXPECT_NE(cache.byUid("uid-a"), nullptr);
  PodCacheStats s = cache.stats();
  EXPECT_EQ(s.refresh_failures, 1u);
  EXPECT_EQ(s.last_error, "kubelet down");
  EXPECT_EQ(s.last_success_ns, 1u);
  EXPECT_FALSE(cache.refresh(3));
  EXPECT_NE(cache.byUid("uid-a"), nullptr);
  s = cache.stats();
  EXPECT_EQ(s.refresh_failures, 2u);
  EXPECT_NE(s.last_error.find("not JSON"), std::string::npos) << s.last_error;
  EXPECT_TRUE(cache.refresh(4));  // an empty list is a good list
  EXPECT_EQ(cache.byUid("uid-a"), nullptr);
  s = cache.stats();
  EXPECT_TRUE(s.last_error.empty());
  EXPECT_EQ(s.pods, 0u);
}

TEST(PodCache, SummaryLineSaysWhyNamesAreMissing) {
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.4"), pod("b", "uid-b", "10.1.0.4")}), ""};
  PodCache cache(src, kDefaultKubeletLimits);
  EXPECT_EQ(describePodNames(cache.stats()), "pod names: none (no pod list yet)");
  cache.refresh(1);
  EXPECT_EQ(describePodNames(cache.stats()), "pod names: 2 pods, 1 addresses claimed by two pods");
  cache.refresh(2);
  EXPECT_EQ(describePodNames(cache.stats()),
            "pod names: 2 pods, 1 addresses claimed by two pods, 1 of 2 refreshes failed, last: "
            "kubelet down");
}

TEST(PodCache, NeverFetchedMeansNoNames) {
  CannedSource src;  // always down
  PodCache cache(src, kDefaultKubeletLimits);
  EXPECT_TRUE(cache.tick(1));
  EXPECT_EQ(cache.byUid("uid-a"), nullptr);
  EXPECT_EQ(cache.byAddress(addr("10.1.0.4")), nullptr);
  EXPECT_EQ(cache.stats().refresh_failures, 1u);
  EXPECT_EQ(cache.stats().last_success_ns, 0u);
}

TEST(PodCache, BoundedByTheLimits) {
  CannedSource src;
  src.answers = {list({pod("a", "uid-a", "10.1.0.1"), pod("b", "uid-b", "10.1.0.2"),
                       pod("c", "uid-c", "10.1.0.3")})};
  KubeletLimits limits;
  limits.max_pods = 2;
  PodCache cache(src, limits);
  cache.refresh(1);
  EXPECT_EQ(cache.stats().pods, 2u);
  EXPECT_EQ(cache.stats().dropped_over_cap, 1u);
  EXPECT_EQ(cache.byUid("uid-c"), nullptr);
}

}  // namespace
}  // namespace l7tap
