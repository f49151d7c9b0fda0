// l7tap_gen_hostile: captures of hostile traffic, built packet by packet.
//
//   l7tap_gen_hostile SCENARIO OUT.pcap [COUNT]
//
// Each scenario attacks one bound of l7tap (bench/hostile.sh replays them and
// records memory, time, records and counters). COUNT scales the scenario
// (default in brackets):
//
//   syn-flood          COUNT SYNs, each from its own address and port, 1 us apart [1000000]
//   data-flood         COUNT one-packet connections: an HTTP/1 request without a
//                      handshake, each from its own address and port [1000000]
//   ooo-hole           an upload whose first 1000 body bytes never arrive, followed by
//                      COUNT 1000-byte segments, never acknowledged [100000]
//   overlap-conflict   COUNT holes, each preceded by two different copies of the
//                      segment after it (same seq, other bytes), then filled [10000]
//   seq-wrap           COUNT exchanges on a connection whose sequence numbers wrap,
//                      with segments at seq +2^31 and -2^31+1 between them [10000]
//   h1-headers         a request with COUNT headers, then a normal exchange [100000]
//   h1-header-line     a request with a COUNT-byte User-Agent line, then a normal
//                      exchange [1048576]
//   h1-chunk-16mb      a response with one chunk of COUNT bytes, then a normal
//                      exchange [16777216]
//   h1-chunk-overflow  a response whose chunk size (2^64) overflows 64 bits, then a
//                      normal exchange; COUNT connections [1]
//   h1-pipeline        COUNT pipelined requests in 64 KB segments, then COUNT
//                      responses [10000]
//   h1-slowloris       COUNT connections each sending a never-ending request one byte
//                      a second, for 600 seconds [1000]
//   h2-table-size      SETTINGS_HEADER_TABLE_SIZE 2^32-1, a table-size update to
//                      2^32-1, then COUNT empty entries inserted (3 bytes each), then
//                      an update past 2^32 [1000000]
//   h2-continuation    a HEADERS frame followed by COUNT CONTINUATION frames, each
//                      with one 5-byte field [1000000]
//   h2-frame-16mb      SETTINGS_MAX_FRAME_SIZE 2^24-1, then a response DATA frame of
//                      2^24-1 bytes; COUNT such exchanges [1]
//   h2-streams         COUNT streams opened (HEADERS with END_STREAM), never
//                      answered [100000]
//   h2-settings-flood  COUNT SETTINGS frames from the client, never acknowledged,
//                      then one exchange [1000000]
//   h2-rapid-reset     COUNT times HEADERS then RST_STREAM (CVE-2023-44487) [100000]
//
// Every scenario except the floods and slowloris ends its connections with
// FIN. Prints one line: file=OUT packets=N bytes=N
//
// Addresses are from 10.0.0.0/8 (clients) and 10.255.255.1 (server): the
// packets exist only in the file.

#include <arpa/inet.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr uint8_t kFin = 0x01;
constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kPsh = 0x08;
constexpr uint8_t kAck = 0x10;
// The largest TCP payload an IPv4 packet holds (GSO-sized segments, as TC sees them).
constexpr size_t kMaxSegment = 65535 - 40;
constexpr uint64_t kMicro = 1000;
constexpr uint64_t kMilli = 1000 * kMicro;
constexpr uint64_t kSecond = 1000 * kMilli;
constexpr uint32_t kServerIp = 0x0affff01;  // 10.255.255.1

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "l7tap_gen_hostile: %s\n", message.c_str());
  std::exit(1);
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// A classic pcap file with nanosecond timestamps, Ethernet frames.
class PcapWriter {
 public:
  explicit PcapWriter(const char* path) : f_(std::fopen(path, "wb")) {
    if (f_ == nullptr) die(std::string(path) + ": " + std::strerror(errno));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
    const uint32_t hdr[6] = {0xa1b23c4d, 2 | (4u << 16), 0, 0, 262144, 1};
    std::fwrite(hdr, sizeof(hdr), 1, f_);
  }
  ~PcapWriter() {
    if (std::fclose(f_) != 0) die("write failed");
  }

