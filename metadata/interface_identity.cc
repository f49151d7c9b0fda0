#include "metadata/interface_identity.h"

#include "metadata/socket_owner.h"
#include "metadata/veth_peer.h"

namespace l7tap::metadata {

const char* identityStatusName(IdentityStatus status) {
  switch (status) {
    case IdentityStatus::kResolved:
      return "resolved";
    case IdentityStatus::kNoLink:
      return "no_link";
    case IdentityStatus::kNoPeerNetns:
      return "no_peer_netns";
    case IdentityStatus::kNsidUnmapped:
      return "nsid_unmapped";
    case IdentityStatus::kNoProcesses:
      return "no_processes";
    case IdentityStatus::kManyPods:
      return "many_pods";
  }
  return "";
}

PeerNetnsSource::Peer NetlinkPeerNetnsSource::peerOf(uint32_t ifindex) {
  Peer peer;
  std::string error;
  const std::optional<LinkPeer> link = queryLinkPeer(ifindex, &error);
  if (!link) return peer;
  peer.peer_ifindex = link->peer_ifindex;
  if (!link->peer_netnsid) {
    peer.status = IdentityStatus::kNoPeerNetns;
    return peer;
  }
  const std::optional<uint64_t> inode = nsids_.inodeOf(*link->peer_netnsid);
  if (!inode) {
    peer.status = IdentityStatus::kNsidUnmapped;
    return peer;
  }
  peer.status = IdentityStatus::kResolved;
  peer.netns_inode = *inode;
  return peer;
}

PodIdentity podIdentityOf(const NetnsScan& scan, IdentityStatus* status) {
  PodIdentity pod;
  pod.container_ids = scan.container_ids;
  if (scan.processes.empty()) {
    *status = IdentityStatus::kNoProcesses;
    return pod;
  }
  // A pod's containers share its sandbox's namespace and no other pod's, so
  // one UID among the processes names the namespace; two mean a host-network
  // namespace, and the containers there are not one pod's either.
  if (scan.pod_uids.size() > 1) {
    *status = IdentityStatus::kManyPods;
    pod.container_ids.clear();
  } else {
    *status = IdentityStatus::kResolved;
    if (scan.pod_uids.size() == 1) pod.pod_uid = scan.pod_uids.front();
  }
  for (const NetnsProcess& process : scan.processes) {
    if (process.comm == "pause") continue;
    pod.process_name = process.comm;
    break;
  }
  if (pod.process_name.empty()) pod.process_name = scan.processes.front().comm;
  return pod;
}

InterfaceIdentityResolver::InterfaceIdentityResolver(PeerNetnsSource& peers,
                                                     const NetnsScanner& scanner,
                                                     MetadataLimits limits)
    : peers_(peers), scanner_(scanner), limits_(limits) {}

InterfaceIdentity InterfaceIdentityResolver::lookup(uint32_t ifindex) {
  return resolve(ifindex, false);
}

InterfaceIdentity InterfaceIdentityResolver::refresh(uint32_t ifindex) {
  return resolve(ifindex, true);
}

std::vector<InterfaceIdentity> InterfaceIdentityResolver::lookupAll(
    const std::vector<uint32_t>& ifindexes) {
  return resolveAll(ifindexes, false);
}

std::vector<InterfaceIdentity> InterfaceIdentityResolver::refreshAll(
    const std::vector<uint32_t>& ifindexes) {
  return resolveAll(ifindexes, true);
}

InterfaceIdentity InterfaceIdentityResolver::resolve(uint32_t ifindex, bool rescan) {
  // The link is asked every time: it is one cheap round trip, and a
  // recreated veth with a reused ifindex must not inherit a cached namespace.
  return fromPeer(ifindex, peers_.peerOf(ifindex), rescan, nullptr);
}

std::vector<InterfaceIdentity> InterfaceIdentityResolver::resolveAll(
    const std::vector<uint32_t>& ifindexes, bool rescan) {
  std::vector<PeerNetnsSource::Peer> peers;
  peers.reserve(ifindexes.size());
  bool scans = false;
  for (const uint32_t ifindex : ifindexes) {
    peers.push_back(peers_.peerOf(ifindex));
    if (peers.back().status == IdentityStatus::kResolved &&
        (rescan || cache_.find(peers.back().netns_inode) == cache_.end()))
      scans = true;
  }
  std::optional<ProcessIndex> index;
  if (scans) index = scanner_.index();
  std::vector<InterfaceIdentity> identities;
  identities.reserve(ifindexes.size());
  for (size_t i = 0; i < ifindexes.size(); ++i)
    identities.push_back(fromPeer(ifindexes[i], peers[i], rescan, index ? &*index : nullptr));
  return identities;
}

InterfaceIdentity InterfaceIdentityResolver::fromPeer(uint32_t ifindex,
                                                      const PeerNetnsSource::Peer& peer,
                                                      bool rescan, const ProcessIndex* index) {
  InterfaceIdentity identity;
  identity.ifindex = ifindex;
  identity.status = peer.status;
  identity.peer_ifindex = peer.peer_ifindex;
  if (peer.status != IdentityStatus::kResolved) return identity;
  identity.netns_inode = peer.netns_inode;

  auto it = cache_.find(peer.netns_inode);
  if (it != cache_.end() && !rescan) {
    recency_.splice(recency_.begin(), recency_, it->second.recency);
  } else {
    const NetnsScan scan = index != nullptr ? scanner_.scan(peer.netns_inode, *index)
                                            : scanner_.scan(peer.netns_inode);
    ++scans_;
    IdentityStatus status = IdentityStatus::kResolved;
    PodIdentity pod = podIdentityOf(scan, &status);
    ListenerScan listening = listenersOf(scan, scanner_.hostProc(), scanner_.limits());
    pod.listeners = std::move(listening.listeners);
    const bool truncated = scan.truncated || listening.truncated;
    if (it == cache_.end()) {
      if (limits_.max_cached_netns == 0) {
        identity.status = status;
        identity.pod = std::move(pod);
        identity.truncated = truncated;
        return identity;
      }
      if (cache_.size() >= limits_.max_cached_netns) {
        cache_.erase(recency_.back());
        recency_.pop_back();
      }
      recency_.push_front(peer.netns_inode);
      it = cache_.emplace(peer.netns_inode, Cached{{}, status, false, recency_.begin()}).first;
    } else {
      recency_.splice(recency_.begin(), recency_, it->second.recency);
    }
    it->second.pod = std::move(pod);
    it->second.status = status;
    it->second.truncated = truncated;
  }
  identity.status = it->second.status;
  identity.pod = it->second.pod;
  identity.truncated = it->second.truncated;
  return identity;
}

}  // namespace l7tap::metadata
