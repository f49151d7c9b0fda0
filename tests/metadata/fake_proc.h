// A host /proc made of plain files and dangling links in a temporary
// directory: what NetnsScanner reads, without needing any real process.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace l7tap::metadata::testing {

class FakeProc {
 public:
  FakeProc() {
    std::string pattern = (std::filesystem::temp_directory_path() / "i11c-proc-XXXXXX").string();
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

  /// The process exited (and its pid may be given to another with add()).
  void remove(int pid) {
    std::filesystem::remove_all(std::filesystem::path(root_) / std::to_string(pid));
  }

  /// A process that exited between the directory walk and the reads.
  void addVanished(int pid) {
    std::filesystem::create_directories(std::filesystem::path(root_) / std::to_string(pid));
  }

  /// /proc/PID/net/tcp and tcp6 as given (the tables of the pid's namespace).
  void setTcp(int pid, const std::string& tcp, const std::string& tcp6 = kTcp6Header) {
    const std::filesystem::path dir = std::filesystem::path(root_) / std::to_string(pid) / "net";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "tcp") << tcp;
    std::ofstream(dir / "tcp6") << tcp6;
  }

  /// /proc/PID/fd/FD as a link with this text ("socket:[N]", "/dev/null").
  void addFd(int pid, int fd, const std::string& link) {
    const std::filesystem::path dir = std::filesystem::path(root_) / std::to_string(pid) / "fd";
    std::filesystem::create_directories(dir);
    std::filesystem::create_symlink(link, dir / std::to_string(fd));
  }

  static constexpr const char* kTcpHeader =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode\n";
  static constexpr const char* kTcp6Header =
      "  sl  local_address                         remote_address                        st "
      "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

  /// A row as the kernel writes it: IPv4 0.0.0.0 (or :: with `v6`).
  static std::string tcpRow(int slot, uint16_t port, int state, uint64_t inode, bool v6 = false) {
    char row[256];
    const char* any = v6 ? "00000000000000000000000000000000" : "00000000";
    const uint16_t remote_port = state == 0x0A ? 0 : 41230;
    std::snprintf(row, sizeof row,
                  "%4d: %s:%04X %s:%04X %02X 00000000:00000000 00:00000000 00000000     0        "
                  "0 %llu 1 0000000000000000 100 0 0 10 0\n",
                  slot, any, port, any, remote_port, state, static_cast<unsigned long long>(inode));
    return row;
  }

  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace l7tap::metadata::testing
