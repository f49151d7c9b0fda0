// Http2Parser recovery: gaps (inside DATA, inside header blocks, across frame
// boundaries), mid-stream starts, looksLikeHttp2Frames, and garbage input.
#include <gtest/gtest.h>

#include <random>

#include "parsers/http2/http2_parser.h"
#include "tests/parsers/http2/h2_test_util.h"

namespace l7tap::h2test {
namespace {

constexpr Role C = Role::kClient;
constexpr Role S = Role::kServer;

Bytes get(Deflater& d, const std::string& path) {
  return d.encode({{":method", "GET"},
                   {":scheme", "http"},
                   {":authority", "a.example"},
                   {":path", path},
                   {"user-agent", "ua/1"}});
}

Bytes ok(Deflater& d) { return d.encode({{":status", "200"}, {"content-type", "text/plain"}}); }

// ---- gaps -------------------------------------------------------------------

TEST(Http2Gap, InsideDataPayloadIsSkippedAndCounted) {
  Deflater cd, sd;
  Script s;
  Bytes body = data(1, 1000, kEndStream, 20);  // 9 + 1 + 1000 + 20
  s.send(C, 1,
         cat({preface(),
              headers(1, cd.encode({{":method", "POST"}, {":path", "/up"}}), kEndHeaders)}));
  s.send(C, 2, Bytes(body.begin(), body.begin() + 110));
  s.lose(C, 3, 500);
  s.send(C, 4,
         cat({Bytes(body.begin() + 610, body.end()),
              headers(3, cd.encode({{":method", "GET"}, {":path", "/after"}}),
                      kEndHeaders | kEndStream)}));
  s.send(S, 5,
         cat({headers(1, ok(sd), kEndHeaders), data(1, 7, kEndStream),
              headers(3, ok(sd), kEndHeaders | kEndStream)}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].stream_id, 1u);
  EXPECT_EQ(rs[0].request_body_bytes, 1000u);
  EXPECT_EQ(rs[0].flags, kFlagGap);
  EXPECT_EQ(rs[0].request_end_ns, 4u);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[1].path, "/after");
  EXPECT_EQ(rs[1].flags, 0u);
  EXPECT_EQ(st.desyncs, 0u);
}

TEST(Http2Gap, CoveringPaddingOnlyStillCountsBodyExactly) {
  Deflater cd, sd;
  Script s;
  Bytes body = data(1, 100, kEndStream, 50);  // 9 + 1 + 100 + 50
  s.send(
      C, 1,
      cat({preface(), headers(1, cd.encode({{":method", "POST"}, {":path", "/p"}}), kEndHeaders)}));
  s.send(C, 2, Bytes(body.begin(), body.begin() + 120));
  s.lose(C, 3, 40);
  s.send(C, 4, Bytes(body.begin() + 160, body.end()));
  s.send(S, 5, headers(1, ok(sd), kEndHeaders | kEndStream));
  auto rs = play(s);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].request_body_bytes, 100u);
  EXPECT_EQ(rs[0].status, 200);
}

TEST(Http2Gap, InsideHeaderBlockKeepsFramingButLosesTable) {
  Deflater cd, sd;
  Script s;
  s.send(C, 1, cat({preface(), headers(1, get(cd, "/one"), kEndHeaders | kEndStream)}));
  Bytes h3 = headers(3, get(cd, "/two-is-longer"), kEndHeaders | kEndStream);
  s.send(C, 2, Bytes(h3.begin(), h3.begin() + 12));
  s.lose(C, 3, h3.size() - 12);
  // Stream 5 references ua/1 and a.example from the dynamic table.
  s.send(C, 4, cat({headers(5, get(cd, "/three"), kEndHeaders), data(5, 9, kEndStream)}));
  s.send(S, 5,
         cat({headers(1, ok(sd), kEndHeaders | kEndStream),
              headers(3, ok(sd), kEndHeaders | kEndStream),
              headers(5, ok(sd), kEndHeaders | kEndStream)}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].flags, 0u);
  EXPECT_EQ(rs[0].path, "/one");
  EXPECT_EQ(rs[1].stream_id, 3u);
  EXPECT_EQ(rs[1].flags, kFlagGap);
  EXPECT_EQ(rs[1].request_end_ns, 3u);  // END_STREAM was in the frame header
  EXPECT_EQ(rs[1].request_header_bytes, h3.size() - 9);
  EXPECT_EQ(rs[1].status, 200);
  // Stream 5's :authority and user-agent name entries from before the gap:
  // unknown, never guessed. :method and :path don't.
  EXPECT_EQ(rs[2].stream_id, 5u);
  EXPECT_EQ(rs[2].flags, kFlagHpackUnknown);  // its empty fields may be unknown
  EXPECT_EQ(rs[2].method, "GET");
  EXPECT_EQ(rs[2].path, "/three");
  EXPECT_EQ(rs[2].host, "");
  EXPECT_EQ(rs[2].user_agent, "");
  EXPECT_EQ(rs[2].request_body_bytes, 9u);
  EXPECT_EQ(rs[2].status, 200);
  EXPECT_EQ(st.desyncs, 0u);
  EXPECT_EQ(st.hpack_errors, 0u);
  EXPECT_EQ(st.hpack_unknown_fields, 2u);
  EXPECT_EQ(st.hpack[0].losses, 1u);
  EXPECT_FALSE(st.hpack[0].synchronised);  // 128 placeholders are not evicted by one block
  EXPECT_TRUE(st.hpack[1].synchronised);
}

