#include "metadata/veth_peer.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace l7tap::metadata {
namespace {

// One link's attributes fit easily; a reply that does not is an error.
constexpr size_t kReplyBytes = 32 * 1024;

class NetlinkSocket {
 public:
  NetlinkSocket() : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {}
  ~NetlinkSocket() {
    if (fd_ >= 0) close(fd_);
  }
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;

  /// Sends one request and returns its single reply message, or nullptr
  /// with *error (an NLMSG_ERROR carries the kernel's errno).
  const nlmsghdr* request(const void* message, size_t length, std::string* error) {
    if (fd_ < 0) return fail(error, "netlink socket: ", errno);
    if (send(fd_, message, length, 0) < 0) return fail(error, "netlink send: ", errno);
    ssize_t n;
    do {
      n = recv(fd_, reply_, sizeof(reply_), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail(error, "netlink recv: ", errno);
    const auto* header = reinterpret_cast<const nlmsghdr*>(reply_);
    if (!NLMSG_OK(header, static_cast<unsigned>(n))) return fail(error, "netlink: short reply", 0);
    if (header->nlmsg_type == NLMSG_ERROR) {
      const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(header));
      return fail(error, "netlink: ", -err->error);
    }
    return header;
  }

 private:
  static const nlmsghdr* fail(std::string* error, const char* what, int err) {
    if (error != nullptr) *error = std::string(what) + (err != 0 ? std::strerror(err) : "");
    return nullptr;
  }

  int fd_;
  alignas(nlmsghdr) char reply_[kReplyBytes];
};

}  // namespace

std::optional<LinkPeer> queryLinkPeer(uint32_t ifindex, std::string* error) {
  struct {
    nlmsghdr header;
    ifinfomsg info;
  } req{};
  req.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.header.nlmsg_type = RTM_GETLINK;
  req.header.nlmsg_flags = NLM_F_REQUEST;
  req.header.nlmsg_seq = 1;
  req.info.ifi_family = AF_UNSPEC;
  req.info.ifi_index = static_cast<int>(ifindex);

  auto socket = std::make_unique<NetlinkSocket>();
  const nlmsghdr* reply = socket->request(&req, req.header.nlmsg_len, error);
  if (reply == nullptr) return std::nullopt;
  if (reply->nlmsg_type != RTM_NEWLINK) {
    if (error != nullptr) *error = "netlink: unexpected reply type";
    return std::nullopt;
  }
  LinkPeer peer;
  const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(reply));
  int remaining = static_cast<int>(IFLA_PAYLOAD(reply));
  for (const rtattr* attr = IFLA_RTA(info); RTA_OK(attr, remaining);
       attr = RTA_NEXT(attr, remaining)) {
    const size_t payload = RTA_PAYLOAD(attr);
    switch (attr->rta_type) {
      case IFLA_LINK:
        if (payload >= sizeof(uint32_t))
          std::memcpy(&peer.peer_ifindex, RTA_DATA(attr), sizeof(uint32_t));
        break;
      case IFLA_LINK_NETNSID:
        if (payload >= sizeof(int32_t)) {
          int32_t nsid = 0;
          std::memcpy(&nsid, RTA_DATA(attr), sizeof(nsid));
          peer.peer_netnsid = nsid;
        }
        break;
      case IFLA_LINKINFO: {
        int nested_remaining = static_cast<int>(payload);
        for (const rtattr* nested = static_cast<const rtattr*>(RTA_DATA(attr));
             RTA_OK(nested, nested_remaining); nested = RTA_NEXT(nested, nested_remaining)) {
          if (nested->rta_type != IFLA_INFO_KIND) continue;
          const char* kind = static_cast<const char*>(RTA_DATA(nested));
          peer.kind.assign(kind, strnlen(kind, RTA_PAYLOAD(nested)));
        }
        break;
      }
      default:
        break;
    }
  }
  // Without a namespace id, IFLA_LINK names a link of our own namespace (or
  // the lower device of a vlan/macvlan); a veth peer here is not a pod.
  return peer;
}

