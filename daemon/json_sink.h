// JSON lines: one object per record, keys in schema order.
#pragma once

#include <cstdio>
#include <string>

#include "parsers/common/records.h"

namespace l7tap {

/// Appends `s` to `out` as the inside of a JSON string. Valid UTF-8 passes
/// through; control characters become \u00XX; bytes that are not valid UTF-8
/// become the four characters \xHH (an escaped backslash, as Zeek writes
/// them), so binary garbage can neither break the line nor pass for text.
void appendJsonEscaped(std::string& out, std::string_view s);

class JsonLinesSink final : public RecordSink {
 public:
  /// Writes to `out`, which stays owned by the caller.
  explicit JsonLinesSink(std::FILE* out) : out_(out) {}
  void onHttp(const ConnectionInfo& conn, const HttpRecord& record) override;
  void onConnection(const ConnectionInfo& conn, const ProtocolInfo& proto) override;
  /// False once a write failed (disk full, closed pipe).
  bool ok() const { return ok_; }

 private:
  void writeLine();
  std::FILE* out_;
  std::string line_;  // reused for every record
  bool ok_ = true;
};

}  // namespace l7tap
