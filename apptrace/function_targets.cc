#include "apptrace/function_targets.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "binaries/elf_file.h"

namespace l7tap {
namespace {

constexpr std::string_view kStrippedError =
    "stripped: the symbol table is gone; trace a USDT probe (--usdt) or a build with symbols";
constexpr uint32_t kStapsdtNoteType = 3;
constexpr std::string_view kStapsdtOwner = "stapsdt";
// How the short form "PROVIDER:NAME" names its two probes, most common first.
constexpr std::pair<std::string_view, std::string_view> kUsdtPairSuffixes[] = {
    {"__start", "__end"}, {"_start", "_end"}, {"__begin", "__done"}};
// Probes named in a "no such probe" error: enough to spot a typo.
constexpr size_t kUsdtProbesListed = 8;

struct FunctionSymbol {
  uint64_t value = 0;
  uint64_t size = 0;
  uint16_t section = SHN_UNDEF;
  bool global = false;
};

bool isGlob(const std::string& pattern) {
  return pattern.find_first_of("*?[") != std::string::npos;
}

// Defined functions of the tables asked for, by name. A name defined twice
// (static functions of two files) keeps its global definition, else its
// lowest address: one probe per name, as records name calls by name.
bool functionSymbols(const ElfFile& file, unsigned tables,
                     std::map<std::string, FunctionSymbol, std::less<>>& out) {
  return file.forEachSymbol(tables, [&](const ElfFile::Symbol& sym) {
    if (sym.type != STT_FUNC || sym.section == SHN_UNDEF || sym.value == 0) return;
    const FunctionSymbol candidate{sym.value, sym.size, sym.section, sym.binding != STB_LOCAL};
    auto [it, inserted] = out.try_emplace(std::string(sym.name), candidate);
    if (!inserted && ((candidate.global && !it->second.global) ||
                      (candidate.global == it->second.global && sym.value < it->second.value))) {
      it->second = candidate;
    }
  });
}

// A segment gives the offset in executables and shared objects; the
// symbol's section, in files without program headers.
std::optional<uint64_t> entryOffset(const ElfFile& file, const FunctionSymbol& sym) {
  if (auto offset = file.fileOffset(sym.value)) return offset;
  Elf_Scn* scn = elf_getscn(file.elf(), sym.section);
  GElf_Shdr shdr;
  if (scn == nullptr || gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type == SHT_NOBITS ||
      sym.value < shdr.sh_addr || sym.value - shdr.sh_addr >= shdr.sh_size) {
    return std::nullopt;
  }
  const uint64_t offset = sym.value - shdr.sh_addr + shdr.sh_offset;
  if (offset >= file.size()) return std::nullopt;
  return offset;
}

// The names `pattern` selects, sorted. An exact name is taken as it is even
// when it holds glob characters: Go methods are "pkg.(*T).M".
bool matchPattern(const std::string& pattern,
                  const std::map<std::string, FunctionSymbol, std::less<>>& symbols,
                  std::vector<const std::pair<const std::string, FunctionSymbol>*>& out,
                  std::string& error) {
  out.clear();
  if (auto it = symbols.find(pattern); it != symbols.end()) {
    out.push_back(&*it);
    return true;
  }
  if (!isGlob(pattern)) return true;
  size_t count = 0;
  for (const auto& entry : symbols) {
    if (fnmatch(pattern.c_str(), entry.first.c_str(), 0) != 0) continue;
    if (++count <= FunctionTargetLimits::kMaxMatches) out.push_back(&entry);
  }
  if (count > FunctionTargetLimits::kMaxMatches) {
    error = "'" + pattern + "' matches " + std::to_string(count) + " functions, more than " +
            std::to_string(FunctionTargetLimits::kMaxMatches) + ": use a narrower pattern";
    return false;
  }
  return true;
}

struct GoInfo {
  std::string version;
  int minor = -1;
};

// Go executables are told by their build info; those the Go probes cannot
// handle are refused here, with the reason.
bool goInfo(const ElfFile& file, std::optional<GoInfo>& out, std::string& error) {
  const auto build_info = findGoBuildInfo(file);
  if (!build_info) return true;
  GoInfo info;
  if (!readGoVersion(file, *build_info, info.version, error)) return false;
  if (file.header().e_machine != EM_X86_64) {
    error = info.version + " executable for another architecture than amd64: not supported";
    return false;
  }
  info.minor = goMinorVersion(info.version);
  if (info.minor < kGoMinMinorVersion) {
    error = info.version +
            " is older than go1.17 (no register ABI, no goroutine in R14): not supported";
    return false;
  }
  out = std::move(info);
  return true;
}

struct UsdtProbe {
  std::string provider;
  std::string name;
  auto operator<=>(const UsdtProbe&) const = default;
};

// The (provider, name) of every stapsdt note. False with `error` when the
// file has no such notes.
bool usdtProbes(const ElfFile& file, std::set<UsdtProbe>& out, std::string& error) {
  const size_t address_size = gelf_getclass(file.elf()) == ELFCLASS32 ? 4 : 8;
  size_t notes = 0;
  bool any_section = false;
  for (Elf_Scn* scn = elf_nextscn(file.elf(), nullptr); scn != nullptr;
       scn = elf_nextscn(file.elf(), scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_NOTE) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr) continue;
    size_t offset = 0, name_offset = 0, desc_offset = 0;
    GElf_Nhdr note;
    while ((offset = gelf_getnote(data, offset, &note, &name_offset, &desc_offset)) > 0) {
      if (note.n_type != kStapsdtNoteType || note.n_namesz != kStapsdtOwner.size() + 1 ||
          std::memcmp(static_cast<const char*>(data->d_buf) + name_offset, kStapsdtOwner.data(),
                      kStapsdtOwner.size() + 1) != 0) {
        continue;
      }
      any_section = true;
      if (++notes > FunctionTargetLimits::kMaxUsdtNotes) {
        error = "more than " + std::to_string(FunctionTargetLimits::kMaxUsdtNotes) +
                " USDT notes: not read";
        return false;
      }
      // pc, base and semaphore addresses, then "provider\0name\0args\0".
      const char* desc = static_cast<const char*>(data->d_buf) + desc_offset;
      const size_t fixed = 3 * address_size;
      if (note.n_descsz <= fixed) continue;
      const char* text = desc + fixed;
      const size_t text_size = note.n_descsz - fixed;
      const char* provider_end = static_cast<const char*>(std::memchr(text, '\0', text_size));
      if (provider_end == nullptr) continue;
      const char* name = provider_end + 1;
      const size_t name_room = text_size - static_cast<size_t>(name - text);
      const char* name_end = static_cast<const char*>(std::memchr(name, '\0', name_room));
      if (name_end == nullptr) continue;
      out.insert(UsdtProbe{std::string(text, provider_end), std::string(name, name_end)});
    }
  }
  if (!any_section || out.empty()) {
    error = "no USDT probes (no .note.stapsdt notes)";
    return false;
  }
  return true;
}

bool resolveAll(const std::string& path, const std::vector<std::string>& patterns,
                std::vector<FunctionTarget>& out, std::string& error) {
  if (patterns.empty()) {
    error = "no function to trace";
    return false;
  }
  // Mapped: symbols and headers only. A Go function's code is read (below):
  // a mapping of a probed file shows the probes' INT3 bytes.
  ElfFile file;
  if (!file.open(path, ElfFile::Read::kMapped, error)) return false;
  if (file.header().e_type != ET_EXEC && file.header().e_type != ET_DYN) {
    error = "not an executable or shared library (ELF type " +
            std::to_string(file.header().e_type) + ")";
    return false;
  }
  std::optional<GoInfo> go;
  if (!goInfo(file, go, error)) return false;

  // .dynsym too: a stripped shared library still names what it exports.
  std::map<std::string, FunctionSymbol, std::less<>> symbols;
  const bool has_symtab = functionSymbols(file, ElfFile::kSymtab, symbols);
  functionSymbols(file, ElfFile::kDynsym, symbols);

  ElfFile whole;
  ReturnScanner scanner;
  uint64_t goid_offset = 0;
  if (go) {
    if (!whole.open(path, ElfFile::Read::kWhole, error) || !scanner.open(error)) return false;
    DwarfMember goid[] = {{"runtime.g", "goid"}};
    goid_offset =
        dwarfMemberOffsets(whole, goid) ? goid[0].offset : goGoidOffsetForVersion(go->minor);
  }

  std::set<uint64_t> entries;  // aliases (one address, two names) are probed once
  std::vector<const std::pair<const std::string, FunctionSymbol>*> matches;
  for (const std::string& pattern : patterns) {
    if (pattern.empty()) {
      error = "an empty function pattern";
      return false;
    }
    if (!matchPattern(pattern, symbols, matches, error)) return false;
    if (matches.empty()) {
      error = has_symtab ? "no function matches '" + pattern + "'" : std::string(kStrippedError);
      return false;
    }
    for (const auto* match : matches) {
      const std::string& name = match->first;
      const FunctionSymbol& sym = match->second;
      FunctionTarget target;
      target.name = name;
      if (go) {
        FunctionCode code;
        if (!scanner.scan(whole, name, sym.value, sym.size, FunctionTargetLimits::kMaxFunctionBytes,
                          FunctionTargetLimits::kMaxReturns, code, error)) {
          return false;
        }
        target.kind = FunctionTarget::Kind::kGo;
        target.entry_offset = code.body_offset;
        target.return_offsets = std::move(code.return_offsets);
        target.goid_offset = goid_offset;
      } else {
        const auto offset = entryOffset(file, sym);
        if (!offset) {
          error = name + ": not in the file's code (no segment or section holds it)";
          return false;
        }
        target.kind = FunctionTarget::Kind::kNative;
        target.entry_offset = *offset;
      }
      if (!entries.insert(target.entry_offset).second) continue;
      out.push_back(std::move(target));
    }
  }
  return true;
}

bool resolvePair(const std::string& path, const std::string& spec, FunctionTarget& out,
                 std::string& error) {
  std::string provider, start, end;
  if (!parseUsdtSpec(spec, provider, start, end, error)) return false;
  ElfFile file;
  if (!file.open(path, ElfFile::Read::kMapped, error)) return false;
  std::set<UsdtProbe> probes;
  if (!usdtProbes(file, probes, error)) return false;
  const auto has = [&](const std::string& name) {
    return probes.count(UsdtProbe{provider, name}) != 0;
  };

  FunctionTarget target;
  target.kind = FunctionTarget::Kind::kUsdt;
  target.usdt_provider = provider;
  if (!end.empty()) {
    for (const std::string* name : {&start, &end}) {
      if (!has(*name)) {
        std::string listed;
        size_t n = 0;
        for (const UsdtProbe& p : probes) {
          if (n++ == kUsdtProbesListed) {
            listed += ", ...";
            break;
          }
          listed += (listed.empty() ? "" : ", ") + p.provider + ":" + p.name;
        }
        error = "no USDT probe " + provider + ":" + *name + " (the file has " + listed + ")";
        return false;
      }
    }
    target.name = provider + ":" + start;
    target.usdt_start = start;
    target.usdt_end = end;
    out = std::move(target);
    return true;
  }
  // The short form names the call by NAME, without the suffixes.
  for (const auto& [start_suffix, end_suffix] : kUsdtPairSuffixes) {
    const std::string s = start + std::string(start_suffix);
    const std::string e = start + std::string(end_suffix);
    if (has(s) && has(e)) {
      target.name = provider + ":" + start;
      target.usdt_start = s;
      target.usdt_end = e;
      out = std::move(target);
      return true;
    }
  }
  error = "no USDT probe pair " + provider + ":" + start + " (looked for " + start + "__start/" +
          start + "__end, " + start + "_start/" + start + "_end, " + start + "__begin/" + start +
          "__done)";
  return false;
}

}  // namespace

