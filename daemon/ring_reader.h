// Reading the kernel program's ring buffer: each sample decoded into a
// SegmentEvent, on the kernel's clock moved to the wall clock, and pushed
// into the pipeline.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/pipeline.h"

struct ring_buffer;

namespace l7tap {

/// What one ring-buffer sample was.
enum class RingEventKind : uint8_t {
  kSegment,    ///< a segment event, decoded
  kMalformed,  ///< shorter than its header or its captured bytes say
  kOtherKind,  ///< an event kind this daemon does not read
};

/// Decodes one sample. `segment.payload` borrows `data`. Kernel timestamps
/// are CLOCK_MONOTONIC; `mono_to_real_ns` moves them to the wall clock.
RingEventKind decodeRingEvent(const void* data, size_t size, int64_t mono_to_real_ns,
                              SegmentEvent& segment);

/// Samples read, and those that were not segments (counted, never fatal:
/// either is a kernel program this daemon was not built with).
struct RingStats {
  uint64_t events_read = 0;
  uint64_t malformed = 0;
  uint64_t other_kinds = 0;
  uint64_t tunnel_lookups = 0;  ///< reads of the kernel's tunnels map
  uint64_t tunnel_missing = 0;  ///< of which found nothing (the LRU map forgot the flow)
};

/// The outer addresses of encapsulated flows (events with L7TAP_SEG_TUNNEL),
/// from the kernel's tunnels map (tc/l7tap_abi.h). The flow table keeps a
/// connection's tunnel from its first segment only, but the ring side cannot
/// tell which segment that is (the table's index is its own), so the flows
/// recently looked up are remembered here: a direct-mapped cache of
/// kCacheSlots flows, allocated at the first encapsulated event, that turns
/// the map reads into about one per connection instead of one per packet.
/// Events without the flag cost one test. A SYN without ACK reads the map
/// again (a new connection on the same 5-tuple may come through another
/// tunnel); a collision only costs a read.
class RingTunnels {
 public:
  static constexpr size_t kCacheSlots = 1024;
  /// Reads the tunnels entry of a canonical key into `out`; false when
  /// there is none.
  using Lookup = bool (*)(void* ctx, const l7tap_flow_key& canonical, l7tap_tunnel& out);

  RingTunnels() = default;
  /// Reads the BPF map `map_fd` (-1: none, every event is left unencapsulated).
  explicit RingTunnels(int map_fd) : map_fd_(map_fd) {}
  /// Reads through `lookup` (tests).
  RingTunnels(Lookup lookup, void* ctx) : lookup_(lookup), ctx_(ctx) {}
  RingTunnels(RingTunnels&&) = default;
  RingTunnels& operator=(RingTunnels&&) = default;

  /// Sets `segment.tunnel` (the packet's outer addresses, as struct
  /// l7tap_tunnel says: source and destination of this packet) when the
  /// event has L7TAP_SEG_TUNNEL and the map knows its flow; it points into
  /// this object, valid until the next call.
  void resolve(SegmentEvent& segment, RingStats& stats);

 private:
  struct Slot {
    l7tap_flow_key key{};   // canonical
    l7tap_tunnel tunnel{};  // canonical order; type NONE: the map had none
    bool used = false;
  };
  bool read(const l7tap_flow_key& canonical, l7tap_tunnel& out) const;

  Lookup lookup_ = nullptr;
  void* ctx_ = nullptr;
  int map_fd_ = -1;
  std::unique_ptr<Slot[]> slots_;
  l7tap_tunnel packet_{};  // what segment.tunnel points at
};

class RingReader {
 public:
  RingReader() = default;
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  /// Reads the ring buffer map `map_fd` into `pipeline`; the outer
  /// addresses of encapsulated flows from the tunnels map `tunnels_fd`
  /// (-1: none).
  bool open(int map_fd, Pipeline& pipeline, int64_t mono_to_real_ns, std::string& error,
            int tunnels_fd = -1);
  /// Becomes readable when the kernel wakes the reader.
  int fd() const;
  /// Pushes every queued sample into the pipeline.
  void consume();
  void close();
  const RingStats& stats() const { return stats_; }

 private:
  static int onSample(void* ctx, void* data, size_t size);

  ring_buffer* ring_ = nullptr;
  Pipeline* pipeline_ = nullptr;
  int64_t mono_to_real_ns_ = 0;
  RingTunnels tunnels_;
  RingStats stats_;
};

}  // namespace l7tap
