// The Go crypto/tls probes on the real Go pair (tests/uprobes/go): its
// HTTP/1.1 and HTTP/2 clients and server talk TLS over loopback while the
// uprobes are attached, and the test compares the plaintext events with
// what each side must have sent and received, on the right sockets, and
// checks that the traced program did exactly what it does untraced (the
// probes sit on RET instructions, never uretprobes, so moving goroutine
// stacks cannot crash it, even with the garbage collector walking them every
// millisecond). Root only.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/privileged.h"
#include "uprobes/bpf/tls_abi.h"
#include "uprobes/go_binary.h"
#include "uprobes/tls_program.h"

extern char** environ;

namespace l7tap {
namespace {

const std::string kTlsPair = std::string(L7TAP_GO_TLSPAIR_DIR) + "/tlspair";
constexpr int kRequests = 20;

struct Stream {
  std::string bytes;
  uint32_t next_seq = 0;
  uint64_t next_offset = 0;
  bool in_order = true;
  uint8_t role = 0;
  bool tuple_known = true;
  l7tap_flow_key key{};
  bool closed = false;
};

struct Capture {
  pid_t pid = 0;
  // (conn_id, direction)
  // Sessions still open, by (conn_id, direction): the Go heap reuses the
  // address of a collected *tls.Conn for a later session.
  std::map<std::pair<uint64_t, uint8_t>, Stream> open;
  // Every session's streams, in the order they ended.
  std::vector<std::pair<std::pair<uint64_t, uint8_t>, Stream>> streams;
  int closes = 0;

