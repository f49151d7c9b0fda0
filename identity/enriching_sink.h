// Adds who the endpoints are to every record on its way to the sinks, so
// JSON lines, journald and anything later show the same names. Runs on the
// pipeline's thread: per record a snapshot lookup and a few comparisons, no
// system call and no allocation beyond the names' shared pointers.
#pragma once

#include <memory>

#include "identity/connection_names.h"
#include "parsers/common/record.h"

namespace l7tap {

/// Where the names come from (NodeIdentity in the daemon, a table in tests).
class NameSource {
 public:
  virtual ~NameSource() = default;
  /// The names of `conn`'s endpoints; empty names leave the record as it is.
  /// Valid until the next call: a reference, so that a record does not
  /// copy (and count) the names' shared pointers.
  virtual const ConnectionNames& namesOf(const ConnectionInfo& conn) = 0;
};

class EnrichingSink final : public RecordSink {
 public:
  EnrichingSink(NameSource& names, RecordSink& next) : names_(names), next_(next) {}
  void onRecord(const ConnectionInfo& conn, const Record& record) override;

 private:
  NameSource& names_;
  RecordSink& next_;
};

/// Visits the names' fields (what EnrichingSink appends to each record).
void visitNames(const ConnectionNames& names, FieldVisitor& v);
/// " pod NS/NAME, peer NS/NAME" for the journal's MESSAGE; nothing when no
/// pod is named.
void appendNames(std::string& out, const ConnectionNames& names);

}  // namespace l7tap
