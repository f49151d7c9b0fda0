// l7tap_gen_capture: large captures made of real recorded bytes.
//
//   l7tap_gen_capture [--pcaps DIR] [--scale F] PRESET OUT.pcap
//
// Takes the TCP connections of recorded fixtures (pcaps/*.pcap) and replays
// them many times as new connections: a new client address and port per
// connection, new initial sequence numbers, acknowledgements (and SACK
// blocks) shifted to match, timestamps that only increase, `C` connections
// interleaved at a time by the recorded pace of each. Lengths are the
// recorded ones; IPv4 header and TCP checksums are recomputed (l7tap ignores
// them, tshark and the kernel do not).
//
// An HTTP/1 connection is cut into exchange units: a unit starts at a client
// payload packet that follows server payload (pure ACKs go with the unit
// they are in). A generated keep-alive connection is the handshake, then
// units cycled in order with sequence numbers advancing, then the recorded
// teardown (FIN/RST and what follows). An HTTP/2 connection is one unit,
// replayed whole: the HPACK dynamic tables make its middle unrepeatable.
//
// Presets (exchanges = HTTP records `l7tap replay` must write, none flagged):
//   http1-1m         1,000,000 HTTP/1.1 exchanges from http1-keepalive.pcap, 100 per
//                    connection (10,000 connections), 100 at a time
//   h2-200k          3,334 copies of h2c-many-streams.pcap (60 streams each: 200,040
//                    streams), 100 connections at a time
//   mix-1mb          100 copies of http1-large-download.pcap (1,000,000 B bodies) among
//                    1,000 keep-alive connections of 100 small exchanges, 100 at a time
//   conn-open-100k   100,000 connections, each handshake + one exchange, never closed,
//                    all within one second (all open together)
//   conn-closed-1m   1,000,000 connections, each handshake + one exchange + FIN, at
//                    about 1,000 new connections per second of capture time
//   conn-idle-1m     1,000,000 connections, each handshake + one exchange, never
//                    closed, about 100 new per second: idle expiry (300 s) removes them
// --scale F multiplies the number of connections (e.g. 0.01 for a quick file).
//
// Prints one line to standard output:
//   file=OUT packets=N bytes=N connections=N exchanges=N seconds=S server_port=P
// (bytes: captured bytes, as l7tap's summary counts them; seconds: capture time span).
//
// Only Ethernet + IPv4 fixtures are supported (all the ones the presets use).

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr uint8_t kFin = 0x01;
constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kRst = 0x04;
constexpr uint8_t kAck = 0x10;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "l7tap_gen_capture: %s\n", message.c_str());
  std::exit(1);
}

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Ones' complement sum of 16-bit big-endian words.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (; n > 1; p += 2, n -= 2) sum += get16(p);
  if (n) sum += static_cast<uint32_t>(p[0]) << 8;
  return sum;
}
uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// One recorded packet of a template connection, positions relative to the
// template's initial sequence numbers.
struct TemplatePacket {
  std::vector<uint8_t> frame;  // as captured (Ethernet)
  uint32_t orig_len = 0;
  size_t ip = 0;  // offset of the IPv4 header
  size_t tcp = 0;
  int dir = 0;          // 0 client -> server, 1 server -> client
  uint64_t gap_ns = 0;  // time since the previous packet of the connection
  uint32_t seq_rel = 0;
  uint32_t ack_rel = 0;
};

struct Unit {
  std::vector<TemplatePacket> packets;
  uint32_t start_rel[2]{};  // stream positions (relative seq) where the unit starts
  uint32_t length[2]{};     // bytes each direction sends in it
  uint64_t records = 1;     // HTTP records it yields
};

// A recorded connection cut into handshake, exchange units and teardown.
struct Template {
  std::string name;
  Unit handshake;
  std::vector<Unit> units;
  Unit teardown;
  bool repeatable = true;  // HTTP/1: units may be cycled
  uint32_t client_ip = 0, server_ip = 0;
  uint16_t server_port = 0;
  uint32_t isn[2]{};  // the recorded initial sequence numbers
};

struct ParsedPacket {
  TemplatePacket p;
  uint32_t saddr, daddr;
  uint16_t sport, dport;
  uint32_t seq, ack;
  uint8_t flags;
  uint32_t payload_len;
  uint64_t ts_ns;
};

