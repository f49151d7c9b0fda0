// What is on the other end of an attached interface, from rtnetlink: for a
// veth, its peer's ifindex and network namespace (IFLA_LINK_NETNSID), and the
// namespace's inode, found by asking the kernel for the nsid of each
// namespace seen in the host /proc (RTM_GETNSID).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

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

/// How a namespace's nsid is asked: RTM_GETNSID in production, a table in tests.
class NsidProbe {
 public:
  virtual ~NsidProbe() = default;
  /// The nsid the caller's namespace gives the namespace of `ns_path` (a
  /// /proc/PID/ns/net), with in *inode that namespace's inode as opened (the
  /// pid may have moved since it was listed). nullopt when it cannot be
  /// opened or has no nsid.
  virtual std::optional<int32_t> nsidOf(const std::string& ns_path, uint64_t* inode) = 0;
};

struct NetlinkChannel;

/// RTM_GETNSID over one netlink socket kept open.
class RtnetlinkNsidProbe final : public NsidProbe {
 public:
  RtnetlinkNsidProbe();
  ~RtnetlinkNsidProbe() override;
  std::optional<int32_t> nsidOf(const std::string& ns_path, uint64_t* inode) override;

 private:
  std::unique_ptr<NetlinkChannel> channel_;
};

/// nsid -> inode of the namespaces in the scanner's /proc, built by asking
/// each namespace its nsid once, and rebuilt only when a lookup's nsid is
/// not in it: at 1,000 pods, a lookup is a map hit and one RTM_GETNSID to
/// check it instead of 1,000. At most max_netns_probed entries.
class NetnsIdMap {
 public:
  NetnsIdMap(const NetnsScanner& scanner, NsidProbe& probe);

  std::optional<uint64_t> inodeOf(int32_t nsid);

  struct Stats {
    uint64_t lookups = 0;
    uint64_t hits = 0;      ///< answered from the map, checked
    uint64_t stale = 0;     ///< cached entries the check refused (nsid reused, pid gone)
    uint64_t rebuilds = 0;  ///< walks of /proc asking every namespace
    uint64_t probes = 0;    ///< nsids asked, checks included
    uint32_t entries = 0;
    bool truncated = false;  ///< the last rebuild stopped at a bound
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Entry {
    uint64_t inode = 0;
    int pid = 0;  ///< the lowest pid seen in it, to open it again
  };
  void rebuild();
  std::string nsPath(int pid) const;

  const NetnsScanner& scanner_;
  NsidProbe& probe_;
  std::unordered_map<int32_t, Entry> by_nsid_;
  Stats stats_;
};

/// The inode of the caller's own network namespace.
std::optional<uint64_t> ownNetnsInode();

}  // namespace l7tap::metadata
