// The client against a stand-in kubelet: python3's http.server over TLS on
// 127.0.0.1, with a certificate the suite makes with openssl.
#include "kubelet/kubelet_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "kubelet/pod_cache.h"

namespace fs = std::filesystem;

namespace l7tap {
namespace {

const char* const kToken = "test-token-5a1c2e3f";

// The stand-in kubelet, killed and reaped when the test ends, however it ends
// (and by the kernel if the test binary dies first).
class StandInKubelet {
 public:
  StandInKubelet(const fs::path& dir, const std::string& mode, const fs::path& pods) {
    int out[2];
    if (pipe(out) != 0) return;
    const std::string script =
        (fs::path(L7TAP_SOURCE_DIR) / "tests/kubelet/stand_in_kubelet.py").string();
    const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
    const std::string pods_arg = pods.string();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execlp("python3", "python3", script.c_str(), "--cert", cert.c_str(), "--key", key.c_str(),
             "--token", kToken, "--pods", pods_arg.c_str(), "--mode", mode.c_str(), nullptr);
      _exit(127);
    }
    close(out[1]);
    // The port line, or nothing if the server died: 30 s is for a loaded
    // machine's python start-up, not a timing assumption of the test.
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    char c;
    while (poll(&p, 1, 30000) == 1 && read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    port_ = std::atoi(line.c_str());
  }
  ~StandInKubelet() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  StandInKubelet(const StandInKubelet&) = delete;
  StandInKubelet& operator=(const StandInKubelet&) = delete;

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

class KubeletClientTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/l7tap-kubelet-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '" +
        (dir_ / "key.pem").string() + "' -out '" + (dir_ / "cert.pem").string() +
        "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ofstream(dir_ / "token") << kToken << "\n";
    std::ofstream(dir_ / "bad-token") << "not-the-token\n";
    // A second, unrelated certificate: the wrong CA.
    const std::string other =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-nodes -days 2 -subj /CN=other -keyout '" +
        (dir_ / "other-key.pem").string() + "' -out '" + (dir_ / "other.pem").string() +
        "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(other.c_str()), 0) << other;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static fs::path pods() { return fs::path(L7TAP_SOURCE_DIR) / "tests/kubelet/fixtures/pods.json"; }

  KubeletClientConfig config(const std::string& url) const {
    KubeletClientConfig c;
    c.url = url;
    c.token_file = (dir_ / "token").string();
    c.ca_file = (dir_ / "cert.pem").string();
    c.limits.connect_timeout_ms = 2000;
    c.limits.total_timeout_ms = 1500;
    return c;
  }

