#include "parsers/session/session.h"

#include <algorithm>

namespace l7tap {

namespace {

std::span<const uint8_t> asBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Adds a parser's counters to its protocol's totals, by position: a parser
// lists the same counters in the same order every time.
class CounterSum final : public CounterVisitor {
 public:
  explicit CounterSum(std::vector<ProtocolTotals::Counter>& to) : to_(to) {}
  void counter(std::string_view name, uint64_t value, bool notable) override {
    if (i_ == to_.size()) to_.push_back({name, 0, notable});
    to_[i_++].value += value;
  }

 private:
  std::vector<ProtocolTotals::Counter>& to_;
  size_t i_ = 0;
};

}  // namespace

// A session's record with the source of its bytes after the record's own
// fields and, for plaintext from above TCP, what the wire named the
// connection by (TLS: SNI and ALPN), which only the segments' session saw.
class Session::SourcedRecord final : public Record {
 public:
  SourcedRecord(const Record& inner, const Session& session) : inner_(inner), session_(session) {}
  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override {
    inner_.visit(conn, v);
    visitSource(v);
  }
  void appendMessage(std::string& out, const ConnectionInfo& conn) const override {
    inner_.appendMessage(out, conn);
  }
  int priority() const override { return inner_.priority(); }
  const Record& inner() const override { return inner_.inner(); }
  void visitAdded(const ConnectionInfo& conn, FieldVisitor& v) const override {
    inner_.visitAdded(conn, v);
    visitSource(v);
  }

