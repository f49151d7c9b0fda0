#include "identity/node_identity.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <utility>

namespace l7tap {

namespace {

// A namespace with no process yet (or one rtnetlink could not map) is asked
// again this often: a pod's sandbox may join it just after the veth appears.
constexpr uint64_t kUnresolvedRetryNs = 2'000'000'000;
// A pod whose app containers were not there yet at a scan is scanned
// again (every kUnresolvedRetryNs) for this long after its interface came:
// long enough for images to be pulled, not forever for a pod whose
// container has ended.
constexpr uint64_t kIncompleteWindowNs = 120'000'000'000;
// A server socket not found in its namespace asks for a rescan at most this
// often per interface: the server may have started after the scan.
constexpr uint64_t kListenerRescanNs = 1'000'000'000;
// How long the thread sleeps when nothing is asked of it; the pod list's
// own timers are checked this often.
constexpr auto kIdleWait = std::chrono::milliseconds(250);

uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

// Every started app container the kubelet lists for the pod has a process
// in its namespace.
bool allContainersSeen(const Pod& pod, const metadata::PodIdentity& found) {
  for (const PodContainer& c : pod.containers) {
    if (c.init || c.id.empty()) continue;
    if (std::find(found.container_ids.begin(), found.container_ids.end(), c.id) ==
        found.container_ids.end()) {
      return false;
    }
  }
  return true;
}

}  // namespace

IdentityConfig resolveIdentityOptions(const IdentityOptions& o) {
  IdentityConfig c;
  c.host_proc = o.host_proc.empty() ? "/proc" : o.host_proc;
  c.node_name = o.node_name;
  if (c.node_name.empty()) {
    if (const char* env = std::getenv("NODE_NAME"); env && *env) c.node_name = env;
  }
  if (c.node_name.empty()) c.node_name = hostName();

  if (o.kubelet_url == "none") {
    c.off_reason = "off (--kubelet none)";
    return c;
  }
  KubeletClientConfig k;
  k.token_file = o.kubelet_token_file.empty() ? kServiceAccountToken : o.kubelet_token_file;
  k.ca_file = o.kubelet_ca_file;
  if (k.ca_file.empty() && !o.kubelet_insecure && readable(kServiceAccountCa)) {
    k.ca_file = kServiceAccountCa;
  }
  k.insecure = o.kubelet_insecure;
  k.limits.refresh_interval_ns = o.refresh_interval_ns;
  if (o.kubelet_url.empty()) {
    // Outside a pod there is no service account: names are off, quietly
    // enough for a plain host, and the summary says how to turn them on.
    if (!readable(k.token_file)) {
      c.off_reason =
          "off (no service account token at " + k.token_file + "; --kubelet URL names pods)";
      return c;
    }
    k.url = "https://" + c.node_name + ":10250";
  } else {
    k.url = o.kubelet_url;
    // An explicit kubelet without a token file may be a read-only port.
    if (o.kubelet_token_file.empty() && !readable(k.token_file)) k.token_file.clear();
  }
  c.kubelet = std::move(k);
  return c;
}

struct NodeIdentity::Snapshot {
  std::map<uint32_t, std::shared_ptr<const ObservedIdentity>> by_ifindex;
  /// Pod UIDs behind attached interfaces now: pods known to be alive here.
  std::unordered_set<std::string> local_uids;
  /// An attached interface's pod is not in the pod list: the list is older
  /// than that pod, and an address in it may have moved to it.
  bool list_stale = false;
};

NodeIdentity::NodeIdentity(IdentityConfig config)
    : NodeIdentity(config, nullptr,
                   config.kubelet ? std::make_unique<KubeletClient>(*config.kubelet) : nullptr) {}

NodeIdentity::NodeIdentity(IdentityConfig config, std::unique_ptr<metadata::PeerNetnsSource> peers,
                           std::unique_ptr<PodListSource> pods)
    : config_(std::move(config)),
      scanner_(config_.host_proc),
      peers_(peers ? std::move(peers)
                   : std::make_unique<metadata::NetlinkPeerNetnsSource>(scanner_)),
      resolver_(*peers_, scanner_),
      pod_source_(std::move(pods)) {
  if (pod_source_) {
    pods_ = std::make_unique<PodCache>(
        *pod_source_, config_.kubelet ? config_.kubelet->limits : kDefaultKubeletLimits);
  }
  snapshot_ = std::make_shared<const Snapshot>();
  generation_.store(1, std::memory_order_relaxed);
  names_cache_ = std::make_unique<CachedNames[]>(kNamesCacheEntries);
}

NodeIdentity::~NodeIdentity() { stop(); }

void NodeIdentity::start() {
  if (interface_thread_.joinable()) return;
  // Signals are the event loop's (it takes SIGINT and SIGTERM through a
  // signalfd): the threads start with every signal blocked.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  interface_thread_ = std::thread([this] { runInterfaces(); });
  // The pod list has a thread of its own: a kubelet that is slow to answer
  // (up to the client's timeout) must not delay what the node itself shows
  // of a new interface.
  if (pods_) pod_thread_ = std::thread([this] { runPods(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void NodeIdentity::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (interface_thread_.joinable()) interface_thread_.join();
  if (pod_thread_.joinable()) pod_thread_.join();
}

void NodeIdentity::attached(uint32_t ifindex, const std::string& name) {
  {
    std::lock_guard lock(mu_);
    to_detach_.erase(ifindex);
    to_attach_[ifindex] = name;
  }
  wake_.notify_all();
}

void NodeIdentity::detached(uint32_t ifindex) {
  {
    std::lock_guard lock(mu_);
    to_attach_.erase(ifindex);
    to_detach_.insert(ifindex);
  }
  wake_.notify_all();
}

void NodeIdentity::runInterfaces() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, kIdleWait, [this] {
        return stopping_ || !to_attach_.empty() || !to_detach_.empty() || !to_rescan_.empty();
      });
      if (stopping_) return;
    }
    stepInterfaces(monotonicNs());
  }
}

