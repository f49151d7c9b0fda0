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
  /// LISTEN rows of /proc/PID/net/tcp and tcp6 read per scan. The kernel
  /// lists listening sockets before the others, so reading stops at the
  /// first row in another state; a pod listens on a few ports, a host some
  /// dozens. 0: listeners are not looked for. Reading a table costs the
  /// kernel a walk of the node-wide established hash whatever the
  /// namespace holds (about 1.1 ms per table here, see bench/README.md).
  uint32_t max_listen_sockets_per_netns = 4096;
  /// /proc/PID/fd entries examined per scan to find the listeners' owners.
  /// A server holds a few thousand; a proxy some tens of thousands.
  uint32_t max_fds_per_scan = 65536;
  /// Network namespaces whose identity is cached (about one per pod).
  uint32_t max_cached_netns = 4096;
};

}  // namespace l7tap::metadata
