// A function call as the kernel reported it (struct l7tap_app_event),
// decoded from the ring's bytes, with its times on the wall clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "apptrace/bpf/apptrace_abi.h"

namespace l7tap {

struct CallEvent {
  bool entry = false;  ///< L7TAP_APP_EVENT_ENTER: the call began (end_ns is 0)
  uint16_t function = 0;
  uint8_t flags = 0;  ///< L7TAP_APP_F_*
  uint32_t tgid = 0;
  uint32_t tid = 0;
  uint64_t goid = 0;  ///< Go: the goroutine id, 0 when unknown or not Go
  uint64_t g = 0;     ///< Go: the g pointer (unique among the goroutines alive)
  uint32_t netns_ino = 0;
  uint64_t start_ns = 0;  ///< wall clock (CLOCK_REALTIME ns)
  uint64_t end_ns = 0;    ///< wall clock; 0 for an entry
  l7tap_app_io io{};
  bool conn_known = false;
  l7tap_flow_key conn{};  ///< local -> remote, as the process sends
  char comm[16] = {};     ///< NUL-terminated

  uint64_t durationNs() const { return end_ns > start_ns ? end_ns - start_ns : 0; }
  /// Unique within a run: what ties an entry to its return and a call
  /// record to the exchange record it is linked to.
  uint64_t callId() const;
};

/// Decodes one ring sample. `mono_to_real_ns` is added to the kernel's
/// CLOCK_MONOTONIC times. False for a sample of another size or kind.
bool decodeCallEvent(std::span<const uint8_t> sample, int64_t mono_to_real_ns, CallEvent& out);

}  // namespace l7tap
