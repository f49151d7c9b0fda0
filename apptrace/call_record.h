// The record of one function call (type "app_call") and the fields a linked
// exchange record gains (l7tap.app.*). Schema: ../shared/DESIGN.md.
#pragma once

#include <cstdint>
#include <string_view>

#include "apptrace/call_events.h"
#include "parsers/common/record.h"

namespace l7tap {

/// A call, linked to an exchange or not. Visited with the ConnectionInfo of
/// its socket (callConnection()), or of the exchange it is linked to.
struct CallRecord final : Record {
  const CallEvent* call = nullptr;
  std::string_view function;  ///< its name (symbol, or PROVIDER:START)
  /// Linked: the exchange's l7tap.exchange_id ("CONNECTION_ID:N", N the
  /// exchange's number on its connection from 1); empty when not linked.
  std::string_view exchange_id;

  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override;
  /// `call main.handleGetUser 12.3 ms pid 4242 goroutine 35, sent 1.0 KiB in 0.1 ms
  /// [-> exchange 17:2]`.
  void appendMessage(std::string& out, const ConnectionInfo& conn) const override;
};

/// The ConnectionInfo a call record is written with when it is not linked:
/// its socket's endpoints (client side unknown: the process's end first),
/// id 0, or no endpoints when the call saw no socket.
ConnectionInfo callConnection(const CallEvent& call);

/// Visits the l7tap.app.* fields a linked exchange record gains:
/// l7tap.app.call_id, .function, .duration_ms, .pid, .tid or .goroutine,
/// .io.bytes_sent/.bytes_received/.send_ms/.recv_ms, and
/// l7tap.app.after_return_ms: from the call's return to the response's last
/// byte (how much of the exchange was spent after the handler, in writing and
/// the network), 0 when the response ended before the return.
void visitCallOnExchange(const CallEvent& call, std::string_view function, uint64_t response_end_ns,
                         FieldVisitor& v);

}  // namespace l7tap
