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
  size_t off = 0;
  uint16_t ethertype = 0;
  switch (linktype) {
    case DLT_EN10MB:
      if (cap < 14) return std::nullopt;
      ethertype = Get16(d + 12);
      off = 14;
      for (int tags = 0; tags < 2 && (ethertype == 0x8100 || ethertype == 0x88a8); ++tags) {
        if (cap < off + 4) return std::nullopt;
        ethertype = Get16(d + off + 2);
        off += 4;
      }
      break;
    case DLT_LINUX_SLL:
      if (cap < 16) return std::nullopt;
      ethertype = Get16(d + 14);
      off = 16;
      break;
    case DLT_LINUX_SLL2:
      if (cap < 20) return std::nullopt;
      ethertype = Get16(d);
      off = 20;
      break;
    case DLT_RAW:
#ifdef DLT_IPV4
    case DLT_IPV4:
    case DLT_IPV6:
#endif
      if (cap < 1) return std::nullopt;
      ethertype = (d[0] >> 4) == 6 ? 0x86dd : 0x0800;
      break;
    default:
      return std::nullopt;
  }
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
      "Packets are numbered from 1 (as in tshark), against the list left by earlier OPs.\n",
      stderr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    Usage();
    return 2;
  }
  try {
    std::vector<Op> ops;
    for (int i = 3; i < argc; ++i) ops.push_back(ParseOp(argv[i]));

    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* in = pcap_open_offline(argv[1], err);
    if (in == nullptr) throw Error(std::string("cannot read ") + argv[1] + ": " + err);
    const int linktype = pcap_datalink(in);
    const int snaplen = pcap_snapshot(in);
    std::vector<Packet> packets;
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    int rc = 0;
    while ((rc = pcap_next_ex(in, &hdr, &data)) == 1) {
      Packet pk;
      pk.hdr = *hdr;
      pk.data.assign(data, data + hdr->caplen);
      packets.push_back(std::move(pk));
    }
    if (rc == PCAP_ERROR) {
      const std::string msg = pcap_geterr(in);
      pcap_close(in);
      throw Error(std::string("error reading ") + argv[1] + ": " + msg);
    }
    pcap_close(in);

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

    Editor ed(linktype, std::move(packets));
    for (const Op& op : ops) ed.Apply(op);

    pcap_t* dead = pcap_open_dead(linktype, snaplen > 0 ? snaplen : 262144);
    if (dead == nullptr) throw Error("pcap_open_dead failed");
    pcap_dumper_t* out = pcap_dump_open(dead, argv[2]);
    if (out == nullptr) {
      const std::string msg = pcap_geterr(dead);
      pcap_close(dead);
      throw Error(std::string("cannot write ") + argv[2] + ": " + msg);
    }
    for (const Packet& pk : ed.packets()) {
      pcap_pkthdr h = pk.hdr;
      h.caplen = static_cast<bpf_u_int32>(pk.data.size());
      if (h.len < h.caplen) h.len = h.caplen;
      pcap_dump(reinterpret_cast<u_char*>(out), &h, pk.data.data());
    }
    const bool flush_ok = pcap_dump_flush(out) == 0;
    pcap_dump_close(out);
    pcap_close(dead);
    if (!flush_ok) throw Error(std::string("error writing ") + argv[2]);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "pcapedit: %s\n", e.what());
    return 1;
  }
}
