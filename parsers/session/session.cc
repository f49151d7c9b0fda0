#include "parsers/session/session.h"

#include <algorithm>
#include <string_view>

#include "parsers/tls/client_hello.h"

namespace l7tap {

namespace {

constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Request methods recognised at the start of a client's stream (with the space).
constexpr std::string_view kRequestStarts[] = {
    "GET ",     "POST ",   "PUT ",      "HEAD ",      "DELETE ", "OPTIONS ", "PATCH ",
    "CONNECT ", "TRACE ",  "PROPFIND ", "PROPPATCH ", "MKCOL ",  "COPY ",    "MOVE ",
    "LOCK ",    "UNLOCK ", "REPORT ",   "SEARCH ",    "PURGE ",
};
constexpr std::string_view kResponseStarts[] = {"HTTP/1.1 ", "HTTP/1.0 "};

enum class Match { kNo, kNeedMore, kYes };

Match startsWith(std::string_view data, std::string_view prefix) {
  if (data.size() >= prefix.size()) return data.starts_with(prefix) ? Match::kYes : Match::kNo;
  return prefix.starts_with(data) ? Match::kNeedMore : Match::kNo;
}

// Best of several prefixes: yes if one matches, need-more if one still could.
template <size_t N>
Match startsWithAny(std::string_view data, const std::string_view (&prefixes)[N]) {
  Match best = Match::kNo;
  for (auto p : prefixes) {
    Match m = startsWith(data, p);
    if (m == Match::kYes) return m;
    if (m == Match::kNeedMore) best = m;
  }
  return best;
}

// Mid-stream: is there an HTTP/1 message start at some line start in `data`?
// Returns the role of the side that sent it, if found.
bool findHttp1Boundary(std::string_view data, Role& sender) {
  for (size_t pos = 0; pos < data.size();) {
    std::string_view line = data.substr(pos);
    for (auto p : kResponseStarts) {
      if (line.starts_with(p)) {
        sender = Role::kServer;
        return true;
      }
    }
    for (auto p : kRequestStarts) {
      if (line.starts_with(p)) {
        const size_t eol = line.find("\r\n");
        if (eol != std::string_view::npos) {
          std::string_view first = line.substr(0, eol);
          if (first.ends_with(" HTTP/1.1") || first.ends_with(" HTTP/1.0")) {
            sender = Role::kClient;
            return true;
          }
        }
      }
    }
    const size_t nl = data.find("\r\n", pos);
    if (nl == std::string_view::npos) break;
    pos = nl + 2;
  }
  return false;
}

std::span<const uint8_t> asBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

std::unique_ptr<StreamObserver> SessionFactory::create(ConnectionInfo& conn, CaptureHints& hints) {
  return std::make_unique<Session>(*this, conn, hints);
}

Session::Session(SessionFactory& factory, ConnectionInfo& conn, CaptureHints& hints)
    : factory_(&factory), conn_(&conn), hints_(&hints) {}

Session::~Session() = default;

Session::Detection& Session::detection() {
  if (detect_ == nullptr) detect_ = std::make_unique<Detection>();
  return *detect_;
}

void Session::onData(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns) {
  offset_[index(side)] += bytes.size();
  if (protocol_ == AppProtocol::kDetecting) {
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
      if (protocol_ != AppProtocol::kDetecting) {
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
  const std::string_view data(pending);
  bool could_be_more = false;

  switch (startsWith(data, kHttp2Preface)) {
    case Match::kYes:
      return decide(AppProtocol::kHttp2, side, ts_ns);
    case Match::kNeedMore:
      could_be_more = true;
      break;
    case Match::kNo:
      break;
  }
  switch (startsWithAny(data, kRequestStarts)) {
    case Match::kYes:
      return decide(AppProtocol::kHttp1, side, ts_ns);
    case Match::kNeedMore:
      could_be_more = true;
      break;
    case Match::kNo:
      break;
  }
  switch (startsWithAny(data, kResponseStarts)) {
    case Match::kYes:
      return decide(AppProtocol::kHttp1, opposite(side), ts_ns);
    case Match::kNeedMore:
      could_be_more = true;
      break;
    case Match::kNo:
      break;
  }
  ClientHelloInfo hello;
  switch (parseClientHello(asBytes(pending), hello)) {
    case TlsParse::kClientHello:
      tls_ = std::make_unique<ClientHelloInfo>(std::move(hello));
      return decide(AppProtocol::kTls, side, ts_ns);
    case TlsParse::kOtherHandshake:
      return decide(AppProtocol::kTls, opposite(side), ts_ns);
    case TlsParse::kNeedMore:
      if (pending.size() >= factory_->limits_.max_detect_bytes) {
        return decide(AppProtocol::kTls, conn_->client_side, ts_ns);
      }
      could_be_more = true;
      break;
    case TlsParse::kNotTls:
      break;
  }
  if (side == Side::kResp && conn_->roles_from_handshake &&
      looksLikeHttp2Frames(asBytes(pending))) {
    // An HTTP/2 server may send its SETTINGS before the client's preface
    // arrives (nghttpd does): the preface is still to come from the client.
    return decide(AppProtocol::kHttp2, Side::kOrig, ts_ns);
  }
  if (!could_be_more) decide(AppProtocol::kOther, conn_->client_side, ts_ns);
}

void Session::detectMidstream(Side side, std::span<const uint8_t> chunk, uint64_t ts_ns) {
  // Joined mid-connection (no SYN, or a hole before the protocol was known):
  // the first bytes can be anywhere in a message. Look for a boundary: an
  // HTTP/2 frame header at a segment start, or an HTTP/1 start line at a
  // line start (the HTTP/1 parser's resync skips what precedes it).
  Detection& d = *detect_;
  std::string& pending = d.pending[index(side)];
  const SessionLimits& limits = factory_->limits_;
  if (looksLikeHttp2Frames(chunk)) {
    // Keep only this segment's bytes: what came before it is misaligned.
    pending.erase(0, pending.size() - std::min(pending.size(), chunk.size()));
    d.pending_ts[index(side)] = ts_ns;
    d.pending[index(opposite(side))].clear();
    return decide(AppProtocol::kHttp2, conn_->client_side, ts_ns);
  }
  Role sender;
  if (findHttp1Boundary(pending, sender)) {
    return decide(AppProtocol::kHttp1, sender == Role::kClient ? side : opposite(side), ts_ns);
  }
  d.scanned[index(side)] += chunk.size();
  if (d.scanned[0] + d.scanned[1] >= limits.max_midstream_scan_bytes) {
    return decide(AppProtocol::kOther, conn_->client_side, ts_ns);
  }
  // Nothing yet: keep a short tail so a start line split across segments is
  // still found, and drop the rest.
  if (pending.size() > limits.midstream_tail_bytes) {
    pending.erase(0, pending.size() - limits.midstream_tail_bytes);
    d.pending_ts[index(side)] = ts_ns;
  }
}

void Session::decide(AppProtocol protocol, Side client, uint64_t ts_ns) {
  (void)ts_ns;
  protocol_ = protocol;
  const bool knows_roles = protocol == AppProtocol::kHttp1 || protocol == AppProtocol::kHttp2 ||
                           protocol == AppProtocol::kTls;
  if (knows_roles && (conn_->client_side != client || !conn_->roles_from_handshake)) {
    conn_->client_side = client;
    conn_->roles_from_protocol = true;
  }
  switch (protocol) {
    case AppProtocol::kHttp1: {
      auto p = std::make_unique<Http1Parser>(*this, factory_->http1_);
      http1_ = p.get();
      parser_ = std::move(p);
      proto_.name = "http/1";
      break;
    }
    case AppProtocol::kHttp2: {
      auto p = std::make_unique<Http2Parser>(*this, factory_->http2_);
      http2_ = p.get();
      if (conn_->midstream || gap_before_detect_) {
        // Only skip the preface if this side's bytes don't start with it.
        if (detect_ == nullptr ||
            !std::string_view(detect_->pending[index(client)]).starts_with(kHttp2Preface)) {
          http2_->startMidstream();
        }
      }
      parser_ = std::move(p);
      proto_.name = "h2";
      break;
    }
    case AppProtocol::kTls:
      proto_.name = "tls";
      break;
    default:
      proto_.name = "unknown";
      break;
  }
  if (protocol == AppProtocol::kTls || protocol == AppProtocol::kOther) {
    // Nothing more to parse: the capture need only count this connection.
    hints_->countOnly();
  }
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

void Session::feed(Side side, std::span<const uint8_t> bytes, uint64_t ts_ns) {
  if (!parser_ || protocol_ == AppProtocol::kStopped) return;
  const ParseResult result = parser_->onData(roleOf(side), bytes, ts_ns);
  if (result.outcome == ParseOutcome::kContinue) {
    if (http2_ != nullptr) armFrameWalk(side);
    // Until the walk is armed (or when the capture has none), the DATA
    // frame's skip range still saves copying.
    if (http2_ == nullptr || !walk_armed_[index(side)]) requestSkip(side);
  }
  switch (result.outcome) {
    case ParseOutcome::kContinue:
      break;
    case ParseOutcome::kStop:
      protocol_ = AppProtocol::kStopped;
      break;
    case ParseOutcome::kSwitchToHttp2: {
      auto h2 = std::make_unique<Http2Parser>(*this, factory_->http2_);
      h2->adoptUpgradedRequest(http1_->upgradedRequest());
      http1_ = nullptr;
      http2_ = h2.get();
      parser_ = std::move(h2);  // the HTTP/1 parser goes after handing over its request
      protocol_ = AppProtocol::kHttp2;
      proto_.name = "h2";
      const size_t used = std::min(result.consumed, bytes.size());
      if (used < bytes.size()) feed(side, bytes.subspan(used), ts_ns);
      break;
    }
  }
}

void Session::requestSkip(Side side) {
  // What the parser will only count needs no copying: ask the capture to skip
  // it, once per body (the kernel has one range per direction).
  const uint64_t skippable = parser_->skippableBytes(roleOf(side));
  const int s = index(side);
  const uint64_t end = offset_[s] + skippable;
  if (skippable < factory_->limits_.min_skip_bytes || end <= skip_end_[s]) return;
  skip_end_[s] = end;
  hints_->skip(side, offset_[s], skippable);
}

void Session::armFrameWalk(Side side) {
  // HTTP/2: the capture follows the frame headers itself (tc/frame_walk.h),
  // skipping DATA payloads and keeping every header block whole, once told
  // where one frame starts. Armed again when it says it lost its place.
  const int s = index(side);
  if (walk_armed_[s]) return;
  const int64_t to_next = http2_->bytesToNextFrame(roleOf(side));
  if (to_next < 0) return;
  walk_armed_[s] = true;
  hints_->walkFrames(side, offset_[s] + static_cast<uint64_t>(to_next));
}

void Session::onCaptureWalk(Side side, CaptureWalk walk) {
  // On: the capture walks (it may have armed itself). Lost: armFrameWalk()
  // arms it again at the parser's next frame boundary.
  walk_armed_[index(side)] = walk == CaptureWalk::kOn;
}

void Session::onGap(Side side, uint64_t length, uint64_t ts_ns) {
  offset_[index(side)] += length;
  if (protocol_ == AppProtocol::kDetecting) {
    // What was held is followed by a hole: useless for detection.
    if (detect_ != nullptr) detect_->pending[index(side)].clear();
    gap_before_detect_ = true;
    return;
  }
  if (parser_ && protocol_ != AppProtocol::kStopped) parser_->onGap(roleOf(side), length, ts_ns);
}

void Session::onEnd(Side side, EndKind kind, uint64_t ts_ns) {
  if (protocol_ == AppProtocol::kDetecting && detect_ != nullptr &&
      !detect_->pending[index(side)].empty()) {
    // The side ended while its first bytes were still ambiguous.
    decide(AppProtocol::kOther, conn_->client_side, ts_ns);
  }
  if (parser_ && protocol_ != AppProtocol::kStopped) {
    parser_->onEnd(roleOf(side), kind == EndKind::kRst, ts_ns);
  }
}

namespace {

void addStats(Http1Stats& to, const Http1Stats& s) {
  to.exchanges += s.exchanges;
  to.parse_errors += s.parse_errors;
  to.resyncs += s.resyncs;
  to.resync_dropped_bytes += s.resync_dropped_bytes;
  to.gap_skipped_body_bytes += s.gap_skipped_body_bytes;
  to.gaps_outside_body += s.gaps_outside_body;
  to.tunnel_dropped_bytes += s.tunnel_dropped_bytes;
  to.pending_overflows += s.pending_overflows;
  to.truncated_fields += s.truncated_fields;
  to.ambiguous_messages += s.ambiguous_messages;
  to.length_overflows += s.length_overflows;
  to.rejected_requests += s.rejected_requests;
  to.rejected_dropped_bytes += s.rejected_dropped_bytes;
}

void addStats(Http2Stats& to, const Http2Stats& s) {
  to.frames += s.frames;
  to.gaps += s.gaps;
  to.desyncs += s.desyncs;
  to.resyncs += s.resyncs;
  to.resync_skipped_bytes += s.resync_skipped_bytes;
  to.hpack_errors += s.hpack_errors;
  to.hpack_unknown_fields += s.hpack_unknown_fields;
  to.exchanges += s.exchanges;
  to.streams_evicted += s.streams_evicted;
  to.preface_mismatches += s.preface_mismatches;
  to.hpack_table_size_cut += s.hpack_table_size_cut;
  to.empty_streams_dropped += s.empty_streams_dropped;
}

}  // namespace

void Session::onClose(const ConnectionInfo& conn) {
  if (parser_) parser_->finish(conn.last_ts_ns);
  SessionStats& stats = factory_->stats_;
  if (http1_ != nullptr) addStats(stats.http1, http1_->stats());
  if (http2_ != nullptr) addStats(stats.http2, http2_->stats());
  switch (protocol_) {
    case AppProtocol::kHttp1:
      stats.connections_http1++;
      break;
    case AppProtocol::kHttp2:
      stats.connections_http2++;
      break;
    case AppProtocol::kTls:
      stats.connections_tls++;
      break;
    case AppProtocol::kStopped:
      (http2_ ? stats.connections_http2 : stats.connections_http1)++;
      break;
    default:
      stats.connections_other++;
      break;
  }
  stats.conn_records++;
  factory_->sink_->onConnection(conn, protocolInfo(false));
}

void Session::onInterim(const ConnectionInfo& conn) {
  factory_->sink_->onConnection(conn, protocolInfo(true));
}

void Session::onExchange(const HttpRecord& record) {
  proto_.exchanges++;
  factory_->stats_.http_records++;
  factory_->sink_->onHttp(*conn_, record);
}

ProtocolInfo Session::protocolInfo(bool interim) const {
  ProtocolInfo p;
  p.name = proto_.name;
  p.exchanges = proto_.exchanges;
  p.interim = interim;
  if (tls_) {
    p.tls_server_name = tls_->server_name;
    p.tls_alpn = tls_->alpn;
  }
  // The HPACK facts go in the final record only.
  if (http2_ && !interim) {
    for (const Role role : {Role::kClient, Role::kServer}) {
      const Http2HpackSync& h = http2_->hpackSync(role);
      HpackSyncInfo& out = p.hpack[role == Role::kClient ? 0 : 1];
      out.synchronised = h.synchronised;
      out.losses = h.losses;
      out.resumes = h.resumes;
      out.resumed_after_exchanges = h.resumed_after_exchanges;
      out.resumed_after_bytes = h.resumed_after_bytes;
    }
  }
  return p;
}

}  // namespace l7tap
