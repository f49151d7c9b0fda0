// The node's view of who is behind each attached interface, kept current
// off the pipeline's thread: one thread scans each new interface's peer
// namespace (metadata/), another fetches the kubelet's pod list on a timer
// and on unknown pod UIDs (kubelet/), and both publish an immutable snapshot
// that the pipeline's thread reads per record without waiting on /proc,
// rtnetlink or the kubelet.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "identity/connection_names.h"
#include "identity/enriching_sink.h"
#include "kubelet/kubelet_client.h"
#include "kubelet/pod_cache.h"
#include "metadata/interface_identity.h"

namespace l7tap {

/// `l7tap attach`'s identity options, as given.
struct IdentityOptions {
  std::string host_proc = "/proc";
  std::string node_name;           ///< empty: $NODE_NAME, then the host name
  std::string kubelet_url;         ///< empty: the default; "none": names off
  std::string kubelet_token_file;  ///< empty: the service account's
  std::string kubelet_ca_file;     ///< empty: the service account's
  bool kubelet_insecure = false;
  uint64_t refresh_interval_ns = kDefaultKubeletLimits.refresh_interval_ns;
};

/// The options with their defaults filled in: the node's name, and the
/// kubelet client's configuration, or why there is none (`off_reason`).
struct IdentityConfig {
  std::string host_proc;
  std::string node_name;
  std::optional<KubeletClientConfig> kubelet;
  std::string off_reason;
};
IdentityConfig resolveIdentityOptions(const IdentityOptions& options);

class NodeIdentity final : public NameSource {
 public:
  /// Production: rtnetlink and the host /proc, and a KubeletClient when the
  /// config has one.
  explicit NodeIdentity(IdentityConfig config);
  /// Tests: given sources (`pods` may be null: names off).
  NodeIdentity(IdentityConfig config, std::unique_ptr<metadata::PeerNetnsSource> peers,
               std::unique_ptr<PodListSource> pods);
  ~NodeIdentity() override;
  NodeIdentity(const NodeIdentity&) = delete;
  NodeIdentity& operator=(const NodeIdentity&) = delete;

  /// Starts the threads: one for the interfaces' scans, one for the pod
  /// list (its first fetch happens at once).
  void start();
  void stop();

  /// An interface was attached (queued: resolved on the thread).
  void attached(uint32_t ifindex, const std::string& name);
  /// An attached interface is gone.
  void detached(uint32_t ifindex);

  /// The pipeline's thread only: it keeps the snapshot and each
  /// connection's names between records (see names_cache_).
  const ConnectionNames& namesOf(const ConnectionInfo& conn) override;

  /// Names are off, or the kubelet's pod list was asked for at least once
  /// (fetched or failed): until then a pod's records go out unnamed, so an
  /// agent is not ready before (/readyz). Any thread.
  bool namesSettled() const { return !pods_ || pods_->stats().refreshes > 0; }

  /// What the summary says: the pod names' state, and the interfaces'.
  std::vector<std::string> summary() const;

  /// Runs both threads' work once now (tests drive it without the threads).
  void step(uint64_t now_ns);

 private:
  struct Snapshot;
  struct Tracked;
  void runInterfaces();
  void runPods();
  void stepInterfaces(uint64_t now_ns);
  void stepPods(uint64_t now_ns);
  void publish();
  bool peerAllowed(const Snapshot& snap, const Pod& pod) const;
  std::string describe(const ObservedIdentity& obs) const;

  IdentityConfig config_;
  metadata::NetnsScanner scanner_;
  std::unique_ptr<metadata::PeerNetnsSource> peers_;
  metadata::InterfaceIdentityResolver resolver_;
  std::unique_ptr<PodListSource> pod_source_;
  std::unique_ptr<PodCache> pods_;  // null: names off

  // The interfaces and what is published of them: changed by the interface
  // thread, published by both threads, under publish_mu_.
  std::mutex publish_mu_;
  struct Tracked {
    std::string name;
    metadata::InterfaceIdentity found;
    std::string line;  // the last stderr line said about it
    uint64_t attached_ns = 0;
    /// The pod's app containers were not all there at the last scan (a node
    /// starts them after the sandbox and its veth).
    bool incomplete = false;
    uint64_t last_scan_ns = 0;
    bool rescan_asked = false;
  };
  std::map<uint32_t, Tracked> tracked_;
  std::string last_pod_names_state_;  // what the last `pod names:` line said

  // Shared with the pipeline's thread and the callers of attached/detached.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<uint32_t, std::string> to_attach_;
  std::set<uint32_t> to_detach_;
  std::set<uint32_t> to_rescan_;
  std::shared_ptr<const Snapshot> snapshot_;
  // Bumped with every snapshot_ (under mu_): the pipeline's thread takes
  // the mutex and the snapshot again only when it moved.
  std::atomic<uint64_t> generation_{0};

  // The pipeline's thread's: the snapshot as of reader_generation_, and the
  // names of the connections it last named under it, direct-mapped by
  // connection id. A connection's names change only with a new snapshot
  // (a pod list that changed is published as one), so every exchange of a
  // connection but the first skips the lookup and the join (a few percent
  // of the daemon's CPU per exchange). Overwritten, never freed.
  static constexpr size_t kNamesCacheEntries = 256;
  struct CachedNames {
    uint64_t conn_id = 0;
    uint64_t generation = 0;  // 0: empty (generations start at 1)
    uint32_t ifindex = 0;
    Side client_side = Side::kOrig;
    ConnectionNames names;
  };
  std::shared_ptr<const Snapshot> reader_snapshot_;
  uint64_t reader_generation_ = 0;
  std::unique_ptr<CachedNames[]> names_cache_;
  ConnectionNames uncached_;  // what namesOf returned when not from the cache

  std::thread interface_thread_;
  std::thread pod_thread_;
};

}  // namespace l7tap
