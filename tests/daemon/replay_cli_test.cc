// The replay command's contract on bad input: one clear line naming the
// file and the problem, records for what was read, a non-zero exit.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {

struct Result {
  int status;
  std::string out;
  std::string err;
};

Result replay(const std::string& args) {
  const fs::path err_file = fs::temp_directory_path() / ("l7tap-cli-" + std::to_string(getpid()));
  const std::string command =
      std::string(L7TAP_BINARY) + " " + args + " 2>'" + err_file.string() + "'";
  Result r{};
  FILE* p = popen(command.c_str(), "r");
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int rc = pclose(p);
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  fs::remove(err_file);
  return r;
}

fs::path fixture(const char* name) { return fs::path(L7TAP_SOURCE_DIR) / "pcaps" / name; }

class ReplayCli : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("l7tap-cli-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ReplayCli, NotACaptureIsAOneLineErrorNamingTheFile) {
  const fs::path f = dir_ / "notes.txt";
  std::ofstream(f) << "this is not a capture\n";
  const Result r = replay("replay " + f.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find(f.string() + ": "), std::string::npos) << r.err;
}

TEST_F(ReplayCli, MissingFileFails) {
  const Result r = replay("replay " + (dir_ / "absent.pcap").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("absent.pcap"), std::string::npos) << r.err;
}

TEST_F(ReplayCli, TruncatedCaptureWritesRecordsReadSoFarAndFails) {
  const fs::path src = fixture("http1-keepalive.pcap");
  ASSERT_TRUE(fs::exists(src));
  const fs::path cut = dir_ / "cut.pcap";
  fs::copy_file(src, cut);
  fs::resize_file(cut, fs::file_size(src) - 10);
  const Result r = replay("replay " + cut.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cut.pcap: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("\"type\":\"http\""), std::string::npos);
  EXPECT_NE(r.out.find("\"type\":\"conn\""), std::string::npos);
}

TEST_F(ReplayCli, UnsupportedLinkTypeIsNamed) {
  const fs::path f = dir_ / "wifi.pcap";
  pcap_t* dead = pcap_open_dead(DLT_IEEE802_11, 65535);
  pcap_dumper_t* d = pcap_dump_open(dead, f.c_str());
  pcap_dump_close(d);
  pcap_close(dead);
  const Result r = replay("replay " + f.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("unsupported link type 105"), std::string::npos) << r.err;
}

TEST_F(ReplayCli, BadWindowIsAUsageError) {
  for (const char* w : {"0", "-1", "abc", "99999999999"}) {
    const Result r = replay(std::string("replay --window ") + w + " x.pcap");
    EXPECT_EQ(r.status, 2) << w;
    EXPECT_NE(r.err.find("--window"), std::string::npos) << r.err;
  }
}

TEST_F(ReplayCli, UnknownCommandAndNoFilesAreUsageErrors) {
  EXPECT_EQ(replay("frobnicate").status, 2);
  EXPECT_EQ(replay("replay").status, 2);
  EXPECT_EQ(replay("--help").status, 0);
}

// attach checks its options before it needs root or BPF.
TEST_F(ReplayCli, AttachOptionErrorsAreUsageErrors) {
  const Result r = replay("attach --iface x --window 0");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("l7tap: --window needs 1..4096 bytes live, not '0'\n"), std::string::npos)
      << r.err;
  EXPECT_EQ(replay("attach --kubelet 10.0.0.1").status, 2);  // not a URL
  const Result help = replay("attach --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--ring-kb"), std::string::npos);
}

TEST_F(ReplayCli, OutputFileAndSummary) {
  const fs::path out = dir_ / "records.jsonl";
  const Result r =
      replay("replay -o " + out.string() + " " + fixture("http1-keepalive.pcap").string());
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_GT(fs::file_size(out), 0u);
  EXPECT_NE(r.err.find("HTTP records"), std::string::npos) << r.err;
}

// Bounds reached and oddities counted over the file are in the summary,
// and only when there are some.
TEST_F(ReplayCli, SummaryNamesWhatWasCounted) {
  const Result odd =
      replay("replay -o /dev/null " + fixture("tcp-conflicting-overlap.pcap").string());
  EXPECT_EQ(odd.status, 0) << odd.err;
  EXPECT_NE(odd.err.find("l7tap: counted: tcp.conflicting_overlap_bytes 1\n"), std::string::npos)
      << odd.err;
  const Result clean = replay("replay -o /dev/null " + fixture("http1-keepalive.pcap").string());
  EXPECT_EQ(clean.err.find("counted:"), std::string::npos) << clean.err;
}

}  // namespace
