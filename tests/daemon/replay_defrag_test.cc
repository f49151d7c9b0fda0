// Replay of Ethernet frames whose HTTP request travels in IP fragments
// (IPv4 and IPv6, out of order): the request is reassembled and reported as
// the pod saw it, and the summary counts the fragments.
#include <gtest/gtest.h>
#include <pcap/dlt.h>

#include <string>
#include <string_view>
#include <vector>

#include "daemon/packet_decoder.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"
#include "tests/daemon/encap_builder.h"
#include "tests/defrag/fragment_builder.h"

namespace l7tap {
namespace {

using test::Bytes;

class HttpSink final : public RecordSink {
 public:
  void onRecord(const ConnectionInfo&, const Record& record) override {
    if (const auto* h = dynamic_cast<const HttpRecord*>(&record.inner())) {
      method = h->method;
      path = h->path;
      status = h->status;
      request_body = h->request_body_bytes;
      records++;
    }
  }
  std::string method;
  std::string path;
  int status = 0;
  uint64_t request_body = 0;
  int records = 0;
};

Bytes tcp(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
          std::string_view payload) {
  Bytes b(20, 0);
  b.reserve(20 + payload.size());  // GCC 12 sees growing a 20-byte vector as an overrun
  test::put16(b, 0, sport);
  test::put16(b, 2, dport);
  for (int i = 0; i < 4; ++i) {
    b[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
    b[8 + i] = static_cast<uint8_t>(ack >> (24 - 8 * i));
  }
  b[12] = 5 << 4;
  b[13] = flags;
  test::put16(b, 14, 65535);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// The same datagram sent the other way.
Bytes reversed(Bytes ip) {
  const size_t at = ip[0] >> 4 == 4 ? 12 : 8;
  const size_t len = ip[0] >> 4 == 4 ? 4 : 16;
  for (size_t i = 0; i < len; ++i) std::swap(ip[at + i], ip[at + len + i]);
  return ip;
}

Bytes ethernet(const Bytes& ip) {
  Bytes f = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
  f.reserve(14 + ip.size());
  if (ip[0] >> 4 == 6) f[12] = 0x86, f[13] = 0xdd;
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10;

// A POST whose request is cut into fragments by `fragment` (given the whole
// IP datagram), fed last fragment first; everything else whole.
template <class Ip, class Fragment, class Link = Bytes (*)(const Bytes&)>
HttpSink replayPost(Ip ip, Fragment fragment, ReplayStats& stats, Link link = &ethernet) {
  const std::string body(3000, 'a');
  const std::string request =
      "POST /upload HTTP/1.1\r\nHost: example\r\nContent-Length: 3000\r\n\r\n" + body;
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const uint32_t c = 1000, s = 5000;
  std::vector<Bytes> frames;
  frames.push_back(link(ip(tcp(40000, 80, c, 0, kSyn, ""))));
  frames.push_back(link(reversed(ip(tcp(80, 40000, s, c + 1, kSyn | kAck, "")))));
  frames.push_back(link(ip(tcp(40000, 80, c + 1, s + 1, kAck, ""))));
  std::vector<Bytes> pieces = fragment(ip(tcp(40000, 80, c + 1, s + 1, kPsh | kAck, request)));
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) frames.push_back(link(*it));
  const uint32_t c_end = c + 1 + static_cast<uint32_t>(request.size());
  frames.push_back(link(reversed(ip(tcp(80, 40000, s + 1, c_end, kPsh | kAck, response)))));
  const uint32_t s_end = s + 1 + static_cast<uint32_t>(response.size());
  frames.push_back(link(ip(tcp(40000, 80, c_end, s_end, kFin | kAck, ""))));
  frames.push_back(link(reversed(ip(tcp(80, 40000, s_end, c_end + 1, kFin | kAck, "")))));

  HttpSink sink;
  Pipeline pipeline(sink);
  Replay replay(pipeline, {});
  const PacketDecoder decoder(DLT_EN10MB);
  uint64_t ts = 1'000'000'000;
  for (const Bytes& f : frames) {
    replay.onFrame(decoder, f, static_cast<uint32_t>(f.size()), ts);
    ts += 1'000'000;
  }
  replay.endOfCapture();
  pipeline.finish();
  stats = replay.stats();
  return sink;
}

TEST(ReplayDefrag, FragmentedIpv4RequestIsReported) {
  ReplayStats stats;
  const HttpSink sink =
      replayPost([](const Bytes& segment) { return test::ipv4Datagram(0x4242, 6, segment); },
                 [](const Bytes& whole) {
                   return test::fragmentV4(whole, {0, 1480, 2960});
                 },
                 stats);
  EXPECT_EQ(sink.records, 1);
  EXPECT_EQ(sink.method, "POST");
  EXPECT_EQ(sink.path, "/upload");
  EXPECT_EQ(sink.status, 200);
  EXPECT_EQ(sink.request_body, 3000u);
  // The fragments still count as fragment frames; the datagram as a segment.
  EXPECT_EQ(stats.by_result[static_cast<int>(DecodeResult::kFragment)], 3u);
  EXPECT_EQ(stats.defrag.fragments, 3u);
  EXPECT_EQ(stats.defrag.reassembled, 1u);
  EXPECT_EQ(stats.reassembled_by_result[static_cast<int>(DecodeResult::kSegment)], 1u);
  EXPECT_EQ(stats.defrag_incomplete, 0u);
}

TEST(ReplayDefrag, FragmentedIpv6RequestIsReported) {
  ReplayStats stats;
  const HttpSink sink =
      replayPost([](const Bytes& segment) { return test::ipv6Datagram({}, 6, segment); },
                 [](const Bytes& whole) {
                   return test::fragmentV6(whole, 40, 77, {0, 1232, 2464});
                 },
                 stats);
  EXPECT_EQ(sink.records, 1);
  EXPECT_EQ(sink.method, "POST");
  EXPECT_EQ(sink.status, 200);
  EXPECT_EQ(sink.request_body, 3000u);
  EXPECT_EQ(stats.defrag.reassembled, 1u);
}

TEST(ReplayDefrag, FragmentsInsideVxlanAreReassembledPerTunnel) {
  ReplayStats stats;
  const HttpSink sink = replayPost(
      [](const Bytes& segment) { return test::ipv4Datagram(0x4244, 6, segment); },
      [](const Bytes& whole) {
        return test::fragmentV4(whole, {0, 1480, 2960});
      },
      stats,
      [](const Bytes& ip) {
        namespace encap = testing::encap;
        return encap::eth(0x0800, encap::outerIp(false, 17, encap::vxlan(42, ethernet(ip))));
      });
  EXPECT_EQ(sink.records, 1);
  EXPECT_EQ(sink.method, "POST");
  EXPECT_EQ(sink.request_body, 3000u);
  EXPECT_EQ(stats.defrag.reassembled, 1u);
}

TEST(ReplayDefrag, OverlappingFragmentsLoseTheRequestAndAreCounted) {
  ReplayStats stats;
  const HttpSink sink =
      replayPost([](const Bytes& segment) { return test::ipv4Datagram(0x4243, 6, segment); },
                 [](const Bytes& whole) {
                   auto pieces = test::fragmentV4(whole, {0, 1480, 2960});
                   // An evasion's extra copy: [1472, 2960) overlaps the first fragment.
                   pieces.push_back(test::fragmentV4(whole, {0, 1472, 2960}).at(1));
                   return pieces;
                 },
                 stats);
  EXPECT_EQ(stats.defrag.overlaps_dropped, 1u);
  EXPECT_EQ(stats.defrag.reassembled, 0u);
  EXPECT_NE(sink.method, "POST");
}

TEST(ReplayDefrag, FragmentsDoNotJoinAcrossCaptures) {
  const Bytes whole = test::ipv4Datagram(9, 6, test::pattern(48, 1));
  const auto pieces = test::fragmentV4(whole, {0, 16, 32});
  auto capture = [](std::vector<Bytes> frames) {
    LoadedCapture c;
    c.dlt = DLT_EN10MB;
    for (const Bytes& ip : frames) {
      c.frames.push_back(ethernet(ip));
      c.wire_len.push_back(static_cast<uint32_t>(c.frames.back().size()));
      c.ts_ns.push_back(1'000'000'000);
    }
    return c;
  };
  HttpSink sink;
  Pipeline pipeline(sink);
  Replay replay(pipeline, {});
  replay.run(capture({pieces[0]}));
  EXPECT_EQ(replay.stats().defrag_incomplete, 1u);
  replay.run(capture({pieces[1], pieces[2]}));
  EXPECT_EQ(replay.stats().defrag.reassembled, 0u);
  EXPECT_EQ(replay.stats().defrag_incomplete, 2u);
  replay.run(capture({pieces[2], pieces[0], pieces[1]}));
  EXPECT_EQ(replay.stats().defrag.reassembled, 1u);
  EXPECT_EQ(replay.stats().defrag_incomplete, 2u);
}

}  // namespace
}  // namespace l7tap
