#include "redaction/redaction.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace l7tap {
namespace {

struct QueryCase {
  const char* name;
  std::string in;
  std::string out;
  bool changed;
};

TEST(RedactQuery, Table) {
  const std::string long_value(3000, 'v');
  const QueryCase cases[] = {
      {"empty", "", "", false},
      {"key without '='", "a", "a", false},
      {"value replaced, bare key kept", "a=1&b", "a=REDACTED&b", true},
      {"empty value kept", "a=&b=2", "a=&b=REDACTED", true},
      {"repeated keys", "id=1&id=2&id=3", "id=REDACTED&id=REDACTED&id=REDACTED", true},
      {"empty pairs", "&&a=1&&", "&&a=REDACTED&&", true},
      {"'=' in value", "a=b=c&d==", "a=REDACTED&d=REDACTED", true},
      {"percent-encoded", "q%20x=a%26b%3D&x=%ff", "q%20x=REDACTED&x=REDACTED", true},
      {"non-UTF-8", std::string("k\xff=\xfe\x80&z=\xc3"), std::string("k\xff=REDACTED&z=REDACTED"),
       true},
      {"very long value", "t=" + long_value + "&u=1", "t=REDACTED&u=REDACTED", true},
      {"already redacted", "a=REDACTED", "a=REDACTED", false},
      {"secrets", "token=s3cr3t&user=bob", "token=REDACTED&user=REDACTED", true},
  };
  for (const auto& c : cases) {
    std::string q = c.in;
    const QueryRedaction r = redactQuery(q, RedactionPolicy{});
    EXPECT_EQ(q, c.out) << c.name;
    EXPECT_EQ(r.changed, c.changed) << c.name;
    EXPECT_FALSE(r.truncated) << c.name;
  }
}

TEST(RedactQuery, KeepQueryAndAllowList) {
  std::string q = "token=s3cr3t&page=2";
  RedactionPolicy keep;
  keep.keep_query = true;
  EXPECT_FALSE(redactQuery(q, keep).changed);
  EXPECT_EQ(q, "token=s3cr3t&page=2");

  RedactionPolicy allow;
  allow.query_allow = {"page", "q%20x"};
  EXPECT_TRUE(redactQuery(q, allow).changed);
  EXPECT_EQ(q, "token=REDACTED&page=2");
  // Keys compare as sent: no decoding, no case folding.
  std::string encoded = "q%20x=1&Page=3&q x=4";
  redactQuery(encoded, allow);
  EXPECT_EQ(encoded, "q%20x=1&Page=REDACTED&q x=REDACTED");

  std::string only_allowed = "page=7";
  EXPECT_FALSE(redactQuery(only_allowed, allow).changed);
}

TEST(RedactQuery, GrowthIsBoundedByDroppingWholePairs) {
  // 2048 bytes of `a=1&` pairs would grow to 5,632: the bound cuts between pairs.
  std::string q;
  while (q.size() < 2048) q += "a=1&";
  q.pop_back();
  const QueryRedaction r = redactQuery(q, RedactionPolicy{});
  EXPECT_TRUE(r.changed);
  EXPECT_TRUE(r.truncated);
  EXPECT_LE(q.size(), RedactionLimits::kMaxQueryBytes);
  EXPECT_TRUE(q.ends_with("a=REDACTED")) << q.substr(q.size() - 20);
  EXPECT_EQ(q.find('1'), std::string::npos);
}

TEST(RedactQuery, KeepsTheCallersBound) {
  std::string q = "a=1&b=2&c=3";  // 32 bytes once redacted
  const QueryRedaction r = redactQuery(q, RedactionPolicy{}, 21);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(q, "a=REDACTED&b=REDACTED");
}

TEST(StripUserinfo, Authority) {
  struct Case {
    std::string in, out;
    bool changed;
  };
  const Case cases[] = {
      {"host", "host", false},
      {"", "", false},
      {"user:pass@host", "host", true},
      {"alice:p@ss@host:8080", "host:8080", true},
      {"user@host", "host", true},
      {"[::1]:8080", "[::1]:8080", false},
      {"u:p@[::1]:8080", "[::1]:8080", true},
  };
  for (const auto& c : cases) {
    std::string a = c.in;
    EXPECT_EQ(stripAuthorityUserinfo(a), c.changed) << c.in;
    EXPECT_EQ(a, c.out) << c.in;
  }
}

TEST(StripUserinfo, Target) {
  struct Case {
    std::string in, out;
    bool changed;
  };
  const Case cases[] = {
      {"/p", "/p", false},
      {"/redirect?to=http://a:b@c/", "/redirect?to=http://a:b@c/", false},
      {"/x/http://u:p@h/", "/x/http://u:p@h/", false},
      {"http://alice:pa55@host/", "http://host/", true},
      {"http://alice:p@55@host/p", "http://host/p", true},
      {"http://alice@host", "http://host", true},
      {"https://u:p@[::1]:8080/p", "https://[::1]:8080/p", true},
      {"http://host/p@q", "http://host/p@q", false},
      {"*", "*", false},
  };
  for (const auto& c : cases) {
    std::string t = c.in;
    EXPECT_EQ(stripTargetUserinfo(t), c.changed) << c.in;
    EXPECT_EQ(t, c.out) << c.in;
  }
}

// What no future header capture may record unless the header is named: a
// change to this list is a change of what l7tap promises not to write down.
TEST(DeniedHeaders, List) {
  for (const char* h : {"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key",
                        "X-Auth-Token", "authorization", "COOKIE"}) {
    EXPECT_TRUE(isDeniedHeader(h)) << h;
  }
  for (const char* h : {"Host", "User-Agent", "Content-Type", "Cookies", ""}) {
    EXPECT_FALSE(isDeniedHeader(h)) << h;
  }
  const std::vector<std::string_view> expected = {"authorization",
                                                  "proxy-authorization",
                                                  "cookie",
                                                  "set-cookie",
                                                  "x-api-key",
                                                  "x-auth-token",
                                                  "x-csrf-token",
                                                  "x-xsrf-token",
                                                  "x-amz-security-token",
                                                  "x-goog-api-key",
                                                  "api-key",
                                                  "proxy-authenticate",
                                                  "www-authenticate",
                                                  "x-access-token"};
  EXPECT_EQ(std::vector<std::string_view>(kDeniedHeaders.begin(), kDeniedHeaders.end()), expected);
  for (auto h : kDeniedHeaders) {
    for (char c : h) EXPECT_FALSE(c >= 'A' && c <= 'Z') << h << ": listed in lower case";
  }
}

}  // namespace
}  // namespace l7tap
