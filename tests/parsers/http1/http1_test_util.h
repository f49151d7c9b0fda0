// What the HTTP/1 parser tests share: a sink that keeps the records, and
// text as the byte span the parser takes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "parsers/common/records.h"
#include "parsers/http1/http1_parser.h"

namespace l7tap::testing_http1 {

class RecordingSink : public ExchangeSink {
 public:
  void onExchange(const Record& record) override {
    records.push_back(static_cast<const HttpRecord&>(record));
  }
  std::vector<HttpRecord> records;
};

inline std::span<const uint8_t> bytesOf(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace l7tap::testing_http1
