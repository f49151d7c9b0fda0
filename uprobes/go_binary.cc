#include "uprobes/go_binary.h"

#include <map>
#include <string_view>

namespace l7tap {
namespace {

constexpr std::string_view kWriteSymbol = "crypto/tls.(*Conn).Write";
constexpr std::string_view kReadSymbol = "crypto/tls.(*Conn).Read";
constexpr std::string_view kCloseSymbol = "crypto/tls.(*Conn).Close";
// Go 1.20 renamed the itab symbols from "go.itab." to "go:itab.".
constexpr std::string_view kTcpConnItabSymbols[] = {"go:itab.*net.TCPConn,net.Conn",
                                                    "go.itab.*net.TCPConn,net.Conn"};

struct Symbol {
  uint64_t value = 0;
  uint64_t size = 0;
};

// The few symbols the probes need, from .symtab (Go keeps no .dynsym for
// its own functions). False when there is no symbol table at all.
bool findSymbols(const ElfFile& file, std::map<std::string, Symbol, std::less<>>& wanted) {
  return file.forEachSymbol(ElfFile::kSymtab, [&](const ElfFile::Symbol& sym) {
    auto it = wanted.find(sym.name);
    if (it != wanted.end()) it->second = Symbol{sym.value, sym.size};
  });
}

bool probeFunction(const ElfFile& file, ReturnScanner& scanner, std::string_view name,
                   const Symbol& sym, GoTlsTarget::Function& out, std::string& error) {
  FunctionCode code;
  if (!scanner.scan(file, name, sym.value, sym.size, GoBinaryLimits::kMaxFunctionBytes,
                    GoBinaryLimits::kMaxReturns, code, error)) {
    return false;
  }
  out.entry_offset = code.entry_offset;
  out.return_offsets = std::move(code.return_offsets);
  return true;
}

bool offsetsFromDwarf(const ElfFile& file, GoTlsOffsets& offsets) {
  DwarfMember members[] = {
      {"crypto/tls.Conn", "conn"}, {"crypto/tls.Conn", "isClient"},
      {"net.TCPConn", "conn"},     {"net.conn", "fd"},
      {"net.netFD", "pfd"},        {"internal/poll.FD", "Sysfd"},
      {"runtime.g", "goid"},
  };
  if (!dwarfMemberOffsets(file, members)) return false;
  offsets.conn_conn = members[0].offset;
  offsets.conn_is_client = members[1].offset;
  offsets.net_conn_fd = members[2].offset + members[3].offset;
  offsets.netfd_pfd = members[4].offset;
  offsets.pollfd_sysfd = members[5].offset;
  offsets.g_goid = members[6].offset;
  return true;
}

}  // namespace

bool goTlsOffsetsForVersion(int minor, GoTlsOffsets& offsets) {
  const uint64_t goid = goGoidOffsetForVersion(minor);
  if (goid == 0) return false;
  // crypto/tls.Conn starts with `conn net.Conn; isClient bool` in all of
  // them, net.TCPConn{conn{fd *netFD}}, netFD{pfd poll.FD, ...} and
  // poll.FD{fdmu fdMutex (16 bytes); Sysfd int}.
  offsets = GoTlsOffsets{.conn_conn = 0,
                         .conn_is_client = 16,
                         .net_conn_fd = 0,
                         .netfd_pfd = 0,
                         .pollfd_sysfd = 16,
                         .g_goid = goid};
  return true;
}

bool analyseGoBinary(const std::string& path, GoTlsTarget& target, std::string& error) {
  target = GoTlsTarget{};
  ElfFile file;
  if (!file.open(path, ElfFile::Read::kWhole, error)) return false;

  const auto build_info = findGoBuildInfo(file);
  if (!build_info) {
    error = "not a Go executable (no Go build info)";
    return false;
  }
  if (!readGoVersion(file, *build_info, target.go_version, error)) return false;
  if (file.header().e_machine != EM_X86_64) {
    error = target.go_version + " executable for another architecture than amd64";
    return false;
  }
  const int minor = goMinorVersion(target.go_version);
  if (minor < kGoMinMinorVersion) {
    error = target.go_version +
            " is older than go1.17 (arguments on the stack, not in registers): not supported";
    return false;
  }
  target.position_independent = file.header().e_type == ET_DYN;

  std::map<std::string, Symbol, std::less<>> symbols;
  for (std::string_view name : {kWriteSymbol, kReadSymbol, kCloseSymbol}) {
    symbols.emplace(name, Symbol{});
  }
  for (std::string_view name : kTcpConnItabSymbols) symbols.emplace(name, Symbol{});
  if (!findSymbols(file, symbols)) {
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
  ReturnScanner scanner;
  if (!scanner.open(error) ||
      !probeFunction(file, scanner, kWriteSymbol, write, target.write, error) ||
      !probeFunction(file, scanner, kReadSymbol, read, target.read, error) ||
      !probeFunction(file, scanner, kCloseSymbol, close, target.close, error)) {
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

  target.offsets_from_dwarf = offsetsFromDwarf(file, target.offsets);
  if (!target.offsets_from_dwarf && !goTlsOffsetsForVersion(minor, target.offsets)) {
    error = target.go_version +
            " executable without DWARF (built with -ldflags=-w?) and no offset table for "
            "this version (go1.17 .. go1.23)";
    return false;
  }
  return true;
}

bool isGoExecutable(const std::string& path) {
  ElfFile file;
  std::string error;
  return file.open(path, ElfFile::Read::kMapped, error) && findGoBuildInfo(file).has_value();
}

}  // namespace l7tap
