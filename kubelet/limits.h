// Every bound of the kubelet client and its pod cache, with its default and
// why: the one place they are defined.
#pragma once

#include <cstdint>

namespace l7tap {

struct KubeletLimits {
  /// Pods kept from one list. The kubelet's own default --max-pods is 110 and
  /// large nodes run a few hundred; items beyond the cap are counted, not kept.
  uint32_t max_pods = 2048;
  /// Containers (regular and init) kept per pod; the rest are counted.
  uint32_t max_containers_per_pod = 64;
  /// Addresses kept per pod: podIPs holds at most one per family.
  uint32_t max_ips_per_pod = 4;
  /// Longest name, namespace, UID, owner name or container id. Kubernetes
  /// names are DNS subdomains of at most 253 bytes; a longer one is not a
  /// valid object, so its pod is skipped rather than named by a cut string.
  uint32_t max_string_bytes = 253;
  /// Largest response body read from the kubelet (and parsed). A real pod
  /// object is 5 to 20 KB, so 1,000 pods stay well under it.
  uint32_t max_response_bytes = 64u << 20;
  /// Largest service-account token read from the token file (real ones are
  /// about 1 KB).
  uint32_t max_token_bytes = 16 * 1024;
  /// Longest wait for the TCP and TLS handshake with the kubelet.
  uint32_t connect_timeout_ms = 2000;
  /// Longest whole request, so a kubelet that accepts and never answers
  /// blocks the caller for this long at most.
  uint32_t total_timeout_ms = 5000;
  /// Period of the timer-driven refresh.
  uint64_t refresh_interval_ns = 10ull * 1000 * 1000 * 1000;
  /// Least time between two refreshes asked for by an unknown pod UID or
  /// container id, so a stream of unknown ids cannot hammer the kubelet.
  uint64_t min_unknown_refresh_interval_ns = 2ull * 1000 * 1000 * 1000;
  /// Unknown UIDs and container ids remembered between refreshes. An id a
  /// refresh it asked for did not find (a sandbox container, a container
  /// outside Kubernetes) asks again only after the next timer refresh, so
  /// it cannot make the kubelet answer every few seconds forever.
  uint32_t max_unknown_ids = 1024;
};

inline constexpr KubeletLimits kDefaultKubeletLimits{};

}  // namespace l7tap
