#include "binaries/elf_file.h"

#include <capstone/capstone.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace l7tap {
namespace {

// debug/buildinfo: 14 bytes of magic, the pointer size, then flags.
constexpr std::string_view kBuildInfoMagic = "\xff Go buildinf:";
constexpr size_t kBuildInfoHeaderSize = 32;
constexpr uint8_t kBuildInfoFlagBigEndian = 0x1;
constexpr uint8_t kBuildInfoFlagInline = 0x2;  // Go 1.18+: strings follow the header
// Go's stack-growth check is 2 instructions (CMP; JBE) or 3 (LEA; CMP; JBE)
// for frames larger than the guard's slack.
constexpr size_t kMaxStackCheckInstructions = 3;

struct DwarfDeleter {
  void operator()(Dwarf* dwarf) const { dwarf_end(dwarf); }
};

uint64_t readWord(const uint8_t* p, size_t size, bool big_endian) {
  uint64_t v = 0;
  for (size_t i = 0; i < size; ++i) {
    const size_t byte = big_endian ? i : size - 1 - i;
    v = (v << 8) | p[byte];
  }
  return v;
}

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

}  // namespace

ElfFile::ElfFile() = default;

ElfFile::~ElfFile() {
  elf_.reset();
  if (fd_ >= 0) close(fd_);
}

bool ElfFile::open(const std::string& path, Read how, std::string& error) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    error = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  elf_version(EV_CURRENT);
  elf_.reset(elf_begin(fd_, how == Read::kWhole ? ELF_C_READ : ELF_C_READ_MMAP, nullptr));
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
    if (gelf_getphdr(elf_.get(), static_cast<int>(i), &phdr) != nullptr && phdr.p_type == PT_LOAD) {
      segments_.push_back(phdr);
    }
  }
  return true;
}

std::optional<uint64_t> ElfFile::fileOffset(uint64_t vaddr, uint64_t length) const {
  for (const GElf_Phdr& s : segments_) {
    if (vaddr >= s.p_vaddr && vaddr - s.p_vaddr < s.p_filesz &&
        length <= s.p_filesz - (vaddr - s.p_vaddr)) {
      const uint64_t offset = vaddr - s.p_vaddr + s.p_offset;
      if (offset > size_ || length > size_ - offset) return std::nullopt;
      return offset;
    }
  }
  return std::nullopt;
}

Elf_Scn* ElfFile::section(std::string_view name, GElf_Shdr& shdr) const {
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

bool ElfFile::forEachSymbol(unsigned tables,
                            const std::function<void(const Symbol&)>& visit) const {
  bool any = false;
  for (Elf_Scn* scn = elf_nextscn(elf_.get(), nullptr); scn != nullptr;
       scn = elf_nextscn(elf_.get(), scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    if (!((shdr.sh_type == SHT_SYMTAB && (tables & kSymtab)) ||
          (shdr.sh_type == SHT_DYNSYM && (tables & kDynsym)))) {
      continue;
    }
    any = true;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || shdr.sh_entsize == 0) continue;
    const size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) break;
      const char* name = elf_strptr(elf_.get(), shdr.sh_link, sym.st_name);
      if (name == nullptr || *name == '\0') continue;
      visit(Symbol{.name = name,
                   .value = sym.st_value,
                   .size = sym.st_size,
                   .type = static_cast<uint8_t>(GELF_ST_TYPE(sym.st_info)),
                   .binding = static_cast<uint8_t>(GELF_ST_BIND(sym.st_info)),
                   .section = sym.st_shndx});
    }
  }
  return any;
}

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

std::optional<uint64_t> findGoBuildInfo(const ElfFile& file) {
  GElf_Shdr shdr;
  if (file.section(".go.buildinfo", shdr) != nullptr && shdr.sh_type != SHT_NOBITS &&
      shdr.sh_offset <= file.size() && kBuildInfoHeaderSize <= file.size() - shdr.sh_offset) {
    return shdr.sh_offset;
  }
  for (const GElf_Phdr& s : file.segments()) {
    if ((s.p_flags & PF_W) == 0 || s.p_offset > file.size()) continue;
    const uint64_t end = s.p_offset + std::min<uint64_t>({s.p_filesz, file.size() - s.p_offset,
                                                          ElfLimits::kMaxBuildInfoScan});
    for (uint64_t o = (s.p_offset + 15) & ~uint64_t{15}; o + kBuildInfoHeaderSize <= end; o += 16) {
      if (std::memcmp(file.at(o), kBuildInfoMagic.data(), kBuildInfoMagic.size()) == 0) return o;
    }
  }
  return std::nullopt;
}

