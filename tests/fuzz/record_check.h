// What every emitted record must satisfy whatever the input: its strings
// within their bounds (read whole, so ASan sees a bad one).
#pragma once

#include <cstdlib>

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

}  // namespace l7tap::fuzz