bool parse(const uint8_t* data, uint32_t caplen, uint32_t len, uint64_t ts_ns, ParsedPacket& out) {
  size_t off = 12;
  if (caplen < 14) return false;
  uint16_t type = get16(data + off);
  off += 2;
  while ((type == 0x8100 || type == 0x88a8) && caplen >= off + 4) {
    type = get16(data + off + 2);
    off += 4;
  }
  if (type != 0x0800 || caplen < off + 20) return false;
  const uint8_t* ip = data + off;
  const size_t ihl = (ip[0] & 0x0f) * 4u;
  if ((ip[0] >> 4) != 4 || ip[9] != 6 || caplen < off + ihl + 20) return false;
  if (get16(ip + 6) & 0x3fff) return false;  // fragment
  const uint8_t* tcp = ip + ihl;
  const size_t doff = (tcp[12] >> 4) * 4u;
  const size_t ip_total = get16(ip + 2);
  if (caplen < off + ihl + doff || ip_total < ihl + doff) return false;
  out.p.frame.assign(data, data + caplen);
  out.p.orig_len = len;
  out.p.ip = off;
  out.p.tcp = off + ihl;
  out.saddr = get32(ip + 12);
  out.daddr = get32(ip + 16);
  out.sport = get16(tcp);
  out.dport = get16(tcp + 2);
  out.seq = get32(tcp + 4);
  out.ack = get32(tcp + 8);
  out.flags = tcp[13];
  out.payload_len = static_cast<uint32_t>(ip_total - ihl - doff);
  out.ts_ns = ts_ns;
  return true;
}

// Reads the one TCP connection of `path` (the first if there are several).
Template loadTemplate(const std::string& path) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* pc =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!pc) die(path + ": " + errbuf);
  if (pcap_datalink(pc) != DLT_EN10MB) die(path + ": only Ethernet captures are supported");
  std::vector<ParsedPacket> pkts;
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(pc, &h, &d) == 1) {
    ParsedPacket pp;
    if (!parse(d, h->caplen, h->len, uint64_t(h->ts.tv_sec) * 1000000000u + h->ts.tv_usec, pp))
      continue;
    if (h->caplen != h->len) die(path + ": packets must be captured whole");
    if (!pkts.empty()) {
      const ParsedPacket& f = pkts.front();
      const bool same = (pp.saddr == f.saddr && pp.sport == f.sport && pp.daddr == f.daddr &&
                         pp.dport == f.dport) ||
                        (pp.saddr == f.daddr && pp.sport == f.dport && pp.daddr == f.saddr &&
                         pp.dport == f.sport);
      if (!same) continue;
    }
    pkts.push_back(std::move(pp));
  }
  pcap_close(pc);
  if (pkts.empty() || (pkts[0].flags & (kSyn | kAck)) != kSyn)
    die(path + ": must start with the client's SYN");

  Template t;
  t.name = path;
  t.client_ip = pkts[0].saddr;
  t.server_ip = pkts[0].daddr;
  t.server_port = pkts[0].dport;
  const uint16_t client_port = pkts[0].sport;
  uint32_t isn[2] = {pkts[0].seq, 0};
  bool have_isn[2] = {true, false};
  uint32_t next_rel[2] = {1, 1};  // stream position after the highest byte seen
  enum { kHandshake, kUnits, kTeardown } phase = kHandshake;
  int last_payload_dir = -1;
  uint64_t prev_ts = pkts[0].ts_ns;
  for (ParsedPacket& pp : pkts) {
    TemplatePacket& p = pp.p;
    p.dir = (pp.saddr == t.client_ip && pp.sport == client_port) ? 0 : 1;
    if (!have_isn[p.dir]) {
      if (!(pp.flags & kSyn)) die(path + ": no SYN-ACK from the server");
      isn[p.dir] = pp.seq;
      have_isn[p.dir] = true;
    }
    p.seq_rel = pp.seq - isn[p.dir];
    p.ack_rel = (pp.flags & kAck) ? pp.ack - isn[1 - p.dir] : 0;
    p.gap_ns = pp.ts_ns - prev_ts;
    prev_ts = pp.ts_ns;
    if (pp.flags & (kFin | kRst)) phase = kTeardown;
    if (phase == kTeardown && pp.payload_len > 0)
      die(path + ": payload at or after the first FIN/RST is not supported");
    if (phase == kHandshake && pp.payload_len > 0) phase = kUnits;
    if (phase == kUnits && pp.payload_len > 0 && p.dir == 0 &&
        (last_payload_dir == 1 || t.units.empty())) {
      Unit u;
      u.start_rel[0] = next_rel[0];
      u.start_rel[1] = next_rel[1];
      t.units.push_back(std::move(u));
    }
    if (pp.payload_len > 0) last_payload_dir = p.dir;
    Unit& unit = phase == kHandshake ? t.handshake : phase == kUnits ? t.units.back() : t.teardown;
    const uint32_t end = p.seq_rel + pp.payload_len + ((pp.flags & (kSyn | kFin)) ? 1 : 0);
    if (phase != kTeardown && static_cast<int32_t>(end - next_rel[p.dir]) > 0)
      next_rel[p.dir] = end;
    unit.packets.push_back(std::move(p));
  }
  if (t.units.empty()) die(path + ": no payload");
  for (size_t i = 0; i < t.units.size(); ++i) {
    const uint32_t* next = i + 1 < t.units.size() ? t.units[i + 1].start_rel : next_rel;
    for (int d = 0; d < 2; ++d) t.units[i].length[d] = next[d] - t.units[i].start_rel[d];
  }
  t.teardown.start_rel[0] = next_rel[0];
  t.teardown.start_rel[1] = next_rel[1];
  t.isn[0] = isn[0];
  t.isn[1] = isn[1];
  return t;
}

