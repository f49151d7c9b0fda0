// What a record says about who the two endpoints of its connection are: the
// pod behind the interface that owns the connection (the observed side) and,
// by address, the pod at the other end (the peer). A pure join of what
// metadata/ found behind the interface, the kubelet's pod list and the
// connection's endpoints, so that every rule of "never a wrong pod" is
// testable on tables.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kubelet/pod_list.h"
#include "metadata/interface_identity.h"
#include "reassembly/connection_stats.h"

namespace l7tap {

/// Who is behind one attached interface, as of the last scan and pod list.
/// Immutable once published: records hold it while they are written.
struct ObservedIdentity {
  uint32_t ifindex = 0;
  std::string interface_name;
  metadata::InterfaceIdentity found;  ///< what the peer namespace holds
  /// The kubelet's pod with found.pod.pod_uid; null when names are off, the
  /// namespace has no pod, or the list does not have it (yet).
  std::shared_ptr<const Pod> pod;
  std::string node_name;  ///< the node's, for k8s.node.name
};

/// The names of one connection's endpoints. Views point into `observed`
/// and `peer`, which it holds.
struct ConnectionNames {
  std::shared_ptr<const ObservedIdentity> observed;
  /// Which endpoint the observed side is; unknown when neither its pod's
  /// addresses nor its listening sockets tell.
  enum class Side : uint8_t { kUnknown, kClient, kServer } side = Side::kUnknown;
  std::string_view container_name;  ///< the kubelet's, when the container is known
  std::string_view container_id;
  std::string_view process_name;
  std::shared_ptr<const Pod> peer;
  /// The observed side is the server, but its namespace had no listener on
  /// the server port when it was scanned: a rescan may find the server.
  bool listener_missed = false;
};

/// Who the pod at an address is (PodCache::byAddress, after the caller's
/// own checks); null: nobody l7tap may name.
using PeerLookup = std::function<std::shared_ptr<const Pod>(const PodAddress&)>;

/// Joins `observed` (may be null: no names) with the connection. The peer
/// is looked up only when the observed side is known, and is never the
/// observed pod itself.
ConnectionNames nameConnection(const ConnectionInfo& conn,
                               std::shared_ptr<const ObservedIdentity> observed,
                               const PeerLookup& peer_of);

/// The connection's endpoint address in the 16-byte form pod lists use.
PodAddress endpointAddress(const ConnectionInfo& conn, Side side);

}  // namespace l7tap
