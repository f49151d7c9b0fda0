// Every bound of reassembly, with its default and why: the one place they
// are defined (the daemon's options and sweeps refer to these).
#pragma once

#include <cstdint>

namespace l7tap {

struct ReassemblyLimits {
  /// Connections tracked at once. Over it, the least recently active one is
  /// closed with reason `evicted`. 256 Ki connections is a busy node.
  uint32_t max_connections = 256 * 1024;
  /// Out-of-order bytes buffered per direction. A hole that would need more
  /// becomes a gap. 256 KiB covers a full default receive window of loss.
  uint32_t max_out_of_order_bytes = 256 * 1024;
  /// Out-of-order segments buffered per direction (bounds map nodes too).
  uint32_t max_out_of_order_segments = 256;
  /// Inactivity after which a connection is closed with reason `idle`.
  /// Zeek's tcp_inactivity_timeout is 5 minutes.
  uint64_t idle_timeout_ns = 300ull * 1000 * 1000 * 1000;
  /// How long a connection is kept after FIN/FIN or RST, to absorb the
  /// last ACKs and retransmitted FINs before its record is written.
  uint64_t close_delay_ns = 5ull * 1000 * 1000 * 1000;
  /// Longest skip handed to the capture at once: the kernel keeps one
  /// 32-bit sequence range per direction, so a longer one is cut, and the
  /// rest is copied (and counted by the parser) as usual.
  uint32_t max_skip_bytes = 1u << 30;
};

/// The defaults, for the parts outside reassembly that must agree with them
/// (the kernel flow map's sweep uses the same idle timeout).
inline constexpr ReassemblyLimits kDefaultReassemblyLimits{};

}  // namespace l7tap
