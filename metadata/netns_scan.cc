#include "metadata/netns_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>
#include <set>

namespace l7tap::metadata {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

std::optional<uint64_t> parseNetnsLink(std::string_view text) {
  constexpr std::string_view kPrefix = "net:[";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.substr(0, kPrefix.size()) != kPrefix || text.empty() || text.back() != ']')
    return std::nullopt;
  const std::string_view digits = text.substr(kPrefix.size(), text.size() - kPrefix.size() - 1);
  uint64_t inode = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty())
    return std::nullopt;
  return inode;
}

// Comm is at most 16 bytes (TASK_COMM_LEN); a little more for the newline.
constexpr size_t kMaxCommBytes = 64;
constexpr size_t kMaxNetnsLinkBytes = 64;

}  // namespace

std::optional<std::string> readBoundedFile(const std::string& path, size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string content;
  char buf[4096];
  while (content.size() < max_bytes) {
    const ssize_t n = read(fd, buf, std::min(sizeof(buf), max_bytes - content.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return content;
}

std::optional<uint64_t> readNetnsInode(const std::string& ns_path) {
  char link[kMaxNetnsLinkBytes];
  const ssize_t n = readlink(ns_path.c_str(), link, sizeof(link));
  if (n >= 0) return parseNetnsLink(std::string_view(link, static_cast<size_t>(n)));
  if (errno != EINVAL) return std::nullopt;
  const std::optional<std::string> content = readBoundedFile(ns_path, kMaxNetnsLinkBytes);
  if (!content) return std::nullopt;
  return parseNetnsLink(*content);
}

NetnsScanner::NetnsScanner(std::string host_proc, MetadataLimits limits)
    : host_proc_(std::move(host_proc)), limits_(limits) {}

std::vector<int> NetnsScanner::pids(bool* truncated) const {
  std::vector<int> found;
  std::unique_ptr<DIR, DirCloser> dir(opendir(host_proc_.c_str()));
  if (!dir) return found;
  while (const dirent* entry = readdir(dir.get())) {
    const std::string_view name = entry->d_name;
    int pid = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (ec != std::errc() || end != name.data() + name.size() || pid <= 0) continue;
    if (found.size() >= limits_.max_processes_per_scan) {
      *truncated = true;
      break;
    }
    found.push_back(pid);
  }
  std::sort(found.begin(), found.end());
  return found;
}

NetnsScan NetnsScanner::scan(uint64_t netns_inode) const {
  NetnsScan result;
  result.netns_inode = netns_inode;
  const std::vector<int> all = pids(&result.truncated);
  scanPids(all, &result);
  return result;
}

NetnsScan NetnsScanner::scan(uint64_t netns_inode, const ProcessIndex& index) const {
  NetnsScan result;
  result.netns_inode = netns_inode;
  result.truncated = index.truncated;
  const auto it = index.pids_by_netns.find(netns_inode);
  if (it != index.pids_by_netns.end()) scanPids(it->second, &result);
  return result;
}

ProcessIndex NetnsScanner::index() const {
  ProcessIndex index;
  for (const int pid : pids(&index.truncated)) {
    ++index.pids_examined;
    const std::optional<uint64_t> inode =
        readNetnsInode(host_proc_ + "/" + std::to_string(pid) + "/ns/net");
    if (inode) index.pids_by_netns[*inode].push_back(pid);  // pids ascend
  }
  return index;
}

void NetnsScanner::scanPids(const std::vector<int>& pids, NetnsScan* result) const {
  std::set<std::string> containers;
  std::set<std::string> pods;
  for (const int pid : pids) {
    ++result->pids_examined;
    const std::string base = host_proc_ + "/" + std::to_string(pid);
    // Processes exit between readdir and here: skip them silently.
    const std::optional<uint64_t> inode = readNetnsInode(base + "/ns/net");
    if (!inode || *inode != result->netns_inode) continue;
    if (result->processes.size() >= limits_.max_processes_per_netns) {
      result->truncated = true;
      break;
    }
    NetnsProcess process;
    process.pid = pid;
    if (std::optional<std::string> comm = readBoundedFile(base + "/comm", kMaxCommBytes)) {
      while (!comm->empty() && comm->back() == '\n') comm->pop_back();
      process.comm = std::move(*comm);
    }
    const std::optional<std::string> cgroup =
        readBoundedFile(base + "/cgroup", limits_.max_cgroup_file_bytes);
    if (cgroup) process.cgroup = parseProcCgroup(*cgroup);
    if (!cgroup || process.cgroup.ambiguous) ++result->ambiguous_cgroups;
    if (!process.cgroup.container_id.empty()) containers.insert(process.cgroup.container_id);
    if (!process.cgroup.pod_uid.empty()) pods.insert(process.cgroup.pod_uid);
    result->processes.push_back(std::move(process));
  }
  result->container_ids.assign(containers.begin(), containers.end());
  result->pod_uids.assign(pods.begin(), pods.end());
}

std::map<uint64_t, int> NetnsScanner::namespaces(bool* truncated) const {
  bool cut = false;
  std::map<uint64_t, int> found;
  for (const int pid : pids(&cut)) {
    const std::optional<uint64_t> inode =
        readNetnsInode(host_proc_ + "/" + std::to_string(pid) + "/ns/net");
    if (inode) found.emplace(*inode, pid);  // pids ascend: the first is the lowest
  }
  if (truncated != nullptr) *truncated = cut;
  return found;
}

}  // namespace l7tap::metadata
