#include "parsers/tls/client_hello.h"

#include <algorithm>

namespace l7tap {

namespace {

constexpr size_t kMaxFieldBytes = 255;

// A bounds-checked big-endian reader: every read past the end sets `failed`.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  bool failed() const { return failed_; }
  size_t remaining() const { return b_.size() - pos_; }
  uint32_t u8() { return take(1); }
  uint32_t u16() { return take(2); }
  uint32_t u24() { return take(3); }
  void skip(size_t n) {
    if (n > remaining()) {
      failed_ = true;
      pos_ = b_.size();
      return;
    }
    pos_ += n;
  }
  std::span<const uint8_t> bytes(size_t n) {
    if (n > remaining()) {
      failed_ = true;
      pos_ = b_.size();
      return {};
    }
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  uint32_t take(size_t n) {
    if (n > remaining()) {
      failed_ = true;
      pos_ = b_.size();
      return 0;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | b_[pos_ + i];
    pos_ += n;
    return v;
  }
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
  bool failed_ = false;
};

void appendField(std::string& dst, std::span<const uint8_t> src) {
  const size_t n = std::min(src.size(), kMaxFieldBytes);
  dst.append(reinterpret_cast<const char*>(src.data()), n);
}

void parseExtensions(Reader& r, ClientHelloInfo& info) {
  Reader ext(r.bytes(r.u16()));
  while (!ext.failed() && ext.remaining() >= 4) {
    const uint32_t type = ext.u16();
    Reader body(ext.bytes(ext.u16()));
    if (type == 0) {  // server_name: list of (type, name)
      Reader list(body.bytes(body.u16()));
      while (!list.failed() && list.remaining() >= 3) {
        const uint32_t name_type = list.u8();
        auto name = list.bytes(list.u16());
        if (name_type == 0 && info.server_name.empty()) appendField(info.server_name, name);
      }
    } else if (type == 16) {  // application_layer_protocol_negotiation
      Reader list(body.bytes(body.u16()));
      while (!list.failed() && list.remaining() >= 1) {
        auto proto = list.bytes(list.u8());
        if (list.failed()) break;
        if (!info.alpn.empty()) info.alpn.push_back(',');
        appendField(info.alpn, proto);
      }
    }
  }
}

}  // namespace

bool looksLikeTlsHandshake(std::span<const uint8_t> b) {
  return b.size() >= 3 && b[0] == 22 && b[1] == 3 && b[2] <= 4;
}

TlsParse parseClientHello(std::span<const uint8_t> bytes, ClientHelloInfo& info) {
  if (bytes.size() < 3) {
    // Too short to say; a prefix of a handshake record is still possible.
    if (!bytes.empty() && bytes[0] != 22) return TlsParse::kNotTls;
    if (bytes.size() == 2 && bytes[1] != 3) return TlsParse::kNotTls;
    return TlsParse::kNeedMore;
  }
  if (!looksLikeTlsHandshake(bytes)) return TlsParse::kNotTls;
  if (bytes.size() < 6) return TlsParse::kNeedMore;
  if (bytes[5] != 1) return TlsParse::kOtherHandshake;
  // The ClientHello may span several records; the first one nearly always
  // holds it whole. Parse what the first record carries.
  const size_t record_len = (size_t{bytes[3]} << 8) | bytes[4];
  if (bytes.size() < 5 + record_len) return TlsParse::kNeedMore;
  Reader r(bytes.subspan(5, record_len));
  r.u8();                          // handshake type
  Reader hello(r.bytes(r.u24()));  // may fail if split across records: parse what we have
  if (r.failed()) {
    // What the first record carries after the 4-byte handshake header: none
    // when the record is shorter than that header.
    const size_t carried = record_len > 4 ? record_len - 4 : 0;
    hello = Reader(bytes.subspan(5 + record_len - carried, carried));
  }
  hello.skip(2 + 32);       // client_version, random
  hello.skip(hello.u8());   // session_id
  hello.skip(hello.u16());  // cipher_suites
  hello.skip(hello.u8());   // compression_methods
  if (!hello.failed() && hello.remaining() >= 2) parseExtensions(hello, info);
  return TlsParse::kClientHello;
}

}  // namespace l7tap
