// --config FILE and `l7tap config check`: every option a flag sets is a key
// with the flag's checks and messages; every error is one line naming the
// file, the line and the key; flags override the file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "config/config_file.h"
#include "daemon/cli_options.h"

namespace fs = std::filesystem;

namespace l7tap {
namespace {

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("l7tap-config-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

  template <class Options>
  static OptionsResult parse(OptionsResult (*fn)(int, char**, Options&, std::string&),
                             std::vector<std::string> args, Options& options, std::string& error) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    opterr = 0;
    return fn(static_cast<int>(args.size()), argv.data(), options, error);
  }

  fs::path dir_;
};

// What `key: value` gives in a config file of `command`, as check says it.
std::string checkText(const std::string& command, const std::string& text) {
  std::string error;
  return checkConfigText(command, text, "f.yaml", error) ? "ok" : error;
}

// A valid value of every option of both commands, and an invalid one with
// the flag's message. A flag added without a line here fails
// EveryFlagIsAKey: the config file takes every option.
struct Sample {
  const char* good;
  const char* bad = nullptr;
  const char* flag_message = nullptr;  ///< what `--key bad` says
};
const std::map<std::string, Sample> kSamples = {
    {"window", {"1024", "0", nullptr}},  // messages differ: replay's and attach's
    {"capture-control", {"true", "maybe", nullptr}},
    {"output", {"json", nullptr}},
    {"quiet", {"true", "1", nullptr}},
    {"keep-query", {"true", "on", nullptr}},
    {"query-allow",
     {"[page, q]", "a=b", "--query-allow needs a query key without '&' or '=', not 'a=b'"}},
    {"redact-path",
     {"[/users/*/tokens/*, /reset/**]", "/a/**/b",
      "--redact-path '/a/**/b': '**' must be the last segment"}},
    {"metrics-addr",
     {"'[::1]:0'", "9464",
      "--metrics-addr needs HOST:PORT, [IPV6]:PORT, :PORT or none, not '9464'"}},
    {"metrics-out", {"/tmp/m.prom", "''", "--metrics-out needs a file name"}},
    {"route-pattern",
     {"/api/{id}", "api", "--route-pattern needs a path pattern starting with '/', not 'api'"}},
    {"max-series-per-metric",
     {"10", "1000001", "--max-series-per-metric needs 1..1000000, not '1000001'"}},
    {"iface", {"veth*", nullptr}},
    {"port", {"[80, 8080]", "0", "--port needs 1..65535, not '0'"}},
    {"cidr", {"10.0.0.0/8", "x", "--cidr needs ADDRESS[/PREFIX], not 'x'"}},
    {"interim", {"0", "86401", "--interim needs seconds (0..86400), not '86401'"}},
    {"ring-kb", {"4", "12", "--ring-kb needs a power of two, 4..1048576, not '12'"}},
    {"drain-ms", {"10", "0", "--drain-ms needs 1..10000, not '0'"}},
    {"wakeup-bytes", {"0", "-1", "--wakeup-bytes needs a byte count, not '-1'"}},
    {"attach-mode", {"tcx", "tc", "--attach-mode is auto, tcx, clsact or xdp, not 'tc'"}},
    {"no-capture-control", {"true", "nope", nullptr}},
    {"no-tls-uprobes", {"true", "off", nullptr}},
    {"tls-all-processes", {"true", "all", nullptr}},
    {"tls-pid", {"[1, 2]", "0", "--tls-pid needs a process id, not '0'"}},
    {"tls-binary", {"/usr/local/bin/server", nullptr}},
    {"user", {"root", "no-such-user-l7tap", "--user no-such-user-l7tap: no such user"}},
    {"kubelet", {"none", "x", "--kubelet needs an https:// or http:// URL, auto or none, not 'x'"}},
    {"kubelet-token", {"/t", nullptr}},
    {"kubelet-ca", {"/ca", nullptr}},
    {"kubelet-insecure",
     {"false", "yes", "--kubelet-insecure needs true or false (or no value), not 'yes'"}},
    {"kubelet-refresh", {"5", "0", "--kubelet-refresh needs seconds (1..3600), not '0'"}},
    {"host-proc", {"/host/proc", nullptr}},
    {"node-name", {"n1", nullptr}},
    {"lock-dir", {"/run/l7tap", nullptr}},
    {"records",
     {"errors,slow:100ms,sample:0.01", "often",
      "--records often: 'often' is not all, errors, slow:DURATION or sample:P"}},
    {"nice", {"10", "20", "--nice needs 0..19 (0: leave as is), not '20'"}},
    {"trace-config", {"/etc/l7tap/traces.yaml", "''", "--trace-config needs a file name"}},
};

TEST_F(ConfigFileTest, EveryFlagIsAKeyWithTheFlagsMessages) {
  for (const char* command : {"attach", "replay"}) {
    const std::vector<std::string> keys = configKeys(command);
    ASSERT_FALSE(keys.empty()) << command;
    for (const std::string& key : keys) {
      const auto sample = kSamples.find(key);
      ASSERT_NE(sample, kSamples.end())
          << "--" << key << " (" << command << "): add a sample value to kSamples";
      EXPECT_EQ(checkText(command, key + ": " + sample->second.good), "ok")
          << command << " " << key;
      if (sample->second.flag_message) {
        EXPECT_EQ(checkText(command, "# options\n" + key + ": " + sample->second.bad),
                  "f.yaml:2: " + key + ": " + sample->second.flag_message);
      } else if (sample->second.bad) {
        EXPECT_NE(checkText(command, key + ": " + sample->second.bad), "ok") << key;
      }
    }
    EXPECT_EQ(checkText(command, "help: true"),
              std::string("f.yaml:1: help: not an option of ") + command);
  }
  EXPECT_EQ(checkText("replay", "window: 0"),
            "f.yaml:1: window: --window needs a positive byte count, not '0'");
  EXPECT_EQ(checkText("attach", "window: 0"),
            "f.yaml:1: window: --window needs 1..4096 bytes live, not '0'");
  EXPECT_EQ(checkText("attach", "metrics-out: x"),
            "f.yaml:1: metrics-out: not an option of attach");
}

// Every --flag the usage text names is an option of a command, hence a key.
TEST_F(ConfigFileTest, EveryFlagInTheUsageIsAKey) {
  FILE* p = popen((std::string(L7TAP_BINARY) + " --help").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string usage;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) usage.append(buf, n);
  pclose(p);
  std::set<std::string> keys;
  for (const char* command : {"attach", "replay", "trace"}) {
    for (const std::string& k : configKeys(command)) keys.insert(k);
  }
  const std::regex flag("--([a-z][a-z0-9-]*)");
  size_t flags = 0;
  for (auto it = std::sregex_iterator(usage.begin(), usage.end(), flag);
       it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    if (name == "help" || name == "config" || name == "command") continue;
    ++flags;
    EXPECT_TRUE(keys.count(name)) << "--" << name << " is in the usage but no config key";
  }
  EXPECT_GT(flags, 25u);
}

TEST_F(ConfigFileTest, ErrorsAreOneLineNamingFileLineAndKey) {
  const struct {
    const char* text;
    const char* error;
  } kCases[] = {
      {"window: 1\nbogus: 2\n", "f.yaml:2: bogus: not an option of attach"},
      {"window: 4097\n", "f.yaml:1: window: --window needs 1..4096 bytes live, not '4097'"},
      {"window: 1\n\nwindow: 2\n", "f.yaml:3: window: set twice (first on line 1)"},
      {"window: [1, 2]\n", "f.yaml:1: window: one value, not a list"},
      {"window:\n  a: 1\n", "f.yaml:1: window: a value or a list of values, not a map"},
      {"window:\n", "f.yaml:1: window: no value"},
      {"window: ~\n", "f.yaml:1: window: no value"},
      {"iface: [[a]]\n", "f.yaml:1: iface: a list of values, not of lists"},
      {"iface:\n  - a\n  - {b: 1}\n", "f.yaml:3: iface: a list of values, not of maps"},
      {"port:\n  - 80\n  - 0\n", "f.yaml:3: port: --port needs 1..65535, not '0'"},
      {"window: [1\n", "f.yaml:2: not valid YAML: end of sequence flow not found"},
      {"window: 1\n bad: 2\n", "f.yaml:2: not valid YAML: illegal map value"},
      {"window: *nope\n", "f.yaml:1: not valid YAML: the referenced anchor is not defined"},
      {"- a\n- b\n", "f.yaml:1: a config file is a map of option names to values (key: value)"},
      {"just text\n", "f.yaml:1: a config file is a map of option names to values (key: value)"},
      {"[a]: 1\n", "f.yaml:1: a key is an option name, not a list or map"},
      {"config: other.yaml\n", "f.yaml:1: config: a config file cannot name another config file"},
      {"keep-query: yes\n", "f.yaml:1: keep-query: needs true or false, not 'yes'"},
      {"keep-query: [true]\n", "f.yaml:1: keep-query: one value, not a list"},
      {"port: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n", "f.yaml:1: port: at most 16 values"},
      {"cidr: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4, 1.1.1.5, 1.1.1.6, 1.1.1.7, 1.1.1.8, 1.1.1.9]\n",
       "f.yaml:1: cidr: at most 8 values"},
      {"user: root\nattach-mode: xdp\n", "f.yaml: --user does not go with --attach-mode xdp"},
  };
  for (const auto& c : kCases) EXPECT_EQ(checkText("attach", c.text), c.error) << c.text;
  // Empty files and comments set nothing.
  EXPECT_EQ(checkText("attach", ""), "ok");
  EXPECT_EQ(checkText("attach", "# nothing\n"), "ok");
  EXPECT_EQ(checkText("replay", "iface: a\n"), "f.yaml:1: iface: not an option of replay");
}

TEST_F(ConfigFileTest, BoundedSizeAndLists) {
  std::string big(config::ConfigLimits::kMaxFileBytes + 1, '#');
  EXPECT_EQ(checkText("attach", big), "f.yaml: larger than 1048576 bytes");
  std::string many = "iface: [";
  for (size_t i = 0; i <= config::ConfigLimits::kMaxListValues; ++i) many += "a,";
  many += "a]";
  EXPECT_EQ(checkText("attach", many), "f.yaml:1: iface: more than 1024 values");
  std::string allow = "query-allow: [";
  for (size_t i = 0; i <= RedactionLimits::kMaxAllowedKeys; ++i)
    allow += "k" + std::to_string(i) + ",";
  allow.back() = ']';
  EXPECT_EQ(checkText("replay", allow), "f.yaml:1: query-allow: at most 64 values");
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "[";
  EXPECT_NE(checkText("attach", "a: " + deep), "ok");  // an error, not a stack overflow
}

TEST_F(ConfigFileTest, FileErrors) {
  std::string error;
  EXPECT_FALSE(checkConfigFile("attach", (dir_ / "missing.yaml").string(), error));
  EXPECT_EQ(error, (dir_ / "missing.yaml").string() + ": No such file or directory");
  EXPECT_FALSE(checkConfigFile("attach", dir_.string(), error));
  EXPECT_EQ(error, dir_.string() + ": Is a directory");
  const std::string ok = write("ok.yaml", "window: 512\n");
  EXPECT_TRUE(checkConfigFile("attach", ok, error)) << error;
}

TEST_F(ConfigFileTest, FlagsOverrideTheFile) {
  const std::string file = write("a.yaml",
                                 "window: 512\n"
                                 "iface: [a, b]\n"
                                 "port: 80\n"
                                 "query-allow: [x, y]\n"
                                 "keep-query: true\n"
                                 "kubelet-insecure: true\n"
                                 "metrics-addr: none\n"
                                 "route-pattern: /r/{id}\n"
                                 "redact-path: /s/*\n"
                                 "max-series-per-metric: 5\n"
                                 "no-capture-control: false\n");
  AttachOptions fromFile;
  std::string error;
  ASSERT_EQ(parse(parseAttachOptions, {"attach", "--config", file}, fromFile, error),
            OptionsResult::kRun)
      << error;
  EXPECT_EQ(fromFile.live.window, 512u);
  EXPECT_EQ(fromFile.live.interfaces, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(fromFile.live.ports, std::vector<uint16_t>{80});
  EXPECT_EQ(fromFile.redaction.query_allow, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(fromFile.redaction.keep_query);
  EXPECT_TRUE(fromFile.identity.kubelet_insecure);
  EXPECT_TRUE(fromFile.metrics.address.empty());
  EXPECT_EQ(fromFile.metrics.route_patterns, std::vector<std::string>{"/r/{id}"});
  EXPECT_EQ(fromFile.redaction.path_patterns, std::vector<std::string>{"/s/*"});
  EXPECT_EQ(fromFile.metrics.limits.max_series_per_metric, 5u);
  EXPECT_TRUE(fromFile.live.capture_control);

  // Before or after --config: the flags win; a repeatable flag's values
  // replace the file's list, the other lists stay the file's.
  AttachOptions both;
  ASSERT_EQ(parse(parseAttachOptions,
                  {"attach", "--window", "256", "-i", "c", "--config", file, "--iface", "d",
                   "--kubelet-insecure=false", "--metrics-addr", "127.0.0.1:0", "--port", "81",
                   "--port", "82"},
                  both, error),
            OptionsResult::kRun)
      << error;
  EXPECT_EQ(both.live.window, 256u);
  EXPECT_EQ(both.live.interfaces, (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(both.live.ports, (std::vector<uint16_t>{81, 82}));
  EXPECT_EQ(both.redaction.query_allow, (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(both.identity.kubelet_insecure);
  EXPECT_EQ(both.metrics.address, "127.0.0.1:0");

  // The file's bad value is reported even when a flag would override it.
  const std::string bad = write("bad.yaml", "ring-kb: 3\n");
  AttachOptions b;
  EXPECT_EQ(parse(parseAttachOptions, {"attach", "--config", bad, "--ring-kb", "8"}, b, error),
            OptionsResult::kConfig);
  EXPECT_EQ(error, bad + ":1: ring-kb: --ring-kb needs a power of two, 4..1048576, not '3'");
  // And a bad flag over a good file is a usage error, with the flag's message.
  AttachOptions f;
  EXPECT_EQ(parse(parseAttachOptions, {"attach", "--config", file, "--window", "0"}, f, error),
            OptionsResult::kUsage);
  EXPECT_EQ(error, "--window needs 1..4096 bytes live, not '0'");

  const std::string replay_file = write("r.yaml",
                                        "window: unlimited\noutput: out.json\nquiet: true\n"
                                        "metrics-addr: ':9464'\nmetrics-out: m.prom\n");
  ReplayCommandOptions r;
  ASSERT_EQ(parse(parseReplayOptions, {"replay", "--config", replay_file, "-o", "x.json", "a.pcap"},
                  r, error),
            OptionsResult::kRun)
      << error;
  EXPECT_EQ(r.window, 0u);
  EXPECT_EQ(r.output, "x.json");
  EXPECT_TRUE(r.quiet);
  EXPECT_EQ(r.metrics.address, ":9464");
  EXPECT_EQ(r.metrics.output_file, "m.prom");
  EXPECT_EQ(r.files, std::vector<std::string>{"a.pcap"});
}

// The issue-12 flags on the command line, into the shared structs.
TEST_F(ConfigFileTest, MetricsAndRedactionFlags) {
  std::string error;
  AttachOptions def;
  ASSERT_EQ(parse(parseAttachOptions, {"attach"}, def, error), OptionsResult::kRun) << error;
  EXPECT_EQ(def.metrics.address, "0.0.0.0:9464");
  EXPECT_TRUE(def.metrics.enabled());
  AttachOptions off;
  ASSERT_EQ(parse(parseAttachOptions, {"attach", "--metrics-addr", "none"}, off, error),
            OptionsResult::kRun);
  EXPECT_FALSE(off.metrics.enabled());
  AttachOptions a;
  ASSERT_EQ(parse(parseAttachOptions,
                  {"attach", "--metrics-addr", "[::1]:0", "--route-pattern", "/a/{id}",
                   "--route-pattern", "/b/**", "--max-series-per-metric", "1000000",
                   "--redact-path", "/reset/*", "--redact-path", "/u/*/t/**"},
                  a, error),
            OptionsResult::kRun)
      << error;
  EXPECT_EQ(a.metrics.address, "[::1]:0");
  EXPECT_EQ(a.metrics.route_patterns, (std::vector<std::string>{"/a/{id}", "/b/**"}));
  EXPECT_EQ(a.metrics.limits.max_series_per_metric, 1000000u);
  EXPECT_EQ(a.redaction.path_patterns, (std::vector<std::string>{"/reset/*", "/u/*/t/**"}));

  ReplayCommandOptions r;
  ASSERT_EQ(parse(parseReplayOptions, {"replay", "x.pcap"}, r, error), OptionsResult::kRun);
  EXPECT_FALSE(r.metrics.enabled());
  ReplayCommandOptions out;
  ASSERT_EQ(parse(parseReplayOptions, {"replay", "--metrics-out", "m.prom", "x.pcap"}, out, error),
            OptionsResult::kRun);
  EXPECT_EQ(out.metrics.output_file, "m.prom");
  EXPECT_TRUE(out.metrics.address.empty());
  AttachOptions no_out;
  EXPECT_EQ(parse(parseAttachOptions, {"attach", "--metrics-out", "m.prom"}, no_out, error),
            OptionsResult::kUsage);
  EXPECT_EQ(error, "bad option");

  const struct {
    std::vector<std::string> args;
    const char* error;
  } kBad[] = {
      {{"--metrics-addr", "0.0.0.0"},
       "--metrics-addr needs HOST:PORT, [IPV6]:PORT, :PORT or none, not '0.0.0.0'"},
      {{"--max-series-per-metric", "0"}, "--max-series-per-metric needs 1..1000000, not '0'"},
      {{"--route-pattern", ""}, "--route-pattern needs a path pattern starting with '/', not ''"},
      {{"--redact-path", "/a*"}, "--redact-path '/a*': '*' and '**' stand for whole segments only"},
      {{"--redact-path", "a/*"}, "--redact-path needs a pattern starting with '/', not 'a/*'"},
  };
  for (const auto& c : kBad) {
    std::vector<std::string> args = {"attach"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    AttachOptions o;
    EXPECT_EQ(parse(parseAttachOptions, args, o, error), OptionsResult::kUsage) << c.error;
    EXPECT_EQ(error, c.error);
  }
  std::vector<std::string> many = {"attach"};
  for (size_t i = 0; i <= OptionLimits::kMaxRedactPaths; ++i) {
    many.push_back("--redact-path");
    many.push_back("/p" + std::to_string(i) + "/*");
  }
  AttachOptions m;
  EXPECT_EQ(parse(parseAttachOptions, many, m, error), OptionsResult::kUsage);
  EXPECT_EQ(error, "--redact-path is repeatable at most 64 times");
}

TEST(MetricsAddress, Shapes) {
  for (const char* good :
       {"0.0.0.0:9464", ":9464", "[::]:0", "[::1]:65535", "localhost:80", "127.0.0.1:0"}) {
    EXPECT_TRUE(validMetricsAddress(good)) << good;
  }
  for (const char* bad : {"", "9464", ":", "0.0.0.0:", "0.0.0.0:65536", "::1:80", "[::1]80",
                          "[nothost]:80", "[::1]:", "a b:80", "h:-1", "h:+1", "h:0x10"}) {
    EXPECT_FALSE(validMetricsAddress(bad)) << bad;
  }
}

struct RunResult {
  int status;
  std::string out;
  std::string err;
};

RunResult run(const std::string& args, const fs::path& dir) {
  const fs::path err_file = dir / "stderr";
  FILE* p = popen(
      (std::string(L7TAP_BINARY) + " " + args + " 2>'" + err_file.string() + "'").c_str(), "r");
  RunResult r{};
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int rc = pclose(p);
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  return r;
}

// The binary: one line on standard error (no usage), exit 2.
TEST_F(ConfigFileTest, TheBinary) {
  const std::string bad = write("bad.yaml", "window: 4096\nbogus: 1\n");
  RunResult r = run("attach --config " + bad, dir_);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "l7tap: " + bad + ":2: bogus: not an option of attach\n");
  r = run("config check " + bad, dir_);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "l7tap: " + bad + ":2: bogus: not an option of attach\n");
  EXPECT_EQ(r.out, "");
  r = run("replay --config " + (dir_ / "missing.yaml").string() + " x.pcap", dir_);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "l7tap: " + (dir_ / "missing.yaml").string() + ": No such file or directory\n");

  const std::string good = write("good.yaml", "window: 4096\niface: [cali*, veth*]\n");
  r = run("config check " + good, dir_);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, good + ": ok\n");
  r = run("config check --command replay " + good, dir_);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "l7tap: " + good + ":2: iface: not an option of replay\n");
  EXPECT_EQ(run("config check", dir_).status, 2);
  EXPECT_EQ(run("config check --command x " + good, dir_).status, 2);

  // replay takes its outputs and window from the file.
  const std::string out = (dir_ / "records.json").string();
  const std::string replay_cfg =
      write("replay.yaml", "output: " + out + "\nquiet: true\nwindow: 256\n");
  r = run("replay --config " + replay_cfg + " " + L7TAP_SOURCE_DIR + "/pcaps/http1-keepalive.pcap",
          dir_);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");  // quiet
  std::ifstream records(out);
  std::string first;
  EXPECT_TRUE(std::getline(records, first));
  EXPECT_NE(first.find("\"type\":"), std::string::npos) << first;
}

}  // namespace
}  // namespace l7tap
