#include "daemon/packet_decoder.h"

#include <pcap/dlt.h>

#include <algorithm>
#include <cstring>

namespace l7tap {

namespace {

// The captured bytes of one frame, for the shared parser's loader.
struct Frame {
  const uint8_t* data;
  uint32_t size;
};

}  // namespace

}  // namespace l7tap

// The shared parser's byte loader: a bounds-checked copy from the captured
// frame. A load past the captured bytes fails: the header is cut.
static __always_inline long l7tap_env_load(void* ctx, const int, __u32 off, void* to, __u32 len) {
  const auto* f = static_cast<const l7tap::Frame*>(ctx);
  if (off > f->size || len > f->size - off) return -1;
  std::memcpy(to, f->data + off, len);
  return 0;
}

#include "tc/packet_parse.h"

namespace l7tap {

static_assert(static_cast<int>(DecodeResult::kSegment) == L7TAP_PARSE_TCP &&
              static_cast<int>(DecodeResult::kNotIp) == L7TAP_PARSE_NOT_IP &&
              static_cast<int>(DecodeResult::kNotTcp) == L7TAP_PARSE_NOT_TCP &&
              static_cast<int>(DecodeResult::kFragment) == L7TAP_PARSE_FRAGMENT &&
              static_cast<int>(DecodeResult::kTruncatedHeader) == L7TAP_PARSE_TRUNCATED &&
              static_cast<int>(DecodeResult::kMalformed) == L7TAP_PARSE_MALFORMED);

const char* toString(DecodeResult r) {
  switch (r) {
    case DecodeResult::kSegment:
      return "tcp segment";
    case DecodeResult::kNotIp:
      return "not IP";
    case DecodeResult::kNotTcp:
      return "not TCP";
    case DecodeResult::kFragment:
      return "IP fragment";
    case DecodeResult::kTruncatedHeader:
      return "header cut by the capture";
    case DecodeResult::kMalformed:
      return "malformed";
  }
  return "unknown";
}

bool PacketDecoder::supports(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
    case DLT_NFLOG:
    case DLT_C_HDLC:
      return true;
    default:
      return false;
  }
}

DecodeResult PacketDecoder::decode(std::span<const uint8_t> frame, SegmentEvent& out,
                                   uint32_t wire_len) const {
  l7tap_packet pkt{};
  const DecodeResult result = parse(frame, wire_len, pkt);
  if (result != DecodeResult::kSegment) return result;
  out.key = pkt.key;
  out.seq = pkt.seq;
  out.ack = pkt.ack;
  out.tcp_flags = pkt.flags;
  out.tcp_window = pkt.window;
  out.payload_len = pkt.payload_len;
  out.payload_offset = 0;
  out.capture_flags = 0;
  // The capture may hold fewer bytes than the payload (snap length).
  out.payload = frame.subspan(pkt.payload_off,
                              std::min<size_t>(frame.size() - pkt.payload_off, pkt.payload_len));
  out.tunnel = nullptr;  // the packet is gone: parse() keeps it
  return DecodeResult::kSegment;
}

namespace {

// Linux NFLOG (DLT_NFLOG, libpcap's pcap/nflog.h): a 4-byte header (address
// family, version 0, resource id in network order), then TLVs whose length
// and type are in the capturing host's order, length counting the 4-byte
// TLV header, each padded to 4 bytes. NFULA_PAYLOAD (9) holds the IP packet.
constexpr uint16_t kNflogPayload = 9;
constexpr uint16_t kNflogTypeMask = 0x7fff;  // the top bits are netlink's flags

// The offset and length of the NFLOG payload TLV's value, or the result.
int nflogPayload(std::span<const uint8_t> frame, uint32_t& off, uint32_t& size) {
  if (frame.size() < 4) return L7TAP_PARSE_TRUNCATED;
  if (frame[1] != 0) return L7TAP_PARSE_MALFORMED;  // version
  size_t at = 4;
  // Each TLV is at least 4 bytes long: the walk ends within the frame.
  while (at + 4 <= frame.size()) {
    uint16_t len, type;
    std::memcpy(&len, &frame[at], 2);
    std::memcpy(&type, &frame[at + 2], 2);
    if (len < 4) return L7TAP_PARSE_MALFORMED;
    if ((type & kNflogTypeMask) == kNflogPayload) {
      off = static_cast<uint32_t>(at + 4);
      size = len - 4u;
      return L7TAP_PARSE_TCP;
    }
    at += (len + 3u) & ~3u;
  }
  // No payload TLV among those captured: cut by the snap length, or none.
  return at < frame.size() ? L7TAP_PARSE_TRUNCATED : L7TAP_PARSE_NOT_IP;
}

}  // namespace

