#include "metadata/socket_owner.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <memory>
#include <unordered_map>

namespace l7tap::metadata {
namespace {

std::string_view nextToken(std::string_view& rest) {
  size_t start = 0;
  while (start < rest.size() && (rest[start] == ' ' || rest[start] == '\t')) ++start;
  size_t end = start;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t') ++end;
  const std::string_view token = rest.substr(start, end - start);
  rest.remove_prefix(end);
  return token;
}

template <typename T>
bool parseNumber(std::string_view text, int base, T* value) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value, base);
  return ec == std::errc() && end == text.data() + text.size();
}

bool allHex(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
  });
}

/// "0100007F:1F90" (IPv4) or 32 hex digits and a port (IPv6).
bool parseEndpoint(std::string_view text, uint16_t* port) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view address = text.substr(0, colon);
  const std::string_view port_hex = text.substr(colon + 1);
  if ((address.size() != 8 && address.size() != 32) || !allHex(address)) return false;
  return port_hex.size() == 4 && allHex(port_hex) && parseNumber(port_hex, 16, port);
}

bool isHeader(std::string_view line) {
  std::string_view rest = line;
  return nextToken(rest) == "sl";
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// "socket:[" + 20 digits + "]" and room to spare; longer links are not sockets.
constexpr size_t kMaxFdLinkBytes = 64;
// Read size for the tables; rows are about 150 (IPv4) and 180 (IPv6) bytes.
constexpr size_t kTableChunkBytes = 16 * 1024;

/// Reads /proc/PID/net/tcp or tcp6 row by row until the first row that is
/// not LISTEN: the kernel walks its listening hash before the established
/// one, so what follows is connections, which can be a hundred thousand
/// rows on a busy node and are not needed here.
bool readListenRows(const std::string& path, uint32_t max_rows, TcpTable* table) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string pending;
  char buf[kTableChunkBytes];
  bool done = false;
  // Inside a "line" longer than any row: garbage, dropped up to its end
  // rather than held.
  bool skipping = false;
  while (!done) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    if (skipping) {
      const size_t nl = pending.find('\n');
      if (nl != std::string::npos) {
        skipping = false;
        start = nl + 1;
      }
    }
    if (!skipping) {
      const size_t last = pending.rfind('\n');
      if (last != std::string::npos && last >= start) {
        done = !parseListenRows(std::string_view(pending).substr(start, last + 1 - start), max_rows,
                                table);
        start = last + 1;
      }
    }
    if (skipping) {
      pending.clear();
    } else {
      pending.erase(0, start);
      if (pending.size() > kTableChunkBytes) {
        ++table->garbled;
        skipping = true;
        pending.clear();
      }
    }
  }
  close(fd);
  return true;
}

}  // namespace

std::optional<TcpSocketRow> parseTcpRow(std::string_view line) {
  std::string_view rest = line;
  const std::string_view slot = nextToken(rest);
  if (slot.size() < 2 || slot.back() != ':') return std::nullopt;
  uint32_t slot_number = 0;
  if (!parseNumber(slot.substr(0, slot.size() - 1), 10, &slot_number)) return std::nullopt;
  TcpSocketRow row;
  uint16_t remote_port = 0;
  if (!parseEndpoint(nextToken(rest), &row.local_port)) return std::nullopt;
  if (!parseEndpoint(nextToken(rest), &remote_port)) return std::nullopt;
  const std::string_view state = nextToken(rest);
  if (state.size() != 2 || !parseNumber(state, 16, &row.state)) return std::nullopt;
  // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout: checked only for
  // presence, so that the inode is the tenth field as the kernel writes it.
  for (int skipped = 0; skipped < 5; ++skipped) {
    if (nextToken(rest).empty()) return std::nullopt;
  }
  if (!parseNumber(nextToken(rest), 10, &row.inode)) return std::nullopt;
  return row;
}

