// pcapedit: derive synthetic TCP edge cases from a recorded capture.
//
//   pcapedit IN OUT OP...
//
// Reads IN (pcap or pcapng, anything libpcap opens), applies the OPs in order to
// the list of packets, and writes OUT as a classic pcap with the same link type.
// Packets are numbered from 1 as in tshark; every OP numbers the packets of the
// list as the previous OPs left it.
//
//   drop:N | drop:N-M      remove packet N (or N..M)                       loss
//   swap:A:B               exchange packets A and B                        out of order
//   dup:N | dup:N@M        copy packet N right after itself, or after M    retransmission
//   corrupt:N:OFF:BYTE     set byte OFF of packet N's TCP payload to BYTE  conflicting overlap
//   cut:N                  keep packets N.. only                           capture starts mid-flow
//   seqshift:DELTA[:SIDE]  add DELTA (mod 2^32) to the seq of SIDE's packets and to the ack
//                          (and SACK blocks) of the other side's packets, per TCP connection.
//                          SIDE is client (default) or server; client = sender of the SYN, or
//                          of the connection's first packet                   wrap-around
//   seqwrap:SIDE:OFF       seqshift each connection of the capture by the delta that makes
//                          SIDE's sequence number wrap (pass 2^32 -> 0) at stream byte OFF
//                          (0 = first byte after the SYN); needs the SYN of SIDE
//   trim:N:LEN             cut the captured TCP payload of packet N to LEN bytes, keeping the
//                          original length (as a small snaplen would)          truncation
//   window:N:WIN           set the TCP window field of packet N to WIN         zero window
//   slice:N:OFF:LEN        keep TCP payload bytes OFF..OFF+LEN of packet N (its seq moves on
//                          by OFF, the IP lengths and checksums follow)         partial copies
//
// swap exchanges packet contents but keeps the timestamps in place, and a dup copy takes
// the timestamp of the packet it follows, so capture time never goes backwards.
// Numbers accept decimal or 0x hex; DELTA may be negative. Link types: Ethernet (with
// up to two VLAN tags), Linux cooked (SLL and SLL2), raw IP. Network: IPv4, IPv6 (with
// hop-by-hop, routing and destination options headers). The TCP checksum of every
// packet that an OP changes is recomputed when the whole IP packet was captured.
// Timestamps are written with microsecond precision.
//
// Rewrapping, for tunnels and link types a kernel at hand cannot record (issue 16):
//
//   pcapedit encap --type TYPE [--outer-src A --outer-dst B] [--id N] IN OUT
//       TYPE gre | gre-key | gretap (GRE, with key N, Ethernet payload), ipip | 6in4 | 4in6 |
//       6in6 (IP in IP; the inner and outer families must match the name), vxlan | geneve
//       (UDP 4789 / 6081, VNI N, Ethernet payload; Geneve with one 4-byte option), pppoe
//       (session N, no outer IP). A is the client side's outer address (on the packets of the
//       sender of the first SYN), B the server side's. Output link type Ethernet.
//   pcapedit relink --dlt c-hdlc|raw IN OUT      replace the link header
//   pcapedit fragment --mtu N [--reverse] IN OUT split every IP packet over N bytes (IPv4:
//       DF cleared; IPv6: a Fragment header); --reverse writes each datagram's fragments
//       last first.
//
// These need whole packets (no snap length cut) and write valid outer lengths and checksums.

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif

struct Packet {
  pcap_pkthdr hdr{};
  std::vector<uint8_t> data;
};

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// The network layer of one frame: where the IP header starts and which EtherType it has.
struct NetView {
  size_t off = 0;
  uint16_t ethertype = 0;
};

std::optional<NetView> Network(int linktype, const Packet& pk) {
  const uint8_t* d = pk.data.data();
  const size_t cap = pk.data.size();
  NetView n;
  switch (linktype) {
    case DLT_EN10MB:
      if (cap < 14) return std::nullopt;
      n.ethertype = Get16(d + 12);
      n.off = 14;
      for (int tags = 0; tags < 2 && (n.ethertype == 0x8100 || n.ethertype == 0x88a8); ++tags) {
        if (cap < n.off + 4) return std::nullopt;
        n.ethertype = Get16(d + n.off + 2);
        n.off += 4;
      }
      break;
    case DLT_LINUX_SLL:
      if (cap < 16) return std::nullopt;
      n.ethertype = Get16(d + 14);
      n.off = 16;
      break;
    case DLT_LINUX_SLL2:
      if (cap < 20) return std::nullopt;
      n.ethertype = Get16(d);
      n.off = 20;
      break;
    case DLT_C_HDLC:
      if (cap < 4) return std::nullopt;
      n.ethertype = Get16(d + 2);
      n.off = 4;
      break;
    case DLT_RAW:
#ifdef DLT_IPV4
    case DLT_IPV4:
    case DLT_IPV6:
#endif
      if (cap < 1) return std::nullopt;
      n.ethertype = (d[0] >> 4) == 6 ? 0x86dd : 0x0800;
      break;
    default:
      return std::nullopt;
  }
  if (n.ethertype != 0x0800 && n.ethertype != 0x86dd) return std::nullopt;
  return n;
}

// Where the layers of one TCP packet are; offsets into Packet::data.
struct TcpView {
  size_t ip = 0;  // start of the IP header
  bool v6 = false;
  size_t ip_end = 0;       // end of the IP packet according to its length field
  size_t tcp = 0;          // start of the TCP header
  size_t payload = 0;      // start of the TCP payload
  size_t payload_len = 0;  // original payload length (from the IP length)
  bool complete = false;   // the whole IP packet is in the captured bytes
};

