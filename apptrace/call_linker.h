// Ties function calls to the HTTP exchanges they served. It sits on the
// records' way to the sinks: exchange records pass through it, and calls come
// from the apptrace ring. A call is linked to the exchange on the same TCP
// connection (either orientation of the 5-tuple) that was in flight when the
// call started: request_start <= call start <= response_end. Both records
// then say so: the exchange gets l7tap.app.* fields and the call the
// exchange's connection id and l7tap.exchange_id.
//
// Either may come first. An exchange whose connection has a call in flight
// (its ENTER seen, its return not yet) is held until the call returns; a
// returned call with a connection is held until its exchange arrives. Both
// waits are bounded in count and time (LinkerLimits): what waited too long
// goes out unlinked, counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "apptrace/call_events.h"
#include "parsers/common/record.h"

namespace l7tap {

struct LinkerLimits {
  /// Calls in flight (entries without their return) remembered.
  static constexpr size_t kMaxInFlight = 16384;
  /// Returned calls waiting for their exchange.
  static constexpr size_t kMaxHeldCalls = 16384;
  /// Exchange records waiting for the call that serves them.
  static constexpr size_t kMaxHeldExchanges = 4096;
  /// How long either waits (wall ns): past it, out unlinked.
  static constexpr uint64_t kMaxWaitNs = 2'000'000'000;
};

struct LinkerStats {
  uint64_t calls = 0;              ///< call records written
  uint64_t linked = 0;             ///< of which linked to an exchange
  uint64_t calls_timed_out = 0;    ///< calls with a connection whose exchange never came
  uint64_t exchanges_held = 0;     ///< exchanges that waited for their call
  uint64_t exchanges_timed_out = 0;  ///< held exchanges whose call never returned
  uint64_t dropped_over_bound = 0; ///< waits cut short by a bound (written unlinked)
};

class CallLinker final : public RecordSink {
 public:
  /// `functions[i]` names the function of index i (CallEvent::function).
  CallLinker(RecordSink& next, std::vector<std::string> functions);
  ~CallLinker() override;

  /// Exchange records: linked, held or passed on; every other record passes.
  void onRecord(const ConnectionInfo& conn, const Record& record) override;
  /// An ENTER event.
  void onCallEntry(const CallEvent& entry);
  /// A returned call: linked, held, or written at once when it has no
  /// connection.
  void onCall(const CallEvent& call);
  /// Writes what waited past kMaxWaitNs by `now_ns` (wall clock).
  void expire(uint64_t now_ns);
  /// Writes everything held (at stop).
  void flush();
  const LinkerStats& stats() const { return stats_; }

 private:
  struct State;
  RecordSink& next_;
  std::vector<std::string> functions_;
  LinkerStats stats_;
  State* state_;
};

}  // namespace l7tap
