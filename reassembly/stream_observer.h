// The contract between reassembly and the protocol parsers: in-order bytes,
// gaps of known length and end-of-stream per direction, each with the
// timestamp of the packet that carried it. No sequence numbers cross it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "reassembly/capture_hints.h"
#include "reassembly/connection_stats.h"

namespace l7tap {

/// Receives one connection's reassembled byte streams. All calls for a
/// connection come from the pipeline thread, in stream order per side.
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  /// In-order bytes from `side`. The span is borrowed for this call only.
  virtual void onData(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns) = 0;
  /// `length` bytes of `side`'s stream that will never be seen.
  virtual void onGap(Side side, uint64_t length, uint64_t ts_ns) = 0;
  /// `side` finished sending: FIN (graceful) or RST.
  virtual void onEnd(Side side, EndKind kind, uint64_t ts_ns) = 0;
  /// The connection is being removed; `conn` holds its final statistics.
  /// The observer may still emit records, and is destroyed right after.
  virtual void onClose(const ConnectionInfo& conn) = 0;
  /// A long-lived connection's statistics so far (FlowTable::reportInterim).
  virtual void onInterim(const ConnectionInfo& conn) { (void)conn; }
  /// What the capture says of its frame walk of `side`, carried by the
  /// segment whose bytes (or gap) come right after this call.
  virtual void onCaptureWalk(Side side, CaptureWalk walk) {
    (void)side;
    (void)walk;
  }
};

/// Creates the observer of each new connection (and of each plaintext stream,
/// FlowTable::onPlaintext). `conn` and `hints` live as long as the observer.
class StreamObserverFactory {
 public:
  virtual ~StreamObserverFactory() = default;
  virtual std::unique_ptr<StreamObserver> create(ConnectionInfo& conn, CaptureHints& hints) = 0;
  /// The observer of a connection's plaintext stream (FlowTable::onPlaintext): bytes from a
  /// source above TCP (TLS uprobes), whose records say so. `packets` is where the connection
  /// keeps its segments' observer (null until a segment came; it may come later), which may
  /// know what names the connection on the wire (a TLS ClientHello); it outlives the observer.
  virtual std::unique_ptr<StreamObserver> createPlaintext(
      ConnectionInfo& conn, CaptureHints& hints, const std::unique_ptr<StreamObserver>& packets) {
    (void)packets;
    return create(conn, hints);
  }
};

}  // namespace l7tap
