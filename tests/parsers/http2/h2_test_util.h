// Test helpers: hand-built HTTP/2 frames, header blocks from nghttp2's
// deflater, a recording sink and a scripted conversation player.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "parsers/common/records.h"
#include "parsers/http2/http2_parser.h"

namespace l7tap::h2test {

using Bytes = std::vector<uint8_t>;
using Headers = std::vector<std::pair<std::string, std::string>>;

enum : uint8_t {
  kData = 0,
  kHeaders = 1,
  kPriority = 2,
  kRst = 3,
  kSettings = 4,
  kPushPromise = 5,
  kPing = 6,
  kGoaway = 7,
  kWindowUpdate = 8,
  kContinuation = 9,
};
enum : uint8_t { kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4, kPadded = 0x8, kPrio = 0x20 };

inline const char* kPrefaceText = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

inline Bytes preface() { return Bytes(kPrefaceText, kPrefaceText + 24); }

inline void append(Bytes& dst, const Bytes& src) { dst.insert(dst.end(), src.begin(), src.end()); }

inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) append(out, p);
  return out;
}

inline Bytes frame(uint8_t type, uint8_t flags, uint32_t sid, const Bytes& payload) {
  const uint32_t n = static_cast<uint32_t>(payload.size());
  Bytes out{static_cast<uint8_t>(n >> 16),
            static_cast<uint8_t>(n >> 8),
            static_cast<uint8_t>(n),
            type,
            flags,
            static_cast<uint8_t>((sid >> 24) & 0x7f),
            static_cast<uint8_t>(sid >> 16),
            static_cast<uint8_t>(sid >> 8),
            static_cast<uint8_t>(sid)};
  append(out, payload);
  return out;
}

