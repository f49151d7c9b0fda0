#include "uprobes/library_discovery.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "binaries/elf_file.h"
#include "uprobes/go_binary.h"

namespace l7tap {

namespace {

constexpr std::string_view kDeleted = " (deleted)";

std::string_view baseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool isLibssl(std::string_view path) { return baseName(path).starts_with("libssl.so"); }

}  // namespace

bool elfDefinesSymbol(const std::string& path, std::string_view symbol) {
  ElfFile file;
  std::string error;
  if (!file.open(path, ElfFile::Read::kMapped, error)) return false;
  bool defined = false;
  file.forEachSymbol(ElfFile::kSymtab | ElfFile::kDynsym, [&](const ElfFile::Symbol& sym) {
    // An import (a program linked against libssl) is not a definition.
    if (sym.section != SHN_UNDEF && sym.value != 0 && sym.name == symbol) defined = true;
  });
  return defined;
}

TlsFileKind classifyTlsFile(const MappedFile& file, std::string& why) {
  if (isLibssl(file.mapped_path)) return TlsFileKind::kOpenSsl;
  if (elfDefinesSymbol(file.open_path, "SSL_write")) return TlsFileKind::kOpenSsl;
  if (isGoExecutable(file.open_path)) return TlsFileKind::kGo;
  why = "neither OpenSSL or BoringSSL (no SSL_write symbol) nor a Go executable";
  return TlsFileKind::kNotTls;
}

LibraryDiscovery::LibraryDiscovery(TlsFileAttacher& attacher, Options options)
    : attacher_(&attacher), options_(std::move(options)) {}

bool LibraryDiscovery::wanted(uint32_t pid) const {
  if (!options_.pids.empty()) {
    return std::find(options_.pids.begin(), options_.pids.end(), pid) != options_.pids.end();
  }
  return !options_.in_scope || options_.in_scope(pid);
}

void LibraryDiscovery::say(const std::string& path, const std::string& reason) {
  const std::string line = "l7tap: tls: " + path + ": " + reason;
  if (options_.report) {
    options_.report(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void LibraryDiscovery::consider(const MappedFile& file, bool named) {
  struct stat st;
  if (stat(file.open_path.c_str(), &st) != 0) {
    // A process that exited while it was looked at is not worth a line.
    if (named) say(file.mapped_path, std::strerror(errno));
    return;
  }
  if (tried_.size() >= options_.limits.max_files) tried_.clear();
  if (!tried_.insert({st.st_dev, st.st_ino}).second) return;
  stats_.files_tried++;
  std::string why;
  const TlsFileKind kind = options_.classify(file, why);
  if (kind == TlsFileKind::kNotTls) {
    // Most executables have no TLS: only a file the operator named is worth a line.
    if (named) {
      stats_.refused++;
      say(file.mapped_path, why.empty() ? "not a TLS library l7tap knows" : why);
    }
    return;
  }
  std::string error;
  switch (attacher_->attach(kind, file, error)) {
    case TlsFileAttacher::Result::kAttached:
      stats_.attached++;
      break;
    case TlsFileAttacher::Result::kAlready:
      break;
    case TlsFileAttacher::Result::kFailed:
      stats_.refused++;
      say(file.mapped_path, error);
      break;
    case TlsFileAttacher::Result::kSkipped:
      if (named) {
        stats_.refused++;
        say(file.mapped_path, error);
      }
      break;
  }
}

void LibraryDiscovery::scanProcess(uint32_t pid) {
  if (!wanted(pid)) return;
  stats_.process_scans++;
  const std::string dir = options_.proc + "/" + std::to_string(pid);
  const std::string root = dir + "/root";
  char exe[4096];
  const ssize_t n = readlink((dir + "/exe").c_str(), exe, sizeof exe - 1);
  if (n > 0) {
    const std::string_view target(exe, static_cast<size_t>(n));
    if (!target.ends_with(kDeleted) && target.starts_with('/')) {
      consider({pid, std::string(target), root + std::string(target), true}, false);
    }
  }
  std::ifstream maps(dir + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // address perms offset dev inode path: only executable mappings of files.
    const size_t path_at = line.find('/');
    if (path_at == std::string::npos) continue;
    const size_t perms = line.find(' ');
    if (perms == std::string::npos || perms + 4 >= line.size() || line[perms + 3] != 'x') continue;
    const std::string_view path = std::string_view(line).substr(path_at);
    if (path.ends_with(kDeleted) || !isLibssl(path)) continue;
    consider({pid, std::string(path), root + std::string(path), false}, false);
  }
}

void LibraryDiscovery::scanAll(uint64_t now_ns) {
  stats_.full_scans++;
  next_full_scan_ns_ = now_ns + options_.full_scan_interval_ns;
  if (!options_.pids.empty()) {
    for (uint32_t pid : options_.pids) scanProcess(pid);
    return;
  }
  DIR* d = opendir(options_.proc.c_str());
  if (d == nullptr) return;
  while (const dirent* e = readdir(d)) {
    char* end = nullptr;
    const unsigned long pid = std::strtoul(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid == 0 || pid > UINT32_MAX) continue;
    scanProcess(static_cast<uint32_t>(pid));
  }
  closedir(d);
}

void LibraryDiscovery::addFile(const std::string& path) { consider({0, path, path, true}, true); }

void LibraryDiscovery::onExec(uint32_t pid, uint64_t now_ns) {
  if (!wanted(pid)) return;
  if (pending_.size() + 2 > options_.limits.max_pending_execs) {
    // The periodic full scan finds it.
    stats_.pending_dropped++;
    return;
  }
  pending_.push_back({pid, now_ns + options_.limits.exec_first_delay_ns});
  pending_.push_back({pid, now_ns + options_.limits.exec_second_delay_ns});
}

void LibraryDiscovery::tick(uint64_t now_ns) {
  std::vector<uint32_t> due;
  std::erase_if(pending_, [&](const Pending& p) {
    if (p.due_ns > now_ns) return false;
    due.push_back(p.pid);
    return true;
  });
  for (uint32_t pid : due) scanProcess(pid);
  if (now_ns >= next_full_scan_ns_) scanAll(now_ns);
}

}  // namespace l7tap
