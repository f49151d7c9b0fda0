// HTTP/2 cleartext: frame parsing per direction, header blocks decoded with
// HpackDecoder (one per direction), exchanges keyed by stream.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "parsers/common/protocol_parser.h"
#include "parsers/common/records.h"

namespace l7tap {

/// Every bound of the HTTP/2 parser, with its default and why.
struct Http2Limits {
  /// Streams open at once per connection; the peer's usual
  /// SETTINGS_MAX_CONCURRENT_STREAMS is 100-256. When a new stream needs a
  /// slot and none is free, the oldest open stream is emitted with
  /// kFlagOverflow (counted in Http2Stats::streams_evicted).
  uint32_t max_open_streams = 256;
  /// HPACK dynamic table kept per direction, whatever SETTINGS_HEADER_TABLE_SIZE
  /// a peer announces (up to 2^32-1): a table of N bytes may hold N/32
  /// entries of 12 bytes each besides their names and values (at most
  /// twice the table size while evicted bytes wait to be reclaimed).
  /// Encoders use 4096 (the default) and rarely more; 64 KiB is also the largest table seeded after
  /// a loss. An encoder that uses more gets decode errors (kFlagHpackError),
  /// never wrong fields; counted in Http2Stats::hpack_table_size_cut.
  uint32_t max_hpack_table_bytes = 64 * 1024;
  /// Decoded header bytes kept per header block before fields are dropped.
  uint32_t max_header_list_bytes = 64 * 1024;
  /// Frames longer than this are treated as desynchronisation (the largest
  /// SETTINGS_MAX_FRAME_SIZE allowed is 2^24-1).
  uint32_t max_frame_bytes = (1u << 24) - 1;
  uint32_t max_url_bytes = 2048;
  uint32_t max_header_value_bytes = 512;
  /// Bytes kept per direction while looking for a frame boundary after a
  /// desynchronisation: two default-sized frames (16 KiB) and the next frame
  /// header (32,795 bytes) must fit, so that a stream of full-size DATA
  /// frames confirms a boundary (resync_confirm_frames). A candidate that
  /// still cannot be confirmed when this is full is dropped, never taken on
  /// its own header (peers that raised SETTINGS_MAX_FRAME_SIZE resync on
  /// their smaller frames).
  uint32_t max_resync_bytes = 48 * 1024;
  /// Complete frames a boundary found by scanning must chain through before
  /// it is taken: each frame ends exactly where the next header starts, every
  /// header fits what is known of the connection, and the last frame is
  /// followed by one more fitting header. Bytes of a DATA payload pass for
  /// one header now and then (binary files are full of small integers);
  /// passing for a chain of them is much rarer. Fitting frames that end
  /// exactly where the bytes received so far end are taken as well (a client
  /// that sends one HEADERS frame and waits leaves nothing more to follow),
  /// tentatively like any boundary found by scanning.
  uint32_t resync_confirm_frames = 2;
  /// Frames a direction must follow after a scan before the boundary counts
  /// as confirmed; it must also have followed more bytes without a gap than
  /// the largest frame allowed (a misaligned chain inside a DATA payload has
  /// then met a real frame header), unless a frame names a stream the other
  /// direction opened since the loss. Until then every frame is checked as
  /// strictly as the scan checked it (a misfit loses alignment again),
  /// streams it opens are held back and dropped without a record if
  /// alignment is lost again, and streams from before that it touches are
  /// flagged kFlagGap.
  uint32_t resync_tentative_frames = 8;
};

/// Whether one direction's HPACK dynamic table is known (see HpackDecoder).
/// A connection seen from its start is synchronised throughout; one joined
/// mid-way starts unsynchronised, as does a direction after bytes were lost
/// inside a header block (or after a decode error), until every entry from
/// before has been evicted. Meanwhile fields that reference such entries are
/// unknown (never guessed); afterwards :method, :path, :status and the other
/// static-table names decode exactly again (with encoders that take those
/// names from the static table, as nghttp2 and Go do; any other field is
/// still exact or unknown, never wrong).
struct Http2HpackSync {
  bool synchronised = true;  ///< no entry from before the last loss remains
  uint32_t losses = 0;       ///< times the table became unknown (synchronised -> not)
  uint32_t resumes = 0;      ///< times it became known again (not -> synchronised)
  /// When exact decoding last resumed (meaningful when resumes > 0): the
  /// exchanges this parser had emitted, and the bytes of this direction
  /// (received or lost) up to the end of the segment that completed the
  /// header block which evicted the last entry from before.
  uint64_t resumed_after_exchanges = 0;
  uint64_t resumed_after_bytes = 0;
};

/// What the HTTP/2 parser counted; never reset. visitCounters() lists the
/// ones the summary sums (the HPACK facts go in the connection record).
struct Http2Stats {
  uint64_t frames = 0;                ///< frame headers parsed in sync
  uint64_t gaps = 0;                  ///< onGap calls with a non-zero length
  uint64_t desyncs = 0;               ///< times a direction lost frame alignment
  uint64_t resyncs = 0;               ///< frame boundaries found again by scanning
  uint64_t resync_skipped_bytes = 0;  ///< bytes dropped while scanning
  /// Boundaries found by scanning that a later frame header contradicted
  /// before they were confirmed (see Http2Limits::resync_tentative_frames).
  uint64_t resyncs_refuted = 0;
  /// Streams opened by frames of an unconfirmed boundary and dropped
  /// without a record when it was refuted or alignment was lost again.
  uint64_t unconfirmed_streams_dropped = 0;
  uint64_t hpack_errors = 0;          ///< header blocks that failed to decode
  uint64_t hpack_unknown_fields = 0;  ///< header fields that named an unknown table entry
  uint64_t exchanges = 0;             ///< records emitted
  uint64_t streams_evicted = 0;       ///< open streams dropped for max_open_streams
  uint64_t preface_mismatches = 0;
  uint64_t hpack_table_size_cut = 0;
  uint64_t empty_streams_dropped = 0;  ///< streams with no header or body byte: no record  ///<
                                       ///< SETTINGS_HEADER_TABLE_SIZE values cut to the bound
  /// Per direction, indexed by Role: [0] the client's blocks (requests),
  /// [1] the server's (responses).
  std::array<Http2HpackSync, 2> hpack;
};

/// True when `bytes` plausibly start with HTTP/2 frame headers (used to
/// recognise a connection joined after its preface). Checks the first frame
/// header, and the second one when the whole first frame and the next header
/// are within `bytes`. The client preface itself is not a frame: false.
bool looksLikeHttp2Frames(std::span<const uint8_t> bytes);

class Http2Parser final : public ProtocolParser {
 public:
  /// `redaction` (null: redact everything) must outlive the parser.
  /// `conn`, if not null, must outlive the parser too: its L4 counters give
  /// each record its exchange_l4.
  explicit Http2Parser(ExchangeSink& sink, const Http2Limits& limits = {},
                       const RedactionPolicy* redaction = nullptr,
                       const ConnectionInfo* conn = nullptr);
  ~Http2Parser() override;
  Http2Parser(const Http2Parser&) = delete;
  Http2Parser& operator=(const Http2Parser&) = delete;

