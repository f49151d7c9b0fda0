// Several sinks at once (`--output both`).
#pragma once

#include <vector>

#include "parsers/common/records.h"

namespace l7tap {

class TeeSink final : public RecordSink {
 public:
  void add(RecordSink& sink) { sinks_.push_back(&sink); }
  void onHttp(const ConnectionInfo& conn, const HttpRecord& record) override {
    for (RecordSink* s : sinks_) s->onHttp(conn, record);
  }
  void onConnection(const ConnectionInfo& conn, const ProtocolInfo& proto) override {
    for (RecordSink* s : sinks_) s->onConnection(conn, proto);
  }

 private:
  std::vector<RecordSink*> sinks_;
};

}  // namespace l7tap
