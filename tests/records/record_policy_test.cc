// --records: what the parser accepts and refuses, which exchanges each rule
// keeps, and that the sink passes every other record.
#include "records/record_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace l7tap {
namespace {

RecordPolicy parsed(const std::string& text) {
  RecordPolicy p;
  std::string error;
  EXPECT_TRUE(parseRecordPolicy(text, p, error)) << text << ": " << error;
  return p;
}

std::string refused(const std::string& text) {
  RecordPolicy p;
  std::string error;
  EXPECT_FALSE(parseRecordPolicy(text, p, error)) << text;
  return error;
}

HttpRecord exchange(int status, uint64_t start_ns = 1000, uint64_t duration_ns = 1000) {
  HttpRecord r;
  r.method = "GET";
  r.status = status;
  r.request_start_ns = start_ns;
  r.response_start_ns = start_ns + duration_ns / 2;
  r.response_end_ns = start_ns + duration_ns;
  return r;
}

TEST(RecordPolicyParse, DefaultAndAllKeepEverything) {
  EXPECT_TRUE(RecordPolicy{}.keepsEverything());
  EXPECT_TRUE(parsed("all").keepsEverything());
  EXPECT_TRUE(parsed("sample:1").keepsEverything());
  EXPECT_FALSE(parsed("errors").keepsEverything());
  EXPECT_FALSE(parsed("sample:0.999999999").keepsEverything());
}

TEST(RecordPolicyParse, CombinedRulesReadBackTheSame) {
  for (const char* text :
       {"all", "errors", "slow:100ms", "sample:0.01", "errors,slow:100ms,sample:0.01", "slow:2s",
        "slow:1500us", "slow:7ns", "sample:0", "sample:0.5", "sample:0.000000001", "sample:1"}) {
    EXPECT_EQ(parsed(text).describe(), text);
  }
  EXPECT_EQ(parsed("slow:1000ms").describe(), "slow:1s");
  EXPECT_EQ(parsed("sample:0.50").describe(), "sample:0.5");
  EXPECT_EQ(parsed("sample:1.0").describe(), "sample:1");
  EXPECT_EQ(parsed("sample:0.01,errors").describe(), "errors,sample:0.01");
  const RecordPolicy p = parsed("errors,slow:250ms,sample:0.25");
  EXPECT_TRUE(p.errors);
  EXPECT_EQ(p.slow_ns, 250000000u);
  EXPECT_TRUE(p.sample);
  EXPECT_EQ(p.sample_below, 1ull << 62);
}

TEST(RecordPolicyParse, RefusesWhatIsNotARule) {
  EXPECT_NE(refused("").find("is not all, errors"), std::string::npos);
  refused("none");
  refused("errors,");
  refused(",errors");
  refused("Errors");
  refused("errors,errors");
  refused("all,errors");
  refused("errors,all");
  refused("slow:");
  refused("slow:100");
  refused("slow:0ms");
  refused("slow:-1ms");
  refused("slow:1.5s");
  refused("slow:100 ms");
  refused("slow:86401s");
  refused("slow:99999999999999999999s");
  refused("slow:1ms,slow:2ms");
  refused("sample:");
  refused("sample:1.1");
  refused("sample:2");
  refused("sample:-0.1");
  refused("sample:.5");
  refused("sample:0.");
  refused("sample:0.0000000001");
  refused("sample:1e-2");
  refused("sample:0.1,sample:0.2");
  refused(std::string(RecordPolicyLimits::kMaxTextBytes + 1, 'e'));
  EXPECT_NE(refused("slow:10").find("'slow:10'"), std::string::npos);
  parsed("slow:86400s");
}

TEST(RecordPolicyErrors, ServerErrorsGrpcFailuresAndBrokenExchanges) {
  const ConnectionInfo conn;
  EXPECT_FALSE(isErrorExchange(conn, exchange(200)));
  EXPECT_FALSE(isErrorExchange(conn, exchange(404)));  // the client's mistake
  EXPECT_FALSE(isErrorExchange(conn, exchange(499)));
  EXPECT_TRUE(isErrorExchange(conn, exchange(500)));
  EXPECT_TRUE(isErrorExchange(conn, exchange(503)));
  HttpRecord grpc = exchange(200);
  grpc.grpc_status = 0;
  EXPECT_FALSE(isErrorExchange(conn, grpc));
  grpc.grpc_status = 14;
  EXPECT_TRUE(isErrorExchange(conn, grpc));
  for (const uint32_t flag : {kFlagReset, kFlagNoResponse, kFlagNoRequest, kFlagHpackError,
                              kFlagHpackUnknown, kFlagOverflow, kFlagAmbiguous}) {
    HttpRecord r = exchange(200);
    r.flags = flag;
    EXPECT_TRUE(isErrorExchange(conn, r)) << flag;
  }
  // Capture artefacts and our own doing are not the exchange's failure.
  for (const uint32_t flag :
       {kFlagGap, kFlagTruncated, kFlagMidstream, kFlagUpgrade, kFlagRedacted}) {
    HttpRecord r = exchange(200);
    r.flags = flag;
    EXPECT_FALSE(isErrorExchange(conn, r)) << flag;
  }
}

TEST(RecordPolicyRules, SlowKeepsExchangesAtOrAboveTheDuration) {
  const ConnectionInfo conn;
  const RecordPolicy p = parsed("slow:100ms");
  EXPECT_FALSE(p.keeps(conn, exchange(200, 5, 99999999)));
  EXPECT_TRUE(p.keeps(conn, exchange(200, 5, 100000000)));
  EXPECT_FALSE(p.keeps(conn, exchange(500, 5, 1)));
  HttpRecord no_request = exchange(200, 0, 1000000000);
  EXPECT_FALSE(p.keeps(conn, no_request));  // no duration to compare
}

TEST(RecordPolicyRules, AnyRuleKeeps) {
  const ConnectionInfo conn;
  const RecordPolicy p = parsed("errors,slow:1ms");
  EXPECT_TRUE(p.keeps(conn, exchange(502, 5, 10)));
  EXPECT_TRUE(p.keeps(conn, exchange(200, 5, 2000000)));
  EXPECT_FALSE(p.keeps(conn, exchange(200, 5, 10)));
}

// The fraction kept is the one asked for, over many exchanges, and which
// ones is a function of the exchange alone.
TEST(RecordPolicyRules, SampleIsDeterministicAndNearItsFraction) {
  for (const double fraction : {0.01, 0.25, 0.5}) {
    const RecordPolicy p = parsed("sample:" + std::to_string(fraction).substr(0, 4));
    size_t kept = 0;
    constexpr size_t kExchanges = 200000;
    for (size_t i = 0; i < kExchanges; ++i) {
      ConnectionInfo conn;
      conn.id = i / 10;
      const HttpRecord r = exchange(200, 1000000 + (i % 10) * 7919, 500);
      const bool k = p.keeps(conn, r);
      EXPECT_EQ(k, p.keeps(conn, r));
      kept += k;
    }
    const double got = static_cast<double>(kept) / kExchanges;
    EXPECT_NEAR(got, fraction, 0.01 * fraction + 0.002) << fraction;
  }
  const ConnectionInfo conn;
  EXPECT_FALSE(parsed("sample:0").keeps(conn, exchange(200)));
  EXPECT_TRUE(parsed("sample:1").keeps(conn, exchange(200)));
}

TEST(RecordPolicyRules, HashTellsStreamsAndConnectionsApart) {
  ConnectionInfo a, b;
  a.id = 1;
  b.id = 2;
  HttpRecord r = exchange(200);
  EXPECT_NE(exchangeHash(a, r), exchangeHash(b, r));
  HttpRecord s = r;
  s.stream_id = 3;
  EXPECT_NE(exchangeHash(a, r), exchangeHash(a, s));
}

struct Collect final : RecordSink {
  void onRecord(const ConnectionInfo&, const Record& record) override {
    kinds.push_back(typeid(record.inner()) == typeid(HttpRecord) ? "http" : "other");
  }
  std::vector<std::string> kinds;
};

// A wrapper adds fields on the way (identity/): the policy reads the
// exchange inside it.
struct Wrapper final : Record {
  explicit Wrapper(const Record& r) : inner_(r) {}
  void visit(const ConnectionInfo& c, FieldVisitor& v) const override { inner_.visit(c, v); }
  void appendMessage(std::string& out, const ConnectionInfo& c) const override {
    inner_.appendMessage(out, c);
  }
  const Record& inner() const override { return inner_.inner(); }
  const Record& inner_;
};

TEST(RecordPolicySinkTest, DropsOnlyExchangesAndCountsThem) {
  Collect out;
  RecordPolicySink sink(parsed("errors"), out);
  const ConnectionInfo conn;
  ConnRecord c;
  sink.onRecord(conn, exchange(200));
  sink.onRecord(conn, exchange(500));
  sink.onRecord(conn, Wrapper(exchange(200)));
  sink.onRecord(conn, Wrapper(exchange(504)));
  sink.onRecord(conn, c);
  EXPECT_EQ(out.kinds, (std::vector<std::string>{"http", "http", "other"}));
  EXPECT_EQ(sink.dropped(), 2u);
  EXPECT_EQ(sink.kept(), 2u);
}

}  // namespace
}  // namespace l7tap
