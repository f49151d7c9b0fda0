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
  deliver(begin, payload_len, captured, ts_ns, cx);
  drain(ts_ns, cx);
  maybeEnd(ts_ns, cx);
}

void StreamReassembler::deliver(uint64_t begin, uint32_t payload_len,
                                std::span<const uint8_t> captured, uint64_t ts_ns,
                                const Context& cx) {
  compareWithBuffered(begin, captured, cx);
  const uint64_t known_end = begin + captured.size();
  while (next_ < known_end) {
    // First wins: a buffered segment that starts inside this one arrived
    // earlier, so its bytes are delivered in place of ours where they overlap.
    uint64_t limit = known_end;
    if (hasBuffered() && firstBuffered() < limit) {
      limit = std::max(firstBuffered(), next_);
    }
    if (limit > next_) {
      cx.out.onData(side_, captured.subspan(next_ - begin, limit - next_), ts_ns);
      next_ = limit;
    }
    if (next_ < known_end) deliverFirstBuffered(ts_ns, cx);
  }
  // Bytes the window did not copy: a gap of known length.
  gapTo(begin + payload_len, ts_ns, cx, /*seen=*/true);
}

void StreamReassembler::compareWithBuffered(uint64_t begin, std::span<const uint8_t> captured,
                                            const Context& cx) {
  if (!hasBuffered()) return;
  const uint64_t end = begin + captured.size();
  // Buffered segments are keyed by start; one starting before `begin` may overlap too.
  auto it = out_of_order_->upper_bound(begin);
  if (it != out_of_order_->begin()) --it;
  for (; it != out_of_order_->end() && it->first < end; ++it) {
    const uint64_t other_begin = it->first;
    const uint64_t other_end = other_begin + it->second.captured.size();
    const uint64_t lo = std::max(begin, other_begin);
    const uint64_t hi = std::min(end, other_end);
    for (uint64_t i = lo; i < hi; ++i) {
      if (captured[i - begin] != it->second.captured[i - other_begin]) {
        cx.stats.countAnomaly().conflicting_overlap_bytes++;
      }
    }
  }
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
        deliver(begin, payload_len, captured, ts_ns, cx);
        drain(ts_ns, cx);
      }
      maybeEnd(ts_ns, cx);
      return;
    }
  }
  compareWithBuffered(begin, captured, cx);
  if (out_of_order_ == nullptr) out_of_order_ = std::make_unique<OutOfOrder>();
  auto [it, inserted] = out_of_order_->try_emplace(begin);
  if (!inserted) {
    // First wins: keep the buffered copy unless the new one reaches further,
    // and then keep the buffered bytes over the new copy's first bytes.
    if (payload_len <= it->second.payload_len) return;
    out_of_order_->bytes -= static_cast<uint32_t>(it->second.captured.size());
    std::vector<uint8_t> merged(captured.begin(), captured.end());
    std::copy_n(it->second.captured.begin(), std::min(merged.size(), it->second.captured.size()),
                merged.begin());
    it->second.captured = std::move(merged);
  } else {
    it->second.captured.assign(captured.begin(), captured.end());
  }
  it->second.payload_len = payload_len;
  it->second.ts_ns = ts_ns;
  out_of_order_->bytes += static_cast<uint32_t>(it->second.captured.size());
}

void StreamReassembler::deliverFirstBuffered(uint64_t now_ns, const Context& cx) {
  auto it = out_of_order_->begin();
  Pending pending = std::move(it->second);
  const uint64_t begin = it->first;
  out_of_order_->bytes -= static_cast<uint32_t>(pending.captured.size());
  out_of_order_->erase(it);
  if (out_of_order_->empty()) out_of_order_.reset();
  // Buffered bytes are delivered when the stream reaches them: at the time
  // of the packet that filled the hole before them, not of the packet that
  // brought them (a body that overtook its headers is readable only once
  // the headers came), so a stream's times never go back.
  if (begin + pending.payload_len > next_) {
    deliver(begin, pending.payload_len, pending.captured, std::max(pending.ts_ns, now_ns), cx);
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
