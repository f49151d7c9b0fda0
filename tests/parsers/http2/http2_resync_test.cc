// Http2Parser resync after gaps that cross frame headers: bytes of a DATA
// payload that pass for frame headers must never become records (streams that
// never existed, sizes or fields read at the wrong position).
#include <gtest/gtest.h>

#include <random>

#include "parsers/http2/http2_parser.h"
#include "tests/parsers/http2/h2_test_util.h"

namespace l7tap::h2test {
namespace {

constexpr Role C = Role::kClient;
constexpr Role S = Role::kServer;

Bytes post(Deflater& d) { return d.encode({{":method", "POST"}, {":path", "/upload"}}); }
Bytes created(Deflater& d) { return d.encode({{":status", "201"}}); }

// Frames that a DATA payload carries as its content: what the scan sees
// after a gap in the middle of it (an uploaded capture, a tunnel, or just
// bytes that happen to look so).
Bytes fakeFrames() {
  Deflater fd;
  return cat(
      {headers(3, fd.encode({{":method", "GET"}, {":path", "/fake"}}), kEndHeaders | kEndStream),
       data(5, 10, kEndStream), ping()});
}

// A DATA frame of stream 1 whose payload holds fakeFrames() at `at`.
Bytes dataWithFakes(size_t n, size_t at, uint8_t flags = 0) {
  Bytes payload(n, 'x');
  const Bytes fake = fakeFrames();
  std::copy(fake.begin(), fake.end(), payload.begin() + static_cast<ptrdiff_t>(at));
  return frame(kData, flags, 1, payload);
}

void expectOnlyTheUpload(const std::vector<HttpRecord>& rs, uint64_t max_body) {
  ASSERT_EQ(rs.size(), 1u) << testing::PrintToString(describeAll(rs));
  EXPECT_EQ(rs[0].stream_id, 1u);
  EXPECT_EQ(rs[0].method, "POST");
  EXPECT_EQ(rs[0].path, "/upload");
  EXPECT_EQ(rs[0].status, 201);
  EXPECT_LE(rs[0].request_body_bytes, max_body);
  EXPECT_EQ(rs[0].flags & kFlagGap, kFlagGap);
}

// The defect seen with plain payload windows on 64 KB skbs: a gap runs past
// a DATA frame's end into the next DATA frame's payload, where bytes look
// like HEADERS + DATA + PING. They chain, so the old scan took them and
// reported "GET /fake" on stream 3 (flagged no_response only) and a body on
// stream 5 that never existed. The window's cut then comes in the middle of
// the fake frames' successors: alignment is lost again before the boundary
// is confirmed, so what it opened goes.
TEST(Http2Resync, FakeFramesInDataPayloadAfterAGapOpenNoStream) {
  Deflater cd, sd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(C, cat({preface(), settings({}), headers(1, post(cd), kEndHeaders)}), 1);
  const Bytes d1 = data(1, 2000);
  const Bytes d2 = dataWithFakes(2000, 300);
  const Bytes d3 = data(1, 500, kEndStream);
  p.onData(C, std::span<const uint8_t>(d1).first(1000), 2);
  p.onGap(C, (d1.size() - 1000) + 200, 3);  // into d2's payload, before the fakes
  p.onData(C, std::span<const uint8_t>(d2).subspan(200, 400), 4);
  p.onGap(C, d2.size() - 600, 5);
  p.onData(C, d3, 6);
  p.onData(S, cat({settings({}), headers(1, created(sd), kEndHeaders), data(1, 20, kEndStream)}),
           7);
  p.finish(8);
  expectOnlyTheUpload(sink.records, 4500);
  EXPECT_GE(p.stats().unconfirmed_streams_dropped, 1u);
}

// The same without a second gap: the fake frames are followed by more
// payload bytes, which don't fit as the next frame header, so the boundary
// is refuted and the scan goes on to the real next frame.
TEST(Http2Resync, FakeFramesInDataPayloadAreRefutedByWhatFollows) {
  Deflater cd, sd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(C, cat({preface(), settings({}), headers(1, post(cd), kEndHeaders)}), 1);
  const Bytes d1 = data(1, 2000);
  const Bytes d2 = dataWithFakes(2000, 300);
  p.onData(C, std::span<const uint8_t>(d1).first(1000), 2);
  p.onGap(C, (d1.size() - 1000) + 200, 3);
  p.onData(C, cat({Bytes(d2.begin() + 200, d2.end()), data(1, 500), data(1, 7, kEndStream)}), 4);
  p.onData(S, cat({settings({}), headers(1, created(sd), kEndHeaders), data(1, 20, kEndStream)}),
           5);
  p.finish(6);
  expectOnlyTheUpload(sink.records, 4507);
  EXPECT_GE(p.stats().resyncs_refuted, 1u);
  // The real frames after d2 were found again and counted.
  EXPECT_GE(sink.records[0].request_body_bytes, 507u);
  EXPECT_EQ(sink.records[0].request_end_ns, 4u);
}

// Bytes that end with one fitting frame, cut by a payload window: the cut is
// not the sender's, and the gap right after it refutes the frame.
TEST(Http2Resync, OneFrameEndingAtAWindowCutIsRefutedByTheGap) {
  Deflater cd, sd, fd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(C, cat({preface(), settings({}), headers(1, post(cd), kEndHeaders)}), 1);
  const Bytes fake = headers(3, fd.encode({{":method", "GET"}, {":path", "/fake"}}), kEndHeaders);
  Bytes d2 = cat({Bytes(100, 'x'), fake, Bytes(1000, 'x')});
  d2 = frame(kData, 0, 1, d2);
  p.onGap(C, 5000, 2);  // across frame headers
  p.onData(C, std::span<const uint8_t>(d2).subspan(9 + 50, 50 + fake.size()), 3);
  p.onGap(C, 1000, 4);
  p.onData(C, data(1, 10, kEndStream), 5);
  p.onData(S, cat({headers(1, created(sd), kEndHeaders), data(1, 20, kEndStream)}), 6);
  p.finish(7);
  expectOnlyTheUpload(sink.records, 10);
}

// Headers that are plausible on their own but that nothing confirms within
// the scan buffer are never taken on trust when the buffer is full.
TEST(Http2Resync, CandidateLongerThanTheScanBufferIsNotTaken) {
  Deflater cd, sd;
  Http2Limits lim;
  lim.max_resync_bytes = 64;
  RecordingSink sink;
  Http2Parser p(sink, lim);
  p.onData(C, cat({preface(), settings({}), headers(1, post(cd), kEndHeaders)}), 1);
  p.onGap(C, 3, 2);  // inside the next frame header
  // A DATA frame header for stream 3 with 1000 bytes, then 'x' bytes.
  Bytes b = cat({frame(kData, 0, 3, {}), Bytes(200, 'x')});
  b[1] = 0x03;
  b[2] = 0xe8;
  p.onData(C, b, 3);
  p.onData(S, cat({headers(1, created(sd), kEndHeaders), data(1, 20, kEndStream)}), 4);
  p.finish(5);
  ASSERT_EQ(sink.records.size(), 1u) << testing::PrintToString(describeAll(sink.records));
  EXPECT_EQ(sink.records[0].stream_id, 1u);
}

// A client that sends one HEADERS frame per segment and waits for the
// response (h2load -m 1) leaves a single frame ending with the bytes: after
// a loss it is still taken, and the server naming the same new stream
// confirms it, so the exchanges are complete.
TEST(Http2Resync, OneRequestPerSegmentResyncsAndIsConfirmedByTheResponse) {
  Deflater cd(0), sd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(C, cat({preface(), settings({})}), 1);
  p.onGap(C, 30, 2);  // a lost request, frame header included
  uint64_t ts = 3;
  for (uint32_t sid = 3; sid <= 9; sid += 2) {
    p.onData(C,
             headers(sid, cd.encode({{":method", "GET"}, {":path", "/r" + std::to_string(sid)}}),
                     kEndHeaders | kEndStream),
             ts++);
    p.onData(S, cat({headers(sid, created(sd), kEndHeaders), data(sid, 5, kEndStream)}), ts++);
  }
  p.finish(ts);
  ASSERT_EQ(sink.records.size(), 4u) << testing::PrintToString(describeAll(sink.records));
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(sink.records[i].stream_id, 3 + 2 * i);
    EXPECT_EQ(sink.records[i].path, "/r" + std::to_string(3 + 2 * i));
    EXPECT_EQ(sink.records[i].status, 201);
    EXPECT_EQ(sink.records[i].response_body_bytes, 5u);
    EXPECT_EQ(sink.records[i].flags, 0u);
  }
}

// A loss across a frame header in a download of full-size DATA frames (a
// whole capture, no window): the scan buffer holds two such frames and the
// next header, so the boundary is found at the next frame but one and the
// body is counted from there on, up to its END_STREAM.
TEST(Http2Resync, FullSizeDataFramesResyncAfterALoss) {
  Deflater cd, sd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(C,
           cat({preface(), settings({}),
                headers(1, cd.encode({{":method", "GET"}, {":path", "/big"}}),
                        kEndHeaders | kEndStream)}),
           1);
  Bytes sv = cat({settings({}), headers(1, created(sd), kEndHeaders)});
  const size_t first = sv.size();
  for (int k = 0; k < 10; ++k) append(sv, data(1, 16384, k == 9 ? kEndStream : 0));
  p.onData(S, std::span<const uint8_t>(sv).first(first + 1000), 2);
  p.onGap(S, 20000, 3);  // across the second DATA frame's header
  uint64_t ts = 4;
  for (size_t pos = first + 21000; pos < sv.size(); pos += 1448, ++ts) {
    p.onData(S, std::span<const uint8_t>(sv).subspan(pos, std::min<size_t>(1448, sv.size() - pos)),
             ts);
  }
  p.finish(ts);
  ASSERT_EQ(sink.records.size(), 1u) << testing::PrintToString(describeAll(sink.records));
  const HttpRecord& r = sink.records[0];
  EXPECT_EQ(p.stats().resyncs, 1u);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.flags, kFlagGap);
  EXPECT_NE(r.response_end_ns, 0u);
  // Frame 2 (its header lost) is not counted; frame 1, whose lost tail is
  // counted as body (its length is known), and frames 3 to 10 are.
  EXPECT_EQ(r.response_body_bytes, 9 * 16384u);
}

