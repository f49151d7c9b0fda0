// The kubelet's pod list reduced to names: fixtures in the kubelet's JSON
// shape, and input that is not one.
#include "kubelet/pod_list.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace l7tap {
namespace {

std::string readFixture(const char* name) {
  std::ifstream in(std::filesystem::path(L7TAP_SOURCE_DIR) / "tests/kubelet/fixtures" / name);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

PodAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return PodAddress{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

const Pod* find(const PodList& list, std::string_view name) {
  for (const Pod& p : list.pods) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

class PodListFixture : public testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(parsePodList(readFixture("pods.json"), kDefaultKubeletLimits, list_, error))
        << error;
  }
  PodList list_;
};

TEST_F(PodListFixture, EveryItemIsKept) {
  EXPECT_EQ(list_.pods.size(), 7u);
  EXPECT_EQ(list_.skipped_items, 0u);
  EXPECT_EQ(list_.dropped_over_cap, 0u);
}

TEST_F(PodListFixture, TwoContainerPodOfADeployment) {
  const Pod* p = find(list_, "checkout-7d9f8b6c5-x2k4p");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->namespace_name, "shop");
  EXPECT_EQ(p->uid, "5a1c2e3f-0000-4000-8000-000000000001");
  EXPECT_EQ(p->node_name, "node-1");
  EXPECT_FALSE(p->host_network);
  EXPECT_FALSE(p->terminating);
  EXPECT_EQ(p->workload, WorkloadKind::kDeployment);
  EXPECT_EQ(p->workload_name, "checkout");
  EXPECT_EQ(workloadAttribute(p->workload), "k8s.deployment.name");
  ASSERT_EQ(p->containers.size(), 2u);
  // Statuses come in any order; each id goes to its container by name.
  EXPECT_EQ(p->containers[0].name, "app");
  EXPECT_EQ(p->containers[0].id,
            "a1e0c1e4d5a6978812345678901234567890abcdefabcdefabcdefabcdef0001");
  EXPECT_EQ(p->containers[1].name, "envoy");
  EXPECT_EQ(p->containers[1].id,
            "b2f0c1e4d5a6978812345678901234567890abcdefabcdefabcdefabcdef0002");
  ASSERT_EQ(p->addresses.size(), 2u);  // podIP repeats podIPs[0]: kept once
  EXPECT_EQ(p->addresses[0], v4(10, 1, 0, 4));
  PodAddress v6;
  ASSERT_TRUE(parsePodAddress("fd00:10:1::4", v6));
  EXPECT_EQ(p->addresses[1], v6);
}

TEST_F(PodListFixture, StatefulSetWithCriO) {
  const Pod* p = find(list_, "payments-db-0");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->workload, WorkloadKind::kStatefulSet);
  EXPECT_EQ(p->workload_name, "payments-db");
  ASSERT_EQ(p->containers.size(), 1u);
  EXPECT_EQ(p->containers[0].id,
            "c3000000000000000000000000000000000000000000000000000000000000c3");
}

TEST_F(PodListFixture, HostNetworkDaemonSetWithDocker) {
  const Pod* p = find(list_, "node-exporter-q8z7r");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->host_network);
  EXPECT_EQ(p->workload, WorkloadKind::kDaemonSet);
  EXPECT_EQ(p->workload_name, "node-exporter");
  EXPECT_EQ(p->containers.at(0).id,
            "d4000000000000000000000000000000000000000000000000000000000000d4");
}

TEST_F(PodListFixture, FinishedJobWithInitContainer) {
  const Pod* p = find(list_, "report-28911230-5nq2v");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->workload, WorkloadKind::kJob);
  EXPECT_EQ(p->workload_name, "report-28911230");
  EXPECT_TRUE(p->terminating);  // Succeeded: its address may be someone else's by now
  ASSERT_EQ(p->containers.size(), 2u);
  EXPECT_EQ(p->containers[0].name, "fetch");
  EXPECT_TRUE(p->containers[0].init);
  EXPECT_EQ(p->containers[1].name, "report");
  EXPECT_FALSE(p->containers[1].init);
}

