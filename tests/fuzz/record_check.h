// What every emitted record must satisfy whatever the input: its strings
// within their bounds (read whole, so ASan sees a bad one).
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

#include "parsers/common/record.h"
#include "parsers/common/records.h"

namespace l7tap::fuzz {

class CheckingSink final : public ExchangeSink {
 public:
  CheckingSink(size_t max_url, size_t max_value) : max_url_(max_url), max_value_(max_value) {}
  void onExchange(const Record& record) override {
    const HttpRecord& r = static_cast<const HttpRecord&>(record);
    if (r.path.size() > max_url_ || r.query.size() > max_url_) std::abort();
    for (const std::string* s : {&r.host, &r.user_agent, &r.content_type}) {
      if (s->size() > max_value_) std::abort();
    }
    size_t sum = 0;
    for (const std::string* s :
         {&r.method, &r.path, &r.query, &r.host, &r.user_agent, &r.rpc_service, &r.rpc_method}) {
      for (char c : *s) sum += static_cast<unsigned char>(c);
    }
    checksum_ += sum;
    ++records_;
  }
  size_t records() const { return records_; }

 private:
  size_t max_url_;
  size_t max_value_;
  size_t records_ = 0;
  size_t checksum_ = 0;
};

// Renders every record field by field, and its journal message, so ASan
// sees each value whatever the input.
class RenderingSink final : public RecordSink, private FieldVisitor {
 public:
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    record.visit(conn, *this);
    std::string message;
    record.appendMessage(message, conn);
    sum_ += message.size() + static_cast<size_t>(record.priority());
  }

 private:
  void str(std::string_view, std::string_view value) override {
    for (char c : value) sum_ += static_cast<unsigned char>(c);
  }
  void num(std::string_view, uint64_t value) override { sum_ += value; }
  void inum(std::string_view, int64_t value) override { sum_ += static_cast<uint64_t>(value); }
  void millis(std::string_view, uint64_t ns) override { sum_ += ns; }
  void time(std::string_view, uint64_t ns) override { sum_ += ns; }
  void addr(std::string_view, const uint8_t* addr16, uint8_t) override {
    for (int i = 0; i < 16; ++i) sum_ += addr16[i];
  }
  void flags(std::string_view, uint32_t bits, const char* const*, size_t) override { sum_ += bits; }

  size_t sum_ = 0;
};

}  // namespace l7tap::fuzz
