// A toy line-based protocol, to show that adding a protocol touches only its
// own files and its registration: the client sends "ECHO text\n", the server
// answers with the same line. Its own detector, parser and record kind.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "parsers/common/protocol.h"

namespace l7tap::echo {

/// Every bound of the echo parser.
struct EchoLimits {
  /// Bytes kept of a line; longer ones are cut and flagged truncated.
  uint32_t max_line_bytes = 256;
  /// Requests waiting for their answer.
  uint32_t max_pending = 16;
};

/// Flags an EchoRecord can carry.
enum EchoFlag : uint32_t {
  kEchoMismatch = 1u << 0,   ///< the answer differs from the request
  kEchoNoAnswer = 1u << 1,   ///< no answer came before the connection ended
  kEchoTruncated = 1u << 2,  ///< a line was cut at max_line_bytes
  kEchoGap = 1u << 3,        ///< bytes of the exchange were lost
};

/// One request line and its answer.
struct EchoRecord final : Record {
  std::string text;  ///< after "ECHO ", without the line end
  uint64_t request_ns = 0;
  uint64_t answer_ns = 0;
  uint32_t flags = 0;

  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override;
  /// `ECHO hello -> echoed 0.0 ms 10.0.0.1:40000 -> 10.0.0.2:7 [mismatch]`
  void appendMessage(std::string& out, const ConnectionInfo& conn) const override;
  /// A wrong answer is a warning.
  int priority() const override { return flags & kEchoMismatch ? 4 : 6; }
};

/// Pairs request and answer lines by order.
class EchoParser final : public ProtocolParser {
 public:
  EchoParser(ExchangeSink& sink, const EchoLimits& limits) : sink_(sink), limits_(limits) {}
  ParseResult onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) override;
  void onGap(Role role, uint64_t length, uint64_t ts_ns) override;
  void onEnd(Role, bool, uint64_t) override {}
  void finish(uint64_t ts_ns) override;
  void visitCounters(CounterVisitor& v) const override;

 private:
  struct Side {
    std::string line;
    uint64_t line_ns = 0;
    bool cut = false;
    bool lost = false;  // a gap inside the current line
  };
  void onLine(Role role);
  ExchangeSink& sink_;
  EchoLimits limits_;
  Side side_[2];
  std::deque<EchoRecord> pending_;
  uint64_t mismatches_ = 0;
  uint64_t unanswered_ = 0;
};

/// The registration: the detector ("ECHO " from the client), the parser.
size_t registerEcho(ProtocolRegistry& registry, const EchoLimits& limits = {});

}  // namespace l7tap::echo
