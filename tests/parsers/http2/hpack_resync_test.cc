// HPACK resynchronisation: a decoder whose dynamic table is unknown (joined
// mid-way, or bytes lost inside a header block) decodes every field either
// exactly or as unknown, never as a different value, and decodes exactly
// again once the unknown entries are evicted. Header blocks come from
// nghttp2's deflater, which plays the peer's encoder.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "parsers/http2/hpack_decoder.h"
#include "tests/parsers/http2/h2_test_util.h"

namespace l7tap::h2test {
namespace {

struct Field {
  bool known = false;
  std::string name;
  std::string value;
};

class Collect final : public HeaderFieldHandler {
 public:
  void onHeaderField(std::string_view name, std::string_view value) override {
    fields.push_back({true, std::string(name), std::string(value)});
  }
  void onUnknownHeaderField() override { fields.push_back({false, {}, {}}); }
  std::vector<Field> fields;
};

struct Decoded {
  bool ok = true;
  std::vector<Field> fields;
  size_t unknown() const {
    size_t n = 0;
    for (const Field& f : fields) n += f.known ? 0 : 1;
    return n;
  }
};

/// Feeds `block` in fragments of at most `piece` bytes, then ends it.
Decoded decode(HpackDecoder& dec, const Bytes& block, size_t piece = SIZE_MAX) {
  Collect c;
  Decoded out;
  for (size_t at = 0; at < block.size(); at += piece) {
    const size_t n = std::min(piece, block.size() - at);
    if (!dec.feed(std::span<const uint8_t>(block).subspan(at, n), c)) out.ok = false;
  }
  if (!dec.endBlock(c)) out.ok = false;
  out.fields = std::move(c.fields);
  return out;
}

/// Names in RFC 7541's static table that the generator below uses: nghttp2's
/// deflater always takes them from the static table, so once synchronised
/// they decode exactly (other names may stay unknown, see HpackDecoder).
bool staticName(const std::string& n) {
  for (const char* s : {":method", ":scheme", ":authority", ":path", ":status", "user-agent",
                        "content-type", "server", "set-cookie"}) {
    if (n == s) return true;
  }
  return false;
}

/// Once synchronised, every field with a static-table name is exact.
void expectStaticNamesExact(const Decoded& d, const Headers& truth, const std::string& where) {
  EXPECT_TRUE(d.ok) << where;
  ASSERT_EQ(d.fields.size(), truth.size()) << where;
  for (size_t k = 0; k < truth.size(); ++k) {
    if (staticName(truth[k].first)) {
      EXPECT_TRUE(d.fields[k].known) << where << " field " << k << " " << truth[k].first;
    }
  }
}

/// The property: every decoded field is the encoder's input at the same
/// position, or unknown. A block that decodes without error has them all.
void expectNeverWrong(const Decoded& d, const Headers& truth, const std::string& where) {
  ASSERT_LE(d.fields.size(), truth.size()) << where;
  if (d.ok) {
    EXPECT_EQ(d.fields.size(), truth.size()) << where;
  }
  for (size_t k = 0; k < d.fields.size(); ++k) {
    if (!d.fields[k].known) continue;
    EXPECT_EQ(d.fields[k].name, truth[k].first) << where << " field " << k;
    EXPECT_EQ(d.fields[k].value, truth[k].second) << where << " field " << k;
  }
}

// ---- hand-built representations (RFC 7541 section 6) ------------------------

Bytes str(const std::string& s) {
  Bytes out = hpackInt(0, 7, static_cast<uint32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
  return out;
}
Bytes indexed(uint32_t i) { return hpackInt(0x80, 7, i); }
Bytes insertNew(const std::string& n, const std::string& v) {
  return cat({Bytes{0x40}, str(n), str(v)});
}
Bytes insertWithName(uint32_t name_index, const std::string& v) {
  return cat({hpackInt(0x40, 6, name_index), str(v)});
}

// ---- a vocabulary that makes an encoder both insert and reference ------------

class HeaderGen {
 public:
  explicit HeaderGen(uint32_t seed) : rng_(seed) {}

  Headers request() {
    Headers h{{":method", pick({"GET", "POST", "PUT", "DELETE"})},
              {":scheme", "http"},
              {":authority", pick({"a.example", "b.example:8080"})},
              {":path", "/item/" + std::to_string(rng_() % 40)},
              {"user-agent", pick({"curl/8", "grpc-go/1.60", "Mozilla/5.0 (X11; Linux x86_64)"})}};
    if (rng_() % 2) h.push_back({"x-request-id", std::to_string(rng_())});  // always new
    if (rng_() % 3 == 0) h.push_back({"content-type", pick({"application/json", "text/plain"})});
    for (uint32_t k = rng_() % 3; k > 0; --k) {
      h.push_back({"x-h" + std::to_string(rng_() % 12), "v" + std::to_string(rng_() % 6)});
    }
    return h;
  }
  Headers response() {
    Headers h{{":status", pick({"200", "204", "404", "503", "302"})},
              {"content-type", pick({"application/json", "text/html", "application/grpc"})},
              {"server", pick({"nginx", "envoy"})}};
    if (rng_() % 2) h.push_back({"x-trace", std::to_string(rng_())});
    if (rng_() % 4 == 0) h.push_back({"set-cookie", "s=" + std::to_string(rng_() % 5)});
    return h;
  }
  Headers any() { return rng_() % 2 ? request() : response(); }
  std::mt19937& rng() { return rng_; }

 private:
  std::string pick(std::initializer_list<const char*> xs) {
    return *(xs.begin() + rng_() % xs.size());
  }
  std::mt19937 rng_;
};

// ---- decoder properties -----------------------------------------------------

TEST(HpackResync, FreshDecoderIsSynchronised) {
  HpackDecoder dec;
  EXPECT_TRUE(dec.synchronised());
  EXPECT_EQ(dec.seedings(), 0u);
  EXPECT_EQ(dec.tableSize(), HpackDecoder::kDefaultTableSize);
}

TEST(HpackResync, KnownIndicesCountFromTheNewestAndPlaceholdersAreUnknown) {
  HpackDecoder dec;
  dec.resetUnknown();
  EXPECT_FALSE(dec.synchronised());
  // Two entries inserted after the seeding sit at 62 (newest) and 63; 64 is
  // the newest placeholder; a literal whose name is a placeholder has no
  // attributable value, and the entry it inserts has an unknown name.
  Decoded d = decode(dec, cat({insertNew("x-one", "1"), insertNew("x-two", "22"), indexed(62),
                               indexed(63), indexed(64), indexed(62 + 130),
                               insertWithName(64, "secret"), indexed(62), indexed(64)}));
  // 62 + 130 is beyond 2 + 128 entries: a decode error, which stops the block.
  EXPECT_FALSE(d.ok);
  ASSERT_EQ(d.fields.size(), 5u);
  EXPECT_TRUE(d.fields[2].known);
  EXPECT_EQ(d.fields[2].name, "x-two");
  EXPECT_EQ(d.fields[2].value, "22");
  EXPECT_EQ(d.fields[3].name, "x-one");
  EXPECT_FALSE(d.fields[4].known);
  EXPECT_FALSE(dec.synchronised());  // reseeded after the error
  EXPECT_EQ(dec.tableSize(), 2 * HpackDecoder::kDefaultTableSize);

  HpackDecoder again;
  again.resetUnknown();
  d = decode(again, cat({insertNew("x-one", "1"), insertWithName(63, "secret"), indexed(62),
                         indexed(63), indexed(64)}));
  ASSERT_TRUE(d.ok);
  ASSERT_EQ(d.fields.size(), 5u);
  EXPECT_TRUE(d.fields[0].known);
  EXPECT_FALSE(d.fields[1].known);  // name from a placeholder: value not attributed
  EXPECT_FALSE(d.fields[2].known);  // the entry it inserted
  EXPECT_EQ(d.fields[3].name, "x-one");
  EXPECT_EQ(d.fields[3].value, "1");
  EXPECT_FALSE(d.fields[4].known);  // placeholder
  EXPECT_EQ(again.unknownFields(), 3u);
}

TEST(HpackResync, SynchronisedExactlyWhenTheLastPlaceholderIsEvicted) {
  // 64-byte entries (32 + 2 + 30): 63 of them leave room for two
  // placeholders in 4096 bytes, the 64th evicts the last one.
  HpackDecoder dec;
  dec.resetUnknown();
  for (int i = 0; i < 63; ++i) {
    char name[3] = {static_cast<char>('a' + i / 26), static_cast<char>('a' + i % 26), 0};
    ASSERT_TRUE(decode(dec, insertNew(name, std::string(30, 'v'))).ok);
    EXPECT_FALSE(dec.synchronised()) << i;
  }
  Decoded d = decode(dec, cat({indexed(62 + 63), indexed(62 + 64)}));  // the two placeholders
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.unknown(), 2u);
  ASSERT_TRUE(decode(dec, insertNew("zz", std::string(30, 'v'))).ok);
  EXPECT_TRUE(dec.synchronised());
  d = decode(dec, cat({indexed(62), indexed(62 + 63)}));
  ASSERT_TRUE(d.ok);
  EXPECT_EQ(d.fields[0].name, "zz");
  EXPECT_EQ(d.fields[1].name, "aa");  // 64 entries of 64 bytes fill the table exactly
  EXPECT_EQ(d.unknown(), 0u);
}

TEST(HpackResync, TableSizeZeroIsKnownAtOnce) {
  // The encoder announced a 0-byte table: nothing can be unknown.
  Deflater enc;
  enc.changeTableSize(0);
  HpackDecoder dec;
  dec.setSettingsTableSize(0);
  Headers h{{":method", "GET"}, {":path", "/"}};
  ASSERT_TRUE(decode(dec, enc.encode(h)).ok);
  dec.resetUnknown();
  EXPECT_TRUE(dec.synchronised());
  Decoded d = decode(dec, enc.encode(h));
  EXPECT_TRUE(d.ok);
  EXPECT_EQ(d.unknown(), 0u);
}

// (1) and (2): the encoder filled its table before the capture.
TEST(HpackResync, PrefilledTableNeverDecodesWrongAndResumes) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    HeaderGen gen(seed);
    Deflater enc;
    for (int i = 0; i < 40; ++i) enc.encode(gen.any());  // before the capture
    HpackDecoder dec;
    dec.resetUnknown();
    size_t unknown = 0;
    for (int i = 0; i < 300; ++i) {
      const bool was_synchronised = dec.synchronised();
      Headers h = gen.any();
      Decoded d = decode(dec, enc.encode(h), 1 + gen.rng()() % 16);
      const std::string where = "seed " + std::to_string(seed) + " block " + std::to_string(i);
      expectNeverWrong(d, h, where);
      EXPECT_TRUE(d.ok) << where;  // the table is not larger than assumed
      unknown += d.unknown();
      if (was_synchronised) expectStaticNamesExact(d, h, where);
    }
    EXPECT_GT(unknown, 0u) << "seed " << seed;  // the test exercised unknown entries
    EXPECT_TRUE(dec.synchronised()) << "seed " << seed;
    EXPECT_EQ(dec.seedings(), 1u);
  }
}

