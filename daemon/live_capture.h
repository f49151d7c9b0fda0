// Live capture, put together: the loaded program (capture_program.h), the
// interfaces it is attached to (attached_interfaces.h), the ring reader
// (ring_reader.h), the hints writer (kernel_hints.h) and the kernel's flow
// counters (kernel_flows.h), driven by one event loop that feeds the same
// pipeline as replay.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daemon/attached_interfaces.h"
#include "daemon/capture_program.h"
#include "daemon/kernel_flows.h"
#include "daemon/kernel_hints.h"
#include "daemon/live_config.h"
#include "daemon/pipeline.h"
#include "daemon/ring_reader.h"
#include "uprobes/tls_capture.h"

#include "apptrace/app_capture.h"

namespace l7tap {

class LiveCapture {
 public:
  LiveCapture() = default;
  ~LiveCapture() { stop(); }
  LiveCapture(const LiveCapture&) = delete;
  LiveCapture& operator=(const LiveCapture&) = delete;

  /// Loads the programs, connects `pipeline` to the kernel (close hook; the
  /// hints writer unless capture control is off) and attaches to the
  /// interfaces that match now. Start-up problems (no BPF, bad config, an
  /// interface another l7tap holds; no matching interface is fine: they may
  /// appear later) are reported once through `error`. `pipeline` must
  /// outlive the next stop() (the destructor's at the latest), which
  /// disconnects it again.
  /// `on_interface`, if set, is told of every interface attached and gone.
  /// TLS uprobes (config.tls_uprobes) that cannot be loaded are an error
  /// when --tls-pid or --tls-binary asked for them; otherwise one line on
  /// standard error, and the capture goes on without them.
  bool start(const LiveConfig& config, Pipeline& pipeline, std::string& error,
             AttachedInterfaces::Listener on_interface = {});
  /// Function tracing (--trace-config), driven by this loop: call before
  /// start(); `apptrace` (whose sink() the pipeline writes into) must
  /// outlive the next stop(). Its start() is called by start().
  void setAppCapture(AppCapture* apptrace, AppCaptureConfig config) {
    apptrace_ = apptrace;
    apptrace_config_ = std::move(config);
  }
  /// Feeds the pipeline until SIGINT or SIGTERM, then drains what is queued.
  /// `healthy`, if set, is asked at the end of every drain, after the
  /// records it wrote (expiry and interim ones too): buffered sinks flush
  /// there. False (with its reason) ends the run at once. Returns false with `error` on a fatal
  /// run-time error or when `healthy` said so.
  bool run(std::string& error, const std::function<bool(std::string&)>& healthy = {});
  /// Detaches from every interface and unloads (also done by the destructor).
  void stop();

  /// What the summary shows; the kernel's counters are read now, so take it
  /// before stop().
  struct Stats {
    KernelCounters kernel;
    RingStats ring;
    uint64_t hint_failures = 0;  ///< capture-control map updates that failed
    bool tls = false;            ///< TLS uprobes were running
    TlsCaptureStats tls_capture;
    bool apptrace = false;  ///< function tracing was running
    AppCaptureStats apptrace_capture;
  };
  Stats stats() const;

 private:
  bool startTls(const LiveConfig& config, Pipeline& pipeline, std::string& error);
  // The network namespace whose traffic the interface carries (0: unknown).
  uint64_t carriedNetns(uint32_t ifindex) const;
  uint64_t wallClock(uint64_t mono_ns) const {
    return static_cast<uint64_t>(static_cast<int64_t>(mono_ns) + mono_to_real_ns_);
  }

  LiveConfig config_;
  Pipeline* pipeline_ = nullptr;
  CaptureProgram program_;
  // Users of the program's maps and programs: declared after it, gone before it.
  std::unique_ptr<KernelFlows> flows_;
  std::unique_ptr<KernelCaptureHints> hints_;
  RingReader ring_;
  std::unique_ptr<ProgramAttacher> attacher_;
  std::unique_ptr<AttachedInterfaces> interfaces_;
  TlsCapture tls_;
  AppCapture* apptrace_ = nullptr;
  AppCaptureConfig apptrace_config_;
  int64_t mono_to_real_ns_ = 0;  // added to kernel (monotonic) timestamps
};

}  // namespace l7tap
