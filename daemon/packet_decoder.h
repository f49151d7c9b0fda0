// Link layer to TCP segment: the part of the pcap source that knows headers.
#pragma once

#include <cstdint>
#include <span>

#include "reassembly/segment.h"
#include "tc/packet.h"

namespace l7tap {

/// Why a packet did not become a segment; each is counted in the summary.
enum class DecodeResult : uint8_t {
  kSegment,          ///< `out` holds a TCP segment
  kNotIp,            ///< ARP, LLDP, ...
  kNotTcp,           ///< UDP, ICMP, ...
  kFragment,         ///< IPv4 or IPv6 fragment: counted, not reassembled
  kTruncatedHeader,  ///< the capture cut a header short
  kMalformed,        ///< lengths or versions that make no sense
};
constexpr int kDecodeResultCount = 6;
const char* toString(DecodeResult r);

/// Decodes frames of one pcap link type (a DLT_ value).
class PacketDecoder {
 public:
  /// False if `dlt` is not one of: Ethernet, Linux cooked v1/v2, raw IPv4/IPv6,
  /// BSD loopback (DLT_NULL, DLT_LOOP), Linux NFLOG, Cisco HDLC. Tunnels
  /// inside (VXLAN, Geneve, GRE, IP-in-IP, PPPoE) are the parser's.
  static bool supports(int dlt);
  explicit PacketDecoder(int dlt) : dlt_(dlt) {}

  /// `frame` is the captured bytes, `wire_len` the frame's length on the
  /// wire (0: the captured length). The segment's payload points into
  /// `frame`: every captured payload byte (fewer than `payload_len` when the
  /// snap length cut the frame). Everything from the EtherType on is the
  /// kernel program's own parser (tc/packet_parse.h).
  DecodeResult decode(std::span<const uint8_t> frame, SegmentEvent& out,
                      uint32_t wire_len = 0) const;
  /// The same into the kernel's packet type (payload at `out.payload_off`
  /// in `frame`), as replay's capture takes it.
  DecodeResult parse(std::span<const uint8_t> frame, uint32_t wire_len, l7tap_packet& out) const;
  /// A bare IP datagram (the version nibble says which), as IP defragmentation
  /// rebuilds it: offsets are from its start. `out.tunnel` is kept unless
  /// the datagram holds a tunnel of its own.
  DecodeResult parseDatagram(std::span<const uint8_t> ip, uint32_t wire_len,
                             l7tap_packet& out) const;

 private:
  int dlt_;
};

}  // namespace l7tap
