#include "parsers/http2/http2_parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

#include "parsers/http2/frame.h"
#include "parsers/http2/hpack_decoder.h"

// How the parser recovers (one rule set, see also DESIGN.md "Correctness rules"):
//
// - A gap inside a frame's payload keeps frame alignment (the frame length is
//   known). DATA: the lost bytes count as body and the stream gets kFlagGap.
//   A header block: the stream gets kFlagGap, the rest of the block is
//   ignored and that direction's dynamic table is now unknown
//   (HpackDecoder::resetUnknown): later blocks decode every field they can
//   exactly, fields that reference entries from before are unknown (see
//   below), and the direction is synchronised again once those entries are
//   evicted (Http2Stats::hpack). Control frames: their lost content is
//   ignored.
// - A gap in the preface skips preface bytes (they are known).
// - A gap in a frame header, or one that runs past the end of the current
//   frame, loses alignment: every stream whose side in that direction had not
//   ended gets kFlagGap, an unfinished header block's END_STREAM is applied,
//   the dynamic table becomes unknown, and the direction scans for a boundary
//   (resyncStep, the one resync routine): a chain of
//   Http2Limits::resync_confirm_frames frames whose headers fit what is known
//   of the connection (fitsConnection: streams open or that unseen bytes can
//   have opened, no empty DATA or header block, ...) followed by one more
//   fitting header, or fitting frames that end exactly where the bytes
//   received so far end.
//   The scan keeps at most Http2Limits::max_resync_bytes; a chain that does
//   not fit in them is never taken on trust.
// - A boundary found by scanning stays tentative for
//   Http2Limits::resync_tentative_frames frames: each must fit the connection
//   (else the boundary is refuted and the scan resumes), RST_STREAM and
//   GOAWAY are ignored, streams it touches get kFlagGap, and streams it opens
//   are held back; they are dropped without a record if alignment is lost
//   (a gap right after the chain included) before confirmation, and flagged
//   kFlagGap if the connection ends first. Confirmation: the frames followed
//   without a gap span more than a maximum-size frame (a misaligned chain
//   inside a DATA payload has then run into a real frame header), or a frame
//   names a stream the other direction opened since this one lost alignment. Why: a gap that runs
//   past the end of a DATA frame (plain payload windows on 64 KB skbs lose one after every copied
//   KB) leaves a scan over DATA payload bytes, and a binary upload is full of byte runs that pass
//   for a frame header or two; records for streams that never existed, with sizes and fields read
//   from those bytes, must not come out of it.
// - startMidstream() starts both directions in that scan, with unknown
//   dynamic tables.
// - DATA of a side whose HEADERS were never seen is counted from where it
//   was found, and the stream gets kFlagGap: bytes before it may be lost.
// - A header field that is unknown is never attributed. The exchange gets
//   kFlagHpackUnknown when its request, response or trailers block had one
//   while the direction was not synchronised, or had one and lacks :method
//   or :path (request) or :status (response). A response block with one
//   and without :status is not taken as the final one.

namespace l7tap {

namespace {

using h2::FrameHeader;
using h2::kFrameHeaderBytes;

using h2::kClientPreface;
constexpr size_t kPrefaceBytes = h2::kClientPrefaceBytes;

// Stream ids recently emitted, so late frames on them (DATA in flight after a
// RST_STREAM) don't open a new exchange.
constexpr size_t kRecentlyClosed = 128;
// SETTINGS frames awaiting their ACK, per direction.
constexpr size_t kPendingSettings = 8;

// The smallest HEADERS frame a client can open a stream with (a one-byte
// header block): bounds how many streams unseen bytes can have opened.
constexpr uint64_t kMinHeadersFrameBytes = kFrameHeaderBytes + 1;

constexpr int idx(Role r) { return static_cast<int>(r); }
constexpr uint8_t bit(Role r) { return static_cast<uint8_t>(1u << idx(r)); }
constexpr Role other(Role r) { return r == Role::kClient ? Role::kServer : Role::kClient; }

enum class DirState : uint8_t { kPreface, kFrameHeader, kPayload, kResync };

enum class BlockKind : uint8_t {
  kRequest,
  kRequestTrailers,
  kResponse,  ///< interim or final, decided by :status
  kResponseTrailers,
  kIgnore,  ///< PUSH_PROMISE, pushed or closed streams: decode only for HPACK state
};

// What a stream knows besides its record: reset on its own when a slot is
// reused, because the record is cleared already when the slot is freed.
struct StreamState {
  uint64_t seq = 0;           // creation order, for eviction
  bool request_seen = false;  // request headers seen (or adopted)
  bool client_ended = false;
  bool server_ended = false;
  bool final_response = false;  // final response headers seen: next HEADERS are trailers
  // A HEADERS frame of that side was seen: its DATA is counted from the start.
  bool client_headers = false;
  bool server_headers = false;
  // Bit idx(role): opened by a frame of `role` found after a scan that is
  // not confirmed yet (Http2Limits::resync_tentative_frames).
  uint8_t tentative = 0;
  // Opened by such a frame (whether confirmed since or not).
  bool after_scan = false;
  Role opener = Role::kClient;  // the direction whose frame opened it
};

struct Stream : StreamState {
  HttpRecord rec;
};

struct Direction {
  Role role = Role::kClient;
  DirState state = DirState::kFrameHeader;
  uint8_t preface_pos = 0;
  uint8_t hdr_have = 0;
  std::array<uint8_t, kFrameHeaderBytes> hdr{};
  uint64_t frame_ts = 0;  // ts of the call that carried the frame's first byte

  // The frame whose payload is being read.
  FrameHeader fh;
  uint32_t remaining = 0;     // payload bytes still to come
  uint32_t content_left = 0;  // of them, content (not pad length, prefix or padding)
  uint8_t prefix_left = 0;    // HEADERS priority (5) or PUSH_PROMISE promised id (4)
  bool need_pad_length = false;
  bool payload_lost = false;       // a gap hit this frame's payload
  bool block_content = false;      // content belongs to the open header block
  int32_t data_slot = -1;          // DATA: the stream's slot, -1 if not tracked
  std::array<uint8_t, 8> fixed{};  // RST_STREAM / GOAWAY / one SETTINGS entry
  uint8_t fixed_have = 0;
  int64_t frame_table_size = -1;  // SETTINGS_HEADER_TABLE_SIZE in this SETTINGS frame

  // The header block being decoded (HEADERS/PUSH_PROMISE + CONTINUATION).
  bool in_block = false;
  bool block_lost = false;     // the rest of the block is ignored
  bool block_failed = false;   // HPACK error in this block
  bool block_unknown = false;  // a field named an unknown table entry
  bool block_synced = true;    // the table was synchronised when the block began
  bool block_end_stream = false;
  bool block_authority = false;
  BlockKind block_kind = BlockKind::kIgnore;
  uint32_t block_stream = 0;
  int block_status = 0;
  uint64_t block_decoded_bytes = 0;

