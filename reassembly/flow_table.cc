#include "reassembly/flow_table.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "reassembly/flow_connection.h"

namespace l7tap {

namespace {

class NullObserver final : public StreamObserver {
 public:
  void onData(Side, std::span<const uint8_t>, uint64_t) override {}
  void onGap(Side, uint64_t, uint64_t) override {}
  void onEnd(Side, EndKind, uint64_t) override {}
  void onClose(const ConnectionInfo&) override {}
};

// Zeek-style history: one letter per event kind and side, at its first
// occurrence; capitals for the originator.
void addHistory(ConnectionHistory& history, Side side, char letter) {
  history.add(side == Side::kOrig ? letter : static_cast<char>(letter - 'A' + 'a'));
}

}  // namespace

StreamObserver& FlowTable::nullObserver() {
  static NullObserver null_observer;
  return null_observer;
}

size_t CanonicalFlowKeyHash::operator()(const CanonicalFlowKey& k) const noexcept {
  // Looked up for every packet: mix whole 64-bit words (multiply and fold),
  // not bytes.
  uint64_t w[4];
  std::memcpy(w, k.saddr, 16);
  std::memcpy(w + 2, k.daddr, 16);
  uint64_t h = (uint64_t{k.sport} << 32) | (uint64_t{k.dport} << 8) | k.family;
  for (uint64_t v : w) {
    h = (h ^ v) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  return static_cast<size_t>(h);
}

namespace {

// Per process, so that flows crafted offline to share a probe chain (the
// mix is fast, not cryptographic) do not share one here. Nothing written
// depends on the slot order: closeAll() sorts by connection id.
const uint64_t kHashSeed = [] {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd() ^ 0x243f6a8885a308d3ull;
}();

// One endpoint, mixed by whole 64-bit words (multiply and fold), not bytes.
inline uint64_t endpointHash(const uint8_t* addr, uint16_t port) {
  uint64_t w[2];
  std::memcpy(w, addr, 16);
  uint64_t h = (w[0] ^ kHashSeed) * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  h = (h ^ w[1] ^ (uint64_t{port} << 47)) * 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 31);
}

// Both directions of a connection hash alike: the endpoints' hashes are
// added (commutative), then mixed with the family.
inline uint32_t tagOfEndpoints(const uint8_t* a, uint16_t a_port, const uint8_t* b, uint16_t b_port,
                               uint8_t family) {
  uint64_t h = (endpointHash(a, a_port) + endpointHash(b, b_port) + family) * 0x94d049bb133111ebull;
  h ^= h >> 32;
  return static_cast<uint32_t>(h) | 0x80000000u;
}

constexpr uint32_t kInitialSlots = 64;

}  // namespace

uint32_t FlowTable::tagOf(const l7tap_flow_key& k) {
  return tagOfEndpoints(k.saddr, k.sport, k.daddr, k.dport, k.family);
}

uint32_t FlowTable::tagOf(const Connection& c) {
  const ConnectionInfo& i = c.info;
  return tagOfEndpoints(i.addr[0].data(), i.port[0], i.addr[1].data(), i.port[1], i.family);
}

FlowTable::Connection* FlowTable::find(const l7tap_flow_key& k, uint32_t tag,
                                       bool& from_orig) const {
  if (size_ == 0) return nullptr;
  for (uint32_t i = tag & mask_;; i = (i + 1) & mask_) {
    const uint32_t t = tags_[i];
    if (t == 0) return nullptr;
    if (t != tag) continue;
    Connection* c = conns_[i];
    const ConnectionInfo& info = c->info;
    if (info.family != k.family) continue;
    if (info.port[0] == k.sport && info.port[1] == k.dport &&
        std::memcmp(info.addr[0].data(), k.saddr, 16) == 0 &&
        std::memcmp(info.addr[1].data(), k.daddr, 16) == 0) {
      from_orig = true;
      return c;
    }
    if (info.port[1] == k.sport && info.port[0] == k.dport &&
        std::memcmp(info.addr[1].data(), k.saddr, 16) == 0 &&
        std::memcmp(info.addr[0].data(), k.daddr, 16) == 0) {
      from_orig = false;
      return c;
    }
  }
}

void FlowTable::grow() {
  const uint32_t slots = tags_ ? (mask_ + 1) * 2 : kInitialSlots;
  auto tags = std::make_unique<uint32_t[]>(slots);  // zeroed: all empty
  auto conns = std::make_unique<Connection*[]>(slots);
  const uint32_t mask = slots - 1;
  if (tags_) {
    for (uint32_t i = 0; i <= mask_; ++i) {
      const uint32_t t = tags_[i];
      if (t == 0) continue;
      uint32_t j = t & mask;
      while (tags[j] != 0) j = (j + 1) & mask;
      tags[j] = t;
      conns[j] = conns_[i];
    }
  }
  tags_ = std::move(tags);
  conns_ = std::move(conns);
  mask_ = mask;
}

void FlowTable::insert(Connection* conn, uint32_t tag) {
  if (!tags_ || uint64_t{size_ + 1} * 4 > uint64_t{mask_ + 1} * 3) grow();
  uint32_t i = tag & mask_;
  while (tags_[i] != 0) i = (i + 1) & mask_;
  tags_[i] = tag;
  conns_[i] = conn;
  ++size_;
}

void FlowTable::erase(const Connection* conn) {
  uint32_t i = tagOf(*conn) & mask_;
  while (conns_[i] != conn || tags_[i] == 0) i = (i + 1) & mask_;
  // Backward shift: move up every later entry of the chain that may sit
  // at the freed slot (its home is not cyclically in (i, j]).
  for (uint32_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
    const uint32_t t = tags_[j];
    if (t == 0) break;
    const uint32_t home = t & mask_;
    if (((j - home) & mask_) >= ((j - i) & mask_)) {
      tags_[i] = t;
      conns_[i] = conns_[j];
      i = j;
    }
  }
  tags_[i] = 0;
  conns_[i] = nullptr;
  --size_;
}

FlowTable::FlowTable(StreamObserverFactory& factory, const ReassemblyLimits& limits)
    : factory_(&factory), limits_(limits) {}

FlowTable::~FlowTable() {
  for (uint32_t i = 0; size_ != 0 && i <= mask_; ++i) {
    if (tags_[i] != 0) delete conns_[i];
  }
}

FlowTable::Connection* FlowTable::create(uint32_t tag, const l7tap_flow_key& sender_key,
                                         uint32_t ifindex, uint64_t ts_ns, const Opening& opening,
                                         Side& side, const l7tap_tunnel* tunnel) {
  if (size_ >= limits_.max_connections) {
    // Connections only one side has spoken on go first (SYN floods, one
    // packet connections, scans), so a flood of new connections cannot push
    // out the established ones, however idle.
    Connection* victim = lru_head_[0] != nullptr ? lru_head_[0] : lru_head_[1];
    if (victim != nullptr) {
      stats_.connections_evicted++;
      if (!victim->answered) stats_.unanswered_evicted++;
      close(victim, CloseReason::kEvicted, ts_ns);
    }
  }
  // Callers looked it up, or closed what was there.
  Connection* conn = new Connection(*this);
  ConnectionInfo& info = conn->info;
  info.id = next_id_++;
  info.ifindex = ifindex;
  info.family = sender_key.family;
  info.first_ts_ns = ts_ns;
  info.roles_from_handshake = opening.handshake;
  info.midstream = opening.midstream;
  conn->reported_ns = ts_ns;
  side = opening.sender_is_orig ? Side::kOrig : Side::kResp;
  std::memcpy(info.addr[index(side)].data(), sender_key.saddr, 16);
  std::memcpy(info.addr[index(opposite(side))].data(), sender_key.daddr, 16);
  info.port[index(side)] = sender_key.sport;
  info.port[index(opposite(side))] = sender_key.dport;
  if (tunnel != nullptr && tunnel->type != L7TAP_TUNNEL_NONE) {
    ConnectionTunnel& t = info.tunnel.emplace();
    t.type = tunnel->type;
    t.outer_family = tunnel->outer_family;
    t.has_id = tunnel->has_id != 0;
    t.id = tunnel->id;
    std::memcpy(t.outer_addr[index(side)].data(), tunnel->outer_saddr, 16);
    std::memcpy(t.outer_addr[index(opposite(side))].data(), tunnel->outer_daddr, 16);
  }

  insert(conn, tag);
  stats_.connections_opened++;
  stats_.connections_active = size_;
  touch(conn);
  return conn;
}

FlowTable::Opening FlowTable::openingOf(const SegmentEvent& seg) {
  // Who opened the connection: the SYN's sender; the receiver of a SYN-ACK;
  // mid-stream, see senderLooksLikeServer().
  Opening opening;
  if (seg.tcp_flags & L7TAP_TCP_SYN) {
    opening.sender_is_orig = !(seg.tcp_flags & L7TAP_TCP_ACK);
    opening.handshake = true;
  } else {
    opening.midstream = true;
    opening.sender_is_orig = !senderLooksLikeServer(seg.key);
  }
  return opening;
}

FlowTable::Connection* FlowTable::findOrCreate(const SegmentEvent& seg, Side& side) {
  const uint32_t tag = tagOf(seg.key);
  bool from_orig;
  Connection* conn = find(seg.key, tag, from_orig);
  if (conn == nullptr)
    return create(tag, seg.key, seg.ifindex, seg.ts_ns, openingOf(seg), side, seg.tunnel);
  // A plaintext source (TLS uprobes) may have opened it without an
  // interface (its plaintext came before the segments reached the table):
  // the first segment names it.
  if (conn->info.ifindex == 0) conn->info.ifindex = seg.ifindex;
  side = from_orig ? Side::kOrig : Side::kResp;
  const bool syn_only = (seg.tcp_flags & (L7TAP_TCP_SYN | L7TAP_TCP_ACK)) == L7TAP_TCP_SYN;
  if (syn_only) {
    // A new SYN on a closed connection, or with another ISN: the port pair is reused.
    const bool same_syn = from_orig && conn->orig_syn_seen && conn->orig_isn == seg.seq;
    if (conn->closing || (!same_syn && (conn->orig_syn_seen || conn->info.stats[0].bytes ||
                                        conn->info.stats[1].bytes))) {
      close(conn, CloseReason::kPortReuse, seg.ts_ns);
      return create(tag, seg.key, seg.ifindex, seg.ts_ns, openingOf(seg), side, seg.tunnel);
    }
  }
  return conn;
}

void FlowTable::onSegment(const SegmentEvent& seg) {
  stats_.segments++;
  expire(seg.ts_ns);
  Side side;
  Connection* conn = findOrCreate(seg, side);
  ConnectionInfo& info = conn->info;
  if (!conn->observer) conn->observer = factory_->create(info, *conn);
  const int s = index(side);
  const Side other = opposite(side);
  const uint8_t flags = seg.tcp_flags;
  StreamObserver& out = conn->out();
  DirectionStats& st = info.stats[s];
  const uint64_t retransmitted_before = st.anomalies().retransmitted_segments;

  info.last_ts_ns = seg.ts_ns;
  info.tcp_flags_seen[s] |= flags;
  // A frame-walked packet can arrive as several events: count it once.
  if (!(seg.capture_flags & L7TAP_SEG_PART)) st.packets++;
  st.bytes += seg.payload_len;

  if (flags & L7TAP_TCP_SYN) {
    if (flags & L7TAP_TCP_ACK) {
      addHistory(info.history, side, 'H');
      if (!info.synack_seen) {
        info.synack_seen = true;
        if (const uint64_t syn_ts = conn->synTs()) info.handshake_rtt_ns = seg.ts_ns - syn_ts;
      }
    } else {
      addHistory(info.history, side, 'S');
      if (side == Side::kOrig && !conn->orig_syn_seen) {
        conn->orig_syn_seen = true;
        conn->orig_isn = seg.seq;
        if (seg.ts_ns != info.first_ts_ns) {
          Rare& r = conn->rareState();
          r.syn_late = true;
          r.syn_ts_ns = seg.ts_ns;
        }
      }
    }
    conn->dir[s].onSyn(seg.seq);
  } else if (!(flags & L7TAP_TCP_RST)) {
    if (seg.tcp_window == 0 && !conn->zero_window[s]) {
      st.countAnomaly().zero_window_events++;
      addHistory(info.history, side, 'W');
    }
    conn->zero_window[s] = seg.tcp_window == 0;
  }
  if (seg.payload_len > 0)
    addHistory(info.history, side, 'D');
  else if ((flags & (L7TAP_TCP_SYN | L7TAP_TCP_FIN | L7TAP_TCP_RST)) == 0)
    addHistory(info.history, side, 'A');
  if (flags & L7TAP_TCP_FIN) addHistory(info.history, side, 'F');

  // The acknowledgement speaks of the other direction: settle its holes first,
  // so the parsers see the request's end before the response that follows it.
  if (flags & L7TAP_TCP_ACK)
    conn->dir[index(other)].onPeerAck(seg.ack, seg.ts_ns, conn->context(index(other), out));
  const bool syn = flags & L7TAP_TCP_SYN;
  const uint32_t seq = syn ? seg.seq + 1 : seg.seq;
  if (seg.capture_flags & (L7TAP_SEG_WALKED | L7TAP_SEG_WALK_LOST)) {
    // The capture keeps state for this flow (it may have armed the walk
    // itself): forget it at close.
    conn->capture_controlled = true;
    out.onCaptureWalk(
        side, seg.capture_flags & L7TAP_SEG_WALK_LOST ? CaptureWalk::kLost : CaptureWalk::kOn);
  }
  // Bytes skipped on purpose before the captured ones are a gap like any other.
  const uint32_t skipped = std::min(seg.payload_offset, seg.payload_len);
  const StreamReassembler::Context cx = conn->context(s, out);
  if (skipped) conn->dir[s].onSegment(seq, skipped, {}, false, seg.ts_ns, cx);
  conn->dir[s].onSegment(seq + skipped, seg.payload_len - skipped, seg.payload,
                         flags & L7TAP_TCP_FIN, seg.ts_ns, cx);
  if (st.anomalies().retransmitted_segments != retransmitted_before)
    addHistory(info.history, side, 'T');

  if (flags & L7TAP_TCP_RST) {
    addHistory(info.history, side, 'R');
    conn->dir[s].reset(seg.ts_ns, cx);
    conn->dir[index(other)].reset(seg.ts_ns, conn->context(index(other), out));
    markClosing(conn, seg.ts_ns);
  } else if (conn->dir[0].ended() && conn->dir[1].ended()) {
    markClosing(conn, seg.ts_ns);
  }
  if (conn->rare && conn->rare->hintsPending()) applyPendingHints(*conn);
  touch(conn);
}

void FlowTable::unlinkLru(Connection* conn) {
  const int list = conn->answered;
  if (conn->lru_prev) conn->lru_prev->lru_next = conn->lru_next;
  if (conn->lru_next) conn->lru_next->lru_prev = conn->lru_prev;
  if (lru_head_[list] == conn) lru_head_[list] = conn->lru_next;
  if (lru_tail_[list] == conn) lru_tail_[list] = conn->lru_prev;
  conn->lru_prev = conn->lru_next = nullptr;
}

void FlowTable::touch(Connection* conn) {
  const Rare* p = conn->rare.get();
  const bool answered = (conn->info.tcp_flags_seen[0] != 0 && conn->info.tcp_flags_seen[1] != 0) ||
                        (p != nullptr && p->plaintext_seen[0] && p->plaintext_seen[1]);
  if (answered == conn->answered && lru_tail_[conn->answered] == conn) return;
  // Unlink, then append at the tail (most recent) of its list.
  unlinkLru(conn);
  conn->answered = answered;
  const int list = answered;
  conn->lru_prev = lru_tail_[list];
  if (lru_tail_[list]) lru_tail_[list]->lru_next = conn;
  lru_tail_[list] = conn;
  if (!lru_head_[list]) lru_head_[list] = conn;
}

void FlowTable::markClosing(Connection* conn, uint64_t ts_ns) {
  if (conn->closing) return;
  conn->closing = true;
  conn->closing_seq = static_cast<uint32_t>(closing_front_seq_ + closing_.size());
  closing_.push_back({conn, ts_ns});
}

void FlowTable::close(Connection* conn, CloseReason reason, uint64_t ts_ns) {
  if (conn->closing) {
    // FIN or RST already ended it: that is the reason, whatever removes it now.
    reason = (conn->info.tcp_flags_seen[0] | conn->info.tcp_flags_seen[1]) & L7TAP_TCP_RST
                 ? CloseReason::kRst
                 : CloseReason::kFin;
  }
  StreamObserver& out = conn->out();
  conn->dir[0].flush(ts_ns, conn->context(0, out));
  conn->dir[1].flush(ts_ns, conn->context(1, out));
  conn->info.close_reason = reason;
  const CanonicalFlowKey key = conn->key();
  // The kernel's counters are read here, for the final record only: they
  // live on this stack frame, not in every tracked connection.
  ConnectionInfo::KernelCounts kernel;
  if (close_hook_ && close_hook_->onClosing(key, conn->origDir(), kernel))
    conn->info.kernel = &kernel;
  if (capture_control_ && conn->capture_controlled) capture_control_->forget(key);
  out.onClose(conn->info);
  if (conn->rare && conn->rare->plaintext) conn->rare->plaintext->onClose(conn->info);
  conn->info.kernel = nullptr;

  stats_.connections_closed++;
  for (const DirectionStats& s : conn->info.stats) {
    const DirectionAnomalies& d = s.anomalies();
    stats_.bytes_in_gaps += d.missed_bytes;
    stats_.bytes_in_holes += d.hole_bytes;
    stats_.out_of_order_overflows += d.out_of_order_overflows;
    stats_.conflicting_overlap_bytes += d.conflicting_overlap_bytes;
  }
  unlinkLru(conn);
  if (conn->closing) {
    // Closed before its delay ran out (evicted, port reused, end of input):
    // its entry stays, empty. expire() has popped it already otherwise.
    const uint32_t at = conn->closing_seq - static_cast<uint32_t>(closing_front_seq_);
    if (at < closing_.size() && closing_[at].conn == conn) closing_[at].conn = nullptr;
  }
  erase(conn);
  delete conn;
  stats_.connections_active = size_;
}

void FlowTable::expire(uint64_t now_ns) {
  while (!closing_.empty()) {
    const Closing first = closing_.front();
    if (first.conn != nullptr && first.since_ns + limits_.close_delay_ns > now_ns) break;
    closing_.pop_front();
    ++closing_front_seq_;
    if (first.conn != nullptr) close(first.conn, CloseReason::kFin, now_ns);
  }
  // Oldest activity first, across both lists.
  for (;;) {
    Connection* oldest = nullptr;
    for (Connection* head : lru_head_) {
      if (head != nullptr && (oldest == nullptr || head->info.last_ts_ns < oldest->info.last_ts_ns))
        oldest = head;
    }
    if (oldest == nullptr || oldest->info.last_ts_ns + limits_.idle_timeout_ns > now_ns) break;
    close(oldest, CloseReason::kIdle, now_ns);
  }
}

void FlowTable::reportInterim(uint64_t now_ns, uint64_t interval_ns) {
  for (Connection* head : lru_head_) {
    for (Connection* c = head; c != nullptr; c = c->lru_next) {
      if (c->closing || now_ns < c->reported_ns + interval_ns) continue;
      c->reported_ns = now_ns;
      c->out().onInterim(c->info);
      if (c->rare && c->rare->plaintext) c->rare->plaintext->onInterim(c->info);
    }
  }
}

void FlowTable::closeAll(CloseReason reason) {
  std::vector<Connection*> all;
  all.reserve(size_);
  for (uint32_t i = 0; size_ != 0 && i <= mask_; ++i) {
    if (tags_[i] != 0) all.push_back(conns_[i]);
  }
  std::sort(all.begin(), all.end(),
            [](const Connection* a, const Connection* b) { return a->info.id < b->info.id; });
  for (Connection* conn : all) close(conn, reason, conn->info.last_ts_ns);
  closing_front_seq_ += closing_.size();
  closing_.clear();
}

}  // namespace l7tap
