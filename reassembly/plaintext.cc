// Ordered plaintext chunks of a connection (FlowTable::onPlaintext): the
// same observers as segments, none of the sequence-space reassembly.
#include <cstring>

#include "reassembly/flow_connection.h"

namespace l7tap {

namespace {

// A plaintext source cannot be told what to skip (yet): its stream's hints
// go nowhere.
class NullHints final : public CaptureHints {
 public:
  void skip(Side, uint64_t, uint64_t) override {}
  void countOnly() override {}
  void walkFrames(Side, uint64_t) override {}
};
NullHints null_hints;

}  // namespace

void FlowTable::onPlaintext(const PlaintextChunk& chunk) {
  stats_.plaintext_chunks++;
  expire(chunk.ts_ns);
  const uint32_t tag = tagOf(chunk.key);
  bool from_orig;
  Side side;
  Connection* conn = find(chunk.key, tag, from_orig);
  if (conn == nullptr) {
    Opening opening;
    opening.midstream = chunk.midstream;
    opening.sender_is_orig = chunk.sender == PlaintextChunk::Sender::kUnknown
                                 ? !senderLooksLikeServer(chunk.key)
                                 : chunk.sender == PlaintextChunk::Sender::kClient;
    conn = create(tag, chunk.key, chunk.ifindex, chunk.ts_ns, opening, side);
  } else {
    side = from_orig ? Side::kOrig : Side::kResp;
  }
  ConnectionInfo& info = conn->info;
  if (chunk.sender != PlaintextChunk::Sender::kUnknown && !info.roles_from_handshake) {
    // The source knows the roles better than the ports do.
    info.client_side = chunk.sender == PlaintextChunk::Sender::kClient ? side : opposite(side);
  }
  Rare& p = conn->rareState();
  if (!p.plaintext) {
    info.has_plaintext = true;
    p.plaintext = factory_->createPlaintext(info, null_hints, conn->observer);
    stats_.plaintext_streams++;
  }
  const int s = index(side);
  info.last_ts_ns = chunk.ts_ns;
  p.plaintext_seen[s] = true;
  if (p.plaintext_ended[s]) {
    stats_.plaintext_late_chunks++;
  } else {
    switch (chunk.kind) {
      case PlaintextChunk::Kind::kData:
        if (!chunk.bytes.empty()) p.plaintext->onData(side, chunk.bytes, chunk.ts_ns);
        break;
      case PlaintextChunk::Kind::kGap:
        stats_.plaintext_gap_bytes += chunk.gap_length;
        if (chunk.gap_length) p.plaintext->onGap(side, chunk.gap_length, chunk.ts_ns);
        break;
      case PlaintextChunk::Kind::kEnd:
        p.plaintext_ended[s] = true;
        p.plaintext->onEnd(side, chunk.end, chunk.ts_ns);
        break;
    }
  }
  // Without segments, the plaintext's ends close the connection.
  if (!conn->observer && p.plaintext_ended[0] && p.plaintext_ended[1])
    markClosing(conn, chunk.ts_ns);
  touch(conn);
}

}  // namespace l7tap
