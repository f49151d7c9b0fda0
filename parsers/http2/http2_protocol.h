// HTTP/2 in the protocol registry: the client preface, a server's SETTINGS
// sent before it, frames at a segment start in a stream joined mid-way, h2c
// Upgrade, and the parser.
#pragma once

#include "parsers/common/protocol.h"
#include "parsers/http2/http2_parser.h"

namespace l7tap {

/// Registers HTTP/2 ("h2"); returns its index.
size_t registerHttp2(ProtocolRegistry& registry, const Http2Limits& limits = {});

}  // namespace l7tap
