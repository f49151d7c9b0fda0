// The record schema is written once per record kind, next to its values
// (Record::visit: parsers/common/records.cc for HTTP exchanges and
// connections, each protocol's folder for its own kinds); every sink (JSON
// lines, journald) renders the same visit through a FieldVisitor, so the
// outputs cannot drift apart. What the sinks share to render it:
#pragma once

#include <cstddef>
#include <cstdint>

#include "parsers/common/record.h"

namespace l7tap {

/// Formats nanoseconds since the epoch as RFC 3339 UTC with nanoseconds.
/// `buf` needs 40 bytes; returns the length written.
size_t formatTime(uint64_t ts_ns, char* buf);

}  // namespace l7tap
