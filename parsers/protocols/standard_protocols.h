// The registration: which protocols l7tap recognises, each from its own
// folder. A new protocol adds one line here (and its folder).
#pragma once

#include "parsers/common/protocol.h"
#include "parsers/http1/http1_parser.h"
#include "parsers/http2/http2_parser.h"

namespace l7tap {

/// HTTP/1.x, HTTP/2 and TLS, with their limits. Detection order: the HTTP/2
/// preface, HTTP/1 request and response starts, a TLS handshake record, an
/// HTTP/2 server's SETTINGS before the preface.
ProtocolRegistry standardProtocols(const Http1Limits& http1 = {}, const Http2Limits& http2 = {});

}  // namespace l7tap
