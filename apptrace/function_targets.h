// Which functions of a binary to time, and where to put their probes: ELF
// symbols matched by name or glob (libelf), the RET instructions of Go
// functions (Capstone), USDT probes from the binary's .note.stapsdt. User
// space only; the result is what TraceProgram::attach hands to the kernel.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace l7tap {

/// One function (or USDT start/end pair) to time, in one binary.
struct FunctionTarget {
  enum class Kind : uint8_t {
    kNative,  ///< C, C++, Rust...: entry uprobe + uretprobe, keyed by thread
    kGo,      ///< Go 1.17+ amd64: entry + a uprobe at each RET, keyed by goroutine
    kUsdt,    ///< a USDT start probe and end probe, keyed by thread
  };
  Kind kind = Kind::kNative;
  /// What records call it: the symbol ("main.handleGetUser"), or
  /// "PROVIDER:START" for a USDT pair given as PROVIDER:START:END,
  /// "PROVIDER:NAME" for one given as PROVIDER:NAME.
  std::string name;
  /// File offset of the entry (kNative); kGo: of the first instruction
  /// past the stack-growth check, which a call that grows its stack runs
  /// twice (binaries/elf_file.h FunctionCode::body_offset).
  uint64_t entry_offset = 0;
  std::vector<uint64_t> return_offsets;  ///< kGo: file offsets of every RET
  std::string usdt_provider;             ///< kUsdt
  std::string usdt_start;                ///< kUsdt: the probe that starts a call
  std::string usdt_end;                  ///< kUsdt: the probe that ends it
  uint64_t goid_offset = 0;              ///< kGo: runtime.g.goid; 0 when unknown
};

/// Bounds of a resolution: a pattern that matches more is refused, not cut.
struct FunctionTargetLimits {
  /// Functions one pattern may match (each costs one or more uprobes).
  static constexpr size_t kMaxMatches = 64;
  /// RETs per Go function (each is a uprobe).
  static constexpr size_t kMaxReturns = 64;
  /// Bytes disassembled per Go function.
  static constexpr uint64_t kMaxFunctionBytes = 256 * 1024;
  /// .note.stapsdt notes read from one file: a program defines a few
  /// dozen; more is a damaged or hostile file.
  static constexpr size_t kMaxUsdtNotes = 64 * 1024;
};

/// The functions of the ELF file `path` whose symbol matches one of
/// `patterns` (exact names or fnmatch globs: "main.handle*"), in the order
/// of the patterns, each once. Go executables (build info present) get kGo
/// targets with their RETs, others kNative. False with a one-line `error`
/// (without the path): not ELF, no symbol table ("stripped: the symbol
/// table is gone; trace a USDT probe (--usdt) or a build with symbols"),
/// no function matches PATTERN, too many matches, Go older than 1.17 or
/// not amd64, a Go function whose RETs cannot be found; `out` is then
/// empty. Aliases (two names, one address) are one target, named by the
/// first match.
bool resolveFunctions(const std::string& path, const std::vector<std::string>& patterns,
                      std::vector<FunctionTarget>& out, std::string& error);

/// A USDT spec split into its parts: "PROVIDER:START:END" fills all three,
/// "PROVIDER:NAME" leaves `end` empty and puts NAME in `start`. False with
/// a one-line `error` when it has another shape or an empty part. What
/// resolveUsdt and the --trace-config check share.
bool parseUsdtSpec(const std::string& spec, std::string& provider, std::string& start,
                   std::string& end, std::string& error);

/// A USDT pair "PROVIDER:START:END" (or "PROVIDER:NAME", which looks for
/// NAME__start/NAME__end, NAME_start/NAME_end, then NAME__begin/NAME__done)
/// checked against the .note.stapsdt notes of `path`. False with a
/// one-line `error`: malformed spec, no USDT notes, no such probe.
bool resolveUsdt(const std::string& path, const std::string& spec, FunctionTarget& out,
                 std::string& error);

/// `text` with control bytes as \xNN: errors echo names from files and
/// flags (symbols, patterns, keys), and must stay on one line.
std::string printableText(std::string_view text);

/// The executable of a running process, as a path this process can open
/// (/proc/PID/exe). False with a one-line `error`: "no process PID" when
/// it is gone, or why it cannot be read.
bool executableOfPid(pid_t pid, std::string& path, std::string& error);

}  // namespace l7tap