TEST_F(PodListFixture, PendingPodHasNoAddressNorIds) {
  const Pod* p = find(list_, "pending-pod");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->addresses.empty());
  EXPECT_EQ(p->workload, WorkloadKind::kNone);
  ASSERT_EQ(p->containers.size(), 1u);
  EXPECT_TRUE(p->containers[0].id.empty());
  EXPECT_TRUE(p->node_name.empty());
}

TEST_F(PodListFixture, ReplicaSetNameNotEndingInTheTemplateHashStaysAReplicaSet) {
  const Pod* p = find(list_, "manual-rs-abcde");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->workload, WorkloadKind::kReplicaSet);
  EXPECT_EQ(p->workload_name, "manual-rs");
  EXPECT_EQ(workloadAttribute(p->workload), "k8s.replicaset.name");
}

TEST_F(PodListFixture, StaticPodOwnedByTheNodeHasNoWorkload) {
  const Pod* p = find(list_, "kube-apiserver-node-1");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->workload, WorkloadKind::kNone);
  EXPECT_TRUE(p->workload_name.empty());
}

// One pod item, wrapped in a list, parsed.
PodList parseItem(const nlohmann::json& item, bool expect_ok = true) {
  const std::string text = nlohmann::json{{"items", nlohmann::json::array({item})}}.dump();
  PodList list;
  std::string error;
  EXPECT_EQ(parsePodList(text, kDefaultKubeletLimits, list, error), expect_ok) << error;
  return list;
}

nlohmann::json minimalPod() {
  return {{"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u-1"}}}};
}

TEST(PodList, NameNamespaceAndUidAreAllThatIsRequired) {
  const PodList list = parseItem(minimalPod());
  ASSERT_EQ(list.pods.size(), 1u);
  EXPECT_TRUE(list.pods[0].containers.empty());
  EXPECT_TRUE(list.pods[0].addresses.empty());
}

TEST(PodList, ItemsWithoutIdentityAreSkippedAndCounted) {
  for (const char* key : {"name", "namespace", "uid"}) {
    nlohmann::json item = minimalPod();
    item["metadata"].erase(key);
    const PodList list = parseItem(item);
    EXPECT_TRUE(list.pods.empty()) << key;
    EXPECT_EQ(list.skipped_items, 1u) << key;
  }
  const PodList list = parseItem(nlohmann::json{{"spec", {}}});
  EXPECT_EQ(list.skipped_items, 1u);
}

TEST(PodList, FieldsOfTheWrongTypeSpoilOnlyTheirItem) {
  const std::pair<nlohmann::json::json_pointer, nlohmann::json> cases[] = {
      {"/metadata/uid"_json_pointer, 12},
      {"/metadata/ownerReferences"_json_pointer, "ReplicaSet"},
      {"/metadata/ownerReferences"_json_pointer, {{{"kind", 3}, {"name", "x"}}}},
      {"/metadata/labels"_json_pointer, {1, 2}},
      {"/spec/hostNetwork"_json_pointer,
       "true"},  // read as false, it would name the node's address
      {"/spec/containers"_json_pointer, {{{"name", nullptr}}}},
      {"/spec/containers"_json_pointer, {"app"}},
      {"/status"_json_pointer, "Running"},
      {"/status/podIP"_json_pointer, "10.1.0.300"},
      {"/status/podIPs"_json_pointer, {{{"ip", 10}}}},
      {"/status/containerStatuses"_json_pointer, {{{"name", "a"}, {"containerID", false}}}},
  };
  for (const auto& [where, value] : cases) {
    nlohmann::json bad = minimalPod();
    bad[where] = value;
    const std::string text =
        nlohmann::json{{"items", nlohmann::json::array({minimalPod(), bad})}}.dump();
    PodList list;
    std::string error;
    ASSERT_TRUE(parsePodList(text, kDefaultKubeletLimits, list, error)) << error;
    EXPECT_EQ(list.pods.size(), 1u) << where.to_string();
    EXPECT_EQ(list.skipped_items, 1u) << where.to_string();
  }
}

TEST(PodList, NullsReadAsMissing) {
  nlohmann::json item = minimalPod();
  item["spec"] = nullptr;
  item["status"] = {{"podIP", nullptr}, {"containerStatuses", nullptr}};
  item["metadata"]["ownerReferences"] = nullptr;
  EXPECT_EQ(parseItem(item).pods.size(), 1u);
}

