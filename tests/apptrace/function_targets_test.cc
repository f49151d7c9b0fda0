// Function targets resolved in real files built by the test build: a C
// program (symbols, a stripped copy, USDT probes from <sys/sdt.h>) and a Go
// program with several main.handle* functions (Debian's golang-go), as it
// is, without DWARF and stripped. RET offsets are checked against the
// file's bytes and against the Go toolchain's own disassembler.
#include "apptrace/function_targets.h"
#include "tests/support/files.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace l7tap {
namespace {

const std::string kDir = L7TAP_APPTRACE_FIXTURES;
const std::string kNative = L7TAP_APPTRACE_NATIVE;
const std::string kGo = kDir + "/handlers";
constexpr uint64_t kGo119Goid = 152;  // runtime.g.goid in go1.19 (Debian bookworm)

using testing::commandOutput;
using testing::fileBytes;

std::vector<std::string> names(const std::vector<FunctionTarget>& targets) {
  std::vector<std::string> out;
  for (const FunctionTarget& t : targets) out.push_back(t.name);
  return out;
}

// The symbol's value as nm prints it ("0000000000001150 T handle_get").
uint64_t nmValue(const std::string& binary, const std::string& symbol) {
  std::istringstream lines(commandOutput("nm " + binary));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string value, type, name;
    if (fields >> value >> type >> name && name == symbol) return std::stoull(value, nullptr, 16);
  }
  return 0;
}

TEST(FunctionTargets, NativeFunctionByExactName) {
  std::vector<FunctionTarget> targets;
  std::string error;
  ASSERT_TRUE(resolveFunctions(kNative, {"handle_get"}, targets, error)) << error;
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].kind, FunctionTarget::Kind::kNative);
  EXPECT_EQ(targets[0].name, "handle_get");
  EXPECT_TRUE(targets[0].return_offsets.empty());
  // gcc's default PIE layout maps its code at the address equal to its
  // file offset: the symbol's value is the offset.
  const uint64_t value = nmValue(kNative, "handle_get");
  ASSERT_NE(value, 0u);
  EXPECT_EQ(targets[0].entry_offset, value);
}

TEST(FunctionTargets, NativeGlobSortedAndAliasesOnce) {
  std::vector<FunctionTarget> targets;
  std::string error;
  ASSERT_TRUE(resolveFunctions(kNative, {"handle_*"}, targets, error)) << error;
  // handle_remove is handle_delete's alias: one address, one probe.
  EXPECT_EQ(names(targets),
            (std::vector<std::string>{"handle_delete", "handle_get", "handle_put"}));
}

TEST(FunctionTargets, PatternsInOrderEachFunctionOnce) {
  std::vector<FunctionTarget> targets;
  std::string error;
  ASSERT_TRUE(resolveFunctions(kNative, {"handle_put", "helper", "handle_[gp]*"}, targets, error))
      << error;
  EXPECT_EQ(names(targets), (std::vector<std::string>{"handle_put", "helper", "handle_get"}));
}

TEST(FunctionTargets, MissingFunction) {
  std::vector<FunctionTarget> targets;
  std::string error;
  EXPECT_FALSE(resolveFunctions(kNative, {"handle_get", "handle_nothing*"}, targets, error));
  EXPECT_EQ(error, "no function matches 'handle_nothing*'");
  EXPECT_FALSE(resolveFunctions(kNative, {"handle\nx"}, targets, error));
  EXPECT_EQ(error, "no function matches 'handle\\x0ax'");
  EXPECT_TRUE(targets.empty());
}

TEST(FunctionTargets, StrippedBinarySaysWhatToDo) {
  for (const std::string& binary : {kDir + "/native-stripped", kDir + "/handlers-stripped"}) {
    std::vector<FunctionTarget> targets;
    std::string error;
    EXPECT_FALSE(resolveFunctions(binary, {"handle_get"}, targets, error)) << binary;
    EXPECT_EQ(error,
              "stripped: the symbol table is gone; trace a USDT probe (--usdt) or a build with "
              "symbols")
        << binary;
  }
}

TEST(FunctionTargets, NotElf) {
  std::vector<FunctionTarget> targets;
  std::string error;
  EXPECT_FALSE(resolveFunctions(L7TAP_SOURCE_DIR "/tests/apptrace/targets/native.c", {"main"},
                                targets, error));
  EXPECT_EQ(error, "not an ELF file");
  EXPECT_FALSE(resolveFunctions("/nonexistent/a14t", {"main"}, targets, error));
  EXPECT_EQ(error, "cannot open: No such file or directory");
  FunctionTarget usdt;
  EXPECT_FALSE(
      resolveUsdt(L7TAP_SOURCE_DIR "/tests/apptrace/targets/native.c", "a:b:c", usdt, error));
  EXPECT_EQ(error, "not an ELF file");
}

