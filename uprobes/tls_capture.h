// TLS plaintext for the live capture: the TLS program (tls_program.h), the
// files it is attached to (library_discovery.h), its ring buffer read into
// the plaintext streams (plaintext_streams.h) and so into the pipeline.
// LiveCapture's loop polls fd(), calls consume() before it drains the TC
// ring (an SSL_write's event is in the ring before the TCP segments carrying
// its bytes can close the connection), and housekeeping() on its tick.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/pipeline.h"
#include "uprobes/library_discovery.h"
#include "uprobes/plaintext_streams.h"
#include "uprobes/tls_program.h"

struct ring_buffer;

namespace l7tap {

struct TlsCaptureConfig {
  std::vector<uint32_t> pids;         ///< --tls-pid: only these processes; empty: all
  std::vector<std::string> binaries;  ///< --tls-binary: these files too
  std::string proc = "/proc";         ///< the host's /proc (--host-proc)
  uint32_t ring_bytes = L7TAP_TLS_DEFAULT_RING_BYTES;
  uint32_t wakeup_bytes = 0;  ///< as TlsProgramConfig's; attach: the TC ring's
  bool quiet_load = false;    ///< as TlsProgramConfig's
  uint64_t full_scan_interval_ns = 30ull * 1000 * 1000 * 1000;
  PlaintextStreamLimits streams;
  /// False: only the plaintext of processes in the network namespaces the
  /// attached interfaces carry (allowNetns); true: every traced process's.
  bool all_namespaces = false;
};

/// What the summary and the self-metrics show.
struct TlsCaptureStats {
  TlsProgramCounters kernel;
  uint64_t events_read = 0;
  uint64_t malformed = 0;    ///< samples shorter than they say, or out of range
  uint64_t other_kinds = 0;  ///< event kinds this daemon does not read
  uint64_t execs = 0;
  uint64_t out_of_scope = 0;  ///< of processes in no attached interface's namespace: dropped
  PlaintextStreamStats streams;
  LibraryDiscoveryStats discovery;
};

class TlsCapture final : private TlsFileAttacher {
 public:
  TlsCapture() = default;
  ~TlsCapture() override;
  TlsCapture(const TlsCapture&) = delete;
  TlsCapture& operator=(const TlsCapture&) = delete;

  /// Loads the program, attaches to the named files (a file it cannot use
  /// is one line, never an error), and reads its ring into `pipeline`.
  /// False with a one-line `error` when the program cannot be loaded.
  bool start(const TlsCaptureConfig& config, Pipeline& pipeline, int64_t mono_to_real_ns,
             std::string& error);
  /// Attaches to what the processes in scope map now: once the interfaces
  /// that make the scope are attached, before traffic is expected.
  void scanNow(uint64_t mono_now_ns) {
    if (discovery_) discovery_->scanAll(mono_now_ns);
  }
  /// Readable when the kernel wakes the reader; -1 when not started.
  int fd() const;
  /// Pushes every queued event into the pipeline.
  void consume();
  /// Rescans after execs, the periodic full scan, idle streams.
  void housekeeping(uint64_t mono_now_ns);
  void stop();
  bool running() const { return ring_ != nullptr; }
  /// The interface `ifindex` carries the traffic of the network namespace
  /// `netns_inode` (a veth's peer's, or the daemon's own): its processes'
  /// plaintext is reported. Forgotten when the interface is gone.
  void allowNetns(uint32_t ifindex, uint64_t netns_inode);
  void forgetInterface(uint32_t ifindex);
  TlsCaptureStats stats() const;

 private:
  Result attach(TlsFileKind kind, const MappedFile& file, std::string& error) override;
  static int onSample(void* ctx, void* data, size_t size);

  TlsProgram program_;
  std::unique_ptr<PlaintextStreams> streams_;
  std::unique_ptr<LibraryDiscovery> discovery_;
  ring_buffer* ring_ = nullptr;
  TlsCaptureStats stats_;
  bool all_namespaces_ = false;
  std::unordered_map<uint32_t, uint64_t> netns_of_interface_;
  std::unordered_map<uint64_t, uint32_t> allowed_netns_;  // inode -> interfaces carrying it
};

}  // namespace l7tap
