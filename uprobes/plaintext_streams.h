// TLS plaintext events into ordered PlaintextChunks: per (tgid, conn_id,
// direction) continuity by stream offset (a jump is a gap of its length,
// bytes behind the stream are dropped), events of a session whose socket is
// not known yet held until one of its events brings the 5-tuple, and the
// chunk's key, sender and mid-stream flag from the event.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/pipeline.h"
#include "reassembly/capture_control.h"
#include "uprobes/tls_events.h"

namespace l7tap {

/// Every bound of the plaintext streams, with its default and why.
struct PlaintextStreamLimits {
  /// TLS sessions (tgid, conn_id) tracked at once; over it the least recently
  /// active one is forgotten (its next bytes start a mid-stream session).
  /// The reassembly tracks 256 Ki connections; TLS ones are a share of them.
  uint32_t max_sessions = 64 * 1024;
  /// Plaintext bytes held, over every session, while their socket is not
  /// known yet. A session's first events come before its first syscall
  /// only when the library buffered the handshake: a few KB each.
  uint64_t max_held_bytes = 4ull << 20;
  /// Events held per session while its socket is not known.
  uint32_t max_held_events = 32;
  /// A session without an event for this long is forgotten (its connection
  /// expires in the flow table on its own): the reassembly's idle timeout.
  uint64_t idle_timeout_ns = 300ull * 1000 * 1000 * 1000;
};

/// Counters, for the summary and the self-metrics; none is fatal.
struct PlaintextStreamStats {
  uint64_t data_events = 0;
  uint64_t close_events = 0;
  uint64_t chunks = 0;            ///< PlaintextChunks handed to the pipeline
  uint64_t lost_events = 0;       ///< sequence numbers skipped (events the ring lost)
  uint64_t gap_bytes = 0;         ///< bytes announced as gaps (lost or not captured)
  uint64_t behind_events = 0;     ///< behind their stream's offset: dropped
  uint64_t held_events = 0;       ///< waited for their socket
  uint64_t held_dropped = 0;      ///< over the held bounds, or never given a socket: gaps
  uint64_t sessions = 0;          ///< sessions tracked since the start
  uint64_t sessions_evicted = 0;  ///< forgotten at max_sessions
  uint64_t sessions_expired = 0;  ///< forgotten when idle
  uint64_t sessions_reused = 0;   ///< a conn_id that started over (its CLOSE was lost)
  /// Events of a connection whose other end is traced too (both processes
  /// on this node): the bytes its first traced end reported; dropped.
  uint64_t peer_events = 0;
};

class PlaintextStreams {
 public:
  /// Chunks go to `pipeline`; kernel timestamps move to the wall clock by
  /// adding `mono_to_real_ns`.
  PlaintextStreams(Pipeline& pipeline, int64_t mono_to_real_ns,
                   const PlaintextStreamLimits& limits = {});
  ~PlaintextStreams();
  PlaintextStreams(const PlaintextStreams&) = delete;
  PlaintextStreams& operator=(const PlaintextStreams&) = delete;

  /// One decoded kData or kClose event (others are ignored).
  void onEvent(TlsEventKind kind, const TlsEvent& event);
  /// `tgid` exec'd or exited: its TLS sessions are gone; each known one ends.
  void endProcess(uint32_t tgid, uint64_t mono_ns);
  /// Forgets sessions idle for longer than the limit (kernel clock).
  void expire(uint64_t mono_ns);

  size_t sessionCount() const { return sessions_.size(); }
  uint64_t heldBytes() const { return held_bytes_; }
  const PlaintextStreamStats& stats() const { return stats_; }

 private:
  struct SessionKey {
    uint32_t tgid;
    uint64_t conn_id;
    bool operator==(const SessionKey&) const = default;
  };
  struct SessionKeyHash {
    size_t operator()(const SessionKey& k) const {
      return std::hash<uint64_t>()(k.conn_id ^ (static_cast<uint64_t>(k.tgid) << 47));
    }
  };
  struct Held;
  struct Session;
  using Table = std::unordered_map<SessionKey, std::unique_ptr<Session>, SessionKeyHash>;

  Session& find(const TlsEvent& event);
  void deliver(Session& s, const TlsEvent& event);
  void hold(Session& s, const TlsEvent& event);
  void release(Session& s);
  void dropHeld(Session& s);
  void end(Session& s, uint64_t mono_ns);
  void erase(Table::iterator it);
  void send(Session& s, uint8_t direction, PlaintextChunk& chunk);
  void learnTuple(Session& s, const l7tap_flow_key& key);
  bool owns(Session& s);
  void disown(Session& s);

  Pipeline* pipeline_;
  int64_t mono_to_real_ns_;
  PlaintextStreamLimits limits_;
  PlaintextStreamStats stats_;
  Table sessions_;
  std::list<SessionKey> lru_;  // least recently active first
  // Which session speaks for each connection: when both ends are traced
  // (client and server on one node), each direction's bytes would come
  // twice, as the sender's write and the receiver's read.
  std::unordered_map<CanonicalFlowKey, SessionKey, CanonicalFlowKeyHash> owners_;
  uint64_t held_bytes_ = 0;
};

}  // namespace l7tap