  void tcp(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint32_t seq, uint32_t ack,
           uint8_t flags, std::string_view payload, uint64_t ts_ns) {
    if (payload.size() > kMaxSegment) die("segment too large");
    frame_.assign(54 + payload.size(), 0);
    uint8_t* e = frame_.data();
    e[5] = 1;  // destination MAC 00:00:00:00:00:01
    e[11] = 2;
    put16(e + 12, 0x0800);
    uint8_t* ip = e + 14;
    ip[0] = 0x45;
    put16(ip + 2, static_cast<uint16_t>(40 + payload.size()));
    ip[8] = 64;
    ip[9] = 6;
    put32(ip + 12, src);
    put32(ip + 16, dst);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, static_cast<uint16_t>(~sum));
    uint8_t* t = ip + 20;
    put16(t, sport);
    put16(t + 2, dport);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = 5 << 4;
    t[13] = flags;
    put16(t + 14, 65535);
    std::memcpy(t + 20, payload.data(), payload.size());
    const uint32_t rec[4] = {
        static_cast<uint32_t>(ts_ns / kSecond), static_cast<uint32_t>(ts_ns % kSecond),
        static_cast<uint32_t>(frame_.size()), static_cast<uint32_t>(frame_.size())};
    std::fwrite(rec, sizeof(rec), 1, f_);
    std::fwrite(frame_.data(), frame_.size(), 1, f_);
    ++packets;
    bytes += frame_.size();
  }

  uint64_t packets = 0;
  uint64_t bytes = 0;

 private:
  std::FILE* f_;
  std::vector<uint8_t> frame_;
};

// One TCP connection, client (0) and server (1). Sequence numbers are the
// next byte each side sends.
struct Conn {
  PcapWriter* w;
  uint32_t ip[2];
  uint16_t port[2];
  uint32_t seq[2];

  Conn(PcapWriter& writer, uint32_t n, uint32_t client_isn = 1000, uint32_t server_isn = 5000)
      : w(&writer),
        ip{0x0a000000 | ((n >> 14) & 0xffffff), kServerIp},
        port{static_cast<uint16_t>(1024 + (n & 0x3fff)), 80},
        seq{client_isn, server_isn} {}

  void raw(int dir, uint32_t seq_no, uint8_t flags, std::string_view payload, uint64_t ts) {
    w->tcp(ip[dir], port[dir], ip[1 - dir], port[1 - dir], seq_no, seq[1 - dir], flags, payload,
           ts);
  }
  void handshake(uint64_t& ts) {
    w->tcp(ip[0], port[0], ip[1], port[1], seq[0]++, 0, kSyn, {}, ts);
    ts += 10 * kMicro;
    raw(1, seq[1]++, kSyn | kAck, {}, ts);
    ts += 10 * kMicro;
    raw(0, seq[0], kAck, {}, ts);
    ts += 10 * kMicro;
  }
  // `data` from `dir` in segments of at most `mss`, then an ACK from the peer.
  void send(int dir, std::string_view data, uint64_t& ts, size_t mss = kMaxSegment) {
    while (!data.empty()) {
      const size_t n = std::min(mss, data.size());
      raw(dir, seq[dir], kAck | kPsh, data.substr(0, n), ts);
      seq[dir] += static_cast<uint32_t>(n);
      data.remove_prefix(n);
      ts += 1 * kMicro;
    }
    raw(1 - dir, seq[1 - dir], kAck, {}, ts);
    ts += 10 * kMicro;
  }
  void close(uint64_t& ts) {
    raw(0, seq[0]++, kFin | kAck, {}, ts);
    ts += 10 * kMicro;
    raw(1, seq[1]++, kFin | kAck, {}, ts);
    ts += 10 * kMicro;
    raw(0, seq[0], kAck, {}, ts);
    ts += 10 * kMicro;
  }
};

constexpr std::string_view kGet = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// One normal exchange: what must still be reported after the attack.
void normalExchange(Conn& c, uint64_t& ts) {
  c.send(0, kGet, ts);
  c.send(1, kOk, ts);
}

