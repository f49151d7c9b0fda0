#include "kubelet/pod_list.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>

namespace l7tap {

namespace {

using nlohmann::json;

// Only these keys are kept while parsing, wherever they appear: a real pod
// object is mostly spec (env, volumes, probes) and managed fields, and
// dropping them at parse time keeps the tree a fraction of the input's size.
constexpr std::string_view kKeptKeys[] = {
    "items",
    "metadata",
    "name",
    "namespace",
    "uid",
    "ownerReferences",
    "kind",
    "controller",
    "labels",
    "pod-template-hash",
    "deletionTimestamp",
    "spec",
    "nodeName",
    "hostNetwork",
    "containers",
    "initContainers",
    "status",
    "phase",
    "podIP",
    "podIPs",
    "ip",
    "containerStatuses",
    "initContainerStatuses",
    "containerID",
};

// The deepest kept value (items[].status.podIPs[].ip) is at depth 6; deeper
// ones are nothing l7tap reads, and dropping them bounds the tree's depth.
constexpr int kMaxKeptDepth = 8;

bool keptKey(const json& key) {
  const auto* s = key.get_ptr<const std::string*>();
  return s != nullptr &&
         std::find(std::begin(kKeptKeys), std::end(kKeptKeys), *s) != std::end(kKeptKeys);
}

// What a field lookup found: a present field of the wrong type spoils the
// item (reading it as absent could name the wrong pod), a missing one does not.
enum class Got { kMissing, kOk, kBad };

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

Got getString(const json& obj, const char* key, const KubeletLimits& limits, std::string& out) {
  const json* v = member(obj, key);
  if (v == nullptr) return Got::kMissing;
  const auto* s = v->get_ptr<const std::string*>();
  if (s == nullptr || s->size() > limits.max_string_bytes) return Got::kBad;
  out = *s;
  return Got::kOk;
}

Got getBool(const json& obj, const char* key, bool& out) {
  const json* v = member(obj, key);
  if (v == nullptr) return Got::kMissing;
  const auto* b = v->get_ptr<const bool*>();
  if (b == nullptr) return Got::kBad;
  out = *b;
  return Got::kOk;
}

// An array or object member; kMissing when absent or null.
Got getNode(const json& obj, const char* key, json::value_t type, const json*& out) {
  const json* v = member(obj, key);
  if (v == nullptr) return Got::kMissing;
  if (v->type() != type) return Got::kBad;
  out = v;
  return Got::kOk;
}

bool addAddress(Pod& pod, std::string_view text, const KubeletLimits& limits) {
  PodAddress a;
  if (!parsePodAddress(text, a)) return false;
  if (std::find(pod.addresses.begin(), pod.addresses.end(), a) != pod.addresses.end()) return true;
  if (pod.addresses.size() < limits.max_ips_per_pod) pod.addresses.push_back(a);
  return true;
}

// The controller among the owner references: the one marked so, else a sole owner.
bool readOwner(const json& meta, const KubeletLimits& limits, Pod& pod, std::string_view hash) {
  const json* owners = nullptr;
  const Got g = getNode(meta, "ownerReferences", json::value_t::array, owners);
  if (g == Got::kBad) return false;
  if (g == Got::kMissing || owners->empty()) return true;
  const json* chosen = nullptr;
  for (const json& o : *owners) {
    if (!o.is_object()) return false;
    bool controller = false;
    if (getBool(o, "controller", controller) == Got::kBad) return false;
    if (controller) {
      chosen = &o;
      break;
    }
  }
  if (chosen == nullptr && owners->size() == 1) chosen = &owners->front();
  if (chosen == nullptr) return true;
  std::string kind, name;
  if (getString(*chosen, "kind", limits, kind) != Got::kOk) return false;
  if (getString(*chosen, "name", limits, name) != Got::kOk || name.empty()) return false;
  if (kind == "ReplicaSet") {
    // `<deployment>-<hash>`, but only when the hash is the pod's own: a
    // ReplicaSet made by hand may end in anything.
    const size_t cut = name.size() > hash.size() + 1 ? name.size() - hash.size() - 1 : 0;
    if (!hash.empty() && cut > 0 && name[cut] == '-' &&
        name.compare(cut + 1, hash.size(), hash) == 0) {
      pod.workload = WorkloadKind::kDeployment;
      name.resize(cut);
    } else {
      pod.workload = WorkloadKind::kReplicaSet;
    }
  } else if (kind == "StatefulSet") {
    pod.workload = WorkloadKind::kStatefulSet;
  } else if (kind == "DaemonSet") {
    pod.workload = WorkloadKind::kDaemonSet;
  } else if (kind == "Job") {
    pod.workload = WorkloadKind::kJob;
  } else {
    return true;  // Node (static pods), ReplicationController, a custom controller
  }
  pod.workload_name = std::move(name);
  return true;
}

bool readContainerNames(const json& spec, const char* key, bool init, const KubeletLimits& limits,
                        Pod& pod, uint32_t& dropped) {
  const json* list = nullptr;
  const Got g = getNode(spec, key, json::value_t::array, list);
  if (g == Got::kBad) return false;
  if (g == Got::kMissing) return true;
  for (const json& c : *list) {
    PodContainer pc;
    pc.init = init;
    if (getString(c, "name", limits, pc.name) != Got::kOk) return false;
    if (pod.containers.size() >= limits.max_containers_per_pod) {
      ++dropped;
      continue;
    }
    pod.containers.push_back(std::move(pc));
  }
  return true;
}

// "containerd://<id>", "cri-o://<id>", "docker://<id>": the id is what the cgroup path names.
std::string_view stripRuntime(std::string_view id) {
  const size_t p = id.find("://");
  return p == std::string_view::npos ? id : id.substr(p + 3);
}

bool readContainerStatuses(const json& status, const char* key, bool init,
                           const KubeletLimits& limits, Pod& pod, uint32_t& dropped) {
  const json* list = nullptr;
  const Got g = getNode(status, key, json::value_t::array, list);
  if (g == Got::kBad) return false;
  if (g == Got::kMissing) return true;
  for (const json& c : *list) {
    std::string name, id;
    if (getString(c, "name", limits, name) != Got::kOk) return false;
    if (getString(c, "containerID", limits, id) == Got::kBad) return false;
    const std::string_view bare = stripRuntime(id);
    auto it = std::find_if(pod.containers.begin(), pod.containers.end(),
                           [&](const PodContainer& pc) { return pc.name == name; });
    if (it == pod.containers.end()) {
      // A status without a spec entry (a list cut by a proxy, an ephemeral container).
      if (pod.containers.size() >= limits.max_containers_per_pod) {
        ++dropped;
        continue;
      }
      pod.containers.push_back(PodContainer{name, {}, init});
      it = pod.containers.end() - 1;
    }
    it->id.assign(bare);
  }
  return true;
}

bool readPod(const json& item, const KubeletLimits& limits, Pod& pod, uint32_t& dropped) {
  const json* meta = nullptr;
  if (getNode(item, "metadata", json::value_t::object, meta) != Got::kOk) return false;
  if (getString(*meta, "name", limits, pod.name) != Got::kOk || pod.name.empty()) return false;
  if (getString(*meta, "namespace", limits, pod.namespace_name) != Got::kOk ||
      pod.namespace_name.empty()) {
    return false;
  }
  if (getString(*meta, "uid", limits, pod.uid) != Got::kOk || pod.uid.empty()) return false;
  if (member(*meta, "deletionTimestamp") != nullptr) pod.terminating = true;

  std::string hash;
  const json* labels = nullptr;
  const Got gl = getNode(*meta, "labels", json::value_t::object, labels);
  if (gl == Got::kBad) return false;
  if (gl == Got::kOk && getString(*labels, "pod-template-hash", limits, hash) == Got::kBad) {
    return false;
  }
  if (!readOwner(*meta, limits, pod, hash)) return false;

  const json* spec = nullptr;
  const Got gs = getNode(item, "spec", json::value_t::object, spec);
  if (gs == Got::kBad) return false;
  if (gs == Got::kOk) {
    if (getString(*spec, "nodeName", limits, pod.node_name) == Got::kBad) return false;
    if (getBool(*spec, "hostNetwork", pod.host_network) == Got::kBad) return false;
    if (!readContainerNames(*spec, "initContainers", true, limits, pod, dropped)) return false;
    if (!readContainerNames(*spec, "containers", false, limits, pod, dropped)) return false;
  }

  const json* status = nullptr;
  const Got gt = getNode(item, "status", json::value_t::object, status);
  if (gt == Got::kBad) return false;
  if (gt == Got::kOk) {
    std::string phase, ip;
    if (getString(*status, "phase", limits, phase) == Got::kBad) return false;
    if (phase == "Succeeded" || phase == "Failed") pod.terminating = true;
    const Got gi = getString(*status, "podIP", limits, ip);
    if (gi == Got::kBad || (gi == Got::kOk && !addAddress(pod, ip, limits))) return false;
    const json* ips = nullptr;
    const Got ga = getNode(*status, "podIPs", json::value_t::array, ips);
    if (ga == Got::kBad) return false;
    if (ga == Got::kOk) {
      for (const json& e : *ips) {
        if (getString(e, "ip", limits, ip) != Got::kOk || !addAddress(pod, ip, limits)) {
          return false;
        }
      }
    }
    if (!readContainerStatuses(*status, "initContainerStatuses", true, limits, pod, dropped) ||
        !readContainerStatuses(*status, "containerStatuses", false, limits, pod, dropped)) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string_view workloadAttribute(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kNone:
      return {};
    case WorkloadKind::kDeployment:
      return "k8s.deployment.name";
    case WorkloadKind::kReplicaSet:
      return "k8s.replicaset.name";
    case WorkloadKind::kStatefulSet:
      return "k8s.statefulset.name";
    case WorkloadKind::kDaemonSet:
      return "k8s.daemonset.name";
    case WorkloadKind::kJob:
      return "k8s.job.name";
  }
  return {};
}

bool parsePodAddress(std::string_view text, PodAddress& out) {
  char buf[64];
  if (text.empty() || text.size() >= sizeof buf) return false;
  std::copy(text.begin(), text.end(), buf);
  buf[text.size()] = '\0';
  in_addr v4;
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    out.fill(0);
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return true;
  }
  return inet_pton(AF_INET6, buf, out.data()) == 1;
}

bool parsePodList(std::string_view text, const KubeletLimits& limits, PodList& out,
                  std::string& error) {
  out = PodList{};
  if (text.size() > limits.max_response_bytes) {
    error = "pod list of " + std::to_string(text.size()) + " bytes is over the limit of " +
            std::to_string(limits.max_response_bytes);
    return false;
  }
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(),
                      [](int depth, json::parse_event_t event, json& parsed) {
                        if (depth > kMaxKeptDepth) return false;
                        return event != json::parse_event_t::key || keptKey(parsed);
                      });
  } catch (const std::exception& e) {
    error = std::string("pod list is not JSON: ") + e.what();
    return false;
  }
  const json* items = nullptr;
  if (!doc.is_object() || getNode(doc, "items", json::value_t::array, items) != Got::kOk) {
    // An empty list may come with "items": null.
    if (doc.is_object() && doc.contains("items") && doc["items"].is_null()) return true;
    error = "pod list has no items array";
    return false;
  }
  try {
    for (const json& item : *items) {
      if (out.pods.size() >= limits.max_pods) {
        ++out.dropped_over_cap;
        continue;
      }
      Pod pod;
      if (readPod(item, limits, pod, out.dropped_containers)) {
        out.pods.push_back(std::move(pod));
      } else {
        ++out.skipped_items;
      }
    }
  } catch (const std::exception& e) {
    // Only allocation can throw here; what was read so far is dropped with it.
    out = PodList{};
    error = std::string("pod list: ") + e.what();
    return false;
  }
  return true;
}

}  // namespace l7tap