// (3): the encoder's table is larger than the decoder assumes.
TEST(HpackResync, LargerTableThanAssumedIsUnknownNeverWrong) {
  Deflater enc(8192);
  enc.changeTableSize(8192);  // acknowledged before the capture
  // Fill 8 KiB (165 entries of 46-50 bytes, 8030 bytes); the oldest are
  // beyond the 128 entries of a seeded 4 KiB table.
  for (int i = 0; i < 165; ++i) {
    enc.encode({{"x-old-" + std::to_string(i), "value-" + std::to_string(i)}});
  }
  HpackDecoder dec;
  dec.resetUnknown();
  EXPECT_EQ(dec.tableSize(), 4096u);
  // x-old-5 is still in the encoder's table (an indexed reference), beyond
  // ours: an error and a reseed at twice the size, never a wrong value.
  Headers h{{":status", "200"}, {"x-new", "1"}, {"x-old-5", "value-5"}};
  Decoded d = decode(dec, enc.encode(h));
  EXPECT_FALSE(d.ok);
  expectNeverWrong(d, h, "first");
  EXPECT_EQ(dec.tableSize(), 8192u);
  EXPECT_EQ(dec.seedings(), 2u);
  // Now the reference lands on a placeholder.
  h = {{":status", "200"}, {"x-old-6", "value-6"}};
  d = decode(dec, enc.encode(h));
  EXPECT_TRUE(d.ok);
  expectNeverWrong(d, h, "second");
  EXPECT_EQ(d.unknown(), 1u);
  // And resumes once 8 KiB of new entries evicted the rest.
  HeaderGen gen(7);
  for (int i = 0; i < 400 && !dec.synchronised(); ++i) {
    h = gen.any();
    d = decode(dec, enc.encode(h));
    expectNeverWrong(d, h, "block " + std::to_string(i));
    EXPECT_TRUE(d.ok);
  }
  EXPECT_TRUE(dec.synchronised());
  for (int i = 0; i < 50; ++i) {
    h = gen.any();
    d = decode(dec, enc.encode(h));
    expectNeverWrong(d, h, "after " + std::to_string(i));
    expectStaticNamesExact(d, h, "after " + std::to_string(i));
  }
}

