#include "parsers/protocols/standard_protocols.h"

#include "parsers/http1/http1_protocol.h"
#include "parsers/http2/http2_protocol.h"
#include "parsers/tls/tls_protocol.h"

namespace l7tap {

ProtocolRegistry standardProtocols(const Http1Limits& http1, const Http2Limits& http2) {
  ProtocolRegistry registry;
  registerHttp1(registry, http1);
  registerHttp2(registry, http2);
  registerTls(registry);
  return registry;
}

}  // namespace l7tap