TEST(Http2Gap, AcrossFrameBoundaryResyncs) {
  Deflater cd(0), sd;  // a client that never indexes: decodable after resync
  Script s;
  s.send(C, 1,
         cat({preface(), settings({}),
              headers(1, cd.encode({{":method", "POST"}, {":path", "/a"}}), kEndHeaders)}));
  Bytes d1 = data(1, 300);
  s.send(C, 2, Bytes(d1.begin(), d1.begin() + 100));
  // Lose the rest of d1 and the first 4 bytes of the next frame.
  Bytes d2 = data(1, 50, kEndStream);
  s.lose(C, 3, (d1.size() - 100) + 4);
  s.send(
      C, 4,
      cat({Bytes(d2.begin() + 4, d2.end()),
           headers(3, cd.encode({{":method", "GET"}, {":path", "/b"}}), kEndHeaders | kEndStream),
           ping()}));
  s.send(S, 5,
         cat({headers(1, ok(sd), kEndHeaders | kEndStream),
              headers(3, ok(sd), kEndHeaders | kEndStream)}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  EXPECT_EQ(st.desyncs, 1u);
  EXPECT_EQ(st.resyncs, 1u);
  ASSERT_EQ(rs.size(), 2u);
  // Stream 1 never saw its END_STREAM (lost): emitted at finish with the gap.
  EXPECT_EQ(rs[0].stream_id, 3u);
  EXPECT_EQ(rs[0].path, "/b");
  EXPECT_EQ(rs[0].flags, 0u);
  EXPECT_EQ(rs[1].stream_id, 1u);
  EXPECT_EQ(rs[1].flags & kFlagGap, kFlagGap);
  EXPECT_EQ(rs[1].status, 200);
}

// An upload whose HEADERS frame and first DATA bytes were lost (a 64 KB skb
// the capture dropped): stream 1 first appears in a DATA frame found by the
// resync. Only the DATA after the loss is counted, so the record must not
// pass that count off as the whole body.
TEST(Http2Gap, BodyOfAStreamFirstSeenInDataIsFlagged) {
  Deflater cd, sd;
  Script s;
  s.send(C, 1, cat({preface(), settings({})}));
  Bytes lost = cat(
      {headers(1, cd.encode({{":method", "POST"}, {":path", "/up"}}), kEndHeaders), data(1, 1000)});
  s.lose(C, 2, lost.size());
  s.send(C, 3, cat({data(1, 300), data(1, 200, kEndStream), ping()}));
  s.send(S, 4, cat({headers(1, ok(sd), kEndHeaders), data(1, 22, kEndStream)}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  EXPECT_EQ(st.desyncs, 1u);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].stream_id, 1u);
  EXPECT_EQ(rs[0].request_body_bytes, 500u);  // seen: 1000 more went with the HEADERS
  EXPECT_EQ(rs[0].response_body_bytes, 22u);
  EXPECT_EQ(rs[0].flags, kFlagNoRequest | kFlagGap);
}

// The same for a response: DATA of a stream whose response HEADERS were
// lost counts only what came after them.
TEST(Http2Gap, ResponseBodyWithoutResponseHeadersIsFlagged) {
  Deflater cd, sd;
  Script s;
  s.send(C, 1,
         cat({preface(), settings({}), headers(1, get(cd, "/big"), kEndHeaders | kEndStream)}));
  s.send(S, 2, settings({}));
  Bytes lost = cat({headers(1, ok(sd), kEndHeaders), data(1, 1000)});
  s.lose(S, 3, lost.size());
  s.send(S, 4, cat({data(1, 300), data(1, 200, kEndStream), ping()}));
  auto rs = play(s);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].path, "/big");
  EXPECT_EQ(rs[0].response_body_bytes, 500u);
  EXPECT_EQ(rs[0].flags & kFlagGap, kFlagGap);
}

