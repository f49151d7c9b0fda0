// Analysis of real Go executables for the crypto/tls probes: the Go pair of
// tests/uprobes/go built by the test build with Debian's golang-go (1.19),
// as it is, without DWARF, stripped and position-independent; and what is
// not Go. RET offsets are checked against the file's bytes and against the
// Go toolchain's own disassembler (`go tool objdump`).
#include "uprobes/go_binary.h"
#include "tests/support/files.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace l7tap {
namespace {

const std::string kDir = L7TAP_GO_TLSPAIR_DIR;

using testing::commandOutput;
using testing::fileBytes;

// Link-time addresses of a function's first instruction and of its RETs,
// as `go tool objdump` prints them ("  conn.go:1089\t0x5ad320\t...\tRET").
struct ObjdumpFunction {
  uint64_t entry = 0;
  std::vector<uint64_t> returns;
};
ObjdumpFunction objdump(const std::string& binary, const std::string& symbol_regexp) {
  ObjdumpFunction f;
  std::istringstream lines(commandOutput("GOCACHE=" + kDir + "/cache GOTOOLCHAIN=local " +
                                         L7TAP_GO + " tool objdump -s '" + symbol_regexp + "' " +
                                         binary + " 2>&1"));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string position, address, encoding, mnemonic;
    if (!(fields >> position >> address >> encoding >> mnemonic) || address.rfind("0x", 0) != 0) {
      continue;
    }
    const uint64_t at = std::stoull(address, nullptr, 16);
    if (f.entry == 0) f.entry = at;
    if (mnemonic == "RET") f.returns.push_back(at);
  }
  return f;
}

void expectReturnsAreRets(const std::vector<uint8_t>& file, const GoTlsTarget::Function& f) {
  ASSERT_FALSE(f.return_offsets.empty());
  for (uint64_t offset : f.return_offsets) {
    ASSERT_LT(offset, file.size());
    EXPECT_EQ(file[offset], 0xC3) << "at file offset " << offset;
  }
}

TEST(GoBinary, ParsesVersions) {
  EXPECT_EQ(goMinorVersion("go1.19.8"), 19);
  EXPECT_EQ(goMinorVersion("go1.21rc2"), 21);
  EXPECT_EQ(goMinorVersion("devel go1.22-1234abcd Tue"), 22);
  EXPECT_EQ(goMinorVersion("go1.16"), 16);
  EXPECT_EQ(goMinorVersion("gccgo"), -1);
  EXPECT_EQ(goMinorVersion(""), -1);
}

TEST(GoBinary, TableCoversRegisterAbiVersionsOnly) {
  GoTlsOffsets offsets;
  EXPECT_FALSE(goTlsOffsetsForVersion(16, offsets));
  for (int minor = 17; minor <= 23; ++minor) EXPECT_TRUE(goTlsOffsetsForVersion(minor, offsets));
  EXPECT_EQ(offsets.g_goid, 160u);  // 1.23: runtime.g gained syscallbp
  EXPECT_FALSE(goTlsOffsetsForVersion(24, offsets));
}

