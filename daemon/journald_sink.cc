#include "daemon/journald_sink.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "daemon/record_schema.h"
#include "parsers/common/utf8.h"

namespace l7tap {

namespace {

constexpr char kJournalSocket[] = "/run/systemd/journal/socket";
constexpr size_t kMaxNameBytes = 64;    // journald's limit on field names
constexpr size_t kNameSuffixBytes = 3;  // "_NS" of a time field's second field

bool isNameChar(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

char nameChar(char c) {
  if (c >= 'a' && c <= 'z') return static_cast<char>(c - 'a' + 'A');
  return isNameChar(c) ? c : '_';
}

bool hasNamespace(std::string_view name) { return name.find('.') != std::string_view::npos; }

constexpr std::string_view kUnqualifiedPrefix = "L7TAP_";

// Writes the journald name of `schema_name` to `out` (room for kMaxNameBytes),
// returns its length.
size_t writeFieldName(std::string_view schema_name, char* out) {
  size_t n = 0;
  if (!hasNamespace(schema_name)) {
    std::memcpy(out, kUnqualifiedPrefix.data(), kUnqualifiedPrefix.size());
    n = kUnqualifiedPrefix.size();
  }
  for (char c : schema_name) {
    if (n == kMaxNameBytes) break;
    out[n++] = nameChar(c);
  }
  return n;
}

}  // namespace

std::string journaldFieldName(std::string_view schema_name) {
  char buf[kMaxNameBytes];
  return std::string(buf, writeFieldName(schema_name, buf));
}

void appendMessageEscaped(std::string& out, std::string_view s) { appendPrintable(out, s); }

std::string formatHttpMessage(const ConnectionInfo& conn, const HttpRecord& record) {
  std::string out;
  record.appendMessage(out, conn);
  return out;
}

std::string formatConnMessage(const ConnectionInfo& conn, const ConnRecord& record) {
  std::string out;
  record.appendMessage(out, conn);
  return out;
}

int journaldPriority(const Record& record) { return record.priority(); }

// Renders the schema visit as NAME=value iovecs in the sink's arena.
class JournaldSink::FieldWriter final : public FieldVisitor {
 public:
  explicit FieldWriter(JournaldSink& sink) : s_(sink) {}

  void str(std::string_view name, std::string_view value) override { field(name, {}, value); }
  // to_chars, not snprintf: a record has some twenty numbers, and
  // snprintf's format parsing was a visible part of the sink's cost.
  void num(std::string_view name, uint64_t value) override {
    char buf[24];
    field(name, {}, {buf, std::to_chars(buf, buf + sizeof buf, value).ptr});
  }
  void inum(std::string_view name, int64_t value) override {
    char buf[24];
    field(name, {}, {buf, std::to_chars(buf, buf + sizeof buf, value).ptr});
  }
  void millis(std::string_view name, uint64_t ns) override {
    char buf[32];
    char* p = std::to_chars(buf, buf + sizeof buf, ns / 1000000).ptr;
    *p++ = '.';
    uint64_t frac = ns % 1000000;
    for (int i = 5; i >= 0; --i, frac /= 10) p[i] = static_cast<char>('0' + frac % 10);
    field(name, {}, {buf, p + 6});
  }
  void time(std::string_view name, uint64_t ns) override {
    char buf[40];
    field(name, {}, {buf, formatTime(ns, buf)});
    field(name, "_NS", {buf, std::to_chars(buf, buf + sizeof buf, ns).ptr});
  }
  void addr(std::string_view name, const uint8_t* addr16, uint8_t family) override {
    char buf[INET6_ADDRSTRLEN];
    if (family == 4) {
      inet_ntop(AF_INET, addr16 + 12, buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, addr16, buf, sizeof buf);
    }
    field(name, {}, buf);
  }
  void flags(std::string_view name, uint32_t bits, const char* const* names,
             size_t count) override {
    for (size_t i = 0; i < count; ++i) {
      if (bits & (1u << i)) field(name, {}, names[i]);
    }
  }

 private:
  void field(std::string_view name, std::string_view suffix, std::string_view value) {
    if (s_.iov_count_ == kMaxFields) return;  // cannot happen with the schema's field count
    if (value.size() > kMaxValueBytes) {
      value = value.substr(0, kMaxValueBytes);
      ++s_.truncated_values_;
    }
    char* const start = s_.arena_.get() + s_.arena_used_;
    char* p = start;
    p += writeFieldName(name, p);
    p = std::copy(suffix.begin(), suffix.end(), p);
    *p++ = '=';
    p = std::copy(value.begin(), value.end(), p);
    s_.arena_used_ += static_cast<size_t>(p - start);
    s_.iov_[s_.iov_count_++] = {start, static_cast<size_t>(p - start)};
  }