// Finds the TCP header of a packet; nullopt when the packet is not (fully enough
// captured) TCP.
std::optional<TcpView> ParseTcp(int linktype, const Packet& pk) {
  const uint8_t* d = pk.data.data();
  const size_t cap = pk.data.size();
  const auto net = Network(linktype, pk);
  if (!net) return std::nullopt;
  const size_t off = net->off;
  const uint16_t ethertype = net->ethertype;
  TcpView v;
  v.ip = off;
  if (ethertype == 0x0800) {
    if (cap < off + 20 || (d[off] >> 4) != 4) return std::nullopt;
    const size_t ihl = (d[off] & 0x0f) * 4u;
    if (ihl < 20 || cap < off + ihl || d[off + 9] != 6) return std::nullopt;
    if ((Get16(d + off + 6) & 0x3fff) != 0) return std::nullopt;  // fragment
    v.ip_end = off + Get16(d + off + 2);
    v.tcp = off + ihl;
  } else if (ethertype == 0x86dd) {
    if (cap < off + 40 || (d[off] >> 4) != 6) return std::nullopt;
    v.v6 = true;
    v.ip_end = off + 40 + Get16(d + off + 4);
    uint8_t next = d[off + 6];
    size_t p = off + 40;
    while (next == 0 || next == 43 || next == 60) {
      if (cap < p + 8) return std::nullopt;
      next = d[p];
      p += (d[p + 1] + 1u) * 8u;
    }
    if (next != 6) return std::nullopt;
    v.tcp = p;
  } else {
    return std::nullopt;
  }
  if (cap < v.tcp + 20) return std::nullopt;
  const size_t thl = (d[v.tcp + 12] >> 4) * 4u;
  if (thl < 20 || cap < v.tcp + thl) return std::nullopt;
  v.payload = v.tcp + thl;
  v.payload_len = v.ip_end > v.payload ? v.ip_end - v.payload : 0;
  v.complete = cap >= v.ip_end && pk.hdr.len >= pk.hdr.caplen;
  return v;
}

uint32_t SumBytes(const uint8_t* p, size_t n, uint32_t sum) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += Get16(p + i);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1]) << 8;
  return sum;
}

// Recomputes the TCP checksum when the whole IP packet is present.
void FixChecksum(Packet& pk, const TcpView& v) {
  if (!v.complete || v.ip_end < v.tcp + 20) return;
  uint8_t* d = pk.data.data();
  const size_t tcp_len = v.ip_end - v.tcp;
  uint32_t sum = 0;
  if (v.v6) {
    sum = SumBytes(d + v.ip + 8, 32, sum);
    sum += static_cast<uint32_t>(tcp_len >> 16) + static_cast<uint32_t>(tcp_len & 0xffff);
  } else {
    sum = SumBytes(d + v.ip + 12, 8, sum);
    sum += static_cast<uint32_t>(tcp_len);
  }
  sum += 6;
  Put16(d + v.tcp + 16, 0);
  sum = SumBytes(d + v.tcp, tcp_len, sum);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  Put16(d + v.tcp + 16, static_cast<uint16_t>(~sum & 0xffff));
}

// ---- command-line parsing -------------------------------------------------------

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

long long ParseNum(std::string_view s, std::string_view what, bool allow_negative = false) {
  const std::string str(s);
  if (str.empty()) throw Error("missing " + std::string(what));
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(str.c_str(), &end, 0);
  if (errno != 0 || end == str.c_str() || *end != '\0')
    throw Error("bad " + std::string(what) + " '" + str + "'");
  if (v < 0 && !allow_negative) throw Error(std::string(what) + " must not be negative");
  return v;
}

size_t ParseIndex(std::string_view s) {
  const long long v = ParseNum(s, "packet number");
  if (v < 1) throw Error("packet numbers start at 1");
  return static_cast<size_t>(v);
}

struct Op {
  std::string text;
  std::string name;
  std::vector<long long> args;
};

Op ParseOp(const std::string& text) {
  const auto parts = Split(text, ':');
  Op op{text, std::string(parts[0]), {}};
  auto want = [&](size_t n) {
    if (parts.size() != n + 1)
      throw Error("'" + text + "': " + op.name + " takes " + std::to_string(n) +
                  " argument(s) separated by ':'");
  };
  if (op.name == "drop") {
    want(1);
    const auto range = Split(parts[1], '-');
    if (range.size() > 2) throw Error("'" + text + "': bad range");
    const size_t a = ParseIndex(range[0]);
    const size_t b = range.size() == 2 ? ParseIndex(range[1]) : a;
    if (b < a) throw Error("'" + text + "': empty range");
    op.args = {static_cast<long long>(a), static_cast<long long>(b)};
  } else if (op.name == "swap") {
    want(2);
    op.args = {static_cast<long long>(ParseIndex(parts[1])),
               static_cast<long long>(ParseIndex(parts[2]))};
  } else if (op.name == "dup") {
    want(1);
    const auto at = Split(parts[1], '@');
    if (at.size() > 2) throw Error("'" + text + "': bad dup");
    const size_t n = ParseIndex(at[0]);
    const size_t after = at.size() == 2 ? ParseIndex(at[1]) : n;
    op.args = {static_cast<long long>(n), static_cast<long long>(after)};
  } else if (op.name == "corrupt") {
    want(3);
    const long long byte = ParseNum(parts[3], "byte value");
    if (byte > 255) throw Error("'" + text + "': byte value over 255");
    op.args = {static_cast<long long>(ParseIndex(parts[1])), ParseNum(parts[2], "offset"), byte};
  } else if (op.name == "cut") {
    want(1);
    op.args = {static_cast<long long>(ParseIndex(parts[1]))};
  } else if (op.name == "seqshift" || op.name == "seqwrap") {
    const bool wrap = op.name == "seqwrap";
    if (parts.size() != 2 && parts.size() != 3)
      throw Error("'" + text + "': " + op.name +
                  (wrap ? " takes SIDE:OFF" : " takes DELTA[:SIDE]"));
    const std::string_view side_s = wrap ? parts[1] : (parts.size() == 3 ? parts[2] : "client");
    if (side_s != "client" && side_s != "server")
      throw Error("'" + text + "': side must be client or server");
    const long long side = side_s == "server" ? 1 : 0;
    const long long num = wrap ? ParseNum(parts.size() == 3 ? parts[2] : "", "offset")
                               : ParseNum(parts[1], "delta", true);
    op.args = {num, side};
  } else if (op.name == "trim") {
    want(2);
    op.args = {static_cast<long long>(ParseIndex(parts[1])), ParseNum(parts[2], "length")};
  } else if (op.name == "window") {
    want(2);
    const long long win = ParseNum(parts[2], "window");
    if (win > 0xffff) throw Error("'" + text + "': window over 65535");
    op.args = {static_cast<long long>(ParseIndex(parts[1])), win};
  } else if (op.name == "slice") {
    want(3);
    op.args = {static_cast<long long>(ParseIndex(parts[1])), ParseNum(parts[2], "offset"),
               ParseNum(parts[3], "length")};
  } else {
    throw Error("unknown operation '" + text + "'");
  }
  return op;
}

