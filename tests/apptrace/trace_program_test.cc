// TraceProgram on real programs built by the test build
// (tests/apptrace/trace_targets): a C function that sleeps and then sends on
// a loopback TCP socket, a recursive C function, a USDT start/end pair, and
// a Go function on many goroutines that sleep (so they park and resume on
// other threads) and then send. The targets are made here by hand (symbol
// offsets with libelf, Go RETs with objdump): resolving them is
// apptrace/function_targets' job, tested on its own. Root only.
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <gtest/gtest.h>
#include <libelf.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "apptrace/trace_program.h"
#include "tests/support/privileged.h"
#include "uprobes/go_binary.h"

extern char** environ;

namespace l7tap {
namespace {

constexpr uint64_t kMs = 1000 * 1000;

std::string missingPrivileges() {
  std::string why = testing::missingRoot();
  if (!why.empty()) return why;
  TraceProgram probe;
  TraceProgramConfig config;
  config.quiet_load = true;
  std::string error;
  if (!probe.load(config, error)) return "cannot load the trace programs: " + error;
  return {};
}

// ---- ELF offsets, as apptrace/function_targets finds them ----

struct ElfEnd {
  void operator()(Elf* e) const { elf_end(e); }
};

// The file offset of virtual address `vaddr` (its PT_LOAD segment), and of
// the function `symbol` from .symtab. 0 when not found.
uint64_t fileOffsetOfAddress(Elf* elf, uint64_t vaddr) {
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) return 0;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
    if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz)
      return vaddr - ph.p_vaddr + ph.p_offset;
  }
  return 0;
}

uint64_t symbolAddress(Elf* elf, const std::string& symbol) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_SYMTAB || shdr.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    for (size_t i = 0; data && i < shdr.sh_size / shdr.sh_entsize; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
      const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (name && symbol == name && GELF_ST_TYPE(sym.st_info) == STT_FUNC) return sym.st_value;
    }
  }
  return 0;
}

// Entry (and, for Go, RET) file offsets of `symbol` in `path`.
bool offsetsOf(const std::string& path, const std::string& symbol, bool go, FunctionTarget& t) {
  elf_version(EV_CURRENT);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::unique_ptr<Elf, ElfEnd> elf(elf_begin(fd, ELF_C_READ, nullptr));
  bool ok = false;
  if (elf) {
    const uint64_t addr = symbolAddress(elf.get(), symbol);
    t.entry_offset = addr ? fileOffsetOfAddress(elf.get(), addr) : 0;
    ok = t.entry_offset != 0;
    if (ok && go) {
      const std::string cmd = "objdump -d --no-show-raw-insn --disassemble=" + symbol + " " + path;
      FILE* p = popen(cmd.c_str(), "r");
      char line[512];
      while (p && fgets(line, sizeof line, p)) {
        // "  4c5de6:\tret    "
        if (std::strstr(line, ":\tret") == nullptr) continue;
        const uint64_t at = std::strtoull(line, nullptr, 16);
        t.return_offsets.push_back(fileOffsetOfAddress(elf.get(), at));
      }
      if (p) pclose(p);
      ok = !t.return_offsets.empty();
    }
  }
  close(fd);
  return ok;
}

FunctionTarget nativeTarget(const std::string& symbol) {
  FunctionTarget t;
  t.kind = FunctionTarget::Kind::kNative;
  t.name = symbol;
  EXPECT_TRUE(offsetsOf(L7TAP_NATIVE_TARGET, symbol, false, t)) << symbol;
  return t;
}

FunctionTarget goTarget(const std::string& symbol) {
  FunctionTarget t;
  t.kind = FunctionTarget::Kind::kGo;
  t.name = symbol;
  EXPECT_TRUE(offsetsOf(L7TAP_GO_TARGET, symbol, true, t)) << symbol;
  GoTlsOffsets offsets;
  EXPECT_TRUE(goTlsOffsetsForVersion(19, offsets));
  t.goid_offset = offsets.g_goid;
  return t;
}

// ---- the traced program ----