TEST(GoBinary, AnalysesTheGoPair) {
  const std::string binary = kDir + "/tlspair";
  GoTlsTarget target;
  std::string error;
  ASSERT_TRUE(analyseGoBinary(binary, target, error)) << error;
  EXPECT_EQ(target.go_version.rfind("go1.19", 0), 0u) << target.go_version;
  EXPECT_TRUE(target.offsets_from_dwarf);
  EXPECT_FALSE(target.position_independent);
  EXPECT_NE(target.tcpconn_itab, 0u);

  // The table must agree with the DWARF of the version it can check.
  GoTlsOffsets table;
  ASSERT_TRUE(goTlsOffsetsForVersion(19, table));
  EXPECT_EQ(target.offsets, table);

  const std::vector<uint8_t> file = fileBytes(binary);
  expectReturnsAreRets(file, target.write);
  expectReturnsAreRets(file, target.read);
  EXPECT_TRUE(target.close.return_offsets.empty());

  // The Go toolchain's disassembler finds the same entries and RETs. The
  // default linux/amd64 layout maps file offset 0 at 0x400000.
  constexpr uint64_t kTextBase = 0x400000;
  const struct {
    const char* regexp;
    const GoTlsTarget::Function& function;
  } functions[] = {{R"(^crypto/tls\.\(\*Conn\)\.Write$)", target.write},
                   {R"(^crypto/tls\.\(\*Conn\)\.Read$)", target.read},
                   {R"(^crypto/tls\.\(\*Conn\)\.Close$)", target.close}};
  for (const auto& f : functions) {
    const ObjdumpFunction expected = objdump(binary, f.regexp);
    ASSERT_NE(expected.entry, 0u) << f.regexp;
    EXPECT_EQ(f.function.entry_offset + kTextBase, expected.entry) << f.regexp;
    if (&f.function == &target.close) continue;
    std::vector<uint64_t> returns;
    for (uint64_t offset : f.function.return_offsets) returns.push_back(offset + kTextBase);
    EXPECT_EQ(returns, expected.returns) << f.regexp;
  }
}

TEST(GoBinary, WithoutDwarfUsesTheTable) {
  GoTlsTarget with_dwarf, without;
  std::string error;
  ASSERT_TRUE(analyseGoBinary(kDir + "/tlspair", with_dwarf, error)) << error;
  ASSERT_TRUE(analyseGoBinary(kDir + "/tlspair-nodwarf", without, error)) << error;
  EXPECT_FALSE(without.offsets_from_dwarf);
  EXPECT_EQ(without.offsets, with_dwarf.offsets);
  EXPECT_EQ(without.go_version, with_dwarf.go_version);
  expectReturnsAreRets(fileBytes(kDir + "/tlspair-nodwarf"), without.write);
}

TEST(GoBinary, PositionIndependentSkipsTheItabCheck) {
  GoTlsTarget target;
  std::string error;
  ASSERT_TRUE(analyseGoBinary(kDir + "/tlspair-pie", target, error)) << error;
  EXPECT_TRUE(target.position_independent);
  EXPECT_EQ(target.tcpconn_itab, 0u);
  const std::vector<uint8_t> file = fileBytes(kDir + "/tlspair-pie");
  expectReturnsAreRets(file, target.write);
  expectReturnsAreRets(file, target.read);
}