TEST(PodList, OverlongStringsSkipTheItem) {
  nlohmann::json item = minimalPod();
  item["metadata"]["name"] = std::string(kDefaultKubeletLimits.max_string_bytes + 1, 'a');
  const PodList list = parseItem(item);
  EXPECT_TRUE(list.pods.empty());
  EXPECT_EQ(list.skipped_items, 1u);
}

TEST(PodList, ReplicaSetHashIsStrippedOnlyWhenItIsThePodsOwn) {
  auto owned = [](const char* rs, const char* hash) {
    nlohmann::json item = minimalPod();
    item["metadata"]["ownerReferences"] = {
        {{"kind", "ReplicaSet"}, {"name", rs}, {"controller", true}}};
    if (hash != nullptr) item["metadata"]["labels"] = {{"pod-template-hash", hash}};
    const PodList list = parseItem(item);
    EXPECT_EQ(list.pods.size(), 1u);
    return list.pods.empty() ? Pod{} : list.pods[0];
  };
  Pod p = owned("web-5c2a", "5c2a");
  EXPECT_EQ(p.workload, WorkloadKind::kDeployment);
  EXPECT_EQ(p.workload_name, "web");
  p = owned("my-web-app-5c2a", "5c2a");
  EXPECT_EQ(p.workload_name, "my-web-app");
  p = owned("web-5c2a", nullptr);  // no label: the suffix may be anything
  EXPECT_EQ(p.workload, WorkloadKind::kReplicaSet);
  EXPECT_EQ(p.workload_name, "web-5c2a");
  p = owned("5c2a", "5c2a");  // nothing left of a Deployment name
  EXPECT_EQ(p.workload, WorkloadKind::kReplicaSet);
  p = owned("web5c2a", "5c2a");  // no dash
  EXPECT_EQ(p.workload, WorkloadKind::kReplicaSet);
  p = owned("web-5c2a", "");
  EXPECT_EQ(p.workload, WorkloadKind::kReplicaSet);
}

TEST(PodList, ControllerOwnerWinsOverOtherOwners) {
  nlohmann::json item = minimalPod();
  item["metadata"]["ownerReferences"] = {
      {{"kind", "ConfigMap"}, {"name", "cm"}},
      {{"kind", "StatefulSet"}, {"name", "db"}, {"controller", true}},
  };
  PodList list = parseItem(item);
  ASSERT_EQ(list.pods.size(), 1u);
  EXPECT_EQ(list.pods[0].workload, WorkloadKind::kStatefulSet);
  // Several owners and none the controller: no guess.
  item["metadata"]["ownerReferences"][1].erase("controller");
  list = parseItem(item);
  ASSERT_EQ(list.pods.size(), 1u);
  EXPECT_EQ(list.pods[0].workload, WorkloadKind::kNone);
}

TEST(PodList, NotAPodList) {
  for (const std::string& text :
       std::vector<std::string>{"", "null", "[]", "42", "\"items\"", "{}", "{\"items\": {}}",
                                "{\"items\": 3}", "{\"items\": [", "\xff\xfe garbage",
                                "{\"items\": []} trailing", std::string("{\"items\": [\0]}", 14)}) {
    PodList list;
    std::string error;
    EXPECT_FALSE(parsePodList(text, kDefaultKubeletLimits, list, error)) << text;
    EXPECT_FALSE(error.empty()) << text;
    EXPECT_TRUE(list.pods.empty());
  }
}

TEST(PodList, EmptyLists) {
  for (const char* text : {"{\"items\": []}", "{\"kind\": \"PodList\", \"items\": null}"}) {
    PodList list;
    std::string error;
    EXPECT_TRUE(parsePodList(text, kDefaultKubeletLimits, list, error)) << text << error;
    EXPECT_TRUE(list.pods.empty());
  }
}

TEST(PodList, ItemsThatAreNotObjectsAreSkipped) {
  PodList list;
  std::string error;
  ASSERT_TRUE(parsePodList(R"({"items": [1, "x", null, [], {"metadata": []}]})",
                           kDefaultKubeletLimits, list, error))
      << error;
  EXPECT_EQ(list.skipped_items, 5u);
}