void NodeIdentity::runPods() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, kIdleWait, [this] { return stopping_; });
      if (stopping_) return;
    }
    stepPods(monotonicNs());
  }
}

void NodeIdentity::step(uint64_t now_ns) {
  stepInterfaces(now_ns);
  stepPods(now_ns);
}

void NodeIdentity::stepPods(uint64_t now_ns) {
  if (!pods_ || !pods_->tick(now_ns)) return;
  std::lock_guard lock(publish_mu_);
  publish();
}

void NodeIdentity::stepInterfaces(uint64_t now_ns) {
  std::map<uint32_t, std::string> attach;
  std::set<uint32_t> detach, rescan;
  {
    std::lock_guard lock(mu_);
    attach.swap(to_attach_);
    detach.swap(to_detach_);
    rescan.swap(to_rescan_);
  }
  // Every namespace to (re)scan now, in one walk of /proc: at 1,000 pods a
  // walk per interface would make the first scan quadratic.
  std::vector<uint32_t> scan;
  {
    std::lock_guard lock(publish_mu_);
    for (uint32_t ifindex : detach) tracked_.erase(ifindex);
    for (auto& [ifindex, name] : attach) {
      Tracked& t = tracked_[ifindex];
      t = Tracked{};  // a reused ifindex is a new interface
      t.name = name;
      t.attached_ns = now_ns;
      scan.push_back(ifindex);
    }
    for (auto& [ifindex, t] : tracked_) {
      if (attach.count(ifindex)) continue;
      const bool unresolved = t.found.status == metadata::IdentityStatus::kNoProcesses ||
                              t.found.status == metadata::IdentityStatus::kNsidUnmapped;
      const bool asked = rescan.count(ifindex) != 0 && now_ns - t.last_scan_ns >= kListenerRescanNs;
      const bool starting = t.incomplete && now_ns - t.attached_ns < kIncompleteWindowNs;
      if (asked || ((unresolved || starting) && now_ns - t.last_scan_ns >= kUnresolvedRetryNs)) {
        scan.push_back(ifindex);
      }
    }
  }
  if (scan.empty() && detach.empty()) return;
  // The scan reads /proc without the lock; only this thread changes
  // `tracked_`, so the entries are there when it is taken again.
  std::vector<metadata::InterfaceIdentity> found;
  if (!scan.empty()) found = resolver_.refreshAll(scan);
  std::lock_guard lock(publish_mu_);
  for (size_t i = 0; i < scan.size() && i < found.size(); ++i) {
    const auto it = tracked_.find(scan[i]);
    if (it == tracked_.end()) continue;
    it->second.found = std::move(found[i]);
    it->second.last_scan_ns = now_ns;
  }
  publish();
}

void NodeIdentity::publish() {
  auto snap = std::make_shared<Snapshot>();
  for (auto& [ifindex, t] : tracked_) {
    auto obs = std::make_shared<ObservedIdentity>();
    obs->ifindex = ifindex;
    obs->interface_name = t.name;
    obs->found = t.found;
    obs->node_name = config_.node_name;
    const std::string& uid = t.found.pod.pod_uid;
    if (!uid.empty()) {
      snap->local_uids.insert(uid);
      if (pods_) {
        obs->pod = pods_->byUid(uid);  // a miss asks the next tick for a refresh
        if (!obs->pod) snap->list_stale = true;
      }
    }
    t.incomplete = !uid.empty() && (t.found.pod.process_name == metadata::kSandboxProcess ||
                                    (obs->pod && !allContainersSeen(*obs->pod, t.found.pod)));
    const std::string line = describe(*obs);
    if (line != t.line) {
      std::fprintf(stderr, "l7tap: %s: %s\n", t.name.c_str(), line.c_str());
      t.line = line;
    }
    snap->by_ifindex.emplace(ifindex, std::move(obs));
  }
  if (pods_) {
    // Said when the list's state changes, not at every refresh.
    const PodCacheStats stats = pods_->stats();
    const std::string state =
        std::to_string(stats.pods) + (stats.last_success_ns ? "+" : "-") + stats.last_error;
    const bool answered = stats.last_success_ns != 0 || !stats.last_error.empty();
    if (answered && state != last_pod_names_state_) {
      std::fprintf(stderr, "l7tap: %s\n", describePodNames(stats).c_str());
      last_pod_names_state_ = state;
    }
  }
  std::shared_ptr<const Snapshot> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(snapshot_, std::move(snap));
    generation_.fetch_add(1, std::memory_order_release);
  }
}

