// `l7tap attach`'s options: every value within the bound LiveLimits names,
// and the message of a value outside it names the bound.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon/cli_options.h"

namespace l7tap {
namespace {

struct Parsed {
  OptionsResult result;
  AttachOptions options;
  std::string error;
};

Parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "attach");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  Parsed p{};
  opterr = 0;  // getopt's own message is not what is tested here
  p.result = parseAttachOptions(static_cast<int>(args.size()), argv.data(), p.options, p.error);
  return p;
}

TEST(AttachOptions, DefaultsAreTheDocumentedOnes) {
  const Parsed p = parse({"--iface", "veth*"});
  ASSERT_EQ(p.result, OptionsResult::kRun) << p.error;
  const LiveConfig& live = p.options.live;
  EXPECT_EQ(live.interfaces, std::vector<std::string>{"veth*"});
  EXPECT_EQ(live.window, 1024u);
  EXPECT_EQ(live.wakeup_bytes, 256u * 1024);
  EXPECT_EQ(live.drain_interval_ms, 10u);
  EXPECT_EQ(live.ring_bytes, 8u << 20);
  EXPECT_EQ(live.interim_interval_ns, 60ull * 1000 * 1000 * 1000);
  EXPECT_EQ(live.idle_flow_ns, kDefaultReassemblyLimits.idle_timeout_ns);
  EXPECT_TRUE(live.capture_control);
  EXPECT_EQ(live.mode, AttachMode::kAuto);
  EXPECT_TRUE(p.options.output.empty());  // journald if its socket exists
  std::string error;
  EXPECT_TRUE(checkLiveConfig(live, error)) << error;
}

TEST(AttachOptions, EveryOption) {
  const Parsed p = parse({"-i",
                          "a",
                          "--iface",
                          "b",
                          "--output",
                          "both",
                          "--window",
                          "4096",
                          "--port",
                          "80",
                          "-p",
                          "8080",
                          "--cidr",
                          "10.0.0.0/8",
                          "-c",
                          "fd00::/8",
                          "--interim",
                          "0",
                          "--ring-kb",
                          "4",
                          "--drain-ms",
                          "10000",
                          "--wakeup-bytes",
                          "0",
                          "--attach-mode",
                          "xdp",
                          "--no-capture-control"});
  ASSERT_EQ(p.result, OptionsResult::kRun) << p.error;
  const LiveConfig& live = p.options.live;
  EXPECT_EQ(live.interfaces.size(), 2u);
  EXPECT_EQ(p.options.output, "both");
  EXPECT_EQ(live.window, LiveLimits::kMaxWindow);
  EXPECT_EQ(live.ports, (std::vector<uint16_t>{80, 8080}));
  ASSERT_EQ(live.cidrs.size(), 2u);
  EXPECT_EQ(live.cidrs[0].prefix_len, 96 + 8);
  EXPECT_EQ(live.cidrs[0].addr[10], 0xff);
  EXPECT_EQ(live.cidrs[0].addr[12], 10);
  EXPECT_EQ(live.cidrs[1].prefix_len, 8);
  EXPECT_EQ(live.cidrs[1].addr[0], 0xfd);
  EXPECT_EQ(live.interim_interval_ns, 0u);
  EXPECT_EQ(live.ring_bytes, 4096u);
  EXPECT_EQ(live.drain_interval_ms, LiveLimits::kMaxDrainMs);
  EXPECT_EQ(live.wakeup_bytes, 0u);
  EXPECT_EQ(live.mode, AttachMode::kXdp);
  EXPECT_FALSE(live.capture_control);
  std::string error;
  EXPECT_TRUE(checkLiveConfig(live, error)) << error;
}

