// The join of what is behind an interface, the pod list and a connection's
// endpoints: which side is observed, which container serves, who the peer
// is, and that no rule ever names a pod that is not there.
#include "identity/connection_names.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

namespace l7tap {
namespace {

PodAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  PodAddress out{};
  out[10] = out[11] = 0xff;
  out[12] = a, out[13] = b, out[14] = c, out[15] = d;
  return out;
}

const PodAddress kClientIp = v4(10, 1, 0, 4);
const PodAddress kServerIp = v4(10, 1, 0, 9);

ConnectionInfo conn(const PodAddress& client, uint16_t cport, const PodAddress& server,
                    uint16_t sport) {
  ConnectionInfo c;
  c.ifindex = 7;
  std::memcpy(c.addr[0].data(), client.data(), 16);
  std::memcpy(c.addr[1].data(), server.data(), 16);
  c.port[0] = cport;
  c.port[1] = sport;
  c.client_side = Side::kOrig;
  return c;
}

std::shared_ptr<Pod> pod(const std::string& name, const std::string& uid, const PodAddress& ip) {
  auto p = std::make_shared<Pod>();
  p->name = name;
  p->namespace_name = "shop";
  p->uid = uid;
  p->addresses = {ip};
  return p;
}

std::shared_ptr<ObservedIdentity> observed(std::shared_ptr<const Pod> k8s, const std::string& uid) {
  auto o = std::make_shared<ObservedIdentity>();
  o->ifindex = 7;
  o->found.status = metadata::IdentityStatus::kResolved;
  o->found.netns_inode = 4026532000;
  o->found.pod.pod_uid = uid;
  o->found.pod.process_name = "python3";
  o->pod = std::move(k8s);
  o->node_name = "node-1";
  return o;
}

struct Peers {
  std::map<PodAddress, std::shared_ptr<const Pod>> by_address;
  PeerLookup lookup() {
    return [this](const PodAddress& a) {
      auto it = by_address.find(a);
      return it == by_address.end() ? nullptr : it->second;
    };
  }
};

TEST(ConnectionNames, ClientPodAndItsPeerByAddress) {
  auto checkout = pod("checkout-7d9f", "u-checkout", kClientIp);
  checkout->containers = {{"app", "c1", false}};
  auto payments = pod("payments-0", "u-payments", kServerIp);
  Peers peers;
  peers.by_address[kServerIp] = payments;
  const ConnectionNames n = nameConnection(conn(kClientIp, 41230, kServerIp, 8080),
                                           observed(checkout, "u-checkout"), peers.lookup());
  EXPECT_EQ(n.side, ConnectionNames::Side::kClient);
  EXPECT_EQ(n.peer, payments);
  EXPECT_EQ(n.container_name, "app");  // the pod's only container
  EXPECT_EQ(n.container_id, "c1");
  EXPECT_FALSE(n.listener_missed);
}

TEST(ConnectionNames, ServerContainerIsTheListenersOwner) {
  auto payments = pod("payments-0", "u-payments", kServerIp);
  payments->containers = {{"init", "i0", true}, {"api", "c-api", false}, {"admin", "c-adm", false}};
  auto obs = observed(payments, "u-payments");
  obs->found.pod.listeners = {{8080, 30, "api-server", "c-api"}, {9090, 31, "admin", "c-adm"}};
  Peers peers;
  const ConnectionNames api =
      nameConnection(conn(kClientIp, 5000, kServerIp, 8080), obs, peers.lookup());
  EXPECT_EQ(api.side, ConnectionNames::Side::kServer);
  EXPECT_EQ(api.container_name, "api");
  EXPECT_EQ(api.process_name, "api-server");
  const ConnectionNames admin =
      nameConnection(conn(kClientIp, 5001, kServerIp, 9090), obs, peers.lookup());
  EXPECT_EQ(admin.container_name, "admin");
  // A port nobody listened on when the namespace was scanned: no container
  // (two candidates), and a rescan is asked for.
  const ConnectionNames other =
      nameConnection(conn(kClientIp, 5002, kServerIp, 7000), obs, peers.lookup());
  EXPECT_EQ(other.side, ConnectionNames::Side::kServer);
  EXPECT_TRUE(other.container_name.empty());
  EXPECT_TRUE(other.listener_missed);
}

TEST(ConnectionNames, PeerIsNeverTheObservedPod) {
  auto p = pod("loop", "u-1", kServerIp);
  p->addresses.push_back(kClientIp);  // both ends in one pod
  Peers peers;
  peers.by_address[kClientIp] = p;
  peers.by_address[kServerIp] = p;
  const ConnectionNames n =
      nameConnection(conn(kClientIp, 1, kServerIp, 2), observed(p, "u-1"), peers.lookup());
  EXPECT_EQ(n.side, ConnectionNames::Side::kUnknown);
  EXPECT_EQ(n.peer, nullptr);
  // And when the list gives the observed pod's own UID for the peer address.
  auto a = pod("a", "u-a", kClientIp);
  peers.by_address[kServerIp] = pod("a-again", "u-a", kServerIp);
  EXPECT_EQ(
      nameConnection(conn(kClientIp, 1, kServerIp, 2), observed(a, "u-a"), peers.lookup()).peer,
      nullptr);
}

TEST(ConnectionNames, WithoutTheKubeletTheListenerTellsTheServer) {
  auto obs = observed(nullptr, "");
  obs->found.pod.container_ids = {"d0cker"};
  obs->found.pod.listeners = {{8080, 12, "nginx", "d0cker"}};
  const ConnectionNames server = nameConnection(conn(kClientIp, 1, kServerIp, 8080), obs, nullptr);
  EXPECT_EQ(server.side, ConnectionNames::Side::kServer);
  EXPECT_EQ(server.container_id, "d0cker");
  EXPECT_EQ(server.process_name, "nginx");
  // Not the server, and no addresses to tell: unknown, never a guess; the
  // namespace's one container and first process still describe it.
  const ConnectionNames client = nameConnection(conn(kClientIp, 1, kServerIp, 443), obs, nullptr);
  EXPECT_EQ(client.side, ConnectionNames::Side::kUnknown);
  EXPECT_EQ(client.container_id, "d0cker");
  EXPECT_EQ(client.process_name, "python3");
  EXPECT_EQ(client.peer, nullptr);
}

TEST(ConnectionNames, NoObservedIdentityNamesNothing) {
  const ConnectionNames n = nameConnection(conn(kClientIp, 1, kServerIp, 2), nullptr, nullptr);
  EXPECT_EQ(n.observed, nullptr);
  EXPECT_EQ(n.side, ConnectionNames::Side::kUnknown);
}

}  // namespace
}  // namespace l7tap