// Inline (Go 1.18+: a varint length and the bytes) or through a pointer to
// a Go string header.
bool readGoVersion(const ElfFile& file, uint64_t offset, std::string& version, std::string& error) {
  const uint8_t* header = file.at(offset);
  if (std::memcmp(header, kBuildInfoMagic.data(), kBuildInfoMagic.size()) != 0) {
    error = "Go build info without its magic";
    return false;
  }
  const size_t ptr_size = header[14];
  const uint8_t flags = header[15];
  if (flags & kBuildInfoFlagInline) {
    uint64_t length = 0;
    uint64_t at = offset + kBuildInfoHeaderSize;
    for (int shift = 0; shift < 64 && at < file.size(); shift += 7, ++at) {
      length |= uint64_t{file.at(at)[0] & 0x7fu} << shift;
      if ((file.at(at)[0] & 0x80) == 0) break;
    }
    ++at;
    if (length == 0 || length > ElfLimits::kMaxGoVersionLength || at > file.size() ||
        length > file.size() - at) {
      error = "Go build info with an unreadable version";
      return false;
    }
    version.assign(reinterpret_cast<const char*>(file.at(at)), length);
    return true;
  }
  if (ptr_size != 4 && ptr_size != 8) {
    error = "Go build info with an unknown pointer size";
    return false;
  }
  const bool big_endian = flags & kBuildInfoFlagBigEndian;
  const uint64_t string_header = readWord(header + 16, ptr_size, big_endian);
  const auto header_offset = file.fileOffset(string_header, 2 * ptr_size);
  if (!header_offset) {
    error = "Go build info with an unreadable version";
    return false;
  }
  const uint64_t data = readWord(file.at(*header_offset), ptr_size, big_endian);
  const uint64_t length = readWord(file.at(*header_offset) + ptr_size, ptr_size, big_endian);
  const auto data_offset = file.fileOffset(data, length);
  if (length == 0 || length > ElfLimits::kMaxGoVersionLength || !data_offset) {
    error = "Go build info with an unreadable version";
    return false;
  }
  version.assign(reinterpret_cast<const char*>(file.at(*data_offset)), length);
  return true;
}

uint64_t goGoidOffsetForVersion(int minor) {
  if (minor < kGoMinMinorVersion || minor > 23) return 0;
  // runtime.g gained syscallbp before goid in Go 1.23.
  return minor >= 23 ? 160 : 152;
}

ReturnScanner::ReturnScanner() = default;

ReturnScanner::~ReturnScanner() {
  if (handle_ != 0) {
    csh handle = handle_;
    cs_close(&handle);
  }
}

bool ReturnScanner::open(std::string& error) {
  csh handle = 0;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) {
    error = "capstone: cannot open an x86-64 disassembler";
    return false;
  }
  handle_ = handle;
  // The operands: branch targets, for the stack-growth check.
  if (cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
    error = "capstone: no instruction details";
    return false;
  }
  return true;
}

bool ReturnScanner::scan(const ElfFile& file, std::string_view name, uint64_t address,
                         uint64_t size, uint64_t max_bytes, size_t max_returns, FunctionCode& out,
                         std::string& error) {
  if (address == 0 || size == 0 || size > max_bytes) {
    error = std::string(name) + ": symbol without a usable size";
    return false;
  }
  const auto offset = file.fileOffset(address, size);
  if (!offset) {
    error = std::string(name) + ": not in a loaded segment of the file";
    return false;
  }
  out.entry_offset = *offset;
  out.return_offsets.clear();
  const uint8_t* code = file.at(*offset);
  size_t remaining = size;
  uint64_t at = address;
  out.body_offset = *offset;
  cs_insn* insn = cs_malloc(handle_);
  if (insn == nullptr) {
    error = "capstone: out of memory";
    return false;
  }
  // The stack-growth check: a conditional jump among the first
  // instructions, and a JMP back to the entry (the morestack tail, which
  // has no RET). Its end is the body only if nothing else jumps there.
  uint64_t after_check = 0;
  bool jumps_to_entry = false;
  std::vector<uint64_t> targets;
  for (size_t index = 0; remaining > 0 && cs_disasm_iter(handle_, &code, &remaining, &at, insn);
       ++index) {
    const cs_x86& x86 = insn->detail->x86;
    const bool jump = cs_insn_group(handle_, insn, CS_GRP_JUMP);
    if ((jump || cs_insn_group(handle_, insn, CS_GRP_CALL)) && x86.op_count == 1 &&
        x86.operands[0].type == X86_OP_IMM) {
      const uint64_t target = static_cast<uint64_t>(x86.operands[0].imm);
      targets.push_back(target);
      if (insn->id == X86_INS_JMP && target == address) jumps_to_entry = true;
      if (jump && insn->id != X86_INS_JMP && index < kMaxStackCheckInstructions &&
          after_check == 0 && target > insn->address && target - address < size) {
        after_check = insn->address + insn->size;
      }
    }
    if (insn->id != X86_INS_RET) continue;
    if (out.return_offsets.size() == max_returns) {
      cs_free(insn, 1);
      error = std::string(name) + ": more RET instructions than " + std::to_string(max_returns);
      return false;
    }
    out.return_offsets.push_back(insn->address - address + *offset);
  }
  cs_free(insn, 1);
  if (remaining != 0) {
    error = std::string(name) + ": cannot disassemble at +" + std::to_string(size - remaining);
    return false;
  }
  if (out.return_offsets.empty()) {
    error = std::string(name) + ": no RET instruction";
    return false;
  }
  if (after_check != 0 && jumps_to_entry &&
      std::find(targets.begin(), targets.end(), after_check) == targets.end()) {
    out.body_offset = after_check - address + *offset;
  }
  return true;
}

bool dwarfMemberOffsets(const ElfFile& file, std::span<DwarfMember> members) {
  std::unique_ptr<Dwarf, DwarfDeleter> dwarf(dwarf_begin_elf(file.elf(), DWARF_C_READ, nullptr));
  if (!dwarf) return false;
  size_t missing = 0;
  for (const DwarfMember& m : members) missing += m.found ? 0 : 1;
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
      for (DwarfMember& m : members) {
        if (!m.found && m.type == name && memberOffset(&die, m.member, m.offset)) {
          m.found = true;
          --missing;
        }
      }
    } while (missing > 0 && dwarf_siblingof(&die, &die) == 0);
  }
  return missing == 0;
}

}  // namespace l7tap
