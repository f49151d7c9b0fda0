// The real thing: a network namespace joined to this one by a veth, with
// processes in it placed in cgroups laid out exactly like the kubelet's (under
// an i11c-prefixed parent on the cgroup v2 mount), then resolved through
// rtnetlink and /proc. Needs root; skips with the reason otherwise.
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "metadata/interface_identity.h"
#include "metadata/netns_scan.h"
#include "metadata/veth_peer.h"
#include "tests/support/privileged.h"

namespace l7tap::metadata {
namespace {

/// Where cgroup v2 is mounted (/sys/fs/cgroup, or .../unified on a hybrid host).
std::string cgroup2Mount() {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    fields >> id >> parent >> devno >> root >> mount_point;
    return mount_point;
  }
  return {};
}

std::string missingPrivileges() {
  std::string reason = testing::missingRoot();
  if (!reason.empty()) return reason;
  if (cgroup2Mount().empty()) return "no cgroup v2 mount";
  if (std::system("ip -V >/dev/null 2>&1") != 0) return "needs iproute2 (ip)";
  return {};
}

bool run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

/// A socket in LISTEN state on the wildcard address, left open for the
/// process's life.
bool listenOn(int family, uint16_t port) {
  const int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  sockaddr_storage address{};
  socklen_t length = 0;
  if (family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    in6->sin6_addr = in6addr_any;
    length = sizeof(*in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&address);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    length = sizeof(*in);
  }
  return bind(s, reinterpret_cast<const sockaddr*>(&address), length) == 0 && listen(s, 4) == 0;
}

/// A child process that takes `comm` as its name, joins a named network
/// namespace, listens on `listen_port` of the `family` wildcard address when
/// given, and waits until killed. Returns once the child is in place (it
/// says so on a pipe), so no test waits on a clock.
pid_t spawnInNetns(const std::string& netns, const std::string& comm, uint16_t listen_port = 0,
                   int family = AF_INET) {
  const std::string path = "/run/netns/" + netns;
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(ready[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(1);
    if (listen_port != 0 && !listenOn(family, listen_port)) _exit(1);
    const char byte = 1;
    if (write(ready[1], &byte, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char byte = 0;
  ssize_t n;
  do {
    n = read(ready[0], &byte, 1);
  } while (n < 0 && errno == EINTR);
  close(ready[0]);
  if (n != 1) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

/// One "pod": a namespace, a veth into it, cgroups, processes. Everything is
/// removed in the destructor, also when an assertion ended the test early.
class LivePod {
 public:
  explicit LivePod(const std::string& tag)
      : netns_("i11c-" + tag + std::to_string(getpid())),
        host_veth_("i11c" + tag + std::to_string(getpid() % 100000) + "h"),
        cgroup_root_(cgroup2Mount() + "/i11c-" + tag + std::to_string(getpid())) {}

  ~LivePod() {
    for (const pid_t pid : children_) {
      // Out of the test cgroups first, so they can be removed without
      // waiting for the kernel to notice the process is gone.
      writeFile(cgroup2Mount() + "/cgroup.procs", std::to_string(pid));
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    for (auto it = cgroups_.rbegin(); it != cgroups_.rend(); ++it) rmdir(it->c_str());
    run("ip link del " + host_veth_);
    run("ip netns del " + netns_);
  }

  bool create() {
    if (!run("ip netns add " + netns_)) return false;
    return run("ip link add " + host_veth_ + " type veth peer name eth0 netns " + netns_);
  }

  /// mkdir -p below the test's own i11c parent, remembered for removal.
  bool makeCgroup(const std::string& relative, std::string* full) {
    std::string path = cgroup_root_;
    if (!mkdirRemembered(path)) return false;
    std::istringstream parts(relative);
    std::string part;
    while (std::getline(parts, part, '/')) {
      if (part.empty()) continue;
      path += "/" + part;
      if (!mkdirRemembered(path)) return false;
    }
    *full = path;
    return true;
  }

  /// A process in the namespace, moved into `cgroup` (a full path),
  /// listening on `listen_port` when given.
  pid_t addProcess(const std::string& comm, const std::string& cgroup, uint16_t listen_port = 0,
                   int family = AF_INET) {
    const pid_t pid = spawnInNetns(netns_, comm, listen_port, family);
    if (pid < 0) return pid;
    children_.push_back(pid);
    // Moved after it joined the namespace, as a runtime places a container
    // before the pod's processes run: the test never sees it half-placed.
    if (!writeFile(cgroup + "/cgroup.procs", std::to_string(pid))) return -1;
    return pid;
  }

  uint32_t hostIfindex() const { return if_nametoindex(host_veth_.c_str()); }
  uint64_t netnsInode() const {
    struct stat st {};
    return stat(("/run/netns/" + netns_).c_str(), &st) == 0 ? st.st_ino : 0;
  }

 private:
  bool mkdirRemembered(const std::string& path) {
    if (mkdir(path.c_str(), 0755) == 0) {
      cgroups_.push_back(path);
      return true;
    }
    return errno == EEXIST;
  }

  std::string netns_;
  std::string host_veth_;
  std::string cgroup_root_;
  std::vector<std::string> cgroups_;
  std::vector<pid_t> children_;
};

const std::string kUid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const std::string kUidUnderscored = "0a1b2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4d";
const std::string kPause = "1111111111111111111111111111111111111111111111111111111111111111";
const std::string kApp = "2222222222222222222222222222222222222222222222222222222222222222";
const std::string kSidecar = "3333333333333333333333333333333333333333333333333333333333333333";

TEST(LiveMetadata, VethPeerIsTheNamespace) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  LivePod pod("v");
  ASSERT_TRUE(pod.create());
  const uint32_t ifindex = pod.hostIfindex();
  ASSERT_NE(ifindex, 0u);

  std::string error;
  const std::optional<LinkPeer> peer = queryLinkPeer(ifindex, &error);
  ASSERT_TRUE(peer) << error;
  EXPECT_EQ(peer->kind, "veth");
  EXPECT_NE(peer->peer_ifindex, 0u);
  ASSERT_TRUE(peer->peer_netnsid);

  // Only the bind mount holds the namespace: no process to map the nsid by.
  NetnsScanner scanner;
  EXPECT_FALSE(netnsInodeOfNsid(*peer->peer_netnsid, scanner));

  std::string cgroup;
  ASSERT_TRUE(pod.makeCgroup("plain", &cgroup));
  ASSERT_GT(pod.addProcess("i11c-plain", cgroup), 0);
  const std::optional<uint64_t> inode = netnsInodeOfNsid(*peer->peer_netnsid, scanner);
  ASSERT_TRUE(inode);
  EXPECT_EQ(*inode, pod.netnsInode());
}

TEST(LiveMetadata, LoopbackAndMissingLinks) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  std::string error;
  const std::optional<LinkPeer> lo = queryLinkPeer(if_nametoindex("lo"), &error);
  ASSERT_TRUE(lo) << error;
  EXPECT_FALSE(lo->peer_netnsid);
  EXPECT_FALSE(queryLinkPeer(0x7ffffff0u, &error));
  EXPECT_FALSE(error.empty());

  NetnsScanner scanner;
  NetlinkPeerNetnsSource peers(scanner);
  EXPECT_EQ(peers.peerOf(if_nametoindex("lo")).status, IdentityStatus::kNoPeerNetns);
  EXPECT_EQ(peers.peerOf(0x7ffffff0u).status, IdentityStatus::kNoLink);
}

TEST(LiveMetadata, PodWithTwoContainersCgroupfsLayout) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  LivePod pod("c");
  ASSERT_TRUE(pod.create());
  std::string pause_cgroup, app_cgroup;
  ASSERT_TRUE(pod.makeCgroup("kubepods/burstable/pod" + kUid + "/" + kPause, &pause_cgroup));
  ASSERT_TRUE(pod.makeCgroup("kubepods/burstable/pod" + kUid + "/" + kApp, &app_cgroup));
  const pid_t pause_pid = pod.addProcess("pause", pause_cgroup);
  const pid_t app_pid = pod.addProcess("checkout", app_cgroup);
  ASSERT_GT(pause_pid, 0);
  ASSERT_GT(app_pid, 0);

  NetnsScanner scanner;
  const NetnsScan scan = scanner.scan(pod.netnsInode());
  ASSERT_EQ(scan.processes.size(), 2u);
  EXPECT_EQ(scan.pod_uids, std::vector<std::string>{kUid});
  EXPECT_EQ(scan.container_ids, (std::vector<std::string>{kPause, kApp}));
  EXPECT_EQ(scan.processes[0].cgroup.qos, QosClass::kBurstable);

  NetlinkPeerNetnsSource peers(scanner);
  InterfaceIdentityResolver resolver(peers, scanner);
  const InterfaceIdentity id = resolver.lookup(pod.hostIfindex());
  EXPECT_EQ(id.status, IdentityStatus::kResolved) << identityStatusName(id.status);
  EXPECT_EQ(id.netns_inode, pod.netnsInode());
  EXPECT_EQ(id.pod.pod_uid, kUid);
  EXPECT_EQ(id.pod.container_ids, (std::vector<std::string>{kPause, kApp}));
  EXPECT_EQ(id.pod.process_name, "checkout");
}

TEST(LiveMetadata, SystemdLayoutContainerd) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  LivePod pod("s");
  ASSERT_TRUE(pod.create());
  std::string cgroup;
  ASSERT_TRUE(pod.makeCgroup("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                                 kUidUnderscored + ".slice/cri-containerd-" + kApp + ".scope",
                             &cgroup));
  ASSERT_GT(pod.addProcess("payments", cgroup), 0);

  NetnsScanner scanner;
  NetlinkPeerNetnsSource peers(scanner);
  InterfaceIdentityResolver resolver(peers, scanner);
  const InterfaceIdentity id = resolver.lookup(pod.hostIfindex());
  EXPECT_EQ(id.status, IdentityStatus::kResolved) << identityStatusName(id.status);
  EXPECT_EQ(id.pod.pod_uid, kUid);
  EXPECT_EQ(id.pod.container_ids, std::vector<std::string>{kApp});
  EXPECT_EQ(id.pod.process_name, "payments");
}

}  // namespace
}  // namespace l7tap::metadata

namespace l7tap::metadata {
namespace {

TEST(LiveMetadata, ListenersNameTheirContainers) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  LivePod pod("l");
  ASSERT_TRUE(pod.create());
  std::string pause_cgroup, app_cgroup, sidecar_cgroup;
  const std::string pod_dir = "kubepods/burstable/pod" + kUid + "/";
  ASSERT_TRUE(pod.makeCgroup(pod_dir + kPause, &pause_cgroup));
  ASSERT_TRUE(pod.makeCgroup(pod_dir + kApp, &app_cgroup));
  ASSERT_TRUE(pod.makeCgroup(pod_dir + kSidecar, &sidecar_cgroup));
  ASSERT_GT(pod.addProcess("pause", pause_cgroup), 0);
  const pid_t app = pod.addProcess("checkout", app_cgroup, 8080, AF_INET);
  const pid_t sidecar = pod.addProcess("envoy", sidecar_cgroup, 15001, AF_INET6);
  ASSERT_GT(app, 0);
  ASSERT_GT(sidecar, 0);