TEST(AttachOptions, ValuesOutsideTheirBoundNameTheBound) {
  const struct {
    std::vector<std::string> args;
    const char* message;
  } kCases[] = {
      {{"--window", "0"}, "--window needs 1..4096 bytes live, not '0'"},
      {{"--window", "4097"}, "--window needs 1..4096 bytes live, not '4097'"},
      {{"--port", "0"}, "--port needs 1..65535, not '0'"},
      {{"--port", "65536"}, "--port needs 1..65535, not '65536'"},
      {{"--cidr", "10.0.0.0/33"}, "--cidr needs ADDRESS[/PREFIX], not '10.0.0.0/33'"},
      {{"--cidr", "nowhere"}, "--cidr needs ADDRESS[/PREFIX], not 'nowhere'"},
      {{"--interim", "86401"}, "--interim needs seconds (0..86400), not '86401'"},
      {{"--ring-kb", "2"}, "--ring-kb needs a power of two, 4..1048576, not '2'"},
      {{"--ring-kb", "12"}, "--ring-kb needs a power of two, 4..1048576, not '12'"},
      {{"--ring-kb", "2097152"}, "--ring-kb needs a power of two, 4..1048576, not '2097152'"},
      {{"--drain-ms", "0"}, "--drain-ms needs 1..10000, not '0'"},
      {{"--wakeup-bytes", "-1"}, "--wakeup-bytes needs a byte count, not '-1'"},
      {{"--attach-mode", "tc"}, "--attach-mode is auto, tcx, clsact or xdp, not 'tc'"},
      {{"--output", "syslog"}, "--output is journald, json or both, not 'syslog'"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--bogus"}, "bad option"},
  };
  for (const auto& c : kCases) {
    std::vector<std::string> args = {"--iface", "x"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Parsed p = parse(args);
    EXPECT_EQ(p.result, OptionsResult::kUsage) << c.message;
    EXPECT_EQ(p.error, c.message);
  }
}

TEST(AttachOptions, FilterCountsAreTheKernelProgramsArrays) {
  std::vector<std::string> args = {"--iface", "x"};
  for (uint32_t i = 0; i < LiveLimits::kMaxPorts; ++i) {
    args.push_back("--port");
    args.push_back(std::to_string(1000 + i));
  }
  EXPECT_EQ(parse(args).result, OptionsResult::kRun);
  args.push_back("--port");
  args.push_back("9");
  const Parsed ports = parse(args);
  EXPECT_EQ(ports.result, OptionsResult::kUsage);
  EXPECT_EQ(ports.error, "at most " + std::to_string(L7TAP_MAX_FILTER_PORTS) + " --port");

  args = {"--iface", "x"};
  for (uint32_t i = 0; i <= LiveLimits::kMaxCidrs; ++i) {
    args.push_back("--cidr");
    args.push_back("10.0.0." + std::to_string(i));
  }
  const Parsed cidrs = parse(args);
  EXPECT_EQ(cidrs.result, OptionsResult::kUsage);
  EXPECT_EQ(cidrs.error, "at most " + std::to_string(L7TAP_MAX_FILTER_CIDRS) + " --cidr");
}

TEST(AttachOptions, HelpAndDefaultInterfaces) {
  EXPECT_EQ(parse({"--help"}).result, OptionsResult::kHelp);
  // No --iface: the pod veths of common CNIs, so a DaemonSet needs no list.
  const Parsed p = parse({"--window", "512"});
  ASSERT_EQ(p.result, OptionsResult::kRun) << p.error;
  EXPECT_EQ(p.options.live.interfaces, (std::vector<std::string>{"cali*", "lxc*", "veth*"}));
}

TEST(AttachOptions, IdentityOptions) {
  const Parsed p = parse({"--kubelet", "https://127.0.0.1:10250", "--kubelet-token", "/t",
                          "--kubelet-ca", "/ca", "--kubelet-insecure", "--host-proc", "/host/proc",
                          "--node-name", "n1", "--kubelet-refresh", "5", "--lock-dir", "/tmp/l"});
  ASSERT_EQ(p.result, OptionsResult::kRun) << p.error;
  const IdentityOptions& id = p.options.identity;
  EXPECT_EQ(id.kubelet_url, "https://127.0.0.1:10250");
  EXPECT_EQ(id.kubelet_token_file, "/t");
  EXPECT_EQ(id.kubelet_ca_file, "/ca");
  EXPECT_TRUE(id.kubelet_insecure);
  EXPECT_EQ(id.host_proc, "/host/proc");
  EXPECT_EQ(id.node_name, "n1");
  EXPECT_EQ(id.refresh_interval_ns, 5000000000ull);
  EXPECT_EQ(p.options.live.lock_dir, "/tmp/l");
  EXPECT_EQ(parse({"--kubelet", "none"}).result, OptionsResult::kRun);
  const Parsed bad = parse({"--kubelet", "10.0.0.1:10250"});
  EXPECT_EQ(bad.result, OptionsResult::kUsage);
  EXPECT_EQ(bad.error,
            "--kubelet needs an https:// or http:// URL, auto or none, not '10.0.0.1:10250'");
  EXPECT_EQ(parse({"--kubelet-refresh", "0"}).result, OptionsResult::kUsage);
  // What a DaemonSet can pass from ConfigMap keys.
  EXPECT_TRUE(parse({"--kubelet", "auto"}).options.identity.kubelet_url.empty());
  EXPECT_FALSE(parse({"--kubelet-insecure=false"}).options.identity.kubelet_insecure);
  EXPECT_TRUE(parse({"--kubelet-insecure=true"}).options.identity.kubelet_insecure);
  EXPECT_EQ(parse({"--kubelet-insecure=yes"}).result, OptionsResult::kUsage);
}

// A configuration built in code is checked against the same bounds when the
// program is loaded.
TEST(LiveConfigCheck, RejectsWhatTheOptionsReject) {
  std::string error;
  LiveConfig c;
  c.window = LiveLimits::kMaxWindow + 1;
  EXPECT_FALSE(checkLiveConfig(c, error));
  EXPECT_EQ(error, "the window must be 1..4096 bytes live");
  c = {};
  c.ports.assign(LiveLimits::kMaxPorts + 1, 80);
  EXPECT_FALSE(checkLiveConfig(c, error));
  EXPECT_EQ(error, "at most 16 ports and 8 CIDRs");
  c = {};
  c.ring_bytes = 3u << 20;
  EXPECT_FALSE(checkLiveConfig(c, error));
  c = {};
  c.drain_interval_ms = 0;
  EXPECT_FALSE(checkLiveConfig(c, error));
  c = {};
  c.interim_interval_ns = (LiveLimits::kMaxInterimSeconds + 1ull) * 1000000000ull;
  EXPECT_FALSE(checkLiveConfig(c, error));
}

TEST(ReplayWindow, PositiveOrUnlimited) {
  uint32_t w = 7;
  EXPECT_TRUE(parseWindow("unlimited", w));
  EXPECT_EQ(w, 0u);
  EXPECT_TRUE(parseWindow("65536", w));
  EXPECT_EQ(w, 65536u);
  for (const char* bad : {"0", "-1", "abc", "99999999999", ""}) EXPECT_FALSE(parseWindow(bad, w));
}

// Redaction is on unless asked off; the same options in replay.
TEST(AttachOptions, RedactionOptions) {
  const Parsed def = parse({});
  EXPECT_FALSE(def.options.redaction.keep_query);
  EXPECT_TRUE(def.options.redaction.query_allow.empty());
  const Parsed p = parse({"--keep-query", "--query-allow", "page", "--query-allow", "q%20x"});
  ASSERT_EQ(p.result, OptionsResult::kRun) << p.error;
  EXPECT_TRUE(p.options.redaction.keep_query);
  EXPECT_EQ(p.options.redaction.query_allow, (std::vector<std::string>{"page", "q%20x"}));
  const Parsed bad = parse({"--query-allow", "a=b"});
  EXPECT_EQ(bad.result, OptionsResult::kUsage);
  EXPECT_EQ(bad.error, "--query-allow needs a query key without '&' or '=', not 'a=b'");
  EXPECT_EQ(parse({"--query-allow", ""}).result, OptionsResult::kUsage);
  std::vector<std::string> many;
  for (size_t i = 0; i <= RedactionLimits::kMaxAllowedKeys; ++i) {
    many.push_back("--query-allow");
    many.push_back("k" + std::to_string(i));
  }
  EXPECT_EQ(parse(many).result, OptionsResult::kUsage);

  std::vector<std::string> args = {"replay", "--keep-query", "--query-allow", "id", "x.pcap"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ReplayCommandOptions replay;
  std::string error;
  ASSERT_EQ(parseReplayOptions(static_cast<int>(args.size()), argv.data(), replay, error),
            OptionsResult::kRun)
      << error;
  EXPECT_TRUE(replay.redaction.keep_query);
  EXPECT_EQ(replay.redaction.query_allow, std::vector<std::string>{"id"});
}

}  // namespace
}  // namespace l7tap

namespace l7tap {
namespace {

TEST(AttachOptions, TlsUprobes) {
  const Parsed on = parse({});
  ASSERT_EQ(on.result, OptionsResult::kRun) << on.error;
  EXPECT_TRUE(on.options.live.tls_uprobes);
  EXPECT_TRUE(on.options.live.tls_pids.empty());
  EXPECT_EQ(on.options.live.tls_proc, "/proc");
  const Parsed named = parse({"--tls-pid", "42", "--tls-pid", "7", "--tls-binary", "/srv/app",
                              "--host-proc", "/host/proc"});
  ASSERT_EQ(named.result, OptionsResult::kRun) << named.error;
  EXPECT_EQ(named.options.live.tls_pids, (std::vector<uint32_t>{42, 7}));
  EXPECT_EQ(named.options.live.tls_binaries, std::vector<std::string>{"/srv/app"});
  EXPECT_EQ(named.options.live.tls_proc, "/host/proc");
  EXPECT_FALSE(parse({"--no-tls-uprobes"}).options.live.tls_uprobes);
  EXPECT_FALSE(on.options.live.tls_all_processes);
  EXPECT_TRUE(parse({"--tls-all-processes"}).options.live.tls_all_processes);
  const Parsed both = parse({"--no-tls-uprobes", "--tls-pid", "1"});
  EXPECT_EQ(both.result, OptionsResult::kUsage);
  EXPECT_EQ(both.error, "--tls-pid and --tls-binary do not go with --no-tls-uprobes");
  EXPECT_EQ(parse({"--tls-pid", "x"}).error, "--tls-pid needs a process id, not 'x'");
}

}  // namespace
}  // namespace l7tap
