// Live capture: the TC programs loaded from the embedded skeleton, attached
// to matching interfaces (followed as they come and go), and the ring buffer
// feeding the same pipeline as replay.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/attachment.h"
#include "daemon/interface_lock.h"
#include "daemon/interface_watcher.h"
#include "daemon/pipeline.h"
#include "tc/l7tap_abi.h"

struct l7tap_tc;  // the generated skeleton
struct ring_buffer;

namespace l7tap {

struct LiveConfig {
  std::vector<std::string> interfaces;  ///< names or globs
  uint32_t window = 1024;               ///< payload bytes copied per skb
  /// Wake the reader once this many bytes are queued; 0 wakes it for every
  /// event. Between wake-ups the reader drains every `drain_interval_ms`.
  uint32_t wakeup_bytes = 256 * 1024;
  uint32_t drain_interval_ms = 2;
  uint32_t ring_bytes = 8u << 20;  ///< ring buffer size (power of two)
  uint32_t flow_entries = 65536;   ///< kernel flow map size
  /// kXdp: the XDP program alone (ingress only), else the TC programs.
  AttachMode mode = AttachMode::kAuto;
  std::vector<uint16_t> ports;  ///< capture flows with either port here; empty: any
  struct Cidr {
    uint8_t addr[16];
    uint8_t prefix_len;  ///< of the 128-bit (IPv4-mapped) form
  };
  std::vector<Cidr> cidrs;  ///< either endpoint inside; empty: any
  uint64_t interim_interval_ns = 60ull * 1000 * 1000 * 1000;  ///< 0: no interim records
  /// Tell the kernel program what the parsers only count (known-length
  /// bodies; TLS and unknown protocols entirely) so it copies none of it.
  bool capture_control = true;
};

/// Sum over CPUs of the kernel program's counters.
struct KernelCounters {
  uint64_t value[L7TAP_CNT_MAX]{};
};
const char* kernelCounterName(int index);

class LiveCapture final : public ConnectionCloseHook, public CaptureControl {
 public:
  LiveCapture();
  ~LiveCapture();
  LiveCapture(const LiveCapture&) = delete;
  LiveCapture& operator=(const LiveCapture&) = delete;

  /// Loads the programs and attaches to the interfaces that match now.
  /// Start-up problems (no BPF, bad config, no matching interface is fine:
  /// they may appear later) are reported once through `error`.
  bool start(const LiveConfig& config, std::string& error);
  /// Feeds the pipeline until SIGINT or SIGTERM, then drains what is queued.
  /// `healthy`, if set, is asked after every drain; false (with its reason)
  /// ends the run at once. Returns false with `error` on a fatal run-time
  /// error or when `healthy` said so.
  bool run(Pipeline& pipeline, std::string& error,
           const std::function<bool(std::string&)>& healthy = {});
  /// Detaches from every interface (also done by the destructor).
  void stop();

  KernelCounters counters() const;
  /// Reads the kernel's flow counters of a connection about to be reported.
  bool onClosing(const CanonicalFlowKey& key, uint32_t orig_dir,
                 ConnectionInfo::KernelCounts& kernel) override;
  /// Capture control: written into the kernel program's capture_ctl map.
  void skip(const CanonicalFlowKey& key, uint32_t dir, uint32_t begin, uint32_t end) override;
  void countOnly(const CanonicalFlowKey& key) override;
  void walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) override;
  void forget(const CanonicalFlowKey& key) override;
  uint64_t eventsRead() const { return events_read_; }
  uint64_t malformedEvents() const { return malformed_events_; }
  uint64_t flowEndEvents() const { return flow_end_events_; }

 private:
  static int onRingEvent(void* ctx, void* data, size_t size);
  int handleEvent(const void* data, size_t size);
  /// Attaches to a present interface (taking its lock unless `lock` holds
  /// it already), forgets a gone one.
  void attachTo(const InterfaceEvent& ev, InterfaceLock lock = {});
  void sweepFlows(uint64_t now_mono_ns);

  LiveConfig config_;
  l7tap_tc* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::unique_ptr<InterfaceWatcher> watcher_;
  // By ifindex. An attachment goes before its lock: declared after the locks.
  std::map<int, InterfaceLock> locks_;
  std::map<int, InterfaceAttachment> attached_;
  Pipeline* pipeline_ = nullptr;
  int64_t mono_to_real_ns_ = 0;  // added to kernel (monotonic) timestamps
  uint64_t events_read_ = 0;
  uint64_t malformed_events_ = 0;
  uint64_t flow_end_events_ = 0;
  uint64_t capture_control_failures_ = 0;  // capture_ctl map full
};

}  // namespace l7tap