// ---- operations -------------------------------------------------------------------------

using Endpoint = std::pair<std::vector<uint8_t>, uint16_t>;  // address bytes, port

Endpoint Source(const Packet& pk, const TcpView& v) {
  const uint8_t* d = pk.data.data();
  const size_t a = v.v6 ? v.ip + 8 : v.ip + 12;
  const size_t n = v.v6 ? 16 : 4;
  return {std::vector<uint8_t>(d + a, d + a + n), Get16(d + v.tcp)};
}
Endpoint Destination(const Packet& pk, const TcpView& v) {
  const uint8_t* d = pk.data.data();
  const size_t a = v.v6 ? v.ip + 24 : v.ip + 16;
  const size_t n = v.v6 ? 16 : 4;
  return {std::vector<uint8_t>(d + a, d + a + n), Get16(d + v.tcp + 2)};
}

class Editor {
 public:
  Editor(int linktype, std::vector<Packet> packets)
      : linktype_(linktype), pk_(std::move(packets)) {}

  const std::vector<Packet>& packets() const { return pk_; }

  void Apply(const Op& op) {
    const auto& a = op.args;
    if (op.name == "drop") {
      Check(op, a[1]);
      pk_.erase(pk_.begin() + (a[0] - 1), pk_.begin() + a[1]);
    } else if (op.name == "swap") {
      Check(op, std::max(a[0], a[1]));
      // Contents move, timestamps stay in place: capture time keeps increasing.
      Packet& x = pk_[a[0] - 1];
      Packet& y = pk_[a[1] - 1];
      std::swap(x.data, y.data);
      std::swap(x.hdr.len, y.hdr.len);
      std::swap(x.hdr.caplen, y.hdr.caplen);
    } else if (op.name == "dup") {
      Check(op, std::max(a[0], a[1]));
      Packet copy = pk_[a[0] - 1];
      copy.hdr.ts = pk_[a[1] - 1].hdr.ts;  // seen at the time of the packet it follows
      pk_.insert(pk_.begin() + a[1], std::move(copy));
    } else if (op.name == "corrupt") {
      Check(op, a[0]);
      Packet& pk = pk_[a[0] - 1];
      const TcpView v = Tcp(op, pk);
      const size_t captured = pk.data.size() > v.payload ? pk.data.size() - v.payload : 0;
      const size_t have = std::min(captured, v.payload_len);
      if (static_cast<size_t>(a[1]) >= have)
        throw Error("'" + op.text + "': packet " + std::to_string(a[0]) + " has " +
                    std::to_string(have) + " captured payload bytes");
      pk.data[v.payload + a[1]] = static_cast<uint8_t>(a[2]);
      FixChecksum(pk, v);
    } else if (op.name == "cut") {
      Check(op, a[0]);
      pk_.erase(pk_.begin(), pk_.begin() + (a[0] - 1));
    } else if (op.name == "seqshift") {
      SeqShift(op, static_cast<uint32_t>(a[0]), a[1] == 1, false);
    } else if (op.name == "seqwrap") {
      SeqShift(op, static_cast<uint32_t>(a[0]), a[1] == 1, true);
    } else if (op.name == "trim") {
      Check(op, a[0]);
      Packet& pk = pk_[a[0] - 1];
      const TcpView v = Tcp(op, pk);
      const size_t captured = pk.data.size() - v.payload;
      if (static_cast<size_t>(a[1]) >= std::min(captured, v.payload_len))
        throw Error("'" + op.text + "': packet " + std::to_string(a[0]) + " has only " +
                    std::to_string(std::min(captured, v.payload_len)) + " captured payload bytes");
      pk.data.resize(v.payload + a[1]);
      pk.hdr.caplen = static_cast<bpf_u_int32>(pk.data.size());
    } else if (op.name == "window") {
      Check(op, a[0]);
      Packet& pk = pk_[a[0] - 1];
      const TcpView v = Tcp(op, pk);
      Put16(pk.data.data() + v.tcp + 14, static_cast<uint16_t>(a[1]));
      FixChecksum(pk, v);
    } else if (op.name == "slice") {
      Check(op, a[0]);
      Slice(op, pk_[a[0] - 1], static_cast<size_t>(a[1]), static_cast<size_t>(a[2]));
    }
  }

 private:
  void Check(const Op& op, long long n) const {
    if (static_cast<size_t>(n) > pk_.size())
      throw Error("'" + op.text + "': packet " + std::to_string(n) + " does not exist (" +
                  std::to_string(pk_.size()) + " packets at this point)");
  }

  TcpView Tcp(const Op& op, const Packet& pk) const {
    auto v = ParseTcp(linktype_, pk);
    if (!v) throw Error("'" + op.text + "': that packet is not a TCP packet this tool can parse");
    return *v;
  }

  // Keeps payload bytes [off, off + len) of a whole captured packet: a segment that
  // carries part of another one's bytes, as a sender crafting overlaps would send.
  void Slice(const Op& op, Packet& pk, size_t off, size_t len) const {
    const TcpView v = Tcp(op, pk);
    if (!v.complete) throw Error("'" + op.text + "': the packet was not captured whole");
    if (len == 0 || off + len > v.payload_len)
      throw Error("'" + op.text + "': the packet has " + std::to_string(v.payload_len) +
                  " payload bytes");
    uint8_t* d = pk.data.data();
    Put32(d + v.tcp + 4, Get32(d + v.tcp + 4) + static_cast<uint32_t>(off));
    pk.data.erase(pk.data.begin() + static_cast<long>(v.payload + off + len), pk.data.end());
    pk.data.erase(pk.data.begin() + static_cast<long>(v.payload),
                  pk.data.begin() + static_cast<long>(v.payload + off));
    d = pk.data.data();
    const size_t ip_len = pk.data.size() - v.ip;
    if (v.v6) {
      Put16(d + v.ip + 4, static_cast<uint16_t>(ip_len - 40));
    } else {
      Put16(d + v.ip + 2, static_cast<uint16_t>(ip_len));
      const size_t ihl = (d[v.ip] & 0x0f) * 4u;
      Put16(d + v.ip + 10, 0);
      uint32_t sum = SumBytes(d + v.ip, ihl, 0);
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      Put16(d + v.ip + 10, static_cast<uint16_t>(~sum & 0xffff));
    }
    pk.hdr.caplen = pk.hdr.len = static_cast<bpf_u_int32>(pk.data.size());
    TcpView nv = v;
    nv.ip_end = pk.data.size();
    nv.payload_len = len;
    FixChecksum(pk, nv);
  }

