// Ties function calls to the HTTP exchanges they served. It sits on the
// records' way to the sinks: exchange records pass through it, and calls come
// from the apptrace ring. A call is linked to an exchange on the same TCP
// connection (either orientation of the 5-tuple) that it can have served:
// on the server (the call's socket is not the exchange's client end), the
// exchange was in flight when the call started (request_start <= call
// start <= response_end; the latest such request); on the client, the
// request began while the call ran (the first such request). Both records
// then say so: the exchange gets l7tap.app.* fields and the call the
// exchange's connection id and l7tap.exchange_id.
//
// Either may come first. An exchange whose connection has a call in flight
// (its ENTER seen, its return not yet) is held until the call returns; a
// returned call with a connection is held until its exchange arrives. Both
// waits are bounded in count and time (LinkerLimits): what waited too long
// goes out unlinked, counted.
//
// Several calls may serve one exchange (a traced handler and a traced
// function it calls): the exchange shows the outermost (the first to start),
// and every one of them names the exchange. Calls on other threads or
// goroutines whose start falls in the same window (HTTP/2 streams served in
// parallel) are not its: once an exchange has a call, it claims only calls
// of that call's thread or goroutine, and waits only for an outer one. An
// exchange whose own call was never seen may still take a parallel one.
//
// A call is looked for on the connection of its entry (the request its
// thread read) and then on the connection it did I/O on. Exchange records
// reach it wrapped (the session adds the capture source): a held exchange
// is the HttpRecord copied plus the fields its wrappers added, replayed in
// their place when it is written.
//
// A connection's final record (ConnRecord, not interim) ends the wait of
// the calls held on it: its exchanges all came before it.
//
// One thread: every method on the pipeline's (the records' and the calls'
// thread). An exchange passed before its call's ENTER was read cannot be
// linked. The entry was queued before the response it writes, but the
// capture's ring is read for as long as it has events, and a call can start
// and answer meanwhile: so the linker reads the calls queued so far
// (setCatchUp) before it decides about an exchange.
//
// Cost: one hash lookup per exchange record (its number on the connection)
// while no call is held or in flight anywhere, one more otherwise; one per
// final connection record; nothing per other record. Memory is per
// connection (its exchange count) and per waiting call or exchange.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "apptrace/call_events.h"
#include "parsers/common/record.h"

namespace l7tap {

struct HttpRecord;
struct CallLinkerState;

struct LinkerLimits {
  /// Calls in flight (entries without their return) remembered.
  static constexpr size_t kMaxInFlight = 16384;
  /// Returned calls waiting for their exchange.
  static constexpr size_t kMaxHeldCalls = 16384;
  /// Exchange records waiting for the call that serves them.
  static constexpr size_t kMaxHeldExchanges = 4096;
  /// How long either waits (wall ns): past it, out unlinked. A call waits
  /// from its return, an exchange from its last byte.
  static constexpr uint64_t kMaxWaitNs = 2'000'000'000;
  /// A call in flight for longer (a connection's serving loop, a return the
  /// ring lost) is forgotten: exchanges stop waiting for it.
  static constexpr uint64_t kMaxInFlightNs = 60'000'000'000;
  /// Connections whose exchanges are counted (for l7tap.exchange_id): above
  /// the flow table's default bound (ReassemblyLimits::max_connections), so
  /// reached only if that is raised. Past it a connection's exchanges pass
  /// unlinked, counted in dropped_over_bound.
  static constexpr size_t kMaxConnections = 512 * 1024;
};

struct LinkerStats {
  uint64_t calls = 0;                ///< call records written
  uint64_t linked = 0;               ///< of which linked to an exchange
  uint64_t calls_timed_out = 0;      ///< calls with a connection whose exchange never came
  uint64_t exchanges_held = 0;       ///< exchanges that waited for their call
  uint64_t exchanges_timed_out = 0;  ///< held exchanges whose call never returned
  uint64_t dropped_over_bound = 0;   ///< waits cut short by a bound (written unlinked)
  uint64_t in_flight_expired = 0;    ///< entries forgotten after kMaxInFlightNs
};

class CallLinker final : public RecordSink {
 public:
  /// `functions[i]` names the function of index i (CallEvent::function);
  /// kept by reference: attach traces processes found later, and the
  /// tracer's list grows with them.
  CallLinker(RecordSink& next, const std::vector<std::string>& functions);
  ~CallLinker() override;

  /// Reads the calls queued so far into this linker (onCallEntry, onCall):
  /// called before each exchange record is looked at. Reading an empty ring
  /// buffer is two loads from shared memory, no system call.
  void setCatchUp(std::function<void()> read_calls) { catch_up_ = std::move(read_calls); }
  /// Exchange records: linked, held or passed on; every other record passes.
  void onRecord(const ConnectionInfo& conn, const Record& record) override;
  /// An ENTER event.
  void onCallEntry(const CallEvent& entry);
  /// A returned call: linked, held, or written at once when it has no
  /// connection.
  void onCall(const CallEvent& call);
  /// Writes what waited past kMaxWaitNs by `now_ns` (wall clock).
  void expire(uint64_t now_ns);
  /// Writes everything held (at stop) and forgets the calls in flight.
  void flush();
  const LinkerStats& stats() const { return stats_; }

 private:
  void onExchange(const ConnectionInfo& conn, const Record& record, const HttpRecord& http);
  void onConnectionEnd(const ConnectionInfo& conn);

  RecordSink& next_;
  const std::vector<std::string>& functions_;
  std::function<void()> catch_up_;
  LinkerStats stats_;
  std::unique_ptr<CallLinkerState> state_;
};

}  // namespace l7tap