TEST(Http2Gap, InServerFrameHeaderResyncsAndLaterStreamsParse) {
  Deflater cd, sd(0);
  Script s;
  s.send(C, 1,
         cat({preface(), headers(1, get(cd, "/1"), kEndHeaders | kEndStream),
              headers(3, get(cd, "/3"), kEndHeaders | kEndStream),
              headers(5, get(cd, "/5"), kEndHeaders | kEndStream)}));
  Bytes h1 = headers(1, ok(sd), kEndHeaders);
  s.send(S, 2, cat({h1, Bytes{0, 0}}));  // two bytes of the next frame header
  s.lose(S, 3, 20);
  // Garbage that doesn't look like frames, then aligned frames.
  s.send(S, 4,
         cat({Bytes{0xff, 0xff, 0xff, 0xee, 0xee}, headers(3, ok(sd), kEndHeaders),
              data(3, 10, kEndStream), headers(5, ok(sd), kEndHeaders | kEndStream)}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  EXPECT_EQ(st.resyncs, 1u);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].stream_id, 3u);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[0].response_body_bytes, 10u);
  EXPECT_EQ(rs[0].flags, kFlagGap);  // it was open when the server side lost sync
  EXPECT_EQ(rs[1].stream_id, 5u);
  EXPECT_EQ(rs[1].status, 200);
  EXPECT_EQ(rs[2].stream_id, 1u);
  EXPECT_EQ(rs[2].flags & (kFlagGap | kFlagNoResponse), kFlagGap | kFlagNoResponse);
}

TEST(Http2Gap, InPrefaceSkipsKnownBytes) {
  Deflater cd;
  Script s;
  Bytes pre = preface();
  s.send(C, 1, Bytes(pre.begin(), pre.begin() + 5));
  s.lose(C, 2, 10);
  s.send(C, 3,
         cat({Bytes(pre.begin() + 15, pre.end()),
              headers(1, get(cd, "/x"), kEndHeaders | kEndStream)}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, false, {}, &st);
  EXPECT_EQ(st.desyncs, 0u);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].path, "/x");
}

TEST(Http2Gap, ResyncWaitsForConfirmation) {
  // After a desync, a plausible header whose frame is not yet complete is
  // only accepted once the following header confirms it.
  Deflater cd(0), sd;
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(C,
           cat({preface(), headers(1, cd.encode({{":method", "GET"}, {":path", "/1"}}),
                                   kEndHeaders | kEndStream)}),
           1);
  p.onGap(C, 3, 2);  // inside the next frame header: desync
  Bytes next =
      cat({headers(3, cd.encode({{":method", "GET"}, {":path", "/3"}}), kEndHeaders | kEndStream),
           ping()});
  p.onData(C, std::span<const uint8_t>(next).subspan(0, 12), 3);
  p.onData(C, std::span<const uint8_t>(next).subspan(12), 4);
  p.onData(S,
           cat({headers(1, ok(sd), kEndHeaders | kEndStream),
                headers(3, ok(sd), kEndHeaders | kEndStream)}),
           5);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].flags, 0u);  // stream 1's client side had ended
  EXPECT_EQ(sink.records[1].path, "/3");
  EXPECT_EQ(sink.records[1].request_start_ns, 4u);
  EXPECT_EQ(p.stats().resyncs, 1u);
}

TEST(Http2Gap, GapWhileScanningDropsKeptBytes) {
  Deflater cd(0);
  RecordingSink sink;
  Http2Parser p(sink);
  p.onData(C, preface(), 1);
  p.onGap(C, 5, 2);
  Bytes h = headers(1, cd.encode({{":method", "GET"}, {":path", "/1"}}), kEndHeaders | kEndStream);
  p.onData(C, std::span<const uint8_t>(h).subspan(0, 9), 3);  // unconfirmed candidate
  p.onGap(C, 4, 4);
  p.onData(
      C,
      cat({headers(3, cd.encode({{":method", "GET"}, {":path", "/3"}}), kEndHeaders | kEndStream),
           ping()}),
      5);
  p.finish(6);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].stream_id, 3u);
  EXPECT_EQ(sink.records[0].path, "/3");
}

// ---- mid-stream starts ------------------------------------------------------