  // Shifts the sequence space of one side of every TCP connection. With wrap, the delta of
  // each connection is chosen so that stream byte `value` of that side sits at 2^32.
  void SeqShift(const Op& op, uint32_t value, bool server_side, bool wrap) {
    using Key = std::pair<Endpoint, Endpoint>;
    auto key = [](const Endpoint& x, const Endpoint& y) {
      return x < y ? std::make_pair(x, y) : std::make_pair(y, x);
    };
    std::map<Key, Endpoint> first_sender, syn_sender;
    std::map<Key, Endpoint> shifted;  // the endpoint whose sequence numbers move
    std::map<Key, uint32_t> delta;
    for (const Packet& pk : pk_) {
      const auto v = ParseTcp(linktype_, pk);
      if (!v) continue;
      const Endpoint src = Source(pk, *v), dst = Destination(pk, *v);
      const uint8_t flags = pk.data[v->tcp + 13];
      first_sender.try_emplace(key(src, dst), src);
      if ((flags & 0x02) && !(flags & 0x10)) syn_sender.try_emplace(key(src, dst), src);
    }
    for (const auto& [k, first] : first_sender) {
      auto it = syn_sender.find(k);
      const Endpoint& client = it != syn_sender.end() ? it->second : first;
      shifted[k] = server_side ? (client == k.first ? k.second : k.first) : client;
      delta[k] = value;
    }
    if (wrap) {
      // delta = 2^32 - (ISN + 1 + OFF), from the SYN (or SYN-ACK) the shifted side sent.
      std::set<Key> found;
      for (const Packet& pk : pk_) {
        const auto v = ParseTcp(linktype_, pk);
        if (!v || !(pk.data[v->tcp + 13] & 0x02)) continue;
        const Endpoint src = Source(pk, *v);
        const Key k = key(src, Destination(pk, *v));
        if (shifted[k] != src || found.count(k)) continue;
        found.insert(k);
        delta[k] = 0u - (Get32(pk.data.data() + v->tcp + 4) + 1u + value);
      }
      for (const auto& [k, ep] : shifted) {
        (void)ep;
        if (!found.count(k))
          throw Error("'" + op.text + "': a connection has no SYN from the " +
                      (server_side ? "server" : "client") + " side");
      }
    }
    for (Packet& pk : pk_) {
      const auto v = ParseTcp(linktype_, pk);
      if (!v) continue;
      uint8_t* d = pk.data.data();
      const Endpoint src = Source(pk, *v), dst = Destination(pk, *v);
      const Key k = key(src, dst);
      if (shifted[k] == src) {
        Put32(d + v->tcp + 4, Get32(d + v->tcp + 4) + delta[k]);
      } else {
        if (d[v->tcp + 13] & 0x10) Put32(d + v->tcp + 8, Get32(d + v->tcp + 8) + delta[k]);
        ShiftSack(pk, *v, delta[k]);
      }
      FixChecksum(pk, *v);
    }
  }

  // SACK blocks name the other side's sequence numbers.
  static void ShiftSack(Packet& pk, const TcpView& v, uint32_t delta) {
    uint8_t* d = pk.data.data();
    size_t p = v.tcp + 20;
    while (p < v.payload) {
      const uint8_t kind = d[p];
      if (kind == 0) break;
      if (kind == 1) {
        ++p;
        continue;
      }
      if (p + 1 >= v.payload || d[p + 1] < 2 || p + d[p + 1] > v.payload) break;
      const size_t len = d[p + 1];
      if (kind == 5) {
        for (size_t b = p + 2; b + 4 <= p + len; b += 4) Put32(d + b, Get32(d + b) + delta);
      }
      p += len;
    }
  }

  int linktype_;
  std::vector<Packet> pk_;
};

// ---- rewrap subcommands: encap, relink, fragment ------------------------------------------
//
// This kernel (and many CI kernels) cannot make GRE, IP-in-IP, Geneve or PPPoE tunnels, so
// their fixtures are recorded captures wrapped again here. Every outer header is valid
// (lengths, IPv4 header checksum, UDP checksum), and outer addresses follow the direction of
// each inner packet, as on a real tunnel.

// The IP datagram of a frame (without link header or Ethernet padding); throws unless the
// frame is a whole IPv4 or IPv6 packet.
std::vector<uint8_t> IpDatagram(int linktype, const Packet& pk, size_t number, NetView* net) {
  const auto n = Network(linktype, pk);
  const std::string where = "packet " + std::to_string(number);
  if (!n) throw Error(where + " is not IPv4 or IPv6 on a link type this tool reads");
  if (pk.hdr.len > pk.hdr.caplen)
    throw Error(where + " was not captured whole (snap length): cannot rewrap it");
  const uint8_t* ip = pk.data.data() + n->off;
  const size_t have = pk.data.size() - n->off;
  size_t len = 0;
  if (n->ethertype == 0x0800) {
    if (have < 20 || (ip[0] >> 4) != 4) throw Error(where + ": bad IPv4 header");
    len = Get16(ip + 2);
  } else {
    if (have < 40 || (ip[0] >> 4) != 6) throw Error(where + ": bad IPv6 header");
    len = 40u + Get16(ip + 4);
  }
  if (len > have) throw Error(where + ": IP length beyond the captured bytes");
  if (net) *net = *n;
  return {ip, ip + len};
}

uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

void SetIpv4Checksum(uint8_t* ip) {
  const size_t ihl = (ip[0] & 0x0f) * 4u;
  Put16(ip + 10, 0);
  Put16(ip + 10, Fold(SumBytes(ip, ihl, 0)));
}

