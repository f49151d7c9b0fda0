// Who serves a port in a network namespace: the TCP sockets in LISTEN state
// of /proc/PID/net/tcp{,6} (the tables are per namespace, so one process of
// it is enough), and their owners from the /proc/PID/fd links
// "socket:[INODE]" of the namespace's processes. The parsers are pure and
// take text; listenersOf() does the reading, bounded by MetadataLimits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "metadata/interface_identity.h"
#include "metadata/limits.h"
#include "metadata/netns_scan.h"

namespace l7tap::metadata {

/// One row of /proc/net/tcp or /proc/net/tcp6.
struct TcpSocketRow {
  uint16_t local_port = 0;
  /// The kernel's TCP state (0x0A: LISTEN).
  uint8_t state = 0;
  uint64_t inode = 0;
};

constexpr uint8_t kTcpListen = 0x0A;

/// One line ("  0: 0100007F:1F90 00000000:0000 0A ... 12345 1 ..."), IPv4
/// (8 hex digits of address) or IPv6 (32). nullopt for the header and for
/// anything that is not such a row.
std::optional<TcpSocketRow> parseTcpRow(std::string_view line);

struct ListenSocket {
  uint16_t port = 0;
  uint64_t inode = 0;
};

struct TcpTable {
  /// LISTEN rows with a port and an inode, in file order.
  std::vector<ListenSocket> listening;
  /// LISTEN rows read, header excluded.
  uint32_t rows = 0;
  /// Lines that are neither the header nor a row.
  uint32_t garbled = 0;
  /// More rows than max_rows: the rest was not read.
  bool truncated = false;
};

/// Complete lines of a table (any number, header included), appended to
/// *table. Returns false once reading can stop: a row in another state than
/// LISTEN (the kernel lists its listening hash first, so the rest is
/// connections), or `max_rows` rows read (counting across calls, so the
/// IPv4 and IPv6 tables can share one budget; sets `truncated`).
bool parseListenRows(std::string_view lines, uint32_t max_rows, TcpTable* table);

/// The inode of a /proc/PID/fd link text "socket:[12345]".
std::optional<uint64_t> parseSocketLink(std::string_view link);

struct ListenerScan {
  /// Sorted by port, one per port.
  std::vector<PodIdentity::Listener> listeners;
  uint32_t sockets_read = 0;
  uint32_t fds_examined = 0;
  uint32_t garbled_rows = 0;
  /// A bound cut the rows or the fds: a port may lack its owner (it is then
  /// left out), or a listener may be missing.
  bool truncated = false;
};

/// The listeners of the scanned namespace and who holds them (the lowest
/// pid among the scan's processes). A socket held only by processes outside
/// the namespace (passed over a unix socket) is not listed.
ListenerScan listenersOf(const NetnsScan& scan, const std::string& host_proc,
                         const MetadataLimits& limits);

}  // namespace l7tap::metadata