// A child with a pipe on its stdin (a line starts it) and on its stdout.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = fdopen(out[0], "r");
  }
  ~Child() {
    if (to_ >= 0) close(to_);
    if (from_) fclose(from_);
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  std::string readLine() {
    char line[256] = {};
    if (!from_ || !fgets(line, sizeof line, from_)) return {};
    std::string s(line);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  void start() {
    const char go[] = "go\n";
    EXPECT_EQ(write(to_, go, sizeof go - 1), static_cast<ssize_t>(sizeof go - 1));
  }
  // The exit status; -1 when it did not exit normally.
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  FILE* from_ = nullptr;
  bool reaped_ = false;
};

class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 64) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
  }
  ~Listener() {
    for (int c : accepted_) close(c);
    close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  uint16_t port() const { return port_; }
  // Accepts one connection; returns the peer's port.
  uint16_t accept1() {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    const int c = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (c < 0) return 0;
    accepted_.push_back(c);
    return ntohs(peer.sin_port);
  }
  bool send(size_t i, const std::string& bytes) {
    return i < accepted_.size() &&
           write(accepted_[i], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }
  // Reads every accepted connection to its end; the total.
  uint64_t drain() {
    uint64_t total = 0;
    char buf[65536];
    for (int c : accepted_) {
      ssize_t n;
      while ((n = read(c, buf, sizeof buf)) > 0) total += static_cast<uint64_t>(n);
    }
    return total;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> accepted_;
};

// ---- the events ----

std::vector<l7tap_app_event> readEvents(const TraceProgram& program) {
  std::vector<l7tap_app_event> events;
  const auto on = [](void* ctx, void* data, size_t size) -> int {
    if (size >= sizeof(l7tap_app_event)) {
      l7tap_app_event ev;
      std::memcpy(&ev, data, sizeof ev);
      static_cast<std::vector<l7tap_app_event>*>(ctx)->push_back(ev);
    }
    return 0;
  };
  ring_buffer* rb = ring_buffer__new(program.ringFd(), on, &events, nullptr);
  EXPECT_NE(rb, nullptr);
  if (rb) {
    ring_buffer__consume(rb);
    ring_buffer__free(rb);
  }
  return events;
}

std::vector<l7tap_app_event> ofKind(const std::vector<l7tap_app_event>& events, uint8_t kind) {
  std::vector<l7tap_app_event> out;
  for (const auto& e : events)
    if (e.kind == kind) out.push_back(e);
  return out;
}

uint64_t bucketSum(const FunctionStats& s) {
  uint64_t n = 0;
  for (uint64_t b : s.buckets) n += b;
  return n;
}

bool isLoopbackV4(const uint8_t (&a)[16]) {
  static const uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  return std::memcmp(a, kLoopback, sizeof kLoopback) == 0;
}

struct Loaded {
  TraceProgram program;
  bool ok = false;
  explicit Loaded(TraceProgramConfig::Mode mode, bool entries = false) {
    TraceProgramConfig config;
    config.mode = mode;
    config.emit_entries = entries;
    std::string error;
    ok = program.load(config, error);
    EXPECT_TRUE(ok) << error;
  }
};

// ---- native ----

constexpr int kIoCalls = 3;
constexpr int kIoSleepMs = 30;
constexpr uint64_t kIoBytes = 100000;

// Runs the C program's work_io kIoCalls times under `program`; its events.
void runNativeIo(TraceProgram& program, uint16_t& index, uint16_t& local_port,
                 uint16_t& server_port, pid_t& pid) {
  Listener listener;
  ASSERT_NE(listener.port(), 0);
  server_port = listener.port();
  Child child({L7TAP_NATIVE_TARGET, "io", std::to_string(listener.port()), std::to_string(kIoCalls),
               std::to_string(kIoSleepMs), std::to_string(kIoBytes)});
  ASSERT_GT(child.pid(), 0);
  pid = child.pid();
  local_port = static_cast<uint16_t>(std::stoi(child.readLine()));
  ASSERT_EQ(listener.accept1(), local_port);
  std::string error;
  ASSERT_TRUE(
      program.attach(L7TAP_NATIVE_TARGET, child.pid(), nativeTarget("work_io"), index, error))
      << error;
  child.start();
  EXPECT_EQ(listener.drain(), kIoCalls * kIoBytes);
  EXPECT_EQ(child.wait(), 0);
}

TEST(TraceProgramTest, NativeCallTimesItsSleepAndCountsItsTcpSends) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall);
  ASSERT_TRUE(loaded.ok);
  uint16_t index = 99, local_port = 0, server_port = 0;
  pid_t pid = 0;
  runNativeIo(loaded.program, index, local_port, server_port, pid);
  EXPECT_EQ(index, 0);

  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_EQ(calls.size(), static_cast<size_t>(kIoCalls));
  for (const auto& e : calls) {
    EXPECT_EQ(e.function, index);
    EXPECT_EQ(e.tgid, static_cast<uint32_t>(pid));
    EXPECT_EQ(e.tid, static_cast<uint32_t>(pid));  // single-threaded
    EXPECT_GE(e.end_ns - e.start_ns, kIoSleepMs * kMs);
    EXPECT_EQ(e.io.bytes_sent, kIoBytes);
    EXPECT_EQ(e.io.bytes_received, 0u);
    EXPECT_GE(e.io.sends, 1u);
    EXPECT_LE(e.io.send_ns, e.end_ns - e.start_ns);
    EXPECT_EQ(e.g, 0u);
    EXPECT_EQ(e.flags, L7TAP_APP_F_CONN_KNOWN);
    EXPECT_EQ(e.conn.family, 4);
    EXPECT_TRUE(isLoopbackV4(e.conn.saddr));
    EXPECT_TRUE(isLoopbackV4(e.conn.daddr));
    EXPECT_EQ(e.conn.sport, local_port);
    EXPECT_EQ(e.conn.dport, server_port);
    EXPECT_NE(e.netns_ino, 0u);
    EXPECT_EQ(std::string(e.comm, strnlen(e.comm, sizeof e.comm)),
              std::string("apptrace_native_target").substr(0, 15));
  }
  const auto stats = loaded.program.readStats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].calls, static_cast<uint64_t>(kIoCalls));
  EXPECT_EQ(bucketSum(stats[0]), static_cast<uint64_t>(kIoCalls));
  EXPECT_EQ(stats[0].bytes_sent, kIoCalls * kIoBytes);
  EXPECT_GE(stats[0].sum_ns, kIoCalls * kIoSleepMs * kMs);
  const TraceProgramCounters c = loaded.program.counters();
  EXPECT_EQ(c.events, static_cast<uint64_t>(kIoCalls));
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.no_entry, 0u);
  EXPECT_GE(c.io_syscalls, static_cast<uint64_t>(kIoCalls));
}

