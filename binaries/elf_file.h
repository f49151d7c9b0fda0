// ELF files read for probes: their loadable segments (a link-time address
// to the file offset a uprobe is attached at), sections and symbols; the Go
// build info and version; the RET instructions of a function (Capstone);
// struct member offsets from DWARF (libdw). Shared by the crypto/tls
// uprobes (uprobes/go_binary) and function tracing (apptrace/).
#pragma once

#include <gelf.h>
#include <libelf.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace l7tap {

struct ElfLimits {
  /// Bytes searched for the Go build info when the section headers are gone.
  static constexpr uint64_t kMaxBuildInfoScan = 64 * 1024 * 1024;
  /// Length of a Go version string ("go1.19.8", "devel go1.22-abc...").
  static constexpr size_t kMaxGoVersionLength = 64;
};

/// One ELF file, opened read-only. Owns the descriptor and libelf's handle.
class ElfFile {
 public:
  enum class Read : uint8_t {
    /// Mapped: cheap, for the structure (headers, symbols, notes).
    kMapped,
    /// Read into memory: for code that is disassembled. A read-only mapping
    /// of a file with uprobes on it gets their INT3 bytes (the kernel
    /// installs them in every VM_MAYEXEC mapping): with another tracer's
    /// probes on a function, its disassembly ran off the instruction
    /// boundaries.
    kWhole,
  };

  ElfFile();
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  /// False with a one-line `error` ("cannot open: ...", "not an ELF file",
  /// "unreadable ELF header").
  bool open(const std::string& path, Read how, std::string& error);

  Elf* elf() const { return elf_.get(); }
  const GElf_Ehdr& header() const { return ehdr_; }
  /// The PT_LOAD program headers.
  const std::vector<GElf_Phdr>& segments() const { return segments_; }
  /// File offset of `vaddr` when `length` bytes from it are in the file.
  std::optional<uint64_t> fileOffset(uint64_t vaddr, uint64_t length = 1) const;
  const uint8_t* at(uint64_t offset) const { return bytes_ + offset; }
  uint64_t size() const { return size_; }
  /// The section called `name`, or null.
  Elf_Scn* section(std::string_view name, GElf_Shdr& shdr) const;

  struct Symbol {
    std::string_view name;  ///< valid while the file is open
    uint64_t value = 0;
    uint64_t size = 0;
    uint8_t type = STT_NOTYPE;
    uint8_t binding = STB_LOCAL;
    uint16_t section = SHN_UNDEF;
  };
  enum SymbolTables : unsigned { kSymtab = 1, kDynsym = 2 };
  /// Calls `visit` for every symbol of the tables asked for. False when the
  /// file has none of them.
  bool forEachSymbol(unsigned tables, const std::function<void(const Symbol&)>& visit) const;

 private:
  struct ElfEnd {
    void operator()(Elf* elf) const { elf_end(elf); }
  };
  int fd_ = -1;
  std::unique_ptr<Elf, ElfEnd> elf_;
  GElf_Ehdr ehdr_{};
  const uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
  std::vector<GElf_Phdr> segments_;
};

/// Go versions with the register ABI (function arguments and results in
/// registers, R14 = the current g) on amd64: 1.17 and later.
inline constexpr int kGoMinMinorVersion = 17;

/// Parses "go1.19.8", "go1.21rc2", "devel go1.22-abc..." into the minor
/// number (19, 21, 22); -1 when it is not a Go 1.x version.
int goMinorVersion(const std::string& version);

/// File offset of the Go build info: its section, or, when the section
/// headers are gone, a 16-byte aligned magic in a writable segment (as Go's
/// debug/buildinfo finds it). None: not a Go executable.
std::optional<uint64_t> findGoBuildInfo(const ElfFile& file);

/// runtime.buildVersion ("go1.19.8") from the build info at `offset`.
/// False with a one-line `error`.
bool readGoVersion(const ElfFile& file, uint64_t offset, std::string& version, std::string& error);

/// runtime.g.goid on amd64 for Go 1.`minor`, from a table (1.17 .. 1.23);
/// 0 for other versions.
uint64_t goGoidOffsetForVersion(int minor);

/// Where a function's probes go, as file offsets.
struct FunctionCode {
  uint64_t entry_offset = 0;             ///< the first instruction
  std::vector<uint64_t> return_offsets;  ///< every RET instruction
  /// The first instruction past Go's stack-growth check (CMP against g's
  /// stack guard; JBE to a tail that calls runtime.morestack and jumps
  /// back to the entry), or entry_offset when the function has none. A
  /// call that grows its stack runs the entry twice and this once: an
  /// entry probe here counts each call once. Never a branch target.
  uint64_t body_offset = 0;
};

/// Finds the RET instructions of x86-64 functions with Capstone.
class ReturnScanner {
 public:
  ReturnScanner();
  ~ReturnScanner();
  ReturnScanner(const ReturnScanner&) = delete;
  ReturnScanner& operator=(const ReturnScanner&) = delete;

  /// False with a one-line `error` when Capstone cannot be opened.
  bool open(std::string& error);

  /// Entry and RETs of the function `name` at link-time `address`, `size`
  /// bytes long, in `file` (read kWhole). Linear disassembly is exact for
  /// Go: the compiler puts no data inside functions. False with a one-line
  /// `error` naming the function: no usable size (or more than
  /// `max_bytes`), not in the file, undecodable bytes, more RETs than
  /// `max_returns`, no RET.
  bool scan(const ElfFile& file, std::string_view name, uint64_t address, uint64_t size,
            uint64_t max_bytes, size_t max_returns, FunctionCode& out, std::string& error);

 private:
  size_t handle_ = 0;  // Capstone's csh
};

/// A struct member whose offset DWARF gives: `type` by its (Go) name.
struct DwarfMember {
  std::string_view type;
  std::string_view member;
  uint64_t offset = 0;
  bool found = false;
};

/// Fills the members' offsets from the top-level struct types of every
/// DWARF unit of `file`. True when every member was found.
bool dwarfMemberOffsets(const ElfFile& file, std::span<DwarfMember> members);

}  // namespace l7tap