TEST(FunctionTargets, TooManyMatchesRefusedNotCut) {
  std::vector<FunctionTarget> targets;
  std::string error;
  EXPECT_FALSE(resolveFunctions(kGo, {"runtime.*"}, targets, error));
  EXPECT_NE(error.find("'runtime.*' matches "), std::string::npos) << error;
  EXPECT_NE(error.find("more than 64"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

// Link-time addresses of a function's first instruction and of its RETs,
// as `go tool objdump` prints them ("  main.go:20\t0x47e0a0\t...\tRET").
struct ObjdumpFunction {
  uint64_t entry = 0;
  /// The instruction after the stack-growth check's JBE (the first JBE of
  /// the first three instructions); 0 when there is none.
  uint64_t body = 0;
  std::vector<uint64_t> returns;
};
ObjdumpFunction objdump(const std::string& binary, const std::string& symbol_regexp) {
  ObjdumpFunction f;
  std::istringstream lines(commandOutput("GOCACHE=" + kDir + "/cache GOTOOLCHAIN=local " +
                                         L7TAP_GO + " tool objdump -s '" + symbol_regexp + "' " +
                                         binary + " 2>&1"));
  std::string line;
  bool after_jbe = false;
  size_t index = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string position, address, encoding, mnemonic;
    if (!(fields >> position >> address >> encoding >> mnemonic) || address.rfind("0x", 0) != 0) {
      continue;
    }
    const uint64_t at = std::stoull(address, nullptr, 16);
    if (f.entry == 0) f.entry = at;
    if (after_jbe) f.body = at;
    after_jbe = mnemonic == "JBE" && index < 3 && f.body == 0;
    ++index;
    if (mnemonic == "RET") f.returns.push_back(at);
  }
  return f;
}

TEST(FunctionTargets, GoHandlersByGlobWithEveryRet) {
  std::vector<FunctionTarget> targets;
  std::string error;
  ASSERT_TRUE(resolveFunctions(kGo, {"main.handle*"}, targets, error)) << error;
  EXPECT_EQ(names(targets), (std::vector<std::string>{"main.handleGetUser", "main.handleListUsers",
                                                      "main.handlePutUser"}));
  const std::vector<uint8_t> file = fileBytes(kGo);
  // The default linux/amd64 layout maps file offset 0 at 0x400000.
  constexpr uint64_t kTextBase = 0x400000;
  for (const FunctionTarget& t : targets) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.kind, FunctionTarget::Kind::kGo);
    EXPECT_EQ(t.goid_offset, kGo119Goid);
    ASSERT_FALSE(t.return_offsets.empty());
    for (uint64_t offset : t.return_offsets) {
      ASSERT_LT(offset, file.size());
      EXPECT_EQ(file[offset], 0xC3) << "at file offset " << offset;
    }
    const ObjdumpFunction expected = objdump(kGo, "^" + t.name + "$");
    ASSERT_NE(expected.entry, 0u);
    // Each handler calls functions, so it checks its stack: the entry probe
    // goes past the check, which a call that grows the stack runs twice.
    ASSERT_NE(expected.body, 0u);
    EXPECT_EQ(t.entry_offset + kTextBase, expected.body);
    std::vector<uint64_t> returns;
    for (uint64_t offset : t.return_offsets) returns.push_back(offset + kTextBase);
    EXPECT_EQ(returns, expected.returns);
  }
  // Several returns in the source, several RETs to probe.
  const auto put = std::find_if(targets.begin(), targets.end(), [](const FunctionTarget& t) {
    return t.name == "main.handlePutUser";
  });
  ASSERT_NE(put, targets.end());
  EXPECT_GE(put->return_offsets.size(), 2u);
}

TEST(FunctionTargets, GoMethodByExactNameDespiteGlobCharacters) {
  std::vector<FunctionTarget> targets;
  std::string error;
  ASSERT_TRUE(resolveFunctions(kGo, {"main.(*store).handleMethod"}, targets, error)) << error;
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].name, "main.(*store).handleMethod");
  EXPECT_EQ(targets[0].kind, FunctionTarget::Kind::kGo);
  // A leaf without a stack check: probed at its first instruction.
  const ObjdumpFunction expected = objdump(kGo, R"(^main\.\(\*store\)\.handleMethod$)");
  ASSERT_NE(expected.entry, 0u);
  EXPECT_EQ(expected.body, 0u);
  EXPECT_EQ(targets[0].entry_offset + 0x400000, expected.entry);
}

