#include "metadata/cgroup_path.h"

#include <array>
#include <cstddef>
#include <vector>

namespace l7tap::metadata {
namespace {

constexpr size_t kContainerIdLength = 64;
constexpr size_t kUidLength = 36;

bool isHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(sep, start);
    const size_t stop = end == std::string_view::npos ? s.size() : end;
    parts.push_back(s.substr(start, stop - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

/// 64 hex digits, lowercased; empty otherwise.
std::string containerIdOf(std::string_view text) {
  if (text.size() != kContainerIdLength) return {};
  std::string id;
  id.reserve(kContainerIdLength);
  for (char c : text) {
    if (!isHex(c)) return {};
    id.push_back(lower(c));
  }
  return id;
}

QosClass qosOf(std::string_view token) {
  if (token == "burstable") return QosClass::kBurstable;
  if (token == "besteffort") return QosClass::kBestEffort;
  return QosClass::kUnknown;
}

struct PodComponent {
  std::string uid;
  QosClass qos = QosClass::kUnknown;
};

// The cgroupfs driver: .../kubepods[/burstable|/besteffort]/pod<UID>.
bool cgroupfsPod(const std::vector<std::string_view>& parts, size_t i, PodComponent* pod) {
  if (!startsWith(parts[i], "pod") || i == 0) return false;
  std::string uid = normalisePodUid(parts[i].substr(3));
  if (uid.empty()) return false;
  QosClass qos = QosClass::kUnknown;
  if (parts[i - 1] == "kubepods") {
    qos = QosClass::kGuaranteed;
  } else if (i >= 2 && parts[i - 2] == "kubepods") {
    qos = qosOf(parts[i - 1]);
  }
  if (qos == QosClass::kUnknown) return false;
  pod->uid = std::move(uid);
  pod->qos = qos;
  return true;
}

// The systemd driver names each slice after its whole ancestry:
// kubepods-burstable-pod<UID>.slice sits in kubepods-burstable.slice, and
// kind's nested kubelet adds a "kubelet-" level in front. The parent slice
// must be exactly the name minus the last level, or it is not the kubelet's.
bool systemdPod(const std::vector<std::string_view>& parts, size_t i, PodComponent* pod) {
  std::string_view name = parts[i];
  if (!endsWith(name, ".slice") || i == 0) return false;
  const std::string_view stem = name.substr(0, name.size() - 6);
  const size_t dash = stem.rfind('-');
  if (dash == std::string_view::npos) return false;
  const std::string_view last = stem.substr(dash + 1);
  const std::string_view ancestry = stem.substr(0, dash);
  if (!startsWith(last, "pod")) return false;
  std::string uid = normalisePodUid(last.substr(3));
  if (uid.empty()) return false;
  if (parts[i - 1] != std::string(ancestry) + ".slice") return false;
  const std::vector<std::string_view> levels = split(ancestry, '-');
  QosClass qos = QosClass::kUnknown;
  if (levels.back() == "kubepods") {
    qos = QosClass::kGuaranteed;
  } else if (levels.size() >= 2 && levels[levels.size() - 2] == "kubepods") {
    qos = qosOf(levels.back());
  }
  if (qos == QosClass::kUnknown) return false;
  pod->uid = std::move(uid);
  pod->qos = qos;
  return true;
}

struct ContainerComponent {
  std::string id;
  ContainerRuntime runtime = ContainerRuntime::kUnknown;
};

struct RuntimePrefix {
  std::string_view prefix;
  ContainerRuntime runtime;
};

constexpr std::array<RuntimePrefix, 4> kRuntimePrefixes{{
    {"cri-containerd-", ContainerRuntime::kContainerd},
    {"crio-", ContainerRuntime::kCrio},
    {"docker-", ContainerRuntime::kDocker},
    {"libpod-", ContainerRuntime::kPodman},
}};

// "<runtime>-<ID>.scope" (systemd), "<runtime>-<ID>" (CRI-O on cgroupfs) or
// a bare "<ID>" (containerd and Docker on cgroupfs). CRI-O's
// "crio-conmon-<ID>.scope" is the monitor, not the container: no match.
bool containerComponent(std::string_view name, bool allow_bare, ContainerComponent* out) {
  if (endsWith(name, ".scope")) name.remove_suffix(6);
  for (const RuntimePrefix& p : kRuntimePrefixes) {
    if (startsWith(name, p.prefix)) {
      std::string id = containerIdOf(name.substr(p.prefix.size()));
      if (id.empty()) return false;
      out->id = std::move(id);
      out->runtime = p.runtime;
      return true;
    }
  }
  if (!allow_bare) return false;
  std::string id = containerIdOf(name);
  if (id.empty()) return false;
  out->id = std::move(id);
  out->runtime = ContainerRuntime::kUnknown;
  return true;
}

}  // namespace

const char* qosClassName(QosClass qos) {
  switch (qos) {
    case QosClass::kGuaranteed:
      return "Guaranteed";
    case QosClass::kBurstable:
      return "Burstable";
    case QosClass::kBestEffort:
      return "BestEffort";
    case QosClass::kUnknown:
      break;
  }
  return "";
}

const char* containerRuntimeName(ContainerRuntime runtime) {
  switch (runtime) {
    case ContainerRuntime::kContainerd:
      return "containerd";
    case ContainerRuntime::kCrio:
      return "cri-o";
    case ContainerRuntime::kDocker:
      return "docker";
    case ContainerRuntime::kPodman:
      return "podman";
    case ContainerRuntime::kUnknown:
      break;
  }
  return "";
}

std::string normalisePodUid(std::string_view text) {
  if (text.size() != kUidLength) return {};
  std::string uid;
  uid.reserve(kUidLength);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool separator_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (separator_position) {
      if (c != '-' && c != '_') return {};
      uid.push_back('-');
    } else {
      if (!isHex(c)) return {};
      uid.push_back(lower(c));
    }
  }
  return uid;
}

CgroupIdentity parseCgroupPath(std::string_view path) {
  CgroupIdentity result;
  std::vector<std::string_view> parts;
  for (std::string_view part : split(path, '/')) {
    if (!part.empty()) parts.push_back(part);
  }

  size_t pod_index = parts.size();
  PodComponent pod;
  for (size_t i = 0; i < parts.size(); ++i) {
    PodComponent candidate;
    if (!cgroupfsPod(parts, i, &candidate) && !systemdPod(parts, i, &candidate)) continue;
    if (pod_index != parts.size()) {
      // Two pod levels in one path is no layout the kubelet makes.
      result.ambiguous = true;
      return result;
    }
    pod_index = i;
    pod = std::move(candidate);
  }

  if (pod_index != parts.size()) {
    result.pod_uid = std::move(pod.uid);
    result.qos = pod.qos;
    // Only the level right below the pod is a container; deeper levels are
    // cgroups the container made for itself.
    ContainerComponent container;
    if (pod_index + 1 < parts.size() &&
        containerComponent(parts[pod_index + 1], true, &container)) {
      result.container_id = std::move(container.id);
      result.runtime = container.runtime;
    }
    return result;
  }

  // No pod: the innermost container scope (a kind node seen from the host is
  // a Docker container holding others; the process is in the innermost).
  // Bare ids count only under Docker's cgroupfs parent, "/docker/<ID>".
  for (size_t i = parts.size(); i-- > 0;) {
    ContainerComponent container;
    const bool allow_bare = i > 0 && parts[i - 1] == "docker";
    if (containerComponent(parts[i], allow_bare, &container)) {
      result.container_id = std::move(container.id);
      result.runtime = allow_bare && container.runtime == ContainerRuntime::kUnknown
                           ? ContainerRuntime::kDocker
                           : container.runtime;
      break;
    }
  }
  return result;
}

CgroupIdentity parseProcCgroup(std::string_view content) {
  CgroupIdentity merged;
  for (std::string_view line : split(content, '\n')) {
    // "hierarchy-ID:controller-list:path"; the path may itself hold colons.
    const size_t first = line.find(':');
    if (first == std::string_view::npos) continue;
    const size_t second = line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    CgroupIdentity one = parseCgroupPath(line.substr(second + 1));
    if (one.ambiguous) merged.ambiguous = true;
    if (one.empty()) continue;
    // v1 hierarchies agree on a healthy node (some may stop at the pod
    // level); when two name different pods or containers, the process moved
    // mid-read or something else manages them: trust neither.
    const bool pod_conflict =
        !one.pod_uid.empty() && !merged.pod_uid.empty() && one.pod_uid != merged.pod_uid;
    const bool container_conflict = !one.container_id.empty() && !merged.container_id.empty() &&
                                    one.container_id != merged.container_id;
    if (pod_conflict || container_conflict) merged.ambiguous = true;
    if (merged.pod_uid.empty() && !one.pod_uid.empty()) {
      merged.pod_uid = std::move(one.pod_uid);
      merged.qos = one.qos;
    }
    if (merged.container_id.empty() && !one.container_id.empty()) {
      merged.container_id = std::move(one.container_id);
      merged.runtime = one.runtime;
    }
  }
  if (merged.ambiguous) return CgroupIdentity{.ambiguous = true};
  return merged;
}

}  // namespace l7tap::metadata
