// What the metadata path costs at N pods: a host /proc generated in a temp
// dir (N pod namespaces, each with a pause and one or two app processes in
// kubelet-style cgroups, listening sockets and open fds, plus host
// processes), a kubelet pod list for the same pods, and then:
//   - every interface's identity through InterfaceIdentityResolver with a
//     table PeerNetnsSource: cold (empty cache), cached, and refresh();
//   - PodCache lookups by UID, container id and address, per call;
//   - the heap and RSS the resolver's cache and the pod cache keep.
// With --live N (root), N real namespaces (i11c-bench-*) joined by veths, a
// process in each, and the rtnetlink peer lookup with its nsid map.
//
//   build/bench/l7tap_metadata_cost [PODS] [--hosts N] [--dir DIR] [--live N] [--no-listeners]
#include <fcntl.h>
#include <malloc.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "bench/kubelet/pod_json.h"
#include "kubelet/pod_cache.h"
#include "kubelet/pod_list.h"
#include "metadata/interface_identity.h"
#include "metadata/veth_peer.h"

namespace {

using namespace l7tap;
using namespace l7tap::metadata;
namespace fs = std::filesystem;

constexpr uint64_t kHostNetns = 4026531840;
constexpr uint64_t kPodNetnsBase = 4026600000;

long maxRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

size_t heapBytes() { return mallinfo2().uordblks; }

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string tcpRow(int slot, uint16_t port, int state, uint64_t inode, bool v6) {
  char row[256];
  const char* any = v6 ? "00000000000000000000000000000000" : "0400010A";
  std::snprintf(row, sizeof row,
                "%4d: %s:%04X %s:%04X %02X 00000000:00000000 00:00000000 00000000     0        "
                "0 %llu 1 0000000000000000 100 0 0 10 0\n",
                slot, any, port, any, state == 0x0A ? 0 : 40000 + slot, state,
                static_cast<unsigned long long>(inode));
  return row;
}

const char* kTcpHeader =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode\n";
const char* kTcp6Header =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

/// The host /proc of a node with `pods` pods and `hosts` host processes.
class FakeNode {
 public:
  FakeNode(const std::string& parent, int pods, int hosts) {
    std::string pattern = (fs::path(parent) / "i11c-node-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    root_ = pattern;
    for (int h = 1; h <= hosts; ++h) {
      addProcess(h, kHostNetns, h == 1 ? "systemd" : "host-daemon",
                 h == 1 ? "0::/init.scope\n"
                        : "0::/system.slice/daemon-" + std::to_string(h) + ".service\n");
      addFds(h, {});
    }
    int pid = 10000;
    for (int i = 0; i < pods; ++i) {
      const uint64_t netns = kPodNetnsBase + i;
      const std::string slice = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                                underscored(bench::podUid(i)) + ".slice/";
      const uint64_t sockets = 1000000 + 100 * static_cast<uint64_t>(i);
      // Listeners first, then connections, as the kernel lists them.
      std::string tcp = std::string(kTcpHeader) + tcpRow(0, 8080, 0x0A, sockets + 1, false);
      const bool sidecar = i % 2 == 0;
      if (sidecar) tcp += tcpRow(1, 15001, 0x0A, sockets + 2, false);
      for (int c = 0; c < 20; ++c) tcp += tcpRow(2 + c, 8080, 0x01, sockets + 10 + c, false);
      const std::string tcp6 = std::string(kTcp6Header) + tcpRow(0, 9090, 0x0A, sockets + 3, true);

      const int pause = pid++;
      addProcess(pause, netns, "pause",
                 "0::/" + slice + "cri-containerd-" + bench::podContainerId(i, 9) + ".scope\n");
      addTables(pause, tcp, tcp6);
      addFds(pause, {});
      const int app = pid++;
      addProcess(app, netns, "app",
                 "0::/" + slice + "cri-containerd-" + bench::podContainerId(i, 1) + ".scope\n");
      addTables(app, tcp, tcp6);
      std::vector<uint64_t> app_sockets = {sockets + 1, sockets + 3};
      for (int c = 0; c < 20; ++c) app_sockets.push_back(sockets + 10 + c);
      addFds(app, app_sockets);
      if (sidecar) {
        const int envoy = pid++;
        addProcess(envoy, netns, "envoy",
                   "0::/" + slice + "cri-containerd-" + bench::podContainerId(i, 2) + ".scope\n");
        addTables(envoy, tcp, tcp6);
        addFds(envoy, {sockets + 2});
      }
    }
  }
  ~FakeNode() {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  const std::string& root() const { return root_; }
  int pidDirs() const { return pid_dirs_; }
  int fds() const { return fds_; }

 private:
  static std::string underscored(std::string uid) {
    std::replace(uid.begin(), uid.end(), '-', '_');
    return uid;
  }

  void addProcess(int pid, uint64_t netns, const std::string& comm, const std::string& cgroup) {
    const fs::path dir = fs::path(root_) / std::to_string(pid);
    fs::create_directories(dir / "ns");
    fs::create_symlink("net:[" + std::to_string(netns) + "]", dir / "ns" / "net");
    std::ofstream(dir / "comm") << comm << "\n";
    std::ofstream(dir / "cgroup") << cgroup;
    ++pid_dirs_;
  }

  void addTables(int pid, const std::string& tcp, const std::string& tcp6) {
    const fs::path dir = fs::path(root_) / std::to_string(pid) / "net";
    fs::create_directories(dir);
    std::ofstream(dir / "tcp") << tcp;
    std::ofstream(dir / "tcp6") << tcp6;
  }

  /// stdin/out/err, a pipe, an eventfd, and the given sockets.
  void addFds(int pid, const std::vector<uint64_t>& sockets) {
    const fs::path dir = fs::path(root_) / std::to_string(pid) / "fd";
    fs::create_directories(dir);
    int fd = 0;
    for (const char* link :
         {"/dev/null", "/dev/null", "/dev/null", "pipe:[77]", "anon_inode:[eventfd]"}) {
      fs::create_symlink(link, dir / std::to_string(fd++));
    }
    for (const uint64_t inode : sockets) {
      fs::create_symlink("socket:[" + std::to_string(inode) + "]", dir / std::to_string(fd++));
    }
    fds_ += fd;
  }

  std::string root_;
  int pid_dirs_ = 0;
  int fds_ = 0;
};

class TablePeers final : public PeerNetnsSource {
 public:
  Peer peerOf(uint32_t ifindex) override {
    // ifindex i + 1 is pod i's veth.
    return {IdentityStatus::kResolved, kPodNetnsBase + ifindex - 1, 2};
  }
};

class Canned : public PodListSource {
 public:
  bool fetch(std::string& body, std::string&) override {
    body = text;
    return true;
  }
  std::string text;
};

template <typename F>
double nsPerCall(int calls, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < calls; ++k) f(k);
  return msSince(t0) * 1e6 / calls;
}

MetadataLimits g_limits;

int fakeNode(int pods, int hosts, const std::string& dir) {
  auto t0 = std::chrono::steady_clock::now();
  FakeNode node(dir, pods, hosts);
  std::printf("generated /proc        %d pid dirs, %d fds, in %s (%.0f ms)\n", node.pidDirs(),
              node.fds(), node.root().c_str(), msSince(t0));

  const long rss_start = maxRssKb();
  const size_t heap_start = heapBytes();
  NetnsScanner scanner(node.root(), g_limits);
  TablePeers peers;
  InterfaceIdentityResolver resolver(peers, scanner);

  t0 = std::chrono::steady_clock::now();
  int resolved = 0, listeners = 0, named_ports = 0;
  for (int i = 0; i < pods; ++i) {
    const InterfaceIdentity id = resolver.lookup(static_cast<uint32_t>(i + 1));
    if (id.status == IdentityStatus::kResolved && id.pod.pod_uid == bench::podUid(i)) ++resolved;
    listeners += static_cast<int>(id.pod.listeners.size());
    for (const auto& l : id.pod.listeners) named_ports += l.container_id.empty() ? 0 : 1;
  }
  const double cold_ms = msSince(t0);
  const size_t heap_resolver = heapBytes() - heap_start;

  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < pods; ++i) resolver.lookup(static_cast<uint32_t>(i + 1));
  const double cached_ms = msSince(t0);
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < pods; ++i) resolver.refresh(static_cast<uint32_t>(i + 1));
  const double refresh_ms = msSince(t0);