TEST(FunctionTargets, GoWithoutDwarfTakesGoidFromTable) {
  std::vector<FunctionTarget> with, without;
  std::string error;
  ASSERT_TRUE(resolveFunctions(kGo, {"main.handleGetUser"}, with, error)) << error;
  ASSERT_TRUE(resolveFunctions(kDir + "/handlers-nodwarf", {"main.handleGetUser"}, without, error))
      << error;
  ASSERT_EQ(without.size(), 1u);
  EXPECT_EQ(without[0].goid_offset, with[0].goid_offset);
  EXPECT_EQ(without[0].return_offsets.size(), with[0].return_offsets.size());
}

TEST(FunctionTargets, UsdtPairs) {
  FunctionTarget target;
  std::string error;
  ASSERT_TRUE(resolveUsdt(kNative, "l7tapt:request__start:request__end", target, error)) << error;
  EXPECT_EQ(target.kind, FunctionTarget::Kind::kUsdt);
  EXPECT_EQ(target.name, "l7tapt:request__start");
  EXPECT_EQ(target.usdt_provider, "l7tapt");
  EXPECT_EQ(target.usdt_start, "request__start");
  EXPECT_EQ(target.usdt_end, "request__end");

  ASSERT_TRUE(resolveUsdt(kNative, "l7tapt:request", target, error)) << error;
  EXPECT_EQ(target.name, "l7tapt:request");
  EXPECT_EQ(target.usdt_start, "request__start");
  EXPECT_EQ(target.usdt_end, "request__end");

  ASSERT_TRUE(resolveUsdt(kNative, "l7tapt:work_begin:work_finish", target, error)) << error;
  EXPECT_EQ(target.usdt_end, "work_finish");
  // Stripping keeps the notes: USDT is what a stripped binary can trace.
  ASSERT_TRUE(resolveUsdt(kDir + "/native-stripped", "l7tapt:request", target, error)) << error;
}

TEST(FunctionTargets, UsdtErrors) {
  FunctionTarget target;
  std::string error;
  EXPECT_FALSE(resolveUsdt(kNative, "l7tapt:work", target, error));
  EXPECT_NE(error.find("no USDT probe pair l7tapt:work (looked for work__start/work__end"),
            std::string::npos)
      << error;
  EXPECT_FALSE(resolveUsdt(kNative, "l7tapt:nope:request__end", target, error));
  EXPECT_EQ(error.rfind("no USDT probe l7tapt:nope (the file has l7tapt:request__end, "
                        "l7tapt:request__start, l7tapt:work_begin, l7tapt:work_finish)",
                        0),
            0u)
      << error;
  EXPECT_FALSE(resolveUsdt(kGo, "l7tapt:request", target, error));
  EXPECT_EQ(error, "no USDT probes (no .note.stapsdt notes)");
  EXPECT_FALSE(resolveUsdt(kNative, "l7tapt:\n", target, error));
  EXPECT_EQ(error,
            "no USDT probe pair l7tapt:\\x0a (looked for \\x0a__start/\\x0a__end, "
            "\\x0a_start/\\x0a_end, \\x0a__begin/\\x0a__done)");
  for (const char* spec : {"l7tapt", "a:b:c:d", ":x:y", "p::e", "p:s:", ""}) {
    EXPECT_FALSE(resolveUsdt(kNative, spec, target, error)) << spec;
    EXPECT_NE(error.find("USDT probe '"), std::string::npos) << spec << ": " << error;
  }
}

TEST(FunctionTargets, ExecutableOfPid) {
  std::string path, error;
  ASSERT_TRUE(executableOfPid(getpid(), path, error)) << error;
  EXPECT_EQ(path, "/proc/" + std::to_string(getpid()) + "/exe");
  // It opens as this test's own executable: its functions resolve.
  std::vector<FunctionTarget> targets;
  ASSERT_TRUE(resolveFunctions(path, {"main"}, targets, error)) << error;

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_FALSE(executableOfPid(child, path, error));
  EXPECT_EQ(error, "no process " + std::to_string(child));
  EXPECT_FALSE(executableOfPid(-1, path, error));
  EXPECT_EQ(error, "no process -1");
}

}  // namespace
}  // namespace l7tap
