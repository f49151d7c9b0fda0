// A host /proc made of plain files and dangling links in a temporary
// directory: what NetnsScanner reads, without needing any real process.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace l7tap::metadata::testing {

class FakeProc {
 public:
  FakeProc() {
    std::string pattern = (std::filesystem::temp_directory_path() / "i11m-proc-XXXXXX").string();
    root_ = mkdtemp(pattern.data());
    // Entries a real /proc has that are not processes.
    std::filesystem::create_directories(std::filesystem::path(root_) / "sys");
    std::ofstream(std::filesystem::path(root_) / "uptime") << "1.0 1.0\n";
  }
  ~FakeProc() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  FakeProc(const FakeProc&) = delete;
  FakeProc& operator=(const FakeProc&) = delete;

  /// A process: ns/net as the kernel's link text ("net:[N]") or, with
  /// `as_file`, as a plain file holding it.
  void add(int pid, uint64_t netns_inode, const std::string& comm, const std::string& cgroup,
           bool as_file = false) {
    const std::filesystem::path dir = std::filesystem::path(root_) / std::to_string(pid);
    std::filesystem::create_directories(dir / "ns");
    const std::string link = "net:[" + std::to_string(netns_inode) + "]";
    if (as_file) {
      std::ofstream(dir / "ns" / "net") << link;
    } else {
      std::filesystem::create_symlink(link, dir / "ns" / "net");
    }
    std::ofstream(dir / "comm") << comm << "\n";
    std::ofstream(dir / "cgroup") << cgroup;
  }

  /// A process that exited between the directory walk and the reads.
  void addVanished(int pid) {
    std::filesystem::create_directories(std::filesystem::path(root_) / std::to_string(pid));
  }

  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace l7tap::metadata::testing
