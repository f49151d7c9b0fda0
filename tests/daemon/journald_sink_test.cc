#include "daemon/journald_sink.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/record_schema.h"
#include "parsers/tls/tls_protocol.h"
#include "tests/support/privileged.h"

namespace l7tap {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// Records used by several tests.

ConnectionInfo ipv4Conn() {
  ConnectionInfo c;
  c.id = 42;
  c.family = 4;
  c.addr[0] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 4};
  c.addr[1] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 9};
  c.port[0] = 41230;
  c.port[1] = 8080;
  c.first_ts_ns = 1'700'000'000'000'000'000;
  c.last_ts_ns = c.first_ts_ns + 1'234'567;
  return c;
}

ConnectionInfo ipv6Conn() {
  ConnectionInfo c = ipv4Conn();
  c.family = 6;
  c.addr[0] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  c.addr[1] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  return c;
}

HttpRecord getRecord() {
  HttpRecord r;
  r.method = "GET";
  r.path = "/api/user/10";
  r.version = "1.1";
  r.status = 200;
  r.request_start_ns = 1'700'000'000'000'000'000;
  r.response_end_ns = r.request_start_ns + 60'080'000;
  return r;
}

std::string allBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

// ---------------------------------------------------------------------------
// Field names.

TEST(JournaldFieldName, UpperCasesAndReplacesEverythingElse) {
  EXPECT_EQ(journaldFieldName("http.response.status_code"), "HTTP_RESPONSE_STATUS_CODE");
  EXPECT_EQ(journaldFieldName("l7tap.timing.request_start_ns"), "L7TAP_TIMING_REQUEST_START_NS");
  EXPECT_EQ(journaldFieldName("l7tap.http2.stream_id"), "L7TAP_HTTP2_STREAM_ID");
  EXPECT_EQ(journaldFieldName("a-b c/d"), "L7TAP_A_B_C_D");  // no '.': prefixed
  EXPECT_EQ(journaldFieldName("type"), "L7TAP_TYPE");
  EXPECT_EQ(journaldFieldName("time"), "L7TAP_TIME");
  EXPECT_EQ(journaldFieldName("l7tap.flags"), "L7TAP_FLAGS");
}

// Collects the schema names a visit produces.
struct NameCollector final : FieldVisitor {
  std::vector<std::string> names;
  void str(std::string_view n, std::string_view) override { names.emplace_back(n); }
  void num(std::string_view n, uint64_t) override { names.emplace_back(n); }
  void inum(std::string_view n, int64_t) override { names.emplace_back(n); }
  void millis(std::string_view n, uint64_t) override { names.emplace_back(n); }
  void time(std::string_view n, uint64_t) override { names.emplace_back(std::string(n) + "_ns"); }
  void addr(std::string_view n, const uint8_t*, uint8_t) override { names.emplace_back(n); }
  void flags(std::string_view n, uint32_t, const char* const*, size_t) override {
    names.emplace_back(n);
  }
};