TEST(GoBinary, RefusesAStrippedBinaryAndSaysWhatToDo) {
  GoTlsTarget target;
  std::string error;
  EXPECT_FALSE(analyseGoBinary(kDir + "/tlspair-stripped", target, error));
  EXPECT_NE(error.find("stripped"), std::string::npos) << error;
  EXPECT_NE(error.find("-ldflags=-s"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_EQ(target.go_version.rfind("go1.19", 0), 0u);
}

TEST(GoBinary, RefusesAGoProgramWithoutCryptoTls) {
  GoTlsTarget target;
  std::string error;
  EXPECT_FALSE(analyseGoBinary(kDir + "/hello", target, error));
  EXPECT_NE(error.find("without crypto/tls"), std::string::npos) << error;
}

// A copy of the Go pair with some bytes changed, in a file the test removes.
class PatchedCopy {
 public:
  explicit PatchedCopy(std::vector<uint8_t> bytes)
      : path_(::testing::TempDir() + "l7tg-patched-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()) {
    std::ofstream(path_, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<long>(bytes.size()));
  }
  ~PatchedCopy() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(GoBinary, RefusesGoOlderThan117) {
  std::vector<uint8_t> bytes = fileBytes(kDir + "/tlspair-nodwarf");
  const std::vector<uint8_t> magic = {0xff, ' ', 'G', 'o', ' ', 'b', 'u',
                                      'i',  'l', 'd', 'i', 'n', 'f', ':'};
  auto at = std::search(bytes.begin(), bytes.end(), magic.begin(), magic.end());
  ASSERT_NE(at, bytes.end());
  // Go 1.18+ keeps the version inline after the 32-byte header: "go1.19.8".
  const std::string old_version = "go1.16";
  auto version = std::search(at, at + 64, old_version.begin(), old_version.begin() + 4);
  ASSERT_NE(version, at + 64);
  std::copy(old_version.begin(), old_version.end(), version);
  PatchedCopy copy(std::move(bytes));
  GoTlsTarget target;
  std::string error;
  EXPECT_FALSE(analyseGoBinary(copy.path(), target, error));
  EXPECT_NE(error.find("older than go1.17"), std::string::npos) << error;
}

// Go 1.17 and older keep a pointer to runtime.buildVersion in the build info
// instead of the string: the pair rewritten to that layout reads the same.
TEST(GoBinary, ReadsTheBuildInfoLayoutOfGo117) {
  const std::string binary = kDir + "/tlspair-nodwarf";
  uint64_t build_version = 0;
  std::istringstream symbols(commandOutput("GOCACHE=" + kDir + "/cache GOTOOLCHAIN=local " +
                                           L7TAP_GO + " tool nm " + binary));
  std::string line;
  while (std::getline(symbols, line)) {
    std::istringstream fields(line);
    std::string address, kind, name;
    if (fields >> address >> kind >> name && name == "runtime.buildVersion") {
      build_version = std::stoull(address, nullptr, 16);
    }
  }
  ASSERT_NE(build_version, 0u);
  std::vector<uint8_t> bytes = fileBytes(binary);
  const std::vector<uint8_t> magic = {0xff, ' ', 'G', 'o', ' ', 'b', 'u',
                                      'i',  'l', 'd', 'i', 'n', 'f', ':'};
  auto at = std::search(bytes.begin(), bytes.end(), magic.begin(), magic.end());
  ASSERT_NE(at, bytes.end());
  ASSERT_EQ(at[14], 8);  // pointer size
  at[15] = 0;            // flags: little endian, strings not inline
  for (int i = 0; i < 8; ++i) at[16 + i] = static_cast<uint8_t>(build_version >> (8 * i));
  PatchedCopy copy(std::move(bytes));
  GoTlsTarget target;
  std::string error;
  ASSERT_TRUE(analyseGoBinary(copy.path(), target, error)) << error;
  EXPECT_EQ(target.go_version.rfind("go1.19", 0), 0u) << target.go_version;
}

TEST(GoBinary, RefusesAnotherArchitecture) {
  std::vector<uint8_t> bytes = fileBytes(kDir + "/tlspair-nodwarf");
  ASSERT_GT(bytes.size(), 20u);
  bytes[18] = 183;  // e_machine = EM_AARCH64 (little endian)
  bytes[19] = 0;
  PatchedCopy copy(std::move(bytes));
  GoTlsTarget target;
  std::string error;
  EXPECT_FALSE(analyseGoBinary(copy.path(), target, error));
  EXPECT_NE(error.find("amd64"), std::string::npos) << error;
}

TEST(GoBinary, RefusesWhatIsNotGo) {
  for (const char* path : {"/bin/true", L7TAP_NOT_GO}) {
    GoTlsTarget target;
    std::string error;
    EXPECT_FALSE(analyseGoBinary(path, target, error)) << path;
    EXPECT_EQ(error, "not a Go executable (no Go build info)") << path;
    EXPECT_TRUE(target.go_version.empty()) << path;
  }
}

TEST(GoBinary, RefusesWhatIsNotElf) {
  GoTlsTarget target;
  std::string error;
  EXPECT_FALSE(analyseGoBinary(L7TAP_SOURCE_DIR "/tests/uprobes/go/main.go", target, error));
  EXPECT_EQ(error, "not an ELF file");
  EXPECT_FALSE(analyseGoBinary("/nonexistent/l7tg", target, error));
  EXPECT_NE(error.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace l7tap
