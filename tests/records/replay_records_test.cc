// --records through the real program: a replay of every fixture writes
// exactly the exchanges each rule keeps (checked against the records of the
// same replay with `all`), the same ones every time, every connection
// record, and metrics that count every exchange whatever was written.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Result {
  int status;
  std::vector<std::string> lines;
  std::string err;
};

Result run(const std::string& args) {
  const fs::path err_file =
      fs::temp_directory_path() / ("l7tap-records-" + std::to_string(getpid()));
  const std::string command =
      std::string(L7TAP_BINARY) + " " + args + " 2>'" + err_file.string() + "'";
  Result r{};
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = pclose(p);
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) r.lines.push_back(line);
  std::ifstream err(err_file);
  r.err.assign(std::istreambuf_iterator<char>(err), {});
  fs::remove(err_file);
  return r;
}

// Every committed capture, in one replay.
std::string allFixtures() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(fs::path(L7TAP_SOURCE_DIR) / "pcaps")) {
    if (e.path().extension() == ".pcap" || e.path().extension() == ".pcapng")
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::string joined;
  for (const std::string& f : files) joined += " '" + f + "'";
  return joined;
}

bool isHttp(const nlohmann::json& j) { return j.value("type", "") == "http"; }

// The `errors` rule, from the written fields.
bool isError(const nlohmann::json& j) {
  if (j.value("http.response.status_code", 0) >= 500) return true;
  if (j.contains("rpc.grpc.status_code") && j["rpc.grpc.status_code"] != 0) return true;
  if (!j.contains("l7tap.flags")) return false;
  for (const auto& flag : j["l7tap.flags"]) {
    for (const char* f : {"reset", "no_response", "no_request", "hpack_error", "hpack_unknown",
                          "overflow", "ambiguous"}) {
      if (flag == f) return true;
    }
  }
  return false;
}

// The lines of `all` that are not exchanges, or are exchanges `keep` keeps,
// in their order.
std::vector<std::string> filteredLines(
    const std::vector<std::string>& all,
    const std::function<bool(const nlohmann::json&, const std::string&)>& keep) {
  std::vector<std::string> out;
  for (const std::string& line : all) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (!isHttp(j) || keep(j, line)) out.push_back(line);
  }
  return out;
}

std::vector<std::string> filtered(const std::vector<std::string>& all,
                                  const std::function<bool(const nlohmann::json&)>& keep) {
  return filteredLines(all,
                       [&keep](const nlohmann::json& j, const std::string&) { return keep(j); });
}

size_t httpCount(const std::vector<std::string>& lines) {
  size_t n = 0;
  for (const std::string& line : lines) n += line.find("\"type\":\"http\"") != std::string::npos;
  return n;
}

class ReplayRecords : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    files_ = allFixtures();
    all_ = run("replay --quiet" + files_);
    ASSERT_EQ(all_.status, 0) << all_.err;
    ASSERT_GT(httpCount(all_.lines), 500u);
  }
  static inline std::string files_;
  static inline Result all_;
};

TEST_F(ReplayRecords, DefaultIsAll) {
  const Result r = run("replay --quiet --records all" + files_);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.lines, all_.lines);
}

TEST_F(ReplayRecords, ErrorsWritesExactlyTheFailedExchangesAndEveryConnection) {
  const Result r = run("replay --quiet --records errors" + files_);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<std::string> expected = filtered(all_.lines, isError);
  EXPECT_EQ(r.lines, expected);
  EXPECT_GT(httpCount(expected), 0u);
  EXPECT_LT(httpCount(expected), httpCount(all_.lines));
}

TEST_F(ReplayRecords, SlowWritesExchangesAtLeastThatLong) {
  const Result r = run("replay --quiet --records slow:5ms" + files_);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto slow = [](const nlohmann::json& j) {
    if (!j.contains("l7tap.timing.request_start_ns") || !j.contains("l7tap.timing.response_end_ns"))
      return false;
    const uint64_t start = j["l7tap.timing.request_start_ns"];
    const uint64_t end = j["l7tap.timing.response_end_ns"];
    return end >= start && end - start >= 5000000;
  };
  const std::vector<std::string> expected = filtered(all_.lines, slow);
  EXPECT_EQ(r.lines, expected);
  EXPECT_GT(httpCount(expected), 0u);
  EXPECT_LT(httpCount(expected), httpCount(all_.lines));
}

