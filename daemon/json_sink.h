// JSON lines: one object per record, keys in schema order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "parsers/common/record.h"

namespace l7tap {

/// Appends `s` to `out` as the inside of a JSON string. Valid UTF-8 passes
/// through; control characters become \u00XX; bytes that are not valid UTF-8
/// become the four characters \xHH (an escaped backslash, as Zeek writes
/// them), so binary garbage can neither break the line nor pass for text.
void appendJsonEscaped(std::string& out, std::string_view s);

/// Writes `v` in decimal at `p` (room for 20 bytes); returns the end.
char* writeDecimal(char* p, uint64_t v);

/// A growable byte buffer written through raw pointers: a writer reserves
/// room for the worst case of what it writes next, writes, and commits the
/// end. It only grows (to the largest record buffered), so records cost no
/// allocation and no per-character bounds checks.
class OutputBuffer {
 public:
  /// Room for `n` more bytes; returns where they go.
  char* reserve(size_t n) {
    if (capacity_ - size_ < n) grow(n);
    return data_.get() + size_;
  }
  /// `end`: one past the last byte written since reserve().
  void commit(char* end) { size_ = static_cast<size_t>(end - data_.get()); }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  void clear() { size_ = 0; }

 private:
  void grow(size_t n);
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

/// The text of the last addresses written: records of one connection, and
/// of the connections of one client or server, repeat them.
class AddressTextCache {
 public:
  /// Writes the text of `addr16` (formatAddress) at `p`; returns its length.
  size_t write(const uint8_t* addr16, uint8_t family, char* p);

 private:
  static constexpr size_t kEntries = 4;
  static constexpr size_t kMaxText = 46;  // formatAddress's longest
  struct Entry {
    uint8_t addr[16] = {};
    uint8_t family = 0;
    uint8_t len = 0;
    bool used = false;
    char text[kMaxText];
  };
  Entry entries_[kEntries];
  size_t next_ = 0;  // the entry replaced next
};

/// Writes one JSON object per line to a file descriptor.
///
/// Lines are written whole or not at all, as far as the sink can tell: on a
/// write error (closed pipe, full disk) the sink stops writing, and when the
/// output is a regular file it cuts a partly written line off again, so the
/// records written before the error stay intact and nothing follows them.
class JsonLinesSink final : public RecordSink {
 public:
  /// Lines are collected up to this many bytes before a write (kBuffered).
  static constexpr size_t kBufferBytes = 64 * 1024;
  enum class Flush : uint8_t {
    kEveryRecord,  ///< one write per record (live: records as they happen)
    kBuffered,     ///< one write per kBufferBytes (replay)
  };

  /// Writes to `fd`, which stays owned by the caller.
  JsonLinesSink(int fd, Flush flush);
  ~JsonLinesSink() override;
  JsonLinesSink(const JsonLinesSink&) = delete;
  JsonLinesSink& operator=(const JsonLinesSink&) = delete;

  void onRecord(const ConnectionInfo& conn, const Record& record) override;
  /// Writes what is buffered; false once a write failed.
  bool flush();
  /// False once a write failed; nothing is written after that.
  bool ok() const { return error_ == 0; }
  /// errno of the failed write, 0 if none.
  int error() const { return error_; }
  /// Records written completely.
  uint64_t recordsWritten() const { return records_written_; }
  /// Records not written because of the error.
  uint64_t recordsLost() const { return records_lost_; }

 private:
  void fail(int error, size_t landed);
  int fd_;
  Flush flush_;
  OutputBuffer buffer_;  // whole lines not yet written
  AddressTextCache addresses_;
  size_t buffered_records_ = 0;
  uint64_t records_written_ = 0;
  uint64_t records_lost_ = 0;
  int error_ = 0;
};

}  // namespace l7tap