  std::printf("resolved               %d of %d pods, %d listeners (%d with a container id)\n",
              resolved, pods, listeners, named_ports);
  std::printf("resolve all, cold      %.0f ms (%.2f ms per interface)\n", cold_ms, cold_ms / pods);
  std::printf("resolve all, cached    %.2f ms (%.2f us per interface)\n", cached_ms,
              cached_ms * 1e3 / pods);
  std::printf("refresh all            %.0f ms (%.2f ms per interface)\n", refresh_ms,
              refresh_ms / pods);
  std::printf("resolver cache heap    %.2f MB (%zu namespaces)\n", heap_resolver / 1e6,
              resolver.cachedNamespaces());

  // The same through lookupAll/refreshAll: one walk of /proc for all.
  std::vector<uint32_t> ifindexes;
  for (int i = 0; i < pods; ++i) ifindexes.push_back(static_cast<uint32_t>(i + 1));
  InterfaceIdentityResolver batch(peers, scanner);
  t0 = std::chrono::steady_clock::now();
  int batch_resolved = 0;
  for (const InterfaceIdentity& id : batch.lookupAll(ifindexes))
    batch_resolved += id.status == IdentityStatus::kResolved && !id.pod.pod_uid.empty();
  const double batch_cold_ms = msSince(t0);
  t0 = std::chrono::steady_clock::now();
  batch.refreshAll(ifindexes);
  const double batch_refresh_ms = msSince(t0);
  std::printf("lookupAll, cold        %.0f ms (%d resolved)\n", batch_cold_ms, batch_resolved);
  std::printf("refreshAll             %.0f ms\n", batch_refresh_ms);

