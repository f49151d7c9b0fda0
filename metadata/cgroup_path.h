// What a process's cgroup path says about it: the container it runs in and,
// under the kubelet, the pod and its QoS class. Pure functions on the text of
// /proc/PID/cgroup.
//
// The rule is "never a wrong pod": a pod UID is only reported when the path
// has exactly the kubelet's shape (kubepods, then the QoS level, then the pod)
// and nothing in it contradicts it; anything else yields an empty field.
#pragma once

#include <string>
#include <string_view>

namespace l7tap::metadata {

enum class QosClass { kUnknown, kGuaranteed, kBurstable, kBestEffort };

enum class ContainerRuntime { kUnknown, kContainerd, kCrio, kDocker, kPodman };

const char* qosClassName(QosClass qos);
const char* containerRuntimeName(ContainerRuntime runtime);

struct CgroupIdentity {
  /// 64 lowercase hex digits, or empty.
  std::string container_id;
  /// Lowercase, with dashes (systemd's underscores undone), or empty.
  std::string pod_uid;
  QosClass qos = QosClass::kUnknown;
  /// From the scope's prefix; kUnknown for cgroupfs's bare ids.
  ContainerRuntime runtime = ContainerRuntime::kUnknown;
  /// The path showed the kubelet's layout but could not be read without
  /// guessing (two pods, a malformed UID): the fields above are empty.
  bool ambiguous = false;

  bool empty() const { return container_id.empty() && pod_uid.empty(); }
  bool operator==(const CgroupIdentity&) const = default;
};

/// One cgroup path, e.g. "/kubepods/burstable/pod<UID>/<ID>".
CgroupIdentity parseCgroupPath(std::string_view path);

/// The whole content of /proc/PID/cgroup: the v2 line ("0::/path") and any
/// v1 lines. Lines that disagree on the pod or the container make that field
/// empty and the result ambiguous.
CgroupIdentity parseProcCgroup(std::string_view content);

/// "8-4-4-4-12" hex with dashes or underscores, lowercased with dashes; empty
/// when `text` is not exactly a UID.
std::string normalisePodUid(std::string_view text);

}  // namespace l7tap::metadata