bool parseListenRows(std::string_view lines, uint32_t max_rows, TcpTable* table) {
  while (!lines.empty()) {
    const size_t nl = lines.find('\n');
    const std::string_view line = lines.substr(0, nl);
    lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
    const std::optional<TcpSocketRow> row = parseTcpRow(line);
    if (!row) {
      if (!isHeader(line) && !line.empty()) ++table->garbled;
      continue;
    }
    if (row->state != kTcpListen) return false;
    if (table->rows >= max_rows) {
      table->truncated = true;
      return false;
    }
    ++table->rows;
    if (row->local_port != 0 && row->inode != 0)
      table->listening.push_back({row->local_port, row->inode});
  }
  return true;
}

std::optional<uint64_t> parseSocketLink(std::string_view link) {
  constexpr std::string_view kPrefix = "socket:[";
  if (link.size() <= kPrefix.size() + 1 || link.substr(0, kPrefix.size()) != kPrefix ||
      link.back() != ']')
    return std::nullopt;
  uint64_t inode = 0;
  if (!parseNumber(link.substr(kPrefix.size(), link.size() - kPrefix.size() - 1), 10, &inode))
    return std::nullopt;
  return inode;
}

ListenerScan listenersOf(const NetnsScan& scan, const std::string& host_proc,
                         const MetadataLimits& limits) {
  ListenerScan result;
  if (limits.max_listen_sockets_per_netns == 0) return result;
  // The tables of whichever process of the namespace can still be read; it
  // must still be in the namespace afterwards, or the pid was reused.
  TcpTable table;
  for (const NetnsProcess& process : scan.processes) {
    const std::string base = host_proc + "/" + std::to_string(process.pid);
    TcpTable attempt;
    if (!readListenRows(base + "/net/tcp", limits.max_listen_sockets_per_netns, &attempt)) continue;
    readListenRows(base + "/net/tcp6", limits.max_listen_sockets_per_netns, &attempt);
    if (readNetnsInode(base + "/ns/net") != scan.netns_inode) continue;
    table = std::move(attempt);
    break;
  }
  result.sockets_read = table.rows;
  result.garbled_rows = table.garbled;
  result.truncated = table.truncated;
  if (table.listening.empty()) return result;

  std::unordered_map<uint64_t, uint16_t> port_of_inode;
  std::map<uint16_t, const NetnsProcess*> owner;
  for (const ListenSocket& socket : table.listening) {
    port_of_inode.emplace(socket.inode, socket.port);
    owner.emplace(socket.port, nullptr);
  }
  size_t owned = 0;
  // Processes are in pid order, so the first holder found is the lowest pid.
  for (const NetnsProcess& process : scan.processes) {
    if (owned == owner.size()) break;
    const std::string fd_dir = host_proc + "/" + std::to_string(process.pid) + "/fd";
    std::unique_ptr<DIR, DirCloser> dir(opendir(fd_dir.c_str()));
    if (!dir) continue;  // exited, or not ours to read
    while (const dirent* entry = readdir(dir.get())) {
      if (entry->d_name[0] == '.') continue;
      if (result.fds_examined >= limits.max_fds_per_scan) {
        result.truncated = true;
        break;
      }
      ++result.fds_examined;
      char link[kMaxFdLinkBytes];
      const ssize_t n = readlinkat(dirfd(dir.get()), entry->d_name, link, sizeof(link));
      if (n <= 0 || static_cast<size_t>(n) >= sizeof(link)) continue;
      const std::optional<uint64_t> inode =
          parseSocketLink(std::string_view(link, static_cast<size_t>(n)));
      if (!inode) continue;
      const auto socket = port_of_inode.find(*inode);
      if (socket == port_of_inode.end()) continue;
      const NetnsProcess*& holder = owner[socket->second];
      if (holder == nullptr) {
        holder = &process;
        ++owned;
      }
    }
    if (result.truncated) break;
  }
  for (const auto& [port, process] : owner) {
    if (process == nullptr) continue;
    result.listeners.push_back(
        {port, static_cast<uint32_t>(process->pid), process->comm, process->cgroup.container_id});
  }
  return result;
}

}  // namespace l7tap::metadata
