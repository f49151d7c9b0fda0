#include "uprobes/plaintext_streams.h"

#include <cstring>

namespace l7tap {

struct PlaintextStreams::Held {
  TlsEvent event;     // `data` points into `bytes` once released
  std::string bytes;  // the sample is gone after its call: a copy
};

struct PlaintextStreams::Session {
  SessionKey id;
  std::list<SessionKey>::iterator lru;
  l7tap_flow_key key{};  // local -> remote, once tuple_known
  bool tuple_known = false;
  bool owner = false;  // speaks for its connection (PlaintextStreams::owners_)
  uint8_t role = L7TAP_TLS_ROLE_UNKNOWN;
  uint64_t last_mono_ns = 0;
  struct Direction {
    bool started = false;
    bool midstream = false;  // its first byte seen was not the stream's first
    uint64_t expected = 0;   // stream offset of the next byte
    uint32_t next_seq = 0;
  } dir[2];  // by l7tap_tls_direction
  std::vector<Held> held;
  uint64_t held_bytes = 0;

  void start(uint8_t direction, const TlsEvent& e) {
    Direction& d = dir[direction];
    d.started = true;
    d.midstream = e.stream_offset > 0;
    d.expected = e.stream_offset;
    d.next_seq = e.seq;
  }
};

namespace {

l7tap_flow_key swapped(const l7tap_flow_key& k) {
  l7tap_flow_key r = k;
  std::memcpy(r.saddr, k.daddr, sizeof r.saddr);
  std::memcpy(r.daddr, k.saddr, sizeof r.daddr);
  r.sport = k.dport;
  r.dport = k.sport;
  return r;
}

bool sameKey(const l7tap_flow_key& a, const l7tap_flow_key& b) {
  return std::memcmp(a.saddr, b.saddr, 16) == 0 && std::memcmp(a.daddr, b.daddr, 16) == 0 &&
         a.sport == b.sport && a.dport == b.dport && a.family == b.family;
}

// Who sent a direction's bytes: the process writes as what it is, and reads
// what its peer (the other role) wrote.
PlaintextChunk::Sender senderOf(uint8_t role, uint8_t direction) {
  if (role == L7TAP_TLS_ROLE_UNKNOWN) return PlaintextChunk::Sender::kUnknown;
  const bool client = (role == L7TAP_TLS_ROLE_CLIENT) == (direction == L7TAP_TLS_WRITE);
  return client ? PlaintextChunk::Sender::kClient : PlaintextChunk::Sender::kServer;
}

// The sample's kernel time on the wall clock. In unsigned arithmetic: the
// sum of a time near 2^63 (the ring's bytes are not checked) and the offset
// is signed overflow, undefined, in int64_t; modulo 2^64 it is the same sum.
uint64_t wallClock(uint64_t mono_ns, int64_t mono_to_real_ns) {
  return mono_ns + static_cast<uint64_t>(mono_to_real_ns);
}

}  // namespace

PlaintextStreams::PlaintextStreams(Pipeline& pipeline, int64_t mono_to_real_ns,
                                   const PlaintextStreamLimits& limits)
    : pipeline_(&pipeline), mono_to_real_ns_(mono_to_real_ns), limits_(limits) {}

PlaintextStreams::~PlaintextStreams() = default;

PlaintextStreams::Session& PlaintextStreams::find(const TlsEvent& e) {
  const SessionKey id{e.tgid, e.conn_id};
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    if (sessions_.size() >= limits_.max_sessions && !lru_.empty()) {
      stats_.sessions_evicted++;
      erase(sessions_.find(lru_.front()));
    }
    auto s = std::make_unique<Session>();
    s->id = id;
    s->lru = lru_.insert(lru_.end(), id);
    stats_.sessions++;
    it = sessions_.emplace(id, std::move(s)).first;
  } else {
    lru_.splice(lru_.end(), lru_, it->second->lru);
  }
  return *it->second;
}

void PlaintextStreams::onEvent(TlsEventKind kind, const TlsEvent& e) {
  if (kind == TlsEventKind::kClose) {
    stats_.close_events++;
    auto it = sessions_.find({e.tgid, e.conn_id});
    if (it == sessions_.end()) return;
    Session& s = *it->second;
    if (!s.tuple_known && e.tuple_known) {
      learnTuple(s, e.key);
      release(s);
    }
    end(s, e.ts_ns);
    erase(it);
    return;
  }
  if (kind != TlsEventKind::kData) return;
  stats_.data_events++;
  Session& s = find(e);
  s.last_mono_ns = e.ts_ns;
  if (e.role != L7TAP_TLS_ROLE_UNKNOWN) s.role = e.role;
  if (e.tuple_known && s.tuple_known && !sameKey(e.key, s.key)) {
    // The session's object now speaks on another socket (an SSL object set
    // to a new fd): what was of the old one ended.
    stats_.sessions_reused++;
    end(s, e.ts_ns);
    disown(s);
    s.dir[0] = s.dir[1] = {};
    s.tuple_known = false;
  }
  if (e.tuple_known && !s.tuple_known) {
    learnTuple(s, e.key);
    release(s);
  }
  if (s.tuple_known) {
    deliver(s, e);
  } else {
    hold(s, e);
  }
}

void PlaintextStreams::learnTuple(Session& s, const l7tap_flow_key& key) {
  s.key = key;
  s.tuple_known = true;
  owns(s);
}

bool PlaintextStreams::owns(Session& s) {
  if (!s.owner) s.owner = owners_.try_emplace(canonicalKey(s.key), s.id).first->second == s.id;
  return s.owner;
}

void PlaintextStreams::disown(Session& s) {
  if (s.owner) owners_.erase(canonicalKey(s.key));
  s.owner = false;
}