bool validJournaldName(const std::string& n) {
  if (n.empty() || n.size() > 64 || n[0] == '_' || (n[0] >= '0' && n[0] <= '9')) return false;
  for (char c : n) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

TEST(JournaldFieldName, EverySchemaNameIsValidAndDistinct) {
  ConnectionInfo c = ipv4Conn();
  c.ifindex = 3;
  c.handshake_rtt_ns = 1000;
  HttpRecord r = getRecord();
  r.query = "q";
  r.host = "h";
  r.user_agent = "ua";
  r.interim_status = 100;
  r.stream_id = 1;
  r.rpc_service = "s";
  r.rpc_method = "m";
  r.grpc_status = 0;
  r.request_end_ns = r.response_start_ns = r.request_start_ns + 1;
  r.flags = kFlagGap;
  const TlsFacts tls(ClientHelloInfo{"sni", "h2"});
  ConnRecord p;
  p.facts = &tls;
  for (int which = 0; which < 2; ++which) {
    NameCollector v;
    if (which == 0) {
      r.visit(c, v);
    } else {
      p.visit(c, v);
    }
    std::set<std::string> seen;
    for (const std::string& n : v.names) {
      const std::string j = journaldFieldName(n);
      EXPECT_TRUE(validJournaldName(j)) << n << " -> " << j;
      EXPECT_TRUE(seen.insert(j).second) << "two schema names map to " << j;
    }
    EXPECT_GT(seen.size(), 20u);
    EXPECT_LT(v.names.size() + 3 + std::size(kHttpFlagNames), JournaldSink::kMaxFields);
  }
}

// ---------------------------------------------------------------------------
// MESSAGE and PRIORITY.

TEST(JournaldMessage, HttpExchange) {
  HttpRecord r = getRecord();
  EXPECT_EQ(formatHttpMessage(ipv4Conn(), r),
            "GET /api/user/10 -> 200 60.1 ms 10.1.0.4:41230 -> 10.1.0.9:8080");
  r.query = "a=1&b=2";
  r.status = 503;
  r.response_end_ns = r.request_start_ns + 49'999;  // rounds to 0.0
  r.flags = kFlagGap | kFlagReset;
  EXPECT_EQ(formatHttpMessage(ipv4Conn(), r),
            "GET /api/user/10?a=1&b=2 -> 503 0.0 ms 10.1.0.4:41230 -> 10.1.0.9:8080 [gap,reset]");
}

TEST(JournaldMessage, RolesComeFromClientSide) {
  ConnectionInfo c = ipv4Conn();
  c.client_side = Side::kResp;
  EXPECT_EQ(formatHttpMessage(c, getRecord()),
            "GET /api/user/10 -> 200 60.1 ms 10.1.0.9:8080 -> 10.1.0.4:41230");
}

TEST(JournaldMessage, NoResponseNoRequestIpv6AndMidstream) {
  HttpRecord r = getRecord();
  r.status = 0;
  r.response_end_ns = 0;
  r.flags = kFlagNoResponse;
  ConnectionInfo c = ipv6Conn();
  c.midstream = true;
  EXPECT_EQ(formatHttpMessage(c, r),
            "GET /api/user/10 -> no response - [fd00::1]:41230 -> [fd00::2]:8080 "
            "[midstream,no_response]");
  HttpRecord resp;
  resp.status = 404;
  resp.response_start_ns = resp.response_end_ns = 5;
  resp.flags = kFlagNoRequest;
  EXPECT_EQ(formatHttpMessage(ipv4Conn(), resp),
            "- - -> 404 - 10.1.0.4:41230 -> 10.1.0.9:8080 [no_request]");
}

TEST(JournaldMessage, EscapesControlAndInvalidBytes) {
  std::string out;
  appendMessageEscaped(out, std::string_view("a\0b\n\x1b\x7f\\", 7));
  EXPECT_EQ(out, "a\\x00b\\x0a\\x1b\\x7f\\x5c");
  out.clear();
  appendMessageEscaped(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");  // valid UTF-8 passes
  EXPECT_EQ(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  out.clear();
  appendMessageEscaped(out, "\xff\xc3 \xc0\xaf \xc2\x85");  // invalid, cut, overlong, C1
  EXPECT_EQ(out, "\\xff\\xc3 \\xc0\\xaf \\xc2\\x85");

  HttpRecord r = getRecord();
  r.path = allBytes();
  const std::string msg = formatHttpMessage(ipv4Conn(), r);
  for (unsigned char ch : msg) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << static_cast<int>(ch);
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_NE(msg.find("\\x00\\x01"), std::string::npos);
}

TEST(JournaldMessage, LongTargetIsCut) {
  HttpRecord r = getRecord();
  r.path = "/" + std::string(1000, 'p');
  r.query = "q=1";
  const std::string msg = formatHttpMessage(ipv4Conn(), r);
  EXPECT_NE(msg.find("/" + std::string(JournaldSink::kMaxMessageTarget - 1, 'p') + "... -> 200"),
            std::string::npos)
      << msg;
  r.path = "/" + std::string(JournaldSink::kMaxMessageTarget - 3, 'p');
  r.query = "abcdef";
  EXPECT_NE(formatHttpMessage(ipv4Conn(), r).find("pp?a... -> 200"), std::string::npos);
}

TEST(JournaldMessage, Connection) {
  ConnectionInfo c = ipv4Conn();
  ConnRecord p;
  p.protocol = "http/1";
  p.exchanges = 3;
  const std::string msg = formatConnMessage(c, p);
  EXPECT_EQ(msg, std::string("conn 10.1.0.4:41230 -> 10.1.0.9:8080 http/1 ") + c.state() +
                     " 3 exchanges 1.2 ms");
  p.exchanges = 1;
  p.interim = true;
  EXPECT_TRUE(formatConnMessage(c, p).ends_with(" 1 exchange 1.2 ms interim"));
}

TEST(JournaldPriority, FollowsStatusClass) {
  HttpRecord r;
  EXPECT_EQ(journaldPriority(r), 6);  // no response: info (flagged no_response)
  r.status = 200;
  EXPECT_EQ(journaldPriority(r), 6);
  r.status = 304;
  EXPECT_EQ(journaldPriority(r), 6);
  r.status = 404;
  EXPECT_EQ(journaldPriority(r), 5);
  r.status = 503;
  EXPECT_EQ(journaldPriority(r), 4);
}

// ---------------------------------------------------------------------------
// The entry as handed to sd_journal_sendv (no journald needed).

std::multimap<std::string, std::string> fields(const JournaldSink& sink) {
  std::multimap<std::string, std::string> out;
  for (const iovec& v : sink.lastEntry()) {
    const std::string_view f(static_cast<const char*>(v.iov_base), v.iov_len);
    const size_t eq = f.find('=');
    EXPECT_NE(eq, std::string_view::npos) << f;
    out.emplace(std::string(f.substr(0, eq)), std::string(f.substr(eq + 1)));
  }
  return out;
}

std::string one(const std::multimap<std::string, std::string>& m, const std::string& key) {
  EXPECT_EQ(m.count(key), 1u) << key;
  const auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

TEST(JournaldSinkEntry, HttpFields) {
  JournaldSink sink("l7tap-unit-test");
  HttpRecord r = getRecord();
  r.status = 503;
  r.flags = kFlagGap | kFlagReset;
  sink.onRecord(ipv4Conn(), r);
  const auto f = fields(sink);
  EXPECT_EQ(one(f, "MESSAGE"), formatHttpMessage(ipv4Conn(), r));
  EXPECT_EQ(one(f, "PRIORITY"), "4");
  EXPECT_EQ(one(f, "SYSLOG_IDENTIFIER"), "l7tap-unit-test");
  EXPECT_EQ(one(f, "L7TAP_TYPE"), "http");
  EXPECT_EQ(one(f, "L7TAP_TIME"), "2023-11-14T22:13:20.000000000Z");
  EXPECT_EQ(one(f, "L7TAP_TIME_NS"), "1700000000000000000");
  EXPECT_EQ(one(f, "L7TAP_CONNECTION_ID"), "42");
  EXPECT_EQ(one(f, "HTTP_REQUEST_METHOD"), "GET");
  EXPECT_EQ(one(f, "URL_PATH"), "/api/user/10");
  EXPECT_EQ(one(f, "HTTP_RESPONSE_STATUS_CODE"), "503");
  EXPECT_EQ(one(f, "CLIENT_ADDRESS"), "10.1.0.4");
  EXPECT_EQ(one(f, "CLIENT_PORT"), "41230");
  EXPECT_EQ(one(f, "SERVER_ADDRESS"), "10.1.0.9");
  EXPECT_EQ(one(f, "SERVER_PORT"), "8080");
  EXPECT_EQ(one(f, "L7TAP_TIMING_REQUEST_START_NS"), "1700000000000000000");
  EXPECT_EQ(one(f, "L7TAP_DURATION_MS"), "60.080000");
  const auto [lo, hi] = f.equal_range("L7TAP_FLAGS");
  std::vector<std::string> flags;
  for (auto it = lo; it != hi; ++it) flags.push_back(it->second);
  EXPECT_EQ(flags, (std::vector<std::string>{"gap", "reset"}));
  EXPECT_EQ(f.count("CODE_FILE"), 0u);
}

TEST(JournaldSinkEntry, ConnectionFieldsIpv6) {
  JournaldSink sink("l7tap-unit-test");
  ConnRecord p;
  p.protocol = "h2";
  p.exchanges = 2;
  sink.onRecord(ipv6Conn(), p);
  const auto f = fields(sink);
  EXPECT_EQ(one(f, "PRIORITY"), "6");
  EXPECT_EQ(one(f, "L7TAP_TYPE"), "conn");
  EXPECT_EQ(one(f, "CLIENT_ADDRESS"), "fd00::1");
  EXPECT_EQ(one(f, "L7TAP_PROTOCOL"), "h2");
  EXPECT_EQ(one(f, "L7TAP_CONN_HTTP_EXCHANGES"), "2");
  EXPECT_EQ(one(f, "L7TAP_CONN_DURATION_MS"), "1.234567");
  EXPECT_EQ(one(f, "MESSAGE"), formatConnMessage(ipv6Conn(), p));
}

TEST(JournaldSinkEntry, ConnectionTunnelFieldsByRole) {
  JournaldSink sink("l7tap-unit-test");
  ConnectionInfo c = ipv4Conn();
  c.client_side = Side::kResp;  // the outer addresses follow the roles
  ConnectionTunnel& t = c.tunnel.emplace();
  t.type = L7TAP_TUNNEL_VXLAN;
  t.outer_family = 6;
  t.has_id = true;
  t.id = 4242;
  t.outer_addr[0] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa};
  t.outer_addr[1] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb};
  ConnRecord p;
  p.protocol = "http/1";
  sink.onRecord(c, p);
  auto f = fields(sink);
  EXPECT_EQ(one(f, "L7TAP_TUNNEL_TYPE"), "vxlan");
  EXPECT_EQ(one(f, "L7TAP_TUNNEL_ID"), "4242");
  EXPECT_EQ(one(f, "L7TAP_TUNNEL_CLIENT_ADDRESS"), "2001:db8::b");
  EXPECT_EQ(one(f, "L7TAP_TUNNEL_SERVER_ADDRESS"), "2001:db8::a");

  // PPPoE: a session id, no outer addresses. Exchanges carry none of it.
  ConnectionInfo ppp = ipv4Conn();
  ConnectionTunnel& s = ppp.tunnel.emplace();
  s.type = L7TAP_TUNNEL_PPPOE;
  s.has_id = true;
  s.id = 7;
  sink.onRecord(ppp, p);
  f = fields(sink);
  EXPECT_EQ(one(f, "L7TAP_TUNNEL_TYPE"), "pppoe");
  EXPECT_EQ(one(f, "L7TAP_TUNNEL_ID"), "7");
  EXPECT_EQ(f.count("L7TAP_TUNNEL_CLIENT_ADDRESS"), 0u);
  sink.onRecord(c, getRecord());
  f = fields(sink);
  EXPECT_EQ(f.count("L7TAP_TUNNEL_TYPE"), 0u);
  // A bare connection has none; copies keep the tunnel.
  sink.onRecord(ipv4Conn(), p);
  EXPECT_EQ(fields(sink).count("L7TAP_TUNNEL_TYPE"), 0u);
  const ConnectionInfo copy = c;
  ASSERT_NE(copy.tunnel.get(), nullptr);
  EXPECT_NE(copy.tunnel.get(), c.tunnel.get());
  EXPECT_EQ(copy.tunnel.get()->id, 4242u);
}

TEST(JournaldSinkEntry, ValuesAreBoundedAndBinaryKept) {
  JournaldSink sink("l7tap-unit-test");
  HttpRecord r = getRecord();
  r.path = std::string(5000, 'x');
  r.query = allBytes();
  sink.onRecord(ipv4Conn(), r);
  auto f = fields(sink);
  EXPECT_EQ(one(f, "URL_PATH").size(), JournaldSink::kMaxValueBytes);
  EXPECT_EQ(one(f, "URL_QUERY"), allBytes());
  EXPECT_EQ(sink.truncatedValues(), 1u);
  // The next record reuses the storage; nothing of the previous one is left.
  sink.onRecord(ipv4Conn(), getRecord());
  f = fields(sink);
  EXPECT_EQ(one(f, "URL_PATH"), "/api/user/10");
  EXPECT_EQ(f.count("URL_QUERY"), 0u);
}

TEST(JournaldSinkEntry, CountsFailuresWithoutJournal) {
  if (JournaldSink::journalAvailable()) GTEST_SKIP() << "a journald is listening";
  JournaldSink sink;  // the default identifier
  EXPECT_TRUE(sink.ok());
  sink.onRecord(ipv4Conn(), getRecord());
  EXPECT_EQ(one(fields(sink), "SYSLOG_IDENTIFIER"), "l7tap");
  sink.onRecord(ipv4Conn(), ConnRecord{});
  EXPECT_FALSE(sink.ok());
  EXPECT_EQ(sink.failures(), 2u);
  EXPECT_NE(sink.lastError(), 0);
}

// ---------------------------------------------------------------------------
// A real journald.

// Minimal JSON reader for journalctl -o json lines: objects, arrays, strings,
// numbers, literals.
struct Json {
  enum Kind { kNull, kString, kNumber, kArray, kObject } kind = kNull;
  std::string text;  // string value, or a number's digits
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json* get(std::string_view key) const {
    for (const auto& [k, v] : members) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}
  bool parse(Json& out) {
    if (!value(out)) return false;
    ws();
    return i_ == s_.size();
  }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t')) ++i_;
  }
  bool value(Json& out) {
    ws();
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') {
      out.kind = Json::kString;
      return string(out.text);
    }
    if (c == '[') {
      out.kind = Json::kArray;
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      for (;;) {
        out.items.emplace_back();
        if (!value(out.items.back())) return false;
        ws();
        if (i_ >= s_.size()) return false;
        if (s_[i_++] == ']') return true;
        if (s_[i_ - 1] != ',') return false;
      }
    }
    if (c == '{') {
      out.kind = Json::kObject;
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      for (;;) {
        ws();
        std::string key;
        if (!string(key)) return false;
        ws();
        if (i_ >= s_.size() || s_[i_++] != ':') return false;
        out.members.emplace_back(std::move(key), Json{});
        if (!value(out.members.back().second)) return false;
        ws();
        if (i_ >= s_.size()) return false;
        if (s_[i_++] == '}') return true;
        if (s_[i_ - 1] != ',') return false;
      }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      out.kind = Json::kNumber;
      while (i_ < s_.size() && (s_[i_] == '-' || s_[i_] == '.' || (s_[i_] >= '0' && s_[i_] <= '9')))
        out.text.push_back(s_[i_++]);
      return true;
    }
    for (std::string_view lit : {"null", "true", "false"}) {
      if (s_.substr(i_, lit.size()) == lit) return i_ += lit.size(), true;
    }
    return false;
  }
  bool string(std::string& out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return false;
      const char e = s_[i_++];
      switch (e) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) return false;
          const unsigned cp = std::stoul(std::string(s_.substr(i_, 4)), nullptr, 16);
          i_ += 4;
          if (cp >= 0x80) return false;  // not needed for these tests
          out.push_back(static_cast<char>(cp));
          break;
        }
        default:
          out.push_back(e);
      }
    }
    return false;
  }
  std::string_view s_;
  size_t i_ = 0;
};

