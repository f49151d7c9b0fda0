// The events that enter the pipeline: a TCP segment as the kernel program or
// the pcap source saw it, and an ordered plaintext chunk of a connection, as
// a source above TCP (uprobes on an encryption library) will deliver it.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "reassembly/connection_stats.h"
#include "tc/l7tap_abi.h"

namespace l7tap {

/// A TCP segment. `payload` borrows the captured bytes for the duration of
/// the call it is passed to. They start `payload_offset` bytes into the
/// segment's payload (bytes skipped on purpose) and hold at most the rest,
/// fewer when the window truncated the segment: everything not captured
/// reaches the parsers as a gap of known length.
struct SegmentEvent {
  uint64_t ts_ns = 0;
  uint32_t ifindex = 0;
  l7tap_flow_key key{};  ///< as seen in this packet: source -> destination
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint32_t payload_len = 0;     ///< full payload length on the wire
  uint32_t payload_offset = 0;  ///< payload bytes skipped before `payload` (capture control)
  uint16_t tcp_window = 0;
  uint8_t tcp_flags = 0;
  uint8_t capture_flags = 0;         ///< L7TAP_SEG_* (the capture's frame walk)
  std::span<const uint8_t> payload;  ///< captured bytes, size() <= payload_len
  /// The encapsulation the packet came in (innermost), borrowed for the
  /// call; nullptr when it came bare.
  const l7tap_tunnel* tunnel = nullptr;
};

/// A piece of one side's plaintext of a connection, in stream order: bytes,
/// a gap of known length, or the end of that side. No sequence numbers: the
/// source delivers each side in order (FlowTable::onPlaintext).
struct PlaintextChunk {
  enum class Kind : uint8_t { kData, kGap, kEnd };
  /// Who sent the chunk, when the source knows it (a uprobe knows whether
  /// its process connected or accepted); otherwise the ports decide, as for
  /// a TCP connection joined mid-stream.
  enum class Sender : uint8_t { kUnknown, kClient, kServer };
  uint64_t ts_ns = 0;
  uint32_t ifindex = 0;
  l7tap_flow_key key{};  ///< of the connection, as the sender sends: source -> destination
  Kind kind = Kind::kData;
  Sender sender = Sender::kUnknown;
  EndKind end = EndKind::kFin;     ///< kEnd: how the side ended
  bool midstream = false;          ///< the source joined after the stream's first byte
  uint64_t gap_length = 0;         ///< kGap: bytes that will never be seen
  std::span<const uint8_t> bytes;  ///< kData: borrowed for the call
};

/// Fills a 16-byte address field with an IPv4-mapped address.
void setIpv4(uint8_t (&dst)[16], const uint8_t* ipv4);

/// Formats a 16-byte address field: dotted quad for IPv4 keys, RFC 5952 for IPv6.
std::string formatAddress(const uint8_t* addr16, uint8_t family);
/// The same into `buf` (at least 46 bytes, INET6_ADDRSTRLEN); returns the length.
size_t formatAddress(const uint8_t* addr16, uint8_t family, char* buf);

}  // namespace l7tap
