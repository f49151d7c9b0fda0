// Function tracing inside attach: the processes of the watched pods that run
// an executable the trace config names are traced (apptrace/app_tracer.h),
// and each call is linked to the HTTP exchange it served (call_linker.h)
// on its way to the same sinks as the exchanges. LiveCapture drives it as it
// drives the TLS capture: fd() in its loop, consume() after the TC ring,
// housekeeping() on its tick, the scope from the attached interfaces.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "apptrace/app_tracer.h"
#include "apptrace/call_linker.h"
#include "apptrace/trace_config.h"

namespace l7tap {

struct AppCaptureConfig {
  TraceConfig traces;
  std::string proc = "/proc";  ///< the host's /proc (--host-proc)
  uint32_t wakeup_bytes = 0;   ///< as TraceProgramConfig's; attach: the TC ring's
  /// A full look at the processes in scope this often: a pod started after
  /// attach is traced within it.
  uint64_t scan_interval_ns = 5ull * 1000 * 1000 * 1000;
};

struct AppCaptureStats {
  AppTracerStats tracer;
  LinkerStats linker;
  uint64_t processes_traced = 0;
  uint64_t processes_refused = 0;  ///< matched an entry, but could not be traced (said once)
};

class AppCapture {
 public:
  /// Records the pipeline writes go through sink() to `next`, calls too.
  explicit AppCapture(RecordSink& next);
  AppCapture(const AppCapture&) = delete;
  AppCapture& operator=(const AppCapture&) = delete;

  /// Where the pipeline writes its records: the linker.
  RecordSink& sink() { return linker_; }
  /// Loads the program (entries on, for the linker). False with a one-line
  /// `error`: a trace config that cannot be honoured ends attach.
  bool start(const AppCaptureConfig& config, int64_t mono_to_real_ns, std::string& error);
  bool running() const { return tracer_.running(); }
  int fd() const { return tracer_.fd(); }
  void consume() { tracer_.consume(); }
  /// Traces what runs in scope now (after the interfaces are attached).
  void scanNow();
  /// Held records past their wait, and the periodic scan.
  void housekeeping(uint64_t mono_now_ns);
  /// As TlsCapture's: the processes of `netns_inode` are in scope.
  void allowNetns(uint32_t ifindex, uint64_t netns_inode);
  void forgetInterface(uint32_t ifindex);
  /// Writes every held record (at stop, after the pipeline's last).
  void finish() { linker_.flush(); }
  void stop() { tracer_.stop(); }

  const std::vector<std::string>& functions() const { return tracer_.functions(); }
  std::vector<FunctionStats> readStats() const { return tracer_.readStats(); }
  AppCaptureStats stats() const;

 private:
  void consider(pid_t pid);
  bool inScope(pid_t pid) const;

  AppTracer tracer_;
  CallLinker linker_;
  AppCaptureConfig config_;
  int64_t mono_to_real_ns_ = 0;
  uint64_t next_scan_ns_ = 0;
  std::set<pid_t> seen_;  // processes looked at (traced or refused)
  std::set<pid_t> traced_pids_;
  // Per executable file: what it resolved to, and the rows its first
  // process got (later processes of the same file add to them).
  struct TracedFile {
    std::vector<FunctionTarget> targets;
    std::vector<uint16_t> rows;
  };
  std::map<std::pair<dev_t, ino_t>, TracedFile> files_;
  std::set<std::string> refusals_said_;
  std::unordered_map<uint32_t, uint64_t> netns_of_interface_;
  std::unordered_map<uint64_t, uint32_t> allowed_netns_;  // inode -> interfaces carrying it
  uint64_t traced_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace l7tap
