// Who is behind an attached interface: ties the veth's peer namespace, the
// processes in it and their cgroups into one PodIdentity. Looked up when an
// interface is attached and refreshed on demand, never per packet.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "metadata/limits.h"
#include "metadata/netns_scan.h"
#include "metadata/veth_peer.h"

namespace l7tap::metadata {

struct PodIdentity {
  /// Empty unless every process in the namespace that has a pod agrees on
  /// it (a host-network namespace holds many pods: no pod).
  std::string pod_uid;
  /// Distinct, sorted; outside Kubernetes the Docker/Podman container(s).
  std::vector<std::string> container_ids;
  /// Filled by the kubelet side; empty here.
  std::string namespace_name;
  std::string pod_name;
  /// The first process, in pid order, that is not the pod's sandbox
  /// ("pause"); the sandbox's if it is alone.
  std::string process_name;
  /// A TCP socket listening in the namespace, and who holds it.
  struct Listener {
    uint16_t port = 0;
    uint32_t pid = 0;  ///< the lowest pid holding it
    std::string process_name;
    std::string container_id;  ///< empty outside a container
  };
  /// IPv4 and IPv6, sorted by port, one per port: who serves a connection
  /// whose server side is this namespace.
  std::vector<Listener> listeners;
};

enum class IdentityStatus {
  kResolved,      ///< found processes in the peer namespace
  kNoLink,        ///< the ifindex does not exist or rtnetlink failed
  kNoPeerNetns,   ///< not a veth into another namespace (host side only)
  kNsidUnmapped,  ///< no namespace in the host /proc has the peer's nsid
  kNoProcesses,   ///< the peer namespace has no process (pinned by a bind mount only)
  kManyPods,      ///< processes of several pods share the namespace
};

const char* identityStatusName(IdentityStatus status);

struct InterfaceIdentity {
  uint32_t ifindex = 0;
  IdentityStatus status = IdentityStatus::kNoLink;
  uint64_t netns_inode = 0;
  uint32_t peer_ifindex = 0;
  PodIdentity pod;
  /// The scan was cut by a bound (see NetnsScan::truncated).
  bool truncated = false;
};

/// Where the peer's namespace is: rtnetlink in production, a table in tests.
class PeerNetnsSource {
 public:
  virtual ~PeerNetnsSource() = default;
  struct Peer {
    IdentityStatus status = IdentityStatus::kNoLink;
    uint64_t netns_inode = 0;
    uint32_t peer_ifindex = 0;
  };
  virtual Peer peerOf(uint32_t ifindex) = 0;
};

/// rtnetlink (IFLA_LINK_NETNSID), and the nsid's inode from a NetnsIdMap
/// over the scanner's /proc.
class NetlinkPeerNetnsSource final : public PeerNetnsSource {
 public:
  explicit NetlinkPeerNetnsSource(const NetnsScanner& scanner) : nsids_(scanner, probe_) {}
  Peer peerOf(uint32_t ifindex) override;
  const NetnsIdMap::Stats& nsidStats() const { return nsids_.stats(); }

 private:
  RtnetlinkNsidProbe probe_;
  NetnsIdMap nsids_;
};

/// The identity of one scanned namespace.
PodIdentity podIdentityOf(const NetnsScan& scan, IdentityStatus* status);

class InterfaceIdentityResolver {
 public:
  InterfaceIdentityResolver(PeerNetnsSource& peers, const NetnsScanner& scanner,
                            MetadataLimits limits = {});

  /// The cached identity of the interface's peer namespace, scanning it the
  /// first time it is seen.
  InterfaceIdentity lookup(uint32_t ifindex);
  /// As lookup, but rescans the namespace (a pod's processes came or went).
  InterfaceIdentity refresh(uint32_t ifindex);
  /// As lookup/refresh for many interfaces (attaching at start, a refresh
  /// timer), with one walk of /proc for every namespace to scan instead of
  /// one walk each (at 1,000 pods, 35 ms instead of 2 s; the listener
  /// tables are still read per namespace, see bench/README.md).
  std::vector<InterfaceIdentity> lookupAll(const std::vector<uint32_t>& ifindexes);
  std::vector<InterfaceIdentity> refreshAll(const std::vector<uint32_t>& ifindexes);

  size_t cachedNamespaces() const { return cache_.size(); }
  uint64_t scans() const { return scans_; }

 private:
  struct Cached {
    PodIdentity pod;
    IdentityStatus status;
    bool truncated;
    std::list<uint64_t>::iterator recency;
  };

  InterfaceIdentity resolve(uint32_t ifindex, bool rescan);
  std::vector<InterfaceIdentity> resolveAll(const std::vector<uint32_t>& ifindexes, bool rescan);
  /// `index`: null to walk /proc for this namespace alone.
  InterfaceIdentity fromPeer(uint32_t ifindex, const PeerNetnsSource::Peer& peer, bool rescan,
                             const ProcessIndex* index);

  PeerNetnsSource& peers_;
  const NetnsScanner& scanner_;
  MetadataLimits limits_;
  std::unordered_map<uint64_t, Cached> cache_;
  /// Most recently used first; the back is evicted past max_cached_netns.
  std::list<uint64_t> recency_;
  uint64_t scans_ = 0;
};

}  // namespace l7tap::metadata