  HpackDecoder hpack;
  uint64_t bytes = 0;  // received or lost so far
  // Bytes lost or skipped where frames could not be followed (gaps past a
  // frame's end, bytes dropped by scans): what new streams may hide in.
  uint64_t unseen_bytes = 0;
  // What remains to follow after a scan before its boundary is confirmed:
  // frames, and bytes received in a row (see startTentative).
  uint32_t tentative_frames = 0;
  uint64_t tentative_bytes = 0;
  bool tentative() const { return tentative_frames > 0 || tentative_bytes > 0; }
  // A frame named a stream the other direction opened since this one lost
  // alignment: confirmed at the end of the current frame.
  bool agreed = false;
  bool gap_while_tentative = false;  // bytes were lost since the scan
  uint64_t lost_at_seq = 0;          // next_seq_ when alignment was last lost
  // SETTINGS_MAX_FRAME_SIZE announced by this direction's receiver.
  uint32_t max_frame_size = h2::kDefaultMaxFrameSize;
  // Header table sizes announced by the receiver, applied to `hpack` when
  // this direction acknowledges them (-1: that SETTINGS had none).
  std::array<int64_t, kPendingSettings> pending_sizes{};
  uint8_t pending_head = 0;
  uint8_t pending_count = 0;

  // Resync: bytes kept while looking for a boundary; after one is found,
  // [tail_off, size) are replayed through the frame parser.
  std::vector<uint8_t> tail;
  size_t tail_off = 0;
};

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

struct Http2Parser::Impl final : HeaderFieldHandler {
  Impl(ExchangeSink& sink, const Http2Limits& limits, const RedactionPolicy& redaction,
       const ConnectionInfo* conn)
      : sink_(sink), limits_(limits), redaction_(redaction), conn_(conn) {
    limits_.max_open_streams = std::max<uint32_t>(limits_.max_open_streams, 1);
    limits_.max_resync_bytes = std::max<uint32_t>(limits_.max_resync_bytes, 64);
    dirs_[0].role = Role::kClient;
    dirs_[0].state = DirState::kPreface;
    dirs_[1].role = Role::kServer;
    dirs_[1].state = DirState::kFrameHeader;
    for (Direction& d : dirs_) d.hpack.setMaxTableSize(limits_.max_hpack_table_bytes);
    recently_closed_.fill(0);
  }

  ExchangeSink& sink_;
  Http2Limits limits_;
  const RedactionPolicy& redaction_;
  const ConnectionInfo* conn_;  // L4 counters for exchange_l4; null in parser tests
  Http2Stats stats_;
  std::array<Direction, 2> dirs_;
  bool midstream_ = false;

  // Streams: slots reused through a free list; ids_ mirrors the slots for a
  // compact scan (0 = free).
  std::vector<Stream> streams_;
  std::vector<uint32_t> ids_;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> order_;  // scratch for emitting several streams in id order
  uint64_t next_seq_ = 0;
  // Client-opened stream ids whose opening HEADERS we saw: ids in
  // [first_opened_, highest_opened_] that are not open are closed.
  uint32_t first_opened_ = 0;
  uint32_t highest_opened_ = 0;
  std::array<uint32_t, kRecentlyClosed> recently_closed_;
  size_t recently_closed_next_ = 0;
  uint32_t recently_closed_max_ = 0;  // no id in recently_closed_ is larger
  mutable size_t last_found_ = 0;     // find()'s last hit

  // Set while a header block fragment is being decoded.
  Direction* cur_dir_ = nullptr;
  Stream* cur_stream_ = nullptr;

  Direction& dir(Role r) { return dirs_[idx(r)]; }

  // ---- streams -----------------------------------------------------------

  int32_t find(uint32_t sid) const {
    if (sid == 0) return -1;
    // A stream's frames come in runs (HEADERS, CONTINUATION, DATA): the
    // last slot found is checked first. Ids are unique among open slots, so
    // a match is the answer.
    if (last_found_ < ids_.size() && ids_[last_found_] == sid) {
      return static_cast<int32_t>(last_found_);
    }
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == sid) {
        last_found_ = i;
        return static_cast<int32_t>(i);
      }
    }
    return -1;
  }

  Stream* slot(int32_t i, uint32_t sid) {
    if (i < 0 || static_cast<size_t>(i) >= ids_.size() || ids_[i] != sid) return nullptr;
    return &streams_[i];
  }

  Stream* lookup(uint32_t sid) { return slot(find(sid), sid); }

  bool recentlyClosed(uint32_t sid) const {
    // Clients open streams in increasing order: a new one is above every
    // id closed so far, and the scan is skipped.
    if (sid > recently_closed_max_) return false;
    return std::find(recently_closed_.begin(), recently_closed_.end(), sid) !=
           recently_closed_.end();
  }

  // May a frame on the untracked stream `sid` start a new exchange?
  bool mayOpen(uint32_t sid) const {
    if (sid == 0 || (sid & 1) == 0) return false;  // pushed streams are not tracked
    if (recentlyClosed(sid)) return false;
    if (first_opened_ != 0 && sid >= first_opened_ && sid <= highest_opened_) return false;
    return true;
  }

  int32_t create(uint32_t sid) {
    int32_t i;
    if (!free_.empty()) {
      i = static_cast<int32_t>(free_.back());
      free_.pop_back();
    } else if (streams_.size() < limits_.max_open_streams) {
      streams_.emplace_back();
      ids_.push_back(0);
      i = static_cast<int32_t>(streams_.size() - 1);
    } else {
      // Full: drop the oldest open stream (it is most likely abandoned).
      i = 0;
      for (size_t j = 1; j < streams_.size(); ++j) {
        if (streams_[j].seq < streams_[i].seq) i = static_cast<int32_t>(j);
      }
      ++stats_.streams_evicted;
      if (streams_[i].tentative) {
        ++stats_.unconfirmed_streams_dropped;  // may never have existed: no record
        streams_[i].rec.clear();
      } else {
        emit(i, kFlagOverflow);
        free_.pop_back();  // emit() returned slot i to the free list
      }
    }
    Stream& s = streams_[i];
    // Free slots hold a cleared record (emit, dropUnconfirmed, above).
    static_cast<StreamState&>(s) = StreamState{};
    s.seq = next_seq_++;
    s.rec.stream_id = sid;
    // The frame that opens the stream is its exchange's first (HEADERS, or
    // DATA of a response whose headers were not seen).
    s.rec.startL4(conn_);
    ids_[i] = sid;
    return i;
  }

  void emit(int32_t i, uint32_t extra_flags) {
    Stream& s = streams_[i];
    HttpRecord& r = s.rec;
    r.flags |= extra_flags;
    // Emitted (at the end) while the boundary it came from is unconfirmed.
    if (s.tentative) r.flags |= kFlagGap;
    r.version = "2";
    if (!s.request_seen) {
      r.flags |= kFlagNoRequest;
      if (midstream_) r.flags |= kFlagMidstream;
    }
    if (!s.server_ended) r.flags |= kFlagNoResponse;
    // A stream that carried no header and no body byte says nothing but its
    // id, which after a resync onto a false frame boundary (a flood of tiny
    // frames outrunning the capture's frame walk) is misread bytes.
    const bool empty = !s.request_seen && r.status == 0 && r.interim_status == 0 &&
                       r.request_header_bytes == 0 && r.response_header_bytes == 0 &&
                       r.request_body_bytes == 0 && r.response_body_bytes == 0;
    if (empty) {
      ++stats_.empty_streams_dropped;
    } else {
      ++stats_.exchanges;
      r.endL4(conn_);
      r.redact(redaction_, limits_.max_url_bytes);
      sink_.onExchange(r);
    }
    recently_closed_[recently_closed_next_] = ids_[i];
    recently_closed_max_ = std::max(recently_closed_max_, ids_[i]);
    recently_closed_next_ = (recently_closed_next_ + 1) % kRecentlyClosed;
    ids_[i] = 0;
    r.clear();
    free_.push_back(static_cast<uint32_t>(i));
  }