  static fs::path dir_;
};

fs::path KubeletClientTest::dir_;

TEST_F(KubeletClientTest, GoodTokenGetsThePodList) {
  StandInKubelet k(dir_, "ok", pods());
  ASSERT_GT(k.port(), 0);
  KubeletClient client(config(k.url() + "/"));  // a trailing slash is not doubled
  std::string body, error;
  ASSERT_TRUE(client.fetch(body, error)) << error;
  std::ifstream in(pods());
  EXPECT_EQ(body, std::string(std::istreambuf_iterator<char>(in), {}));
  // The same client again: the handle is reused.
  ASSERT_TRUE(client.fetch(body, error)) << error;
  PodList list;
  ASSERT_TRUE(parsePodList(body, kDefaultKubeletLimits, list, error)) << error;
  EXPECT_EQ(list.pods.size(), 7u);
}

TEST_F(KubeletClientTest, BadTokenIs401) {
  StandInKubelet k(dir_, "ok", pods());
  ASSERT_GT(k.port(), 0);
  KubeletClientConfig c = config(k.url());
  c.token_file = (dir_ / "bad-token").string();
  KubeletClient client(c);
  std::string body, error;
  EXPECT_FALSE(client.fetch(body, error));
  EXPECT_NE(error.find("HTTP 401"), std::string::npos) << error;
  EXPECT_TRUE(body.empty());
}

TEST_F(KubeletClientTest, MissingTokenFileIsAnError) {
  KubeletClientConfig c = config("https://127.0.0.1:1");
  c.token_file = (dir_ / "absent").string();
  KubeletClient client(c);
  std::string body, error;
  EXPECT_FALSE(client.fetch(body, error));
  EXPECT_NE(error.find("token file"), std::string::npos) << error;
}

TEST_F(KubeletClientTest, WrongCaFailsAndInsecureDoesNot) {
  StandInKubelet k(dir_, "ok", pods());
  ASSERT_GT(k.port(), 0);
  KubeletClientConfig c = config(k.url());
  c.ca_file = (dir_ / "other.pem").string();
  std::string body, error;
  EXPECT_FALSE(KubeletClient(c).fetch(body, error));
  EXPECT_FALSE(error.empty());
  c.insecure = true;
  EXPECT_TRUE(KubeletClient(c).fetch(body, error)) << error;
}

TEST_F(KubeletClientTest, ServerDown) {
  // A port that was free a moment ago and has no listener.
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  close(s);
  KubeletClient client(config("https://127.0.0.1:" + std::to_string(ntohs(a.sin_port))));
  std::string body, error;
  EXPECT_FALSE(client.fetch(body, error));
  EXPECT_FALSE(error.empty());
}

TEST_F(KubeletClientTest, ServerThatNeverAnswersTimesOut) {
  StandInKubelet k(dir_, "hang", pods());
  ASSERT_GT(k.port(), 0);
  KubeletClient client(config(k.url()));
  std::string body, error;
  // That it returns at all is the test; the bound is the configured total timeout.
  EXPECT_FALSE(client.fetch(body, error));
  EXPECT_NE(error.find("imed out"), std::string::npos) << error;
}

TEST_F(KubeletClientTest, GarbageBodyIsFetchedThenRefusedByTheParser) {
  StandInKubelet k(dir_, "garbage", pods());
  ASSERT_GT(k.port(), 0);
  KubeletClient client(config(k.url()));
  std::string body, error;
  ASSERT_TRUE(client.fetch(body, error)) << error;
  PodList list;
  EXPECT_FALSE(parsePodList(body, kDefaultKubeletLimits, list, error));
}

TEST_F(KubeletClientTest, ResponseOverTheCapIsRefused) {
  StandInKubelet k(dir_, "ok", pods());
  ASSERT_GT(k.port(), 0);
  KubeletClientConfig c = config(k.url());
  c.limits.max_response_bytes = 1000;  // the fixture is larger
  KubeletClient client(c);
  std::string body, error;
  EXPECT_FALSE(client.fetch(body, error));
  EXPECT_NE(error.find("response over 1000 bytes"), std::string::npos) << error;
  EXPECT_TRUE(body.empty());
}

TEST_F(KubeletClientTest, CacheOverTheStandInKeepsNamesWhenItGoesAway) {
  PodCacheStats stats;
  KubeletClientConfig c;
  {
    StandInKubelet k(dir_, "ok", pods());
    ASSERT_GT(k.port(), 0);
    c = config(k.url());
    KubeletClient client(c);
    PodCache cache(client, c.limits);
    ASSERT_TRUE(cache.refresh(1)) << cache.stats().last_error;
    EXPECT_EQ(cache.stats().pods, 7u);
    PodAddress a;
    ASSERT_TRUE(parsePodAddress("10.1.0.4", a));
    ASSERT_NE(cache.byAddress(a), nullptr);
    EXPECT_EQ(cache.byAddress(a)->workload_name, "checkout");
  }
  // The same URL with the server gone.
  KubeletClient client(c);
  PodCache cache(client, c.limits);
  EXPECT_FALSE(cache.refresh(1));
  stats = cache.stats();
  EXPECT_EQ(stats.refresh_failures, 1u);
  EXPECT_NE(stats.last_error.find("127.0.0.1"), std::string::npos) << stats.last_error;
}

}  // namespace
}  // namespace l7tap