TEST(Http2Midstream, UnknownDynamicEntriesAreReportedUnknown) {
  Deflater cd, sd;
  // Before the capture: stream 1 fills both dynamic tables.
  get(cd, "/before");
  ok(sd);
  Script s;
  Bytes h3 = headers(3, get(cd, "/after"), kEndHeaders);
  s.send(C, 10, cat({h3, data(3, 25, kEndStream)}));
  Bytes r3 = headers(3, ok(sd), kEndHeaders);
  s.send(S, 20, cat({r3, data(3, 40, kEndStream)}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, true, {}, &st);
  ASSERT_EQ(rs.size(), 1u);
  const HttpRecord& r = rs[0];
  EXPECT_EQ(r.stream_id, 3u);
  EXPECT_EQ(r.flags, kFlagHpackUnknown);  // its empty fields may be unknown
  EXPECT_EQ(r.method, "GET");             // static table
  EXPECT_EQ(r.path, "/after");            // literal
  EXPECT_EQ(r.host, "");                  // was in the unknown table
  EXPECT_EQ(r.status, 200);               // static table
  EXPECT_EQ(r.request_header_bytes, h3.size() - 9);
  EXPECT_EQ(r.request_body_bytes, 25u);
  EXPECT_EQ(r.response_header_bytes, r3.size() - 9);
  EXPECT_EQ(r.response_body_bytes, 40u);
  EXPECT_EQ(r.request_start_ns, 10u);
  EXPECT_EQ(r.request_end_ns, 10u);
  EXPECT_EQ(r.response_end_ns, 20u);
  EXPECT_EQ(r.user_agent, "");  // was in the unknown table
  EXPECT_EQ(st.hpack_errors, 0u);
  // :authority and user-agent; content-type.
  EXPECT_EQ(st.hpack_unknown_fields, 3u);
  EXPECT_FALSE(st.hpack[0].synchronised);
  EXPECT_FALSE(st.hpack[1].synchronised);
}

TEST(Http2Midstream, JoinsInsideADataFrame) {
  Deflater cd, sd;
  Script s;
  Bytes tail = data(5, 300, kEndStream);
  // The capture starts 100 bytes into a DATA frame of stream 5 (server side).
  s.send(S, 1,
         cat({Bytes(tail.begin() + 100, tail.end()), headers(7, ok(sd), kEndHeaders),
              data(7, 3, kEndStream)}));
  s.send(C, 2, cat({headers(9, get(cd, "/9"), kEndHeaders | kEndStream), ping()}));
  Http2Stats st;
  auto rs = play(s, SIZE_MAX, 0, true, {}, &st);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].stream_id, 7u);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[0].response_body_bytes, 3u);
  // Neither direction followed its frames far enough to confirm the boundary
  // its scan found, and neither names a stream the other opened: both
  // records come from unconfirmed boundaries, so they say gap.
  EXPECT_EQ(rs[0].flags, kFlagNoRequest | kFlagMidstream | kFlagGap);
  EXPECT_EQ(rs[1].stream_id, 9u);
  EXPECT_EQ(rs[1].path, "/9");
  EXPECT_EQ(rs[1].flags, kFlagNoResponse | kFlagGap);
}

TEST(Http2Midstream, ResponseWithoutRequestAtFinish) {
  Deflater sd;
  Script s;
  s.send(S, 1, cat({headers(1, ok(sd), kEndHeaders), data(1, 4)}));
  auto rs = play(s, SIZE_MAX, 0, true);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status, 200);
  // Unconfirmed boundary (two frames, then the end): kept, flagged gap.
  EXPECT_EQ(rs[0].flags, kFlagNoRequest | kFlagMidstream | kFlagNoResponse | kFlagGap);
}

// ---- looksLikeHttp2Frames ---------------------------------------------------

TEST(LooksLikeHttp2Frames, AcceptsFrameSequences) {
  Deflater cd;
  EXPECT_TRUE(looksLikeHttp2Frames(settings({{3, 100}})));
  EXPECT_TRUE(looksLikeHttp2Frames(cat({settingsAck(), ping()})));
  EXPECT_TRUE(looksLikeHttp2Frames(cat({headers(1, get(cd, "/"), kEndHeaders), data(1, 3)})));
  Bytes d = data(3, 100);
  EXPECT_TRUE(looksLikeHttp2Frames(Bytes(d.begin(), d.begin() + 20)));  // second not in view
}

