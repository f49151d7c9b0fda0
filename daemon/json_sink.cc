#include "daemon/json_sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

class JsonFieldWriter final : public FieldVisitor {
 public:
  explicit JsonFieldWriter(std::string& out) : out_(out) {}
  void str(std::string_view name, std::string_view value) override {
    key(name);
    out_.push_back('"');
    appendJsonEscaped(out_, value);
    out_.push_back('"');
  }
  void num(std::string_view name, uint64_t value) override {
    key(name);
    char buf[24];
    out_.append(buf, std::to_chars(buf, buf + sizeof buf, value).ptr);
  }
  void inum(std::string_view name, int64_t value) override {
    key(name);
    char buf[24];
    out_.append(buf, std::to_chars(buf, buf + sizeof buf, value).ptr);
  }
  void millis(std::string_view name, uint64_t ns) override {
    key(name);
    char buf[32];
    char* p = std::to_chars(buf, buf + sizeof buf, ns / 1000000).ptr;
    *p++ = '.';
    uint64_t frac = ns % 1000000;
    for (int i = 5; i >= 0; --i, frac /= 10) p[i] = static_cast<char>('0' + frac % 10);
    out_.append(buf, p + 6);
  }
  void time(std::string_view name, uint64_t ns) override {
    key(name);
    char buf[40];
    out_.push_back('"');
    out_.append(buf, formatTime(ns, buf));
    out_.push_back('"');
  }
  void addr(std::string_view name, const uint8_t* addr16, uint8_t family) override {
    key(name);
    char buf[48];
    out_.push_back('"');
    out_.append(buf, formatAddress(addr16, family, buf));  // nothing to escape
    out_.push_back('"');
  }
  void flags(std::string_view name, uint32_t bits, const char* const* names,
             size_t count) override {
    if (bits == 0) return;
    key(name);
    out_.push_back('[');
    bool first = true;
    for (size_t i = 0; i < count; ++i) {
      if (!(bits & (1u << i))) continue;
      if (!first) out_.push_back(',');
      first = false;
      out_.push_back('"');
      out_.append(names[i]);
      out_.push_back('"');
    }
    out_.push_back(']');
  }

 private:
  void key(std::string_view name) {
    out_.push_back(first_ ? '{' : ',');
    first_ = false;
    out_.push_back('"');
    out_.append(name);
    out_.append("\":");
  }
  std::string& out_;
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

void appendJsonEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    // Copy a run of bytes that need no escaping in one go.
    size_t run = i;
    while (run < s.size()) {
      const uint8_t c = static_cast<uint8_t>(s[run]);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') break;
      ++run;
    }
    if (run > i) {
      out.append(s.substr(i, run - i));
      i = run;
      if (i == s.size()) break;
    }
    const uint8_t c = static_cast<uint8_t>(s[i]);
    switch (c) {
      case '"':
        out.append("\\\"");
        ++i;
        continue;
      case '\\':
        out.append("\\\\");
        ++i;
        continue;
      case '\n':
        out.append("\\n");
        ++i;
        continue;
      case '\r':
        out.append("\\r");
        ++i;
        continue;
      case '\t':
        out.append("\\t");
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      out.append("\\u00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
      ++i;
      continue;
    }
    const size_t n = utf8SequenceLength(s, i);
    if (n == 0) {
      out.append("\\\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
}

JsonLinesSink::JsonLinesSink(int fd, Flush flush) : fd_(fd), flush_(flush) {
  buffer_.reserve(kBufferBytes + 4096);
}

JsonLinesSink::~JsonLinesSink() { flush(); }

void JsonLinesSink::onRecord(const ConnectionInfo& conn, const Record& record) {
  line_.clear();
  JsonFieldWriter w(line_);
  record.visit(conn, w);
  writeLine();
}

void JsonLinesSink::writeLine() {
  if (error_) {
    records_lost_++;
    return;
  }
  line_.append("}\n");
  buffer_.append(line_);
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
