// One interface for every protocol parser (HTTP/1, HTTP/2): the session
// routes each side's bytes, gaps and ends to it by role.
#pragma once

#include <cstdint>
#include <span>

namespace l7tap {

/// Who sent the bytes, by protocol role (never by packet direction).
enum class Role : uint8_t { kClient = 0, kServer = 1 };

/// What the session must do with the rest of the input after a call.
enum class ParseOutcome : uint8_t {
  kContinue,       ///< all bytes consumed; keep feeding this parser
  kSwitchToHttp2,  ///< h2c Upgrade accepted: bytes from `consumed` on, and all
                   ///< later ones, belong to the HTTP/2 parser
  kStop,           ///< tunnel (CONNECT, WebSocket, ...): stop parsing this connection
};

struct ParseResult {
  ParseOutcome outcome = ParseOutcome::kContinue;
  size_t consumed = 0;  ///< bytes of the input this parser took
};

class ProtocolParser {
 public:
  virtual ~ProtocolParser() = default;
  /// In-order bytes from `role`; borrowed for this call only.
  virtual ParseResult onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) = 0;
  /// `length` bytes from `role` are lost. Inside a body of known length the
  /// parser skips them; anywhere else it closes the affected exchange with
  /// kFlagGap and resynchronises at the next message boundary.
  virtual void onGap(Role role, uint64_t length, uint64_t ts_ns) = 0;
  /// `role` finished sending (FIN or RST).
  virtual void onEnd(Role role, bool reset, uint64_t ts_ns) = 0;
  /// The connection is gone: emit every open exchange (kFlagNoResponse etc).
  virtual void finish(uint64_t ts_ns) = 0;
  /// Bytes that will follow from `role` which the parser does not need to
  /// see, only to count (the rest of a body of known length, the rest of an
  /// HTTP/2 DATA frame): the capture may skip them, they then arrive as a gap.
  virtual uint64_t skippableBytes(Role role) const {
    (void)role;
    return 0;
  }
};

}  // namespace l7tap