  JournaldSink& s_;
};

JournaldSink::JournaldSink(std::string_view identifier)
    // Every field fits: at most kMaxFields of name + suffix + '=' + value.
    : arena_size_(kMaxFields * (kMaxNameBytes + kNameSuffixBytes + 1 + kMaxValueBytes)) {
  identifier_field_.append("SYSLOG_IDENTIFIER=").append(identifier);
  arena_ = std::make_unique_for_overwrite<char[]>(arena_size_);
  message_.reserve(256);
  packet_.reserve(arena_size_ + kMaxFields * 16);
}

JournaldSink::~JournaldSink() { disconnect(); }

void JournaldSink::begin(int priority) {
  static constexpr const char* kPriority[] = {"PRIORITY=0", "PRIORITY=1", "PRIORITY=2",
                                              "PRIORITY=3", "PRIORITY=4", "PRIORITY=5",
                                              "PRIORITY=6", "PRIORITY=7"};
  arena_used_ = 0;
  iov_count_ = 0;
  iov_[iov_count_++] = {message_.data(), message_.size()};
  iov_[iov_count_++] = {const_cast<char*>(kPriority[priority]), std::strlen(kPriority[priority])};
  iov_[iov_count_++] = {identifier_field_.data(), identifier_field_.size()};
}

void JournaldSink::send() {
  encode();
  const int err = transmit();
  if (err == 0) {
    ++sent_;
    if (failing_) {
      std::fprintf(stderr,
                   "l7tap: journald: sending again; %" PRIu64 " records were lost meanwhile\n",
                   failures_ - failures_before_episode_);
      failing_ = false;
    }
    return;
  }
  ++failures_;
  last_error_ = err;
  if (!failing_) {
    failing_ = true;
    failures_before_episode_ = failures_ - 1;
    std::fprintf(stderr,
                 "l7tap: journald: %s (%s); records meant for it are lost and counted until it "
                 "takes them again\n",
                 err == EAGAIN ? "not reading" : "cannot send", std::strerror(err));
  }
}

// The native protocol: NAME=value lines, or NAME, a newline, the value's
// length (64-bit little endian), the value and a newline when the value
// holds a newline itself.
void JournaldSink::encode() {
  packet_.clear();
  for (size_t i = 0; i < iov_count_; ++i) {
    const std::string_view field(static_cast<const char*>(iov_[i].iov_base), iov_[i].iov_len);
    const size_t eq = field.find('=');
    const std::string_view value = field.substr(eq + 1);
    if (value.find('\n') == std::string_view::npos) {
      packet_.append(field).push_back('\n');
      continue;
    }
    packet_.append(field.substr(0, eq)).push_back('\n');
    uint64_t n = value.size();
    for (int b = 0; b < 8; ++b, n >>= 8) packet_.push_back(static_cast<char>(n & 0xff));
    packet_.append(value).push_back('\n');
  }
}

int JournaldSink::connectJournal() {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno;
  // Room for the largest entry in one datagram, as libsystemd asks for too.
  const int size = static_cast<int>(kSocketBufferBytes);
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, kJournalSocket, sizeof kJournalSocket);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int err = errno;
    ::close(fd);
    return err;
  }
  fd_ = fd;
  return 0;
}

void JournaldSink::disconnect() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// Never blocks for long: a journald that stopped reading must not stop the
// capture. A busy one gets kMaxSendWaitMs to catch up; once that ran out,
// records are dropped at once until a send succeeds again.
int JournaldSink::transmit() {
  bool waited = false;
  for (int connects = 0;;) {
    if (fd_ < 0) {
      if (connects++ == kMaxConnects) return last_connect_error_;
      last_connect_error_ = connectJournal();
      if (last_connect_error_ != 0) return last_connect_error_;
    }
    if (::send(fd_, packet_.data(), packet_.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
      stalled_ = false;
      return 0;
    }
    const int err = errno == EWOULDBLOCK ? EAGAIN : errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      if (stalled_ || waited) {
        stalled_ = true;
        return err;
      }
      waited = true;
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, kMaxSendWaitMs) > 0) continue;
      stalled_ = true;
      return err;
    }
    if (err == EMSGSIZE || err == ENOBUFS) return err;  // this entry only
    // The journald we were connected to is gone (restarted, stopped): the
    // socket file may name a new one.
    disconnect();
    last_connect_error_ = err;
  }
}

void JournaldSink::onRecord(const ConnectionInfo& conn, const Record& record) {
  message_.assign("MESSAGE=");
  record.appendMessage(message_, conn);
  begin(record.priority());
  FieldWriter w(*this);
  record.visit(conn, w);
  send();
}

bool JournaldSink::journalAvailable() {
  struct stat st;
  if (::stat(kJournalSocket, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, kJournalSocket, sizeof kJournalSocket);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

}  // namespace l7tap
