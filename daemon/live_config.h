// What `l7tap attach` captures and how, and every bound of it. The option
// parser checks each value against LiveLimits; the program loader checks the
// whole configuration again with checkLiveConfig (it may be built in code).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/attachment.h"
#include "reassembly/limits.h"
#include "tc/l7tap_abi.h"

namespace l7tap {

/// Bounds of the live configuration. Where the kernel program has the bound
/// (tc/l7tap_abi.h), this is that define, never a second number.
struct LiveLimits {
  /// One ring-buffer event carries at most this much payload.
  static constexpr uint32_t kMaxWindow = L7TAP_MAX_EVENT_PAYLOAD;
  /// The kernel program's filter arrays.
  static constexpr uint32_t kMaxPorts = L7TAP_MAX_FILTER_PORTS;
  static constexpr uint32_t kMaxCidrs = L7TAP_MAX_FILTER_CIDRS;
  /// The ring is a power of two of at least a page; 1 GiB is plenty.
  static constexpr uint32_t kMinRingKb = 4;
  static constexpr uint32_t kMaxRingKb = 1u << 20;
  /// A drain interval longer than 10 s would only fill the ring.
  static constexpr uint32_t kMaxDrainMs = 10000;
  /// Interim connection records at most a day apart.
  static constexpr uint32_t kMaxInterimSeconds = 86400;
  /// --tls-pid: each is an entry of the TLS programs' pid filter, checked at
  /// every probe; a node's worth of named processes.
  static constexpr uint32_t kMaxTlsPids = 1024;
  /// --tls-binary: files named on top of what discovery finds.
  static constexpr uint32_t kMaxTlsBinaries = 256;
};

struct LiveConfig {
  std::vector<std::string> interfaces;  ///< names or globs
  uint32_t window = 1024;               ///< payload bytes copied per skb
  /// Wake the reader once this many bytes are queued; 0 wakes it for every
  /// event. Between wake-ups the reader drains every `drain_interval_ms`.
  uint32_t wakeup_bytes = 256 * 1024;
  /// Each drain is a wake-up of the daemon (a context switch and the loop's
  /// system calls, ~10 us on a loaded VM): at 2 ms they were a sixth of its
  /// CPU per exchange under load; 10 ms keeps a record's delay far below
  /// what a log pipeline adds, and the ring holds 10 ms of a busy node.
  uint32_t drain_interval_ms = 10;
  uint32_t ring_bytes = L7TAP_DEFAULT_RING_BYTES;      ///< ring buffer size (power of two)
  uint32_t flow_entries = L7TAP_DEFAULT_FLOW_ENTRIES;  ///< kernel flow map size
  /// Kernel flow entries idle this long are removed: the reassembly's own
  /// idle timeout, so the kernel's counters outlive the connection's record.
  uint64_t idle_flow_ns = kDefaultReassemblyLimits.idle_timeout_ns;
  /// kXdp: the XDP program alone (ingress only), else the TC programs.
  AttachMode mode = AttachMode::kAuto;
  std::vector<uint16_t> ports;  ///< capture flows with either port here; empty: any
  struct Cidr {
    uint8_t addr[16];
    uint8_t prefix_len;  ///< of the 128-bit (IPv4-mapped) form
  };
  std::vector<Cidr> cidrs;  ///< either endpoint inside; empty: any
  uint64_t interim_interval_ns = 60ull * 1000 * 1000 * 1000;  ///< 0: no interim records
  /// Tell the kernel program what the parsers only count (known-length
  /// bodies; TLS and unknown protocols entirely) so it copies none of it.
  bool capture_control = true;
  /// Where the per-interface locks live: the same for every l7tap of a node.
  std::string lock_dir = "/run/l7tap";
  /// TLS plaintext through uprobes on TLS libraries (uprobes/): on unless
  /// --no-tls-uprobes.
  bool tls_uprobes = true;
  std::vector<uint32_t> tls_pids;         ///< --tls-pid: only these processes; empty: all
  std::vector<std::string> tls_binaries;  ///< --tls-binary: these files too
  std::string tls_proc = "/proc";         ///< the host's /proc (--host-proc)
  /// --tls-all-processes: every process's TLS, not only that of the
  /// namespaces the attached interfaces carry (implied by --tls-pid).
  bool tls_all_processes = false;
};

/// False with `error` set when `config` is outside LiveLimits.
bool checkLiveConfig(const LiveConfig& config, std::string& error);

}  // namespace l7tap
