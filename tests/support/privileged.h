// Tests that need root, BPF or network namespaces skip with a reason where
// those are missing, unless L7TAP_REQUIRE_PRIVILEGED is set (CI sets it):
// then a missing privilege fails the test instead of hiding it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace l7tap::testing {

/// Empty when the test can run as root; otherwise why not.
inline std::string missingRoot() {
  if (geteuid() != 0) return "needs root (BPF, network namespaces)";
  return {};
}

inline bool privilegedRequired() {
  const char* v = std::getenv("L7TAP_REQUIRE_PRIVILEGED");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

}  // namespace l7tap::testing

/// Skips the current test (or fails it under L7TAP_REQUIRE_PRIVILEGED) when
/// `reason` is not empty.
#define L7TAP_SKIP_UNLESS(reason_expr)                                                          \
  do {                                                                                          \
    const std::string l7tap_reason = (reason_expr);                                             \
    if (!l7tap_reason.empty()) {                                                                \
      if (::l7tap::testing::privilegedRequired()) {                                             \
        FAIL() << "L7TAP_REQUIRE_PRIVILEGED is set but this test cannot run: " << l7tap_reason; \
      }                                                                                         \
      GTEST_SKIP() << l7tap_reason;                                                             \
    }                                                                                           \
  } while (0)
