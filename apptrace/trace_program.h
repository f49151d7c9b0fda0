// The function-latency programs (apptrace/bpf/apptrace.bpf.c), loaded from
// their embedded skeleton: uprobes on functions and USDT probes, and the
// sys_enter/sys_exit raw tracepoints that see a traced call's TCP I/O.
// Events come out of one ring (ringFd()) as struct l7tap_app_event; the
// in-kernel histograms are read with readStats().
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apptrace/bpf/apptrace_abi.h"
#include "apptrace/function_targets.h"

struct bpf_link;
struct l7tap_apptrace;

namespace l7tap {

struct TraceProgramConfig {
  enum class Mode : uint8_t {
    kPerCall,     ///< an event per call (and the histograms)
    kHistograms,  ///< histograms only, plus exemplar events (the slowest call so far this interval)
  };
  Mode mode = Mode::kPerCall;
  /// An ENTER event at each call's entry, for linking calls to the exchanges
  /// they serve (attach): the exchange may end before the call returns.
  bool emit_entries = false;
  /// Ring buffer size: a power of two, a multiple of the page size.
  uint32_t ring_bytes = L7TAP_APP_DEFAULT_RING_BYTES;
  /// Wake the reader once this many bytes are queued; 0: at every event.
  uint32_t wakeup_bytes = 0;
  /// libbpf's own lines off while loading (the caller reports in one line).
  bool quiet_load = false;
};

/// One function's totals since load, summed over CPUs.
struct FunctionStats {
  uint64_t calls = 0;
  uint64_t sum_ns = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t buckets[L7TAP_APP_HIST_BUCKETS] = {};
};

/// Sums over CPUs of the program's counters.
struct TraceProgramCounters {
  uint64_t events = 0;       ///< events written to the ring
  uint64_t lost = 0;         ///< events the full ring refused
  uint64_t no_entry = 0;     ///< returns whose entry was not seen (attached mid-call, map full)
  uint64_t state_full = 0;   ///< calls not timed: the in-flight map was full
  uint64_t nested = 0;       ///< recursive entries (only the outermost call is timed)
  uint64_t io_syscalls = 0;  ///< TCP syscalls attributed to a running call
  uint64_t stale = 0;        ///< calls dropped: their return never came (longjmp, Go panic)
};

class TraceProgram {
 public:
  TraceProgram();
  ~TraceProgram();  // detaches and unloads
  TraceProgram(const TraceProgram&) = delete;
  TraceProgram& operator=(const TraceProgram&) = delete;

  /// Opens and loads the programs and attaches the syscall raw tracepoints.
  /// False with a one-line `error`.
  bool load(const TraceProgramConfig& config, std::string& error);

  /// Probes `target` in the file `path` for process `pid` (-1: every process
  /// that runs or maps the file). `index` is the function's row in
  /// readStats() and the `function` of its events: attach calls number the
  /// targets 0, 1, 2... in call order. False with a one-line `error` naming
  /// the function (e.g. too many functions, the kernel refused the uprobe).
  bool attach(const std::string& path, pid_t pid, const FunctionTarget& target, uint16_t& index,
              std::string& error);

  /// The same function (`index`, from attach()) in another process running
  /// the same file: its calls add to that row, so a node's restarting pods
  /// do not use up the rows. False with a one-line `error`.
  bool attachAgain(const std::string& path, pid_t pid, const FunctionTarget& target, uint16_t index,
                   std::string& error);
  /// Removes the probes attached for process `pid` (it exited), and stops
  /// following its syscalls.
  void detachProcess(pid_t pid);

  /// BPF_MAP_TYPE_RINGBUF of struct l7tap_app_event; -1 before load().
  int ringFd() const;
  /// Totals per attached function since load, by index.
  std::vector<FunctionStats> readStats() const;
  /// Starts a new exemplar interval: the next call of each function that is
  /// slower than the slowest of this interval is sent again.
  void resetExemplars();
  TraceProgramCounters counters() const;
  /// Detaches every link and unloads.
  void unload();

 private:
  struct LinkDestroy {
    void operator()(bpf_link* link) const;
  };
  std::unique_ptr<l7tap_apptrace, void (*)(l7tap_apptrace*)> skel_;
  bool attachRow(const std::string& path, pid_t pid, const FunctionTarget& target, uint32_t row,
                 std::string& error);

  // By the process they were attached for (0: the syscall tracepoints; -1:
  // every process running a file).
  std::vector<std::pair<pid_t, std::unique_ptr<bpf_link, LinkDestroy>>> links_;
  uint16_t functions_ = 0;
};

}  // namespace l7tap
