// The processes in one network namespace, read from a host /proc (which may
// be mounted elsewhere, `--host-proc /host/proc`): their names and what their
// cgroups say. Bounded: past MetadataLimits the scan stops and says so.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "metadata/cgroup_path.h"
#include "metadata/limits.h"

namespace l7tap::metadata {

struct NetnsProcess {
  int pid = 0;
  /// /proc/PID/comm without the newline.
  std::string comm;
  CgroupIdentity cgroup;
};

struct NetnsScan {
  uint64_t netns_inode = 0;
  /// In pid order, at most max_processes_per_netns.
  std::vector<NetnsProcess> processes;
  /// Distinct, sorted.
  std::vector<std::string> container_ids;
  std::vector<std::string> pod_uids;
  /// /proc/PID entries examined.
  uint32_t pids_examined = 0;
  /// A process's cgroup was unreadable or contradicted itself.
  uint32_t ambiguous_cgroups = 0;
  /// A bound cut the scan short: what it found is true, but not everything.
  bool truncated = false;
};

/// The inode of /proc/PID/ns/net, from the link text "net:[4026531840]"
/// (or, where a test wrote a plain file, its content).
std::optional<uint64_t> readNetnsInode(const std::string& ns_path);

/// At most `max_bytes` of a file; nullopt when it cannot be opened. /proc
/// files report size 0, so it reads until EOF rather than by stat.
std::optional<std::string> readBoundedFile(const std::string& path, size_t max_bytes);

/// Which processes are in which namespace, from one walk of /proc: scanning
/// many namespaces with it costs one walk instead of one each (at 1,000 pods
/// a walk reads some thousands of ns/net links).
struct ProcessIndex {
  /// Pids ascending, per namespace inode.
  std::unordered_map<uint64_t, std::vector<int>> pids_by_netns;
  uint32_t pids_examined = 0;
  bool truncated = false;
};

class NetnsScanner {
 public:
  explicit NetnsScanner(std::string host_proc = "/proc", MetadataLimits limits = {});

  /// The processes of the namespace with this inode.
  NetnsScan scan(uint64_t netns_inode) const;
  /// The same from an index made by index(): only the namespace's pids are
  /// read (and checked again: they may have moved since).
  NetnsScan scan(uint64_t netns_inode, const ProcessIndex& index) const;
  ProcessIndex index() const;

  /// Every namespace seen, each with the lowest pid in it (to open it by
  /// /proc/PID/ns/net). Sets *truncated when a bound stopped the walk.
  std::map<uint64_t, int> namespaces(bool* truncated = nullptr) const;

  const std::string& hostProc() const { return host_proc_; }
  const MetadataLimits& limits() const { return limits_; }

 private:
  /// Numeric /proc entries, ascending, at most max_processes_per_scan.
  std::vector<int> pids(bool* truncated) const;
  /// Reads the processes among `pids` that are in the namespace.
  void scanPids(const std::vector<int>& pids, NetnsScan* result) const;

  std::string host_proc_;
  MetadataLimits limits_;
};

}  // namespace l7tap::metadata
