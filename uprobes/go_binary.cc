#include "uprobes/go_binary.h"

#include <capstone/capstone.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string_view>

namespace l7tap {
namespace {

constexpr std::string_view kWriteSymbol = "crypto/tls.(*Conn).Write";
constexpr std::string_view kReadSymbol = "crypto/tls.(*Conn).Read";
constexpr std::string_view kCloseSymbol = "crypto/tls.(*Conn).Close";
// Go 1.20 renamed the itab symbols from "go.itab." to "go:itab.".
constexpr std::string_view kTcpConnItabSymbols[] = {"go:itab.*net.TCPConn,net.Conn",
                                                    "go.itab.*net.TCPConn,net.Conn"};
// debug/buildinfo: 14 bytes of magic, the pointer size, then flags.
constexpr std::string_view kBuildInfoMagic = "\xff Go buildinf:";
constexpr size_t kBuildInfoHeaderSize = 32;
constexpr uint8_t kBuildInfoFlagBigEndian = 0x1;
constexpr uint8_t kBuildInfoFlagInline = 0x2;  // Go 1.18+: strings follow the header
constexpr size_t kMaxVersionLength = 64;

struct FdOwner {
  int fd = -1;
  ~FdOwner() {
    if (fd >= 0) close(fd);
  }
};
struct ElfDeleter {
  void operator()(Elf* elf) const { elf_end(elf); }
};
struct DwarfDeleter {
  void operator()(Dwarf* dwarf) const { dwarf_end(dwarf); }
};
struct CapstoneOwner {
  csh handle = 0;
  ~CapstoneOwner() {
    if (handle != 0) cs_close(&handle);
  }
};

// The file as libelf mapped it, and its loadable segments to turn a
// link-time address into a file offset (what a uprobe is attached at).
class ElfImage {
 public:
  /// `whole`: the file read into memory, for the code that is disassembled;
  /// else mapped (the test whether a file is Go, run on every executable,
  /// reads a few pages).
  bool open(const std::string& path, std::string& error, bool whole = false) {
    fd_.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_.fd < 0) {
      error = std::string("cannot open: ") + std::strerror(errno);
      return false;
    }
    elf_version(EV_CURRENT);
    // The code is read, not mapped: a read-only mapping of a file with
    // uprobes on it gets their INT3 bytes (the kernel installs them in every
    // VM_MAYEXEC mapping), so with l7tap's own or another tracer's probes on
    // (*Conn).Write the disassembly ran off the instruction boundaries ("no
    // RET instruction").
    elf_.reset(elf_begin(fd_.fd, whole ? ELF_C_READ : ELF_C_READ_MMAP, nullptr));
    if (!elf_ || elf_kind(elf_.get()) != ELF_K_ELF) {
      error = "not an ELF file";
      return false;
    }
    const char* raw = elf_rawfile(elf_.get(), &size_);
    if (raw == nullptr || gelf_getehdr(elf_.get(), &ehdr_) == nullptr) {
      error = "unreadable ELF header";
      return false;
    }
    bytes_ = reinterpret_cast<const uint8_t*>(raw);
    size_t count = 0;
    if (elf_getphdrnum(elf_.get(), &count) != 0) count = 0;
    for (size_t i = 0; i < count; ++i) {
      GElf_Phdr phdr;
      if (gelf_getphdr(elf_.get(), static_cast<int>(i), &phdr) != nullptr &&
          phdr.p_type == PT_LOAD) {
        segments_.push_back(phdr);
      }
    }
    return true;
  }

  Elf* elf() const { return elf_.get(); }
  const GElf_Ehdr& header() const { return ehdr_; }
  const std::vector<GElf_Phdr>& segments() const { return segments_; }

  /// File offset of `vaddr` when `length` bytes from it are in the file.
  std::optional<uint64_t> fileOffset(uint64_t vaddr, uint64_t length = 1) const {
    for (const GElf_Phdr& s : segments_) {
      if (vaddr >= s.p_vaddr && vaddr - s.p_vaddr < s.p_filesz &&
          length <= s.p_filesz - (vaddr - s.p_vaddr)) {
        uint64_t offset = vaddr - s.p_vaddr + s.p_offset;
        if (offset > size_ || length > size_ - offset) return std::nullopt;
        return offset;
      }
    }
    return std::nullopt;
  }
  const uint8_t* at(uint64_t offset) const { return bytes_ + offset; }
  uint64_t size() const { return size_; }

  Elf_Scn* section(std::string_view name, GElf_Shdr& shdr) const {
    size_t names = 0;
    if (elf_getshdrstrndx(elf_.get(), &names) != 0) return nullptr;
    for (Elf_Scn* scn = elf_nextscn(elf_.get(), nullptr); scn != nullptr;
         scn = elf_nextscn(elf_.get(), scn)) {
      if (gelf_getshdr(scn, &shdr) == nullptr) continue;
      const char* n = elf_strptr(elf_.get(), names, shdr.sh_name);
      if (n != nullptr && name == n) return scn;
    }
    return nullptr;
  }

