// journald: one entry per record, one datagram in the native journal protocol
// on a socket of its own that never blocks for long. Not sd_journal_sendv():
// it blocks while journald is stuck (seen here: the daemon hung, even through
// SIGTERM, with the whole node's capture behind it), and it gives no way to
// bound the wait or count what was lost. The fields are
// the schema's (daemon/record_schema.h), renamed for journald, plus MESSAGE
// and PRIORITY (Record::appendMessage, Record::priority) and
// SYSLOG_IDENTIFIER:
//
//   - a schema name is upper-cased and every character outside A-Z0-9 becomes
//     '_' (`http.response.status_code` -> HTTP_RESPONSE_STATUS_CODE); the two
//     names without a namespace, "type" and "time", get an `L7TAP_` prefix
//     (L7TAP_TYPE=http|conn, L7TAP_TIME), since bare TYPE/TIME would collide
//     with other programs' fields;
//   - a time field is written twice: NAME=<RFC 3339, as in JSON> and
//     NAME_NS=<nanoseconds since the epoch> (journald's own timestamps are
//     when the entry was written, not when the traffic happened);
//   - the flag list `l7tap.flags` becomes one L7TAP_FLAGS=<name> field per
//     flag (journald keeps repeated fields, so `journalctl L7TAP_FLAGS=gap`
//     matches any record with that flag);
//   - values are sent as bytes with their length (binary-safe) and cut at
//     kMaxValueBytes; only MESSAGE is escaped, so it stays printable UTF-8.
//
// PRIORITY: HTTP 5xx -> 4 (warning), 4xx -> 5 (notice), everything else 6
// (info), including records without a response (they carry the no_response
// flag and say "no response" in MESSAGE; most come from captures or daemons
// that stop while a request is open) and connection records.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "parsers/common/records.h"

namespace l7tap {

/// journald field name for a schema name: `http.response.status_code` ->
/// `HTTP_RESPONSE_STATUS_CODE`; names without a '.' get an `L7TAP_` prefix
/// (`type` -> `L7TAP_TYPE`).
std::string journaldFieldName(std::string_view schema_name);

/// Appends `s` so that it is printable UTF-8 (appendPrintable()).
void appendMessageEscaped(std::string& out, std::string_view s);

/// MESSAGE of a record (Record::appendMessage) and PRIORITY
/// (Record::priority), for tests and tools.
std::string formatHttpMessage(const ConnectionInfo& conn, const HttpRecord& record);
std::string formatConnMessage(const ConnectionInfo& conn, const ConnRecord& record);
int journaldPriority(const Record& record);

class JournaldSink final : public RecordSink {
 public:
  static constexpr size_t kMaxValueBytes = 2048;  ///< longer values are cut
  /// path?query bytes shown in an HTTP record's MESSAGE.
  static constexpr size_t kMaxMessageTarget = HttpRecord::kMaxMessageTarget;
  static constexpr size_t kMaxFields = 96;  ///< iovecs per entry

  /// `identifier` becomes SYSLOG_IDENTIFIER (what `journalctl -t` selects).
  explicit JournaldSink(std::string_view identifier = "l7tap");
  ~JournaldSink() override;
  JournaldSink(const JournaldSink&) = delete;
  JournaldSink& operator=(const JournaldSink&) = delete;

  /// MESSAGE and PRIORITY from the record kind, then its fields.
  void onRecord(const ConnectionInfo& conn, const Record& record) override;

  static constexpr int kMaxSendWaitMs = 1000;  ///< for a busy journald, once per stall
  static constexpr size_t kSocketBufferBytes = 8u << 20;

  /// False once a send failed (no journal socket, journald gone or not
  /// reading); later records are still attempted. The first failure of a
  /// run of them and the first success after it are said on standard error.
  bool ok() const { return failures_ == 0; }
  /// Records lost: not taken by journald.
  uint64_t failures() const { return failures_; }
  /// Records journald took.
  uint64_t sent() const { return sent_; }
  /// errno of the last failed send, 0 if none.
  int lastError() const { return last_error_; }
  /// Values cut at kMaxValueBytes (the record is still sent).
  uint64_t truncatedValues() const { return truncated_values_; }

  /// The fields of the last record, as encoded for journald (valid
  /// until the next record; for tests).
  std::span<const iovec> lastEntry() const { return {iov_, iov_count_}; }

  /// True when /run/systemd/journal/socket is a socket that accepts a
  /// connection (a journald is listening, not just a stale socket file left
  /// by one that exited).
  static bool journalAvailable();

 private:
  class FieldWriter;                      // the schema visitor (journald_sink.cc)
  static constexpr int kMaxConnects = 2;  ///< per record: the socket, then a new one
  void begin(int priority);
  void send();
  void encode();
  int transmit();
  int connectJournal();
  void disconnect();

  std::string identifier_field_;  // "SYSLOG_IDENTIFIER=..."
  std::string message_;           // "MESSAGE=...", reused
  std::unique_ptr<char[]> arena_;
  size_t arena_size_ = 0;
  size_t arena_used_ = 0;
  iovec iov_[kMaxFields];
  size_t iov_count_ = 0;
  std::string packet_;  // the encoded entry, reused
  int fd_ = -1;         // connected to the journal socket
  bool failing_ = false;
  uint64_t failures_before_episode_ = 0;  // failures_ when the current run of them began
  bool stalled_ = false;                  // journald did not read within kMaxSendWaitMs
  int last_connect_error_ = 0;
  uint64_t sent_ = 0;
  uint64_t failures_ = 0;
  int last_error_ = 0;
  uint64_t truncated_values_ = 0;
};

}  // namespace l7tap
