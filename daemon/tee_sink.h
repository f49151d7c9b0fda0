// Several sinks at once (`--output both`).
#pragma once

#include <vector>

#include "parsers/common/record.h"

namespace l7tap {

class TeeSink final : public RecordSink {
 public:
  void add(RecordSink& sink) { sinks_.push_back(&sink); }
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    for (RecordSink* s : sinks_) s->onRecord(conn, record);
  }

 private:
  std::vector<RecordSink*> sinks_;
};

}  // namespace l7tap