DecodeResult PacketDecoder::parse(std::span<const uint8_t> frame, uint32_t wire_len,
                                  l7tap_packet& pkt) const {
  Frame f{frame.data(), static_cast<uint32_t>(frame.size())};
  uint32_t len = std::max(wire_len, f.size);
  // The link layer is replay's own; the shared parser takes over from the
  // EtherType (from the Ethernet header for Ethernet, as in the kernel).
  auto from = [&](uint32_t type_at, uint32_t header_len) {
    if (f.size < header_len) return static_cast<int>(L7TAP_PARSE_TRUNCATED);
    const auto type = static_cast<uint16_t>(frame[type_at] << 8 | frame[type_at + 1]);
    return l7tap_parse_from(&f, 0, header_len, type, len, f.size, 0, &pkt);
  };
  // Raw IP (after a loopback header of `header_len` bytes): the version
  // stands for the EtherType.
  auto raw = [&](uint32_t header_len) {
    if (f.size <= header_len) return static_cast<int>(L7TAP_PARSE_TRUNCATED);
    const int version = frame[header_len] >> 4;
    if (version != 4 && version != 6) return static_cast<int>(L7TAP_PARSE_NOT_IP);
    return l7tap_parse_from(&f, 0, header_len, version == 4 ? ETH_P_IP : ETH_P_IPV6, len, f.size, 0,
                            &pkt);
  };
  int result;
  switch (dlt_) {
    case DLT_EN10MB:
      result = l7tap_parse_eth(&f, 0, len, f.size, 0, &pkt);
      break;
    case DLT_LINUX_SLL:
      result = from(14, 16);
      break;
    case DLT_LINUX_SLL2:
      result = from(0, 20);
      break;
    case DLT_NFLOG: {
      uint32_t at = 0, size = 0;
      result = nflogPayload(frame, at, size);
      if (result != L7TAP_PARSE_TCP) break;
      // The packet ends with its TLV (padding follows); one cut by the snap
      // length says so in the TLV's length.
      if (size < f.size - at) f.size = at + size;
      len = at + size;
      result = raw(at);
      break;
    }
    case DLT_C_HDLC:
      // Address, control, then an EtherType.
      result = from(2, 4);
      break;
    case DLT_NULL:
    case DLT_LOOP:
      // A 4-byte address family, host order for DLT_NULL (any host), network
      // order for DLT_LOOP. AF_INET is 2 everywhere; AF_INET6 varies by OS.
      result = raw(4);
      break;
    default:
      result = raw(0);
      break;
  }
  return static_cast<DecodeResult>(result);
}

DecodeResult PacketDecoder::parseDatagram(std::span<const uint8_t> ip, uint32_t wire_len,
                                          l7tap_packet& pkt) const {
  Frame f{ip.data(), static_cast<uint32_t>(ip.size())};
  if (f.size == 0) return DecodeResult::kTruncatedHeader;
  const int version = ip[0] >> 4;
  if (version != 4 && version != 6) return DecodeResult::kNotIp;
  return static_cast<DecodeResult>(l7tap_parse_from(&f, 0, 0, version == 4 ? ETH_P_IP : ETH_P_IPV6,
                                                    std::max(wire_len, f.size), f.size, 0, &pkt));
}

}  // namespace l7tap
