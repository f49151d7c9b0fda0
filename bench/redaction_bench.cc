// What redaction adds per HTTP record (parsers call HttpRecord::redact on
// each one they hand out): a record without a query, one with a typical
// query, one with user info in Host.
#include <benchmark/benchmark.h>

#include <string>

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
BENCHMARK(BM_RedactNoQuery);
BENCHMARK(BM_RedactQuery);
BENCHMARK(BM_RedactUserinfo);

}  // namespace
}  // namespace l7tap
