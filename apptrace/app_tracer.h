// Function tracing put together: the program (trace_program.h), the targets
// it is attached to (function_targets.h) by name, and its ring read into
// decoded calls (call_events.h). Both commands use it: `trace` writes the
// calls as records or histograms, `attach` links them to exchanges
// (app_capture.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "apptrace/call_events.h"
#include "apptrace/function_targets.h"
#include "apptrace/trace_program.h"

struct ring_buffer;

namespace l7tap {

struct AppTracerStats {
  TraceProgramCounters kernel;
  uint64_t events_read = 0;
  uint64_t malformed = 0;  ///< samples of another size or kind
};

class AppTracer {
 public:
  using Handler = std::function<void(const CallEvent&)>;

  AppTracer() = default;
  ~AppTracer();
  AppTracer(const AppTracer&) = delete;
  AppTracer& operator=(const AppTracer&) = delete;

  /// Loads the program; each event read later goes to `handler`, its times
  /// on the wall clock (`mono_to_real_ns` added). False with a one-line `error`.
  bool start(const TraceProgramConfig& config, int64_t mono_to_real_ns, Handler handler,
             std::string& error);
  /// The functions matching `patterns` and the USDT pairs `usdt` in the file
  /// `path`; false with a one-line `error`. Needs no privilege: a command
  /// can say what is wrong with its arguments before it loads anything.
  static bool resolve(const std::string& path, const std::vector<std::string>& patterns,
                      const std::vector<std::string>& usdt, std::vector<FunctionTarget>& targets,
                      std::string& error);
  /// Probes `targets` of the file `path` for process `pid` (-1: every
  /// process running it). `rows` empty: new functions, whose indexes are
  /// put in `rows`; else the indexes an earlier attach of the same targets
  /// gave (another process running the same file), which its calls add to.
  /// False with a one-line `error` naming the first function that failed;
  /// those attached before it stay.
  bool attach(const std::string& path, pid_t pid, const std::vector<FunctionTarget>& targets,
              std::vector<uint16_t>& rows, std::string& error);
  /// Removes the probes of process `pid`, which exited.
  void detachProcess(pid_t pid) { program_.detachProcess(pid); }
  /// Readable when the kernel wakes the reader; -1 before start().
  int fd() const;
  /// Hands every queued event to the handler.
  void consume();
  void stop();
  bool running() const { return ring_ != nullptr; }

  /// The name of each attached function, by index (CallEvent::function).
  const std::vector<std::string>& functions() const { return functions_; }
  std::vector<FunctionStats> readStats() const { return program_.readStats(); }
  void resetExemplars() { program_.resetExemplars(); }
  AppTracerStats stats() const;

 private:
  static int onSample(void* ctx, void* data, size_t size);

  TraceProgram program_;
  ring_buffer* ring_ = nullptr;
  Handler handler_;
  int64_t mono_to_real_ns_ = 0;
  std::vector<std::string> functions_;
  AppTracerStats stats_;
};

}  // namespace l7tap
