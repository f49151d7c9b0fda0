// The resolved offsets under real uprobes (root): perf counting uprobes
// (the uprobe PMU, no BPF) at each target's entry and returns, on the C and
// Go fixtures run for a known number of calls. Counters count every process
// that runs the fixture: nothing else runs these. Entries and returns must
// each count every call once: for Go, the entry past the stack-growth check
// too, while the symbol's first instruction counts more when calls grow
// their stack.
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "apptrace/function_targets.h"
#include "tests/support/privileged.h"

namespace l7tap {
namespace {

const std::string kDir = L7TAP_APPTRACE_FIXTURES;
constexpr int kCalls = 1000;

// Closes its descriptor.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& other) noexcept : fd(other.fd) { other.fd = -1; }
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

int uprobePmuType() {
  std::ifstream in("/sys/bus/event_source/devices/uprobe/type");
  int type = -1;
  in >> type;
  return type;
}

// A counting uprobe (or uretprobe) at `offset` of `path`, in every
// process, one counter per CPU. Not per task with inherit: the kernel reads
// the path again from the memory of each thread the task creates, where it
// is not (clone fails with EFAULT).
struct Counter {
  std::vector<Fd> per_cpu;
  bool ok() const {
    for (const Fd& fd : per_cpu) {
      if (fd.fd < 0) return false;
    }
    return !per_cpu.empty();
  }
  uint64_t count() const {
    uint64_t total = 0;
    for (const Fd& fd : per_cpu) {
      uint64_t value = 0;
      if (read(fd.fd, &value, sizeof value) != sizeof value) return UINT64_MAX;
      total += value;
    }
    return total;
  }
};

Counter openCounter(const std::string& path, uint64_t offset, bool ret) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = static_cast<uint32_t>(uprobePmuType());
  attr.config = ret ? 1 : 0;  // format: config:0 is retprobe
  attr.config1 = reinterpret_cast<uint64_t>(path.c_str());
  attr.config2 = offset;
  Counter counter;
  const long cpus = sysconf(_SC_NPROCESSORS_CONF);
  for (long cpu = 0; cpu < cpus; ++cpu) {
    counter.per_cpu.emplace_back(
        static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)));
  }
  return counter;
}

// Runs `path` with `argument` to its end. False when it failed.
bool run(const std::string& path, const std::string& argument) {
  const pid_t child = fork();
  if (child < 0) return false;
  if (child == 0) {
    execl(path.c_str(), path.c_str(), argument.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(FunctionTargetProbes, NativeEntriesAndReturnsCountEveryCall) {
  L7TAP_SKIP_UNLESS(testing::missingRoot());
  const std::string binary = L7TAP_APPTRACE_NATIVE;
  std::vector<FunctionTarget> targets;
  std::string error;
  ASSERT_TRUE(resolveFunctions(binary, {"handle_*", "helper"}, targets, error)) << error;
  ASSERT_EQ(targets.size(), 4u);
  std::vector<Counter> entries, returns;
  for (const FunctionTarget& t : targets) {
    entries.push_back(openCounter(binary, t.entry_offset, false));
    returns.push_back(openCounter(binary, t.entry_offset, true));
    ASSERT_TRUE(entries.back().ok() && returns.back().ok()) << t.name << ": " << strerror(errno);
  }
  ASSERT_TRUE(run(binary, std::to_string(kCalls)));
  for (size_t i = 0; i < targets.size(); ++i) {
    SCOPED_TRACE(targets[i].name);
    // handle_delete is also called as its alias handle_remove.
    const uint64_t expected = targets[i].name == "handle_delete" ? 2 * kCalls : kCalls;
    EXPECT_EQ(entries[i].count(), expected);
    EXPECT_EQ(returns[i].count(), expected);
  }
}

TEST(FunctionTargetProbes, GoEntriesPastTheStackCheckAndEveryRetCountEveryCall) {
  L7TAP_SKIP_UNLESS(testing::missingRoot());
  const std::string binary = kDir + "/handlers";
  std::vector<FunctionTarget> targets;
  std::string error;
  ASSERT_TRUE(resolveFunctions(binary, {"main.handleGetUser"}, targets, error)) << error;
  ASSERT_EQ(targets.size(), 1u);
  const FunctionTarget& t = targets[0];
  // The symbol's first instruction: where the stack check starts.
  uint64_t symbol_start = 0;
  {
    FILE* pipe = popen(("nm " + binary + " | grep ' main.handleGetUser$'").c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    char line[256] = {};
    ASSERT_NE(fgets(line, sizeof line, pipe), nullptr);
    pclose(pipe);
    symbol_start = std::stoull(line, nullptr, 16) - 0x400000;  // linux/amd64 text base
  }
  ASSERT_LT(symbol_start, t.entry_offset);

  const Counter start = openCounter(binary, symbol_start, false);
  const Counter entry = openCounter(binary, t.entry_offset, false);
  ASSERT_TRUE(start.ok() && entry.ok()) << strerror(errno);
  std::vector<Counter> rets;
  for (uint64_t offset : t.return_offsets) {
    rets.push_back(openCounter(binary, offset, false));
    ASSERT_TRUE(rets.back().ok()) << strerror(errno);
  }
  ASSERT_TRUE(run(binary, std::to_string(kCalls)));
  uint64_t returned = 0;
  for (const Counter& r : rets) returned += r.count();
  EXPECT_EQ(entry.count(), uint64_t{kCalls});
  EXPECT_EQ(returned, uint64_t{kCalls});
  const uint64_t at_start = start.count();
  EXPECT_GE(at_start, uint64_t{kCalls});
  std::cout << "main.handleGetUser: " << kCalls << " calls, " << at_start
            << " hits at the symbol's first instruction (stack growth re-runs it), "
            << entry.count() << " past the stack check, " << returned << " at its "
            << t.return_offsets.size() << " RETs\n";
}

}  // namespace
}  // namespace l7tap