  // Emits every open stream `pick` selects, in stream id order.
  template <typename Pick>
  void emitAll(uint32_t extra_flags, Pick pick) {
    order_.clear();
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] != 0 && pick(ids_[i], streams_[i])) order_.push_back(static_cast<uint32_t>(i));
    }
    std::sort(order_.begin(), order_.end(),
              [this](uint32_t a, uint32_t b) { return ids_[a] < ids_[b]; });
    for (uint32_t i : order_) emit(static_cast<int32_t>(i), extra_flags);
  }

  void maybeEmit(int32_t i) {
    Stream& s = streams_[i];
    if (s.tentative) return;  // wait until its frames are confirmed
    // Without the request's start we can't know whether the client ended:
    // the server's END_STREAM ends the exchange.
    if (s.server_ended && (s.client_ended || !s.request_seen)) emit(i, 0);
  }

  void endSide(int32_t i, Role role, uint64_t ts) {
    Stream& s = streams_[i];
    if (role == Role::kClient) {
      if (!s.client_ended) s.rec.request_end_ns = ts;
      s.client_ended = true;
    } else {
      if (!s.server_ended) s.rec.response_end_ns = ts;
      s.server_ended = true;
    }
    maybeEmit(i);
  }

  // ---- header fields -----------------------------------------------------

  void setBounded(std::string& dst, std::string_view v, uint32_t max, HttpRecord& r) {
    dst.clear();
    if (!appendBounded(dst, v, max)) r.flags |= kFlagTruncated;
  }

  static int parseInt(std::string_view v) {
    int out = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || p != v.data() + v.size() || out < 0) return -1;
    return out;
  }

  void onHeaderField(std::string_view name, std::string_view value) override {
    Direction& d = *cur_dir_;
    d.block_decoded_bytes += name.size() + value.size();
    Stream* s = cur_stream_;
    if (s == nullptr) return;
    HttpRecord& r = s->rec;
    if (d.block_decoded_bytes > limits_.max_header_list_bytes) {
      r.flags |= kFlagTruncated;
      return;
    }
    switch (d.block_kind) {
      case BlockKind::kRequest:
        if (name == ":method") {
          setBounded(r.method, value, limits_.max_header_value_bytes, r);
        } else if (name == ":path") {
          size_t q = value.find('?');
          setBounded(r.path, value.substr(0, q), limits_.max_url_bytes, r);
          r.query.clear();
          if (q != std::string_view::npos) {
            setBounded(r.query, value.substr(q + 1), limits_.max_url_bytes, r);
          }
        } else if (name == ":authority") {
          setBounded(r.host, value, limits_.max_header_value_bytes, r);
          d.block_authority = true;
        } else if (name == "host") {
          if (!d.block_authority) setBounded(r.host, value, limits_.max_header_value_bytes, r);
        } else if (name == "user-agent") {
          setBounded(r.user_agent, value, limits_.max_header_value_bytes, r);
        } else if (name == "content-type") {
          setBounded(r.content_type, value, limits_.max_header_value_bytes, r);
        }
        break;
      case BlockKind::kResponse:
        if (name == ":status") {
          d.block_status = parseInt(value);
        } else if (name == "grpc-status") {
          r.grpc_status = parseInt(value);  // trailers-only response
        }
        break;
      case BlockKind::kResponseTrailers:
        if (name == "grpc-status") r.grpc_status = parseInt(value);
        break;
      case BlockKind::kRequestTrailers:
      case BlockKind::kIgnore:
        break;
    }
  }

  void onUnknownHeaderField() override {
    cur_dir_->block_unknown = true;
    ++stats_.hpack_unknown_fields;
  }

  // ---- header blocks -----------------------------------------------------

  // Records when d's table stops or starts being known.
  void trackHpack(Direction& d) {
    Http2HpackSync& h = stats_.hpack[idx(d.role)];
    const bool synced = d.hpack.synchronised();
    if (synced == h.synchronised) return;
    h.synchronised = synced;
    if (!synced) {
      ++h.losses;
      return;
    }
    ++h.resumes;
    h.resumed_after_exchanges = stats_.exchanges;
    h.resumed_after_bytes = d.bytes;
  }

  // d's dynamic table is no longer known (bytes lost, or joined mid-way).
  void loseTable(Direction& d) {
    d.hpack.resetUnknown();
    trackHpack(d);
  }

  void flagHpackError(Direction& d) {
    if (d.block_failed) return;
    d.block_failed = true;
    ++stats_.hpack_errors;
    if (Stream* s = lookup(d.block_stream)) s->rec.flags |= kFlagHpackError;
  }

  void beginBlock(Direction& d, BlockKind kind, bool end_stream) {
    d.in_block = true;
    d.block_lost = false;
    d.block_failed = false;
    d.block_unknown = false;
    d.block_synced = d.hpack.synchronised();
    d.block_end_stream = end_stream;
    d.block_authority = false;
    d.block_kind = kind;
    d.block_stream = d.fh.stream_id;
    d.block_status = 0;
    d.block_decoded_bytes = 0;
  }

  void feedBlock(Direction& d, std::span<const uint8_t> fragment) {
    if (d.block_lost || d.block_failed) return;
    cur_dir_ = &d;
    cur_stream_ = d.block_kind == BlockKind::kIgnore ? nullptr : lookup(d.block_stream);
    if (!d.hpack.feed(fragment, *this)) flagHpackError(d);
    cur_dir_ = nullptr;
    cur_stream_ = nullptr;
    trackHpack(d);
  }

  void endBlock(Direction& d, uint64_t ts) {
    d.in_block = false;
    if (!d.block_lost && !d.block_failed) {
      cur_dir_ = &d;
      cur_stream_ = d.block_kind == BlockKind::kIgnore ? nullptr : lookup(d.block_stream);
      if (!d.hpack.endBlock(*this)) flagHpackError(d);
      cur_dir_ = nullptr;
      cur_stream_ = nullptr;
    } else if (!d.block_lost) {
      d.hpack.endBlock(*this);  // closes the failed block; nothing is decoded
    }
    trackHpack(d);
    if (d.block_kind == BlockKind::kIgnore) return;
    int32_t i = find(d.block_stream);
    if (i < 0) return;
    Stream& s = streams_[i];
    HttpRecord& r = s.rec;
    // Which field an unknown one was is unknown. While entries from before
    // remain, it may be any field the record keeps; once they are gone, only
    // names the encoder keeps copying from them stay unknown (custom ones
    // with nghttp2 or Go, which take static-table names from the static
    // table), so then only a missing :method, :path or :status flags.
    const bool may_hide_field = d.block_unknown && !d.block_synced;
    switch (d.block_kind) {
      case BlockKind::kRequest:
        s.request_seen = true;
        // Only a request that decoded closes the ids below it: a HEADERS
        // frame read at a false boundary after a resync (its block fails or
        // names nothing) must not shut out the real streams that follow.
        if (!d.block_lost && !d.block_failed && (!r.method.empty() || !r.path.empty())) {
          if (first_opened_ == 0) first_opened_ = d.block_stream;
          highest_opened_ = std::max(highest_opened_, d.block_stream);
        }
        if (may_hide_field || (d.block_unknown && (r.method.empty() || r.path.empty()))) {
          r.flags |= kFlagHpackUnknown;
        }
        if (startsWith(r.content_type, "application/grpc") && startsWith(r.path, "/")) {
          std::string_view p(r.path);
          p.remove_prefix(1);
          size_t slash = p.find('/');
          if (slash != std::string_view::npos) {
            r.rpc_service.assign(p.substr(0, slash));
            r.rpc_method.assign(p.substr(slash + 1));
          }
        }
        break;
      case BlockKind::kResponse:
        if (may_hide_field) r.flags |= kFlagHpackUnknown;
        if (d.block_status >= 100 && d.block_status < 200) {
          r.interim_status = d.block_status;
        } else if (d.block_status == 0 && d.block_unknown) {
          // :status may have been one of the unknown fields: interim or
          // final is unknown too, so a later block may still carry the
          // final status.
          r.flags |= kFlagHpackUnknown;
        } else {
          if (d.block_status > 0) r.status = d.block_status;
          // A block without a usable :status (decode failure, lost bytes)
          // is taken as the final one: interim responses are rare.
          s.final_response = true;
        }
        break;
      case BlockKind::kResponseTrailers:
        if (may_hide_field) r.flags |= kFlagHpackUnknown;  // grpc-status, perhaps
        break;
      default:
        break;
    }
    if (d.block_end_stream) endSide(i, d.role, ts);
  }

  // The block cannot be finished (bytes lost, or a frame interrupted it):
  // forget it and the dynamic table.
  void abandonBlock(Direction& d, uint32_t flag, uint64_t ts) {
    if (!d.in_block) return;
    d.in_block = false;
    loseTable(d);
    if (d.block_kind == BlockKind::kIgnore) return;
    int32_t i = find(d.block_stream);
    if (i < 0) return;
    streams_[i].rec.flags |= flag;
    if (flag == kFlagHpackError) ++stats_.hpack_errors;
    if (d.block_end_stream) endSide(i, d.role, ts);
  }

  // ---- frames ------------------------------------------------------------

  // A frame of d names stream i, which it has just opened or not.
  void noteStream(Direction& d, int32_t i, bool opened) {
    Stream& s = streams_[i];
    if (opened) {
      s.opener = d.role;
      if (d.tentative()) {
        s.tentative = bit(d.role);
        s.after_scan = true;
      }
      return;
    }
    // Two directions naming the same new stream, which misaligned bytes
    // would hardly do: a stream the other direction opened after this one
    // lost alignment confirms this one's boundary, and if the other opened
    // it after a scan, the other's boundary too.
    Direction& peer = dir(other(d.role));
    const bool agree = s.opener == peer.role && s.seq >= d.lost_at_seq;
    if (agree) {
      if (d.tentative()) d.agreed = true;
      if (s.tentative & bit(peer.role)) peer.agreed = true;
    }
    // A stream from before: this frame may add misaligned bytes to it.
    if (d.tentative() && !agree && !s.after_scan) s.rec.flags |= kFlagGap;
  }

  // HEADERS: which exchange (if any) this block belongs to.
  BlockKind headersKind(Direction& d) {
    const uint32_t sid = d.fh.stream_id;
    if ((sid & 1) == 0) return BlockKind::kIgnore;  // pushed response
    int32_t i = find(sid);
    if (d.role == Role::kClient) {
      const bool opened = i < 0;
      if (opened) {
        if (!mayOpen(sid)) return BlockKind::kIgnore;
        i = create(sid);
      }
      noteStream(d, i, opened);
      Stream& s = streams_[i];
      s.client_headers = true;
      s.rec.request_header_bytes += d.fh.length;
      if (s.request_seen) return BlockKind::kRequestTrailers;
      if (s.rec.request_start_ns == 0) s.rec.request_start_ns = d.frame_ts;
      return BlockKind::kRequest;
    }
    const bool opened = i < 0;
    if (opened) {
      if (!mayOpen(sid)) return BlockKind::kIgnore;
      i = create(sid);
    }
    noteStream(d, i, opened);
    Stream& s = streams_[i];
    s.server_headers = true;
    s.rec.response_header_bytes += d.fh.length;
    if (s.final_response) return BlockKind::kResponseTrailers;
    if (s.rec.response_start_ns == 0) s.rec.response_start_ns = d.frame_ts;
    return BlockKind::kResponse;
  }

  int32_t dataStream(Direction& d) {
    const uint32_t sid = d.fh.stream_id;
    int32_t i = find(sid);
    const bool opened = i < 0;
    if (opened) {
      if (!mayOpen(sid)) return -1;
      i = create(sid);
      // Body bytes of an exchange whose headers we did not see.
      if (d.role == Role::kServer && streams_[i].rec.response_start_ns == 0) {
        streams_[i].rec.response_start_ns = d.frame_ts;
      }
    }
    noteStream(d, i, opened);
    return i;
  }

  void startFrame(Direction& d, uint64_t ts) {
    d.fh = h2::decodeFrameHeader(d.hdr.data());
    ++stats_.frames;
    if (d.fh.length > limits_.max_frame_bytes) {
      loseSync(d, ts);
      return;
    }
    if (d.tentative() && !fitsConnection(d, d.fh, nullptr)) {
      // The boundary the scan found was wrong after all.
      ++stats_.resyncs_refuted;
      loseSync(d, ts);
      return;
    }
    const FrameHeader& fh = d.fh;
    d.remaining = fh.length;
    d.need_pad_length = false;
    d.prefix_left = 0;
    d.payload_lost = false;
    d.block_content = false;
    d.data_slot = -1;
    d.fixed_have = 0;
    d.frame_table_size = -1;
    // A header block must continue with CONTINUATION frames on its stream.
    if (d.in_block && !(fh.type == h2::kContinuation && fh.stream_id == d.block_stream)) {
      abandonBlock(d, kFlagHpackError, ts);
    }
    switch (fh.type) {
      case h2::kData:
        d.need_pad_length = fh.flags & h2::kPadded;
        d.data_slot = dataStream(d);
        break;
      case h2::kHeaders:
        d.need_pad_length = fh.flags & h2::kPadded;
        d.prefix_left = (fh.flags & h2::kPriorityFlag) ? 5 : 0;
        beginBlock(d, headersKind(d), fh.flags & h2::kEndStream);
        d.block_content = true;
        break;
      case h2::kPushPromise:
        d.need_pad_length = fh.flags & h2::kPadded;
        d.prefix_left = 4;
        beginBlock(d, BlockKind::kIgnore, false);
        d.block_content = true;
        break;
      case h2::kContinuation:
        if (d.in_block) {
          d.block_content = true;
          if (Stream* s = lookup(d.block_stream); s && d.block_kind != BlockKind::kIgnore) {
            (d.role == Role::kClient ? s->rec.request_header_bytes
                                     : s->rec.response_header_bytes) += fh.length;
          }
        }
        break;
      default:
        break;
    }
    const uint32_t overhead = (d.need_pad_length ? 1 : 0) + d.prefix_left;
    if (overhead > fh.length) {
      // Malformed: too short for its own fields. Skip the payload.
      d.need_pad_length = false;
      d.prefix_left = 0;
      d.content_left = 0;
    } else {
      d.content_left = fh.length - overhead;
    }
    d.state = DirState::kPayload;
    if (d.remaining == 0) endFrame(d, ts);
  }

  void settingsEntry(Direction& d) {
    const uint8_t* p = d.fixed.data();
    const uint16_t id = static_cast<uint16_t>((p[0] << 8) | p[1]);
    const uint32_t value =
        (uint32_t{p[2]} << 24) | (uint32_t{p[3]} << 16) | (uint32_t{p[4]} << 8) | p[5];
    // d.role announced it: it limits frames sent to d.role.
    Direction& to = dir(other(d.role));
    if (id == h2::kSettingsHeaderTableSize) {
      d.frame_table_size = value;
      if (value > limits_.max_hpack_table_bytes) ++stats_.hpack_table_size_cut;
      // Raising the limit never forces an update, so apply it now (the
      // encoder may use it before we see its ACK); lowering waits for the ACK.
      if (value > to.hpack.settingsTableSize()) to.hpack.setSettingsTableSize(value);
    } else if (id == h2::kSettingsMaxFrameSize) {
      to.max_frame_size = std::clamp(value, h2::kDefaultMaxFrameSize, h2::kLargestFrameSize);
    }
  }

  void content(Direction& d, const uint8_t* p, size_t n) {
    switch (d.fh.type) {
      case h2::kData:
        if (Stream* s = slot(d.data_slot, d.fh.stream_id)) {
          const bool client = d.role == Role::kClient;
          (client ? s->rec.request_body_bytes : s->rec.response_body_bytes) += n;
          // A side whose HEADERS were not seen (lost with bytes before a
          // resync, or sent before the capture began) may have sent body
          // bytes before them too: the count is only what came after.
          const bool headers_seen = client ? s->client_headers : s->server_headers;
          if (p == nullptr || !headers_seen) s->rec.flags |= kFlagGap;
        }
        return;
      case h2::kHeaders:
      case h2::kPushPromise:
      case h2::kContinuation:
        if (!d.block_content || !d.in_block) return;
        if (p == nullptr) {
          if (!d.block_lost) {
            d.block_lost = true;
            loseTable(d);
            if (d.block_kind != BlockKind::kIgnore) {
              if (Stream* s = lookup(d.block_stream)) s->rec.flags |= kFlagGap;
            }
          }
          return;
        }
        feedBlock(d, {p, n});
        return;
      case h2::kSettings:
        if (p == nullptr || (d.fh.flags & h2::kAck)) return;
        for (size_t k = 0; k < n; ++k) {
          d.fixed[d.fixed_have++] = p[k];
          if (d.fixed_have == 6) {
            settingsEntry(d);
            d.fixed_have = 0;
          }
        }
        return;
      case h2::kRstStream:
      case h2::kGoaway:
        if (p == nullptr) return;
        for (size_t k = 0; k < n && d.fixed_have < d.fixed.size(); ++k) {
          d.fixed[d.fixed_have++] = p[k];
        }
        return;
      default:
        return;
    }
  }

  void settingsDone(Direction& d) {
    Direction& to = dir(other(d.role));
    if (d.fh.flags & h2::kAck) {
      // d.role acknowledges the peer's oldest SETTINGS: its encoder now uses
      // that table size, so the inflater of d's blocks takes it.
      if (d.pending_count == 0) return;
      int64_t v = d.pending_sizes[d.pending_head];
      d.pending_head = (d.pending_head + 1) % kPendingSettings;
      --d.pending_count;
      if (v >= 0) d.hpack.setSettingsTableSize(static_cast<uint32_t>(v));
      return;
    }
    if (to.pending_count == kPendingSettings) {
      // Too many unacknowledged: apply the oldest now.
      int64_t v = to.pending_sizes[to.pending_head];
      to.pending_head = (to.pending_head + 1) % kPendingSettings;
      --to.pending_count;
      if (v >= 0) to.hpack.setSettingsTableSize(static_cast<uint32_t>(v));
    }
    to.pending_sizes[(to.pending_head + to.pending_count) % kPendingSettings] = d.frame_table_size;
    ++to.pending_count;
  }

  void endFrame(Direction& d, uint64_t ts) {
    d.state = DirState::kFrameHeader;
    const FrameHeader& fh = d.fh;
    // Until the boundary is confirmed, frames that would end exchanges of
    // their own (RST_STREAM, GOAWAY) may be misaligned bytes: ignored.
    const bool tentative = d.tentative();
    switch (fh.type) {
      case h2::kData:
        if (fh.flags & h2::kEndStream) {
          if (slot(d.data_slot, fh.stream_id)) endSide(d.data_slot, d.role, ts);
        }
        break;
      case h2::kHeaders:
      case h2::kPushPromise:
      case h2::kContinuation:
        if (d.block_content && d.in_block && (fh.flags & h2::kEndHeaders)) endBlock(d, ts);
        break;
      case h2::kRstStream:
        if (tentative) break;
        if (int32_t i = find(fh.stream_id); i >= 0) emit(i, kFlagReset);
        break;
      case h2::kSettings:
        if (!d.payload_lost) settingsDone(d);
        break;
      case h2::kGoaway:
        if (!tentative && !d.payload_lost && d.fixed_have >= 4 && d.role == Role::kServer) {
          const uint32_t last = ((uint32_t{d.fixed[0]} & 0x7f) << 24) |
                                (uint32_t{d.fixed[1]} << 16) | (uint32_t{d.fixed[2]} << 8) |
                                d.fixed[3];
          // The server never processed client streams above `last`.
          // Streams held back for an unconfirmed boundary wait for it.
          emitAll(0, [last](uint32_t sid, const Stream& s) {
            return (sid & 1) && sid > last && !s.tentative;
          });
        }
        break;
      default:
        break;
    }
    // After the frame's own effects, so that a held-back stream is emitted
    // with what this frame brought (a request block, END_STREAM).
    if (d.tentative_frames > 0) {
      --d.tentative_frames;
      if (!d.tentative()) confirm(d);
    }
    for (Direction& x : dirs_) {
      if (!x.agreed) continue;
      x.agreed = false;
      x.tentative_frames = 0;
      x.tentative_bytes = 0;
      confirm(x);
    }
  }

  // Consumes up to `n` payload bytes; `p` null means they were lost.
  size_t payload(Direction& d, const uint8_t* p, size_t n, uint64_t ts) {
    size_t pos = 0;
    if (p == nullptr && n > 0) d.payload_lost = true;
    while (pos < n && d.remaining > 0) {
      const size_t avail = n - pos;
      if (d.need_pad_length) {
        // A lost pad length is taken as 0: the padding then counts as content.
        const uint8_t pad = p ? p[pos] : 0;
        ++pos;
        --d.remaining;
        d.need_pad_length = false;
        d.content_left = pad <= d.remaining - d.prefix_left ? d.remaining - d.prefix_left - pad : 0;
        continue;
      }
      if (d.prefix_left > 0) {
        const size_t k = std::min<size_t>(d.prefix_left, avail);
        pos += k;
        d.remaining -= static_cast<uint32_t>(k);
        d.prefix_left -= static_cast<uint8_t>(k);
        continue;
      }
      if (d.content_left > 0) {
        const size_t k = std::min<size_t>(d.content_left, avail);
        content(d, p ? p + pos : nullptr, k);
        pos += k;
        d.remaining -= static_cast<uint32_t>(k);
        d.content_left -= static_cast<uint32_t>(k);
        continue;
      }
      const size_t k = std::min<size_t>(d.remaining, avail);  // padding
      pos += k;
      d.remaining -= static_cast<uint32_t>(k);
    }
    if (d.remaining == 0) endFrame(d, ts);
    return pos;
  }

  // In-order bytes while aligned; returns how many were consumed (all of
  // them unless alignment was lost).
  size_t syncStep(Direction& d, std::span<const uint8_t> in, uint64_t ts) {
    size_t pos = 0;
    while (pos < in.size() && d.state != DirState::kResync) {
      switch (d.state) {
        case DirState::kPreface:
          while (pos < in.size() && d.preface_pos < kPrefaceBytes) {
            if (in[pos] != static_cast<uint8_t>(kClientPreface[d.preface_pos])) {
              ++stats_.preface_mismatches;
              loseSync(d, ts);
              return pos;
            }
            ++pos;
            ++d.preface_pos;
          }
          if (d.preface_pos == kPrefaceBytes) d.state = DirState::kFrameHeader;
          break;
        case DirState::kFrameHeader: {
          if (d.hdr_have == 0) d.frame_ts = ts;
          const size_t k = std::min<size_t>(kFrameHeaderBytes - d.hdr_have, in.size() - pos);
          std::memcpy(d.hdr.data() + d.hdr_have, in.data() + pos, k);
          d.hdr_have += static_cast<uint8_t>(k);
          pos += k;
          if (d.hdr_have == kFrameHeaderBytes) {
            d.hdr_have = 0;
            startFrame(d, ts);
          }
          break;
        }
        case DirState::kPayload:
          pos += payload(d, in.data() + pos, in.size() - pos, ts);
          break;
        case DirState::kResync:
          break;
      }
    }
    if (d.tentative_bytes > 0 && d.state != DirState::kResync) {
      d.tentative_bytes -= std::min<uint64_t>(d.tentative_bytes, pos);
      if (!d.tentative()) confirm(d);
    }
    return pos;
  }

  // ---- desynchronisation and resync --------------------------------------

  // The highest stream id the client can have opened: every stream takes a
  // HEADERS frame of at least kMinHeadersFrameBytes, and the ones not seen
  // hide in the client's unseen bytes (or in its scan buffer). Unbounded when
  // the connection was joined mid-way and no request has been seen.
  uint64_t highestPossibleStream() const {
    const Direction& c = dirs_[idx(Role::kClient)];
    if (midstream_ && highest_opened_ == 0) return UINT32_MAX;
    const uint64_t unseen = c.unseen_bytes + (c.tail.size() - c.tail_off);
    return highest_opened_ + 2 * (unseen / kMinHeadersFrameBytes + 1);
  }

  // Whether `h` could be the next frame of d given what is known of the
  // connection: stricter than h2::plausibleFrameHeader (which knows nothing of
  // it), because it judges frame headers found by scanning, where any bytes
  // of a DATA payload may pose as one. `payload` is the frame's payload when
  // at hand, else null. Rejecting a real frame only delays the resync.
  bool fitsConnection(const Direction& d, const FrameHeader& h, const uint8_t* payload) const {
    const h2::Sender sender = d.role == Role::kClient ? h2::Sender::kClient : h2::Sender::kServer;
    if (!h2::plausibleFrameHeader(h, sender, std::min(d.max_frame_size, limits_.max_frame_bytes))) {
      return false;
    }
    const uint32_t padded = (h.flags & h2::kPadded) ? 1 : 0;
    switch (h.type) {
      case h2::kContinuation:
        return false;  // its block began before the loss: nothing to follow
      case h2::kData:
        // Peers don't send empty DATA except to end a stream; zero bytes
        // are what binary payloads are fullest of.
        if (h.length == 0 && !(h.flags & h2::kEndStream)) return false;
        break;
      case h2::kHeaders:
        // A header block holds at least one field.
        if (h.length < padded + ((h.flags & h2::kPriorityFlag) ? 5 : 0) + 1) return false;
        break;
      case h2::kWindowUpdate:
        if (payload != nullptr &&
            ((payload[0] & 0x7f) | payload[1] | payload[2] | payload[3]) == 0) {
          return false;  // a zero increment is a protocol error
        }
        break;
      default:
        break;
    }
    if (h.stream_id == 0) return true;         // the types that need stream 0 were checked
    if ((h.stream_id & 1) == 0) return false;  // pushed streams are not followed
    if (const int32_t i = find(h.stream_id); i >= 0) {
      const Stream& s = streams_[i];
      const bool ended = d.role == Role::kClient ? s.client_ended : s.server_ended;
      return !(ended && (h.type == h2::kData || h.type == h2::kHeaders));
    }
    if ((h.type == h2::kData || h.type == h2::kHeaders) && !mayOpen(h.stream_id)) return false;
    return h.stream_id <= highestPossibleStream();
  }

  enum class Chain : uint8_t { kBroken, kConfirmed, kNeedMore };

  // Follows frames from `at` in the scan buffer `b` (`size` bytes, `all_in`:
  // nothing received is left out of it), each header fitting the connection:
  // confirmed once Http2Limits::resync_confirm_frames frames chain exactly
  // and one more fitting header follows them, or once frames end exactly
  // where the bytes end.
  Chain followChain(const Direction& d, const uint8_t* b, size_t size, size_t at,
                    bool all_in) const {
    size_t pos = at;
    uint32_t frames = 0;
    for (;;) {
      if (pos + kFrameHeaderBytes > size) {
        // A peer that sends one frame and waits (a request, then its
        // response) leaves nothing to follow: a chain that ends where its
        // bytes end is taken too, while tentative a gap right after (a
        // payload window's cut, not the sender's) refutes it.
        if (pos == size && all_in && frames > 0) return Chain::kConfirmed;
        return Chain::kNeedMore;
      }
      const FrameHeader h = h2::decodeFrameHeader(b + pos);
      const size_t end = pos + kFrameHeaderBytes + h.length;
      if (!fitsConnection(d, h, end <= size ? b + pos + kFrameHeaderBytes : nullptr)) {
        return Chain::kBroken;
      }
      if (frames >= limits_.resync_confirm_frames) return Chain::kConfirmed;
      if (end > size) return Chain::kNeedMore;
      ++frames;
      pos = end;
    }
  }

  // A misaligned chain read inside a DATA payload ends where that frame
  // ends, at most max_frame_size bytes on: a chain followed over more bytes
  // than that without a gap has crossed a real frame header and still fits.
  void startTentative(Direction& d) {
    d.tentative_frames = std::max<uint32_t>(limits_.resync_tentative_frames, 1);
    d.tentative_bytes =
        uint64_t{std::min(d.max_frame_size, limits_.max_frame_bytes)} + kFrameHeaderBytes + 1;
    d.gap_while_tentative = false;
  }

  // d followed enough frames after its scan: the boundary stands.
  void confirm(Direction& d) {
    const uint8_t mine = bit(d.role);
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == 0 || !(streams_[i].tentative & mine)) continue;
      streams_[i].tentative &= static_cast<uint8_t>(~mine);
      maybeEmit(static_cast<int32_t>(i));
    }
  }

  // d lost alignment before its boundary was confirmed: the streams its
  // frames opened since may be made of misaligned bytes. They go without a
  // record (and without a place in recently_closed_, so that a real stream
  // of that id can still open).
  void dropUnconfirmed(Direction& d) {
    const uint8_t mine = bit(d.role);
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == 0 || !(streams_[i].tentative & mine)) continue;
      ++stats_.unconfirmed_streams_dropped;
      ids_[i] = 0;
      streams_[i].rec.clear();
      free_.push_back(static_cast<uint32_t>(i));
    }
  }

  // The connection ends before a scan was confirmed: the streams it opened
  // are kept (flagged kFlagGap by emit) only if its frames were followed
  // without a gap to exactly where the direction's bytes end, as a real
  // frame sequence does.
  void endUnconfirmed() {
    for (Direction& d : dirs_) {
      if (!d.tentative()) continue;
      if (d.gap_while_tentative || d.state != DirState::kFrameHeader || d.hdr_have != 0) {
        dropUnconfirmed(d);
      }
    }
  }

  void loseSync(Direction& d, uint64_t ts) {
    ++stats_.desyncs;
    if (d.in_block) {
      abandonBlock(d, kFlagGap, ts);  // loses the table too
    } else {
      loseTable(d);
    }
    dropUnconfirmed(d);
    d.tentative_frames = 0;
    d.tentative_bytes = 0;
    d.agreed = false;
    d.lost_at_seq = next_seq_;
    d.pending_count = 0;
    d.hdr_have = 0;
    const bool client = d.role == Role::kClient;
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (ids_[i] == 0) continue;
      Stream& s = streams_[i];
      if (!(client ? s.client_ended : s.server_ended)) s.rec.flags |= kFlagGap;
    }
    // Bytes of the scan buffer not yet replayed (when alignment is lost
    // while replaying it) are scanned again from here.
    d.state = DirState::kResync;
  }

  // Takes bytes into the scan buffer and looks for a boundary; returns how
  // many bytes of `in` were taken.
  size_t resyncStep(Direction& d, std::span<const uint8_t> in) {
    if (d.tail_off > 0) {
      d.tail.erase(d.tail.begin(), d.tail.begin() + static_cast<ptrdiff_t>(d.tail_off));
      d.tail_off = 0;
    }
    const size_t cap = limits_.max_resync_bytes;
    const size_t take = std::min(in.size(), cap - std::min(cap, d.tail.size()));
    d.tail.insert(d.tail.end(), in.begin(), in.begin() + static_cast<ptrdiff_t>(take));
    const bool all_in = take == in.size();
    const uint8_t* b = d.tail.data();
    const size_t size = d.tail.size();
    size_t i = 0;
    for (; i + kFrameHeaderBytes <= size; ++i) {
      const Chain chain = followChain(d, b, size, i, all_in);
      if (chain == Chain::kBroken) continue;
      if (chain == Chain::kConfirmed) {
        stats_.resync_skipped_bytes += i;
        d.unseen_bytes += i;
        ++stats_.resyncs;
        d.tail_off = i;
        d.state = DirState::kFrameHeader;
        d.hdr_have = 0;
        startTentative(d);
        return take;
      }
      // Wait for more bytes to follow the chain at i, unless the buffer is
      // full with it at its start: a chain longer than the buffer is never
      // taken on trust.
      if (i > 0 || size < cap) break;
    }
    // Bytes before i cannot start a frame.
    const size_t drop = std::min(i, size);
    stats_.resync_skipped_bytes += drop;
    d.unseen_bytes += drop;
    d.tail_off = drop;
    return take;
  }

  void feed(Direction& d, std::span<const uint8_t> in, uint64_t ts) {
    for (;;) {
      if (d.state == DirState::kResync) {
        const size_t before = in.size();
        in = in.subspan(resyncStep(d, in));
        if (d.state == DirState::kResync) {
          if (in.empty()) return;
          if (in.size() == before && d.tail_off == 0) return;  // no progress possible
          continue;
        }
      }
      if (d.tail_off < d.tail.size()) {
        std::span<const uint8_t> t(d.tail.data() + d.tail_off, d.tail.size() - d.tail_off);
        d.tail_off += syncStep(d, t, ts);
        if (d.tail_off >= d.tail.size()) {
          d.tail.clear();
          d.tail_off = 0;
        }
        continue;
      }
      if (in.empty()) return;
      in = in.subspan(syncStep(d, in, ts));
    }
  }

  // The rest of a DATA frame (content and padding): a gap there keeps the
  // framing and only counts body bytes.
  uint64_t skippable(Role role) {
    const Direction& d = dir(role);
    if (d.state != DirState::kPayload || d.fh.type != h2::kData || d.need_pad_length) return 0;
    return d.remaining;
  }

  int64_t toNextFrame(Role role) {
    const Direction& d = dir(role);
    switch (d.state) {
      case DirState::kPreface:
        return static_cast<int64_t>(kPrefaceBytes - d.preface_pos);
      case DirState::kFrameHeader:
        return d.hdr_have == 0 ? 0 : -1;
      case DirState::kPayload:
        return d.remaining;
      case DirState::kResync:
        break;
    }
    return -1;
  }

  void gap(Direction& d, uint64_t length, uint64_t ts) {
    // The real frame header that would refute a misaligned chain may be
    // among the lost bytes: count the bytes in a row again.
    if (d.tentative()) d.gap_while_tentative = true;
    if (d.tentative_bytes > 0) {
      d.tentative_bytes =
          uint64_t{std::min(d.max_frame_size, limits_.max_frame_bytes)} + kFrameHeaderBytes + 1;
    }
    switch (d.state) {
      case DirState::kResync:
        // The kept bytes are no longer contiguous with what follows.
        stats_.resync_skipped_bytes += d.tail.size() - d.tail_off;
        d.unseen_bytes += d.tail.size() - d.tail_off + length;
        d.tail.clear();
        d.tail_off = 0;
        return;
      case DirState::kPreface: {
        const uint64_t rest = kPrefaceBytes - d.preface_pos;
        if (length <= rest) {  // preface bytes are known: skip them
          d.preface_pos += static_cast<uint8_t>(length);
          if (d.preface_pos == kPrefaceBytes) d.state = DirState::kFrameHeader;
          return;
        }
        d.unseen_bytes += length - rest;
        loseSync(d, ts);
        return;
      }
      case DirState::kFrameHeader:
        d.unseen_bytes += length + d.hdr_have;
        loseSync(d, ts);
        return;
      case DirState::kPayload: {
        const uint64_t k = std::min<uint64_t>(length, d.remaining);
        payload(d, nullptr, static_cast<size_t>(k), ts);
        if (length > k) {
          d.unseen_bytes += length - k;
          loseSync(d, ts);
        }
        return;
      }
    }
  }
};

