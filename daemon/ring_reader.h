// Reading the kernel program's ring buffer: each sample decoded into a
// SegmentEvent, on the kernel's clock moved to the wall clock, and pushed
// into the pipeline.
#pragma once

#include <cstddef>
#include <cstdint>
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
};

class RingReader {
 public:
  RingReader() = default;
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  /// Reads the ring buffer map `map_fd` into `pipeline`.
  bool open(int map_fd, Pipeline& pipeline, int64_t mono_to_real_ns, std::string& error);
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
  RingStats stats_;
};

}  // namespace l7tap