  void finish() {
    for (auto& [id, s] : open) streams.emplace_back(id, std::move(s));
    open.clear();
  }
  int other_library = 0;
};

int onEvent(void* ctx, void* data, size_t size) {
  auto* capture = static_cast<Capture*>(ctx);
  if (size < L7TAP_TLS_EVENT_HEADER_SIZE) return 0;
  const auto* ev = static_cast<const l7tap_tls_event*>(data);
  if (ev->tgid != static_cast<uint32_t>(capture->pid)) return 0;
  if (ev->kind == L7TAP_TLS_EVENT_EXEC) return 0;  // the pair's own exec
  if (ev->library != L7TAP_TLS_LIB_GO) ++capture->other_library;
  if (ev->kind == L7TAP_TLS_EVENT_CLOSE) {
    ++capture->closes;
    for (uint8_t direction : {L7TAP_TLS_WRITE, L7TAP_TLS_READ}) {
      auto it = capture->open.find({ev->conn_id, direction});
      if (it == capture->open.end()) continue;
      it->second.closed = true;
      capture->streams.emplace_back(it->first, std::move(it->second));
      capture->open.erase(it);
    }
    return 0;
  }
  if (ev->kind != L7TAP_TLS_EVENT_DATA) return 0;
  Stream& s = capture->open[{ev->conn_id, ev->direction}];
  if (ev->seq != s.next_seq || ev->stream_offset != s.next_offset || ev->captured != ev->len) {
    s.in_order = false;
  }
  s.next_seq = ev->seq + 1;
  s.next_offset = ev->stream_offset + ev->len;
  s.bytes.append(reinterpret_cast<const char*>(ev->data), ev->captured);
  s.role = ev->role;
  s.tuple_known = s.tuple_known && ev->tuple_known;
  s.key = ev->key;
  return 0;
}

// Runs `argv`, returns its exit status and stdout; `pid` is set before it runs
// so the caller can filter events (they are only read afterwards).
int run(const std::vector<std::string>& args, pid_t& pid, std::string& out) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return -1;
  }
  char buffer[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) out.append(buffer, n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

bool mirrored(const l7tap_flow_key& a, const l7tap_flow_key& b) {
  return std::memcmp(a.saddr, b.daddr, sizeof a.saddr) == 0 &&
         std::memcmp(a.daddr, b.saddr, sizeof a.daddr) == 0 && a.sport == b.dport &&
         a.dport == b.sport;
}

bool isPrefix(const std::string& shorter, const std::string& longer) {
  return longer.compare(0, shorter.size(), shorter) == 0;
}

std::string expectedOutput() {
  std::string out;
  for (const char* proto : {"HTTP/1.1", "HTTP/2.0"}) {
    for (int i = 0; i < kRequests; ++i) {
      out += std::string(proto) + " 200 " + proto + " POST /l7tg/" + std::to_string(i) + " 100\n";
    }
  }
  return out;
}

struct RingDestroy {
  void operator()(ring_buffer* ring) const { ring_buffer__free(ring); }
};

// Runs the Go pair under TlsProgram's probes; the events of the pair's
// process, and its exit status and output.
struct TracedRun {
  Capture capture;
  int status = -1;
  std::string out;
  TlsProgramCounters counters;
};
void runTraced(const TlsProgramConfig& config, TracedRun& traced) {
  GoTlsTarget target;
  std::string error;
  ASSERT_TRUE(analyseGoBinary(kTlsPair, target, error)) << error;
  TlsProgram program;
  ASSERT_TRUE(program.load(config, error)) << error;
  ASSERT_EQ(program.attachGo(kTlsPair, target, error), TlsProgram::Attach::kAttached) << error;
  EXPECT_EQ(program.attachGo(kTlsPair, target, error), TlsProgram::Attach::kAlready);
  std::unique_ptr<ring_buffer, RingDestroy> ring(
      ring_buffer__new(program.ringFd(), onEvent, &traced.capture, nullptr));
  ASSERT_TRUE(ring);
  traced.status =
      run({kTlsPair, "-requests", std::to_string(kRequests)}, traced.capture.pid, traced.out);
  ASSERT_GE(ring_buffer__consume(ring.get()), 0);
  traced.capture.finish();
  traced.counters = program.counters();
}

TEST(GoTlsProbes, SeesThePlaintextOfTheGoPairOnItsSockets) {
  L7TAP_SKIP_UNLESS(testing::missingRoot());
  TracedRun traced;
  runTraced(TlsProgramConfig{}, traced);
  if (HasFatalFailure()) return;
  const int status = traced.status;
  const std::string& out = traced.out;
  const Capture& capture = traced.capture;
  ASSERT_TRUE(WIFEXITED(status)) << "the traced Go program died: status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(out, expectedOutput()) << "the traced Go program did something else";
  EXPECT_EQ(capture.other_library, 0);
  // no_entry may count a write that raced with its connection's Close.
  EXPECT_EQ(traced.counters.no_socket, 0u);
  EXPECT_EQ(traced.counters.lost, 0u);

  // Each client stream has a server stream on the mirrored socket that holds
  // the same bytes (up to what one side had not read when it closed).
  int http1_clients = 0, http2_clients = 0;
  for (const auto& [id, client] : capture.streams) {
    SCOPED_TRACE("conn " + std::to_string(id.first) + " direction " + std::to_string(id.second));
    EXPECT_TRUE(client.in_order);
    EXPECT_TRUE(client.tuple_known);
    EXPECT_EQ(client.key.family, 4);
    if (client.role != L7TAP_TLS_ROLE_CLIENT) {
      EXPECT_EQ(client.role, L7TAP_TLS_ROLE_SERVER);
      continue;
    }
    const uint8_t opposite = id.second == L7TAP_TLS_WRITE ? L7TAP_TLS_READ : L7TAP_TLS_WRITE;
    const Stream* server = nullptr;
    for (const auto& [sid, s] : capture.streams) {
      if (sid.second == opposite && s.role == L7TAP_TLS_ROLE_SERVER &&
          mirrored(s.key, client.key)) {
        server = &s;
      }
    }
    ASSERT_NE(server, nullptr) << "no server stream on the mirrored socket";
    const std::string& shorter =
        std::min(client.bytes, server->bytes, [](auto& a, auto& b) { return a.size() < b.size(); });
    const std::string& longer = &shorter == &client.bytes ? server->bytes : client.bytes;
    EXPECT_TRUE(isPrefix(shorter, longer));
    if (id.second != L7TAP_TLS_WRITE) continue;
    if (client.bytes.rfind("POST /l7tg/0 HTTP/1.1\r\n", 0) == 0) {
      ++http1_clients;
      for (int i = 0; i < kRequests; ++i) {
        EXPECT_NE(client.bytes.find("POST /l7tg/" + std::to_string(i) + " HTTP/1.1"),
                  std::string::npos);
      }
      EXPECT_EQ(client.bytes, server->bytes);
    } else if (client.bytes.rfind("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0) == 0) {
      ++http2_clients;
    }
  }
  EXPECT_EQ(http1_clients, 1);
  EXPECT_EQ(http2_clients, 1);

  // The HTTP/1.1 responses, as the server wrote them.
  bool responses = false;
  for (const auto& [id, s] : capture.streams) {
    if (id.second == L7TAP_TLS_WRITE && s.role == L7TAP_TLS_ROLE_SERVER &&
        s.bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0) {
      responses = s.bytes.find("HTTP/1.1 POST /l7tg/2 100\n") != std::string::npos;
    }
  }
  EXPECT_TRUE(responses);
  // Every session with data ended with a close.
  for (const auto& [id, s] : capture.streams) {
    EXPECT_TRUE(s.closed) << "conn " << id.first;
  }
}

TEST(GoTlsProbes, AttachBeforeLoadIsOneLineNamingTheFile) {
  GoTlsTarget target;
  std::string error;
  ASSERT_TRUE(analyseGoBinary(kTlsPair, target, error)) << error;
  TlsProgram program;
  EXPECT_EQ(program.attachGo(kTlsPair, target, error), TlsProgram::Attach::kFailed);
  EXPECT_EQ(error.rfind(kTlsPair + ": ", 0), 0u) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(GoTlsProbes, PidFilterLeavesOtherProcessesAlone) {
  L7TAP_SKIP_UNLESS(testing::missingRoot());
  TracedRun traced;
  TlsProgramConfig config;
  config.pids = {static_cast<uint32_t>(getpid())};  // not the Go pair
  runTraced(config, traced);
  if (HasFatalFailure()) return;
  EXPECT_TRUE(WIFEXITED(traced.status) && WEXITSTATUS(traced.status) == 0);
  EXPECT_EQ(traced.out, expectedOutput());
  EXPECT_TRUE(traced.capture.streams.empty());
  EXPECT_EQ(traced.capture.closes, 0);
}

}  // namespace
}  // namespace l7tap