struct Address {
  bool v6 = false;
  uint8_t bytes[16] = {};
};

Address ParseAddress(const std::string& s, const char* what) {
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes) == 1) return a;
  a.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes) == 1) return a;
  throw Error(std::string("bad ") + what + " address '" + s + "'");
}

// Appends an outer IP header for a payload of `payload_len` bytes; returns its offset.
size_t AppendIp(std::vector<uint8_t>& out, const Address& src, const Address& dst, uint8_t proto,
                size_t payload_len, uint16_t id) {
  const size_t at = out.size();
  if (!src.v6) {
    if (payload_len + 20 > 0xffff) throw Error("outer IPv4 packet over 65535 bytes");
    out.resize(at + 20);
    uint8_t* ip = out.data() + at;
    ip[0] = 0x45;
    Put16(ip + 2, static_cast<uint16_t>(20 + payload_len));
    Put16(ip + 4, id);
    Put16(ip + 6, 0x4000);  // DF, as Linux tunnels send with PMTU discovery on
    ip[8] = 64;
    ip[9] = proto;
    std::memcpy(ip + 12, src.bytes, 4);
    std::memcpy(ip + 16, dst.bytes, 4);
    SetIpv4Checksum(ip);
  } else {
    if (payload_len > 0xffff) throw Error("outer IPv6 payload over 65535 bytes");
    out.resize(at + 40);
    uint8_t* ip = out.data() + at;
    ip[0] = 0x60;
    Put16(ip + 4, static_cast<uint16_t>(payload_len));
    ip[6] = proto;
    ip[7] = 64;
    std::memcpy(ip + 8, src.bytes, 16);
    std::memcpy(ip + 24, dst.bytes, 16);
  }
  return at;
}

// UDP checksum over the IPv4 or IPv6 pseudo-header (RFC 768 / RFC 8200 8.1).
void SetUdpChecksum(std::vector<uint8_t>& out, size_t ip_at, size_t udp_at) {
  uint8_t* d = out.data();
  const size_t udp_len = out.size() - udp_at;
  const bool v6 = (d[ip_at] >> 4) == 6;
  uint32_t sum = v6 ? SumBytes(d + ip_at + 8, 32, 0) : SumBytes(d + ip_at + 12, 8, 0);
  sum += static_cast<uint32_t>(udp_len >> 16) + static_cast<uint32_t>(udp_len & 0xffff) + 17;
  Put16(d + udp_at + 6, 0);
  const uint16_t c = Fold(SumBytes(d + udp_at, udp_len, sum));
  Put16(d + udp_at + 6, c == 0 ? 0xffff : c);
}

enum class EncapType {
  kGre,
  kGreKey,
  kGretap,
  kIpip,
  k6in4,
  k4in6,
  k6in6,
  kVxlan,
  kGeneve,
  kPppoe
};

struct EncapOptions {
  EncapType type = EncapType::kGre;
  Address client, server;  // outer addresses: client side, server side
  uint32_t id = 42;        // GRE key, VNI, PPPoE session id
};

// A stable, direction-independent UDP source port from the inner flow, as tunnel endpoints
// pick one from a flow hash (so that ECMP keeps a flow on one path).
uint16_t FlowSourcePort(const std::vector<uint8_t>& ip) {
  const bool v6 = (ip[0] >> 4) == 6;
  const size_t alen = v6 ? 16 : 4;
  const size_t a = v6 ? 8 : 12;
  const size_t l4 = v6 ? 40 : (ip[0] & 0x0f) * 4u;
  uint32_t h = 0;
  for (size_t i = 0; i < alen; ++i) h += ip[a + i] + ip[a + alen + i];
  if (ip.size() >= l4 + 4) h += Get16(ip.data() + l4) + Get16(ip.data() + l4 + 2);
  h *= 2654435761u;
  return static_cast<uint16_t>(49152 + (h >> 18) % 16384);
}