// A response held back for an unconfirmed boundary, whose request arrives
// afterwards: the request confirms it and is part of the record.
TEST(Http2Resync, HeldBackResponseTakesTheRequestThatConfirmsIt) {
  Deflater cd, sd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.startMidstream();
  p.onData(S, cat({headers(5, created(sd), kEndHeaders), data(5, 3, kEndStream)}), 1);
  EXPECT_TRUE(sink.records.empty());  // held back
  p.onData(C,
           cat({headers(5, cd.encode({{":method", "GET"}, {":path", "/five"}}),
                        kEndHeaders | kEndStream),
                ping()}),
           2);
  ASSERT_EQ(sink.records.size(), 1u) << testing::PrintToString(describeAll(sink.records));
  EXPECT_EQ(sink.records[0].path, "/five");
  EXPECT_EQ(sink.records[0].status, 201);
  EXPECT_EQ(sink.records[0].response_body_bytes, 3u);
  EXPECT_EQ(sink.records[0].flags, 0u);
  p.finish(3);
  EXPECT_EQ(sink.records.size(), 1u);
}

// ---- plain payload windows on large skbs -----------------------------------

enum class Payload { kRandom, kBinary, kFrames };

Bytes makePayload(Payload kind, size_t n, std::mt19937& rng) {
  Bytes p;
  p.reserve(n);
  switch (kind) {
    case Payload::kRandom:
      while (p.size() < n) p.push_back(static_cast<uint8_t>(rng()));
      break;
    case Payload::kBinary:
      // Like executables and structs: mostly zero bytes, small integers.
      while (p.size() < n) {
        const uint32_t r = rng() % 10;
        p.push_back(r < 6   ? 0
                    : r < 9 ? static_cast<uint8_t>(rng() % 16)
                            : static_cast<uint8_t>(rng()));
      }
      break;
    case Payload::kFrames: {
      // An HTTP/2 conversation carried as content.
      Deflater d;
      for (uint32_t sid = 1; p.size() < n; sid += 2) {
        append(p, headers(sid, d.encode({{":method", "GET"}, {":path", "/inner"}}), kEndHeaders));
        append(p, data(sid, rng() % 300, kEndStream));
      }
      p.resize(n);
      break;
    }
  }
  return p;
}

