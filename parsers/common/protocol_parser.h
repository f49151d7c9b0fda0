// One interface for every protocol parser: the session routes each side's
// bytes, gaps and ends to it by role, and asks it what the capture may skip,
// what the connection record says of it and what it counted.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "parsers/common/records.h"

namespace l7tap {

/// Who sent the bytes, by protocol role (never by packet direction).
enum class Role : uint8_t { kClient = 0, kServer = 1 };

/// What the session must do with the rest of the input after a call.
enum class ParseOutcome : uint8_t {
  kContinue,        ///< all bytes consumed; keep feeding this parser
  kSwitchProtocol,  ///< an Upgrade was accepted (see ProtocolParser::upgrade()):
                    ///< bytes from `consumed` on, and all later ones, belong
                    ///< to the protocol it names
  kStop,            ///< tunnel (CONNECT, WebSocket, ...): stop parsing this connection
};

struct ParseResult {
  ParseOutcome outcome = ParseOutcome::kContinue;
  size_t consumed = 0;  ///< bytes of the input this parser took
};

/// After kSwitchProtocol: the protocol the connection switched to, by its
/// Upgrade token ("h2c"), and the request that asked for it (the new
/// protocol answers it). Valid until the parser that returned it is destroyed.
struct Upgrade {
  std::string_view token;
  const Record* request = nullptr;
};

/// Receives a parser's counters, in the same order every time.
class CounterVisitor {
 public:
  /// `name` is static ("http1.parse_errors"); `notable`: an oddity the
  /// summary names when it is not zero.
  virtual void counter(std::string_view name, uint64_t value, bool notable) = 0;

 protected:
  ~CounterVisitor() = default;
};

class ProtocolParser : public ConnFacts {
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

  /// False when the parser learns nothing more from payload (TLS after its
  /// first handshake record): the capture need only count the connection.
  virtual bool needsPayload() const { return true; }
  /// Bytes that will follow from `role` which the parser does not need to
  /// see, only to count (the rest of a body of known length, the rest of an
  /// HTTP/2 DATA frame): the capture may skip them, they then arrive as a gap.
  virtual uint64_t skippableBytes(Role role) const {
    (void)role;
    return 0;
  }
  /// True when the capture can follow this protocol's frame headers itself
  /// (tc/frame_walk.h: HTTP/2's), once told where one starts.
  virtual bool framesWalkable() const { return false; }
  /// Bytes from `role` until the next frame header starts (0: the next byte
  /// starts one), or -1 when not known: where the capture's walk can start.
  virtual int64_t bytesToNextFrame(Role role) const {
    (void)role;
    return -1;
  }
  /// After kSwitchProtocol: where the connection goes.
  virtual Upgrade upgrade() const { return {}; }
  /// The parser's counters (summed over connections for the summary).
  virtual void visitCounters(CounterVisitor& v) const { (void)v; }
};

}  // namespace l7tap