// ---- public -----------------------------------------------------------------

bool looksLikeHttp2Frames(std::span<const uint8_t> bytes) {
  if (bytes.size() < kFrameHeaderBytes) return false;
  const FrameHeader first = h2::decodeFrameHeader(bytes.data());
  if (!h2::plausibleFrameHeader(first, h2::Sender::kUnknown, h2::kDefaultMaxFrameSize)) {
    return false;
  }
  const size_t next = kFrameHeaderBytes + first.length;
  if (next + kFrameHeaderBytes <= bytes.size()) {
    return h2::plausibleFrameHeader(h2::decodeFrameHeader(bytes.data() + next),
                                    h2::Sender::kUnknown, h2::kDefaultMaxFrameSize);
  }
  return true;
}

Http2Parser::Http2Parser(ExchangeSink& sink, const Http2Limits& limits,
                         const RedactionPolicy* redaction, const ConnectionInfo* conn)
    : impl_(new Impl(sink, limits, redaction ? *redaction : defaultRedactionPolicy(), conn)) {}

Http2Parser::~Http2Parser() { delete impl_; }

ParseResult Http2Parser::onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) {
  impl_->dir(role).bytes += bytes.size();
  impl_->feed(impl_->dir(role), bytes, ts_ns);
  return {ParseOutcome::kContinue, bytes.size()};
}