// What one generated connection is made of.
struct ConnSpec {
  const Template* tmpl = nullptr;
  uint64_t units = 1;  // exchange units emitted, cycling from `first_unit`
  size_t first_unit = 0;
  bool teardown = true;
};

class Writer {
 public:
  explicit Writer(const std::string& path) {
    dead_ = pcap_open_dead(DLT_EN10MB, 262144);
    dumper_ = pcap_dump_open(dead_, path.c_str());
    if (!dumper_) die(path + ": " + pcap_geterr(dead_));
  }
  ~Writer() {
    pcap_dump_close(dumper_);
    pcap_close(dead_);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// Writes template packet `p` as a packet of a new connection whose client
  /// is `client_ip`:`client_port`, whose initial sequence numbers are `isn`
  /// and whose stream positions are the recorded ones plus `delta`.
  void write(const Template& t, const TemplatePacket& p, uint64_t ts_ns, uint32_t client_ip,
             uint16_t client_port, const uint32_t isn[2], const int64_t delta[2]) {
    buf_.assign(p.frame.begin(), p.frame.end());
    uint8_t* ip = buf_.data() + p.ip;
    uint8_t* tcp = buf_.data() + p.tcp;
    const size_t ihl = (ip[0] & 0x0f) * 4u;
    const size_t tcp_len = get16(ip + 2) - ihl;
    put32(ip + (p.dir == 0 ? 12 : 16), client_ip);
    put16(tcp + (p.dir == 0 ? 0 : 2), client_port);
    const int d = p.dir, o = 1 - p.dir;
    put32(tcp + 4, isn[d] + static_cast<uint32_t>(p.seq_rel + delta[d]));
    // Acknowledgement and SACK blocks speak of the other direction's stream.
    const uint32_t ack_shift = isn[o] + static_cast<uint32_t>(delta[o]) - t.isn[o];
    if (tcp[13] & kAck) put32(tcp + 8, p.ack_rel + isn[o] + static_cast<uint32_t>(delta[o]));
    const size_t doff = (tcp[12] >> 4) * 4u;
    for (size_t i = 20; i < doff;) {
      const uint8_t kind = tcp[i];
      if (kind == 0) break;
      if (kind == 1) {
        ++i;
        continue;
      }
      if (i + 1 >= doff || tcp[i + 1] < 2 || i + tcp[i + 1] > doff) break;
      if (kind == 5) {
        for (size_t b = i + 2; b + 8 <= i + tcp[i + 1]; b += 4)
          put32(tcp + b, get32(tcp + b) + ack_shift);
      }
      i += tcp[i + 1];
    }
    // IPv4 header checksum, then the TCP checksum over the pseudo header.
    put16(ip + 10, 0);
    put16(ip + 10, fold(sum16(ip, ihl)));
    put16(tcp + 16, 0);
    const uint32_t pseudo = sum16(ip + 12, 8) + 6 + static_cast<uint32_t>(tcp_len);
    put16(tcp + 16, fold(sum16(tcp, tcp_len, pseudo)));
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(ts_ns / 1000000000u);
    h.ts.tv_usec = static_cast<suseconds_t>(ts_ns % 1000000000u / 1000u);
    h.caplen = static_cast<uint32_t>(buf_.size());
    h.len = p.orig_len;
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, buf_.data());
    packets_++;
    bytes_ += buf_.size();
  }
  uint64_t packets() const { return packets_; }
  uint64_t bytes() const { return bytes_; }

