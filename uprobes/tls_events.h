// One sample of the TLS uprobes' ring buffer (uprobes/bpf/tls_abi.h), decoded
// into a view that borrows the sample: what the plaintext streams and the
// library discovery read, with every length checked first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "uprobes/bpf/tls_abi.h"

namespace l7tap {

/// What one sample was.
enum class TlsEventKind : uint8_t {
  kData,       ///< plaintext a TLS read or write moved
  kClose,      ///< the TLS session ended
  kExec,       ///< a process exec'd (only ts_ns, tgid, tid and comm are set)
  kMalformed,  ///< shorter than its header or its lengths say, or a field out of range
  kOtherKind,  ///< an event kind this daemon does not read
};

/// The fields of an event, copied out of the sample; `data` borrows it for
/// the call the sample arrived in.
struct TlsEvent {
  uint64_t ts_ns = 0;  ///< CLOCK_MONOTONIC, as the kernel wrote it
  uint64_t conn_id = 0;
  uint64_t stream_offset = 0;
  uint32_t seq = 0;
  uint32_t tgid = 0;
  uint32_t tid = 0;
  uint32_t len = 0;  ///< bytes of the stream this event stands for
  int32_t fd = -1;
  uint32_t netns_ino = 0;
  uint8_t direction = L7TAP_TLS_WRITE;
  uint8_t library = 0;
  uint8_t role = L7TAP_TLS_ROLE_UNKNOWN;
  bool tuple_known = false;
  l7tap_flow_key key{};  ///< local -> remote, valid when tuple_known
  std::string_view comm;
  std::span<const uint8_t> data;  ///< the captured bytes, size() <= len
};

/// Decodes one sample; `event` is filled for kData, kClose and kExec.
TlsEventKind decodeTlsEvent(const void* sample, size_t size, TlsEvent& event);

}  // namespace l7tap