void Http2Parser::onGap(Role role, uint64_t length, uint64_t ts_ns) {
  if (length == 0) return;
  ++impl_->stats_.gaps;
  impl_->dir(role).bytes += length;
  impl_->gap(impl_->dir(role), length, ts_ns);
}

void Http2Parser::onEnd(Role role, bool reset, uint64_t ts_ns) {
  (void)role;
  (void)ts_ns;
  if (!reset) return;  // FIN: streams still waiting are emitted by finish()
  impl_->endUnconfirmed();
  impl_->emitAll(kFlagReset, [](uint32_t, const Stream&) { return true; });
}

void Http2Parser::finish(uint64_t ts_ns) {
  (void)ts_ns;
  impl_->endUnconfirmed();
  impl_->emitAll(0, [](uint32_t, const Stream&) { return true; });
}

uint64_t Http2Parser::skippableBytes(Role role) const { return impl_->skippable(role); }

int64_t Http2Parser::bytesToNextFrame(Role role) const { return impl_->toNextFrame(role); }

void Http2Parser::startMidstream() {
  impl_->midstream_ = true;
  for (Direction& d : impl_->dirs_) {
    d.state = DirState::kResync;
    d.tail.clear();
    d.tail_off = 0;
    impl_->loseTable(d);
  }
}