TEST(LooksLikeHttp2Frames, RejectsOtherBytes) {
  const std::string http1 = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_FALSE(looksLikeHttp2Frames(Bytes(http1.begin(), http1.end())));
  EXPECT_FALSE(looksLikeHttp2Frames(preface()));
  EXPECT_FALSE(looksLikeHttp2Frames(Bytes{0, 0, 0, 4}));           // too short
  EXPECT_FALSE(looksLikeHttp2Frames(frame(kSettings, 0, 1, {})));  // SETTINGS on a stream
  EXPECT_FALSE(looksLikeHttp2Frames(frame(kData, 0, 0, {1})));     // DATA on stream 0
  EXPECT_FALSE(looksLikeHttp2Frames(frame(kPing, 0, 0, {1, 2})));  // PING must be 8 bytes
  EXPECT_FALSE(looksLikeHttp2Frames(frame(0x42, 0, 0, {})));       // unknown type
  EXPECT_FALSE(looksLikeHttp2Frames(frame(kData, 0x40, 1, {})));   // undefined flag
  Bytes reserved = data(1, 1);
  reserved[5] |= 0x80;
  EXPECT_FALSE(looksLikeHttp2Frames(reserved));
  EXPECT_FALSE(looksLikeHttp2Frames(
      cat({settingsAck(), Bytes{'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', '2', '0', '0'}})));
  Bytes big = data(1, 1);
  big[0] = 1;  // 65537 bytes > 16384
  EXPECT_FALSE(looksLikeHttp2Frames(big));
}

// ---- garbage ----------------------------------------------------------------

void checkSane(const std::vector<HttpRecord>& rs) {
  for (const HttpRecord& r : rs) {
    EXPECT_NE(r.stream_id, 0u);
    EXPECT_EQ(r.stream_id & 1, 1u);
    EXPECT_STREQ(r.version, "2");
  }
}

TEST(Http2Garbage, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    Http2Limits lim;
    lim.max_open_streams = 1 + rng() % 8;
    lim.max_resync_bytes = 64 + rng() % 4096;
    RecordingSink sink;
    Http2Parser p(sink, lim);
    if (round % 3 == 0) p.startMidstream();
    for (int step = 0; step < 60; ++step) {
      Role role = (rng() & 1) ? C : S;
      const uint32_t what = rng() % 10;
      if (what == 0) {
        p.onGap(role, rng() % 3000, step);
      } else if (what == 1 && step > 50) {
        p.onEnd(role, rng() & 1, step);
      } else {
        Bytes b(rng() % 700);
        // Mostly small values so that lengths and types look plausible often.
        for (uint8_t& x : b) x = (rng() % 4 == 0) ? static_cast<uint8_t>(rng()) : rng() % 10;
        p.onData(role, b, step);
      }
    }
    p.finish(1000);
    checkSane(sink.records);
  }
}

TEST(Http2Garbage, MutatedConversationsNeverCrash) {
  std::mt19937 rng(11);
  for (int round = 0; round < 400; ++round) {
    Deflater cd, sd;
    Script s;
    Bytes cl = preface();
    Bytes sv = settings({{1, 100 + rng() % 9000}});
    for (uint32_t sid = 1; sid < 20; sid += 2) {
      append(cl,
             headers(sid, get(cd, "/s" + std::to_string(sid)),
                     kEndHeaders | ((sid % 3) ? kEndStream : 0), sid % 4 ? -1 : 5, sid % 5 == 0));
      append(sv, headers(sid, ok(sd), kEndHeaders));
      append(sv, data(sid, rng() % 200, kEndStream, sid % 2 ? 3 : -1));
    }
    for (Bytes* b : {&cl, &sv}) {
      const int flips = rng() % 6;
      for (int k = 0; k < flips; ++k) (*b)[rng() % b->size()] = static_cast<uint8_t>(rng());
    }
    // Deliver in random pieces with random gaps.
    RecordingSink sink;
    Http2Parser p(sink);
    if (round % 4 == 0) p.startMidstream();
    size_t ci = 0, si = 0;
    uint64_t ts = 0;
    while (ci < cl.size() || si < sv.size()) {
      const bool client = si >= sv.size() || (ci < cl.size() && (rng() & 1));
      Bytes& b = client ? cl : sv;
      size_t& i = client ? ci : si;
      const size_t n = std::min<size_t>(b.size() - i, 1 + rng() % 300);
      if (rng() % 12 == 0) {
        p.onGap(client ? C : S, n, ++ts);
      } else {
        p.onData(client ? C : S, std::span<const uint8_t>(b).subspan(i, n), ++ts);
      }
      i += n;
    }
    p.finish(++ts);
    checkSane(sink.records);
    EXPECT_LE(sink.records.size(), 40u);
  }
}

}  // namespace
}  // namespace l7tap::h2test
