// A connection's capture hints: stream offsets of a side become sequence
// ranges of the capture's direction at once.
#include <algorithm>

#include "reassembly/capture_hints.h"
#include "reassembly/flow_connection.h"

namespace l7tap {

void FlowTable::hintSkip(Connection& conn, Side side, uint64_t offset, uint64_t length) {
  if (!capture_control_ || conn.count_only || length == 0) return;
  conn.capture_controlled = true;
  const int s = index(side);
  if (!conn.dir[s].started()) {
    conn.rareState().pending[s] = {true, false, offset, length};
    return;
  }
  const uint32_t begin = conn.dir[s].seqAtOffset(offset);
  const uint64_t cut = std::min<uint64_t>(length, limits_.max_skip_bytes);
  capture_control_->skip(conn.key(), conn.origDir() ^ static_cast<uint32_t>(s), begin,
                         begin + static_cast<uint32_t>(cut));
}

void FlowTable::hintCountOnly(Connection& conn) {
  if (!capture_control_) return;
  conn.capture_controlled = true;
  conn.count_only = true;
  if (conn.rare) conn.rare->pending[0].set = conn.rare->pending[1].set = false;
  capture_control_->countOnly(conn.key());
}

void FlowTable::hintWalkFrames(Connection& conn, Side side, uint64_t offset) {
  if (!capture_control_ || conn.count_only) return;
  conn.capture_controlled = true;
  const int s = index(side);
  if (!conn.dir[s].started()) {
    conn.rareState().pending[s] = {true, true, offset, 0};
    return;
  }
  capture_control_->walkFrames(conn.key(), conn.origDir() ^ static_cast<uint32_t>(s),
                               conn.dir[s].seqAtOffset(offset));
}

void FlowTable::applyPendingHints(Connection& conn) {
  for (const Side side : {Side::kOrig, Side::kResp}) {
    Rare::Hint& h = conn.rare->pending[index(side)];
    if (!h.set || !conn.dir[index(side)].started()) continue;
    h.set = false;
    if (h.walk)
      hintWalkFrames(conn, side, h.offset);
    else
      hintSkip(conn, side, h.offset, h.length);
  }
}

}  // namespace l7tap