 private:
  FdOwner fd_;
  std::unique_ptr<Elf, ElfDeleter> elf_;
  GElf_Ehdr ehdr_{};
  const uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
  std::vector<GElf_Phdr> segments_;
};

uint64_t readWord(const uint8_t* p, size_t size, bool big_endian) {
  uint64_t v = 0;
  for (size_t i = 0; i < size; ++i) {
    const size_t byte = big_endian ? i : size - 1 - i;
    v = (v << 8) | p[byte];
  }
  return v;
}

// Where the build info starts: its section, or, when the section headers are
// gone, a 16-byte aligned magic in a writable segment (as debug/buildinfo).
std::optional<uint64_t> findBuildInfo(const ElfImage& image) {
  GElf_Shdr shdr;
  if (image.section(".go.buildinfo", shdr) != nullptr && shdr.sh_type != SHT_NOBITS &&
      shdr.sh_offset <= image.size() && kBuildInfoHeaderSize <= image.size() - shdr.sh_offset) {
    return shdr.sh_offset;
  }
  for (const GElf_Phdr& s : image.segments()) {
    if ((s.p_flags & PF_W) == 0 || s.p_offset > image.size()) continue;
    const uint64_t end = s.p_offset + std::min<uint64_t>({s.p_filesz, image.size() - s.p_offset,
                                                          GoBinaryLimits::kMaxBuildInfoScan});
    for (uint64_t o = (s.p_offset + 15) & ~uint64_t{15}; o + kBuildInfoHeaderSize <= end; o += 16) {
      if (std::memcmp(image.at(o), kBuildInfoMagic.data(), kBuildInfoMagic.size()) == 0) return o;
    }
  }
  return std::nullopt;
}

// runtime.buildVersion as the build info holds it: inline (Go 1.18+, a
// varint length and the bytes) or through a pointer to a Go string header.
bool readGoVersion(const ElfImage& image, uint64_t offset, std::string& version,
                   std::string& error) {
  const uint8_t* header = image.at(offset);
  if (std::memcmp(header, kBuildInfoMagic.data(), kBuildInfoMagic.size()) != 0) {
    error = "Go build info without its magic";
    return false;
  }
  const size_t ptr_size = header[14];
  const uint8_t flags = header[15];
  if (flags & kBuildInfoFlagInline) {
    uint64_t length = 0;
    uint64_t at = offset + kBuildInfoHeaderSize;
    for (int shift = 0; shift < 64 && at < image.size(); shift += 7, ++at) {
      length |= uint64_t{image.at(at)[0] & 0x7fu} << shift;
      if ((image.at(at)[0] & 0x80) == 0) break;
    }
    ++at;
    if (length == 0 || length > kMaxVersionLength || at > image.size() ||
        length > image.size() - at) {
      error = "Go build info with an unreadable version";
      return false;
    }
    version.assign(reinterpret_cast<const char*>(image.at(at)), length);
    return true;
  }
  if (ptr_size != 4 && ptr_size != 8) {
    error = "Go build info with an unknown pointer size";
    return false;
  }
  const bool big_endian = flags & kBuildInfoFlagBigEndian;
  const uint64_t string_header = readWord(header + 16, ptr_size, big_endian);
  const auto header_offset = image.fileOffset(string_header, 2 * ptr_size);
  if (!header_offset) {
    error = "Go build info with an unreadable version";
    return false;
  }
  const uint64_t data = readWord(image.at(*header_offset), ptr_size, big_endian);
  const uint64_t length = readWord(image.at(*header_offset) + ptr_size, ptr_size, big_endian);
  const auto data_offset = image.fileOffset(data, length);
  if (length == 0 || length > kMaxVersionLength || !data_offset) {
    error = "Go build info with an unreadable version";
    return false;
  }
  version.assign(reinterpret_cast<const char*>(image.at(*data_offset)), length);
  return true;
}

struct Symbol {
  uint64_t value = 0;
  uint64_t size = 0;
};

// The few symbols the probes need, from .symtab (Go keeps no .dynsym for
// its own functions). False when there is no symbol table at all.
bool findSymbols(const ElfImage& image, std::map<std::string, Symbol, std::less<>>& wanted) {
  for (Elf_Scn* scn = elf_nextscn(image.elf(), nullptr); scn != nullptr;
       scn = elf_nextscn(image.elf(), scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_SYMTAB) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || shdr.sh_entsize == 0) return false;
    const size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      const char* name = elf_strptr(image.elf(), shdr.sh_link, sym.st_name);
      if (name == nullptr) continue;
      auto it = wanted.find(std::string_view(name));
      if (it != wanted.end()) it->second = Symbol{sym.st_value, sym.st_size};
    }
    return true;
  }
  return false;
}

