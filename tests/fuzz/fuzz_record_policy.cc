// records/ policy parser on arbitrary text: a value it accepts reads back
// the same from its canonical spelling, keeps every exchange exactly when it
// says so, and refuses everything else with a message; never a crash.
//
// Input: the --records value, as is.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "records/record_policy.h"

namespace {

#define check(ok)                                                   \
  do {                                                              \
    if (!(ok)) {                                                    \
      std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #ok); \
      std::abort();                                                 \
    }                                                               \
  } while (0)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  l7tap::RecordPolicy policy;
  std::string error;
  if (!l7tap::parseRecordPolicy(text, policy, error)) {
    check(!error.empty());
    check(error.find('\n') == std::string::npos || text.find('\n') != std::string_view::npos);
    return 0;
  }
  check(size <= l7tap::RecordPolicyLimits::kMaxTextBytes);
  const std::string canonical = policy.describe();
  l7tap::RecordPolicy again;
  check(l7tap::parseRecordPolicy(canonical, again, error));
  check(again.describe() == canonical);
  check(again.all == policy.all && again.errors == policy.errors &&
        again.slow_ns == policy.slow_ns && again.sample == policy.sample &&
        again.sample_below == policy.sample_below && again.sample_all == policy.sample_all);
  check(policy.slow_ns <= l7tap::RecordPolicyLimits::kMaxSlowNs);
  l7tap::ConnectionInfo conn;
  l7tap::HttpRecord record;
  record.status = 200;
  record.request_start_ns = 1;
  record.response_end_ns = 2;
  if (policy.keepsEverything()) check(policy.keeps(conn, record));
  record.status = 500;
  if (policy.errors) check(policy.keeps(conn, record));
  return 0;
}
