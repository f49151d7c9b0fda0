// Finding the next HTTP/1 message boundary in a byte stream that lost its
// alignment: a capture joined mid-connection, a gap outside a body, or a
// parse error. One routine for both roles, shared by every recovery path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parsers/common/protocol_parser.h"

namespace l7tap::http1 {

/// Whether bytes that start at a line start begin an HTTP/1 message.
enum class LineMatch : uint8_t {
  kNo,        ///< not a message start
  kYes,       ///< a message starts here
  kNeedMore,  ///< a plausible prefix: decide when more bytes arrive
};

/// Longest method token taken for a request (the longest registered one,
/// UPDATEREDIRECTREF, has 17 bytes); longer ones are no HTTP/1 to us.
constexpr size_t kMaxMethodBytes = 32;

/// An RFC 9110 token character (tchar).
bool isTchar(char c);

/// Whether llhttp parses `token` as an HTTP/1.x method (HTTP_METHOD_MAP);
/// it refuses any other token on an HTTP/1.x request line.
bool isLlhttpMethod(std::string_view token);

/// Whether `token` begins one of those methods.
bool isLlhttpMethodPrefix(std::string_view token);

/// The length of the run of tchars `line` starts with, at most
/// kMaxMethodBytes + 1 (more is no method).
size_t methodTokenLength(std::string_view line);

/// `line` starts at a line start. A request line is
/// `METHOD SP target SP HTTP/1.0|1.1 CRLF` (or a bare LF) with METHOD any
/// token of at most kMaxMethodBytes, a non-empty target and no control bytes.
/// Need-more while the line is incomplete. `max_line` bounds how long a line
/// may be before it stops being a candidate.
LineMatch matchRequestLine(std::string_view line, size_t max_line);

/// `line` starts at a line start. A status line starts with `HTTP/1.0 ` or
/// `HTTP/1.1 ` followed by three digits.
LineMatch matchStatusLine(std::string_view line);

/// Scans forward for the next message boundary of one side. A boundary is a
/// line start (the first byte after start(), the first byte of a segment, or
/// the byte after a '\n') that matches the role's start line. A candidate line split across calls
/// is kept in a bounded tail and completed by the next call.
class ResyncScanner {
 public:
  ResyncScanner(Role role, size_t max_line, size_t max_scan);

  /// Enter resync: forget any held bytes. `at_line_start`: whether the next
  /// byte begins a line (true after a gap or at the start of a capture).
  void start(bool at_line_start = true);

  struct Result {
    bool found = false;
    /// When found: bytes held from earlier calls that begin the message (for
    /// a request, its whole request line, completed from `input`); feed
    /// them before `input[input_offset..]`. Valid until the next call.
    std::string_view replay;
    /// When found: where in `input` the message (or its continuation) starts.
    size_t input_offset = 0;
    /// Bytes dropped by this call (earlier input included, once known to be
    /// no boundary).
    uint64_t dropped = 0;
  };

  /// Scans `input` (which follows earlier input without a gap). When not
  /// found, every byte of `input` is either dropped or held in the tail.
  /// `segment_start`: `input` begins a new segment; unless a held line
  /// continues into it, its first byte is a candidate too (a message after a
  /// body that does not end in CRLF usually starts a segment).
  Result scan(std::string_view input, bool segment_start = false);

  /// Bytes currently held as a possible boundary.
  size_t heldBytes() const { return tail_.size(); }
  /// Whether the next byte scanned begins a line (for start() after a pause).
  bool atLineStart() const { return line_start_; }

 private:
  LineMatch match(std::string_view line) const;

  Role role_;
  size_t max_line_;
  size_t max_scan_;
  bool line_start_ = true;
  std::string tail_;    // a plausible line prefix, starting at a line start
  std::string replay_;  // the tail handed out by the last successful scan
};

}  // namespace l7tap::http1