TEST(HpackResync, SeedingIsBounded) {
  Deflater enc(1 << 20);
  enc.changeTableSize(1 << 20);
  HpackDecoder dec;
  dec.setSettingsTableSize(1 << 20);
  Headers h{{"x-big", std::string(100, 'b')}};
  ASSERT_TRUE(decode(dec, enc.encode(h)).ok);
  EXPECT_EQ(dec.tableSize(), 1u << 20);  // the size update was seen
  dec.resetUnknown();
  EXPECT_EQ(dec.tableSize(), HpackDecoder::kMaxSeedTableSize);
  // Larger than the seeded table: never wrong; more placeholders are never
  // added past the bound.
  for (int i = 0; i < 3000; ++i) enc.encode({{"x-fill", std::to_string(i)}});
  Decoded d = decode(dec, enc.encode(h));
  expectNeverWrong(d, h, "big");
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(dec.tableSize(), HpackDecoder::kMaxSeedTableSize);
}

// (4): bytes lost inside a header block.
TEST(HpackResync, GapInsideABlockLosesTheTableThenRecovers) {
  HeaderGen gen(99);
  Deflater enc;
  HpackDecoder dec;
  for (int i = 0; i < 30; ++i) {
    Headers h = gen.any();
    Decoded d = decode(dec, enc.encode(h));
    ASSERT_TRUE(d.ok);
    ASSERT_EQ(d.unknown(), 0u);
    expectNeverWrong(d, h, "before");
  }
  ASSERT_TRUE(dec.synchronised());
  Bytes cut = enc.encode(gen.any());
  Collect c;
  dec.feed(std::span<const uint8_t>(cut).subspan(0, cut.size() / 2), c);
  dec.resetUnknown();  // the rest of the block was lost
  EXPECT_FALSE(dec.synchronised());
  EXPECT_FALSE(dec.inBlock());
  size_t unknown = 0;
  for (int i = 0; i < 300; ++i) {
    Headers h = gen.any();
    Decoded d = decode(dec, enc.encode(h));
    expectNeverWrong(d, h, "after " + std::to_string(i));
    EXPECT_TRUE(d.ok);
    unknown += d.unknown();
  }
  EXPECT_GT(unknown, 0u);
  EXPECT_TRUE(dec.synchronised());
}

