// The protocol registry: each protocol folder registers how it recognises a
// stream's first bytes and a message boundary in the middle of one, and how
// it makes its parser. The session asks the registry and names no protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "parsers/common/protocol_parser.h"

namespace l7tap {

struct RedactionPolicy;  // redaction/redaction.h

enum class Match : uint8_t { kNo, kNeedMore, kYes };

/// Whether `data` starts with `prefix`: need-more while it still could.
inline Match matchPrefix(std::string_view data, std::string_view prefix) {
  if (data.size() >= prefix.size()) return data.starts_with(prefix) ? Match::kYes : Match::kNo;
  return prefix.starts_with(data) ? Match::kNeedMore : Match::kNo;
}

/// Who sent the bytes a detector recognised.
enum class Sender : uint8_t {
  kClient,
  kServer,
  kUnknown,  ///< the bytes do not say: the connection keeps the roles it has
};

struct Detected {
  Match match = Match::kNo;
  Sender sender = Sender::kClient;
};

/// What a first-bytes detector knows besides the bytes.
struct StartContext {
  /// The bytes fill the detection buffer (SessionLimits::max_detect_bytes):
  /// need-more is the last answer that will be asked for.
  bool buffer_full = false;
  /// The sender is the side that answered the SYN (the server by the
  /// handshake).
  bool sender_answered_syn = false;
};

/// A message boundary found in a stream joined mid-way.
struct Boundary {
  bool found = false;
  Sender sender = Sender::kClient;
  /// The boundary is the chunk's first byte: what the sides held before it
  /// is dropped (it is misaligned).
  bool at_chunk_start = false;
};

/// How a parser starts.
struct ParserStart {
  ExchangeSink* sink = nullptr;
  /// Joined mid-way, or bytes were lost before the protocol was known.
  bool midstream = false;
  /// The client's first bytes, held while detecting (empty if none).
  std::span<const uint8_t> client_bytes;
  /// Set when an Upgrade hands the connection over to this protocol.
  const Upgrade* upgrade = nullptr;
  /// What records must not show (null: redact everything); outlives the parser.
  const RedactionPolicy* redaction = nullptr;
  /// The connection whose L4 counters each exchange takes its events from
  /// (HttpRecord::exchange_l4); null: none. Outlives the parser.
  const ConnectionInfo* conn = nullptr;
};

class Protocol {
 public:
  virtual ~Protocol() = default;
  /// Its name in connection records and the summary ("http/1", "h2").
  virtual std::string_view name() const = 0;
  virtual std::unique_ptr<ProtocolParser> makeParser(const ParserStart& start) const = 0;
  /// True when this protocol takes a connection over after an Upgrade to
  /// `token` ("h2c").
  virtual bool takesUpgrade(std::string_view token) const {
    (void)token;
    return false;
  }
};

/// A side's first bytes (from the start of its stream): is it this protocol?
using StartDetector = Detected (*)(std::span<const uint8_t> bytes, const StartContext& ctx);
/// A side joined mid-way: `chunk` just arrived, `held` is what is kept of the
/// side so far, `chunk` included at its end (a boundary may span segments).
using BoundaryDetector = Boundary (*)(std::span<const uint8_t> chunk,
                                      std::span<const uint8_t> held);

class ProtocolRegistry {
 public:
  ProtocolRegistry() = default;
  ProtocolRegistry(ProtocolRegistry&&) = default;
  ProtocolRegistry& operator=(ProtocolRegistry&&) = default;

  /// Adds a protocol; returns its index (connection counts and the summary
  /// list protocols in the order they were added).
  size_t add(std::unique_ptr<Protocol> protocol);
  /// Detectors run by ascending rank (ties in the order added); the first
  /// yes decides, a need-more anywhere waits for more bytes, all no: none.
  void addStartDetector(int rank, size_t protocol, StartDetector detector);
  void addBoundaryDetector(int rank, size_t protocol, BoundaryDetector detector);

  struct StartResult {
    Match match = Match::kNo;
    Sender sender = Sender::kClient;
    size_t protocol = 0;  ///< when kYes
  };
  StartResult detectStart(std::span<const uint8_t> bytes, const StartContext& ctx) const;
  struct BoundaryResult {
    Boundary boundary;
    size_t protocol = 0;  ///< when boundary.found
  };
  BoundaryResult findBoundary(std::span<const uint8_t> chunk, std::span<const uint8_t> held) const;
  /// The protocol that takes over after an Upgrade to `token`, or -1.
  int upgradeTarget(std::string_view token) const;

  size_t size() const { return protocols_.size(); }
  const Protocol& at(size_t i) const { return *protocols_[i]; }

 private:
  template <class Fn>
  struct Ranked {
    int rank;
    size_t protocol;
    Fn fn;
  };
  std::vector<std::unique_ptr<Protocol>> protocols_;
  std::vector<Ranked<StartDetector>> start_;
  std::vector<Ranked<BoundaryDetector>> boundary_;
};

}  // namespace l7tap