 private:
  void visitSource(FieldVisitor& v) const {
    v.str("l7tap.capture.source", session_.plaintext_ ? "tls_uprobe" : "packet");
    if (const ConnFacts* facts = session_.packetsIdentity()) facts->visitIdentity(v);
  }
  const Record& inner_;
  const Session& session_;
};

uint64_t ProtocolTotals::value(std::string_view counter) const {
  for (const Counter& c : counters) {
    if (c.name == counter) return c.value;
  }
  return 0;
}

const ProtocolTotals* SessionStats::find(std::string_view name) const {
  for (const ProtocolTotals& p : protocols) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

SessionFactory::SessionFactory(RecordSink& sink, ProtocolRegistry protocols,
                               const SessionLimits& limits, RedactionPolicy redaction)
    : sink_(&sink),
      protocols_(std::move(protocols)),
      limits_(limits),
      redaction_(std::move(redaction)) {
  for (size_t i = 0; i < protocols_.size(); ++i) {
    stats_.protocols.push_back({protocols_.at(i).name(), 0, {}});
  }
}

std::unique_ptr<StreamObserver> SessionFactory::create(ConnectionInfo& conn, CaptureHints& hints) {
  return std::make_unique<Session>(*this, conn, hints);
}

std::unique_ptr<StreamObserver> SessionFactory::createPlaintext(
    ConnectionInfo& conn, CaptureHints& hints, const std::unique_ptr<StreamObserver>& packets) {
  return std::make_unique<Session>(*this, conn, hints, &packets);
}

Session::Session(SessionFactory& factory, ConnectionInfo& conn, CaptureHints& hints,
                 const std::unique_ptr<StreamObserver>* packets)
    : factory_(&factory), conn_(&conn), hints_(&hints), plaintext_(packets != nullptr) {
  if (plaintext_) packets_ = packets;
}

const ConnFacts* Session::packetsIdentity() const {
  if (!plaintext_) return nullptr;
  // Asked per record, not kept: the segments' session may come after this
  // one, and it learns the name from its first bytes.
  const auto* packets = dynamic_cast<const Session*>(packets_->get());
  return packets != nullptr ? packets->parser_.get() : nullptr;
}

void Session::emit(const Record& record) {
  const SourcedRecord sourced(record, *this);
  factory_->sink_->onRecord(*conn_, sourced);
}

Session::~Session() = default;

Session::Detection& Session::detection() {
  if (detect_ == nullptr) detect_ = std::make_unique<Detection>();
  return *detect_;
}

Side Session::clientFor(Side sender_side, Sender sender) const {
  switch (sender) {
    case Sender::kClient:
      return sender_side;
    case Sender::kServer:
      return opposite(sender_side);
    case Sender::kUnknown:
      break;
  }
  return conn_->client_side;
}

void Session::onData(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns) {
  offset_[index(side)] += bytes.size();
  if (state_ == State::kDetecting) {
    Detection& d = detection();
    std::string& pending = d.pending[index(side)];
    if (pending.empty()) d.pending_ts[index(side)] = ts_ns;
    const size_t limit = factory_->limits_.max_detect_bytes;
    const size_t room = limit - std::min<size_t>(pending.size(), limit);
    const size_t held = std::min(room, bytes.size());
    pending.append(reinterpret_cast<const char*>(bytes.data()), held);
    detect(side, bytes, ts_ns);
    if (held < bytes.size()) {
      // A first segment larger than the detection buffer (a GSO-sized one
      // carrying pipelined requests or a body): the parser gets the rest
      // of it right after the held part, or, when the protocol is still
      // unknown, the held part no longer joins what follows.
      if (state_ != State::kDetecting) {
        feed(side, bytes.subspan(held), ts_ns);
      } else {
        onGap(side, 0, ts_ns);
      }
    }
    return;
  }
  feed(side, bytes, ts_ns);
}

void Session::detect(Side side, std::span<const uint8_t> chunk, uint64_t ts_ns) {
  if (conn_->midstream || gap_before_detect_) return detectMidstream(side, chunk, ts_ns);
  const std::string& pending = detect_->pending[index(side)];
  StartContext ctx;
  ctx.buffer_full = pending.size() >= factory_->limits_.max_detect_bytes;
  ctx.sender_answered_syn = side == Side::kResp && conn_->roles_from_handshake;
  const auto found = factory_->protocols_.detectStart(asBytes(pending), ctx);
  switch (found.match) {
    case Match::kYes:
      return decide(static_cast<int>(found.protocol), clientFor(side, found.sender));
    case Match::kNeedMore:
      return;
    case Match::kNo:
      return decide(-1, conn_->client_side);
  }
}

void Session::detectMidstream(Side side, std::span<const uint8_t> chunk, uint64_t ts_ns) {
  // Joined mid-connection (no SYN, or a hole before the protocol was known):
  // the first bytes can be anywhere in a message. Look for a boundary the
  // protocols know (their parsers' resync skips what precedes it).
  Detection& d = *detect_;
  std::string& pending = d.pending[index(side)];
  const SessionLimits& limits = factory_->limits_;
  const auto found = factory_->protocols_.findBoundary(chunk, asBytes(pending));
  if (found.boundary.found) {
    if (found.boundary.at_chunk_start) {
      // Keep only this segment's bytes: what came before it is misaligned.
      pending.erase(0, pending.size() - std::min(pending.size(), chunk.size()));
      d.pending_ts[index(side)] = ts_ns;
      d.pending[index(opposite(side))].clear();
    }
    return decide(static_cast<int>(found.protocol), clientFor(side, found.boundary.sender));
  }
  d.scanned[index(side)] += chunk.size();
  if (d.scanned[0] + d.scanned[1] >= limits.max_midstream_scan_bytes) {
    return decide(-1, conn_->client_side);
  }
  // Nothing yet: keep a short tail so a start line split across segments is
  // still found, and drop the rest.
  if (pending.size() > limits.midstream_tail_bytes) {
    pending.erase(0, pending.size() - limits.midstream_tail_bytes);
    d.pending_ts[index(side)] = ts_ns;
  }
}

void Session::decide(int protocol, Side client) {
  // A recognised protocol says who the client is.
  if (protocol >= 0 && (conn_->client_side != client || !conn_->roles_from_handshake)) {
    conn_->client_side = client;
    conn_->roles_from_protocol = true;
  }
  if (protocol >= 0) {
    ParserStart start;
    start.sink = this;
    start.redaction = &factory_->redaction_;
    start.conn = conn_;
    start.midstream = conn_->midstream || gap_before_detect_;
    if (detect_ != nullptr) start.client_bytes = asBytes(detect_->pending[index(client)]);
    startParser(protocol, factory_->protocols_.at(protocol).makeParser(start));
  } else {
    state_ = State::kUnknown;
  }
  // Nothing more to parse: the capture need only count this connection.
  if (!plaintext_ && (!parser_ || !parser_->needsPayload())) hints_->countOnly();
  // Replay what was held back, client first: a server does not answer
  // before it has heard the request.
  std::string held[2];
  uint64_t held_ts[2]{};
  if (detect_ != nullptr) {
    held[0] = std::move(detect_->pending[index(client)]);
    held[1] = std::move(detect_->pending[index(opposite(client))]);
    held_ts[0] = detect_->pending_ts[index(client)];
    held_ts[1] = detect_->pending_ts[index(opposite(client))];
    detect_.reset();
  }
  if (!parser_) return;
  const Side order[2] = {client, opposite(client)};
  for (int i = 0; i < 2; ++i) {
    if (!held[i].empty()) feed(order[i], asBytes(held[i]), held_ts[i]);
  }
}

void Session::startParser(int protocol, std::unique_ptr<ProtocolParser> parser) {
  protocol_ = static_cast<int16_t>(protocol);
  parser_ = std::move(parser);
  walkable_ = parser_->framesWalkable();
  state_ = State::kParsing;
}

void Session::feed(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns) {
  if (state_ != State::kParsing) return;
  const ParseResult result = parser_->onData(roleOf(side), bytes, ts_ns);
  switch (result.outcome) {
    case ParseOutcome::kContinue:
      if (walkable_) armFrameWalk(side);
      // Until the walk is armed (or when the capture has none), a skip range
      // still saves copying.
      if (!walkable_ || !walk_armed_[index(side)]) requestSkip(side);
      break;
    case ParseOutcome::kStop:
      state_ = State::kStopped;
      break;
    case ParseOutcome::kSwitchProtocol:
      switchProtocol(side, bytes.subspan(std::min(result.consumed, bytes.size())), ts_ns);
      break;
  }
}

void Session::switchProtocol(Side side, std::span<const uint8_t> rest, uint64_t ts_ns) {
  const Upgrade upgrade = parser_->upgrade();
  const int next = factory_->protocols_.upgradeTarget(upgrade.token);
  if (next < 0) {
    // No registered protocol takes it: as good as a tunnel.
    state_ = State::kStopped;
    return;
  }
  ParserStart start;
  start.sink = this;
  start.redaction = &factory_->redaction_;
  start.conn = conn_;
  start.upgrade = &upgrade;
  // The old parser goes after the new one took over its request.
  startParser(next, factory_->protocols_.at(next).makeParser(start));
  if (!rest.empty()) feed(side, rest, ts_ns);
}

void Session::requestSkip(Side side) {
  // What the parser will only count needs no copying: ask the capture to skip
  // it, once per body (the kernel has one range per direction).
  const uint64_t skippable = parser_->skippableBytes(roleOf(side));
  const int s = index(side);
  const uint64_t end = offset_[s] + skippable;
  if (skippable < factory_->limits_.min_skip_bytes || end <= skip_end_[s]) return;
  skip_end_[s] = end;
  if (!plaintext_) hints_->skip(side, offset_[s], skippable);
}

void Session::armFrameWalk(Side side) {
  // The capture follows the frame headers itself (tc/frame_walk.h), skipping
  // what the parser only counts, once told where one frame starts. Armed
  // again when it says it lost its place.
  const int s = index(side);
  if (walk_armed_[s]) return;
  const int64_t to_next = parser_->bytesToNextFrame(roleOf(side));
  if (to_next < 0) return;
  walk_armed_[s] = true;
  if (!plaintext_) hints_->walkFrames(side, offset_[s] + static_cast<uint64_t>(to_next));
}

void Session::onCaptureWalk(Side side, CaptureWalk walk) {
  // On: the capture walks (it may have armed itself). Lost: armFrameWalk()
  // arms it again at the parser's next frame boundary.
  walk_armed_[index(side)] = walk == CaptureWalk::kOn;
}

void Session::onGap(Side side, uint64_t length, uint64_t ts_ns) {
  offset_[index(side)] += length;
  if (state_ == State::kDetecting) {
    // What was held is followed by a hole: useless for detection.
    if (detect_ != nullptr) detect_->pending[index(side)].clear();
    gap_before_detect_ = true;
    return;
  }
  if (state_ == State::kParsing) parser_->onGap(roleOf(side), length, ts_ns);
}

void Session::onEnd(Side side, EndKind kind, uint64_t ts_ns) {
  if (state_ == State::kDetecting && detect_ != nullptr && !detect_->pending[index(side)].empty()) {
    // The side ended while its first bytes were still ambiguous.
    decide(-1, conn_->client_side);
  }
  if (state_ == State::kParsing) parser_->onEnd(roleOf(side), kind == EndKind::kRst, ts_ns);
}

void Session::onClose(const ConnectionInfo& conn) {
  if (parser_) parser_->finish(conn.last_ts_ns);
  SessionStats& stats = factory_->stats_;
  if (protocol_ >= 0) {
    ProtocolTotals& totals = stats.protocols[protocol_];
    totals.connections++;
    CounterSum sum(totals.counters);
    parser_->visitCounters(sum);
  } else {
    stats.connections_other++;
  }
  if (yieldsRecord()) return;
  stats.conn_records++;
  emit(connRecord(false));
}

void Session::onInterim(const ConnectionInfo& conn) {
  (void)conn;  // the session's own: the same
  if (!yieldsRecord()) emit(connRecord(true));
}

void Session::onExchange(const Record& record) {
  exchanges_++;
  factory_->stats_.http_records++;
  emit(record);
}

ConnRecord Session::connRecord(bool interim) const {
  ConnRecord r;
  if (protocol_ >= 0) r.protocol = factory_->protocols_.at(protocol_).name();
  r.exchanges = exchanges_;
  r.interim = interim;
  r.facts = parser_.get();
  return r;
}

}  // namespace l7tap