// (5): random header lists, a random encoder table size, the capture cut at
// a random block and random gaps inside blocks.
TEST(HpackResync, RandomCutsAndGapsNeverDecodeWrongAndResume) {
  const uint32_t sizes[] = {0, 256, 1024, 4096, 8192, 16384};
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    HeaderGen gen(seed);
    std::mt19937& rng = gen.rng();
    const uint32_t table = sizes[rng() % std::size(sizes)];
    Deflater enc(table);
    enc.changeTableSize(table);
    HpackDecoder dec;
    // The receiver's SETTINGS are seen when the capture starts at the
    // beginning; a mid-way start misses them.
    const size_t cut = rng() % 3 == 0 ? 0 : rng() % 200;
    if (cut == 0) dec.setSettingsTableSize(table);
    const size_t blocks = cut + 1400;
    const size_t last_gap = cut + 200;  // then long enough to resume
    for (size_t i = 0; i < blocks; ++i) {
      Headers h = gen.any();
      Bytes b = enc.encode(h);
      if (i < cut) continue;  // before the capture
      if (i == cut && cut > 0) dec.resetUnknown();
      const std::string where = "seed " + std::to_string(seed) + " table " + std::to_string(table) +
                                " cut " + std::to_string(cut) + " block " + std::to_string(i);
      if (i < last_gap && rng() % 40 == 0) {
        Collect c;  // a gap inside this block
        const size_t keep = rng() % (b.size() + 1);
        dec.feed(std::span<const uint8_t>(b).subspan(0, keep), c);
        for (const Field& f : c.fields) {  // whatever came out is right too
          if (f.known) {
            bool found = false;
            for (const auto& [n, v] : h) found |= n == f.name && v == f.value;
            EXPECT_TRUE(found) << where;
          }
        }
        dec.resetUnknown();
        continue;
      }
      // The claim holds when the assumed size is not below the encoder's.
      const bool was_synchronised = dec.synchronised() && dec.tableSize() >= table;
      Decoded d = decode(dec, b, 1 + rng() % 64);
      expectNeverWrong(d, h, where);
      if (was_synchronised) expectStaticNamesExact(d, h, where);
      if (::testing::Test::HasFailure()) return;
    }
    // An encoder that never inserts (table 0, its size update missed) never
    // evicts the placeholders: fields still decode exactly, but
    // synchronisation is not claimed.
    if (table > 0 || cut == 0) {
      EXPECT_TRUE(dec.synchronised()) << "seed " << seed << " table " << table << " cut " << cut;
    }
  }
}