bool resolveFunctions(const std::string& path, const std::vector<std::string>& patterns,
                      std::vector<FunctionTarget>& out, std::string& error) {
  // All or nothing: a caller never probes half of what it asked for.
  std::vector<FunctionTarget> targets;
  out.clear();
  if (!resolveAll(path, patterns, targets, error)) {
    error = printableText(error);
    return false;
  }
  out = std::move(targets);
  return true;
}

std::string printableText(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out.push_back(c);
    } else {
      out.append("\\x");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

bool parseUsdtSpec(const std::string& spec, std::string& provider, std::string& start,
                   std::string& end, std::string& error) {
  const size_t first = spec.find(':');
  const size_t second = first == std::string::npos ? first : spec.find(':', first + 1);
  const bool three = second != std::string::npos;
  if (first == std::string::npos || (three && spec.find(':', second + 1) != std::string::npos)) {
    error =
        "USDT probe '" + printableText(spec) + "': expected PROVIDER:START:END or PROVIDER:NAME";
    return false;
  }
  provider = spec.substr(0, first);
  start = spec.substr(first + 1, three ? second - first - 1 : std::string::npos);
  end = three ? spec.substr(second + 1) : std::string();
  if (provider.empty() || start.empty() || (three && end.empty())) {
    error = "USDT probe '" + printableText(spec) + "': an empty provider or probe name";
    return false;
  }
  return true;
}

bool resolveUsdt(const std::string& path, const std::string& spec, FunctionTarget& out,
                 std::string& error) {
  if (resolvePair(path, spec, out, error)) return true;
  error = printableText(error);
  return false;
}

bool executableOfPid(pid_t pid, std::string& path, std::string& error) {
  const std::string dir = "/proc/" + std::to_string(pid);
  struct stat st;
  if (pid <= 0 || stat(dir.c_str(), &st) != 0) {
    error = "no process " + std::to_string(pid);
    return false;
  }
  const std::string exe = dir + "/exe";
  char target[4096];
  if (readlink(exe.c_str(), target, sizeof target) < 0) {
    if (errno == ENOENT) {
      // Gone between the two calls, or a kernel thread (no executable).
      error = stat(dir.c_str(), &st) != 0
                  ? "no process " + std::to_string(pid)
                  : "process " + std::to_string(pid) + " has no executable (a kernel thread?)";
    } else {
      error = "cannot read " + exe + ": " + std::strerror(errno);
    }
    return false;
  }
  const int fd = open(exe.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open " + exe + ": " + std::strerror(errno);
    return false;
  }
  close(fd);
  path = exe;
  return true;
}

}  // namespace l7tap
