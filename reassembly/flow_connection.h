// FlowTable's state of one connection, shared by the files that implement
// the table (flow_table.cc), its capture hints (capture_hints.cc) and its
// plaintext source (plaintext.cc). Private to reassembly/.
#pragma once

#include <cstring>
#include <memory>

#include "reassembly/flow_table.h"

namespace l7tap {

// Mid-stream, the sender is taken for the client unless its port looks like
// a server's and the peer's like a client's (privileged to unprivileged, or
// to Linux's ephemeral range from below it). The protocol may correct this.
inline bool senderLooksLikeServer(const l7tap_flow_key& key) {
  return (key.sport < 1024 && key.dport >= 1024) || (key.sport < 32768 && key.dport >= 32768);
}

// What few connections need, allocated on first use (one pointer in every
// connection): the time of a SYN that did not open the connection; hints for a side whose stream
// has not started, as no sequence number maps its offsets yet (rare: hints come from bytes), kept
// until that side's first segment; and the plaintext stream (onPlaintext).
struct FlowTable::Rare {
  struct Hint {
    bool set = false;
    bool walk = false;  // walkFrames, else skip
    uint64_t offset = 0;
    uint64_t length = 0;
  } pending[2];                               // by Side
  std::unique_ptr<StreamObserver> plaintext;  // the plaintext stream's observer
  bool plaintext_seen[2]{};                   // by Side: the side sent a chunk
  bool plaintext_ended[2]{};                  // by Side
  // kOrig's SYN came after the connection's first packet, at syn_ts_ns
  // (else it came first, at ConnectionInfo::first_ts_ns).
  bool syn_late = false;
  uint64_t syn_ts_ns = 0;

  bool hintsPending() const { return pending[0].set || pending[1].set; }
};

// The connection's CaptureHints turn stream offsets into sequence numbers
// with its reassemblers, for the capture (FlowTable::hint*).
struct FlowTable::Connection final : CaptureHints {
  explicit Connection(FlowTable& owner)
      : table(&owner), dir{StreamReassembler(Side::kOrig), StreamReassembler(Side::kResp)} {}

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void skip(Side side, uint64_t offset, uint64_t length) override {
    table->hintSkip(*this, side, offset, length);
  }
  void countOnly() override { table->hintCountOnly(*this); }
  void walkFrames(Side side, uint64_t offset) override {
    table->hintWalkFrames(*this, side, offset);
  }

  StreamObserver& out() { return observer ? *observer : FlowTable::nullObserver(); }
  // What dir[s] delivers with.
  StreamReassembler::Context context(int s, StreamObserver& to) {
    return {table->limits_, info.stats[s], to};
  }
  Rare& rareState() {
    if (!rare) rare = std::make_unique<Rare>();
    return *rare;
  }

  // The key of kOrig's packets, from the endpoints (not stored twice: one
  // Connection per tracked connection). Only needed at close and for
  // capture hints.
  l7tap_flow_key origKey() const {
    l7tap_flow_key k{};
    std::memcpy(k.saddr, info.addr[0].data(), 16);
    std::memcpy(k.daddr, info.addr[1].data(), 16);
    k.sport = info.port[0];
    k.dport = info.port[1];
    k.family = info.family;
    return k;
  }
  CanonicalFlowKey key() const { return canonicalKey(origKey()); }
  // When kOrig sent its SYN, 0 if it did not (or at time 0).
  uint64_t synTs() const {
    if (!orig_syn_seen) return 0;
    return rare && rare->syn_late ? rare->syn_ts_ns : info.first_ts_ns;
  }
  // The capture's direction index (tc/flow_key.h) of kOrig's packets.
  uint32_t origDir() const {
    const l7tap_flow_key k = origKey();
    CanonicalFlowKey c;
    return l7tap_canonical(&k, &c);
  }

  FlowTable* table;
  ConnectionInfo info;
  StreamReassembler dir[2];
  std::unique_ptr<StreamObserver> observer;  // of the segments; null until the first one
  std::unique_ptr<Rare> rare;
  uint32_t orig_isn = 0;
  bool zero_window[2]{};
  bool orig_syn_seen : 1 = false;
  bool closing : 1 = false;
  bool capture_controlled : 1 = false;  // the capture was told something about it
  bool count_only : 1 = false;          // no hint but this one matters any more
  bool answered : 1 = false;            // both sides sent a packet: in lru list 1
  // Interim reports skip closing connections: the two never meet.
  union {
    uint64_t reported_ns = 0;  // until closing: last interim report, or the first packet
    uint32_t closing_seq;      // closing: its entry in FlowTable::closing_
  };
  Connection* lru_prev = nullptr;
  Connection* lru_next = nullptr;
};

}  // namespace l7tap
