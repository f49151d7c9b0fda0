// What is on the other end of an attached interface, from rtnetlink: for a
// veth, its peer's ifindex and network namespace (IFLA_LINK_NETNSID), and the
// namespace's inode, found by asking the kernel for the nsid of each
// namespace seen in the host /proc (RTM_GETNSID).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "metadata/netns_scan.h"

namespace l7tap::metadata {

struct LinkPeer {
  /// IFLA_INFO_KIND, e.g. "veth"; empty when the link has none.
  std::string kind;
  /// IFLA_LINK: the peer's ifindex (in the peer's namespace), 0 if none.
  uint32_t peer_ifindex = 0;
  /// IFLA_LINK_NETNSID: the peer's namespace as seen from ours, when the
  /// peer lives in another namespace.
  std::optional<int32_t> peer_netnsid;
};

/// RTM_GETLINK for `ifindex` in the caller's namespace. nullopt (with
/// *error) when the link does not exist or the query fails.
std::optional<LinkPeer> queryLinkPeer(uint32_t ifindex, std::string* error);

/// RTM_GETNSID: the id the caller's namespace gives the namespace open at
/// `netns_fd`; nullopt when it has none (no link ties the two) or on error.
std::optional<int32_t> netnsIdOf(int netns_fd);

/// The inode of the namespace the caller's namespace calls `nsid`, probing
/// the namespaces of the scanner's /proc (at most max_netns_probed).
std::optional<uint64_t> netnsInodeOfNsid(int32_t nsid, const NetnsScanner& scanner);

/// The inode of the caller's own network namespace.
std::optional<uint64_t> ownNetnsInode();

}  // namespace l7tap::metadata
