// The curl fixtures with secrets (pcaps/http1-redaction, pcaps/h2c-redaction:
// a query token, userinfo in the URL, Host/:authority and an absolute-form
// target, Authorization, Cookie and X-Api-Key headers): no secret reaches a
// JSON line or a journald field, whatever the window or capture control.
#include <gtest/gtest.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

#include "daemon/journald_sink.h"
#include "daemon/pcap_source.h"
#include "daemon/pipeline.h"
#include "daemon/replay.h"

namespace l7tap {
namespace {

// Every secret the clients sent, as it appears on the wire.
const char* const kSecrets[] = {
    "s3cr3t",       "bob",       "pa55",      "alice",  "YWxpY2U6cGE1NQ",
    "t0k3n-h34d3r", "c00k13v4l", "k3y-v4lu3", "Bearer", "Basic",
};
const char* const kFixtures[] = {"http1-redaction", "h2c-redaction"};

struct Setting {
  uint32_t window;
  bool capture_control;
  std::string args;
};
const Setting kSettings[] = {{0, false, ""},
                             {256, false, "--window 256"},
                             {0, true, "--capture-control"},
                             {256, true, "--window 256 --capture-control"}};

std::string pcap(const char* name) {
  return std::string(L7TAP_SOURCE_DIR) + "/pcaps/" + name + ".pcap";
}

std::string replayJson(const std::string& args, const char* fixture) {
  const std::string cmd =
      std::string(L7TAP_BINARY) + " replay --quiet " + args + " " + pcap(fixture);
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd;
  return out;
}

// Renders every record through the journald field writer and keeps the
// encoded entries.
class JournalEntries final : public RecordSink {
 public:
  void onRecord(const ConnectionInfo& conn, const Record& record) override {
    journal_.onRecord(conn, record);
    std::string entry;
    for (const iovec& v : journal_.lastEntry()) {
      entry.append(static_cast<const char*>(v.iov_base), v.iov_len);
      entry += '\n';
    }
    entries.push_back(std::move(entry));
  }
  std::vector<std::string> entries;

 private:
  JournaldSink journal_{"l7tap-redaction-test"};
};

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(RedactionFixture, NoSecretInAnyJsonLine) {
  for (const char* fixture : kFixtures) {
    for (const Setting& s : kSettings) {
      const std::string json = replayJson(s.args, fixture);
      SCOPED_TRACE(std::string(fixture) + " " + s.args);
      // Both exchanges of each fixture, with the query's keys and the flag.
      EXPECT_EQ(count(json, "\"url.query\":\"token=REDACTED&user=REDACTED\""), 2u) << json;
      EXPECT_EQ(count(json, "\"redacted\""), 2u) << json;
      EXPECT_EQ(count(json, "@"), 0u) << json;
      for (const char* secret : kSecrets) EXPECT_EQ(json.find(secret), std::string::npos) << secret;
    }
  }
}

TEST(RedactionFixture, NoSecretInAnyJournaldField) {
  for (const char* fixture : kFixtures) {
    for (const Setting& s : kSettings) {
      SCOPED_TRACE(std::string(fixture) + " " + s.args);
      JournalEntries sink;
      Pipeline pipeline(sink);
      Replay replay(pipeline, {s.window, s.capture_control});
      PcapSource source;
      std::string error;
      ASSERT_TRUE(source.open(pcap(fixture), error)) << error;
      ASSERT_TRUE(replay.run(source, error)) << error;
      pipeline.finish();
      size_t redacted = 0;
      for (const std::string& e : sink.entries) {
        redacted += count(e, "L7TAP_FLAGS=redacted\n");
        for (const char* secret : kSecrets) EXPECT_EQ(e.find(secret), std::string::npos) << e;
        EXPECT_EQ(e.find('@'), std::string::npos) << e;
      }
      EXPECT_EQ(redacted, 2u);
      EXPECT_GE(sink.entries.size(), 4u);  // 2 exchanges, 2 connections
    }
  }
}

// The check above would see the secrets if they were there.
TEST(RedactionFixture, KeepQueryShowsTheQueryAsSent) {
  const std::string json = replayJson("--keep-query", "http1-redaction");
  EXPECT_NE(json.find("token=s3cr3t&user=bob"), std::string::npos) << json;
  // User info is removed even then: --keep-query is about the query only.
  EXPECT_EQ(json.find("pa55"), std::string::npos) << json;
  const std::string allowed = replayJson("--query-allow user", "h2c-redaction");
  EXPECT_EQ(count(allowed, "token=REDACTED&user=bob"), 2u) << allowed;
}

}  // namespace
}  // namespace l7tap