void PlaintextStreams::deliver(Session& s, const TlsEvent& e) {
  if (!owns(s)) {
    // The other end's process said it first; its session may end, and
    // then this one takes over (owns() again at its next event).
    stats_.peer_events++;
    return;
  }
  Session::Direction* d = &s.dir[e.direction];
  if (d->started && e.seq == 0 && e.stream_offset == 0 && d->expected > 0) {
    // A new TLS session at the address of one whose CLOSE was lost.
    stats_.sessions_reused++;
    end(s, e.ts_ns);
    s.dir[0] = s.dir[1] = {};
  }
  if (!d->started) {
    s.start(e.direction, e);
    // The other direction was seen from its first byte: so was the session,
    // and this one's first bytes were lost, not before the attach.
    const Session::Direction& other = s.dir[e.direction ^ 1];
    if (other.started && !other.midstream && d->midstream) {
      d->midstream = false;
      d->expected = 0;
      d->next_seq = 0;
    }
  }
  // Sequence numbers wrap after 4 Gi events: compared as a signed distance.
  const int32_t skipped = static_cast<int32_t>(e.seq - d->next_seq);
  if (skipped > 0) stats_.lost_events += static_cast<uint32_t>(skipped);
  if (e.stream_offset < d->expected) {
    stats_.behind_events++;
    return;
  }
  if (skipped >= 0) d->next_seq = e.seq + 1;
  PlaintextChunk chunk;
  chunk.ts_ns = wallClock(e.ts_ns, mono_to_real_ns_);
  if (e.stream_offset > d->expected) {
    chunk.kind = PlaintextChunk::Kind::kGap;
    chunk.gap_length = e.stream_offset - d->expected;
    send(s, e.direction, chunk);
  }
  if (!e.data.empty()) {
    chunk.kind = PlaintextChunk::Kind::kData;
    chunk.bytes = e.data;
    send(s, e.direction, chunk);
  }
  if (e.data.size() < e.len) {
    // The call moved more than the probe copies (L7TAP_TLS_MAX_CHUNKS).
    chunk.kind = PlaintextChunk::Kind::kGap;
    chunk.gap_length = e.len - e.data.size();
    send(s, e.direction, chunk);
  }
  d->expected = e.stream_offset + e.len;
}

void PlaintextStreams::send(Session& s, uint8_t direction, PlaintextChunk& chunk) {
  chunk.key = direction == L7TAP_TLS_WRITE ? s.key : swapped(s.key);
  chunk.sender = senderOf(s.role, direction);
  chunk.midstream = s.dir[direction].midstream;
  if (chunk.kind == PlaintextChunk::Kind::kGap) stats_.gap_bytes += chunk.gap_length;
  stats_.chunks++;
  pipeline_->onPlaintext(chunk);
}

void PlaintextStreams::hold(Session& s, const TlsEvent& e) {
  if (s.held.size() >= limits_.max_held_events ||
      held_bytes_ + e.data.size() > limits_.max_held_bytes) {
    // Lost: once the socket is known, the next bytes of that direction come
    // after a gap of these (their offsets say how many).
    stats_.held_dropped++;
    bool direction_held = false;
    for (const Held& h : s.held) direction_held |= h.event.direction == e.direction;
    if (!direction_held && !s.dir[e.direction].started) {
      s.start(e.direction, e);
      s.dir[e.direction].next_seq = e.seq + 1;
    }
    return;
  }
  stats_.held_events++;
  Held& h = s.held.emplace_back();
  h.event = e;
  h.bytes.assign(reinterpret_cast<const char*>(e.data.data()), e.data.size());
  h.event.data = {};
  h.event.comm = {};
  s.held_bytes += e.data.size();
  held_bytes_ += e.data.size();
}

void PlaintextStreams::release(Session& s) {
  std::vector<Held> held = std::move(s.held);
  dropHeld(s);
  for (Held& h : held) {
    h.event.data = {reinterpret_cast<const uint8_t*>(h.bytes.data()), h.bytes.size()};
    deliver(s, h.event);
  }
}

void PlaintextStreams::dropHeld(Session& s) {
  held_bytes_ -= s.held_bytes;
  s.held_bytes = 0;
  s.held.clear();
}

void PlaintextStreams::end(Session& s, uint64_t mono_ns) {
  if (s.tuple_known && !s.owner) return;  // the connection's other end speaks for it
  if (!s.tuple_known) {
    // Never given a socket: nowhere to put what was held.
    stats_.held_dropped += s.held.size();
    dropHeld(s);
    return;
  }
  PlaintextChunk chunk;
  chunk.ts_ns = wallClock(mono_ns, mono_to_real_ns_);
  chunk.kind = PlaintextChunk::Kind::kEnd;
  chunk.end = EndKind::kFin;
  for (uint8_t direction : {L7TAP_TLS_WRITE, L7TAP_TLS_READ}) send(s, direction, chunk);
}

void PlaintextStreams::erase(Table::iterator it) {
  Session& s = *it->second;
  if (!s.tuple_known) stats_.held_dropped += s.held.size();
  dropHeld(s);
  disown(s);
  lru_.erase(s.lru);
  sessions_.erase(it);
}

void PlaintextStreams::endProcess(uint32_t tgid, uint64_t mono_ns) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (it->first.tgid == tgid) {
      end(*it->second, mono_ns);
      erase(it);
    }
    it = next;
  }
}

void PlaintextStreams::expire(uint64_t mono_ns) {
  while (!lru_.empty()) {
    auto it = sessions_.find(lru_.front());
    if (it->second->last_mono_ns + limits_.idle_timeout_ns > mono_ns) break;
    stats_.sessions_expired++;
    erase(it);
  }
}

}  // namespace l7tap
