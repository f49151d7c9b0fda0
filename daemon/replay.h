// The one replay loop: packets from a capture, the packet decoder (the
// kernel's parser), replay's capture (the kernel's decisions), the pipeline.
// `l7tap replay`, the benchmarks and the tests all run it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "daemon/capture_policy.h"
#include "daemon/packet_decoder.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "defrag/ip_defragmenter.h"

namespace l7tap {

struct ReplayStats {
  uint64_t packets = 0;
  uint64_t captured_bytes = 0;               ///< bytes of packet data in the file
  uint64_t by_result[kDecodeResultCount]{};  ///< per frame: kFragment counts fragments
  /// IP fragments (the frames counted as kFragment) put back together.
  DefragStats defrag;
  /// What the rebuilt datagrams decoded to (kSegment: fed as any other).
  uint64_t reassembled_by_result[kDecodeResultCount]{};
  uint64_t defrag_incomplete = 0;  ///< datagrams still missing fragments at a capture's end
};

struct ReplayOptions {
  uint32_t window = 0;           ///< payload bytes copied per segment, 0: unlimited
  bool capture_control = false;  ///< the capture follows the flow table's hints
};

class Replay final : private SegmentReceiver {
 public:
  /// Feeds `pipeline` (which must outlive this object), and with capture
  /// control wires the capture into its flow table until destroyed.
  Replay(Pipeline& pipeline, const ReplayOptions& options);
  ~Replay() override;
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  /// Replays every packet of `source`. Returns false on a read error (for
  /// example a truncated file) with `error` set; packets read before it
  /// have been fed. `progress`, if set, is called now and then with the
  /// file offset reached and the file size. `keep_going`, if set, is asked
  /// now and then; false ends the replay early (true is returned: the file
  /// itself was fine).
  bool run(PcapSource& source, std::string& error,
           const std::function<void(uint64_t, uint64_t)>& progress = {},
           const std::function<bool()>& keep_going = {});
  /// Replays a capture held in memory.
  void run(const LoadedCapture& capture);
  /// The capture ended (run() says so itself): datagrams still missing
  /// fragments are counted and forgotten, not completed by the next file's.
  void endOfCapture();
  /// One frame of link type `decoder`'s.
  void onFrame(const PacketDecoder& decoder, std::span<const uint8_t> frame, uint32_t wire_len,
               uint64_t ts_ns);

  const ReplayStats& stats() const { return stats_; }
  const CopyCounters& copied() const { return capture_.counters(); }
  CapturePolicy& capture() { return capture_; }

 private:
  void onSegment(const SegmentEvent& segment) override { pipeline_.onSegment(segment); }
  void onFragment(const PacketDecoder& decoder, std::span<const uint8_t> frame,
                  const l7tap_packet& fragment, uint64_t ts_ns);

  Pipeline& pipeline_;
  CapturePolicy capture_;
  bool control_;
  ReplayStats stats_;
  IpDefragmenter defrag_;
};

}  // namespace l7tap