// A field's values: journalctl writes a repeated field as an array and a
// value that is not printable UTF-8 as an array of byte values.
std::vector<std::string> values(const Json& entry, std::string_view key) {
  const Json* v = entry.get(key);
  if (v == nullptr) return {};
  const auto bytes = [](const Json& arr) {
    std::string s;
    for (const Json& b : arr.items) s.push_back(static_cast<char>(std::stoi(b.text)));
    return s;
  };
  if (v->kind == Json::kString) return {v->text};
  std::vector<std::string> out;
  if (v->kind != Json::kArray) return out;
  if (!v->items.empty() && v->items[0].kind == Json::kNumber) return {bytes(*v)};
  for (const Json& item : v->items)
    out.push_back(item.kind == Json::kArray ? bytes(item) : item.text);
  return out;
}

std::string value(const Json& entry, std::string_view key) {
  const auto v = values(entry, key);
  EXPECT_EQ(v.size(), 1u) << key;
  return v.empty() ? std::string() : v[0];
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

std::vector<Json> readEntries(const std::string& args) {
  std::vector<Json> out;
  const std::string text = run("journalctl " + args + " -o json --no-pager 2>/dev/null");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    Json j;
    EXPECT_TRUE(JsonReader(line).parse(j)) << line;
    out.push_back(std::move(j));
  }
  return out;
}