// Delivers `bytes` as skbs of up to 64 KB of which only the first `window`
// bytes are copied, the rest reported as a gap (plain window, no capture
// control).
void windowed(Http2Parser& p, Role role, const Bytes& bytes, size_t first_skb, size_t window,
              std::mt19937& rng, uint64_t& ts) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t skb =
        std::min<size_t>(bytes.size() - pos, pos == 0 ? first_skb : 1 + rng() % 65483);
    const size_t copied = std::min(skb, window);
    p.onData(role, std::span<const uint8_t>(bytes).subspan(pos, copied), ts);
    if (skb > copied) p.onGap(role, skb - copied, ts);
    pos += skb;
    ++ts;
  }
}

// 200 KB uploads and downloads in 16 KB DATA frames seen through 256- and
// 1024-byte windows: one record each, for stream 1, flagged gap, with a body
// count that never exceeds what was sent.
TEST(Http2Resync, WindowedTransfersNeverInventStreamsOrValues) {
  const size_t body = 200 * 1024;
  for (Payload kind : {Payload::kRandom, Payload::kBinary, Payload::kFrames}) {
    for (size_t window : {256u, 1024u}) {
      for (uint32_t seed = 0; seed < 40; ++seed) {
        for (bool upload : {true, false}) {
          SCOPED_TRACE(testing::Message() << "kind " << static_cast<int>(kind) << " window "
                                          << window << " seed " << seed << " upload " << upload);
          std::mt19937 rng(seed);
          Deflater cd, sd;
          const Bytes pl = makePayload(kind, body, rng);
          Bytes frames;
          for (size_t off = 0; off < body; off += 16384) {
            const size_t n = std::min<size_t>(16384, body - off);
            append(frames, frame(kData, off + n == body ? kEndStream : 0, 1,
                                 Bytes(pl.begin() + static_cast<ptrdiff_t>(off),
                                       pl.begin() + static_cast<ptrdiff_t>(off + n))));
          }
          const Bytes req = upload ? post(cd) : cd.encode({{":method", "GET"}, {":path", "/f"}});
          Bytes cl = cat({preface(), settings({}),
                          headers(1, req, upload ? kEndHeaders : kEndHeaders | kEndStream)});
          Bytes sv = cat({settings({}), headers(1, created(sd), kEndHeaders)});
          RecordingSink sink;
          Http2Parser p(sink);
          uint64_t ts = 1;
          if (upload) {
            append(cl, frames);
            windowed(p, C, cl, cl.size() - frames.size(), window, rng, ts);
            append(sv, data(1, 20, kEndStream));
            p.onData(S, sv, ts++);
          } else {
            p.onData(C, cl, ts++);
            append(sv, frames);
            windowed(p, S, sv, sv.size() - frames.size(), window, rng, ts);
          }
          p.finish(ts);
          ASSERT_EQ(sink.records.size(), 1u) << testing::PrintToString(describeAll(sink.records));
          const HttpRecord& r = sink.records[0];
          EXPECT_EQ(r.stream_id, 1u);
          EXPECT_EQ(r.path, upload ? "/upload" : "/f");
          EXPECT_EQ(r.status, 201);
          EXPECT_LE(upload ? r.request_body_bytes : r.response_body_bytes, body);
          EXPECT_EQ(r.flags & kFlagGap, kFlagGap);
          EXPECT_EQ(r.flags & (kFlagHpackError | kFlagNoRequest), 0u);
        }
      }
    }
  }
}

}  // namespace
}  // namespace l7tap::h2test