 private:
  pcap_t* dead_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  std::vector<uint8_t> buf_;
  uint64_t packets_ = 0;
  uint64_t bytes_ = 0;
};

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// One generated connection being written: which part of the template comes
// next and where its streams are.
struct Slot {
  ConnSpec spec;
  uint32_t client_ip = 0;
  uint16_t client_port = 0;
  uint32_t isn[2]{};
  int64_t cursor[2]{1, 1};  // next stream position (relative) of each direction
  int64_t delta[2]{};
  int part = 0;             // 0 handshake, 1 units, 2 teardown, 3 done
  uint64_t unit_index = 0;  // units emitted so far (part 1)
  size_t packet = 0;        // next packet within the current part
  uint64_t next_ts = 0;

  const Unit& current() const {
    const Template& t = *spec.tmpl;
    if (part == 0) return t.handshake;
    if (part == 2) return t.teardown;
    return t.units[(spec.first_unit + unit_index) % t.units.size()];
  }
  // Moves to the next non-empty part or unit; false when the connection is done.
  bool settle() {
    const Template& t = *spec.tmpl;
    for (;;) {
      if (part == 3) return false;
      const Unit& u = current();
      if (packet < u.packets.size()) return true;
      packet = 0;
      if (part == 0) {
        part = 1;
        unit_index = 0;
      } else if (part == 1) {
        for (int d = 0; d < 2; ++d) cursor[d] += u.length[d];
        if (++unit_index >= spec.units) part = spec.teardown ? 2 : 3;
      } else {
        part = 3;
        return false;
      }
      if (part == 1 || part == 2) {
        const Unit& n = part == 1 ? current() : t.teardown;
        for (int d = 0; d < 2; ++d) delta[d] = cursor[d] - n.start_rel[d];
      }
    }
  }
};

struct Preset {
  const char* name;
  const char* summary;
};
const Preset kPresets[] = {
    {"http1-1m", "1,000,000 HTTP/1.1 keep-alive exchanges, 100 per connection"},
    {"h2-200k", "200,040 HTTP/2 streams: 3,334 copies of a 60-stream connection"},
    {"mix-1mb", "100 x 1 MB downloads among 100,000 small keep-alive exchanges"},
    {"conn-open-100k", "100,000 connections left open (handshake + one exchange)"},
    {"conn-closed-1m", "1,000,000 connections, each closed, ~1,000 per second"},
    {"conn-idle-1m", "1,000,000 connections never closed, ~100 per second (idle expiry)"},
};

