// Library discovery on this machine's real /proc, with a fake attacher: a
// python3 that imported ssl maps libssl.so.3, which is found once per file,
// through /proc/PID/root; executables are told apart by the SSL_write they
// define or only import.
#include "uprobes/library_discovery.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace l7tap {
namespace {

struct FakeAttacher final : TlsFileAttacher {
  Result attach(TlsFileKind kind, const MappedFile& file, std::string& error) override {
    calls.push_back(file);
    kinds.push_back(kind);
    if (refuse) {
      error = "no SSL_read_ex";
      return Result::kFailed;
    }
    return Result::kAttached;
  }
  std::vector<MappedFile> calls;
  std::vector<TlsFileKind> kinds;
  bool refuse = false;
};

// A python3 that imported ssl (libssl.so.3 mapped), killed at the end.
class PythonWithSsl {
 public:
  PythonWithSsl() {
    const char* argv[] = {"python3", "-c",
                          "import ssl, sys; sys.stdout.write('ready\\n'); sys.stdout.flush(); "
                          "sys.stdin.read()",
                          nullptr};
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    if (posix_spawnp(&pid_, "python3", &fa, nullptr, const_cast<char**>(argv), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    // It says so once ssl is imported: no waiting on time.
    char buf[6] = {};
    ready_ = read(out[0], buf, sizeof buf) == 6 && std::string(buf, 6) == "ready\n";
    close(out[0]);
  }
  ~PythonWithSsl() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  uint32_t pid() const { return static_cast<uint32_t>(pid_); }
  bool ready() const { return ready_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool ready_ = false;
};

std::string libsslOf(uint32_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const size_t at = line.find('/');
    if (at != std::string::npos && line.find("/libssl.so", at) != std::string::npos)
      return line.substr(at);
  }
  return {};
}

TEST(LibraryDiscovery, FindsThePythonsLibsslOncePerFile) {
  PythonWithSsl a, b;
  ASSERT_TRUE(a.ready() && b.ready()) << "python3 with ssl did not start";
  const std::string libssl = libsslOf(a.pid());
  ASSERT_FALSE(libssl.empty());
  FakeAttacher attacher;
  std::vector<std::string> lines;
  LibraryDiscovery discovery(
      attacher,
      {.pids = {a.pid(), b.pid()}, .report = [&](const std::string& l) { lines.push_back(l); }});
  discovery.scanAll(0);
  discovery.scanAll(1);
  // One file, two processes, two scans: attached once.
  std::vector<MappedFile> ssl;
  for (const MappedFile& f : attacher.calls) {
    if (f.mapped_path == libssl) ssl.push_back(f);
  }
  ASSERT_EQ(ssl.size(), 1u);
  EXPECT_EQ(ssl[0].open_path, "/proc/" + std::to_string(ssl[0].pid) + "/root" + libssl);
  EXPECT_FALSE(ssl[0].executable);
  struct stat st;
  EXPECT_EQ(stat(ssl[0].open_path.c_str(), &st), 0);
  EXPECT_EQ(discovery.stats().attached, attacher.calls.size());
  EXPECT_TRUE(lines.empty());
  // python3 itself imports no SSL_write: not attached.
  for (const MappedFile& f : attacher.calls) EXPECT_FALSE(f.executable) << f.mapped_path;
}

TEST(LibraryDiscovery, AfterAnExecTheProcessIsLookedAtTwice) {
  PythonWithSsl p;
  ASSERT_TRUE(p.ready());
  FakeAttacher attacher;
  LibraryDiscovery discovery(attacher,
                             {.pids = {p.pid()}, .full_scan_interval_ns = UINT64_MAX / 2});
  discovery.scanAll(0);  // the periodic scan's first turn
  const uint64_t scans = discovery.stats().process_scans;
  const LibraryDiscoveryLimits limits;
  discovery.onExec(p.pid(), 1000);
  discovery.onExec(p.pid() + 1, 1000);  // not one of --tls-pid
  discovery.tick(1000);
  EXPECT_EQ(discovery.stats().process_scans, scans);
  discovery.tick(1000 + limits.exec_first_delay_ns);
  EXPECT_EQ(discovery.stats().process_scans, scans + 1);
  discovery.tick(1000 + limits.exec_second_delay_ns);
  EXPECT_EQ(discovery.stats().process_scans, scans + 2);
  discovery.tick(UINT64_MAX / 2 + 1);
  EXPECT_EQ(discovery.stats().full_scans, 2u);
}

TEST(LibraryDiscovery, ARefusedFileIsOneLineOnce) {
  PythonWithSsl p;
  ASSERT_TRUE(p.ready());
  FakeAttacher attacher;
  attacher.refuse = true;
  std::vector<std::string> lines;
  LibraryDiscovery discovery(
      attacher, {.pids = {p.pid()}, .report = [&](const std::string& l) { lines.push_back(l); }});
  discovery.scanAll(0);
  discovery.scanAll(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "l7tap: tls: " + libsslOf(p.pid()) + ": no SSL_read_ex");
  EXPECT_EQ(discovery.stats().refused, 1u);
}

TEST(LibraryDiscovery, NamedFilesAreClassifiedBySymbol) {
  FakeAttacher attacher;
  std::vector<std::string> lines;
  LibraryDiscovery discovery(attacher,
                             {.report = [&](const std::string& l) { lines.push_back(l); }});
  // /usr/bin/openssl only imports SSL_write: its libssl is what to attach to.
  discovery.addFile("/usr/bin/openssl");
  discovery.addFile("/nonexistent/l7td-binary");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(
      lines[0].rfind(
          "l7tap: tls: /usr/bin/openssl: neither OpenSSL or BoringSSL (no SSL_write symbol)", 0),
      0u)
      << lines[0];
  EXPECT_EQ(lines[1], "l7tap: tls: /nonexistent/l7td-binary: No such file or directory");
  EXPECT_TRUE(attacher.calls.empty());
  // A file that defines SSL_write, whatever its name (as a static build would).
  PythonWithSsl p;
  ASSERT_TRUE(p.ready());
  const std::string libssl = libsslOf(p.pid());
  EXPECT_TRUE(elfDefinesSymbol(libssl, "SSL_write"));
  EXPECT_FALSE(elfDefinesSymbol("/usr/bin/openssl", "SSL_write"));
  std::string why;
  EXPECT_EQ(classifyTlsFile({0, "/opt/app/server", libssl, true}, why), TlsFileKind::kOpenSsl);
  EXPECT_EQ(classifyTlsFile({0, "/bin/true", "/bin/true", true}, why), TlsFileKind::kNotTls);
}

}  // namespace
}  // namespace l7tap
