// Replays a pcap or pcapng file through the pipeline, applying the same
// payload window the kernel program would.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "daemon/capture_policy.h"
#include "daemon/packet_decoder.h"
#include "daemon/pipeline.h"

struct pcap;  // libpcap's pcap_t

namespace l7tap {

struct ReplayStats {
  uint64_t packets = 0;
  uint64_t captured_bytes = 0;  ///< bytes of packet data in the file
  uint64_t by_result[kDecodeResultCount]{};
};

/// A whole capture in memory, for benchmarks and tests that replay the same
/// packets many times without file reading in the measurement.
struct LoadedCapture {
  int dlt = 0;
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint64_t> ts_ns;
  uint64_t bytes = 0;
};
/// Reads every packet of `path`; false (with `error`) if it cannot be opened.
bool loadCapture(const std::string& path, LoadedCapture& out, std::string& error);

class PcapSource {
 public:
  PcapSource() = default;
  ~PcapSource();
  PcapSource(const PcapSource&) = delete;
  PcapSource& operator=(const PcapSource&) = delete;

  /// Opens `path` (pcap or pcapng, any supported link type). On failure
  /// returns false and sets `error` to one line naming the problem.
  bool open(const std::string& path, std::string& error);
  /// Feeds every packet to `pipeline`. Returns false on a read error (for
  /// example a truncated file) with `error` set; packets read before it
  /// have been fed. `progress`, if set, is called now and then with the
  /// file offset reached and the file size.
  /// `policy` decides what of each segment is copied, as the kernel would.
  /// `keep_going`, if set, is asked now and then; false ends the replay early
  /// (true is returned: the file itself was fine).
  bool replay(Pipeline& pipeline, CapturePolicy& policy, ReplayStats& stats, std::string& error,
              const std::function<void(uint64_t, uint64_t)>& progress = {},
              const std::function<bool()>& keep_going = {});

 private:
  ::pcap* pcap_ = nullptr;
  int dlt_ = 0;
  uint64_t file_size_ = 0;
};

}  // namespace l7tap