TEST(TraceProgramTest, HistogramModeSendsOnlyExemplars) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kHistograms);
  ASSERT_TRUE(loaded.ok);
  uint16_t index = 0, local_port = 0, server_port = 0;
  pid_t pid = 0;
  runNativeIo(loaded.program, index, local_port, server_port, pid);

  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_GE(calls.size(), 1u);
  ASSERT_LE(calls.size(), static_cast<size_t>(kIoCalls));
  uint64_t slowest = 0;
  for (const auto& e : calls) {
    EXPECT_TRUE(e.flags & L7TAP_APP_F_EXEMPLAR);
    EXPECT_GT(e.end_ns - e.start_ns, slowest);  // each beats the slowest before it
    slowest = e.end_ns - e.start_ns;
    EXPECT_EQ(e.io.bytes_sent, kIoBytes);
  }
  const auto stats = loaded.program.readStats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].calls, static_cast<uint64_t>(kIoCalls));
  EXPECT_EQ(bucketSum(stats[0]), static_cast<uint64_t>(kIoCalls));

  // A new interval: the next call is an exemplar again, whatever its time.
  loaded.program.resetExemplars();
  runNativeIo(loaded.program, index, local_port, server_port, pid);
  const auto again = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_GE(again.size(), 1u);
  EXPECT_EQ(again[0].tgid, static_cast<uint32_t>(pid));
}