// An HPACK integer (RFC 7541 section 5.1) whose first byte carries `first`
// above its prefix bits.
inline Bytes hpackInt(uint8_t first, int prefix_bits, uint32_t v) {
  const uint32_t max = (1u << prefix_bits) - 1;
  if (v < max) return {static_cast<uint8_t>(first | v)};
  Bytes out{static_cast<uint8_t>(first | max)};
  v -= max;
  while (v >= 128) {
    out.push_back(static_cast<uint8_t>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
  return out;
}

inline Bytes u32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

/// Payload with optional padding (pad < 0: not padded) and priority fields.
inline Bytes padded(const Bytes& content, int pad, bool priority = false) {
  Bytes out;
  if (pad >= 0) out.push_back(static_cast<uint8_t>(pad));
  if (priority) append(out, {0x80, 0, 0, 3, 200});  // exclusive, depends on 3, weight 200
  append(out, content);
  if (pad > 0) out.insert(out.end(), static_cast<size_t>(pad), 0);
  return out;
}

inline Bytes headers(uint32_t sid, const Bytes& block, uint8_t flags, int pad = -1,
                     bool priority = false) {
  if (pad >= 0) flags |= kPadded;
  if (priority) flags |= kPrio;
  return frame(kHeaders, flags, sid, padded(block, pad, priority));
}

inline Bytes data(uint32_t sid, size_t n, uint8_t flags = 0, int pad = -1, uint8_t fill = 'x') {
  if (pad >= 0) flags |= kPadded;
  return frame(kData, flags, sid, padded(Bytes(n, fill), pad));
}

inline Bytes settings(std::vector<std::pair<uint16_t, uint32_t>> entries) {
  Bytes p;
  for (auto [id, v] : entries) {
    p.push_back(static_cast<uint8_t>(id >> 8));
    p.push_back(static_cast<uint8_t>(id));
    append(p, u32(v));
  }
  return frame(kSettings, 0, 0, p);
}
inline Bytes settingsAck() { return frame(kSettings, kAck, 0, {}); }
inline Bytes rst(uint32_t sid, uint32_t code = 8) { return frame(kRst, 0, sid, u32(code)); }
inline Bytes goaway(uint32_t last, uint32_t code = 0) {
  return frame(kGoaway, 0, 0, cat({u32(last), u32(code), Bytes{'b', 'y', 'e'}}));
}
inline Bytes ping(bool ack = false) { return frame(kPing, ack ? kAck : 0, 0, Bytes(8, 7)); }
inline Bytes windowUpdate(uint32_t sid, uint32_t inc) {
  return frame(kWindowUpdate, 0, sid, u32(inc));
}
inline Bytes priorityFrame(uint32_t sid) { return frame(kPriority, 0, sid, {0, 0, 0, 0, 16}); }

/// An HPACK encoder (one per direction, like a real peer).
class Deflater {
 public:
  explicit Deflater(size_t max_table = 4096) { nghttp2_hd_deflate_new(&d_, max_table); }
  ~Deflater() { nghttp2_hd_deflate_del(d_); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  Bytes encode(const Headers& hs) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : hs) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    Bytes out(nghttp2_hd_deflate_bound(d_, nva.data(), nva.size()));
    ssize_t n = nghttp2_hd_deflate_hd(d_, out.data(), out.size(), nva.data(), nva.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  /// The receiver announced `size` and we acknowledged it.
  void changeTableSize(size_t size) { nghttp2_hd_deflate_change_table_size(d_, size); }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

class RecordingSink final : public ExchangeSink {
 public:
  void onExchange(const Record& record) override {
    records.push_back(static_cast<const HttpRecord&>(record));
  }
  std::vector<HttpRecord> records;
};

/// Every field of a record on one line, for exact comparisons.
inline std::string describe(const HttpRecord& r) {
  std::string s;
  auto add = [&s](const char* k, const std::string& v) { s += std::string(k) + "=" + v + " "; };
  add("sid", std::to_string(r.stream_id));
  add("m", r.method);
  add("p", r.path);
  add("q", r.query);
  add("h", r.host);
  add("ua", r.user_agent);
  add("ct", r.content_type);
  add("v", r.version);
  add("st", std::to_string(r.status));
  add("int", std::to_string(r.interim_status));
  add("rqh", std::to_string(r.request_header_bytes));
  add("rqb", std::to_string(r.request_body_bytes));
  add("rsh", std::to_string(r.response_header_bytes));
  add("rsb", std::to_string(r.response_body_bytes));
  add("t", std::to_string(r.request_start_ns) + "/" + std::to_string(r.request_end_ns) + "/" +
               std::to_string(r.response_start_ns) + "/" + std::to_string(r.response_end_ns));
  add("rpc", r.rpc_service + "/" + r.rpc_method);
  add("grpc", std::to_string(r.grpc_status));
  add("flags", std::to_string(r.flags));
  return s;
}

inline std::vector<std::string> describeAll(const std::vector<HttpRecord>& rs) {
  std::vector<std::string> out;
  for (const HttpRecord& r : rs) out.push_back(describe(r));
  return out;
}

/// One step of a scripted connection.
struct Event {
  enum Kind { kBytes, kGap, kEnd } kind = kBytes;
  Role role = Role::kClient;
  Bytes bytes;
  uint64_t ts = 0;
  uint64_t gap = 0;
  bool reset = false;
};

struct Script {
  std::vector<Event> events;
  uint64_t finish_ts = 0;

  void send(Role role, uint64_t ts, Bytes b) {
    events.push_back({Event::kBytes, role, std::move(b), ts});
  }
  void lose(Role role, uint64_t ts, uint64_t n) {
    events.push_back({Event::kGap, role, {}, ts, n});
  }
};

/// Plays `script`; event `split_event`'s bytes are delivered in two calls cut
/// at `split_at` (or one byte per call when `split_at` is SIZE_MAX).
inline std::vector<HttpRecord> play(const Script& script, size_t split_event = SIZE_MAX,
                                    size_t split_at = 0, bool midstream = false,
                                    const Http2Limits& limits = {}, Http2Stats* stats = nullptr) {
  RecordingSink sink;
  Http2Parser parser(sink, limits);
  if (midstream) parser.startMidstream();
  for (size_t i = 0; i < script.events.size(); ++i) {
    const Event& e = script.events[i];
    switch (e.kind) {
      case Event::kBytes: {
        std::span<const uint8_t> all(e.bytes);
        if (i == split_event && split_at == SIZE_MAX) {
          for (size_t k = 0; k < all.size(); ++k) parser.onData(e.role, all.subspan(k, 1), e.ts);
        } else if (i == split_event) {
          parser.onData(e.role, all.subspan(0, split_at), e.ts);
          parser.onData(e.role, all.subspan(split_at), e.ts);
        } else {
          parser.onData(e.role, all, e.ts);
        }
        break;
      }
      case Event::kGap:
        parser.onGap(e.role, e.gap, e.ts);
        break;
      case Event::kEnd:
        parser.onEnd(e.role, e.reset, e.ts);
        break;
    }
  }
  parser.finish(script.finish_ts);
  if (stats) *stats = parser.stats();
  return sink.records;
}

}  // namespace l7tap::h2test