namespace {

std::optional<int32_t> netnsIdOn(NetlinkSocket& socket, int netns_fd) {
  struct {
    nlmsghdr header;
    rtgenmsg gen;
    char pad[3];
    rtattr fd_attr;
    uint32_t fd;
  } req{};
  static_assert(sizeof(req) ==
                NLMSG_LENGTH(NLMSG_ALIGN(sizeof(rtgenmsg))) + RTA_LENGTH(sizeof(uint32_t)));
  req.header.nlmsg_len = sizeof(req);
  req.header.nlmsg_type = RTM_GETNSID;
  req.header.nlmsg_flags = NLM_F_REQUEST;
  req.header.nlmsg_seq = 1;
  req.gen.rtgen_family = AF_UNSPEC;
  req.fd_attr.rta_type = NETNSA_FD;
  req.fd_attr.rta_len = RTA_LENGTH(sizeof(uint32_t));
  req.fd = static_cast<uint32_t>(netns_fd);

  const nlmsghdr* reply = socket.request(&req, sizeof(req), nullptr);
  if (reply == nullptr || reply->nlmsg_type != RTM_NEWNSID) return std::nullopt;
  int remaining = static_cast<int>(reply->nlmsg_len) -
                  static_cast<int>(NLMSG_LENGTH(NLMSG_ALIGN(sizeof(rtgenmsg))));
  const auto* attr = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(reply) +
                                                     NLMSG_LENGTH(NLMSG_ALIGN(sizeof(rtgenmsg))));
  for (; RTA_OK(attr, remaining); attr = RTA_NEXT(attr, remaining)) {
    if (attr->rta_type != NETNSA_NSID || RTA_PAYLOAD(attr) < sizeof(int32_t)) continue;
    int32_t nsid = 0;
    std::memcpy(&nsid, RTA_DATA(attr), sizeof(nsid));
    // NETNSA_NSID_NOT_ASSIGNED (-1): the two namespaces share no link.
    if (nsid < 0) return std::nullopt;
    return nsid;
  }
  return std::nullopt;
}

}  // namespace

std::optional<int32_t> netnsIdOf(int netns_fd) {
  auto socket = std::make_unique<NetlinkSocket>();
  return netnsIdOn(*socket, netns_fd);
}

std::optional<uint64_t> netnsInodeOfNsid(int32_t nsid, const NetnsScanner& scanner) {
  // One socket for every probe: a node has a namespace per pod.
  auto socket = std::make_unique<NetlinkSocket>();
  bool truncated = false;
  uint32_t probed = 0;
  for (const auto& [inode, pid] : scanner.namespaces(&truncated)) {
    if (probed++ >= scanner.limits().max_netns_probed) break;
    const std::string path = scanner.hostProc() + "/" + std::to_string(pid) + "/ns/net";
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    const std::optional<int32_t> id = netnsIdOn(*socket, fd);
    close(fd);
    if (id && *id == nsid) return inode;
  }
  return std::nullopt;
}

struct NetlinkChannel {
  NetlinkSocket socket;
};

RtnetlinkNsidProbe::RtnetlinkNsidProbe() : channel_(std::make_unique<NetlinkChannel>()) {}
RtnetlinkNsidProbe::~RtnetlinkNsidProbe() = default;

std::optional<int32_t> RtnetlinkNsidProbe::nsidOf(const std::string& ns_path, uint64_t* inode) {
  const int fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::optional<int32_t> id;
  if (fstat(fd, &st) == 0) {
    *inode = static_cast<uint64_t>(st.st_ino);
    id = netnsIdOn(channel_->socket, fd);
  }
  close(fd);
  return id;
}

NetnsIdMap::NetnsIdMap(const NetnsScanner& scanner, NsidProbe& probe)
    : scanner_(scanner), probe_(probe) {}

std::string NetnsIdMap::nsPath(int pid) const {
  return scanner_.hostProc() + "/" + std::to_string(pid) + "/ns/net";
}

std::optional<uint64_t> NetnsIdMap::inodeOf(int32_t nsid) {
  ++stats_.lookups;
  auto it = by_nsid_.find(nsid);
  if (it != by_nsid_.end()) {
    // The nsid may have been freed with its namespace and given to a new
    // one, and the pid may have exited or moved: ask the namespace the
    // remembered pid is in now, and trust the entry only if it is still the
    // same namespace under the same nsid.
    uint64_t inode = 0;
    ++stats_.probes;
    if (probe_.nsidOf(nsPath(it->second.pid), &inode) == nsid && inode == it->second.inode) {
      ++stats_.hits;
      return inode;
    }
    ++stats_.stale;
  }
  rebuild();
  it = by_nsid_.find(nsid);
  if (it == by_nsid_.end()) return std::nullopt;
  return it->second.inode;
}

void NetnsIdMap::rebuild() {
  ++stats_.rebuilds;
  by_nsid_.clear();
  bool truncated = false;
  uint32_t probed = 0;
  for (const auto& [listed_inode, pid] : scanner_.namespaces(&truncated)) {
    if (probed++ >= scanner_.limits().max_netns_probed) {
      truncated = true;
      break;
    }
    uint64_t inode = 0;
    ++stats_.probes;
    const std::optional<int32_t> id = probe_.nsidOf(nsPath(pid), &inode);
    // The pid moved to another namespace between the walk and the open:
    // that namespace is listed under its own lowest pid, or is new.
    if (!id || inode != listed_inode) continue;
    by_nsid_.emplace(*id, Entry{inode, pid});
  }
  stats_.entries = static_cast<uint32_t>(by_nsid_.size());
  stats_.truncated = truncated;
}

std::optional<uint64_t> ownNetnsInode() {
  struct stat st {};
  if (stat("/proc/self/ns/net", &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace l7tap::metadata