std::string NodeIdentity::describe(const ObservedIdentity& obs) const {
  const metadata::PodIdentity& p = obs.found.pod;
  std::string line;
  if (obs.pod) {
    return "pod " + obs.pod->namespace_name + "/" + obs.pod->name + " (uid " + obs.pod->uid + ")";
  }
  if (!p.pod_uid.empty()) {
    line = "pod uid " + p.pod_uid + " (not in the kubelet's list: ";
    if (!pods_) return line + "names " + config_.off_reason + ")";
    const PodCacheStats s = pods_->stats();
    if (s.last_success_ns == 0) {
      line += s.last_error.empty() ? "no pod list yet" : s.last_error;
    } else {
      line += "not listed yet";
    }
    return line + ")";
  }
  if (obs.found.status != metadata::IdentityStatus::kResolved) {
    return std::string("no identity (") + metadata::identityStatusName(obs.found.status) + ")";
  }
  if (p.container_ids.size() == 1) {
    line = "container " + p.container_ids.front();
  } else {
    line = "netns " + std::to_string(obs.found.netns_inode);
  }
  if (!p.process_name.empty()) line += " (process " + p.process_name + ")";
  return line;
}

bool NodeIdentity::peerAllowed(const Snapshot& snap, const Pod& pod) const {
  if (snap.local_uids.count(pod.uid)) return true;  // alive behind a veth here now
  // A pod of this node the list has but no attached interface shows: fine
  // unless the list is known to be older than a pod that is here, which
  // may have taken this address over.
  if (pod.node_name != config_.node_name) return true;
  return !snap.list_stale;
}

const ConnectionNames& NodeIdentity::namesOf(const ConnectionInfo& conn) {
  if (generation_.load(std::memory_order_acquire) != reader_generation_) {
    std::lock_guard lock(mu_);
    reader_snapshot_ = snapshot_;
    reader_generation_ = generation_.load(std::memory_order_relaxed);
  }
  CachedNames& cached = names_cache_[conn.id % kNamesCacheEntries];
  if (cached.generation == reader_generation_ && cached.conn_id == conn.id &&
      cached.ifindex == conn.ifindex && cached.client_side == conn.client_side) {
    return cached.names;
  }
  const Snapshot& s = *reader_snapshot_;
  const auto it = s.by_ifindex.find(conn.ifindex);
  if (it == s.by_ifindex.end()) {
    cached = {conn.id, reader_generation_, conn.ifindex, conn.client_side, {}};
    return cached.names;
  }
  ConnectionNames names = nameConnection(conn, it->second, [this, &s](const PodAddress& addr) {
    std::shared_ptr<const Pod> pod = pods_ ? pods_->byAddress(addr) : nullptr;
    return pod && peerAllowed(s, *pod) ? pod : nullptr;
  });
  if (names.listener_missed) {
    bool first = false;
    {
      std::lock_guard lock(mu_);
      first = to_rescan_.insert(conn.ifindex).second;
    }
    if (first) wake_.notify_all();
    // Asked again by the connection's next record, as long as the
    // listener stays missing: not cached.
    uncached_ = std::move(names);
    return uncached_;
  }
  cached = {conn.id, reader_generation_, conn.ifindex, conn.client_side, std::move(names)};
  return cached.names;
}

std::vector<std::string> NodeIdentity::summary() const {
  std::vector<std::string> lines;
  if (pods_) {
    lines.push_back(describePodNames(pods_->stats()));
  } else {
    lines.push_back("pod names: " + config_.off_reason);
  }
  std::shared_ptr<const Snapshot> snap;
  {
    std::lock_guard lock(mu_);
    snap = snapshot_;
  }
  size_t named = 0, uid_only = 0, other = 0;
  std::map<std::string, size_t> unresolved;
  for (const auto& [ifindex, obs] : snap->by_ifindex) {
    if (obs->pod) {
      ++named;
    } else if (!obs->found.pod.pod_uid.empty()) {
      ++uid_only;
    } else if (obs->found.status == metadata::IdentityStatus::kResolved) {
      ++other;
    } else {
      ++unresolved[metadata::identityStatusName(obs->found.status)];
    }
  }
  std::string line = "identity: " + std::to_string(snap->by_ifindex.size()) +
                     " interfaces: " + std::to_string(named) + " named pods";
  if (uid_only) line += ", " + std::to_string(uid_only) + " pods without a name";
  if (other) line += ", " + std::to_string(other) + " containers or namespaces outside Kubernetes";
  for (const auto& [status, n] : unresolved) line += ", " + std::to_string(n) + " " + status;
  lines.push_back(line);
  return lines;
}

}  // namespace l7tap
