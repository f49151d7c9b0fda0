// The kernel side of live capture: the programs and maps of the skeleton
// embedded in the binary, configured and loaded, not yet attached anywhere.
#pragma once

#include <cstdint>
#include <string>

#include "daemon/attachment.h"
#include "daemon/live_config.h"
#include "daemon/pipeline.h"
#include "tc/l7tap_abi.h"

struct l7tap_tc;  // the generated skeleton

namespace l7tap {

/// Sum over CPUs of the kernel program's counters.
struct KernelCounters {
  uint64_t value[L7TAP_CNT_MAX]{};
};
/// The summary's name of counter `index` (enum l7tap_counter).
const char* kernelCounterName(int index);

/// The file descriptors of the loaded program's maps.
struct CaptureMaps {
  int events = -1;       ///< the ring buffer
  int flows = -1;        ///< per-flow L4 counters (close hook, sweep)
  int capture_ctl = -1;  ///< capture control (hints writer)
  int frame_walk = -1;   ///< HTTP/2 frame walk state (hints writer)
  int tunnels = -1;      ///< outer addresses of encapsulated flows (ring reader)
  int counters = -1;     ///< per-CPU counters
};

/// Also the pipeline's source of capture counters (the kernel's, read when a
/// stats snapshot is asked for).
class CaptureProgram final : public CaptureStatsSource {
 public:
  CaptureProgram() = default;
  ~CaptureProgram() override;
  CaptureProgram(const CaptureProgram&) = delete;
  CaptureProgram& operator=(const CaptureProgram&) = delete;

  /// Opens, configures (window, filters, map sizes, frame walk) and loads the
  /// programs `config.mode` needs: the XDP program alone for kXdp, else the
  /// TC programs. False with `error` set, once, on failure.
  bool load(const LiveConfig& config, std::string& error);
  bool loaded() const { return skel_ != nullptr; }
  /// Unloads (also done by the destructor): whatever was attached stops.
  void unload();
  /// The programs to attach; -1 for those not loaded.
  AttachPrograms programs() const;
  CaptureMaps maps() const;
  KernelCounters counters() const;
  void readCaptureStats(CaptureStats& out) const override;

 private:
  bool open(const LiveConfig& config, std::string& error);

  l7tap_tc* skel_ = nullptr;
};

}  // namespace l7tap