bool sameConn(const l7tap_flow_key& a, const l7tap_flow_key& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// A call without I/O names the socket its thread last read from (the
// request it serves), at its entry too; a call that sends on two sockets
// names the first and says there were more.
TEST(TraceProgramTest, ConnIsTheRequestReadBeforeOrTheFirstOfSeveral) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall, /*entries=*/true);
  ASSERT_TRUE(loaded.ok);
  constexpr int kSleepMs = 5;
  Listener listener;
  ASSERT_NE(listener.port(), 0);
  Child child(
      {L7TAP_NATIVE_TARGET, "serve", std::to_string(listener.port()), std::to_string(kSleepMs)});
  ASSERT_GT(child.pid(), 0);
  const uint16_t port_a = static_cast<uint16_t>(std::stoi(child.readLine()));
  ASSERT_EQ(listener.accept1(), port_a);
  const uint16_t port_b = static_cast<uint16_t>(std::stoi(child.readLine()));
  ASSERT_EQ(listener.accept1(), port_b);
  uint16_t compute = 0, relay = 0;
  std::string error;
  ASSERT_TRUE(loaded.program.attach(L7TAP_NATIVE_TARGET, child.pid(), nativeTarget("compute"),
                                    compute, error))
      << error;
  ASSERT_TRUE(
      loaded.program.attach(L7TAP_NATIVE_TARGET, child.pid(), nativeTarget("relay"), relay, error))
      << error;
  child.start();
  ASSERT_TRUE(listener.send(0, "hello"));
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(listener.drain(), 20u);

  const auto events = readEvents(loaded.program);
  const auto enters = ofKind(events, L7TAP_APP_EVENT_ENTER);
  const auto calls = ofKind(events, L7TAP_APP_EVENT_CALL);
  ASSERT_EQ(calls.size(), 2u);
  ASSERT_EQ(enters.size(), 2u);
  const l7tap_app_event& c = calls[0].function == compute ? calls[0] : calls[1];
  const l7tap_app_event& r = calls[0].function == compute ? calls[1] : calls[0];
  EXPECT_EQ(c.function, compute);
  EXPECT_EQ(r.function, relay);
  EXPECT_EQ(c.flags, L7TAP_APP_F_CONN_KNOWN | L7TAP_APP_F_CONN_BEFORE);
  EXPECT_EQ(c.conn.sport, port_a);
  EXPECT_EQ(c.conn.dport, listener.port());
  EXPECT_EQ(c.io.bytes_sent + c.io.bytes_received + c.io.sends + c.io.receives, 0u);
  for (const auto& e : enters) {
    EXPECT_EQ(e.flags, L7TAP_APP_F_CONN_KNOWN | L7TAP_APP_F_CONN_BEFORE);
    EXPECT_TRUE(sameConn(e.conn, c.conn));
  }
  EXPECT_EQ(r.flags, L7TAP_APP_F_CONN_KNOWN | L7TAP_APP_F_MULTI_CONN);
  EXPECT_EQ(r.conn.sport, port_a);
  EXPECT_EQ(r.io.bytes_sent, 20u);
  EXPECT_EQ(r.io.sends, 2u);
}

// pid -1 (`--binary`): every process that runs the file, those started after
// the attach included.
TEST(TraceProgramTest, BinaryWideAttachSeesProcessesStartedLater) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall);
  ASSERT_TRUE(loaded.ok);
  uint16_t index = 0;
  std::string error;
  ASSERT_TRUE(loaded.program.attach(L7TAP_NATIVE_TARGET, -1, nativeTarget("recurse"), index, error))
      << error;
  std::vector<pid_t> pids;
  for (int i = 0; i < 2; ++i) {
    Child child({L7TAP_NATIVE_TARGET, "recurse", "1"});
    ASSERT_GT(child.pid(), 0);
    pids.push_back(child.pid());
    child.start();
    EXPECT_EQ(child.wait(), 0);
  }
  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].tgid, static_cast<uint32_t>(pids[0]));
  EXPECT_EQ(calls[1].tgid, static_cast<uint32_t>(pids[1]));
}