int usage() {
  std::fprintf(stderr,
               "usage: l7tap_gen_capture [--pcaps DIR] [--scale F] PRESET OUT.pcap\npresets:\n");
  for (const Preset& p : kPresets) std::fprintf(stderr, "  %-15s %s\n", p.name, p.summary);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string pcaps = L7TAP_SOURCE_DIR "/pcaps";
  double scale = 1.0;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--pcaps" && i + 1 < argc) {
      pcaps = argv[++i];
    } else if (a == "--scale" && i + 1 < argc) {
      scale = std::strtod(argv[++i], nullptr);
      if (!(scale > 0)) return usage();
    } else if (a.starts_with("-")) {
      return usage();
    } else {
      args.emplace_back(a);
    }
  }
  if (args.size() != 2) return usage();
  const std::string& preset = args[0];
  const std::string& out = args[1];
  auto scaled = [scale](uint64_t n) {
    return std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(double(n) * scale)));
  };

  std::vector<Template> templates;
  templates.reserve(2);
  uint64_t connections = 0;
  size_t concurrency = 100;
  uint64_t conn_gap_ns = 0;  // pause in a slot between two connections
  // The connection spec of generated connection `k`.
  std::vector<ConnSpec> kinds;
  uint64_t large_every = 0;  // mix: connection k is kinds[1] when k % large_every == 5
  if (preset == "http1-1m") {
    templates.push_back(loadTemplate(pcaps + "/http1-keepalive.pcap"));
    connections = scaled(10000);
    kinds.push_back({&templates[0], 100, 0, true});
  } else if (preset == "h2-200k") {
    templates.push_back(loadTemplate(pcaps + "/h2c-many-streams.pcap"));
    Template& t = templates[0];
    // One unit: the whole connection, never cycled (HPACK state).
    for (size_t i = 1; i < t.units.size(); ++i)
      for (auto& p : t.units[i].packets) t.units[0].packets.push_back(std::move(p));
    t.units.resize(1);
    for (int d = 0; d < 2; ++d)
      t.units[0].length[d] = t.teardown.start_rel[d] - t.units[0].start_rel[d];
    t.units[0].records = 60;
    t.repeatable = false;
    connections = scaled(3334);
    kinds.push_back({&t, 1, 0, true});
  } else if (preset == "mix-1mb") {
    templates.push_back(loadTemplate(pcaps + "/http1-keepalive.pcap"));
    templates.push_back(loadTemplate(pcaps + "/http1-large-download.pcap"));
    connections = scaled(1100);
    kinds.push_back({&templates[0], 100, 0, true});
    kinds.push_back({&templates[1], 1, 0, true});
    large_every = 11;
  } else if (preset == "conn-open-100k" || preset == "conn-closed-1m" || preset == "conn-idle-1m") {
    templates.push_back(loadTemplate(pcaps + "/http1-keepalive.pcap"));
    // The smallest exchange of the fixture (GET /small.txt), one per connection.
    const bool closed = preset == "conn-closed-1m";
    kinds.push_back({&templates[0], 1, 1, closed});
    if (preset == "conn-open-100k") {
      connections = scaled(100000);
      concurrency = 1000;
    } else {
      connections = scaled(1000000);
      conn_gap_ns = closed ? 100'000'000ull : 1'000'000'000ull;
    }
  } else {
    std::fprintf(stderr, "l7tap_gen_capture: unknown preset '%s'\n", preset.c_str());
    return usage();
  }
  for (const Template& t : templates) {
    if (t.name.find("keepalive") != std::string::npos && t.units.size() != 3)
      die(t.name + ": expected 3 exchanges, found " + std::to_string(t.units.size()));
    if (t.name.find("large-download") != std::string::npos && t.units.size() != 1)
      die(t.name + ": expected 1 exchange, found " + std::to_string(t.units.size()));
  }

  Writer writer(out);
  std::vector<Slot> slots(std::min<uint64_t>(concurrency, connections));
  using Entry = std::pair<uint64_t, size_t>;  // next timestamp, slot
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> queue;
  const uint64_t t0 = 1795477761000000000ull;  // fixed, so that files are reproducible
  uint64_t next_conn = 0;
  uint64_t exchanges = 0;
  uint64_t last_ts = t0;
  auto start = [&](Slot& s, uint64_t ts) -> bool {
    if (next_conn >= connections) return false;
    const uint64_t k = next_conn++;
    s = Slot{};
    s.spec = large_every && k % large_every == 5 ? kinds[1] : kinds[0];
    if (!s.spec.tmpl->repeatable && s.spec.units > 1) die("unit repeated on an HTTP/2 template");
    const uint64_t block = k / 60000;
    s.client_ip = (10u << 24) | (200u << 16) | static_cast<uint32_t>((block / 250) << 8) |
                  static_cast<uint32_t>(block % 250 + 1);
    s.client_port = static_cast<uint16_t>(1024 + k % 60000);
    const uint64_t r = splitmix64(k);
    s.isn[0] = static_cast<uint32_t>(r);
    s.isn[1] = static_cast<uint32_t>(r >> 32);
    s.next_ts = ts;
    for (uint64_t u = 0; u < s.spec.units; ++u) {
      const Template& t = *s.spec.tmpl;
      exchanges += t.units[(s.spec.first_unit + u) % t.units.size()].records;
    }
    if (!s.settle()) die("empty connection");
    s.next_ts += s.current().packets[s.packet].gap_ns;
    return true;
  };
  for (size_t i = 0; i < slots.size(); ++i) {
    // Stagger the first connections a little so they do not move in lockstep.
    if (start(slots[i], t0 + i * 7000)) queue.emplace(slots[i].next_ts, i);
  }
  while (!queue.empty()) {
    const size_t i = queue.top().second;
    queue.pop();
    Slot& s = slots[i];
    const TemplatePacket& p = s.current().packets[s.packet];
    const uint64_t ts = std::max(s.next_ts, last_ts);
    writer.write(*s.spec.tmpl, p, ts, s.client_ip, s.client_port, s.isn, s.delta);
    last_ts = ts;
    ++s.packet;
    if (s.settle()) {
      s.next_ts = ts + s.current().packets[s.packet].gap_ns;
      queue.emplace(s.next_ts, i);
    } else if (start(s, ts + conn_gap_ns + 1000)) {
      queue.emplace(s.next_ts, i);
    }
  }
  std::printf("file=%s packets=%" PRIu64 " bytes=%" PRIu64 " connections=%" PRIu64
              " exchanges=%" PRIu64 " seconds=%.3f server_port=%u\n",
              out.c_str(), writer.packets(), writer.bytes(), connections, exchanges,
              double(last_ts - t0) / 1e9, templates[0].server_port);
  return 0;
}
