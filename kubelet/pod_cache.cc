#include "kubelet/pod_cache.h"

#include <string>
#include <unordered_map>
#include <utility>

namespace l7tap {

namespace {

struct AddressHash {
  size_t operator()(const PodAddress& a) const noexcept {
    // FNV-1a: addresses of one node share prefixes, so every byte counts.
    uint64_t h = 1469598103934665603ull;
    for (uint8_t b : a) h = (h ^ b) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct PodCache::Index {
  std::unordered_map<std::string, std::shared_ptr<const Pod>, StringHash, std::equal_to<>> by_uid;
  std::unordered_map<std::string, std::pair<std::shared_ptr<const Pod>, size_t>, StringHash,
                     std::equal_to<>>
      by_container;
  std::unordered_map<PodAddress, std::shared_ptr<const Pod>, AddressHash> by_address;
  uint64_t ambiguous_addresses = 0;
};

std::string describePodNames(const PodCacheStats& s) {
  std::string line = "pod names: ";
  if (s.last_success_ns == 0) {
    line += "none (no pod list yet)";
  } else {
    line += std::to_string(s.pods) + " pods";
  }
  auto add = [&line](uint64_t n, const char* what) {
    if (n != 0) line += ", " + std::to_string(n) + " " + what;
  };
  add(s.skipped_items, "list items skipped");
  add(s.dropped_over_cap, "pods over the cap");
  add(s.ambiguous_addresses, "addresses claimed by two pods");
  if (s.refresh_failures != 0) {
    line += ", " + std::to_string(s.refresh_failures) + " of " + std::to_string(s.refreshes) +
            " refreshes failed";
  }
  if (!s.last_error.empty()) line += ", last: " + s.last_error;
  return line;
}

PodCache::PodCache(PodListSource& source, const KubeletLimits& limits)
    : source_(source), limits_(limits), index_(std::make_shared<Index>()) {}

PodCache::~PodCache() = default;

bool PodCache::tick(uint64_t now_ns) {
  bool for_unknown = false;
  {
    std::lock_guard lock(mu_);
    const uint64_t since = now_ns - last_attempt_ns_;
    const bool periodic = !attempted_ || since >= limits_.refresh_interval_ns;
    for_unknown = !periodic && unknown_seen_ && since >= limits_.min_unknown_refresh_interval_ns;
    if (!periodic && !for_unknown) return false;
    if (for_unknown) ++stats_.unknown_refreshes;
  }
  refresh(now_ns, !for_unknown);
  return true;
}

void PodCache::missed(std::string key) {
  ++stats_.unknown_lookups;
  if (still_unknown_.count(key) != 0) return;
  unknown_seen_ = true;
  if (misses_.size() < limits_.max_unknown_ids) misses_.insert(std::move(key));
}

bool PodCache::refresh(uint64_t now_ns, bool periodic) {
  std::lock_guard one_at_a_time(refresh_mu_);
  {
    std::lock_guard lock(mu_);
    attempted_ = true;
    last_attempt_ns_ = now_ns;
    unknown_seen_ = false;
    ++stats_.refreshes;
  }
  std::string body, error;
  PodList list;
  if (!source_.fetch(body, error) || !parsePodList(body, limits_, list, error)) {
    std::lock_guard lock(mu_);
    ++stats_.refresh_failures;
    stats_.last_error = std::move(error);
    return false;
  }
  body = std::string();  // the list can be tens of MB; not kept while the index is built

  auto index = std::make_shared<Index>();
  // Per address: the best claim so far, and whether another pod claims it as well.
  struct Claim {
    std::shared_ptr<const Pod> pod;
    bool live;
    bool contested;
  };
  std::unordered_map<PodAddress, Claim, AddressHash> claims;
  for (Pod& p : list.pods) {
    auto pod = std::make_shared<const Pod>(std::move(p));
    // A UID is unique in a cluster; a list that repeats one is kept at its first.
    index->by_uid.emplace(pod->uid, pod);
    for (size_t i = 0; i < pod->containers.size(); ++i) {
      if (!pod->containers[i].id.empty())
        index->by_container.emplace(pod->containers[i].id, std::pair{pod, i});
    }
    // A host-network pod's address is the node's, shared with the node's own
    // processes and every other such pod: it names none of them.
    if (pod->host_network) continue;
    const bool live = !pod->terminating;
    for (const PodAddress& a : pod->addresses) {
      auto [it, fresh] = claims.try_emplace(a, Claim{pod, live, false});
      if (fresh || it->second.pod->uid == pod->uid) continue;
      // A pod restarted on a reused address: the old one is terminating, the
      // new one live, and the new one wins. Two claims of the same standing
      // leave the address unnamed: unknown is fine, another pod's name is not.
      if (live && !it->second.live) {
        it->second = Claim{pod, true, false};
      } else if (live == it->second.live) {
        it->second.contested = true;
      }
    }
  }
  for (auto& [addr, claim] : claims) {
    if (claim.contested) {
      ++index->ambiguous_addresses;
    } else {
      index->by_address.emplace(addr, std::move(claim.pod));
    }
  }

  std::shared_ptr<const Index> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(index_, std::move(index));
    if (periodic) still_unknown_.clear();
    for (const std::string& key : misses_) {
      const std::string_view id = std::string_view(key).substr(2);
      const bool found =
          key[0] == 'u' ? index_->by_uid.count(id) != 0 : index_->by_container.count(id) != 0;
      if (!found && still_unknown_.size() < limits_.max_unknown_ids) still_unknown_.insert(key);
    }
    misses_.clear();
    stats_.pods = static_cast<uint32_t>(list.pods.size());
    stats_.skipped_items = list.skipped_items;
    stats_.dropped_over_cap = list.dropped_over_cap;
    stats_.ambiguous_addresses = index_->ambiguous_addresses;
    stats_.last_success_ns = now_ns;
    stats_.last_error.clear();
  }
  return true;  // `old` is freed here, outside the lock
}

std::shared_ptr<const Pod> PodCache::byUid(std::string_view uid) {
  std::lock_guard lock(mu_);
  const auto it = index_->by_uid.find(uid);
  if (it != index_->by_uid.end()) return it->second;
  missed("u:" + std::string(uid));
  return nullptr;
}

ContainerMatch PodCache::byContainerId(std::string_view id) {
  std::lock_guard lock(mu_);
  const auto it = index_->by_container.find(id);
  if (it != index_->by_container.end()) {
    const auto& [pod, i] = it->second;
    return ContainerMatch{pod, &pod->containers[i]};
  }
  missed("c:" + std::string(id));
  return {};
}

std::shared_ptr<const Pod> PodCache::byAddress(const PodAddress& addr) const {
  std::lock_guard lock(mu_);
  const auto it = index_->by_address.find(addr);
  return it == index_->by_address.end() ? nullptr : it->second;
}

PodCacheStats PodCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace l7tap
