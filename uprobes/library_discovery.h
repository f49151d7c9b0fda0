// Which files the TLS probes go on: the libssl.so* that processes map, the
// executables with OpenSSL or BoringSSL linked in (found by their SSL_write
// symbol) and Go executables (by their build info). Found
// through /proc/PID/maps, opened through /proc/PID/root (a container's file
// is not at the same path on the host), and tried once per file (device,
// inode), whichever processes map it. Processes are looked at again after
// they exec (twice: the loader maps libssl after the exec) and on a
// periodic full scan.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace l7tap {

/// What a file is to the TLS probes.
enum class TlsFileKind : uint8_t {
  kNotTls,   ///< nothing to attach to
  kOpenSsl,  ///< libssl.so*, or an executable defining SSL_write (static OpenSSL/BoringSSL)
  kGo,       ///< a Go executable (crypto/tls): uprobes/go_binary decides
};

/// A file a process maps, as discovery found it.
struct MappedFile {
  uint32_t pid = 0;         ///< a process that maps it (0: named on the command line)
  std::string mapped_path;  ///< as the process sees it (/proc/PID/maps)
  std::string open_path;    ///< a path this process can open: /proc/PID/root/...
  bool executable = false;  ///< the process's own executable
};

/// What a file is; `why` says, for a file named on the command line, why
/// it is not one the probes can use: OpenSSL by name or by symbol, Go by
/// its build info (uprobes/go_binary then decides what can be probed).
TlsFileKind classifyTlsFile(const MappedFile& file, std::string& why);

/// True when the ELF file at `path` defines `symbol` (.symtab or .dynsym,
/// not an import). False also when it cannot be read.
bool elfDefinesSymbol(const std::string& path, std::string_view symbol);

/// Receives the files to attach to (TlsCapture: the TLS program).
class TlsFileAttacher {
 public:
  virtual ~TlsFileAttacher() = default;
  /// kSkipped: nothing to attach to, and not worth a line unless the file was
  /// named (a Go program without crypto/tls).
  enum class Result : uint8_t { kAttached, kAlready, kFailed, kSkipped };
  /// `error`: one line on kFailed, naming what is missing.
  virtual Result attach(TlsFileKind kind, const MappedFile& file, std::string& error) = 0;
};

/// Every bound of the discovery, with its default and why.
struct LibraryDiscoveryLimits {
  /// Files (device, inode) remembered as tried: a node has a few thousand
  /// distinct executables and libraries; past this, files are tried again.
  uint32_t max_files = 64 * 1024;
  /// Processes waiting for their post-exec look (two each).
  uint32_t max_pending_execs = 4096;
  /// After an exec: the first look (the loader has mapped the libraries by
  /// then for all but the slowest starts) and the second.
  uint64_t exec_first_delay_ns = 50ull * 1000 * 1000;
  uint64_t exec_second_delay_ns = 1000ull * 1000 * 1000;
};

struct LibraryDiscoveryStats {
  uint64_t full_scans = 0;
  uint64_t process_scans = 0;
  uint64_t files_tried = 0;
  uint64_t attached = 0;
  uint64_t refused = 0;          ///< the attacher failed, or a named file is not TLS
  uint64_t pending_dropped = 0;  ///< exec looks over max_pending_execs
};

class LibraryDiscovery {
 public:
  struct Options {
    std::string proc = "/proc";  ///< the host's /proc (--host-proc)
    std::vector<uint32_t> pids;  ///< only these processes; empty: all
    /// Whether a process is one whose TLS is reported (its network
    /// namespace); empty: every process. A probe traps every process that
    /// maps the file, in scope or not (microseconds per call): files only
    /// processes out of scope map are better left alone.
    std::function<bool(uint32_t pid)> in_scope;
    uint64_t full_scan_interval_ns = 30ull * 1000 * 1000 * 1000;
    LibraryDiscoveryLimits limits;
    /// What a file is (kNotTls: skipped).
    std::function<TlsFileKind(const MappedFile&, std::string& why)> classify = classifyTlsFile;
    /// Where the one line per refused file goes (default: standard error,
    /// as `l7tap: tls: PATH: reason`).
    std::function<void(const std::string& line)> report;
  };

  LibraryDiscovery(TlsFileAttacher& attacher, Options options);

  /// Every process (or those of Options::pids) now.
  void scanAll(uint64_t now_ns);
  /// One process now.
  void scanProcess(uint32_t pid);
  /// A file named on the command line (--tls-binary), opened as given.
  void addFile(const std::string& path);
  /// `pid` exec'd: look at it soon, and again a second later.
  void onExec(uint32_t pid, uint64_t now_ns);
  /// Due exec looks and the periodic full scan.
  void tick(uint64_t now_ns);
  /// The scope grew (an interface was attached): a full scan at the next tick.
  void rescanSoon() { next_full_scan_ns_ = 0; }

  const LibraryDiscoveryStats& stats() const { return stats_; }

 private:
  struct FileId {
    dev_t dev;
    ino_t ino;
    bool operator==(const FileId&) const = default;
  };
  struct FileIdHash {
    size_t operator()(const FileId& f) const { return std::hash<uint64_t>()(f.ino * 31 + f.dev); }
  };
  struct Pending {
    uint32_t pid;
    uint64_t due_ns;
  };

  bool wanted(uint32_t pid) const;
  void consider(const MappedFile& file, bool named);
  void say(const std::string& path, const std::string& reason);

  TlsFileAttacher* attacher_;
  Options options_;
  LibraryDiscoveryStats stats_;
  std::unordered_set<FileId, FileIdHash> tried_;
  std::vector<Pending> pending_;
  uint64_t next_full_scan_ns_ = 0;
};

}  // namespace l7tap