// ---- through the parser -----------------------------------------------------

struct Truth {
  std::string method, path, host, ua, content_type;
  int status = 0;
};

// A connection with many streams, joined after `cut` of them, with lost
// bytes inside some header blocks of the first `gaps_until` streams. Every
// record agrees with what was sent, or leaves the field empty and says why.
TEST(Http2HpackResync, RandomConnectionsNeverRecordWrongValues) {
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    HeaderGen gen(1000 + seed);
    std::mt19937& rng = gen.rng();
    Deflater cd, sd;
    const uint32_t streams = 700;
    const uint32_t cut = rng() % 60;  // streams before the capture
    const uint32_t gaps_until = cut + 100;
    std::map<uint32_t, Truth> truth;
    RecordingSink sink;
    Http2Parser parser(sink);
    if (cut > 0) parser.startMidstream();
    uint64_t ts = 1;
    bool first = true;
    for (uint32_t k = 0; k < streams; ++k) {
      const uint32_t sid = 2 * k + 1;
      Headers rq = gen.request();
      Headers rs = gen.response();
      Bytes hq = headers(sid, cd.encode(rq), kEndHeaders | kEndStream);
      Bytes hs = headers(sid, sd.encode(rs), kEndHeaders);
      Bytes body = data(sid, 10, kEndStream);
      if (k < cut) continue;
      Truth& t = truth[sid];
      for (const auto& [n, v] : rq) {
        if (n == ":method") t.method = v;
        if (n == ":path") t.path = v;
        if (n == ":authority") t.host = v;
        if (n == "user-agent") t.ua = v;
        if (n == "content-type") t.content_type = v;
      }
      t.status = std::stoi(rs[0].second);
      if (first && cut == 0) hq = cat({preface(), hq});
      first = false;
      const bool gap = k < gaps_until && rng() % 25 == 0;
      const Role side = rng() % 2 ? Role::kClient : Role::kServer;
      Bytes& hit = side == Role::kClient ? hq : hs;
      if (gap && hit.size() > 12) {
        const size_t keep = 10 + rng() % (hit.size() - 11);  // inside the block
        parser.onData(side, std::span<const uint8_t>(hit).subspan(0, keep), ts);
        parser.onGap(side, hit.size() - keep, ts);
        hit.clear();
      }
      parser.onData(Role::kClient, hq, ts++);
      parser.onData(Role::kServer, cat({hs, body}), ts++);
    }
    parser.finish(ts);
    const std::string where = "seed " + std::to_string(seed) + " cut " + std::to_string(cut);
    size_t unknown_records = 0;
    for (const HttpRecord& r : sink.records) {
      ASSERT_TRUE(truth.count(r.stream_id)) << where << " sid " << r.stream_id;
      const Truth& t = truth[r.stream_id];
      const bool may_lack = r.flags & (kFlagHpackUnknown | kFlagGap | kFlagHpackError);
      auto check = [&](const std::string& got, const std::string& want, const char* what) {
        if (got == want) return;
        EXPECT_TRUE(got.empty() && may_lack)
            << where << " sid " << r.stream_id << " " << what << ": '" << got << "' vs '" << want
            << "' flags " << r.flags;
      };
      check(r.method, t.method, "method");
      check(r.path + (r.query.empty() ? "" : "?" + r.query), t.path, "path");
      check(r.host, t.host, "host");
      check(r.user_agent, t.ua, "user-agent");
      check(r.content_type, t.content_type, "content-type");
      if (r.status != t.status) {
        EXPECT_TRUE(r.status == 0 && may_lack) << where << " sid " << r.stream_id;
      }
      if (r.flags & kFlagHpackUnknown) ++unknown_records;
      // Streams well after the last gap decode exactly.
      if (r.stream_id > 2 * (gaps_until + 350)) {
        EXPECT_EQ(r.flags, 0u) << where << " sid " << r.stream_id;
      }
    }
    EXPECT_EQ(sink.records.size(), truth.size()) << where;
    const Http2Stats& st = parser.stats();
    if (cut > 0) {
      EXPECT_GT(unknown_records, 0u) << where;
    }
    for (Role role : {Role::kClient, Role::kServer}) {
      const Http2HpackSync& h = parser.hpackSync(role);
      EXPECT_TRUE(h.synchronised) << where;
      if (h.losses > 0) {
        EXPECT_EQ(h.resumes, h.losses) << where;
        EXPECT_GT(h.resumed_after_bytes, 0u) << where;
        EXPECT_LE(h.resumed_after_exchanges, st.exchanges) << where;
      }
    }
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(Http2HpackResync, MidstreamRecordsWhenExactDecodingResumed) {
  HeaderGen gen(5);
  Deflater cd, sd;
  for (int i = 0; i < 30; ++i) {  // before the capture
    cd.encode(gen.request());
    sd.encode(gen.response());
  }
  RecordingSink sink;
  Http2Parser parser(sink);
  parser.startMidstream();
  EXPECT_FALSE(parser.hpackSync(Role::kClient).synchronised);
  EXPECT_FALSE(parser.hpackSync(Role::kServer).synchronised);
  EXPECT_EQ(parser.hpackSync(Role::kClient).losses, 1u);
  uint64_t client_bytes = 0;
  uint64_t resumed_at_bytes = 0;
  uint64_t resumed_at_exchanges = 0;
  for (uint32_t sid = 61; sid < 661; sid += 2) {
    Bytes q = headers(sid, cd.encode(gen.request()), kEndHeaders | kEndStream);
    client_bytes += q.size();
    parser.onData(Role::kClient, q, sid);
    parser.onData(
        Role::kServer,
        cat({headers(sid, sd.encode(gen.response()), kEndHeaders), data(sid, 5, kEndStream)}), sid);
    if (resumed_at_bytes == 0 && parser.hpackSync(Role::kClient).synchronised) {
      resumed_at_bytes = client_bytes;
      resumed_at_exchanges = sink.records.size() - 1;  // this stream is emitted by now
    }
  }
  const Http2HpackSync& c = parser.hpackSync(Role::kClient);
  EXPECT_TRUE(c.synchronised);
  EXPECT_EQ(c.resumes, 1u);
  EXPECT_EQ(c.resumed_after_bytes, resumed_at_bytes);
  EXPECT_EQ(c.resumed_after_exchanges, resumed_at_exchanges);
  EXPECT_TRUE(parser.hpackSync(Role::kServer).synchronised);
  EXPECT_EQ(parser.stats().hpack_errors, 0u);
  EXPECT_GT(parser.stats().hpack_unknown_fields, 0u);
}

TEST(Http2HpackResync, UnknownMethodIsFlaggedAndLeftEmpty) {
  // Before the capture the client indexed ":method: PUT" and its authority.
  Deflater cd, sd;
  Headers put{{":method", "PUT"}, {":authority", "a.example"}, {":path", "/old"}};
  cd.encode(put);
  put[2].second = "/new";
  RecordingSink sink;
  Http2Parser parser(sink);
  parser.startMidstream();
  parser.onData(Role::kClient,
                cat({headers(1, cd.encode(put), kEndHeaders), data(1, 4, kEndStream)}), 1);
  parser.onData(
      Role::kServer,
      cat({headers(1, sd.encode({{":status", "201"}}), kEndHeaders | kEndStream), ping()}), 2);
  parser.finish(3);
  ASSERT_EQ(sink.records.size(), 1u);
  const HttpRecord& r = sink.records[0];
  EXPECT_EQ(r.method, "");    // unknown, not guessed
  EXPECT_EQ(r.host, "");      // unknown too
  EXPECT_EQ(r.path, "/new");  // :path is never indexed by nghttp2: a literal
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.request_body_bytes, 4u);
  EXPECT_EQ(r.flags, kFlagHpackUnknown);
}

TEST(Http2HpackResync, UnknownStatusIsNotTakenAsFinal) {
  // Before the capture the server indexed ":status: 103" (an interim
  // status): its reference is unknown, so the next block's :status is the
  // final one, not trailers.
  Deflater cd, sd;
  sd.encode({{":status", "103"}, {"link", "</s.css>"}});
  RecordingSink sink;
  Http2Parser parser(sink);
  parser.startMidstream();
  parser.onData(
      Role::kClient,
      cat({headers(5, cd.encode({{":method", "GET"}, {":path", "/x"}}), kEndHeaders | kEndStream),
           ping()}),
      1);
  parser.onData(
      Role::kServer,
      cat({headers(5, sd.encode({{":status", "103"}, {"link", "</s.css>"}}), kEndHeaders),
           headers(5, sd.encode({{":status", "200"}}), kEndHeaders), data(5, 3, kEndStream)}),
      2);
  parser.finish(3);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].status, 200);
  EXPECT_EQ(sink.records[0].interim_status, 0);  // unknown, not guessed
  EXPECT_EQ(sink.records[0].method, "GET");
  EXPECT_EQ(sink.records[0].flags, kFlagHpackUnknown);
}

}  // namespace
}  // namespace l7tap::h2test