// ---- HTTP/2 frames and HPACK ------------------------------------------------

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
enum : uint8_t { kData = 0, kHeaders = 1, kRstStream = 3, kSettings = 4, kContinuation = 9 };
enum : uint8_t { kEndStream = 1, kEndHeaders = 4 };

void frameHeader(std::string& out, uint32_t length, uint8_t type, uint8_t flags, uint32_t stream) {
  const uint8_t h[9] = {static_cast<uint8_t>(length >> 16),
                        static_cast<uint8_t>(length >> 8),
                        static_cast<uint8_t>(length),
                        type,
                        flags,
                        static_cast<uint8_t>(stream >> 24),
                        static_cast<uint8_t>(stream >> 16),
                        static_cast<uint8_t>(stream >> 8),
                        static_cast<uint8_t>(stream)};
  out.append(reinterpret_cast<const char*>(h), sizeof(h));
}
void frame(std::string& out, uint8_t type, uint8_t flags, uint32_t stream,
           std::string_view payload) {
  frameHeader(out, static_cast<uint32_t>(payload.size()), type, flags, stream);
  out.append(payload);
}
std::string settings(std::initializer_list<std::pair<uint16_t, uint32_t>> values) {
  std::string p;
  for (const auto& [id, v] : values) {
    uint8_t b[6];
    put16(b, id);
    put32(b + 2, v);
    p.append(reinterpret_cast<const char*>(b), sizeof(b));
  }
  return p;
}
// HPACK integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the flag bits.
void hpackInt(std::string& out, uint8_t first, int prefix_bits, uint64_t v) {
  const uint64_t max = (1u << prefix_bits) - 1;
  if (v < max) {
    out.push_back(static_cast<char>(first | v));
    return;
  }
  out.push_back(static_cast<char>(first | max));
  v -= max;
  while (v >= 128) {
    out.push_back(static_cast<char>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
// A literal without indexing whose name is static-table entry `index`.
void hpackLiteral(std::string& out, uint8_t index, std::string_view value) {
  hpackInt(out, 0x00, 4, index);
  hpackInt(out, 0x00, 7, value.size());
  out.append(value);
}
// GET http://h/path as one header block, static table and literals only.
std::string requestBlock(std::string_view path) {
  std::string b = "\x82\x86";  // :method GET, :scheme http
  hpackLiteral(b, 4, path);    // :path
  hpackLiteral(b, 1, "h");     // :authority
  return b;
}
constexpr std::string_view kStatus200 = "\x88";

// A connection that has exchanged prefaces and SETTINGS.
Conn h2Conn(PcapWriter& w, uint64_t& ts, std::string_view client_settings = {},
            std::string_view server_settings = {}) {
  Conn c(w, 1);
  c.handshake(ts);
  std::string out(kPreface);
  frame(out, kSettings, 0, 0, client_settings);
  c.send(0, out, ts);
  out.clear();
  frame(out, kSettings, 0, 0, server_settings);
  frame(out, kSettings, 1, 0, std::string_view());  // ACK
  c.send(1, out, ts);
  out.clear();
  frame(out, kSettings, 1, 0, std::string_view());
  c.send(0, out, ts);
  return c;
}

void h2Exchange(Conn& c, uint32_t stream, uint64_t& ts) {
  std::string out;
  frame(out, kHeaders, kEndHeaders | kEndStream, stream, requestBlock("/next"));
  c.send(0, out, ts);
  out.clear();
  frame(out, kHeaders, kEndHeaders, stream, kStatus200);
  frame(out, kData, kEndStream, stream, "ok");
  c.send(1, out, ts);
}

// ---- scenarios ---------------------------------------------------------------

void synFlood(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  for (uint64_t i = 0; i < n; ++i, ts += kMicro) {
    Conn c(w, static_cast<uint32_t>(i), static_cast<uint32_t>(i * 2654435761u));
    c.raw(0, c.seq[0], kSyn, {}, ts);
  }
}

void dataFlood(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  for (uint64_t i = 0; i < n; ++i, ts += kMicro) {
    Conn c(w, static_cast<uint32_t>(i), static_cast<uint32_t>(i * 2654435761u));
    c.raw(0, c.seq[0], kAck | kPsh, kGet, ts);
  }
}

void oooHole(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c(w, 1);
  c.handshake(ts);
  const uint64_t body = 1000 + n * 1000;
  c.send(0,
         "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body) + "\r\n\r\n",
         ts);
  const std::string seg(1000, 'x');
  const uint32_t hole_end = c.seq[0] + 1000;
  for (uint64_t i = 0; i < n; ++i, ts += kMicro) {
    c.raw(0, hole_end + static_cast<uint32_t>(i * 1000), kAck, seg, ts);
  }
}

void overlapConflict(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c(w, 1);
  c.handshake(ts);
  const uint64_t body = n * 200;
  c.send(0,
         "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body) + "\r\n\r\n",
         ts);
  const std::string a(100, 'a'), b(100, 'b');
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t hole = c.seq[0];
    c.raw(0, hole + 100, kAck, a, ts += kMicro);  // after the hole
    c.raw(0, hole + 100, kAck, b, ts += kMicro);  // same bytes, other content
    c.raw(0, hole, kAck, a, ts += kMicro);        // the hole
    c.seq[0] += 200;
  }
  c.raw(1, c.seq[1], kAck, {}, ts += kMicro);
  c.send(1, kOk, ts);
  normalExchange(c, ts);
  c.close(ts);
}

void seqWrap(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c(w, 1, 0xffffffffu - 50000, 0xffffffffu - 70000);
  c.handshake(ts);
  const std::string resp =
      "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'r');
  for (uint64_t i = 0; i < n; ++i) {
    c.send(0, "GET /w/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n", ts);
    if (i % 10 == 5) {  // a segment half the sequence space away, either way
      c.raw(0, c.seq[0] + 0x80000000u, kAck, "GET /far HTTP/1.1\r\n\r\n", ts += kMicro);
      c.raw(0, c.seq[0] - 0x7fffffffu, kAck, "GET /old HTTP/1.1\r\n\r\n", ts += kMicro);
    }
    c.send(1, resp, ts, 1448);
  }
  c.close(ts);
}

void h1Headers(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c(w, 1);
  c.handshake(ts);
  std::string req = "GET /many HTTP/1.1\r\nHost: h\r\n";
  for (uint64_t i = 0; i < n; ++i) req += "X-H-" + std::to_string(i) + ": v\r\n";
  req += "\r\n";
  c.send(0, req, ts);
  c.send(1, kOk, ts);
  normalExchange(c, ts);
  c.close(ts);
}

void h1HeaderLine(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c(w, 1);
  c.handshake(ts);
  c.send(0, "GET /long HTTP/1.1\r\nHost: h\r\nUser-Agent: " + std::string(n, 'u') + "\r\n\r\n", ts);
  c.send(1, kOk, ts);
  normalExchange(c, ts);
  c.close(ts);
}

void h1Chunk16mb(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c(w, 1);
  c.handshake(ts);
  c.send(0, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n", ts);
  char size[32];
  std::snprintf(size, sizeof(size), "%" PRIx64 "\r\n", n);
  c.send(1,
         std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") + size +
             std::string(n, 'c') + "\r\n0\r\n\r\n",
         ts);
  normalExchange(c, ts);
  c.close(ts);
}

void h1ChunkOverflow(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  for (uint64_t i = 0; i < n; ++i) {
    Conn c(w, static_cast<uint32_t>(i));
    c.handshake(ts);
    c.send(0, "GET /overflow HTTP/1.1\r\nHost: h\r\n\r\n", ts);
    c.send(1,
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "10000000000000000\r\n" +
               std::string(100, 'c') + "\r\n0\r\n\r\n",
           ts);
    normalExchange(c, ts);
    c.close(ts);
  }
}

void h1Pipeline(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c(w, 1);
  c.handshake(ts);
  std::string reqs, resps;
  for (uint64_t i = 0; i < n; ++i) {
    reqs += "GET /p/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
    resps += "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  }
  c.send(0, reqs, ts);
  c.send(1, resps, ts);
  normalExchange(c, ts);
  c.close(ts);
}

void h1Slowloris(PcapWriter& w, uint64_t n) {
  constexpr int kSeconds = 600;
  std::vector<Conn> conns;
  uint64_t ts = kSecond;
  for (uint64_t i = 0; i < n; ++i) {
    conns.emplace_back(w, static_cast<uint32_t>(i));
    conns.back().handshake(ts);
  }
  std::string req = "GET /slow HTTP/1.1\r\nHost: h\r\n";
  while (req.size() < kSeconds) req += "X-a: b\r\n";
  for (int s = 0; s < kSeconds; ++s) {
    ts = (2 + static_cast<uint64_t>(s)) * kSecond;
    for (Conn& c : conns) {
      c.raw(0, c.seq[0]++, kAck | kPsh, req.substr(static_cast<size_t>(s), 1), ts += kMicro);
    }
  }
}

void h2TableSize(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c = h2Conn(w, ts, {}, settings({{1, 0xffffffffu}}));
  std::string block;
  hpackInt(block, 0x20, 5, 0xffffffffu);                             // dynamic table size update
  for (uint64_t i = 0; i < n; ++i) block.append("\x40\x00\x00", 3);  // empty entry, indexed
  block += requestBlock("/table");
  // One frame may carry 16 KiB: the rest goes in CONTINUATION frames.
  std::string out;
  constexpr size_t kFrame = 16384;
  for (size_t off = 0; off < block.size(); off += kFrame) {
    const std::string_view piece = std::string_view(block).substr(off, kFrame);
    const bool last = off + kFrame >= block.size();
    frame(out, off == 0 ? kHeaders : kContinuation,
          static_cast<uint8_t>((last ? kEndHeaders : 0) | (off == 0 ? kEndStream : 0)), 1, piece);
  }
  c.send(0, out, ts);
  out.clear();
  frame(out, kHeaders, kEndHeaders | kEndStream, 1, kStatus200);
  c.send(1, out, ts);
  // An update past 2^32: no uint32 holds it.
  out.clear();
  std::string bad;
  hpackInt(bad, 0x20, 5, 1ull << 33);
  bad += requestBlock("/past");
  frame(out, kHeaders, kEndHeaders | kEndStream, 3, bad);
  c.send(0, out, ts);
  out.clear();
  frame(out, kHeaders, kEndHeaders | kEndStream, 3, kStatus200);
  c.send(1, out, ts);
  h2Exchange(c, 5, ts);
  c.close(ts);
}

void h2Continuation(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c = h2Conn(w, ts);
  std::string out;
  frame(out, kHeaders, kEndStream, 1, requestBlock("/cont"));
  std::string field;
  hpackInt(field, 0x00, 4, 0);  // literal, new name
  field += "\x01x\x01y";
  for (uint64_t i = 0; i < n; ++i) {
    frame(out, kContinuation, i + 1 == n ? kEndHeaders : 0, 1, field);
    if (out.size() >= (1 << 20)) {
      c.send(0, out, ts);
      out.clear();
    }
  }
  c.send(0, out, ts);
  out.clear();
  frame(out, kHeaders, kEndHeaders | kEndStream, 1, kStatus200);
  c.send(1, out, ts);
  h2Exchange(c, 3, ts);
  c.close(ts);
}

void h2Frame16mb(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  constexpr uint32_t kLargest = (1u << 24) - 1;
  Conn c = h2Conn(w, ts, settings({{5, kLargest}}));
  const std::string payload(kLargest, 'd');
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t stream = static_cast<uint32_t>(1 + 2 * i);
    std::string out;
    frame(out, kHeaders, kEndHeaders | kEndStream, stream, requestBlock("/huge"));
    c.send(0, out, ts);
    out.clear();
    frame(out, kHeaders, kEndHeaders, stream, kStatus200);
    frame(out, kData, kEndStream, stream, payload);
    c.send(1, out, ts);
  }
  h2Exchange(c, static_cast<uint32_t>(1 + 2 * n), ts);
  c.close(ts);
}

void h2Streams(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c = h2Conn(w, ts);
  std::string out;
  for (uint64_t i = 0; i < n; ++i) {
    frame(out, kHeaders, kEndHeaders | kEndStream, static_cast<uint32_t>(1 + 2 * i),
          requestBlock("/s/" + std::to_string(i)));
    if (out.size() >= (1 << 20)) {
      c.send(0, out, ts);
      out.clear();
    }
  }
  c.send(0, out, ts);
  h2Exchange(c, static_cast<uint32_t>(1 + 2 * n), ts);
  c.close(ts);
}

void h2SettingsFlood(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c = h2Conn(w, ts);
  std::string out;
  for (uint64_t i = 0; i < n; ++i) {
    frame(out, kSettings, 0, 0, settings({{1, static_cast<uint32_t>(4096 + (i & 0xff))}}));
    if (out.size() >= (1 << 20)) {
      c.send(0, out, ts);
      out.clear();
    }
  }
  c.send(0, out, ts);
  h2Exchange(c, 1, ts);
  c.close(ts);
}

void h2RapidReset(PcapWriter& w, uint64_t n) {
  uint64_t ts = kSecond;
  Conn c = h2Conn(w, ts);
  std::string out;
  const std::string cancel("\x00\x00\x00\x08", 4);  // CANCEL
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t stream = static_cast<uint32_t>(1 + 2 * i);
    frame(out, kHeaders, kEndHeaders | kEndStream, stream, requestBlock("/r"));
    frame(out, kRstStream, 0, stream, cancel);
    if (out.size() >= (1 << 20)) {
      c.send(0, out, ts);
      out.clear();
    }
  }
  c.send(0, out, ts);
  h2Exchange(c, static_cast<uint32_t>(1 + 2 * n), ts);
  c.close(ts);
}

struct Scenario {
  const char* name;
  void (*run)(PcapWriter&, uint64_t);
  uint64_t count;
};

constexpr Scenario kScenarios[] = {
    {"syn-flood", synFlood, 1000000},
    {"data-flood", dataFlood, 1000000},
    {"ooo-hole", oooHole, 100000},
    {"overlap-conflict", overlapConflict, 10000},
    {"seq-wrap", seqWrap, 10000},
    {"h1-headers", h1Headers, 100000},
    {"h1-header-line", h1HeaderLine, 1 << 20},
    {"h1-chunk-16mb", h1Chunk16mb, 1 << 24},
    {"h1-chunk-overflow", h1ChunkOverflow, 1},
    {"h1-pipeline", h1Pipeline, 10000},
    {"h1-slowloris", h1Slowloris, 1000},
    {"h2-table-size", h2TableSize, 1000000},
    {"h2-continuation", h2Continuation, 1000000},
    {"h2-frame-16mb", h2Frame16mb, 1},
    {"h2-streams", h2Streams, 100000},
    {"h2-settings-flood", h2SettingsFlood, 1000000},
    {"h2-rapid-reset", h2RapidReset, 100000},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: l7tap_gen_hostile SCENARIO OUT.pcap [COUNT]\nscenarios:");
    for (const Scenario& s : kScenarios) std::fprintf(stderr, " %s", s.name);
    std::fprintf(stderr, "\n");
    return 2;
  }
  const Scenario* scenario = nullptr;
  for (const Scenario& s : kScenarios) {
    if (std::strcmp(s.name, argv[1]) == 0) scenario = &s;
  }
  if (scenario == nullptr) die(std::string("unknown scenario ") + argv[1]);
  uint64_t count = scenario->count;
  if (argc == 4) {
    char* end = nullptr;
    count = std::strtoull(argv[3], &end, 10);
    if (end == argv[3] || *end != '\0' || count == 0) die("COUNT must be a positive number");
  }
  uint64_t packets = 0, bytes = 0;
  {
    PcapWriter w(argv[2]);
    scenario->run(w, count);
    packets = w.packets;
    bytes = w.bytes;
  }
  std::printf("file=%s packets=%" PRIu64 " bytes=%" PRIu64 "\n", argv[2], packets, bytes);
  return 0;
}
