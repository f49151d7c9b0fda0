// http_route from real-looking request targets: identifiers collapse to
// {id}, fixed parts of the API stay, patterns win, and the output is bounded.
#include "metrics/route.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace l7tap::metrics {
namespace {

TEST(RouteTest, IdentifierLikeSegmentsCollapse) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/", "/"},
      {"", "/"},
      {"/healthz", "/healthz"},
      {"/api/v1/users", "/api/v1/users"},
      {"/api/v2/users/12345", "/api/v2/users/{id}"},
      {"/api/user/10", "/api/user/{id}"},
      {"/api/users/0/orders/987654321", "/api/users/{id}/orders/{id}"},
      {"/orders/550e8400-e29b-41d4-a716-446655440000", "/orders/{id}"},
      {"/orders/550E8400-E29B-41D4-A716-446655440000/items", "/orders/{id}/items"},
      {"/blobs/sha256/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
       "/blobs/sha256/{id}"},
      {"/commits/9fceb02d0ae598e95dc970b74767f19372d61af8", "/commits/{id}"},
      {"/objects/deadbeefcafebabe", "/objects/{id}"},
      {"/objects/deadbeef", "/objects/deadbeef"},  // 8 hex: too short to be sure
      {"/customers/cus_9s8d7f6g5h4j3k2l", "/customers/{id}"},
      {"/share/dGhpcyBpcyBhIHRva2Vu", "/share/{id}"},
      {"/reset/aB3dE5fG7hJ9kL1mN", "/reset/{id}"},
      {"/v/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0"
       "THsR8U",
       "/v/{id}"},
      {"/users/alice@example.com/profile", "/users/{id}/profile"},
      {"/search/hello%20world", "/search/{id}"},
      {"/reports/2026-12-05/daily", "/reports/{id}/daily"},
      {"/releases/1.2.3/notes", "/releases/{id}/notes"},
      {"/oauth2/token", "/oauth2/token"},
      {"/api/configuration-v2/settings", "/api/configuration-v2/settings"},
      {"/ipv4/rules", "/ipv4/rules"},
      {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Check"},
      {"/helloworld.Greeter/SayHello", "/helloworld.Greeter/SayHello"},
      {"/static/js/main.js", "/static/js/main.js"},
      {"/images/photo-large.png", "/images/photo-large.png"},
      {"/caf\xc3\xa9/menu", "/{id}/menu"},  // not printable ASCII: user text
      {"/api/users/42?token=secret&x=1", "/api/users/{id}"},
      {"/page#section-2", "/page"},
      {"/?q=1", "/"},
      {"//api///users//7/", "/api/users/{id}"},
      {"*", "*"},
      {"http://example.com/api/users/7?x=1", "/api/users/{id}"},
      {"http://example.com", "/"},
      {"https://user:pw@example.com:8443/a/b", "/a/b"},
      {"example.com:443", "{other}"},
  };
  RouteTemplater templater;
  for (const auto& [path, route] : cases) {
    EXPECT_EQ(templater.route(path), route) << path;
  }
}

TEST(RouteTest, ClassifiesSegments) {
  for (const char* id :
       {"0", "42", "-1", "3.14", "2026-12-05", "00ff00ff00ff00ff",
        "550e8400-e29b-41d4-a716-446655440000", "a@b", "x%2Fy", "dGhpcyBpcyBhIHRva2Vu"}) {
    EXPECT_TRUE(isIdentifierSegment(id)) << id;
  }
  for (const char* fixed : {"api", "v1", "v2beta1", "users", "healthz", "oauth2", "x509",
                            "index.html", "well-known", ".well-known", "openid-configuration",
                            "grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo"}) {
    EXPECT_FALSE(isIdentifierSegment(fixed)) << fixed;
  }
  EXPECT_TRUE(isIdentifierSegment(std::string(65, 'z')));
  EXPECT_FALSE(isIdentifierSegment(std::string(64, 'z')));
}

TEST(RouteTest, PatternsTakePrecedenceInOrder) {
  RouteTemplater templater({"/api/users/{user}/orders", "/api/users/me", "/static/**",
                            "/files/*/raw", "/api/*/settings", "/api/**"});
  EXPECT_EQ(templater.route("/api/users/alice/orders"), "/api/users/{user}/orders");
  EXPECT_EQ(templater.route("/api/users/42/orders?page=2"), "/api/users/{user}/orders");
  EXPECT_EQ(templater.route("/api/users/me"), "/api/users/me");
  EXPECT_EQ(templater.route("/static/css/site.css"), "/static/**");
  EXPECT_EQ(templater.route("/static"), "/static/**");
  EXPECT_EQ(templater.route("/files/report-final/raw"), "/files/*/raw");
  EXPECT_EQ(templater.route("/files/a/b/raw"), "/files/a/b/raw");  // `*` is one segment
  EXPECT_EQ(templater.route("/api/team/settings"), "/api/*/settings");
  EXPECT_EQ(templater.route("/api/anything/else/here"), "/api/**");
  EXPECT_EQ(templater.route("/other/7"), "/other/{id}");
  // A `**` pattern still matches a path longer than the segment limit.
  std::string deep = "/static";
  for (int i = 0; i < 40; ++i) deep += "/d";
  EXPECT_EQ(templater.route(deep), "/static/**");
}

TEST(RouteTest, BadPatternsAreIgnoredAndCounted) {
  MetricsLimits limits;
  limits.max_route_patterns = 2;
  RouteTemplater templater({"no-slash", "", "/a/{id}", "/b", "/c"}, limits);
  EXPECT_EQ(templater.ignoredPatterns(), 3u);
  EXPECT_EQ(templater.route("/a/x"), "/a/{id}");
  EXPECT_EQ(templater.route("/c"), "/c");
}

TEST(RouteTest, SegmentCountAndLengthAreBounded) {
  MetricsLimits limits;
  limits.max_route_segments = 4;
  limits.max_route_bytes = 32;
  RouteTemplater templater({}, limits);
  EXPECT_EQ(templater.route("/a/b/c/d"), "/a/b/c/d");
  EXPECT_EQ(templater.route("/a/b/c/d/e"), "/a/b/c/d/{tail}");
  EXPECT_EQ(templater.route("/a/b/c/d/e/f/g/h/i/j/k"), "/a/b/c/d/{tail}");
  EXPECT_EQ(templater.route("/aaaaaaaaaa/bbbbbbbbbb/cccccccccc"), "/aaaaaaaaaa/bbbbbbbbbb/{tail}");

  // Defaults: whatever the input, the route fits the limits.
  RouteTemplater defaults;
  std::string huge;
  for (int i = 0; i < 10000; ++i) huge += "/segment";
  std::string route = defaults.route(huge);
  EXPECT_LE(route.size(), MetricsLimits{}.max_route_bytes);
  EXPECT_TRUE(route.ends_with("/{tail}"));
  // The tail's room is made by dropping whole segments.
  EXPECT_EQ(templater.route("/aaaaaaaaaa/bbbbbbbbbb/cccc/dddddddddd"),
            "/aaaaaaaaaa/bbbbbbbbbb/{tail}");
}

TEST(RouteTest, WritesIntoTheCallersBuffer) {
  RouteTemplater templater({"/fixed/{x}"});
  RouteBuffer buffer;
  std::string_view r = templater.route("/users/12", buffer);
  EXPECT_EQ(r, "/users/{id}");
  EXPECT_EQ(r.data(), buffer.bytes.data());
  EXPECT_EQ(templater.route("/fixed/1", buffer), "/fixed/{x}");
}

}  // namespace
}  // namespace l7tap::metrics
