// HTTP/1.x in the protocol registry: request and response starts, start
// lines in a stream joined mid-way, and the parser.
#pragma once

#include "parsers/common/protocol.h"
#include "parsers/http1/http1_parser.h"

namespace l7tap {

/// Registers HTTP/1.x ("http/1"); returns its index.
size_t registerHttp1(ProtocolRegistry& registry, const Http1Limits& limits = {});

}  // namespace l7tap