  NetnsScanner scanner;
  NetlinkPeerNetnsSource peers(scanner);
  InterfaceIdentityResolver resolver(peers, scanner);
  const InterfaceIdentity id = resolver.lookup(pod.hostIfindex());
  ASSERT_EQ(id.status, IdentityStatus::kResolved) << identityStatusName(id.status);
  EXPECT_FALSE(id.truncated);
  ASSERT_EQ(id.pod.listeners.size(), 2u);
  EXPECT_EQ(id.pod.listeners[0].port, 8080);
  EXPECT_EQ(id.pod.listeners[0].pid, static_cast<uint32_t>(app));
  EXPECT_EQ(id.pod.listeners[0].process_name, "checkout");
  EXPECT_EQ(id.pod.listeners[0].container_id, kApp);
  EXPECT_EQ(id.pod.listeners[1].port, 15001);
  EXPECT_EQ(id.pod.listeners[1].pid, static_cast<uint32_t>(sidecar));
  EXPECT_EQ(id.pod.listeners[1].process_name, "envoy");
  EXPECT_EQ(id.pod.listeners[1].container_id, kSidecar);
}

TEST(LiveMetadata, NsidMapFollowsNamespaceChurn) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  NetnsScanner scanner;
  NetlinkPeerNetnsSource peers(scanner);
  uint64_t first_inode = 0;
  std::optional<int32_t> first_nsid;
  {
    LivePod first("a");
    ASSERT_TRUE(first.create());
    std::string cgroup;
    ASSERT_TRUE(first.makeCgroup("plain", &cgroup));
    ASSERT_GT(first.addProcess("i11c-first", cgroup), 0);
    first_inode = first.netnsInode();
    std::string error;
    const std::optional<LinkPeer> link = queryLinkPeer(first.hostIfindex(), &error);
    ASSERT_TRUE(link) << error;
    first_nsid = link->peer_netnsid;
    EXPECT_EQ(peers.peerOf(first.hostIfindex()).netns_inode, first_inode);
    EXPECT_EQ(peers.peerOf(first.hostIfindex()).netns_inode, first_inode);
    // Other namespaces may come and go on this machine meanwhile; the
    // second lookup is at least not a rebuild unless one did.
    EXPECT_GE(peers.nsidStats().hits, 1u);
  }
  // The kernel hands the lowest free nsid to the next namespace linked to
  // ours, very likely the one just freed: the map must not answer with the
  // dead namespace.
  LivePod second("b");
  ASSERT_TRUE(second.create());
  std::string cgroup;
  ASSERT_TRUE(second.makeCgroup("plain", &cgroup));
  ASSERT_GT(second.addProcess("i11c-second", cgroup), 0);
  const PeerNetnsSource::Peer peer = peers.peerOf(second.hostIfindex());
  EXPECT_EQ(peer.status, IdentityStatus::kResolved);
  EXPECT_EQ(peer.netns_inode, second.netnsInode());
  EXPECT_NE(peer.netns_inode, first_inode);
  std::string error;
  const std::optional<LinkPeer> link = queryLinkPeer(second.hostIfindex(), &error);
  ASSERT_TRUE(link) << error;
  // When the nsid was reused (as it is when no other namespace came
  // between), the cached entry must have been refused, not served.
  if (link->peer_netnsid == first_nsid) {
    EXPECT_GE(peers.nsidStats().stale, 1u);
  }
}

}  // namespace
}  // namespace l7tap::metadata