  // The kubelet side for the same pods.
  Canned source;
  source.text = R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[)";
  for (int i = 0; i < pods; ++i) source.text += (i ? "," : "") + bench::podJson(i);
  source.text += "]}";
  KubeletLimits kubelet_limits;
  const size_t heap_cache_start = heapBytes();
  PodCache cache(source, kubelet_limits);
  cache.refresh(1);
  const size_t heap_cache = heapBytes() - heap_cache_start;
  source.text.clear();
  source.text.shrink_to_fit();

  std::vector<std::string> uids, containers;
  std::vector<PodAddress> addresses(pods);
  for (int i = 0; i < pods; ++i) {
    uids.push_back(bench::podUid(i));
    containers.push_back(bench::podContainerId(i, 1 + i % 2));
    parsePodAddress(bench::podIp(i), addresses[i]);
  }
  const int calls = 200000;
  int found = 0;
  const double by_uid =
      nsPerCall(calls, [&](int k) { found += cache.byUid(uids[k % pods]) != nullptr; });
  const double by_container = nsPerCall(
      calls, [&](int k) { found += cache.byContainerId(containers[k % pods]).pod != nullptr; });
  const double by_address =
      nsPerCall(calls, [&](int k) { found += cache.byAddress(addresses[k % pods]) != nullptr; });
  std::printf("pod cache              %u pods, %.2f MB heap\n", cache.stats().pods,
              heap_cache / 1e6);
  std::printf(
      "lookup per call        byUid %.0f ns, byContainerId %.0f ns, byAddress %.0f ns "
      "(%d of %d found)\n",
      by_uid, by_container, by_address, found, 3 * calls);
  std::printf("heap kept, both caches %.2f MB\n", (heap_resolver + heap_cache) / 1e6);
  std::printf("peak RSS growth        %.1f MB (pod list text and parse included)\n",
              (maxRssKb() - rss_start) / 1e3);
  return resolved == pods ? 0 : 1;
}

// --- live: real namespaces ---------------------------------------------------