bool inGroup(const char* name) {
  const group* g = getgrnam(name);
  if (g == nullptr) return false;
  gid_t groups[256];
  const int n = getgroups(256, groups);
  for (int i = 0; i < n; ++i) {
    if (groups[i] == g->gr_gid) return true;
  }
  return getegid() == g->gr_gid;
}

// A journald for the test: the running one, or one started here (as root)
// and stopped, with the directories it created, at the end. Tests that use a
// journald hold an advisory flock() on the journald binary (a file that exists
// wherever one can be started, so no lock file is left behind): two test
// processes (ctest -j, a plain and an ASan build) never start two journalds
// on one socket.
class TestJournald {
 public:
  static constexpr const char* kJournald = "/lib/systemd/systemd-journald";

  ~TestJournald() { stop(); }

  /// Empty when a journald is listening; otherwise why not.
  std::string start() {
    lock_fd_ = ::open(kJournald, O_RDONLY | O_CLOEXEC);
    if (lock_fd_ >= 0) ::flock(lock_fd_, LOCK_EX);
    const bool root = geteuid() == 0;
    if (JournaldSink::journalAvailable()) {
      if (!root && !inGroup("systemd-journal") && !inGroup("adm")) {
        return "reading the journal needs root or the systemd-journal group";
      }
      return {};
    }
    if (!root) return "no journald on /run/systemd/journal/socket, and starting one needs root";
    if (!std::filesystem::exists(kJournald)) return std::string(kJournald) + " is missing";
    std::string machine_id;
    std::ifstream("/etc/machine-id") >> machine_id;
    const std::vector<std::string> dirs = {
        "/run/systemd/journal", "/run/log/journal",
        machine_id.empty() ? std::string() : "/var/log/journal/" + machine_id};
    for (const std::string& dir : dirs) {
      if (!dir.empty() && !std::filesystem::exists(dir)) created_.push_back(dir);
    }
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the test
      const int null = ::open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      execl(kJournald, kJournald, static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid_ < 0) return "fork failed";
    for (int i = 0; i < 100; ++i) {
      if (JournaldSink::journalAvailable()) return {};
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "systemd-journald exited at start";
      }
      std::this_thread::sleep_for(50ms);
    }
    return "systemd-journald did not create its socket within 5 s";
  }

  bool startedHere() const { return pid_ > 0; }

  /// Stops the journald started here (if any), removes what it created and
  /// releases the lock.
  void stop() {
    stopProcess();
    for (const std::string& dir : created_) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
    created_.clear();
    if (lock_fd_ >= 0) {
      ::close(lock_fd_);  // releases the lock
      lock_fd_ = -1;
    }
  }

  /// Stops the journald started here, leaving its (now stale) sockets.
  void stopProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status;
    bool exited = false;
    for (int i = 0; i < 100 && !exited; ++i) {
      exited = waitpid(pid_, &status, WNOHANG) == pid_;
      if (!exited) std::this_thread::sleep_for(50ms);
    }
    if (!exited) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int lock_fd_ = -1;
  std::vector<std::string> created_;
};