// attach's discovery traces each new process of a file on the rows its
// first process got, and removes a process's probes once it exited.
TEST(TraceProgramTest, AttachAgainAddsToTheRowAndDetachProcessRemovesItsProbes) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall);
  ASSERT_TRUE(loaded.ok);
  const FunctionTarget target = nativeTarget("recurse");
  Child first({L7TAP_NATIVE_TARGET, "recurse", "1"});
  Child second({L7TAP_NATIVE_TARGET, "recurse", "1"});
  Child gone({L7TAP_NATIVE_TARGET, "recurse", "1"});
  ASSERT_GT(first.pid(), 0);
  ASSERT_GT(second.pid(), 0);
  ASSERT_GT(gone.pid(), 0);
  uint16_t index = 99;
  std::string error;
  ASSERT_TRUE(loaded.program.attach(L7TAP_NATIVE_TARGET, first.pid(), target, index, error))
      << error;
  ASSERT_TRUE(loaded.program.attachAgain(L7TAP_NATIVE_TARGET, second.pid(), target, index, error))
      << error;
  ASSERT_TRUE(loaded.program.attachAgain(L7TAP_NATIVE_TARGET, gone.pid(), target, index, error))
      << error;
  EXPECT_FALSE(loaded.program.attachAgain(L7TAP_NATIVE_TARGET, gone.pid(), target, 7, error));
  EXPECT_EQ(error.find('\n'), std::string::npos);
  loaded.program.detachProcess(gone.pid());
  for (Child* child : {&first, &second, &gone}) {
    child->start();
    EXPECT_EQ(child->wait(), 0);
  }
  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].tgid, static_cast<uint32_t>(first.pid()));
  EXPECT_EQ(calls[1].tgid, static_cast<uint32_t>(second.pid()));
  for (const auto& c : calls) EXPECT_EQ(c.function, index);
  const auto stats = loaded.program.readStats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].calls, 2u);
}

TEST(TraceProgramTest, RecursionTimesOnlyTheOutermostCall) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall);
  ASSERT_TRUE(loaded.ok);
  constexpr int kDepth = 5;
  Child child({L7TAP_NATIVE_TARGET, "recurse", std::to_string(kDepth)});
  ASSERT_GT(child.pid(), 0);
  uint16_t index = 0;
  std::string error;
  ASSERT_TRUE(loaded.program.attach(L7TAP_NATIVE_TARGET, child.pid(), nativeTarget("recurse"),
                                    index, error))
      << error;
  child.start();
  EXPECT_EQ(child.wait(), 0);

  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].flags & L7TAP_APP_F_NESTED);
  EXPECT_GE(calls[0].end_ns - calls[0].start_ns, 1 * kMs);
  EXPECT_EQ(loaded.program.counters().nested, static_cast<uint64_t>(kDepth - 1));
  EXPECT_EQ(loaded.program.counters().no_entry, 0u);
  EXPECT_EQ(loaded.program.readStats()[0].calls, 1u);
}

TEST(TraceProgramTest, UsdtPairTimesEachRequestWithEntries) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall, /*entries=*/true);
  ASSERT_TRUE(loaded.ok);
  constexpr int kCalls = 4;
  constexpr int kSleepMs = 10;
  Child child({L7TAP_NATIVE_TARGET, "usdt", std::to_string(kCalls), std::to_string(kSleepMs)});
  ASSERT_GT(child.pid(), 0);
  // A native function first, so the USDT pair gets index 1.
  uint16_t first = 0, index = 0;
  std::string error;
  ASSERT_TRUE(loaded.program.attach(L7TAP_NATIVE_TARGET, child.pid(), nativeTarget("trivial"),
                                    first, error))
      << error;
  FunctionTarget usdt;
  usdt.kind = FunctionTarget::Kind::kUsdt;
  usdt.name = "l7tapt:request__start";
  usdt.usdt_provider = "l7tapt";
  usdt.usdt_start = "request__start";
  usdt.usdt_end = "request__done";
  ASSERT_TRUE(loaded.program.attach(L7TAP_NATIVE_TARGET, child.pid(), usdt, index, error)) << error;
  EXPECT_EQ(first, 0);
  EXPECT_EQ(index, 1);
  child.start();
  EXPECT_EQ(child.wait(), 0);

  const auto events = readEvents(loaded.program);
  const auto enters = ofKind(events, L7TAP_APP_EVENT_ENTER);
  const auto calls = ofKind(events, L7TAP_APP_EVENT_CALL);
  ASSERT_EQ(calls.size(), static_cast<size_t>(kCalls));
  ASSERT_EQ(enters.size(), static_cast<size_t>(kCalls));
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(calls[i].function, 1);
    EXPECT_EQ(enters[i].function, 1);
    EXPECT_EQ(enters[i].start_ns, calls[i].start_ns);
    EXPECT_EQ(enters[i].end_ns, 0u);
    EXPECT_GE(calls[i].end_ns - calls[i].start_ns, kSleepMs * kMs);
    EXPECT_EQ(calls[i].tid, static_cast<uint32_t>(child.pid()));
  }
  const auto stats = loaded.program.readStats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].calls, 0u);
  EXPECT_EQ(stats[1].calls, static_cast<uint64_t>(kCalls));
}

