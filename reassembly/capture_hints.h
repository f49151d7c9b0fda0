// What one connection's analyser (the session) tells the capture about the
// bytes it will not need, in stream offsets of a side: offset 0 is the first
// byte of that side's stream, and every byte or gap delivered advances it.
// The flow table turns the hints into sequence ranges at once and hands them
// to the capture (reassembly/capture_control.h). Nothing here names a
// protocol: the frame walk is the capture's ability to follow a framing
// (tc/frame_walk.h), whichever protocol asks for it.
#pragma once

#include <cstdint>

#include "reassembly/connection_stats.h"

namespace l7tap {

class CaptureHints {
 public:
  virtual ~CaptureHints() = default;
  /// Copy nothing of [offset, offset + length) of `side`'s stream: it will
  /// arrive as a gap of known length.
  virtual void skip(Side side, uint64_t offset, uint64_t length) = 0;
  /// Copy no payload of this connection any more; keep counting it.
  virtual void countOnly() = 0;
  /// A frame header starts at `offset` of `side`'s stream: follow the
  /// frames from there.
  virtual void walkFrames(Side side, uint64_t offset) = 0;
};

/// What the capture says about its frame walk of a side, with a segment
/// (StreamObserver::onCaptureWalk).
enum class CaptureWalk : uint8_t {
  kOn,    ///< the capture walks this side's frames (it may have armed itself)
  kLost,  ///< the walk lost its place: walkFrames() again at a known frame
};

}  // namespace l7tap
