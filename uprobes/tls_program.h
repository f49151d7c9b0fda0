// The TLS uprobe programs, loaded from their embedded skeleton: the exec
// tracepoint at load, then the OpenSSL probes (and the sys_enter tracepoint
// they need) per library file. Events come out of one ring buffer
// (ringFd()) as struct l7tap_tls_event (uprobes/bpf/tls_abi.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "uprobes/bpf/tls_abi.h"
#include "uprobes/go_binary.h"

struct bpf_link;
struct bpf_object;
struct l7tap_openssl;

namespace l7tap {

class GoTlsProbes;

struct TlsProgramConfig {
  /// Ring buffer size: a power of two, a multiple of the page size.
  uint32_t ring_bytes = L7TAP_TLS_DEFAULT_RING_BYTES;
  /// Empty: every process; else only these tgids (checked in BPF at each
  /// probe's entry).
  std::vector<uint32_t> pids;
  /// Wake the reader once this many bytes are queued; 0: at every event.
  /// Below it the reader drains on its own timer (l7tap_tls_wakeup_bytes).
  uint32_t wakeup_bytes = 0;
  /// libbpf's own lines off while loading: the caller reports a refusal it
  /// expects (no permission, TLS uprobes on by default) in one line.
  bool quiet_load = false;
};

/// Sums over CPUs of the programs' counters (uprobes/bpf/tls_counters.h).
struct TlsProgramCounters {
  uint64_t events = 0;        ///< events written to the ring
  uint64_t lost = 0;          ///< events the full ring refused (a seq jump each)
  uint64_t lost_bytes = 0;    ///< plaintext bytes of the lost data events
  uint64_t chunked = 0;       ///< calls cut into several events
  uint64_t truncated = 0;     ///< calls longer than all chunks (len > captured)
  uint64_t read_faults = 0;   ///< user buffers that could not be read
  uint64_t no_socket = 0;     ///< data events without a known socket tuple
  uint64_t not_tcp = 0;       ///< SSL calls on fds that are not TCP sockets
  uint64_t no_entry = 0;      ///< returns whose entry was not seen
  uint64_t state_full = 0;    ///< stream/socket state entries not created
  uint64_t closes = 0;        ///< close events written
  uint64_t execs = 0;         ///< exec events written
  uint64_t fd_inferred = 0;   ///< sockets of fd-less SSL objects (memory BIOs) inferred
  uint64_t fd_ambiguous = 0;  ///< fd-less SSL objects left without a socket: conflicting evidence
};

class TlsProgram {
 public:
  TlsProgram();
  ~TlsProgram();  // detaches and unloads
  TlsProgram(const TlsProgram&) = delete;
  TlsProgram& operator=(const TlsProgram&) = delete;

  /// Opens and loads the programs, and attaches the sched_process_exec raw
  /// tracepoint (exec events). The sys_enter one, which sees the fd under an
  /// SSL call, follows with the first OpenSSL file. False with a one-line
  /// `error` on failure.
  bool load(const TlsProgramConfig& config, std::string& error);

  enum class Attach { kAttached, kAlready, kFailed };

  /// The OpenSSL probes on a shared library or an executable with OpenSSL
  /// linked in statically, once per file (st_dev, st_ino), for every process
  /// that maps it. `path` is one this process can open (e.g.
  /// /proc/PID/root/usr/lib/x86_64-linux-gnu/libssl.so.3). Symbols that are
  /// absent (SSL_write_ex in BoringSSL) are skipped; a file without SSL_write
  /// or SSL_read is kFailed, `error` one line naming the file and what is
  /// missing.
  Attach attachOpenSsl(const std::string& path, std::string& error);

  /// The Go crypto/tls probes on a Go executable that analyseGoBinary
  /// (uprobes/go_binary.h) accepted as `target`, once per file (st_dev,
  /// st_ino), for every process that runs it; their events come out of the
  /// same ring. The first call loads the Go program. kFailed: `error` is one
  /// line naming the file.
  Attach attachGo(const std::string& path, const GoTlsTarget& target, std::string& error);

  /// BPF_MAP_TYPE_RINGBUF of l7tap_tls_event samples (header + captured
  /// bytes); -1 before load().
  int ringFd() const;
  TlsProgramCounters counters() const;
  /// Detaches every link and unloads; load() may be called again.
  void unload();

 private:
  /// For a second object that includes tls_common.bpf.h (the Go probes):
  /// makes it use this program's maps (one ring, one seq state per stream,
  /// one socket table, the pid filter, the counters). Call after load() and
  /// before loading `other`; set its l7tap_tls_filter_pids as filter_pids_.
  bool shareMapsWith(bpf_object* other, std::string& error) const;

  struct LinkDestroy {
    void operator()(bpf_link* link) const;
  };
  using Link = std::unique_ptr<bpf_link, LinkDestroy>;

  l7tap_openssl* skel_ = nullptr;
  std::unique_ptr<GoTlsProbes> go_;  // loaded at the first attachGo
  std::vector<Link> links_;
  std::set<std::pair<dev_t, ino_t>> attached_files_;
  bool filter_pids_ = false;
  uint32_t wakeup_bytes_ = 0;
  bool sys_enter_attached_ = false;
};

}  // namespace l7tap
