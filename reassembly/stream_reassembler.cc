#include "reassembly/stream_reassembler.h"

#include <algorithm>

namespace l7tap {

namespace {
// Sequence numbers start this far above zero once unwrapped, so a segment
// slightly before the first one seen still unwraps to a positive value.
constexpr uint64_t kUnwrapBase = 1ull << 32;
// An acknowledgement further ahead than this is not believed: it would mean
// gigabytes missed, which is far likelier a broken or foreign packet.
constexpr uint64_t kMaxAckJump = 1ull << 30;
}  // namespace

void StreamReassembler::start(uint64_t first_seq) {
  started_ = true;
  next_ = kUnwrapBase + first_seq;
  stream_start_ = first_seq;
}

void StreamReassembler::onSyn(uint32_t isn) {
  if (started_) return;  // a retransmitted SYN
  start(isn);
  next_ += 1;  // the SYN takes one sequence number
  stream_start_ = static_cast<uint32_t>(next_);
}

void StreamReassembler::onSegment(uint32_t seq, uint32_t payload_len,
                                  std::span<const uint8_t> captured, bool fin, uint64_t ts_ns,
                                  const Context& cx) {
  if (ended_) return;
  if (!started_) {
    if (payload_len == 0 && !fin) return;
    start(seq);
  }
  captured = captured.first(std::min<size_t>(captured.size(), payload_len));
  const uint64_t begin = unwrap(seq);
  const uint64_t end = begin + payload_len;
  if (fin && !fin_seen_) {
    fin_seen_ = true;
    fin_seq_ = end;
  }
  if (payload_len == 0) {
    maybeEnd(ts_ns, cx);
    return;
  }
  if (end <= next_) {
    cx.stats.countAnomaly().retransmitted_segments++;
    cx.stats.countAnomaly().retransmitted_bytes += payload_len;
    return;
  }
  if (begin > next_) {
    cx.stats.countAnomaly().out_of_order_segments++;
    buffer(begin, payload_len, captured, ts_ns, cx);
    return;
  }
  if (begin < next_) {
    cx.stats.countAnomaly().retransmitted_segments++;
    cx.stats.countAnomaly().retransmitted_bytes += next_ - begin;
  }
  compareWithBuffered(begin, captured);
  deliver(begin, payload_len, captured, ts_ns, cx);
  drain(ts_ns, cx);
  maybeEnd(ts_ns, cx);
}

void StreamReassembler::deliver(uint64_t begin, uint32_t payload_len,
                                std::span<const uint8_t> captured, uint64_t ts_ns,
                                const Context& cx) {
  const uint64_t known_end = begin + captured.size();
  if (next_ < known_end) {
    // In order, the segment is delivered whole (Linux's tcp_data_queue):
    // buffered bytes it overlaps are trimmed or dropped by drain() after.
    cx.out.onData(side_, captured.subspan(next_ - begin), ts_ns);
    next_ = known_end;
    countReachedConflicts(cx);
  }
  // Bytes the window did not copy: a gap of known length.
  gapTo(begin + payload_len, ts_ns, cx, /*seen=*/true);
}

void StreamReassembler::compareWithBuffered(uint64_t begin, std::span<const uint8_t> captured) {
  if (!hasBuffered()) return;
  OutOfOrder& q = *out_of_order_;
  const uint64_t end = begin + captured.size();
  // Buffered segments are keyed by start; one starting before `begin` may overlap too.
  auto it = q.upper_bound(begin);
  if (it != q.begin()) --it;
  for (; it != q.end() && it->first < end; ++it) {
    const uint64_t other_begin = it->first;
    const uint64_t other_end = other_begin + it->second.captured.size();
    const uint64_t lo = std::max(begin, other_begin);
    const uint64_t hi = std::min(end, other_end);
    for (uint64_t i = lo; i < hi; ++i) {
      if (captured[i - begin] != it->second.captured[i - other_begin]) {
        if (q.conflicts == 0 || i < q.conflict_from) q.conflict_from = i;
        if (q.conflicts != UINT32_MAX) ++q.conflicts;
      }
    }
  }
}

void StreamReassembler::countReachedConflicts(const Context& cx) {
  if (out_of_order_ == nullptr || out_of_order_->conflicts == 0) return;
  if (out_of_order_->conflict_from >= next_) return;
  cx.stats.countAnomaly().conflicting_overlap_bytes += out_of_order_->conflicts;
  out_of_order_->conflicts = 0;
}

void StreamReassembler::buffer(uint64_t begin, uint32_t payload_len,
                               std::span<const uint8_t> captured, uint64_t ts_ns,
                               const Context& cx) {
  while ((out_of_order_ != nullptr ? out_of_order_->size() : 0) >=
             cx.limits.max_out_of_order_segments ||
         bufferedBytes() + captured.size() > cx.limits.max_out_of_order_bytes) {
    // Over the bound: give up the oldest hole instead of growing.
    cx.stats.countAnomaly().out_of_order_overflows++;
    const uint64_t first = hasBuffered() ? std::min(begin, firstBuffered()) : begin;
    gapTo(first, ts_ns, cx);
    drain(ts_ns, cx);
    if (begin <= next_) {
      if (begin + payload_len > next_) {
        compareWithBuffered(begin, captured);
        deliver(begin, payload_len, captured, ts_ns, cx);
        drain(ts_ns, cx);
      }
      maybeEnd(ts_ns, cx);
      return;
    }
  }
  compareWithBuffered(begin, captured);
  insertOutOfOrder(begin, payload_len, captured, ts_ns);
}

void StreamReassembler::insertOutOfOrder(uint64_t begin, uint32_t payload_len,
                                         std::span<const uint8_t> captured, uint64_t ts_ns) {
  if (out_of_order_ == nullptr) out_of_order_ = std::make_unique<OutOfOrder>();
  OutOfOrder& q = *out_of_order_;
  const uint64_t end = begin + payload_len;
  auto after = q.upper_bound(begin);
  if (after != q.begin()) {
    auto before = std::prev(after);
    const uint64_t before_end = before->first + before->second.payload_len;
    if (begin < before_end) {
      if (end <= before_end) return;  // all its bytes are queued already: dropped
      if (before->first == begin) {   // same start, reaches further: replaces it
        q.bytes -= static_cast<uint32_t>(before->second.captured.size());
        q.erase(before);
      }
      // else a partial overlap: both are kept, the earlier wins on delivery
    }
  }
  // Queued segments it covers from start to end are removed (merge_right).
  while (after != q.end() && after->first < end &&
         after->first + after->second.payload_len <= end) {
    q.bytes -= static_cast<uint32_t>(after->second.captured.size());
    after = q.erase(after);
  }
  auto it = q.emplace_hint(after, begin, Pending{payload_len, {}, ts_ns});
  it->second.captured.assign(captured.begin(), captured.end());
  q.bytes += static_cast<uint32_t>(captured.size());
}

void StreamReassembler::deliverFirstBuffered(uint64_t now_ns, const Context& cx) {
  auto it = out_of_order_->begin();
  Pending pending = std::move(it->second);
  const uint64_t begin = it->first;
  out_of_order_->bytes -= static_cast<uint32_t>(pending.captured.size());
  out_of_order_->erase(it);
  // Buffered bytes are delivered when the stream reaches them: at the time
  // of the packet that filled the hole before them, not of the packet that
  // brought them (a body that overtook its headers is readable only once
  // the headers came), so a stream's times never go back. Bytes below next_
  // lost to the segment earlier in sequence (tcp_ofo_queue trims or drops).
  if (begin + pending.payload_len > next_) {
    deliver(begin, pending.payload_len, pending.captured, std::max(pending.ts_ns, now_ns), cx);
  }
  if (out_of_order_->empty()) {
    // Every conflict lies below next_ by now; count any left before freeing.
    if (out_of_order_->conflicts != 0) {
      cx.stats.countAnomaly().conflicting_overlap_bytes += out_of_order_->conflicts;
    }
    out_of_order_.reset();
  }
}

void StreamReassembler::drain(uint64_t now_ns, const Context& cx) {
  while (hasBuffered() && firstBuffered() <= next_) {
    deliverFirstBuffered(now_ns, cx);
  }
}

void StreamReassembler::gapTo(uint64_t target, uint64_t ts_ns, const Context& cx, bool seen) {
  if (target <= next_) return;
  const uint64_t length = target - next_;
  cx.stats.countAnomaly().missed_bytes += length;
  if (!seen) cx.stats.countAnomaly().hole_bytes += length;
  next_ = target;
  cx.out.onGap(side_, length, ts_ns);
  countReachedConflicts(cx);
}

void StreamReassembler::onPeerAck(uint32_t ack, uint64_t ts_ns, const Context& cx) {
  if (!started_ || ended_) return;
  uint64_t limit = unwrap(ack);
  if (fin_seen_) limit = std::min(limit, fin_seq_);
  if (limit <= next_ || limit - next_ > kMaxAckJump) return;
  while (next_ < limit) {
    uint64_t target = limit;
    if (hasBuffered()) target = std::min(target, firstBuffered());
    gapTo(target, ts_ns, cx);
    drain(ts_ns, cx);
  }
  maybeEnd(ts_ns, cx);
}

void StreamReassembler::flush(uint64_t ts_ns, const Context& cx) {
  if (!started_ || ended_) return;
  while (hasBuffered()) {
    gapTo(firstBuffered(), ts_ns, cx);
    drain(ts_ns, cx);
  }
  if (fin_seen_) gapTo(fin_seq_, ts_ns, cx);
  maybeEnd(ts_ns, cx);
}

void StreamReassembler::reset(uint64_t ts_ns, const Context& cx) {
  flush(ts_ns, cx);
  if (ended_) return;
  ended_ = true;
  cx.out.onEnd(side_, EndKind::kRst, ts_ns);
}

void StreamReassembler::maybeEnd(uint64_t ts_ns, const Context& cx) {
  if (fin_seen_ && !ended_ && next_ >= fin_seq_) {
    ended_ = true;
    cx.out.onEnd(side_, EndKind::kFin, ts_ns);
  }
}

}  // namespace l7tap
