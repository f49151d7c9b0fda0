// Records as the apptrace tests read them: each field's name and value as
// text, in visit order, and what the record was (its message, its inner
// kind, whether the sink got the very object that was passed on).
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "parsers/common/record.h"

namespace l7tap::testing {

class FieldList final : public FieldVisitor {
 public:
  std::vector<std::pair<std::string, std::string>> fields;

  void str(std::string_view name, std::string_view value) override {
    add(name, std::string(value));
  }
  void num(std::string_view name, uint64_t value) override { add(name, std::to_string(value)); }
  void inum(std::string_view name, int64_t value) override { add(name, std::to_string(value)); }
  void millis(std::string_view name, uint64_t ns) override {
    add(name, std::to_string(ns) + " ns");
  }
  void time(std::string_view name, uint64_t ns) override { add(name, "@" + std::to_string(ns)); }
  void addr(std::string_view name, const uint8_t* addr16, uint8_t family) override {
    char buf[INET6_ADDRSTRLEN];
    if (family == 4) {
      inet_ntop(AF_INET, addr16 + 12, buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, addr16, buf, sizeof buf);
    }
    add(name, buf);
  }
  // As JSON: left out when no bit is set.
  void flags(std::string_view name, uint32_t bits, const char* const* names,
             size_t count) override {
    std::string joined;
    for (size_t i = 0; i < count; ++i) {
      if (!(bits & (1u << i))) continue;
      if (!joined.empty()) joined += ',';
      joined += names[i];
    }
    if (!joined.empty()) add(name, joined);
  }

  bool has(std::string_view name) const {
    for (const auto& [n, v] : fields) {
      if (n == name) return true;
    }
    return false;
  }
  /// The value of `name`, "<absent>" if it was not visited.
  std::string get(std::string_view name) const {
    for (const auto& [n, v] : fields) {
      if (n == name) return v;
    }
    return "<absent>";
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [n, v] : fields) out.push_back(n);
    return out;
  }

 private:
  void add(std::string_view name, std::string value) {
    fields.emplace_back(std::string(name), std::move(value));
  }
};

struct Captured {
  FieldList fields;
  FieldList added;  ///< what visitAdded() visits
  std::string message;
  const Record* address = nullptr;  ///< the object the sink was given
  const std::type_info* inner = nullptr;
  ConnectionInfo conn;

  std::string type() const { return fields.get("type"); }
  std::string get(std::string_view name) const { return fields.get(name); }
};

class CaptureSink final : public RecordSink {
 public:
  std::vector<Captured> records;

  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    Captured c;
    record.visit(conn, c.fields);
    record.visitAdded(conn, c.added);
    record.appendMessage(c.message, conn);
    c.address = &record;
    const Record& inner = record.inner();
    c.inner = &typeid(inner);
    c.conn = conn;
    records.push_back(std::move(c));
  }
};

}  // namespace l7tap::testing
