#include "parsers/http1/resync.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "llhttp.h"

namespace l7tap::http1 {
namespace {

// llhttp's HTTP methods (not the RTSP ones, nor PRI: an HTTP/2 preface is no
// HTTP/1 boundary, and llhttp refuses them on an HTTP/1.x request line).
constexpr std::array<std::string_view, 34> kMethods = {
#define L7TAP_METHOD_NAME(num, name, string) #string,
    HTTP_METHOD_MAP(L7TAP_METHOD_NAME)
#undef L7TAP_METHOD_NAME
};

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
// "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = t[c + 'a' - 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

}  // namespace

bool isTchar(char c) { return kTchar[static_cast<unsigned char>(c)]; }

bool isLlhttpMethod(std::string_view token) {
  return std::find(kMethods.begin(), kMethods.end(), token) != kMethods.end();
}

bool isLlhttpMethodPrefix(std::string_view token) {
  return std::any_of(kMethods.begin(), kMethods.end(),
                     [token](std::string_view m) { return m.starts_with(token); });
}

size_t methodTokenLength(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && i <= kMaxMethodBytes && isTchar(line[i])) ++i;
  return i;
}

LineMatch matchRequestLine(std::string_view line, size_t max_line) {
  // Any token is a method (RFC 9110 §9.1): WebDAV's, llhttp's, extensions.
  // The whole line decides, so text that merely starts with a word is no
  // boundary: only a version at its end makes it a request line.
  const size_t i = methodTokenLength(line);
  if (i > kMaxMethodBytes) return LineMatch::kNo;
  if (i == line.size()) return LineMatch::kNeedMore;
  if (i == 0 || line[i] != ' ') return LineMatch::kNo;
  const size_t limit = std::min(line.size(), max_line);
  size_t end = i + 1;
  for (; end < limit; ++end) {
    const auto c = static_cast<unsigned char>(line[end]);
    if (c == '\n') break;
    if ((c < 0x20 && c != '\r') || c == 0x7f) return LineMatch::kNo;
  }
  if (end == limit) return line.size() < max_line ? LineMatch::kNeedMore : LineMatch::kNo;
  // line[0, end) must be "METHOD SP target SP HTTP/1.x [CR]" with a non-empty
  // target: servers such as nginx (and llhttp) take a bare LF as a line end
  // (RFC 9112 §2.2), so such a request is one the server answers.
  constexpr std::string_view k11 = " HTTP/1.1";
  constexpr std::string_view k10 = " HTTP/1.0";
  std::string_view head = line.substr(0, end);
  if (!head.empty() && head.back() == '\r') head.remove_suffix(1);
  if (head.size() < i + 2 + k11.size()) return LineMatch::kNo;
  const std::string_view version = head.substr(head.size() - k11.size());
  if (version != k11 && version != k10) return LineMatch::kNo;
  // One target, no space in it: `xx GET / HTTP/1.1` is no request line.
  const std::string_view target = head.substr(i + 1, head.size() - k11.size() - (i + 1));
  if (target.empty() || target.find(' ') != std::string_view::npos) return LineMatch::kNo;
  return LineMatch::kYes;
}

LineMatch matchStatusLine(std::string_view line) {
  constexpr std::string_view kPrefix = "HTTP/1.";
  constexpr size_t kLength = 12;  // "HTTP/1.1 200"
  const size_t n = std::min(line.size(), kLength);
  for (size_t k = 0; k < n; ++k) {
    const char c = line[k];
    bool ok;
    if (k < kPrefix.size()) {
      ok = c == kPrefix[k];
    } else if (k == kPrefix.size()) {
      ok = c == '0' || c == '1';
    } else if (k == kPrefix.size() + 1) {
      ok = c == ' ';
    } else {
      ok = c >= '0' && c <= '9';
    }
    if (!ok) return LineMatch::kNo;
  }
  return line.size() < kLength ? LineMatch::kNeedMore : LineMatch::kYes;
}

ResyncScanner::ResyncScanner(Role role, size_t max_line, size_t max_scan)
    : role_(role), max_line_(std::max<size_t>(max_line, 32)), max_scan_(max_scan) {
  // No reservation: the held line is only needed when a start line is split
  // across segments, and every connection has four scanners (two per side).
}

void ResyncScanner::start(bool at_line_start) {
  tail_.clear();
  line_start_ = at_line_start;
}

LineMatch ResyncScanner::match(std::string_view line) const {
  return role_ == Role::kClient ? matchRequestLine(line, max_line_) : matchStatusLine(line);
}

ResyncScanner::Result ResyncScanner::scan(std::string_view input, bool segment_start) {
  Result r;
  size_t pos = 0;
  if (segment_start && tail_.empty()) line_start_ = true;
  if (!tail_.empty()) {
    // Complete the held line with the new bytes and decide.
    const size_t held = tail_.size();
    const size_t take = std::min(input.size(), max_line_ - std::min(max_line_, held));
    tail_.append(input.substr(0, take));
    const LineMatch m = match(tail_);
    if (m == LineMatch::kYes) {
      // A request line is handed out whole: the parser reads its method
      // token in one piece (an unknown one is replaced before llhttp sees it).
      size_t keep = held;
      if (role_ == Role::kClient) {
        const size_t eol = tail_.find('\n');
        if (eol != std::string::npos) keep = std::max(held, eol + 1);
      }
      replay_.assign(tail_, 0, keep);
      tail_.clear();
      r.found = true;
      r.replay = replay_;
      r.input_offset = keep - held;
      return r;
    }
    if (m == LineMatch::kNeedMore && take == input.size() && tail_.size() < max_line_) {
      return r;  // still undecided: everything held
    }
    r.dropped += held;
    tail_.clear();
    line_start_ = segment_start;  // else inside the rejected line
  }

  bool at_line_start = line_start_;
  size_t scanned = 0;
  while (pos < input.size()) {
    if (at_line_start) {
      const LineMatch m = match(input.substr(pos));
      if (m == LineMatch::kYes) {
        r.found = true;
        r.input_offset = pos;
        r.dropped += pos;
        return r;
      }
      if (m == LineMatch::kNeedMore && input.size() - pos < max_line_) {
        tail_.assign(input.substr(pos));
        r.dropped += pos;
        return r;
      }
    }
    const void* nl = std::memchr(input.data() + pos, '\n', input.size() - pos);
    if (nl == nullptr) {
      at_line_start = false;
      break;
    }
    const size_t next = static_cast<size_t>(static_cast<const char*>(nl) - input.data()) + 1;
    scanned += next - pos;
    pos = next;
    at_line_start = true;
    if (scanned > max_scan_) {
      // Give up on this segment; the scan resumes with the next bytes.
      at_line_start = false;
      break;
    }
  }
  line_start_ = at_line_start;
  r.dropped += input.size();
  return r;
}

}  // namespace l7tap::http1