std::string uniqueIdentifier() {
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "l7tap-test-%d-%08x", static_cast<int>(getpid()), rd());
  return buf;
}

TEST(JournaldReal, EntriesCanBeFoundByField) {
  TestJournald journald;
  L7TAP_SKIP_UNLESS(journald.start());
  const std::string ident = uniqueIdentifier();

  const ConnectionInfo c = ipv4Conn();
  HttpRecord failed = getRecord();
  failed.status = 503;
  failed.flags = kFlagGap | kFlagReset;
  HttpRecord garbage = getRecord();
  garbage.path = allBytes();
  garbage.user_agent = "x\nFAKE_INJECTED_FIELD=1\n";
  garbage.host = "example.test";
  ConnRecord p;
  p.protocol = "http/1";
  p.exchanges = 2;
  {
    JournaldSink sink(ident);
    sink.onRecord(c, failed);
    sink.onRecord(c, garbage);
    sink.onRecord(c, p);
    EXPECT_TRUE(sink.ok()) << "last error " << sink.lastError();
  }

  std::vector<Json> entries;
  for (int i = 0; i < 50 && entries.size() < 3; ++i) {
    run("journalctl --sync >/dev/null 2>&1");
    entries = readEntries("-t " + ident);
    if (entries.size() < 3) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(entries.size(), 3u);

  const Json& http = entries[0];
  EXPECT_EQ(value(http, "SYSLOG_IDENTIFIER"), ident);
  EXPECT_EQ(value(http, "L7TAP_TYPE"), "http");
  EXPECT_EQ(value(http, "HTTP_RESPONSE_STATUS_CODE"), "503");
  EXPECT_EQ(value(http, "PRIORITY"), "4");
  EXPECT_EQ(value(http, "MESSAGE"),
            "GET /api/user/10 -> 503 60.1 ms 10.1.0.4:41230 -> 10.1.0.9:8080 [gap,reset]");
  EXPECT_EQ(value(http, "L7TAP_CONNECTION_ID"), "42");
  EXPECT_EQ(values(http, "L7TAP_FLAGS"), (std::vector<std::string>{"gap", "reset"}));
  EXPECT_EQ(value(http, "L7TAP_TIME_NS"), "1700000000000000000");
  EXPECT_EQ(http.get("CODE_FILE"), nullptr);

  const Json& bin = entries[1];
  EXPECT_EQ(value(bin, "URL_PATH"), allBytes());
  EXPECT_EQ(value(bin, "USER_AGENT_ORIGINAL"), garbage.user_agent);
  EXPECT_EQ(bin.get("FAKE_INJECTED_FIELD"), nullptr);
  EXPECT_EQ(value(bin, "HTTP_REQUEST_HEADER_HOST"), "example.test");  // fields after it intact
  EXPECT_EQ(value(bin, "SERVER_PORT"), "8080");
  const Json* msg = bin.get("MESSAGE");
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(msg->kind, Json::kString) << "MESSAGE must stay printable";
  EXPECT_EQ(msg->text, formatHttpMessage(c, garbage));
  EXPECT_EQ(value(bin, "PRIORITY"), "6");

  const Json& conn = entries[2];
  EXPECT_EQ(value(conn, "L7TAP_TYPE"), "conn");
  EXPECT_EQ(value(conn, "PRIORITY"), "6");
  EXPECT_EQ(value(conn, "L7TAP_CONNECTION_ID"), "42");
  EXPECT_EQ(value(conn, "MESSAGE"), formatConnMessage(c, p));
  EXPECT_EQ(value(conn, "L7TAP_CONN_HTTP_EXCHANGES"), "2");

  const auto by_status = readEntries("-t " + ident + " HTTP_RESPONSE_STATUS_CODE=503");
  ASSERT_EQ(by_status.size(), 1u);
  EXPECT_EQ(value(by_status[0], "L7TAP_TYPE"), "http");
  EXPECT_EQ(readEntries("-t " + ident + " L7TAP_FLAGS=reset").size(), 1u);
  EXPECT_EQ(readEntries("-t " + ident + " L7TAP_CONNECTION_ID=42").size(), 3u);
  EXPECT_EQ(readEntries("-t " + ident + " L7TAP_TYPE=conn").size(), 1u);

  if (journald.startedHere()) {
    // journald gone, its socket file left behind: sends are refused.
    journald.stopProcess();
    EXPECT_FALSE(JournaldSink::journalAvailable());
    JournaldSink sink(ident);
    sink.onRecord(c, failed);
    EXPECT_FALSE(sink.ok());
    EXPECT_EQ(sink.lastError(), ECONNREFUSED);
    // No socket at all: libsystemd drops the entry silently, the sink counts it.
    journald.stop();
    sink.onRecord(c, p);
    EXPECT_EQ(sink.failures(), 2u);
    EXPECT_EQ(sink.lastError(), ENOENT);
  }
}

}  // namespace
}  // namespace l7tap
