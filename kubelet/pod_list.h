// The kubelet's /pods answer (a core/v1 PodList) reduced to what names a
// record: who a pod is, what owns it, its containers and its addresses.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kubelet/limits.h"

namespace l7tap {

/// A 16-byte address: IPv6, or IPv4-mapped (::ffff:a.b.c.d) as everywhere in l7tap.
using PodAddress = std::array<uint8_t, 16>;

/// The controller that owns a pod, as its owner references give it.
enum class WorkloadKind : uint8_t {
  kNone,        ///< no controller (a bare pod), or one that is not a workload (a static pod's Node)
  kDeployment,  ///< a ReplicaSet `<deployment>-<pod-template-hash>`
  kReplicaSet,  ///< a ReplicaSet whose name does not end in the pod's template hash
  kStatefulSet,  ///<
  kDaemonSet,    ///<
  kJob,          ///<
};

/// The OpenTelemetry attribute that carries the workload's name
/// (`k8s.deployment.name`, ...), empty for kNone.
std::string_view workloadAttribute(WorkloadKind kind);

struct PodContainer {
  std::string name;
  /// The runtime's id without its scheme (`containerd://`, `cri-o://`,
  /// `docker://`): the id the container's cgroup path carries. Empty until
  /// the container has started.
  std::string id;
  bool init = false;  ///< an init container
};

struct Pod {
  std::string name;
  std::string namespace_name;
  std::string uid;
  std::string node_name;
  bool host_network = false;
  /// Phase Succeeded or Failed, or a deletion timestamp set: a pod whose
  /// address may already belong to its successor.
  bool terminating = false;
  WorkloadKind workload = WorkloadKind::kNone;
  std::string workload_name;
  std::vector<PodContainer> containers;
  /// status.podIPs (and status.podIP), without duplicates. For a host-network
  /// pod these are the node's addresses, shared with every such pod.
  std::vector<PodAddress> addresses;
};

struct PodList {
  std::vector<Pod> pods;
  /// Items that are not pods l7tap can name: no name, namespace or UID, a
  /// field of the wrong type, a string over the bound.
  uint32_t skipped_items = 0;
  /// Items beyond KubeletLimits::max_pods.
  uint32_t dropped_over_cap = 0;
  /// Containers beyond KubeletLimits::max_containers_per_pod, over all pods.
  uint32_t dropped_containers = 0;
};

/// Parses a PodList. Returns false with `error` set when the input is not a
/// PodList at all (not JSON, over max_response_bytes, no `items` array);
/// single bad items are skipped and counted instead. Never throws.
bool parsePodList(std::string_view json, const KubeletLimits& limits, PodList& out,
                  std::string& error);

/// Reads an address as the kubelet writes it (dotted quad or RFC 4291).
bool parsePodAddress(std::string_view text, PodAddress& out);

}  // namespace l7tap
