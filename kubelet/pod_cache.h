// The pods of the node, looked up by UID, container id or address, from the
// last pod list the kubelet gave.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

#include "kubelet/kubelet_client.h"
#include "kubelet/limits.h"
#include "kubelet/pod_list.h"

namespace l7tap {

/// What the summary says about the pod names: how refreshes went and why
/// the last one failed.
struct PodCacheStats {
  uint64_t refreshes = 0;          ///< attempts
  uint64_t refresh_failures = 0;   ///< attempts that kept the previous list
  uint64_t unknown_refreshes = 0;  ///< attempts asked for by an unknown UID or container id
  uint64_t unknown_lookups = 0;    ///< UID or container id lookups that found no pod
  uint64_t ambiguous_addresses =
      0;              ///< addresses of the current list that name no pod: two live pods hold them
  uint32_t pods = 0;  ///< in the current list
  uint32_t skipped_items = 0;     ///< of the current list (PodList)
  uint32_t dropped_over_cap = 0;  ///< of the current list
  uint64_t last_success_ns = 0;   ///< 0: never
  std::string last_error;         ///< of the last failed attempt; cleared by a success
};

/// One line for the daemon's summary: how many pods are named, and when
/// names are missing or stale, why (`pod names: 7 pods, 3 of 5 refreshes
/// failed, last: https://...: HTTP 401`).
std::string describePodNames(const PodCacheStats& stats);

/// A pod and one of its containers.
struct ContainerMatch {
  std::shared_ptr<const Pod> pod;           ///< null: no match
  const PodContainer* container = nullptr;  ///< into *pod, valid while `pod` is held
};

/// Lookups are cheap and never block on the kubelet; refreshes happen only
/// in tick() and refresh(), which the caller drives from a timer (possibly
/// on a thread of its own: lookups and refreshes may run concurrently).
/// A failed refresh keeps the last good list.
class PodCache {
 public:
  PodCache(PodListSource& source, const KubeletLimits& limits);
  ~PodCache();

  /// Refreshes when refresh_interval_ns has passed since the last attempt,
  /// or when a lookup missed since then and min_unknown_refresh_interval_ns
  /// has passed. Returns whether it refreshed (successfully or not).
  bool tick(uint64_t now_ns);
  /// Fetches and parses now; true when the new list replaced the old one.
  /// Counts as a timer refresh: ids that stayed unknown may ask again.
  bool refresh(uint64_t now_ns) { return refresh(now_ns, true); }

  /// A miss asks the next tick() for a refresh, unless the same id already
  /// did since the last timer refresh.
  std::shared_ptr<const Pod> byUid(std::string_view uid);
  /// `id` as the cgroup path names it (no runtime scheme). A miss asks for a refresh.
  ContainerMatch byContainerId(std::string_view id);
  /// Another pod's address: host-network pods (whose address is the node's)
  /// and addresses two live pods claim name nothing. A miss asks for nothing,
  /// since most addresses are not pods.
  std::shared_ptr<const Pod> byAddress(const PodAddress& addr) const;

  PodCacheStats stats() const;

 private:
  struct Index;
  bool refresh(uint64_t now_ns, bool periodic);
  void missed(std::string key);  // under mu_
  PodListSource& source_;
  KubeletLimits limits_;
  mutable std::mutex mu_;               // guards everything below
  std::shared_ptr<const Index> index_;  // swapped whole by refresh()
  PodCacheStats stats_;
  uint64_t last_attempt_ns_ = 0;
  bool attempted_ = false;
  bool unknown_seen_ = false;
  // Keys ("u:" UID, "c:" container id) missed since the last refresh, and
  // those a refresh after their miss did not find either.
  std::unordered_set<std::string> misses_;
  std::unordered_set<std::string> still_unknown_;
  std::mutex refresh_mu_;  // one refresh at a time, without holding mu_ while fetching
};

}  // namespace l7tap
