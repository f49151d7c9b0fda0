// What redaction adds per HTTP record (parsers call HttpRecord::redact on
// each one they hand out): a record without a query, one with a typical
// query, one with user info in Host; and --redact-path patterns, 0, 4 and
// 64 of them, with the path matched by none or by the last.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "parsers/common/records.h"

namespace l7tap {
namespace {

void redactLoop(benchmark::State& state, const char* query, const char* host) {
  const RedactionPolicy policy;
  HttpRecord r;
  r.method = "GET";
  r.path = "/api/v1/users/42/orders";
  for (auto _ : state) {
    // assign() reuses the strings' capacity, as a parser's record slot does.
    r.query.assign(query);
    r.host.assign(host);
    r.flags = 0;
    r.redact(policy, 2048);
    benchmark::DoNotOptimize(r.query.data());
  }
}

void BM_RedactNoQuery(benchmark::State& state) { redactLoop(state, "", "api.example.com"); }
void BM_RedactQuery(benchmark::State& state) {
  redactLoop(state, "token=s3cr3t&user=bob&page=2&sort=created_at%20desc", "api.example.com");
}
void BM_RedactUserinfo(benchmark::State& state) {
  redactLoop(state, "", "alice:pa55@api.example.com:8080");
}
// `count` patterns of the path's five segments that differ from it only in
// their first literal: literals are compared last first, so every literal
// of every pattern is compared, the most a pattern costs without matching.
// With `match`, the last one matches and the path is rewritten each time.
RedactionPolicy pathPolicy(int64_t count, bool match) {
  RedactionPolicy policy;
  for (int64_t i = 0; i < count; ++i) {
    const std::string first = match && i == count - 1 ? "api" : "api" + std::to_string(i);
    policy.path_patterns.push_back("/" + first + "/v1/users/*/orders");
  }
  return policy;
}

void pathLoop(benchmark::State& state, bool match) {
  const RedactionPolicy policy = pathPolicy(state.range(0), match);
  HttpRecord r;
  r.method = "GET";
  r.host = "api.example.com";
  for (auto _ : state) {
    r.path.assign("/api/v1/users/42/orders");
    r.flags = 0;
    r.redact(policy, 2048);
    benchmark::DoNotOptimize(r.path.data());
  }
  state.SetLabel(r.path);
}

void BM_RedactPath(benchmark::State& state) { pathLoop(state, false); }
void BM_RedactPathMatch(benchmark::State& state) { pathLoop(state, true); }

BENCHMARK(BM_RedactNoQuery);
BENCHMARK(BM_RedactQuery);
BENCHMARK(BM_RedactUserinfo);
BENCHMARK(BM_RedactPath)->Arg(0)->Arg(4)->Arg(64);
BENCHMARK(BM_RedactPathMatch)->Arg(4)->Arg(64);

}  // namespace
}  // namespace l7tap