TEST(TraceProgramTest, RefusesWhatItCannotProbeInOneLine) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall);
  ASSERT_TRUE(loaded.ok);
  FunctionTarget t;
  t.name = "nowhere";
  t.entry_offset = 0x7fffffff;  // beyond the file
  uint16_t index = 0;
  std::string error;
  EXPECT_FALSE(loaded.program.attach(L7TAP_NATIVE_TARGET, -1, t, index, error));
  EXPECT_EQ(error.rfind("nowhere: ", 0), 0u) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
  FunctionTarget go;
  go.kind = FunctionTarget::Kind::kGo;
  go.name = "main.noRets";
  go.entry_offset = 0x1000;
  EXPECT_FALSE(loaded.program.attach(L7TAP_GO_TARGET, -1, go, index, error));
  EXPECT_EQ(error, "main.noRets: no RET instruction to end its calls at");
  // Failed attaches take no index.
  ASSERT_TRUE(loaded.program.attach(L7TAP_NATIVE_TARGET, -1, nativeTarget("trivial"), index, error))
      << error;
  EXPECT_EQ(index, 0);
}

// ---- Go ----

constexpr int kGoroutines = 8;
constexpr int kGoCalls = 5;
constexpr int kGoSleepMs = 20;
constexpr uint64_t kGoBytes = 1000;

void runGo(TraceProgram& program, std::set<uint16_t>& client_ports, uint16_t& server_port,
           pid_t& pid) {
  Listener listener;
  ASSERT_NE(listener.port(), 0);
  server_port = listener.port();
  Child child({L7TAP_GO_TARGET, std::to_string(listener.port()), std::to_string(kGoroutines),
               std::to_string(kGoCalls), std::to_string(kGoSleepMs), std::to_string(kGoBytes)});
  ASSERT_GT(child.pid(), 0);
  pid = child.pid();
  for (int i = 0; i < kGoroutines; ++i) client_ports.insert(listener.accept1());
  ASSERT_EQ(child.readLine(), "ready");
  uint16_t index = 0;
  std::string error;
  ASSERT_TRUE(program.attach(L7TAP_GO_TARGET, child.pid(), goTarget("main.handle"), index, error))
      << error;
  child.start();
  EXPECT_EQ(child.wait(), 0);  // never a crash
  EXPECT_EQ(listener.drain(), kGoroutines * kGoCalls * kGoBytes);
}

TEST(TraceProgramTest, GoCallsOnParkingGoroutinesAreOneEventEach) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall);
  ASSERT_TRUE(loaded.ok);
  std::set<uint16_t> client_ports;
  uint16_t server_port = 0;
  pid_t pid = 0;
  runGo(loaded.program, client_ports, server_port, pid);

  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_EQ(calls.size(), static_cast<size_t>(kGoroutines * kGoCalls));
  std::map<uint64_t, std::set<uint16_t>> ports_of_goid;
  std::map<uint64_t, int> calls_of_goid;
  for (const auto& e : calls) {
    EXPECT_EQ(e.tgid, static_cast<uint32_t>(pid));
    EXPECT_NE(e.g, 0u);
    EXPECT_NE(e.goid, 0u);
    EXPECT_GE(e.end_ns - e.start_ns, kGoSleepMs * kMs);
    EXPECT_EQ(e.io.bytes_sent, kGoBytes);
    EXPECT_EQ(e.flags, L7TAP_APP_F_CONN_KNOWN);
    EXPECT_EQ(e.conn.dport, server_port);
    EXPECT_EQ(client_ports.count(e.conn.sport), 1u);
    ports_of_goid[e.goid].insert(e.conn.sport);
    ++calls_of_goid[e.goid];
  }
  // Each goroutine's calls are its own, on its own connection.
  EXPECT_EQ(ports_of_goid.size(), static_cast<size_t>(kGoroutines));
  for (const auto& [goid, ports] : ports_of_goid) EXPECT_EQ(ports.size(), 1u) << goid;
  for (const auto& [goid, n] : calls_of_goid) EXPECT_EQ(n, kGoCalls) << goid;
  const TraceProgramCounters c = loaded.program.counters();
  EXPECT_EQ(c.no_entry, 0u);
  EXPECT_EQ(c.stale, 0u);
  EXPECT_EQ(c.lost, 0u);
  const auto stats = loaded.program.readStats();
  EXPECT_EQ(stats[0].calls, static_cast<uint64_t>(kGoroutines * kGoCalls));
  EXPECT_EQ(bucketSum(stats[0]), static_cast<uint64_t>(kGoroutines * kGoCalls));
  EXPECT_EQ(stats[0].bytes_sent, kGoroutines * kGoCalls * kGoBytes);
}