std::vector<Packet> Encap(int linktype, const std::vector<Packet>& in, const EncapOptions& o) {
  const bool l2_payload =
      o.type == EncapType::kVxlan || o.type == EncapType::kGeneve || o.type == EncapType::kGretap;
  // The client: the sender of the first SYN without ACK, else of the first IP packet.
  std::vector<uint8_t> client_addr;
  for (size_t i = 0; i < in.size() && client_addr.empty(); ++i) {
    const auto v = ParseTcp(linktype, in[i]);
    if (v && (in[i].data[v->tcp + 13] & 0x12) == 0x02) client_addr = Source(in[i], *v).first;
  }
  uint16_t ids[2] = {0x1000, 0x8000};  // outer IPv4 ids, per direction
  std::vector<Packet> out;
  for (size_t i = 0; i < in.size(); ++i) {
    const Packet& pk = in[i];
    NetView net;
    const std::vector<uint8_t> ip = IpDatagram(linktype, pk, i + 1, &net);
    const bool inner_v6 = net.ethertype == 0x86dd;
    const std::vector<uint8_t> src(ip.begin() + (inner_v6 ? 8 : 12),
                                   ip.begin() + (inner_v6 ? 24 : 16));
    if (client_addr.empty()) client_addr = src;
    const bool from_client = src == client_addr;
    const Address& osrc = from_client ? o.client : o.server;
    const Address& odst = from_client ? o.server : o.client;

    // Link addresses: the frame's own on Ethernet, else fixed ones per direction.
    uint8_t macs[12] = {2, 0, 0, 0x77, 0, 2, 2, 0, 0, 0x77, 0, 1};
    if (!from_client) std::swap_ranges(macs, macs + 6, macs + 6);
    if (linktype == DLT_EN10MB) std::memcpy(macs, pk.data.data(), 12);
    // The inner Ethernet frame of the L2 tunnels: the frame itself, VLAN tags dropped.
    std::vector<uint8_t> inner;
    if (l2_payload) {
      inner.assign(macs, macs + 12);
      inner.push_back(static_cast<uint8_t>(net.ethertype >> 8));
      inner.push_back(static_cast<uint8_t>(net.ethertype));
    }
    inner.insert(inner.end(), ip.begin(), ip.end());

    Packet p;
    p.hdr = pk.hdr;
    std::vector<uint8_t>& f = p.data;
    f.assign(macs, macs + 12);
    if (o.type == EncapType::kPppoe) {
      // RFC 2516 session stage: ver/type 0x11, code 0, session id, length; then PPP.
      f.insert(f.end(), {0x88, 0x64, 0x11, 0x00});
      f.push_back(static_cast<uint8_t>(o.id >> 8));
      f.push_back(static_cast<uint8_t>(o.id));
      const size_t ppp_len = 2 + inner.size();
      f.push_back(static_cast<uint8_t>(ppp_len >> 8));
      f.push_back(static_cast<uint8_t>(ppp_len));
      f.push_back(0x00);
      f.push_back(inner_v6 ? 0x57 : 0x21);
      f.insert(f.end(), inner.begin(), inner.end());
    } else {
      f.push_back(osrc.v6 ? 0x86 : 0x08);
      f.push_back(osrc.v6 ? 0xdd : 0x00);
      const uint16_t id = ids[from_client ? 0 : 1]++;
      switch (o.type) {
        case EncapType::kGre:
        case EncapType::kGreKey:
        case EncapType::kGretap: {
          // RFC 2890: version 0, K bit when a key is present; protocol = payload EtherType.
          const bool key = o.type != EncapType::kGre;
          const size_t gre_len = key ? 8 : 4;
          AppendIp(f, osrc, odst, 47, gre_len + inner.size(), id);
          const uint16_t proto = l2_payload ? 0x6558 : net.ethertype;
          f.insert(f.end(), {static_cast<uint8_t>(key ? 0x20 : 0x00), 0x00,
                             static_cast<uint8_t>(proto >> 8), static_cast<uint8_t>(proto)});
          if (key) {
            f.resize(f.size() + 4);
            Put32(f.data() + f.size() - 4, o.id);
          }
          break;
        }
        case EncapType::kIpip:
        case EncapType::k6in4:
        case EncapType::k4in6:
        case EncapType::k6in6: {
          const bool want_inner_v6 = o.type == EncapType::k6in4 || o.type == EncapType::k6in6;
          const bool want_outer_v6 = o.type == EncapType::k4in6 || o.type == EncapType::k6in6;
          if (inner_v6 != want_inner_v6)
            throw Error("packet " + std::to_string(i + 1) + " is IPv" + (inner_v6 ? "6" : "4") +
                        ": this tunnel type carries IPv" + (want_inner_v6 ? "6" : "4"));
          if (osrc.v6 != want_outer_v6)
            throw Error(std::string("this tunnel type needs IPv") + (want_outer_v6 ? "6" : "4") +
                        " outer addresses");
          AppendIp(f, osrc, odst, inner_v6 ? 41 : 4, inner.size(), id);
          break;
        }
        case EncapType::kVxlan:
        case EncapType::kGeneve: {
          const bool geneve = o.type == EncapType::kGeneve;
          // Geneve (RFC 8926) with one 4-byte option in the experimental class 0xffff, so that
          // a decoder must skip options by their length.
          static const uint8_t kOption[8] = {0xff, 0xff, 0x01, 0x01, 'l', '7', 'f', 'x'};
          const size_t tun_len = geneve ? 8 + sizeof kOption : 8;
          const size_t ip_at = AppendIp(f, osrc, odst, 17, 8 + tun_len + inner.size(), id);
          const size_t udp_at = f.size();
          f.resize(udp_at + 8 + tun_len);
          uint8_t* u = f.data() + udp_at;
          Put16(u, FlowSourcePort(ip));
          Put16(u + 2, geneve ? 6081 : 4789);
          Put16(u + 4, static_cast<uint16_t>(8 + tun_len + inner.size()));
          uint8_t* t = u + 8;
          if (geneve) {
            t[0] = sizeof kOption / 4;  // version 0, option length in 4-byte words
            Put16(t + 2, 0x6558);
            std::memcpy(t + 8, kOption, sizeof kOption);
          } else {
            t[0] = 0x08;  // I flag: the VNI is valid
          }
          Put32(t + 4, o.id << 8);
          f.insert(f.end(), inner.begin(), inner.end());
          SetUdpChecksum(f, ip_at, udp_at);
          break;
        }
        case EncapType::kPppoe:
          break;
      }
      if (o.type != EncapType::kVxlan && o.type != EncapType::kGeneve)
        f.insert(f.end(), inner.begin(), inner.end());
    }
    p.hdr.caplen = p.hdr.len = static_cast<bpf_u_int32>(f.size());
    out.push_back(std::move(p));
  }
  return out;
}

// Replaces each frame's link header with the one of `to` (the IP datagram stays).
std::vector<Packet> Relink(int linktype, const std::vector<Packet>& in, int to) {
  std::vector<Packet> out;
  for (size_t i = 0; i < in.size(); ++i) {
    NetView net;
    const std::vector<uint8_t> ip = IpDatagram(linktype, in[i], i + 1, &net);
    Packet p;
    p.hdr = in[i].hdr;
    if (to == DLT_C_HDLC) {
      // Cisco HDLC: address 0x0f (unicast), control 0, then the EtherType.
      p.data = {0x0f, 0x00, static_cast<uint8_t>(net.ethertype >> 8),
                static_cast<uint8_t>(net.ethertype)};
    }
    p.data.insert(p.data.end(), ip.begin(), ip.end());
    p.hdr.caplen = p.hdr.len = static_cast<bpf_u_int32>(p.data.size());
    out.push_back(std::move(p));
  }
  return out;
}