bool run(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

/// A child that joins the namespace and waits; returns once it has.
pid_t holdNetns(const std::string& netns) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(ready[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    prctl(PR_SET_NAME, "i11c-bench", 0, 0, 0);
    const int fd = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(1);
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

struct LiveNamespaces {
  std::vector<std::string> names;
  std::vector<pid_t> children;
  ~LiveNamespaces() {
    for (const pid_t pid : children) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    // Deleting the namespace removes the veth with it.
    for (const std::string& name : names) run("ip netns del " + name);
  }
};

int live(int count) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "--live needs root\n");
    return 1;
  }
  LiveNamespaces spaces;
  std::vector<uint32_t> ifindexes;
  const std::string tag = std::to_string(getpid() % 100000);
  auto t0 = std::chrono::steady_clock::now();
  // One batch for ip: hundreds of `ip` processes would take longer than the
  // measurement.
  std::string batch;
  for (int i = 0; i < count; ++i) {
    const std::string name = "i11c-bench-" + tag + "-" + std::to_string(i);
    spaces.names.push_back(name);
    batch += "netns add " + name + "\n";
    batch += "link add i11c" + tag + "x" + std::to_string(i) + " type veth peer name eth0 netns " +
             name + "\n";
  }
  const std::string batch_file = "/tmp/i11c-bench-" + tag + ".ip";
  std::ofstream(batch_file) << batch;
  const bool made = run("ip -batch " + batch_file);
  std::remove(batch_file.c_str());
  if (!made) {
    std::fprintf(stderr, "ip -batch failed\n");
    return 1;
  }
  for (int i = 0; i < count; ++i) {
    const pid_t pid = holdNetns(spaces.names[i]);
    if (pid < 0) {
      std::fprintf(stderr, "could not join %s\n", spaces.names[i].c_str());
      return 1;
    }
    spaces.children.push_back(pid);
    const std::string veth = "i11c" + tag + "x" + std::to_string(i);
    ifindexes.push_back(if_nametoindex(veth.c_str()));
  }
  std::printf("live                   %d namespaces with a veth and a process (%.0f ms to make)\n",
              count, msSince(t0));

  NetnsScanner scanner("/proc", g_limits);
  bool truncated = false;
  std::printf("namespaces in /proc    %zu\n", scanner.namespaces(&truncated).size());

  // Before: every lookup asks every namespace its nsid.
  t0 = std::chrono::steady_clock::now();
  const int old_lookups = count;
  for (int i = 0; i < old_lookups; ++i) {
    std::string error;
    const auto link = queryLinkPeer(ifindexes[i], &error);
    if (!link || !link->peer_netnsid || !netnsInodeOfNsid(*link->peer_netnsid, scanner)) {
      std::fprintf(stderr, "probe lookup %d failed\n", i);
      return 1;
    }
  }
  const double old_ms = msSince(t0) / old_lookups;

  NetlinkPeerNetnsSource peers(scanner);
  t0 = std::chrono::steady_clock::now();
  if (peers.peerOf(ifindexes[0]).status != IdentityStatus::kResolved) return 1;
  const double first_ms = msSince(t0);
  t0 = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < count; ++i)
    ok += peers.peerOf(ifindexes[i]).status == IdentityStatus::kResolved;
  const double warm_us = msSince(t0) * 1e3 / count;
  const NetnsIdMap::Stats& stats = peers.nsidStats();
  std::printf("per lookup, probe all  %.2f ms (netnsInodeOfNsid, mean of %d)\n", old_ms,
              old_lookups);
  std::printf("first lookup, map      %.2f ms (builds the nsid map)\n", first_ms);
  std::printf(
      "per lookup, map        %.1f us (%d of %d resolved; %llu rebuilds, %llu hits, %u "
      "entries)\n",
      warm_us, ok, count, static_cast<unsigned long long>(stats.rebuilds),
      static_cast<unsigned long long>(stats.hits), stats.entries);

  InterfaceIdentityResolver resolver(peers, scanner);
  t0 = std::chrono::steady_clock::now();
  int named = 0;
  for (int i = 0; i < count; ++i)
    named += resolver.lookup(ifindexes[i]).pod.process_name == "i11c-bench";
  const double one_by_one_ms = msSince(t0);
  t0 = std::chrono::steady_clock::now();
  for (const InterfaceIdentity& id : resolver.refreshAll(ifindexes))
    named += id.pod.process_name == "i11c-bench";
  const double all_ms = msSince(t0);
  std::printf("identity, one by one   %.0f ms cold (%.2f ms per interface)\n", one_by_one_ms,
              one_by_one_ms / count);
  std::printf("identity, refreshAll   %.0f ms (%d of %d named right in both)\n", all_ms, named,
              2 * count);

  // A pod that appears now: its nsid is not in the map (one rebuild), its
  // namespace not in the cache (one walk, and the listener tables).
  const std::string name = "i11c-bench-" + tag + "-new";
  const std::string veth = "i11c" + tag + "new";
  spaces.names.push_back(name);
  if (!run("ip netns add " + name) ||
      !run("ip link add " + veth + " type veth peer name eth0 netns " + name))
    return 1;
  const pid_t pid = holdNetns(name);
  if (pid < 0) return 1;
  spaces.children.push_back(pid);
  const uint32_t new_ifindex = if_nametoindex(veth.c_str());
  const uint64_t rebuilds = stats.rebuilds;
  t0 = std::chrono::steady_clock::now();
  const InterfaceIdentity fresh = resolver.lookup(new_ifindex);
  const double new_pod_ms = msSince(t0);
  std::printf("new pod, first lookup  %.1f ms (%s, %llu nsid map rebuild)\n", new_pod_ms,
              fresh.pod.process_name == "i11c-bench" ? "named" : "NOT named",
              static_cast<unsigned long long>(stats.rebuilds - rebuilds));
  return ok == count && named == 2 * count && fresh.pod.process_name == "i11c-bench" ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int pods = 1000, hosts = 200, live_count = 0;
  std::string dir = fs::temp_directory_path().string();
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--hosts") == 0 && i + 1 < argc) {
      hosts = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      dir = argv[++i];
    } else if (std::strcmp(argv[i], "--no-listeners") == 0) {
      g_limits.max_listen_sockets_per_netns = 0;
    } else if (std::strcmp(argv[i], "--live") == 0 && i + 1 < argc) {
      live_count = std::atoi(argv[++i]);
    } else {
      pods = std::atoi(argv[i]);
    }
  }
  if (live_count > 0) return live(live_count);
  return fakeNode(pods, hosts, dir);
}
