// Analysis of a Go executable for the crypto/tls uprobes: where to put the
// probes (file offsets of the entries and of every RET instruction) and the
// struct offsets the BPF program needs to go from a *tls.Conn to its socket.
// User space only; the result is what the loader hands to the kernel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "binaries/elf_file.h"  // goMinorVersion, kGoMinMinorVersion

namespace l7tap {

/// Byte offsets of the fields the probes read, for one binary. They come
/// from the binary's DWARF when it has some, else from a table per Go
/// version (goTlsOffsetsForVersion).
struct GoTlsOffsets {
  uint64_t conn_conn = 0;       ///< crypto/tls.Conn.conn (net.Conn: itab, data)
  uint64_t conn_is_client = 0;  ///< crypto/tls.Conn.isClient (bool)
  uint64_t net_conn_fd = 0;     ///< net.conn.fd (*net.netFD), net.TCPConn embeds net.conn
  uint64_t netfd_pfd = 0;       ///< net.netFD.pfd (internal/poll.FD)
  uint64_t pollfd_sysfd = 0;    ///< internal/poll.FD.Sysfd (int)
  uint64_t g_goid = 0;          ///< runtime.g.goid

  bool operator==(const GoTlsOffsets&) const = default;
};

/// What the crypto/tls probes of one Go executable need.
struct GoTlsTarget {
  std::string go_version;  ///< "go1.19.8", from the build info
  /// A function to probe: uprobes at the entry and at each RET, never a
  /// uretprobe (its return trampoline breaks when Go moves the stack).
  struct Function {
    uint64_t entry_offset = 0;             ///< file offset of the first instruction
    std::vector<uint64_t> return_offsets;  ///< file offsets of the RET instructions
  };
  Function write;  ///< crypto/tls.(*Conn).Write
  Function read;   ///< crypto/tls.(*Conn).Read
  Function close;  ///< crypto/tls.(*Conn).Close (entry only)
  GoTlsOffsets offsets;
  bool offsets_from_dwarf = false;  ///< else from the per-version table
  /// Link-time address of go:itab.*net.TCPConn,net.Conn: the BPF program
  /// reads the fd only when the tls.Conn's net.Conn has this itab. 0 when
  /// the address is not known at run time (position-independent binary):
  /// the fd is then read without the check, and the file table tells
  /// whether it is a socket.
  uint64_t tcpconn_itab = 0;
  bool position_independent = false;
  /// Set on failure: a Go executable that does not link crypto/tls (most Go
  /// programs of a node that speak no TLS): nothing to probe, nothing to say.
  bool without_crypto_tls = false;
};

/// Bounds of the analysis: a Go executable larger than these is refused,
/// not read partly.
struct GoBinaryLimits {
  /// Bytes disassembled per function: (*Conn).Read is about 1.5 KiB in Go 1.19.
  static constexpr uint64_t kMaxFunctionBytes = 64 * 1024;
  /// RET instructions per function: each costs one uprobe.
  static constexpr size_t kMaxReturns = 64;
};

/// The offsets table: Go 1.17 .. 1.23 on amd64. False for other versions.
bool goTlsOffsetsForVersion(int minor, GoTlsOffsets& offsets);

/// Reads `path` and fills `target`. On failure returns false and `error` is
/// one line with the reason (not ELF, not Go, stripped, Go older than 1.17,
/// not amd64, no crypto/tls, ...), without the path. `target.go_version` is
/// then set when the file is a Go executable that cannot be probed (worth a
/// message), and empty when it is no Go executable at all (most of a node's
/// programs: nothing to say).
bool analyseGoBinary(const std::string& path, GoTlsTarget& target, std::string& error);

/// True when `path` is an ELF file with Go build info: the cheap test that
/// picks Go executables out of a node's programs (no symbols, no DWARF).
bool isGoExecutable(const std::string& path);

}  // namespace l7tap