// Entry and RET file offsets of one function. Linear disassembly is exact
// for Go: the compiler puts no data inside functions, and the morestack
// tail (CALL runtime.morestack; JMP entry) has no RET to probe.
bool probeFunction(const ElfImage& image, csh capstone, std::string_view name, const Symbol& sym,
                   GoTlsTarget::Function& out, std::string& error) {
  if (sym.value == 0 || sym.size == 0 || sym.size > GoBinaryLimits::kMaxFunctionBytes) {
    error = std::string(name) + ": symbol without a usable size";
    return false;
  }
  const auto offset = image.fileOffset(sym.value, sym.size);
  if (!offset) {
    error = std::string(name) + ": not in a loaded segment of the file";
    return false;
  }
  out.entry_offset = *offset;
  out.return_offsets.clear();
  const uint8_t* code = image.at(*offset);
  size_t remaining = sym.size;
  uint64_t address = sym.value;
  cs_insn* insn = cs_malloc(capstone);
  if (insn == nullptr) {
    error = "capstone: out of memory";
    return false;
  }
  while (remaining > 0 && cs_disasm_iter(capstone, &code, &remaining, &address, insn)) {
    if (insn->id == X86_INS_RET) {
      if (out.return_offsets.size() == GoBinaryLimits::kMaxReturns) {
        cs_free(insn, 1);
        error = std::string(name) + ": more RET instructions than " +
                std::to_string(GoBinaryLimits::kMaxReturns);
        return false;
      }
      out.return_offsets.push_back(insn->address - sym.value + *offset);
    }
  }
  cs_free(insn, 1);
  if (remaining != 0) {
    error = std::string(name) + ": cannot disassemble at +" + std::to_string(sym.size - remaining);
    return false;
  }
  if (out.return_offsets.empty()) {
    error = std::string(name) + ": no RET instruction";
    return false;
  }
  return true;
}

// The member offsets from DWARF: the struct types by their Go names, among
// the top-level entries of every unit.
struct DwarfField {
  std::string_view type;
  std::string_view member;
  uint64_t* out;
  bool found = false;
};

bool memberOffset(Dwarf_Die* type, std::string_view member, uint64_t& offset) {
  Dwarf_Die child;
  if (dwarf_child(type, &child) != 0) return false;
  do {
    if (dwarf_tag(&child) != DW_TAG_member) continue;
    const char* name = dwarf_diename(&child);
    if (name == nullptr || member != name) continue;
    Dwarf_Attribute attr;
    Dwarf_Word value = 0;
    if (dwarf_attr(&child, DW_AT_data_member_location, &attr) == nullptr ||
        dwarf_formudata(&attr, &value) != 0) {
      return false;
    }
    offset = value;
    return true;
  } while (dwarf_siblingof(&child, &child) == 0);
  return false;
}

bool offsetsFromDwarf(const ElfImage& image, GoTlsOffsets& offsets) {
  std::unique_ptr<Dwarf, DwarfDeleter> dwarf(dwarf_begin_elf(image.elf(), DWARF_C_READ, nullptr));
  if (!dwarf) return false;
  uint64_t tcpconn_conn = 0, conn_fd = 0;
  DwarfField fields[] = {
      {"crypto/tls.Conn", "conn", &offsets.conn_conn},
      {"crypto/tls.Conn", "isClient", &offsets.conn_is_client},
      {"net.TCPConn", "conn", &tcpconn_conn},
      {"net.conn", "fd", &conn_fd},
      {"net.netFD", "pfd", &offsets.netfd_pfd},
      {"internal/poll.FD", "Sysfd", &offsets.pollfd_sysfd},
      {"runtime.g", "goid", &offsets.g_goid},
  };
  size_t missing = std::size(fields);
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (missing > 0 &&
         dwarf_nextcu(dwarf.get(), offset, &next, &header_size, nullptr, nullptr, nullptr) == 0) {
    Dwarf_Die cu, die;
    const bool ok = dwarf_offdie(dwarf.get(), offset + header_size, &cu) != nullptr &&
                    dwarf_child(&cu, &die) == 0;
    offset = next;
    if (!ok) continue;
    do {
      if (dwarf_tag(&die) != DW_TAG_structure_type) continue;
      const char* name = dwarf_diename(&die);
      if (name == nullptr) continue;
      for (DwarfField& f : fields) {
        if (!f.found && f.type == name && memberOffset(&die, f.member, *f.out)) {
          f.found = true;
          --missing;
        }
      }
    } while (missing > 0 && dwarf_siblingof(&die, &die) == 0);
  }
  offsets.net_conn_fd = tcpconn_conn + conn_fd;
  return missing == 0;
}

}  // namespace

