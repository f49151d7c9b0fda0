// `l7tap trace`'s options: what it needs (a process or a binary, and
// something to time), its bounds, and its defaults.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon/cli_options.h"

namespace l7tap {
namespace {

struct Parsed {
  OptionsResult result;
  TraceOptions options;
  std::string error;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "trace");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Parsed p{};
  opterr = 0;
  p.result = parseTraceOptions(static_cast<int>(args.size()), argv.data(), p.options, p.error);
  return p;
}

TEST(TraceOptions, DefaultsAreTheDocumentedOnes) {
  const Parsed p = parse({"--pid", "4242", "--func", "main.handleGetUser"});
  ASSERT_EQ(p.result, OptionsResult::kRun) << p.error;
  EXPECT_EQ(p.options.pid, 4242u);
  EXPECT_TRUE(p.options.binary.empty());
  EXPECT_EQ(p.options.functions, std::vector<std::string>{"main.handleGetUser"});
  EXPECT_FALSE(p.options.histogram);
  EXPECT_EQ(p.options.interval_s, 10u);
  EXPECT_EQ(p.options.duration_s, 0u);
  EXPECT_EQ(p.options.output, "json");
  EXPECT_FALSE(p.options.metrics.enabled());
}

TEST(TraceOptions, EveryOption) {
  const Parsed p =
      parse({"--binary", "/srv/app", "-f", "main.handle*", "--func", "main.other", "--usdt",
             "app:start:done", "--histogram", "--interval", "5", "--duration", "60", "--output",
             "journald", "--metrics-addr", "127.0.0.1:0"});
  ASSERT_EQ(p.result, OptionsResult::kRun) << p.error;
  EXPECT_EQ(p.options.binary, "/srv/app");
  EXPECT_EQ(p.options.functions, (std::vector<std::string>{"main.handle*", "main.other"}));
  EXPECT_EQ(p.options.usdt, std::vector<std::string>{"app:start:done"});
  EXPECT_TRUE(p.options.histogram);
  EXPECT_EQ(p.options.interval_s, 5u);
  EXPECT_EQ(p.options.duration_s, 60u);
  EXPECT_EQ(p.options.output, "journald");
  EXPECT_TRUE(p.options.metrics.enabled());
}

TEST(TraceOptions, NeedsOneTargetAndSomethingToTime) {
  EXPECT_EQ(parse({"--func", "f"}).error, "trace needs one of --pid and --binary");
  EXPECT_EQ(parse({"--pid", "1", "--binary", "/bin/true", "--func", "f"}).error,
            "trace needs one of --pid and --binary");
  EXPECT_EQ(parse({"--pid", "1"}).error, "trace needs --func or --usdt");
  EXPECT_EQ(parse({"--pid", "1", "--usdt", "p:a:b"}).result, OptionsResult::kRun);
}

TEST(TraceOptions, ValuesOutOfBoundsAreRefused) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--pid", "0", "--func", "f"},
           {"--pid", "-3", "--func", "f"},
           {"--pid", "1", "--func", ""},
           {"--pid", "1", "--func", "f", "--interval", "0"},
           {"--pid", "1", "--func", "f", "--duration", "86401"},
           {"--pid", "1", "--func", "f", "--output", "both"},
           {"--pid", "1", "--func", "f", "stray"},
       }) {
    const Parsed p = parse(args);
    EXPECT_EQ(p.result, OptionsResult::kUsage) << args[args.size() - 1];
    EXPECT_FALSE(p.error.empty());
  }
  std::vector<std::string> many = {"--pid", "1"};
  for (size_t i = 0; i <= TraceLimits::kMaxPatterns; ++i) {
    many.push_back("--func");
    many.push_back("f" + std::to_string(i));
  }
  const Parsed p = parse(many);
  EXPECT_EQ(p.result, OptionsResult::kUsage);
  EXPECT_EQ(p.error, "--func is repeatable at most 64 times");
}

}  // namespace
}  // namespace l7tap