// Splits every IP packet longer than `mtu` into fragments of at most `mtu` bytes (RFC 791;
// RFC 8200 4.5), as a router (IPv4) or the sending host (IPv6) would. The link header is
// copied to every fragment. IPv4's DF bit is cleared; IPv6 gets a Fragment header after
// the unfragmentable part (hop-by-hop and routing headers). With `reverse` the fragments
// of each datagram are written last first.
std::vector<Packet> Fragment(int linktype, const std::vector<Packet>& in, size_t mtu,
                             bool reverse) {
  std::vector<Packet> out;
  uint32_t v6_id = 0x5a000001;
  uint16_t v4_id = 0x4000;
  for (size_t i = 0; i < in.size(); ++i) {
    const auto n = Network(linktype, in[i]);
    if (!n) {
      out.push_back(in[i]);
      continue;
    }
    NetView net;
    const std::vector<uint8_t> ip = IpDatagram(linktype, in[i], i + 1, &net);
    if (ip.size() <= mtu) {
      out.push_back(in[i]);
      continue;
    }
    const std::vector<uint8_t> link(in[i].data.begin(), in[i].data.begin() + net.off);
    std::vector<std::vector<uint8_t>> frags;
    if (net.ethertype == 0x0800) {
      const size_t ihl = (ip[0] & 0x0f) * 4u;
      if (ihl != 20)
        throw Error("packet " + std::to_string(i + 1) +
                    " has IPv4 options: fragmenting them is not supported");
      if (Get16(ip.data() + 6) & 0x3fff)
        throw Error("packet " + std::to_string(i + 1) + " is a fragment already");
      const size_t chunk = (mtu - ihl) / 8 * 8;
      if (chunk == 0) throw Error("MTU too small");
      uint16_t id = Get16(ip.data() + 4);
      if (id == 0) id = v4_id++;  // Linux sends DF packets with id 0; a fragment needs one
      for (size_t off = ihl; off < ip.size(); off += chunk) {
        const size_t len = std::min(chunk, ip.size() - off);
        std::vector<uint8_t> f(ip.begin(), ip.begin() + ihl);
        f.insert(f.end(), ip.begin() + off, ip.begin() + off + len);
        Put16(f.data() + 2, static_cast<uint16_t>(f.size()));
        Put16(f.data() + 4, id);
        const bool more = off + len < ip.size();
        Put16(f.data() + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | (off - ihl) / 8));
        SetIpv4Checksum(f.data());
        frags.push_back(std::move(f));
      }
    } else {
      // Unfragmentable part: the base header, hop-by-hop and routing headers (and
      // destination options placed before a routing header).
      size_t unfrag = 40;
      size_t next_at = 6;  // where the "next header" byte of the last unfragmentable header is
      uint8_t next = ip[6];
      while (next == 0 || next == 43 || next == 60) {
        if (ip.size() < unfrag + 8)
          throw Error("packet " + std::to_string(i + 1) + ": bad IPv6 extension header");
        const size_t len = (ip[unfrag + 1] + 1u) * 8u;
        if (next == 60 && (ip.size() < unfrag + len + 1 || ip[unfrag] != 43)) break;
        next_at = unfrag;
        next = ip[unfrag];
        unfrag += len;
      }
      if (next == 44) throw Error("packet " + std::to_string(i + 1) + " is a fragment already");
      if (mtu < unfrag + 16) throw Error("MTU too small");
      const size_t chunk = (mtu - unfrag - 8) / 8 * 8;
      const uint32_t id = v6_id++;
      for (size_t off = unfrag; off < ip.size(); off += chunk) {
        const size_t len = std::min(chunk, ip.size() - off);
        std::vector<uint8_t> f(ip.begin(), ip.begin() + unfrag);
        f[next_at] = 44;
        const bool more = off + len < ip.size();
        const uint16_t offword = static_cast<uint16_t>((off - unfrag) | (more ? 1 : 0));
        f.insert(f.end(), {next, 0, static_cast<uint8_t>(offword >> 8),
                           static_cast<uint8_t>(offword), 0, 0, 0, 0});
        Put32(f.data() + unfrag + 4, id);
        f.insert(f.end(), ip.begin() + off, ip.begin() + off + len);
        Put16(f.data() + 4, static_cast<uint16_t>(f.size() - 40));
        frags.push_back(std::move(f));
      }
    }
    if (reverse) std::reverse(frags.begin(), frags.end());
    for (const auto& f : frags) {
      Packet p;
      p.hdr = in[i].hdr;
      p.data = link;
      p.data.insert(p.data.end(), f.begin(), f.end());
      p.hdr.caplen = p.hdr.len = static_cast<bpf_u_int32>(p.data.size());
      out.push_back(std::move(p));
    }
  }
  return out;
}

void Usage() {
  std::fputs(
      "usage: pcapedit IN OUT OP...\n"
      "  drop:N | drop:N-M     remove packet(s)\n"
      "  swap:A:B              exchange two packets\n"
      "  dup:N | dup:N@M       copy packet N after itself / after packet M\n"
      "  corrupt:N:OFF:BYTE    set TCP payload byte OFF of packet N to BYTE\n"
      "  slice:N:OFF:LEN       keep TCP payload bytes OFF..OFF+LEN of packet N\n"
      "  cut:N                 keep packets from N on\n"
      "  seqshift:DELTA[:SIDE] add DELTA to SIDE's seq and the other side's ack (mod 2^32);\n"
      "                        SIDE = client (default) or server\n"
      "  seqwrap:SIDE:OFF      seqshift so that SIDE's sequence wraps at stream byte OFF\n"
      "  trim:N:LEN            truncate captured TCP payload of packet N to LEN bytes\n"
      "Packets are numbered from 1 (as in tshark), against the list left by earlier OPs.\n"
      "\n"
      "usage: pcapedit encap --type TYPE [--outer-src A --outer-dst B] [--id N] IN OUT\n"
      "  TYPE: gre, gre-key, gretap, ipip, 6in4, 4in6, 6in6, vxlan, geneve, pppoe\n"
      "  A is the client side's outer address, B the server side's (not for pppoe);\n"
      "  N: GRE key (gre-key, gretap), VNI (vxlan, geneve), PPPoE session id; default 42\n"
      "usage: pcapedit relink --dlt c-hdlc|raw IN OUT\n"
      "usage: pcapedit fragment --mtu N [--reverse] IN OUT\n",
      stderr);
}

struct Capture {
  int linktype = 0;
  int snaplen = 0;
  std::vector<Packet> packets;
};

Capture Read(const char* path) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* in = pcap_open_offline(path, err);
  if (in == nullptr) throw Error(std::string("cannot read ") + path + ": " + err);
  Capture c;
  c.linktype = pcap_datalink(in);
  c.snaplen = pcap_snapshot(in);
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(in, &hdr, &data)) == 1) {
    Packet pk;
    pk.hdr = *hdr;
    pk.data.assign(data, data + hdr->caplen);
    c.packets.push_back(std::move(pk));
  }
  if (rc == PCAP_ERROR) {
    const std::string msg = pcap_geterr(in);
    pcap_close(in);
    throw Error(std::string("error reading ") + path + ": " + msg);
  }
  pcap_close(in);
  return c;
}