TEST(PodList, InputOverTheLimitIsRefusedUnread) {
  KubeletLimits limits;
  limits.max_response_bytes = 1024;
  const std::string text = "{\"items\": [" + std::string(2000, ' ') + "]}";
  PodList list;
  std::string error;
  EXPECT_FALSE(parsePodList(text, limits, list, error));
  EXPECT_NE(error.find("over the limit"), std::string::npos) << error;
}

TEST(PodList, DeepNestingNeitherCrashesNorIsKept) {
  // 100,000 levels: a recursive parser or destructor would overflow the stack.
  const std::string deep = "{\"items\": [" + std::string(100000, '[') + std::string(100000, ']') +
                           ", {\"metadata\": {\"name\": \"p\", \"namespace\": \"n\", \"uid\": "
                           "\"u\", \"x\": " +
                           std::string(100000, '[') + std::string(100000, ']') + "}}]}";
  PodList list;
  std::string error;
  ASSERT_TRUE(parsePodList(deep, kDefaultKubeletLimits, list, error)) << error;
  EXPECT_EQ(list.pods.size(), 1u);
  EXPECT_EQ(list.skipped_items, 1u);
}

TEST(PodList, PodsOverTheCapAreCounted) {
  KubeletLimits limits;
  limits.max_pods = 3;
  nlohmann::json items = nlohmann::json::array();
  for (int i = 0; i < 5; ++i) {
    nlohmann::json item = minimalPod();
    item["metadata"]["uid"] = "u-" + std::to_string(i);
    items.push_back(item);
  }
  PodList list;
  std::string error;
  ASSERT_TRUE(parsePodList(nlohmann::json{{"items", items}}.dump(), limits, list, error));
  EXPECT_EQ(list.pods.size(), 3u);
  EXPECT_EQ(list.dropped_over_cap, 2u);
}

TEST(PodList, ContainersOverTheCapAreCounted) {
  KubeletLimits limits;
  limits.max_containers_per_pod = 2;
  nlohmann::json item = minimalPod();
  item["spec"]["containers"] = {{{"name", "a"}}, {{"name", "b"}}, {{"name", "c"}}};
  item["status"]["containerStatuses"] = {{{"name", "d"}, {"containerID", "containerd://dd"}}};
  PodList list;
  std::string error;
  ASSERT_TRUE(parsePodList(nlohmann::json{{"items", {item}}}.dump(), limits, list, error));
  ASSERT_EQ(list.pods.size(), 1u);
  EXPECT_EQ(list.pods[0].containers.size(), 2u);
  EXPECT_EQ(list.dropped_containers, 2u);
}

TEST(PodList, HugeListOfUnreadFieldsParses) {
  // 4,000 pods with 2 KB of environment each (8 MB): all kept, the
  // environment dropped while parsing.
  nlohmann::json items = nlohmann::json::array();
  for (int i = 0; i < 4000; ++i) {
    nlohmann::json item = minimalPod();
    item["metadata"]["uid"] = "u-" + std::to_string(i);
    item["spec"]["containers"] = {
        {{"name", "c"}, {"env", {{{"name", "X"}, {"value", std::string(2048, 'v')}}}}}};
    items.push_back(std::move(item));
  }
  PodList list;
  std::string error;
  ASSERT_TRUE(
      parsePodList(nlohmann::json{{"items", items}}.dump(), kDefaultKubeletLimits, list, error))
      << error;
  EXPECT_EQ(list.pods.size(), kDefaultKubeletLimits.max_pods);
  EXPECT_EQ(list.dropped_over_cap, 4000 - kDefaultKubeletLimits.max_pods);
}

TEST(PodAddress, BothFamilies) {
  PodAddress a;
  ASSERT_TRUE(parsePodAddress("10.1.0.4", a));
  EXPECT_EQ(a, v4(10, 1, 0, 4));
  ASSERT_TRUE(parsePodAddress("::1", a));
  EXPECT_EQ(a[15], 1);
  EXPECT_EQ(a[10], 0);
  for (const char* bad : {"", "10.1.0", "10.1.0.4 ", "fd00::1::2", "host", "10.1.0.4/32"}) {
    EXPECT_FALSE(parsePodAddress(bad, a)) << bad;
  }
  EXPECT_FALSE(parsePodAddress(std::string(100, '1'), a));
}

}  // namespace
}  // namespace l7tap
