// `l7tap trace`: times functions of a program (apptrace/) and writes each
// call as a record, or keeps latency histograms in the kernel and prints them.
#pragma once

#include "daemon/cli_options.h"

namespace l7tap {

/// Runs until SIGINT, SIGTERM or --duration; the exit status: 0, or 1 with
/// one line on standard error (a binary or function that cannot be traced,
/// no permission, output that cannot be written).
int runTrace(const TraceOptions& options);

}  // namespace l7tap