void Http2Parser::adoptUpgradedRequest(const HttpRecord& request) {
  Impl& m = *impl_;
  int32_t i = m.find(1);
  if (i < 0) i = m.create(1);
  Stream& s = m.streams_[i];
  s.rec = request;
  s.rec.stream_id = 1;
  s.rec.version = "2";
  // The 101 answered the HTTP/1.1 request; the final status comes on stream 1.
  if (s.rec.status == 101) s.rec.interim_status = 101;
  if (s.rec.status < 200) s.rec.status = 0;
  s.rec.response_end_ns = 0;
  s.rec.response_body_bytes = 0;
  s.rec.flags &= ~(kFlagNoResponse | kFlagUpgrade);
  s.request_seen = true;
  s.client_headers = true;  // the request's body, if any, came before the switch
  s.client_ended = true;
  if (m.first_opened_ == 0) m.first_opened_ = 1;
  m.highest_opened_ = std::max<uint32_t>(m.highest_opened_, 1);
}

const Http2Stats& Http2Parser::stats() const { return impl_->stats_; }

const Http2HpackSync& Http2Parser::hpackSync(Role role) const {
  return impl_->stats_.hpack[idx(role)];
}

void Http2Parser::visitState(bool interim, FieldVisitor& v) const {
  // Only in the final record, and only where a direction's dynamic table was
  // unknown at some point (joined mid-way, or bytes lost in a header block).
  const auto& hpack = impl_->stats_.hpack;
  if (interim || (!hpack[0].losses && !hpack[1].losses)) return;
  static constexpr const char* kNames[2][5] = {
      {"l7tap.http2.hpack.client.losses", "l7tap.http2.hpack.client.resumes",
       "l7tap.http2.hpack.client.table_at_end", "l7tap.http2.hpack.client.resumed_after_exchanges",
       "l7tap.http2.hpack.client.resumed_after_bytes"},
      {"l7tap.http2.hpack.server.losses", "l7tap.http2.hpack.server.resumes",
       "l7tap.http2.hpack.server.table_at_end", "l7tap.http2.hpack.server.resumed_after_exchanges",
       "l7tap.http2.hpack.server.resumed_after_bytes"}};
  for (int i = 0; i < 2; ++i) {
    const Http2HpackSync& h = hpack[i];
    v.num(kNames[i][0], h.losses);
    v.num(kNames[i][1], h.resumes);
    v.str(kNames[i][2], h.synchronised ? "known" : "unknown");
    if (h.resumes) {
      v.num(kNames[i][3], h.resumed_after_exchanges);
      v.num(kNames[i][4], h.resumed_after_bytes);
    }
  }
}

void Http2Parser::visitCounters(CounterVisitor& v) const {
  const Http2Stats& s = impl_->stats_;
  v.counter("http2.frames", s.frames, false);
  v.counter("http2.gaps", s.gaps, false);
  v.counter("http2.desyncs", s.desyncs, true);
  v.counter("http2.resyncs", s.resyncs, false);
  v.counter("http2.resync_skipped_bytes", s.resync_skipped_bytes, false);
  v.counter("http2.hpack_errors", s.hpack_errors, true);
  v.counter("http2.hpack_unknown_fields", s.hpack_unknown_fields, false);
  v.counter("http2.exchanges", s.exchanges, false);
  v.counter("http2.streams_evicted", s.streams_evicted, true);
  v.counter("http2.preface_mismatches", s.preface_mismatches, false);
  v.counter("http2.hpack_table_size_cut", s.hpack_table_size_cut, true);
  v.counter("http2.empty_streams_dropped", s.empty_streams_dropped, true);
}

}  // namespace l7tap
