// NodeIdentity driven step by step (no thread): interfaces attached and
// gone, a pod list that changes, fails or lags behind the node, and what
// records then say, through the same sink path the daemon uses.
#include "identity/node_identity.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>

#include "identity/enriching_sink.h"
#include "tests/identity/pod_json.h"
#include "tests/metadata/fake_proc.h"

namespace l7tap {
namespace {

using metadata::IdentityStatus;
using metadata::PeerNetnsSource;
using testing::PodJson;
using testing::podListJson;

constexpr uint64_t kSecond = 1'000'000'000;
const std::string kUidA = "0a000000-0000-4000-8000-00000000000a";
const std::string kUidB = "0b000000-0000-4000-8000-00000000000b";
const std::string kUidNew = "0c000000-0000-4000-8000-00000000000c";
const std::string kPauseA(64, 'a');
const std::string kAppA(64, '1');
const std::string kPauseB(64, 'b');
const std::string kAppB(64, '2');

std::string cgroup(const std::string& uid, const std::string& id) {
  return "0::/kubepods/besteffort/pod" + uid + "/" + id + "\n";
}

class TablePeers final : public PeerNetnsSource {
 public:
  explicit TablePeers(std::map<uint32_t, uint64_t>& table) : table_(table) {}
  Peer peerOf(uint32_t ifindex) override {
    const auto it = table_.find(ifindex);
    if (it == table_.end()) return Peer{};
    return {IdentityStatus::kResolved, it->second, 2};
  }

 private:
  std::map<uint32_t, uint64_t>& table_;
};

class ListSource final : public PodListSource {
 public:
  explicit ListSource(std::string& body, std::string& error) : body_(body), error_(error) {}
  bool fetch(std::string& body, std::string& error) override {
    if (!error_.empty()) {
      error = error_;
      return false;
    }
    body = body_;
    return true;
  }

 private:
  std::string& body_;
  std::string& error_;
};

struct Fields final : FieldVisitor {
  std::map<std::string, std::string> str_fields;
  void str(std::string_view n, std::string_view v) override { str_fields[std::string(n)] = v; }
  void num(std::string_view n, uint64_t v) override {
    str_fields[std::string(n)] = std::to_string(v);
  }
  void inum(std::string_view, int64_t) override {}
  void millis(std::string_view, uint64_t) override {}
  void time(std::string_view, uint64_t) override {}
  void addr(std::string_view, const uint8_t*, uint8_t) override {}
  void flags(std::string_view, uint32_t, const char* const*, size_t) override {}
  std::string operator[](const std::string& k) const {
    auto it = str_fields.find(k);
    return it == str_fields.end() ? "<absent>" : it->second;
  }
};

// A record with one field of its own, to see the names come after it.
struct TestRecord final : Record {
  void visit(const ConnectionInfo&, FieldVisitor& v) const override { v.str("type", "test"); }
  void appendMessage(std::string& out, const ConnectionInfo&) const override { out += "GET /"; }
};

struct Capture final : RecordSink {
  Fields fields;
  std::string message;
  void onRecord(const ConnectionInfo& conn, const Record& r) override {
    fields = Fields{};
    r.visit(conn, fields);
    // What a sink reading the inner record's members sees (metrics): the
    // same fields, the record l7tap made underneath.
    Fields split;
    r.inner().visit(conn, split);
    r.visitAdded(conn, split);
    EXPECT_EQ(split.str_fields, fields.str_fields);
    EXPECT_NE(dynamic_cast<const TestRecord*>(&r.inner()), nullptr);
    message.clear();
    r.appendMessage(message, conn);
  }
};

class NodeIdentityTest : public ::testing::Test {
 protected:
  NodeIdentityTest() {
    proc.add(1, 4026531840, "systemd", "0::/init.scope\n");
    proc.add(100, 5001, "pause", cgroup(kUidA, kPauseA));
    proc.add(101, 5001, "checkout", cgroup(kUidA, kAppA));
    proc.add(200, 5002, "pause", cgroup(kUidB, kPauseB));
    proc.add(201, 5002, "payments", cgroup(kUidB, kAppB));
    peers[7] = 5001;
    peers[8] = 5002;
    a = {"checkout-7d9f8b6c5-x2k4p", "shop",      kUidA,           "10.1.0.4", "ReplicaSet",
         "checkout-7d9f8b6c5",       "7d9f8b6c5", {{"app", kAppA}}};
    b = {"payments-0", "shop", kUidB, "10.1.0.9", "StatefulSet", "payments", "", {{"api", kAppB}}};
    list = podListJson({a, b});
  }