void Write(const char* path, int linktype, int snaplen, const std::vector<Packet>& packets) {
  pcap_t* dead = pcap_open_dead(linktype, snaplen > 0 ? snaplen : 262144);
  if (dead == nullptr) throw Error("pcap_open_dead failed");
  pcap_dumper_t* out = pcap_dump_open(dead, path);
  if (out == nullptr) {
    const std::string msg = pcap_geterr(dead);
    pcap_close(dead);
    throw Error(std::string("cannot write ") + path + ": " + msg);
  }
  for (const Packet& pk : packets) {
    pcap_pkthdr h = pk.hdr;
    h.caplen = static_cast<bpf_u_int32>(pk.data.size());
    if (h.len < h.caplen) h.len = h.caplen;
    pcap_dump(reinterpret_cast<u_char*>(out), &h, pk.data.data());
  }
  const bool flush_ok = pcap_dump_flush(out) == 0;
  pcap_dump_close(out);
  pcap_close(dead);
  if (!flush_ok) throw Error(std::string("error writing ") + path);
}

// encap / relink / fragment: options first, then IN OUT.
int Rewrap(int argc, char** argv) {
  const std::string cmd = argv[1];
  std::map<std::string, std::string> opt;
  std::set<std::string> flags;
  std::vector<const char*> files;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reverse") {
      flags.insert(a);
    } else if (a.rfind("--", 0) == 0) {
      if (i + 1 >= argc) throw Error(a + " needs a value");
      opt[a] = argv[++i];
    } else {
      files.push_back(argv[i]);
    }
  }
  if (files.size() != 2) throw Error(cmd + ": needs IN and OUT");
  auto take = [&](const char* name) -> std::optional<std::string> {
    auto it = opt.find(name);
    if (it == opt.end()) return std::nullopt;
    std::string v = it->second;
    opt.erase(it);
    return v;
  };
  const Capture in = Read(files[0]);
  std::vector<Packet> out;
  int linktype = in.linktype;
  if (cmd == "encap") {
    static const std::map<std::string, EncapType> kTypes = {
        {"gre", EncapType::kGre},       {"gre-key", EncapType::kGreKey},
        {"gretap", EncapType::kGretap}, {"ipip", EncapType::kIpip},
        {"6in4", EncapType::k6in4},     {"4in6", EncapType::k4in6},
        {"6in6", EncapType::k6in6},     {"vxlan", EncapType::kVxlan},
        {"geneve", EncapType::kGeneve}, {"pppoe", EncapType::kPppoe}};
    const auto type = take("--type");
    if (!type || !kTypes.count(*type)) throw Error("encap: --type must be one of those listed");
    EncapOptions o;
    o.type = kTypes.at(*type);
    if (const auto id = take("--id")) {
      const long long v = ParseNum(*id, "id");
      if (v > 0xffffffffLL || (o.type == EncapType::kPppoe && v > 0xffff) ||
          ((o.type == EncapType::kVxlan || o.type == EncapType::kGeneve) && v > 0xffffff))
        throw Error("encap: --id too large for this tunnel type");
      o.id = static_cast<uint32_t>(v);
    }
    const auto src = take("--outer-src"), dst = take("--outer-dst");
    if (o.type != EncapType::kPppoe) {
      if (!src || !dst) throw Error("encap: --outer-src and --outer-dst are needed");
      o.client = ParseAddress(*src, "--outer-src");
      o.server = ParseAddress(*dst, "--outer-dst");
      if (o.client.v6 != o.server.v6) throw Error("encap: outer addresses of one family");
    } else if (src || dst) {
      throw Error("encap: pppoe has no outer IP addresses");
    }
    out = Encap(in.linktype, in.packets, o);
    linktype = DLT_EN10MB;
  } else if (cmd == "relink") {
    const auto dlt = take("--dlt");
    if (dlt == "c-hdlc") {
      linktype = DLT_C_HDLC;
    } else if (dlt == "raw") {
      linktype = DLT_RAW;
    } else {
      throw Error("relink: --dlt must be c-hdlc or raw");
    }
    out = Relink(in.linktype, in.packets, linktype);
  } else {
    const auto mtu = take("--mtu");
    if (!mtu) throw Error("fragment: --mtu is needed");
    const long long m = ParseNum(*mtu, "MTU");
    if (m < 68 || m > 65535) throw Error("fragment: MTU must be 68..65535");
    out = Fragment(in.linktype, in.packets, static_cast<size_t>(m), flags.count("--reverse") > 0);
  }
  if (!opt.empty()) throw Error(cmd + ": unknown option " + opt.begin()->first);
  Write(files[1], linktype, in.snaplen, out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2) {
    const std::string_view cmd = argv[1];
    if (cmd == "encap" || cmd == "relink" || cmd == "fragment") {
      try {
        return Rewrap(argc, argv);
      } catch (const Error& e) {
        std::fprintf(stderr, "pcapedit: %s\n", e.what());
        return 1;
      }
    }
  }
  if (argc < 4) {
    Usage();
    return 2;
  }
  try {
    std::vector<Op> ops;
    for (int i = 3; i < argc; ++i) ops.push_back(ParseOp(argv[i]));
    Capture in = Read(argv[1]);
    const int linktype = in.linktype;
    switch (linktype) {
      case DLT_EN10MB:
      case DLT_LINUX_SLL:
      case DLT_LINUX_SLL2:
      case DLT_RAW:
#ifdef DLT_IPV4
      case DLT_IPV4:
      case DLT_IPV6:
#endif
        break;
      default:
        throw Error(std::string("unsupported link type ") +
                    (pcap_datalink_val_to_name(linktype) ? pcap_datalink_val_to_name(linktype)
                                                         : std::to_string(linktype)));
    }
    Editor ed(linktype, std::move(in.packets));
    for (const Op& op : ops) ed.Apply(op);
    Write(argv[2], linktype, in.snaplen, ed.packets());
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "pcapedit: %s\n", e.what());
    return 1;
  }
}
