// Every bound of metadata/, with its default and why.
#pragma once

#include <cstddef>
#include <cstdint>

namespace l7tap::metadata {

struct MetadataLimits {
  /// /proc/PID entries examined per scan. A busy node runs some tens of
  /// thousands of processes; past the cap the scan stops and says so.
  uint32_t max_processes_per_scan = 65536;
  /// Processes of one network namespace whose cgroup and name are read. A
  /// pod has a handful; the host namespace has everything, and its identity
  /// is "many pods" long before this many.
  uint32_t max_processes_per_netns = 256;
  /// Bytes read of /proc/PID/cgroup. cgroup v1 with every controller is
  /// about a dozen lines of a few hundred bytes.
  size_t max_cgroup_file_bytes = 16 * 1024;
  /// Distinct network namespaces opened to map a netns id to an inode.
  uint32_t max_netns_probed = 4096;
  /// Network namespaces whose identity is cached (about one per pod).
  uint32_t max_cached_netns = 4096;
};

}  // namespace l7tap::metadata
