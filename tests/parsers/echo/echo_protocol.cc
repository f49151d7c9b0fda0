#include "tests/parsers/echo/echo_protocol.h"

#include <iterator>
#include <string_view>

namespace l7tap::echo {

namespace {

constexpr std::string_view kVerb = "ECHO ";
constexpr const char* kFlagNames[] = {"mismatch", "no_answer", "truncated", "gap"};

Detected detectStart(std::span<const uint8_t> bytes, const StartContext&) {
  const std::string_view data(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return {matchPrefix(data, kVerb), Sender::kClient};
}

class EchoProtocol final : public Protocol {
 public:
  explicit EchoProtocol(const EchoLimits& limits) : limits_(limits) {}
  std::string_view name() const override { return "echo"; }
  std::unique_ptr<ProtocolParser> makeParser(const ParserStart& start) const override {
    return std::make_unique<EchoParser>(*start.sink, limits_);
  }

 private:
  EchoLimits limits_;
};

}  // namespace

void EchoRecord::visit(const ConnectionInfo& conn, FieldVisitor& v) const {
  v.str("type", "echo");
  v.time("time", request_ns);
  visitConnectionId(conn, v);
  visitEndpoints(conn, v);
  v.str("echo.text", text);
  if (answer_ns >= request_ns && answer_ns) v.millis("echo.duration_ms", answer_ns - request_ns);
  v.flags("echo.flags", flags, kFlagNames, std::size(kFlagNames));
}

void EchoRecord::appendMessage(std::string& out, const ConnectionInfo& conn) const {
  out.append("ECHO ");
  appendPrintable(out, text);
  out.append(flags & kEchoNoAnswer ? " -> no answer " : " -> echoed ");
  appendMillis(out, answer_ns >= request_ns ? answer_ns - request_ns : 0);
  out.push_back(' ');
  appendClientServer(out, conn);
  if (flags & kEchoMismatch) out.append(" [mismatch]");
}

ParseResult EchoParser::onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) {
  Side& s = side_[static_cast<int>(role)];
  for (const uint8_t b : bytes) {
    if (s.line.empty() && !s.cut) s.line_ns = ts_ns;
    if (b == '\n') {
      onLine(role);
      continue;
    }
    if (s.line.size() < limits_.max_line_bytes) {
      s.line.push_back(static_cast<char>(b));
    } else {
      s.cut = true;
    }
  }
  return {ParseOutcome::kContinue, bytes.size()};
}

void EchoParser::onLine(Role role) {
  Side& s = side_[static_cast<int>(role)];
  std::string_view line(s.line);
  if (line.ends_with('\r')) line.remove_suffix(1);
  const bool is_echo = line.starts_with(kVerb);
  if (is_echo) line.remove_prefix(kVerb.size());
  const uint32_t flags = (s.cut ? kEchoTruncated : 0u) | (s.lost ? kEchoGap : 0u);
  if (role == Role::kClient) {
    if (pending_.size() == limits_.max_pending) {
      pending_.front().flags |= kEchoNoAnswer;
      ++unanswered_;
      sink_.onExchange(pending_.front());
      pending_.pop_front();
    }
    EchoRecord& r = pending_.emplace_back();
    r.text = line;
    r.request_ns = s.line_ns;
    r.flags = flags;
  } else if (!pending_.empty()) {
    EchoRecord& r = pending_.front();
    r.answer_ns = s.line_ns;
    r.flags |= flags;
    if (!is_echo || line != r.text) {
      r.flags |= kEchoMismatch;
      ++mismatches_;
    }
    sink_.onExchange(r);
    pending_.pop_front();
  }
  s.line.clear();
  s.cut = false;
  s.lost = false;
}

void EchoParser::onGap(Role role, uint64_t, uint64_t) { side_[static_cast<int>(role)].lost = true; }

void EchoParser::finish(uint64_t) {
  for (EchoRecord& r : pending_) {
    r.flags |= kEchoNoAnswer;
    ++unanswered_;
    sink_.onExchange(r);
  }
  pending_.clear();
}

void EchoParser::visitCounters(CounterVisitor& v) const {
  v.counter("echo.mismatches", mismatches_, true);
  v.counter("echo.unanswered", unanswered_, false);
}

size_t registerEcho(ProtocolRegistry& registry, const EchoLimits& limits) {
  const size_t id = registry.add(std::make_unique<EchoProtocol>(limits));
  registry.addStartDetector(50, id, detectStart);
  return id;
}

}  // namespace l7tap::echo
