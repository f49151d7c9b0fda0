// The --trace-config file: what it accepts, and every refusal as one line
// naming the file, the line and the key.
#include "apptrace/trace_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace l7tap {
namespace {

bool parse(const std::string& text, TraceConfig& config, std::string& error) {
  return parseTraceConfig(text, "t.yaml", config, error);
}

std::string errorOf(const std::string& text) {
  TraceConfig config;
  std::string error;
  EXPECT_FALSE(parse(text, config, error)) << text;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_TRUE(config.traces.empty());
  return error;
}

TEST(TraceConfig, ReadsEntries) {
  TraceConfig config;
  std::string error;
  ASSERT_TRUE(parse(R"(# functions of two programs
traces:
  - executable: app
    functions: ["main.handle*", "main.(*Server).ServeHTTP"]
  - executable: /usr/sbin/server
    functions: handle_request
    usdt: [srv:request__start:request__end, "srv:work"]
)",
                    config, error))
      << error;
  ASSERT_EQ(config.traces.size(), 2u);
  EXPECT_EQ(config.traces[0].executable, "app");
  EXPECT_EQ(config.traces[0].functions,
            (std::vector<std::string>{"main.handle*", "main.(*Server).ServeHTTP"}));
  EXPECT_TRUE(config.traces[0].usdt.empty());
  EXPECT_EQ(config.traces[0].line, 3u);
  EXPECT_EQ(config.traces[1].executable, "/usr/sbin/server");
  EXPECT_EQ(config.traces[1].functions, (std::vector<std::string>{"handle_request"}));
  EXPECT_EQ(config.traces[1].usdt,
            (std::vector<std::string>{"srv:request__start:request__end", "srv:work"}));
  EXPECT_EQ(config.traces[1].line, 5u);
}

TEST(TraceConfig, RefusesWithFileLineAndKey) {
  EXPECT_EQ(errorOf(""), "t.yaml: empty: nothing to trace");
  EXPECT_EQ(errorOf("- a\n"), "t.yaml:1: a map with one key, traces");
  EXPECT_EQ(errorOf("trace:\n  - executable: a\n"),
            "t.yaml:1: trace: unknown key (the file has one key, traces)");
  EXPECT_EQ(errorOf("traces: app\n"),
            "t.yaml:1: traces: a list of entries (executable, functions, usdt)");
  EXPECT_EQ(errorOf("traces: []\n"),
            "t.yaml:1: traces: a list of entries (executable, functions, usdt)");
  EXPECT_EQ(errorOf("traces:\n  - app\n"),
            "t.yaml:2: traces: each entry is a map (executable, functions, usdt), not a string");
  EXPECT_EQ(errorOf("traces:\n  - functions: [f]\n"),
            "t.yaml:2: traces: an entry without executable");
  EXPECT_EQ(errorOf("traces:\n  - executable: app\n"),
            "t.yaml:2: traces: app: nothing to trace (no functions, no usdt)");
  EXPECT_EQ(errorOf("traces:\n  - executable: app\n    function: [f]\n"),
            "t.yaml:3: function: unknown key (an entry has executable, functions, usdt)");
  EXPECT_EQ(errorOf("traces:\n  - executable: app\n    functions: [f]\n    functions: [g]\n"),
            "t.yaml:4: functions: set twice");
  EXPECT_EQ(errorOf("traces:\n  - executable: bin/app\n    functions: [f]\n"),
            "t.yaml:2: executable: 'bin/app' is neither a basename nor an absolute path");
  EXPECT_EQ(errorOf("traces:\n  - executable: [a]\n    functions: [f]\n"),
            "t.yaml:2: executable: a name or an absolute path");
  EXPECT_EQ(errorOf("traces:\n  - executable: app\n    functions:\n      - [f]\n"),
            "t.yaml:4: functions: a list of strings, not of lists");
  EXPECT_EQ(errorOf("traces:\n  - executable: app\n    functions: ['']\n"),
            "t.yaml:3: functions: an empty value");
  EXPECT_EQ(errorOf("traces:\n  - executable: app\n    usdt: [p:a:b:c]\n"),
            "t.yaml:3: usdt: USDT probe 'p:a:b:c': expected PROVIDER:START:END or PROVIDER:NAME");
  EXPECT_EQ(errorOf("traces:\n  - executable: app\n    functions: {a: b}\n"),
            "t.yaml:3: functions: a string or a list of strings, not a map");
  EXPECT_EQ(errorOf("traces:\n  - executable: app\n    functions: [f\n").rfind("t.yaml:", 0), 0u);
  EXPECT_NE(errorOf("traces: [\n").find("not valid YAML"), std::string::npos);
  // A quoted key or value may hold a newline; the error stays one line.
  EXPECT_EQ(errorOf("traces:\n  - executable: \"a/\\nb\"\n    functions: [f]\n"),
            "t.yaml:2: executable: 'a/\\x0ab' is neither a basename nor an absolute path");
  EXPECT_EQ(errorOf("\"tra\\nces\": []\n"),
            "t.yaml:1: tra\\x0aces: unknown key (the file has one key, traces)");
}

TEST(TraceConfig, Bounds) {
  std::string many = "traces:\n";
  for (size_t i = 0; i <= TraceConfigLimits::kMaxEntries; ++i) {
    many += "  - {executable: a" + std::to_string(i) + ", functions: [f]}\n";
  }
  EXPECT_EQ(errorOf(many), "t.yaml:1: traces: more than 64 entries");
  std::string patterns = "traces:\n  - executable: app\n    functions: [f]\n    usdt: [";
  for (size_t i = 0; i < TraceConfigLimits::kMaxPatterns; ++i) patterns += "p:n,";
  patterns += "]\n";
  EXPECT_EQ(errorOf(patterns), "t.yaml:2: traces: app: more than 64 functions and probes");
  EXPECT_EQ(errorOf(std::string(TraceConfigLimits::kMaxFileBytes + 1, '#')),
            "t.yaml: larger than 65536 bytes");
}

TEST(TraceConfig, LoadsFiles) {
  TraceConfig config;
  std::string error;
  EXPECT_FALSE(loadTraceConfig("/nonexistent/a14t.yaml", config, error));
  EXPECT_EQ(error, "/nonexistent/a14t.yaml: No such file or directory");

  char path[] = "/tmp/a14t-trace-config-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "traces:\n  - executable: app\n    usdt: p:n\n";
  const bool ok = loadTraceConfig(path, config, error);
  std::remove(path);
  ASSERT_TRUE(ok) << error;
  ASSERT_EQ(config.traces.size(), 1u);
  EXPECT_EQ(config.traces[0].usdt, (std::vector<std::string>{"p:n"}));
}

TEST(TraceConfig, MatchesExecutables) {
  TraceConfig::Entry by_name{.executable = "app"};
  TraceConfig::Entry by_path{.executable = "/srv/app"};
  EXPECT_TRUE(traceEntryMatches(by_name, "/srv/app"));
  EXPECT_TRUE(traceEntryMatches(by_name, "/usr/local/bin/app (deleted)"));
  EXPECT_FALSE(traceEntryMatches(by_name, "/srv/app2"));
  EXPECT_FALSE(traceEntryMatches(by_name, "/srv/myapp"));
  EXPECT_TRUE(traceEntryMatches(by_path, "/srv/app"));
  EXPECT_TRUE(traceEntryMatches(by_path, "/srv/app (deleted)"));
  EXPECT_FALSE(traceEntryMatches(by_path, "/other/app"));
}

}  // namespace
}  // namespace l7tap
