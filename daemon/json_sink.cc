#include "daemon/json_sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstring>
#include <ctime>

#include "daemon/record_schema.h"
#include "parsers/common/utf8.h"
#include "reassembly/segment.h"

namespace l7tap {

namespace {

// Worst case of one input byte escaped: a control character as \u00XX.
constexpr size_t kMaxEscapedPerByte = 6;

// Bytes that go into a JSON string as they are (printable ASCII but the
// quote and the backslash); the others take escapeByte's slow path.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

// Writes s[i...] escaped at `p` (room for kMaxEscapedPerByte bytes per input
// byte): the byte at i is not plain. Returns where the input goes on.
size_t escapeByte(std::string_view s, size_t i, char*& p) {
  static constexpr char kHex[] = "0123456789abcdef";
  const uint8_t c = static_cast<uint8_t>(s[i]);
  const auto two = [&p](char a, char b) {
    p[0] = a;
    p[1] = b;
    p += 2;
  };
  switch (c) {
    case '"':
      two('\\', '"');
      return i + 1;
    case '\\':
      two('\\', '\\');
      return i + 1;
    case '\n':
      two('\\', 'n');
      return i + 1;
    case '\r':
      two('\\', 'r');
      return i + 1;
    case '\t':
      two('\\', 't');
      return i + 1;
    default:
      break;
  }
  if (c < 0x20 || c == 0x7f) {
    std::memcpy(p, "\\u00", 4);
    p[4] = kHex[c >> 4];
    p[5] = kHex[c & 15];
    p += 6;
    return i + 1;
  }
  const size_t n = utf8SequenceLength(s, i);
  if (n == 0) {
    std::memcpy(p, "\\\\x", 3);
    p[3] = kHex[c >> 4];
    p[4] = kHex[c & 15];
    p += 5;
    return i + 1;
  }
  std::memcpy(p, s.data() + i, n);
  p += n;
  return i + n;
}

// True if no byte of the word needs escaping: none below 0x20, none at or
// above 0x7f, no quote, no backslash (a word test of kPlain).
template <class Word>
[[gnu::always_inline]] inline bool allPlain(Word x) {
  constexpr Word kOnes = static_cast<Word>(0x0101010101010101ull);
  constexpr Word kHighs = static_cast<Word>(0x8080808080808080ull);
  const Word quote = x ^ static_cast<Word>(kOnes * '"');
  const Word backslash = x ^ static_cast<Word>(kOnes * '\\');
  const Word special = ((x - static_cast<Word>(kOnes * 0x20)) & ~x) |  // a byte < 0x20
                       (x | (x + kOnes)) |                             // >= 0x7f
                       ((quote - kOnes) & ~quote) |                    // '"'
                       ((backslash - kOnes) & ~backslash);             // '\\'
  return (special & kHighs) == 0;
}

template <class Word>
[[gnu::always_inline]] inline Word load(const char* p) {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// Writes `s` escaped at `p`, which has room for kMaxEscapedPerByte bytes per
// byte of `s`; returns the end.
char* writeJsonEscaped(char* p, std::string_view s) {
  // Field values are mostly short plain ASCII: words of them are tested
  // and copied whole. Up to the first byte that is not plain, output and
  // input match byte for byte, so the last word may overlap the previous.
  const char* d = s.data();
  const size_t n = s.size();
  size_t i = 0;
  if (n >= 8) {
    for (; n - i >= 8 && allPlain(load<uint64_t>(d + i)); i += 8) std::memcpy(p + i, d + i, 8);
    if (i == n) return p + n;
    if (n - i < 8 && allPlain(load<uint64_t>(d + n - 8))) {
      std::memcpy(p + n - 8, d + n - 8, 8);
      return p + n;
    }
    p += i;
  } else if (n >= 4 && allPlain(load<uint32_t>(d)) && allPlain(load<uint32_t>(d + n - 4))) {
    std::memcpy(p, d, 4);
    std::memcpy(p + n - 4, d + n - 4, 4);
    return p + n;
  }
  while (i < n) {
    const uint8_t c = static_cast<uint8_t>(d[i]);
    if (kPlain[c]) {
      *p++ = static_cast<char>(c);
      ++i;
    } else {
      i = escapeByte(s, i, p);
    }
  }
  return p;
}

// memcpy of the short strings keys are, without a call: two overlapping
// fixed-size copies.
inline void copyShort(char* p, const char* s, size_t n) {
  if (n >= 16 && n <= 32) {
    std::memcpy(p, s, 16);
    std::memcpy(p + n - 16, s + n - 16, 16);
  } else if (n >= 8 && n < 16) {
    std::memcpy(p, s, 8);
    std::memcpy(p + n - 8, s + n - 8, 8);
  } else {
    std::memcpy(p, s, n);
  }
}

// "00" to "99": numbers are written two digits per step.
constexpr std::array<char, 200> kDigitPairs = [] {
  std::array<char, 200> t{};
  for (int i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();

// Exactly 8 digits of v < 10^8, with leading zeros.
void writeEightDigits(char* p, uint32_t v) {
  const uint32_t hi = v / 10000;
  const uint32_t lo = v % 10000;
  std::memcpy(p, &kDigitPairs[2 * (hi / 100)], 2);
  std::memcpy(p + 2, &kDigitPairs[2 * (hi % 100)], 2);
  std::memcpy(p + 4, &kDigitPairs[2 * (lo / 100)], 2);
  std::memcpy(p + 6, &kDigitPairs[2 * (lo % 100)], 2);
}

// Renders a record's fields into the sink's output buffer. Each field asks
// the buffer once for its worst-case size and then writes through a plain
// pointer: no per-character bounds checks, no allocation once the buffer
// has grown to the largest record.
class JsonFieldWriter final : public FieldVisitor {
 public:
  JsonFieldWriter(OutputBuffer& out, AddressTextCache& addresses)
      : out_(out), addresses_(addresses) {}
  void str(std::string_view name, std::string_view value) override {
    char* p = key(name, value.size() * kMaxEscapedPerByte + 2);
    *p++ = '"';
    p = writeJsonEscaped(p, value);
    *p++ = '"';
    out_.commit(p);
  }
  void num(std::string_view name, uint64_t value) override {
    out_.commit(writeDecimal(key(name, 20), value));
  }
  void inum(std::string_view name, int64_t value) override {
    char* p = key(name, 24);
    out_.commit(std::to_chars(p, p + 24, value).ptr);
  }
  void millis(std::string_view name, uint64_t ns) override {
    char* p = key(name, 32);
    p = std::to_chars(p, p + 24, ns / 1000000).ptr;
    *p++ = '.';
    uint64_t frac = ns % 1000000;
    for (int i = 5; i >= 0; --i, frac /= 10) p[i] = static_cast<char>('0' + frac % 10);
    out_.commit(p + 6);
  }
  void time(std::string_view name, uint64_t ns) override {
    char* p = key(name, 40 + 2);  // formatTime: 40, the quotes: 2
    *p++ = '"';
    p += formatTime(ns, p);
    *p++ = '"';
    out_.commit(p);
  }
  void addr(std::string_view name, const uint8_t* addr16, uint8_t family) override {
    char* p = key(name, 46 + 2);  // formatAddress: 46, the quotes: 2
    *p++ = '"';
    p += addresses_.write(addr16, family, p);  // nothing to escape
    *p++ = '"';
    out_.commit(p);
  }
  void flags(std::string_view name, uint32_t bits, const char* const* names,
             size_t count) override {
    if (bits == 0) return;
    size_t room = 2;
    for (size_t i = 0; i < count; ++i)
      if (bits & (1u << i)) room += std::strlen(names[i]) + 3;
    char* p = key(name, room);
    *p++ = '[';
    bool first = true;
    for (size_t i = 0; i < count; ++i) {
      if (!(bits & (1u << i))) continue;
      if (!first) *p++ = ',';
      first = false;
      *p++ = '"';
      const size_t n = std::strlen(names[i]);
      std::memcpy(p, names[i], n);
      p += n;
      *p++ = '"';
    }
    *p++ = ']';
    out_.commit(p);
  }

 private:
  // Writes `,"name":` (or the object's `{` first), with room for `value`
  // more bytes after it; returns where the value goes.
  char* key(std::string_view name, size_t value) {
    char* p = out_.reserve(name.size() + 4 + value);
    *p++ = first_ ? '{' : ',';
    first_ = false;
    *p++ = '"';
    copyShort(p, name.data(), name.size());
    p += name.size();
    *p++ = '"';
    *p++ = ':';
    return p;
  }
  OutputBuffer& out_;
  AddressTextCache& addresses_;
  bool first_ = true;
};

}  // namespace

size_t formatTime(uint64_t ts_ns, char* buf) {
  // Records come in time order: the date and time of day change once a
  // second, so they are formatted once a second (per thread).
  thread_local time_t cached_secs = -1;
  thread_local char cached[32];
  thread_local size_t cached_len = 0;
  const time_t secs = static_cast<time_t>(ts_ns / 1000000000);
  if (secs != cached_secs) {
    struct tm tm;
    gmtime_r(&secs, &tm);
    cached_len = std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_secs = secs;
  }
  std::memcpy(buf, cached, cached_len);
  char* p = buf + cached_len;
  *p++ = '.';
  uint64_t frac = ts_ns % 1000000000;
  for (int i = 8; i >= 0; --i, frac /= 10) p[i] = static_cast<char>('0' + frac % 10);
  p[9] = 'Z';
  return cached_len + 11;
}

char* writeDecimal(char* p, uint64_t v) {
  // Records carry 19-digit nanosecond times: std::to_chars takes them as one
  // dependent chain of 64-bit divisions by 100; split in 8-digit parts, the
  // parts are independent 32-bit work.
  constexpr uint64_t k8 = 100000000;
  if (v < k8) return std::to_chars(p, p + 8, static_cast<uint32_t>(v)).ptr;
  if (v < k8 * k8) {
    p = std::to_chars(p, p + 8, static_cast<uint32_t>(v / k8)).ptr;
    writeEightDigits(p, static_cast<uint32_t>(v % k8));
    return p + 8;
  }
  // Nanosecond times: a record's four, and the next records', mostly share
  // their digits above the last eight (0.1 s), so those are formatted once
  // per change (per thread).
  thread_local uint64_t cached_high = 0;  // never a high part of v >= k8 * k8
  thread_local char cached[16];
  thread_local size_t cached_len = 0;
  const uint64_t high = v / k8;
  if (high != cached_high) {
    char* e = std::to_chars(cached, cached + 4, static_cast<uint32_t>(high / k8)).ptr;
    writeEightDigits(e, static_cast<uint32_t>(high % k8));
    cached_len = static_cast<size_t>(e + 8 - cached);
    cached_high = high;
  }
  std::memcpy(p, cached, sizeof cached);  // room for 20: the caller's
  writeEightDigits(p + cached_len, static_cast<uint32_t>(v % k8));
  return p + cached_len + 8;
}

size_t AddressTextCache::write(const uint8_t* addr16, uint8_t family, char* p) {
  for (const Entry& e : entries_) {
    if (e.used && e.family == family && std::memcmp(e.addr, addr16, sizeof e.addr) == 0) {
      std::memcpy(p, e.text, kMaxText);  // room for kMaxText: the caller's reserve
      return e.len;
    }
  }
  Entry& e = entries_[next_];
  next_ = (next_ + 1) % kEntries;
  e.len = static_cast<uint8_t>(formatAddress(addr16, family, e.text));
  std::memcpy(e.addr, addr16, sizeof e.addr);
  e.family = family;
  e.used = true;
  std::memcpy(p, e.text, e.len);
  return e.len;
}

void appendJsonEscaped(std::string& out, std::string_view s) {
  const size_t old = out.size();
  out.resize(old + s.size() * kMaxEscapedPerByte);
  out.resize(static_cast<size_t>(writeJsonEscaped(out.data() + old, s) - out.data()));
}

void OutputBuffer::grow(size_t n) {
  const size_t cap = std::max(capacity_ * 2, size_ + n);
  auto bigger = std::make_unique<char[]>(cap);
  if (size_) std::memcpy(bigger.get(), data_.get(), size_);
  data_ = std::move(bigger);
  capacity_ = cap;
}

JsonLinesSink::JsonLinesSink(int fd, Flush flush) : fd_(fd), flush_(flush) {
  buffer_.reserve(kBufferBytes + 4096);
}

JsonLinesSink::~JsonLinesSink() { flush(); }

void JsonLinesSink::onRecord(const ConnectionInfo& conn, const Record& record) {
  if (error_) {
    records_lost_++;
    return;
  }
  // Rendered straight behind the lines already buffered: no line copy.
  JsonFieldWriter w(buffer_, addresses_);
  record.visit(conn, w);
  char* p = buffer_.reserve(2);
  p[0] = '}';
  p[1] = '\n';
  buffer_.commit(p + 2);
  buffered_records_++;
  if (flush_ == Flush::kEveryRecord || buffer_.size() >= kBufferBytes) flush();
}

bool JsonLinesSink::flush() {
  size_t done = 0;
  while (!error_ && done < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fail(n < 0 ? errno : ENOSPC, done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (!error_) records_written_ += buffered_records_;
  buffer_.clear();
  buffered_records_ = 0;
  return !error_;
}

// `landed` bytes of the buffer reached the output before the error.
void JsonLinesSink::fail(int error, size_t landed) {
  error_ = error;
  const std::string_view head(buffer_.data(), landed);
  const size_t whole = head.rfind('\n') == std::string_view::npos ? 0 : head.rfind('\n') + 1;
  const auto complete = static_cast<uint64_t>(std::count(head.begin(), head.end(), '\n'));
  records_written_ += complete;
  records_lost_ += buffered_records_ - complete;
  if (whole == landed) return;
  // A line cut in the middle: take it back where the output allows it, so
  // that the file ends with the last complete record.
  struct stat st;
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return;
  const off_t end = ::lseek(fd_, 0, SEEK_CUR);
  if (end < 0) return;
  const off_t cut = end - static_cast<off_t>(landed - whole);
  if (::ftruncate(fd_, cut) == 0) ::lseek(fd_, cut, SEEK_SET);
}

}  // namespace l7tap
