// The registry's decision rules, which keep detection in the order it always
// had whatever order protocols are registered in.
#include "parsers/common/protocol.h"

#include <gtest/gtest.h>

#include "parsers/protocols/standard_protocols.h"

namespace l7tap {
namespace {

class Named final : public Protocol {
 public:
  explicit Named(std::string_view name, std::string_view upgrade = {})
      : name_(name), upgrade_(upgrade) {}
  std::string_view name() const override { return name_; }
  std::unique_ptr<ProtocolParser> makeParser(const ParserStart&) const override { return {}; }
  bool takesUpgrade(std::string_view token) const override {
    return !upgrade_.empty() && token == upgrade_;
  }

 private:
  std::string_view name_, upgrade_;
};

std::span<const uint8_t> bytesOf(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ProtocolRegistry, RankDecidesNotRegistrationOrder) {
  ProtocolRegistry r;
  const size_t late = r.add(std::make_unique<Named>("late"));
  const size_t early = r.add(std::make_unique<Named>("early"));
  r.addStartDetector(20, late, [](std::span<const uint8_t>, const StartContext&) {
    return Detected{Match::kYes, Sender::kServer};
  });
  r.addStartDetector(10, early, [](std::span<const uint8_t> b, const StartContext&) {
    return Detected{b.empty() ? Match::kNeedMore : Match::kYes, Sender::kClient};
  });
  auto found = r.detectStart(bytesOf("x"), {});
  EXPECT_EQ(found.match, Match::kYes);
  EXPECT_EQ(found.protocol, early);
  EXPECT_EQ(found.sender, Sender::kClient);
  // A need-more ranked first does not hold back a later yes.
  found = r.detectStart({}, {});
  EXPECT_EQ(found.match, Match::kYes);
  EXPECT_EQ(found.protocol, late);
  EXPECT_EQ(r.at(late).name(), "late");
}

TEST(ProtocolRegistry, NeedMoreUnlessAllSayNo) {
  ProtocolRegistry r;
  const size_t p = r.add(std::make_unique<Named>("p"));
  r.addStartDetector(10, p, [](std::span<const uint8_t> b, const StartContext&) {
    return Detected{matchPrefix({reinterpret_cast<const char*>(b.data()), b.size()}, "ABC")};
  });
  EXPECT_EQ(r.detectStart(bytesOf("AB"), {}).match, Match::kNeedMore);
  EXPECT_EQ(r.detectStart(bytesOf("ABX"), {}).match, Match::kNo);
  EXPECT_EQ(r.detectStart(bytesOf("ABCD"), {}).match, Match::kYes);
}

TEST(ProtocolRegistry, UpgradeTargetAndBoundaries) {
  ProtocolRegistry r;
  r.add(std::make_unique<Named>("a"));
  const size_t b = r.add(std::make_unique<Named>("b", "b-token"));
  EXPECT_EQ(r.upgradeTarget("b-token"), static_cast<int>(b));
  EXPECT_EQ(r.upgradeTarget("other"), -1);
  EXPECT_FALSE(r.findBoundary(bytesOf("x"), bytesOf("x")).boundary.found);
  r.addBoundaryDetector(5, b, [](std::span<const uint8_t> chunk, std::span<const uint8_t>) {
    return Boundary{!chunk.empty(), Sender::kUnknown, true};
  });
  const auto found = r.findBoundary(bytesOf("x"), bytesOf("x"));
  EXPECT_TRUE(found.boundary.found);
  EXPECT_EQ(found.protocol, b);
}

TEST(ProtocolRegistry, StandardProtocolsInSummaryOrder) {
  const ProtocolRegistry r = standardProtocols();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.at(0).name(), "http/1");
  EXPECT_EQ(r.at(1).name(), "h2");
  EXPECT_EQ(r.at(2).name(), "tls");
  EXPECT_EQ(r.upgradeTarget("h2c"), 1);
  // The HTTP/2 preface is recognised before anything else could claim it.
  const auto found = r.detectStart(bytesOf("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), {});
  EXPECT_EQ(found.match, Match::kYes);
  EXPECT_EQ(found.protocol, 1u);
  EXPECT_EQ(r.detectStart(bytesOf("PRI * HTTP/2"), {}).match, Match::kNeedMore);
}

}  // namespace
}  // namespace l7tap
