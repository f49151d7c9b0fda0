// What the flow table tells the capture (the kernel program live, replay's
// imitation of it in replay) about bytes the parsers will not need, in
// sequence numbers, by canonical flow key (tc/flow_key.h) and direction
// index: 0 is the direction from the key's source, as the kernel counts it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tc/flow_key.h"
#include "tc/l7tap_abi.h"

/// Keys compare bytewise: l7tap_canonical() zeroes the padding.
inline bool operator==(const l7tap_flow_key& a, const l7tap_flow_key& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

namespace l7tap {

/// A flow key in canonical form (l7tap_canonical()): the kernel's map key,
/// and the flow table's.
using CanonicalFlowKey = l7tap_flow_key;

struct CanonicalFlowKeyHash {
  size_t operator()(const CanonicalFlowKey& k) const noexcept;
};

/// The canonical form of a packet's key.
inline CanonicalFlowKey canonicalKey(const l7tap_flow_key& key) {
  CanonicalFlowKey c;
  l7tap_canonical(&key, &c);
  return c;
}

class CaptureControl {
 public:
  virtual ~CaptureControl() = default;
  /// Copy nothing of the sequence range [begin, end) in direction `dir`.
  virtual void skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) = 0;
  /// Copy no payload of this connection at all; keep counting it.
  virtual void countOnly(const CanonicalFlowKey& key) = 0;
  /// A frame header of the framing the capture can follow (tc/frame_walk.h)
  /// starts at `frame_seq` in direction `dir`: follow the frames from there.
  /// A capture that loses its place marks a segment L7TAP_SEG_WALK_LOST.
  virtual void walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) = 0;
  /// The connection is gone: drop its entry.
  virtual void forget(const CanonicalFlowKey& key) = 0;
};

}  // namespace l7tap