TEST(TraceProgramTest, GoHistogramModeCountsEveryCallAndSendsExemplars) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kHistograms);
  ASSERT_TRUE(loaded.ok);
  std::set<uint16_t> client_ports;
  uint16_t server_port = 0;
  pid_t pid = 0;
  runGo(loaded.program, client_ports, server_port, pid);

  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_GE(calls.size(), 1u);
  ASSERT_LT(calls.size(), static_cast<size_t>(kGoroutines * kGoCalls));
  for (const auto& e : calls) EXPECT_TRUE(e.flags & L7TAP_APP_F_EXEMPLAR);
  const auto stats = loaded.program.readStats();
  EXPECT_EQ(stats[0].calls, static_cast<uint64_t>(kGoroutines * kGoCalls));
  EXPECT_EQ(bucketSum(stats[0]), static_cast<uint64_t>(kGoroutines * kGoCalls));
}

// big() grows the stack at its entry (morestack runs the entry again) and
// fib() recurses: one event per outermost call either way, never a frame
// left behind.
TEST(TraceProgramTest, GoEntryRunTwiceByMorestackOrRecursionIsOneCall) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall);
  ASSERT_TRUE(loaded.ok);
  constexpr int kFibCalls = 177;  // fib(10) and every call it makes
  Child child({L7TAP_GO_TARGET, "stack", std::to_string(kGoroutines)});
  ASSERT_GT(child.pid(), 0);
  ASSERT_EQ(child.readLine(), "ready");
  uint16_t big = 0, fib = 0;
  std::string error;
  ASSERT_TRUE(loaded.program.attach(L7TAP_GO_TARGET, child.pid(), goTarget("main.big"), big, error))
      << error;
  ASSERT_TRUE(loaded.program.attach(L7TAP_GO_TARGET, child.pid(), goTarget("main.fib"), fib, error))
      << error;
  child.start();
  EXPECT_EQ(child.wait(), 0);

  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  std::map<uint16_t, std::set<uint64_t>> goids;
  for (const auto& e : calls) {
    EXPECT_TRUE(goids[e.function].insert(e.goid).second) << "two events of one call";
    EXPECT_EQ(e.flags & L7TAP_APP_F_NESTED, e.function == fib ? L7TAP_APP_F_NESTED : 0);
  }
  EXPECT_EQ(goids[big].size(), static_cast<size_t>(kGoroutines));
  EXPECT_EQ(goids[fib].size(), static_cast<size_t>(kGoroutines));
  const TraceProgramCounters c = loaded.program.counters();
  EXPECT_EQ(c.no_entry, 0u);
  EXPECT_EQ(c.stale, 0u);
  // At least the recursive entries; more when a recursive call's own entry
  // ran twice (morestack deeper down).
  EXPECT_GE(c.nested, static_cast<uint64_t>(kGoroutines * (kFibCalls - 1)));
  const auto stats = loaded.program.readStats();
  EXPECT_EQ(stats[big].calls, static_cast<uint64_t>(kGoroutines));
  EXPECT_EQ(stats[fib].calls, static_cast<uint64_t>(kGoroutines));
}