  ParseResult onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) override;
  void onGap(Role role, uint64_t length, uint64_t ts_ns) override;
  void onEnd(Role role, bool reset, uint64_t ts_ns) override;
  void finish(uint64_t ts_ns) override;
  uint64_t skippableBytes(Role role) const override;
  bool framesWalkable() const override { return true; }
  /// Bytes from `role` until the next frame header starts (0: the next byte
  /// starts one), or -1 when not known (inside a frame header, or looking
  /// for a frame boundary). Where the capture's frame walk can be armed.
  int64_t bytesToNextFrame(Role role) const override;
  /// The HPACK facts (final connection record only, when a table was lost).
  void visitState(bool interim, FieldVisitor& v) const override;
  void visitCounters(CounterVisitor& v) const override;

  /// The connection was joined after the client preface: don't expect it.
  /// Both directions then start by looking for a frame boundary. Call before
  /// any data.
  void startMidstream();
  /// h2c Upgrade: `request` (sent as HTTP/1.1) is stream 1's request; the
  /// client preface follows on the client side.
  void adoptUpgradedRequest(const HttpRecord& request);

  const Http2Stats& stats() const;
  /// HPACK table knowledge of `role`'s header blocks (stats().hpack[role]).
  const Http2HpackSync& hpackSync(Role role) const;

 private:
  struct Impl;
  Impl* impl_;  // owned; keeps the parser's state out of includers
};

}  // namespace l7tap
