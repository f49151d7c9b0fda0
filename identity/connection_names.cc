#include "identity/connection_names.h"

#include <algorithm>
#include <cstring>

namespace l7tap {

namespace {

using Listener = metadata::PodIdentity::Listener;

bool holds(const Pod& pod, const PodAddress& addr) {
  return std::find(pod.addresses.begin(), pod.addresses.end(), addr) != pod.addresses.end();
}

const Listener* listenerOn(const metadata::PodIdentity& found, uint16_t port) {
  auto it = std::lower_bound(found.listeners.begin(), found.listeners.end(), port,
                             [](const Listener& l, uint16_t p) { return l.port < p; });
  return it != found.listeners.end() && it->port == port ? &*it : nullptr;
}

// The pod's one regular container, when it has exactly one: then whatever
// the namespace does, that container does it.
const PodContainer* onlyContainer(const Pod& pod) {
  const PodContainer* only = nullptr;
  for (const PodContainer& c : pod.containers) {
    if (c.init) continue;
    if (only) return nullptr;
    only = &c;
  }
  return only;
}

const PodContainer* containerWithId(const Pod& pod, std::string_view id) {
  if (id.empty()) return nullptr;
  for (const PodContainer& c : pod.containers) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

// Which endpoint is the pod behind the interface: its addresses say it
// best; without them (no kubelet, or a list without the pod's address yet),
// a socket listening on the server port in its namespace says it is the
// server. Anything else is unknown rather than a guess.
ConnectionNames::Side observedSide(const ConnectionInfo& conn, const ObservedIdentity& obs) {
  using S = ConnectionNames::Side;
  const Side client = conn.client_side;
  const Side server = opposite(client);
  if (obs.pod && !obs.pod->host_network) {
    const bool is_client = holds(*obs.pod, endpointAddress(conn, client));
    const bool is_server = holds(*obs.pod, endpointAddress(conn, server));
    if (is_client != is_server) return is_client ? S::kClient : S::kServer;
    if (is_client) return S::kUnknown;  // both ends in one pod: not through its veth
  }
  if (listenerOn(obs.found.pod, conn.port[index(server)])) return S::kServer;
  return S::kUnknown;
}

}  // namespace

PodAddress endpointAddress(const ConnectionInfo& conn, Side side) {
  PodAddress out;
  std::memcpy(out.data(), conn.addr[index(side)].data(), out.size());
  return out;
}

ConnectionNames nameConnection(const ConnectionInfo& conn,
                               std::shared_ptr<const ObservedIdentity> observed,
                               const PeerLookup& peer_of) {
  ConnectionNames names;
  if (!observed) return names;
  const ObservedIdentity& obs = *observed;
  const metadata::PodIdentity& found = obs.found.pod;
  names.side = observedSide(conn, obs);
  const Side server = opposite(conn.client_side);

  // The process and container that do the observed side's work: the
  // server socket's owner when it serves, else the pod's one container.
  const Listener* listener = nullptr;
  if (names.side == ConnectionNames::Side::kServer) {
    listener = listenerOn(found, conn.port[index(server)]);
    names.listener_missed = listener == nullptr;
  }
  if (listener) {
    names.process_name = listener->process_name;
    names.container_id = listener->container_id;
    if (obs.pod) {
      if (const PodContainer* c = containerWithId(*obs.pod, listener->container_id)) {
        names.container_name = c->name;
      }
    }
  } else {
    names.process_name = found.process_name;
    if (obs.pod) {
      if (const PodContainer* c = onlyContainer(*obs.pod); c && !c->id.empty()) {
        names.container_name = c->name;
        names.container_id = c->id;
      }
    } else if (found.pod_uid.empty() && found.container_ids.size() == 1) {
      names.container_id = found.container_ids.front();  // Docker, Podman: no sandbox
    }
  }

  if (names.side != ConnectionNames::Side::kUnknown && peer_of) {
    const Side peer_side = names.side == ConnectionNames::Side::kClient ? server : conn.client_side;
    std::shared_ptr<const Pod> peer = peer_of(endpointAddress(conn, peer_side));
    if (peer && !(found.pod_uid.size() && peer->uid == found.pod_uid)) names.peer = std::move(peer);
  }
  names.observed = std::move(observed);
  return names;
}

}  // namespace l7tap