// A call that panics never reaches a RET: the next traced call at its depth
// or above drops it (counted stale), and the calls after are timed alone.
TEST(TraceProgramTest, GoCallEndedByPanicIsDroppedNotMerged) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  Loaded loaded(TraceProgramConfig::Mode::kPerCall);
  ASSERT_TRUE(loaded.ok);
  Child child({L7TAP_GO_TARGET, "panic"});
  ASSERT_GT(child.pid(), 0);
  ASSERT_EQ(child.readLine(), "ready");
  uint16_t may_panic = 0, other = 0;
  std::string error;
  ASSERT_TRUE(loaded.program.attach(L7TAP_GO_TARGET, child.pid(), goTarget("main.mayPanic"),
                                    may_panic, error))
      << error;
  ASSERT_TRUE(
      loaded.program.attach(L7TAP_GO_TARGET, child.pid(), goTarget("main.other"), other, error))
      << error;
  child.start();
  EXPECT_EQ(child.wait(), 0);

  const auto calls = ofKind(readEvents(loaded.program), L7TAP_APP_EVENT_CALL);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].function, other);
  EXPECT_EQ(calls[1].function, may_panic);
  EXPECT_GT(calls[1].start_ns, calls[0].end_ns);  // the second mayPanic, not the first
  EXPECT_EQ(loaded.program.counters().stale, 1u);
  EXPECT_EQ(loaded.program.counters().no_entry, 0u);
}

// ---- cost per call (not a test: run by hand, numbers in the report) ----
//
//   build/tests/trace_program_tests --gtest_also_run_disabled_tests
//       --gtest_filter='*CostPerCall*'   (one line)
double loopNsPerCall(TraceProgram* program, long calls, const char* mode = "loop",
                     bool go = false) {
  Child child({go ? L7TAP_GO_TARGET : L7TAP_NATIVE_TARGET, mode, std::to_string(calls)});
  if (program) {
    uint16_t index = 0;
    std::string error;
    EXPECT_TRUE(
        go ? program->attach(L7TAP_GO_TARGET, child.pid(), goTarget("main.trivial"), index, error)
           : program->attach(L7TAP_NATIVE_TARGET, child.pid(), nativeTarget("trivial"), index,
                             error))
        << error;
  }
  child.start();
  const std::string ns = child.readLine();
  EXPECT_EQ(child.wait(), 0);
  return ns.empty() ? 0 : std::stod(ns);
}

TEST(TraceProgramTest, DISABLED_CostPerCall) {
  L7TAP_SKIP_UNLESS(missingPrivileges());
  constexpr long kCalls = 1000000;
  std::printf("untraced: C %.1f ns/call, Go %.1f ns/call\n", loopNsPerCall(nullptr, kCalls),
              loopNsPerCall(nullptr, kCalls, "loop", /*go=*/true));
  // What the sys_enter/sys_exit tracepoints cost a process that runs no
  // traced function.
  std::printf("write(2) of an untraced process, programs not loaded: %.1f ns\n",
              loopNsPerCall(nullptr, kCalls, "writes"));
  {
    TraceProgram loaded;
    std::string error;
    ASSERT_TRUE(loaded.load(TraceProgramConfig{}, error)) << error;
    std::printf("write(2) of an untraced process, programs loaded: %.1f ns\n",
                loopNsPerCall(nullptr, kCalls, "writes"));
  }
  for (const auto mode :
       {TraceProgramConfig::Mode::kPerCall, TraceProgramConfig::Mode::kHistograms}) {
    TraceProgramConfig config;
    config.mode = mode;
    config.wakeup_bytes = 256 * 1024;
    TraceProgram program;
    std::string error;
    ASSERT_TRUE(program.load(config, error)) << error;
    // Drained as the daemon does, so the ring never fills.
    std::atomic<bool> stop{false};
    uint64_t read = 0;
    ring_buffer* rb = ring_buffer__new(
        program.ringFd(),
        [](void* ctx, void*, size_t) -> int {
          ++*static_cast<uint64_t*>(ctx);
          return 0;
        },
        &read, nullptr);
    ASSERT_NE(rb, nullptr);
    std::thread reader([&] {
      while (!stop) ring_buffer__poll(rb, 2);
      ring_buffer__consume(rb);
    });
    const double ns = loopNsPerCall(&program, kCalls);
    const double go_ns = loopNsPerCall(&program, kCalls, "loop", /*go=*/true);
    stop = true;
    reader.join();
    ring_buffer__free(rb);
    const TraceProgramCounters c = program.counters();
    std::printf("%s: C %.1f ns/call, Go %.1f ns/call (%llu events read, %llu lost)\n",
                mode == TraceProgramConfig::Mode::kPerCall ? "per-call" : "histogram", ns, go_ns,
                static_cast<unsigned long long>(read), static_cast<unsigned long long>(c.lost));
  }
}

}  // namespace
}  // namespace l7tap
