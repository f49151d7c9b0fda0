// Golden tests: every capture in pcaps/ replays to exactly its expected
// records. pcaps/NAME.pcap pairs with pcaps/NAME.expected.jsonl (unlimited
// window), pcaps/NAME.wN.expected.jsonl (--window N) and
// pcaps/NAME.wN.cc.expected.jsonl (--window N --capture-control: what a live
// node that skips bodies and walks HTTP/2 frames reports).
//
// To re-bless after a reviewed change: L7TAP_UPDATE_GOLDEN=1 ctest -R Golden
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Golden {
  std::string capture;   // path
  std::string expected;  // path
  std::string window;    // "" for unlimited
  bool capture_control = false;
  std::string name;  // test name
};

// Names the parameter in test output instead of dumping its bytes.
void PrintTo(const Golden& g, std::ostream* os) { *os << g.name; }

std::vector<Golden> discover() {
  std::vector<Golden> out;
  const fs::path dir = fs::path(L7TAP_SOURCE_DIR) / "pcaps";
  const std::regex pattern(R"((.+?)(?:\.w(\d+))?(\.cc)?\.expected\.jsonl)");
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (!std::regex_match(file, m, pattern)) continue;
    Golden g;
    for (const char* ext : {".pcap", ".pcapng"}) {
      if (fs::exists(dir / (m[1].str() + ext))) g.capture = (dir / (m[1].str() + ext)).string();
    }
    g.expected = entry.path().string();
    g.window = m[2].str();
    g.capture_control = m[3].matched;
    g.name =
        m[1].str() + (g.window.empty() ? "" : "_w" + g.window) + (g.capture_control ? "_cc" : "");
    for (char& c : g.name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    out.push_back(g);
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

// Runs a command and returns its standard output and exit status.
std::string run(const std::string& command, int& status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = pclose(p);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class GoldenReplay : public testing::TestWithParam<Golden> {};

TEST_P(GoldenReplay, MatchesExpectedRecords) {
  const Golden& g = GetParam();
  ASSERT_FALSE(g.capture.empty()) << "no capture for " << g.expected;
  std::string command = std::string(L7TAP_BINARY) + " replay --quiet ";
  if (!g.window.empty()) command += "--window " + g.window + " ";
  if (g.capture_control) command += "--capture-control ";
  command += "'" + g.capture + "'";
  int status = 0;
  const std::string actual = run(command, status);
  ASSERT_EQ(status, 0) << command;
  if (std::getenv("L7TAP_UPDATE_GOLDEN")) {
    std::ofstream(g.expected) << actual;
    GTEST_SKIP() << "rewrote " << g.expected;
  }
  std::ifstream in(g.expected);
  std::stringstream expected;
  expected << in.rdbuf();
  const auto want = lines(expected.str());
  const auto got = lines(actual);
  for (size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
    const std::string w = i < want.size() ? want[i] : "<missing>";
    const std::string a = i < got.size() ? got[i] : "<missing>";
    ASSERT_EQ(w, a) << "first difference at record " << i + 1 << " of " << g.expected;
  }
}

// A fixture without expected records would be skipped without a word.
TEST(GoldenFixtures, EveryCaptureHasExpectedRecords) {
  const fs::path dir = fs::path(L7TAP_SOURCE_DIR) / "pcaps";
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path& p = entry.path();
    if (p.extension() != ".pcap" && p.extension() != ".pcapng") continue;
    fs::path expected = p;
    expected.replace_extension(".expected.jsonl");
    EXPECT_TRUE(fs::exists(expected)) << p.filename() << " has no " << expected.filename();
  }
}

INSTANTIATE_TEST_SUITE_P(Pcaps, GoldenReplay, testing::ValuesIn(discover()),
                         [](const auto& info) { return info.param.name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GoldenReplay);

}  // namespace