TEST_F(ReplayRecords, SampleIsTheSameEveryTimeAndAboutItsFraction) {
  const Result a = run("replay --quiet --records sample:0.5" + files_);
  const Result b = run("replay --quiet --records sample:0.5" + files_);
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.lines, b.lines);
  // A subset of everything, in order, with every connection record.
  const std::vector<std::string> subset =
      filteredLines(all_.lines, [&a](const nlohmann::json&, const std::string& line) {
        return std::find(a.lines.begin(), a.lines.end(), line) != a.lines.end();
      });
  EXPECT_EQ(a.lines, subset);
  const double fraction =
      static_cast<double>(httpCount(a.lines)) / static_cast<double>(httpCount(all_.lines));
  EXPECT_GT(fraction, 0.35);
  EXPECT_LT(fraction, 0.65);
  const Result none = run("replay --quiet --records sample:0" + files_);
  EXPECT_EQ(none.lines, filtered(all_.lines, [](const nlohmann::json&) { return false; }));
}

TEST_F(ReplayRecords, CombinedRulesKeepTheUnion) {
  const Result r = run("replay --quiet --records errors,sample:0.5" + files_);
  const Result s = run("replay --quiet --records sample:0.5" + files_);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<std::string> expected =
      filteredLines(all_.lines, [&s](const nlohmann::json& j, const std::string& line) {
        return isError(j) || std::find(s.lines.begin(), s.lines.end(), line) != s.lines.end();
      });
  EXPECT_EQ(r.lines, expected);
}

// Lines of a metrics exposition about exchanges (not l7tap's own).
std::vector<std::string> exchangeMetrics(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("http_", 0) == 0 || line.rfind("rpc_", 0) == 0) out.push_back(line);
  }
  return out;
}

std::string metricValue(const fs::path& file, const std::string& name) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return line.substr(name.size() + 1);
  }
  return "";
}

TEST_F(ReplayRecords, MetricsCountEveryExchange) {
  const fs::path dir = fs::temp_directory_path() / ("l7tap-records-m-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const Result a =
      run("replay --quiet --metrics-out '" + (dir / "all.prom").string() + "'" + files_);
  const Result n = run("replay --quiet --records sample:0 --metrics-out '" +
                       (dir / "none.prom").string() + "'" + files_);
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(n.status, 0) << n.err;
  const auto all_metrics = exchangeMetrics(dir / "all.prom");
  EXPECT_GT(all_metrics.size(), 10u);
  EXPECT_EQ(exchangeMetrics(dir / "none.prom"), all_metrics);
  EXPECT_EQ(metricValue(dir / "none.prom", "l7tap_records_dropped_by_policy_total"),
            std::to_string(httpCount(all_.lines)));
  EXPECT_EQ(metricValue(dir / "all.prom", "l7tap_records_dropped_by_policy_total"), "0");
  fs::remove_all(dir);
}

TEST_F(ReplayRecords, SummarySaysWhatWasDropped) {
  const Result r = run("replay --records errors -o /dev/null" + files_);
  ASSERT_EQ(r.status, 0) << r.err;
  const size_t errors = httpCount(filtered(all_.lines, isError));
  const std::string line =
      "l7tap: records errors: " + std::to_string(errors) + " HTTP records written, " +
      std::to_string(httpCount(all_.lines) - errors) + " dropped by the policy";
  EXPECT_NE(r.err.find(line), std::string::npos) << r.err;
}

TEST(RecordsOption, BadValuesAreUsageErrors) {
  for (const char* value : {"bogus", "slow:10", "sample:2", "errors,,all"}) {
    for (const char* command : {"replay", "attach"}) {
      const Result r = run(std::string(command) + " --records '" + value + "' /dev/null");
      EXPECT_EQ(r.status, 2) << command << " " << value;
      EXPECT_EQ(r.err.rfind(std::string("l7tap: --records ") + value + ": ", 0), 0u) << r.err;
    }
  }
}

TEST(RecordsOption, ConfigKeyIsChecked) {
  const fs::path dir = fs::temp_directory_path() / ("l7tap-records-c-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "good.yaml") << "records: errors,slow:100ms,sample:0.01\nnice: 5\n";
  std::ofstream(dir / "bad.yaml") << "records: sometimes\n";
  std::ofstream(dir / "badnice.yaml") << "nice: 20\n";
  const Result good = run("config check '" + (dir / "good.yaml").string() + "'");
  EXPECT_EQ(good.status, 0) << good.err;
  const Result good_replay =
      run("config check --command replay '" + (dir / "good.yaml").string() + "'");
  EXPECT_EQ(good_replay.status, 2) << "nice is attach's only";
  const Result bad = run("config check '" + (dir / "bad.yaml").string() + "'");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("sometimes"), std::string::npos) << bad.err;
  const Result bad_nice = run("config check '" + (dir / "badnice.yaml").string() + "'");
  EXPECT_EQ(bad_nice.status, 2);
  fs::remove_all(dir);
}

}  // namespace