  std::unique_ptr<NodeIdentity> make() {
    IdentityConfig config;
    config.host_proc = proc.root();
    config.node_name = "node-1";
    return std::make_unique<NodeIdentity>(config, std::make_unique<TablePeers>(peers),
                                          std::make_unique<ListSource>(list, error));
  }

  // A connection from 10.1.0.4:41230 to 10.1.0.9:8080 owned by `ifindex`.
  static ConnectionInfo conn(uint32_t ifindex, uint8_t client_last = 4) {
    ConnectionInfo c;
    c.ifindex = ifindex;
    const uint8_t client[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, client_last};
    const uint8_t server[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 9};
    std::memcpy(c.addr[0].data(), client, 16);
    std::memcpy(c.addr[1].data(), server, 16);
    c.port[0] = 41230;
    c.port[1] = 8080;
    return c;
  }

  Fields fieldsOf(NodeIdentity& id, const ConnectionInfo& c) {
    Capture capture;
    EnrichingSink sink(id, capture);
    sink.onRecord(c, TestRecord{});
    last_message = capture.message;
    return capture.fields;
  }

  metadata::testing::FakeProc proc;
  std::map<uint32_t, uint64_t> peers;
  PodJson a, b;
  std::string list, error;
  std::string last_message;
};

TEST_F(NodeIdentityTest, RecordsNameTheObservedPodAndThePeer) {
  auto id = make();
  id->attached(7, "veth-a");
  id->attached(8, "veth-b");
  id->step(1 * kSecond);
  const Fields f = fieldsOf(*id, conn(7));
  EXPECT_EQ(f["type"], "test");
  EXPECT_EQ(f["l7tap.observed.side"], "client");
  EXPECT_EQ(f["k8s.node.name"], "node-1");
  EXPECT_EQ(f["k8s.namespace.name"], "shop");
  EXPECT_EQ(f["k8s.pod.name"], "checkout-7d9f8b6c5-x2k4p");
  EXPECT_EQ(f["k8s.pod.uid"], kUidA);
  EXPECT_EQ(f["k8s.container.name"], "app");
  EXPECT_EQ(f["k8s.deployment.name"], "checkout");
  EXPECT_EQ(f["container.id"], kAppA);
  EXPECT_EQ(f["process.executable.name"], "checkout");
  EXPECT_EQ(f["l7tap.netns.inode"], "5001");
  EXPECT_EQ(f["l7tap.peer.k8s.namespace.name"], "shop");
  EXPECT_EQ(f["l7tap.peer.k8s.pod.name"], "payments-0");
  EXPECT_EQ(f["l7tap.peer.k8s.pod.uid"], kUidB);
  EXPECT_EQ(f["l7tap.peer.k8s.statefulset.name"], "payments");
  EXPECT_EQ(last_message, "GET / (pod shop/checkout-7d9f8b6c5-x2k4p, peer shop/payments-0)");

  // The same connection seen from the server's interface.
  const Fields s = fieldsOf(*id, conn(8));
  EXPECT_EQ(s["l7tap.observed.side"], "server");
  EXPECT_EQ(s["k8s.pod.name"], "payments-0");
  EXPECT_EQ(s["l7tap.peer.k8s.pod.name"], "checkout-7d9f8b6c5-x2k4p");

  // An interface nothing is known about: the record as it was.
  EXPECT_EQ(fieldsOf(*id, conn(9)).str_fields.size(), 1u);
}

// As on a node: the veth comes with the sandbox, the app container later.
// Records never name pause as the process; a rescan finds the app.
TEST_F(NodeIdentityTest, AppStartedAfterTheVethIsFoundByARescan) {
  peers[9] = 5009;
  const std::string uid = "0e000000-0000-4000-8000-00000000000e";
  const std::string app(64, '9');
  proc.add(900, 5009, "pause", cgroup(uid, std::string(64, 'f')));
  PodJson cart = {"cart-0", "shop", uid, "10.1.0.4", "StatefulSet", "cart", "", {{"web", app}}};
  list = podListJson({cart, b});
  auto id = make();
  id->attached(9, "veth-cart");
  id->step(1 * kSecond);
  EXPECT_EQ(fieldsOf(*id, conn(9))["process.executable.name"], "<absent>");
  proc.add(901, 5009, "python3", cgroup(uid, app));
  id->step(2 * kSecond);  // too soon for a rescan
  EXPECT_EQ(fieldsOf(*id, conn(9))["process.executable.name"], "<absent>");
  id->step(3 * kSecond + 1);
  EXPECT_EQ(fieldsOf(*id, conn(9))["process.executable.name"], "python3");
  EXPECT_EQ(fieldsOf(*id, conn(9))["k8s.container.name"], "web");
}

TEST_F(NodeIdentityTest, GoneInterfaceNamesNothing) {
  auto id = make();
  id->attached(7, "veth-a");
  id->step(1 * kSecond);
  EXPECT_EQ(fieldsOf(*id, conn(7))["k8s.pod.name"], "checkout-7d9f8b6c5-x2k4p");
  id->detached(7);
  id->step(2 * kSecond);
  EXPECT_EQ(fieldsOf(*id, conn(7)).str_fields.size(), 1u);
}

TEST_F(NodeIdentityTest, KubeletDownLeavesTheUidAndSaysWhy) {
  error = "https://127.0.0.1:1/pods: Couldn't connect to server";
  auto id = make();
  id->attached(7, "veth-a");
  id->step(1 * kSecond);
  const Fields f = fieldsOf(*id, conn(7));
  EXPECT_EQ(f["k8s.pod.uid"], kUidA);  // from the cgroup: true without the kubelet
  EXPECT_EQ(f["k8s.pod.name"], "<absent>");
  EXPECT_EQ(f["l7tap.peer.k8s.pod.name"], "<absent>");
  EXPECT_EQ(f["container.id"], "<absent>");  // the pod has two: sandbox and app
  const std::vector<std::string> summary = id->summary();
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_NE(summary[0].find("Couldn't connect to server"), std::string::npos) << summary[0];
  EXPECT_NE(summary[1].find("1 pods without a name"), std::string::npos) << summary[1];

  // The kubelet comes back: the next timer refresh names the pod.
  error.clear();
  id->step(1 * kSecond + kDefaultKubeletLimits.refresh_interval_ns);
  EXPECT_EQ(fieldsOf(*id, conn(7))["k8s.pod.name"], "checkout-7d9f8b6c5-x2k4p");
}

// A pod restarted with a new UID on a reused address: until the list has
// the new pod, the address names nobody (the old pod is gone from the node
// and the list is known to be behind); then the new pod.
TEST_F(NodeIdentityTest, PodRestartedOnAReusedAddressIsNeverTheOldOne) {
  auto id = make();
  id->attached(7, "veth-a");
  id->attached(8, "veth-b");
  id->step(1 * kSecond);
  EXPECT_EQ(fieldsOf(*id, conn(7))["l7tap.peer.k8s.pod.name"], "payments-0");

  // payments-0 is replaced: its veth goes, a new one comes with a new
  // namespace and UID, same address; the kubelet's list still has the old.
  id->detached(8);
  proc.add(300, 5003, "pause", cgroup(kUidNew, std::string(64, 'c')));
  proc.add(301, 5003, "payments", cgroup(kUidNew, std::string(64, '3')));
  peers[9] = 5003;
  id->attached(9, "veth-b2");
  id->step(2 * kSecond);  // within the unknown-refresh interval: no new list yet
  EXPECT_EQ(fieldsOf(*id, conn(7))["l7tap.peer.k8s.pod.name"], "<absent>");
  EXPECT_EQ(fieldsOf(*id, conn(9))["k8s.pod.name"], "<absent>");
  EXPECT_EQ(fieldsOf(*id, conn(9))["k8s.pod.uid"], kUidNew);

  PodJson renewed = b;
  renewed.uid = kUidNew;
  renewed.containers = {{"api", std::string(64, '3')}};
  list = podListJson({a, renewed});
  id->step(2 * kSecond + kDefaultKubeletLimits.min_unknown_refresh_interval_ns);
  const Fields f = fieldsOf(*id, conn(7));
  EXPECT_EQ(f["l7tap.peer.k8s.pod.name"], "payments-0");
  EXPECT_EQ(f["l7tap.peer.k8s.pod.uid"], kUidNew);
  EXPECT_EQ(fieldsOf(*id, conn(9))["k8s.pod.uid"], kUidNew);
}

TEST_F(NodeIdentityTest, HostNetworkAddressNamesNoPod) {
  PodJson host = {"node-exporter-abcde",
                  "monitoring",
                  "0d000000-0000-4000-8000-00000000000d",
                  "10.1.0.77",
                  "DaemonSet",
                  "node-exporter",
                  "",
                  {{"exporter", std::string(64, 'e')}}};
  host.host_network = true;
  list = podListJson({a, b, host});
  auto id = make();
  id->attached(7, "veth-a");
  id->step(1 * kSecond);
  ConnectionInfo c = conn(7);
  c.addr[1][15] = 77;  // checkout talks to the node's address
  const Fields f = fieldsOf(*id, c);
  EXPECT_EQ(f["k8s.pod.name"], "checkout-7d9f8b6c5-x2k4p");
  EXPECT_EQ(f["l7tap.peer.k8s.pod.name"], "<absent>");
}

TEST_F(NodeIdentityTest, NamesOffStillGiveWhatTheNodeShows) {
  IdentityConfig config;
  config.host_proc = proc.root();
  config.node_name = "node-1";
  config.off_reason = "off (--kubelet none)";
  NodeIdentity id(config, std::make_unique<TablePeers>(peers), nullptr);
  id.attached(7, "veth-a");
  id.step(1 * kSecond);
  const Fields f = fieldsOf(id, conn(7));
  EXPECT_EQ(f["k8s.pod.uid"], kUidA);
  EXPECT_EQ(f["process.executable.name"], "checkout");
  EXPECT_EQ(f["k8s.pod.name"], "<absent>");
  EXPECT_EQ(id.summary()[0], "pod names: off (--kubelet none)");
}

TEST_F(NodeIdentityTest, NamesSettleWithTheFirstPodListFetchedOrFailed) {
  auto id = make();
  EXPECT_FALSE(id->namesSettled());
  id->step(1 * kSecond);
  EXPECT_TRUE(id->namesSettled());
  IdentityConfig off;
  off.host_proc = proc.root();
  NodeIdentity names_off(off, std::make_unique<TablePeers>(peers), nullptr);
  EXPECT_TRUE(names_off.namesSettled());
}

TEST(IdentityOptions, Defaults) {
  IdentityOptions o;
  o.node_name = "n1";
  o.kubelet_token_file = "/nonexistent/token";
  o.kubelet_url = "";
  // An explicit token file that is missing, no URL: names off, and why.
  IdentityConfig c = resolveIdentityOptions(o);
  EXPECT_FALSE(c.kubelet);
  EXPECT_NE(c.off_reason.find("/nonexistent/token"), std::string::npos);
  o.kubelet_url = "https://127.0.0.1:10250";
  c = resolveIdentityOptions(o);
  ASSERT_TRUE(c.kubelet);
  EXPECT_EQ(c.kubelet->url, "https://127.0.0.1:10250");
  o.kubelet_url = "none";
  EXPECT_FALSE(resolveIdentityOptions(o).kubelet);
  o.kubelet_url = "";
  o.node_name = "";
  setenv("NODE_NAME", "from-env", 1);
  EXPECT_EQ(resolveIdentityOptions(o).node_name, "from-env");
  unsetenv("NODE_NAME");
}

}  // namespace
}  // namespace l7tap
