// The OpenTelemetry rule for `http.request.method`: one definition for the
// records and the metrics, so a record and its series never disagree.
#pragma once

#include <string_view>

namespace l7tap {

/// The value `http.request.method` gets: `method` itself when it is one of
/// the methods the conventions know (RFC 9110's eight and PATCH,
/// case-sensitive, as on the wire), else `_OTHER`, with the token as sent
/// in `http.request.method_original`. A scanner's made-up methods, WebDAV's
/// and every extension token thus share one value and one metric series.
std::string_view httpMethodLabel(std::string_view method);

/// Whether `httpMethodLabel(method)` is `method` itself (the original needs
/// no field of its own).
bool isKnownHttpMethod(std::string_view method);

}  // namespace l7tap