int goMinorVersion(const std::string& version) {
  const size_t at = version.find("go1.");
  if (at == std::string::npos) return -1;
  int minor = -1;
  for (size_t i = at + 4; i < version.size() && version[i] >= '0' && version[i] <= '9'; ++i) {
    minor = (minor < 0 ? 0 : minor * 10) + (version[i] - '0');
    if (minor > 1000) return -1;
  }
  return minor;
}

bool goTlsOffsetsForVersion(int minor, GoTlsOffsets& offsets) {
  if (minor < kGoMinMinorVersion || minor > 23) return false;
  // crypto/tls.Conn starts with `conn net.Conn; isClient bool` in all of
  // them, net.TCPConn{conn{fd *netFD}}, netFD{pfd poll.FD, ...} and
  // poll.FD{fdmu fdMutex (16 bytes); Sysfd int}. runtime.g gained
  // syscallbp before goid in Go 1.23.
  offsets = GoTlsOffsets{.conn_conn = 0,
                         .conn_is_client = 16,
                         .net_conn_fd = 0,
                         .netfd_pfd = 0,
                         .pollfd_sysfd = 16,
                         .g_goid = minor >= 23 ? 160u : 152u};
  return true;
}

bool analyseGoBinary(const std::string& path, GoTlsTarget& target, std::string& error) {
  target = GoTlsTarget{};
  ElfImage image;
  if (!image.open(path, error, /*whole=*/true)) return false;

  const auto build_info = findBuildInfo(image);
  if (!build_info) {
    error = "not a Go executable (no Go build info)";
    return false;
  }
  if (!readGoVersion(image, *build_info, target.go_version, error)) return false;
  if (image.header().e_machine != EM_X86_64) {
    error = target.go_version + " executable for another architecture than amd64";
    return false;
  }
  const int minor = goMinorVersion(target.go_version);
  if (minor < kGoMinMinorVersion) {
    error = target.go_version +
            " is older than go1.17 (arguments on the stack, not in registers): not supported";
    return false;
  }
  target.position_independent = image.header().e_type == ET_DYN;

  std::map<std::string, Symbol, std::less<>> symbols;
  for (std::string_view name : {kWriteSymbol, kReadSymbol, kCloseSymbol}) {
    symbols.emplace(name, Symbol{});
  }
  for (std::string_view name : kTcpConnItabSymbols) symbols.emplace(name, Symbol{});
  if (!findSymbols(image, symbols)) {
    error = target.go_version +
            " executable is stripped (no symbol table): l7tap finds crypto/tls by symbol; "
            "build it without -ldflags=-s and do not strip it";
    return false;
  }
  const Symbol& write = symbols.find(kWriteSymbol)->second;
  const Symbol& read = symbols.find(kReadSymbol)->second;
  const Symbol& close = symbols.find(kCloseSymbol)->second;
  if (write.value == 0 && read.value == 0) {
    target.without_crypto_tls = true;
    error = target.go_version + " executable without crypto/tls (no crypto/tls.(*Conn).Write)";
    return false;
  }
  CapstoneOwner capstone;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &capstone.handle) != CS_ERR_OK) {
    error = "capstone: cannot open an x86-64 disassembler";
    return false;
  }
  if (!probeFunction(image, capstone.handle, kWriteSymbol, write, target.write, error) ||
      !probeFunction(image, capstone.handle, kReadSymbol, read, target.read, error) ||
      !probeFunction(image, capstone.handle, kCloseSymbol, close, target.close, error)) {
    return false;
  }
  target.close.return_offsets.clear();  // Close is probed at its entry only

  for (std::string_view name : kTcpConnItabSymbols) {
    const Symbol& itab = symbols.find(name)->second;
    if (itab.value != 0) target.tcpconn_itab = itab.value;
  }
  // A position-independent binary is loaded at an address the analysis does
  // not know: the itab check would refuse every connection.
  if (target.position_independent) target.tcpconn_itab = 0;

  target.offsets_from_dwarf = offsetsFromDwarf(image, target.offsets);
  if (!target.offsets_from_dwarf && !goTlsOffsetsForVersion(minor, target.offsets)) {
    error = target.go_version +
            " executable without DWARF (built with -ldflags=-w?) and no offset table for "
            "this version (go1.17 .. go1.23)";
    return false;
  }
  return true;
}

bool isGoExecutable(const std::string& path) {
  ElfImage image;
  std::string error;
  return image.open(path, error) && findBuildInfo(image).has_value();
}

}  // namespace l7tap
