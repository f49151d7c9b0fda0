// What a record is to whoever writes it out: a kind that lists its fields,
// in schema order, to a visitor, and says one line about itself. Sinks
// (daemon/) render every kind the same way, so a new protocol's records need
// no new method in any sink.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reassembly/connection_stats.h"

namespace l7tap {

/// Receives a record's fields in schema order (names: ../shared/DESIGN.md).
/// Absent values are not visited. One call per field, none per byte.
class FieldVisitor {
 public:
  virtual void str(std::string_view name, std::string_view value) = 0;
  virtual void num(std::string_view name, uint64_t value) = 0;
  virtual void inum(std::string_view name, int64_t value) = 0;
  /// A duration in nanoseconds, written as milliseconds.
  virtual void millis(std::string_view name, uint64_t ns) = 0;
  /// Nanoseconds since the epoch, written as a time.
  virtual void time(std::string_view name, uint64_t ns) = 0;
  /// `addr16`: IPv6, or IPv4-mapped when `family` is 4.
  virtual void addr(std::string_view name, const uint8_t* addr16, uint8_t family) = 0;
  /// Bit i of `bits` set: names[i] applies. Not visited when no bit is set
  /// is the visitor's choice (JSON leaves the field out).
  virtual void flags(std::string_view name, uint32_t bits, const char* const* names,
                     size_t count) = 0;

 protected:
  ~FieldVisitor() = default;
};

/// One record of any kind. Records are handed to sinks by reference, valid
/// only during the call.
class Record {
 public:
  virtual ~Record() = default;
  /// Every field, the connection's among them, in schema order; the first
  /// is "type" (the kind's name).
  virtual void visit(const ConnectionInfo& conn, FieldVisitor& v) const = 0;
  /// One printable line for people (journald's MESSAGE); untrusted text in
  /// it goes through appendPrintable().
  virtual void appendMessage(std::string& out, const ConnectionInfo& conn) const = 0;
  /// syslog level: 6 (info) unless the record itself reports a failure.
  virtual int priority() const { return 6; }
  /// A record that wraps another to add fields after the other's (names on
  /// the way to the sinks) returns the innermost one, and visits only what
  /// it adds in visitAdded(): visit() is inner().visit() then visitAdded().
  /// A sink that reads a known kind from its members (metrics) keeps doing
  /// so under a wrapper.
  virtual const Record& inner() const { return *this; }
  virtual void visitAdded(const ConnectionInfo& conn, FieldVisitor& v) const {
    (void)conn;
    (void)v;
  }

 protected:
  Record() = default;
  Record(const Record&) = default;
  Record& operator=(const Record&) = default;
};

/// Where records go: JSON lines, journald, metrics (daemon/ implements).
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void onRecord(const ConnectionInfo& conn, const Record& record) = 0;
};

/// Where a protocol parser delivers the records of finished exchanges (the
/// session adds the connection). `record` is only valid during the call.
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  virtual void onExchange(const Record& record) = 0;
};

/// Appends `s` so that it is printable UTF-8: control characters (C0, DEL,
/// C1), backslashes and bytes that are not valid UTF-8 become `\xHH`.
void appendPrintable(std::string& out, std::string_view s);
/// At most `budget` bytes of `s`, printable, with "..." when cut; `budget`
/// shrinks by the bytes taken.
void appendPrintableBounded(std::string& out, std::string_view s, size_t& budget);
/// `client -> server` with ports, IPv6 addresses in brackets.
void appendClientServer(std::string& out, const ConnectionInfo& conn);
/// "60.1 ms": nanoseconds as milliseconds rounded to one decimal.
void appendMillis(std::string& out, uint64_t ns);
/// "512 B", "1.0 KiB", "3.4 MiB", "1.2 GiB": a byte count for people.
void appendBytes(std::string& out, uint64_t n);

/// Visits the fields every record of a connection starts with after "type"
/// and "time": the connection id and, when known, the interface.
void visitConnectionId(const ConnectionInfo& conn, FieldVisitor& v);
/// client.address/port, server.address/port.
void visitEndpoints(const ConnectionInfo& conn, FieldVisitor& v);

}  // namespace l7tap
