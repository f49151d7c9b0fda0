#include "parsers/http1/http1_protocol.h"

#include <string_view>

#include "parsers/http1/http1_parser.h"
#include "parsers/http1/resync.h"

namespace l7tap {

namespace {

// Request methods recognised by their first bytes at the start of a client's
// stream (with the space); any other token waits for its whole request line.
constexpr std::string_view kRequestStarts[] = {
    "GET ",     "POST ",   "PUT ",      "HEAD ",      "DELETE ", "OPTIONS ", "PATCH ",
    "CONNECT ", "TRACE ",  "PROPFIND ", "PROPPATCH ", "MKCOL ",  "COPY ",    "MOVE ",
    "LOCK ",    "UNLOCK ", "REPORT ",   "SEARCH ",    "PURGE ",
};
constexpr std::string_view kResponseStarts[] = {"HTTP/1.1 ", "HTTP/1.0 "};
// A request line longer than this, with a method not above, is not taken
// for HTTP at the start or in the middle of a stream (the parser's default
// URL bound plus the rest of the line).
constexpr size_t kMaxUnknownRequestLine = Http1Limits{}.max_url_bytes + 64;

std::string_view asText(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Best of several prefixes: yes if one matches, need-more if one still could.
template <size_t N>
Match matchAny(std::string_view data, const std::string_view (&prefixes)[N]) {
  Match best = Match::kNo;
  for (auto p : prefixes) {
    const Match m = matchPrefix(data, p);
    if (m == Match::kYes) return m;
    if (m == Match::kNeedMore) best = m;
  }
  return best;
}

// A request start from the client, else a response start from the server.
Detected detectStart(std::span<const uint8_t> bytes, const StartContext&) {
  const std::string_view data = asText(bytes);
  Match request = matchAny(data, kRequestStarts);
  if (request == Match::kYes) return {Match::kYes, Sender::kClient};
  if (request == Match::kNo) {
    switch (http1::matchRequestLine(data, kMaxUnknownRequestLine)) {
      case http1::LineMatch::kYes:
        return {Match::kYes, Sender::kClient};
      case http1::LineMatch::kNeedMore:
        request = Match::kNeedMore;
        break;
      case http1::LineMatch::kNo:
        break;
    }
  }
  const Match response = matchAny(data, kResponseStarts);
  if (response == Match::kYes) return {Match::kYes, Sender::kServer};
  if (request == Match::kNeedMore || response == Match::kNeedMore) return {Match::kNeedMore};
  return {};
}

// An HTTP/1 message start at some line start of what is held; the parser's
// resync skips what precedes it.
Boundary findBoundary(std::span<const uint8_t>, std::span<const uint8_t> held) {
  const std::string_view data = asText(held);
  for (size_t pos = 0; pos < data.size();) {
    const std::string_view line = data.substr(pos);
    for (auto p : kResponseStarts) {
      if (line.starts_with(p)) return {true, Sender::kServer};
    }
    if (http1::matchRequestLine(line, kMaxUnknownRequestLine) == http1::LineMatch::kYes) {
      return {true, Sender::kClient};
    }
    const size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return {};
}

class Http1Protocol final : public Protocol {
 public:
  explicit Http1Protocol(const Http1Limits& limits) : limits_(limits) {}
  std::string_view name() const override { return "http/1"; }
  std::unique_ptr<ProtocolParser> makeParser(const ParserStart& start) const override {
    return std::make_unique<Http1Parser>(*start.sink, limits_, start.redaction, start.conn);
  }

 private:
  Http1Limits limits_;
};

}  // namespace

size_t registerHttp1(ProtocolRegistry& registry, const Http1Limits& limits) {
  const size_t id = registry.add(std::make_unique<Http1Protocol>(limits));
  registry.addStartDetector(20, id, detectStart);
  registry.addBoundaryDetector(20, id, findBoundary);
  return id;
}

}  // namespace l7tap
