#include "uprobes/tls_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uprobes/bpf/tls_counters.h"
#include "uprobes/go_tls_probes.h"
#include "uprobes/quiet_libbpf.h"
// The skeleton names the ABI's types: include it after the ABI.
#include "l7tap_openssl.skel.h"

namespace l7tap {
namespace {

std::string errnoText(int err) { return std::strerror(err < 0 ? -err : err); }

// One probe of the OpenSSL set: the entry program, and the return program
// when the call's result matters.
struct ProbeSpec {
  const char* symbol;
  bpf_program* entry;
  bpf_program* ret;  // null: no uretprobe
  bool required;
};

std::vector<ProbeSpec> openSslProbes(l7tap_openssl* s) {
  auto& p = s->progs;
  return {
      {"SSL_write", p.l7tap_ssl_write, p.l7tap_ssl_data_ret, true},
      {"SSL_read", p.l7tap_ssl_read, p.l7tap_ssl_data_ret, true},
      {"SSL_write_ex", p.l7tap_ssl_write_ex, p.l7tap_ssl_data_ret, false},
      {"SSL_read_ex", p.l7tap_ssl_read_ex, p.l7tap_ssl_data_ret, false},
      {"SSL_do_handshake", p.l7tap_ssl_do_handshake, p.l7tap_ssl_handshake_ret, false},
      {"SSL_connect", p.l7tap_ssl_connect, p.l7tap_ssl_handshake_ret, false},
      {"SSL_accept", p.l7tap_ssl_accept, p.l7tap_ssl_handshake_ret, false},
      {"SSL_set_connect_state", p.l7tap_ssl_set_connect_state, nullptr, false},
      {"SSL_set_accept_state", p.l7tap_ssl_set_accept_state, nullptr, false},
      {"SSL_set_fd", p.l7tap_ssl_set_fd, nullptr, false},
      {"SSL_free", p.l7tap_ssl_free, nullptr, false},
  };
}

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

// The defined functions among `wanted` in the file's .symtab and .dynsym.
// Checked before attaching so that a missing symbol is one clear line here
// rather than libbpf's warnings on stderr.
bool definedFunctions(const std::string& path, const std::vector<ProbeSpec>& wanted,
                      std::set<std::string>& found, std::string& error) {
  if (elf_version(EV_CURRENT) == EV_NONE) {
    error = "libelf: " + std::string(elf_errmsg(-1));
    return false;
  }
  FdCloser fd{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) {
    error = "cannot open: " + errnoText(errno);
    return false;
  }
  std::unique_ptr<Elf, ElfCloser> elf(elf_begin(fd.fd, ELF_C_READ_MMAP, nullptr));
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) {
    error = "not an ELF file";
    return false;
  }
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf.get(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM))
      continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || shdr.sh_entsize == 0) continue;
    const size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
      const int type = GELF_ST_TYPE(sym.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
          sym.st_value == 0)
        continue;
      const char* name = elf_strptr(elf.get(), shdr.sh_link, sym.st_name);
      if (name == nullptr || std::strncmp(name, "SSL_", 4) != 0) continue;
      for (const auto& w : wanted) {
        if (std::strcmp(name, w.symbol) == 0) found.insert(w.symbol);
      }
    }
  }
  return true;
}

}  // namespace

void TlsProgram::LinkDestroy::operator()(bpf_link* link) const { bpf_link__destroy(link); }

TlsProgram::TlsProgram() = default;

TlsProgram::~TlsProgram() { unload(); }

bool TlsProgram::load(const TlsProgramConfig& config, std::string& error) {
  const QuietLibbpf quiet(config.quiet_load);
  unload();
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  if (config.ring_bytes < page || (config.ring_bytes & (config.ring_bytes - 1)) != 0) {
    error = "tls: ring size " + std::to_string(config.ring_bytes) +
            " is not a power of two of at least a page";
    return false;
  }
  skel_ = l7tap_openssl__open();
  if (skel_ == nullptr) {
    error = "tls: opening the BPF object: " + errnoText(errno);
    return false;
  }
  filter_pids_ = !config.pids.empty();
  skel_->rodata->l7tap_tls_filter_pids = filter_pids_ ? 1 : 0;
  wakeup_bytes_ = config.wakeup_bytes;
  skel_->rodata->l7tap_tls_wakeup_bytes = wakeup_bytes_;
  int err = bpf_map__set_max_entries(skel_->maps.tls_events, config.ring_bytes);
  if (err == 0 && !config.pids.empty()) {
    err = bpf_map__set_max_entries(skel_->maps.tls_pids, static_cast<uint32_t>(config.pids.size()));
  }
  if (err != 0) {
    error = "tls: sizing the maps: " + errnoText(err);
    unload();
    return false;
  }
  err = l7tap_openssl__load(skel_);
  if (err != 0) {
    error = "tls: loading the BPF programs: " + errnoText(err);
    unload();
    return false;
  }
  const uint8_t one = 1;
  for (uint32_t pid : config.pids) {
    if (bpf_map__update_elem(skel_->maps.tls_pids, &pid, sizeof(pid), &one, sizeof(one), 0) != 0) {
      error = "tls: pid filter: " + errnoText(errno);
      unload();
      return false;
    }
  }
  bpf_link* link =
      bpf_program__attach_raw_tracepoint(skel_->progs.l7tap_sched_exec, "sched_process_exec");
  if (link == nullptr) {
    error = "tls: attaching the raw tracepoint sched_process_exec: " + errnoText(errno);
    unload();
    return false;
  }
  links_.emplace_back(link);
  return true;
}

TlsProgram::Attach TlsProgram::attachOpenSsl(const std::string& path, std::string& error) {
  const QuietLibbpf quiet(true);
  if (skel_ == nullptr) {
    error = path + ": the TLS programs are not loaded";
    return Attach::kFailed;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    error = path + ": " + errnoText(errno);
    return Attach::kFailed;
  }
  const std::pair<dev_t, ino_t> file{st.st_dev, st.st_ino};
  if (attached_files_.count(file) != 0) return Attach::kAlready;

  const std::vector<ProbeSpec> probes = openSslProbes(skel_);
  std::set<std::string> found;
  std::string why;
  if (!definedFunctions(path, probes, found, why)) {
    error = path + ": " + why;
    return Attach::kFailed;
  }
  std::string missing;
  for (const auto& p : probes) {
    if (p.required && found.count(p.symbol) == 0)
      missing += (missing.empty() ? "" : ", ") + std::string(p.symbol);
  }
  if (!missing.empty()) {
    error = path + ": no " + missing + " (not OpenSSL or BoringSSL, or stripped)";
    return Attach::kFailed;
  }

  // All of this file's links, kept only if every present symbol attached.
  std::vector<Link> links;
  // sys_enter runs on every syscall of the node once attached: only from the
  // first OpenSSL file on, whose calls it is there for.
  if (!sys_enter_attached_) {
    bpf_link* link = bpf_program__attach_raw_tracepoint(skel_->progs.l7tap_sys_enter, "sys_enter");
    if (link == nullptr) {
      error = path + ": attaching the raw tracepoint sys_enter: " + errnoText(errno);
      return Attach::kFailed;
    }
    links.emplace_back(link);
  }
  for (const auto& p : probes) {
    if (found.count(p.symbol) == 0) continue;
    for (bpf_program* prog : {p.entry, p.ret}) {
      if (prog == nullptr) continue;
      LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = prog == p.ret, .func_name = p.symbol);
      // pid -1: the probe is on the file, for every process that maps it,
      // now or later; the pid filter is applied in BPF.
      bpf_link* link = bpf_program__attach_uprobe_opts(prog, -1, path.c_str(), 0, &opts);
      if (link == nullptr) {
        error = path + ": attaching " + (prog == p.ret ? "a uretprobe" : "a uprobe") + " on " +
                p.symbol + ": " + errnoText(errno);
        return Attach::kFailed;
      }
      links.emplace_back(link);
    }
  }
  for (auto& l : links) links_.push_back(std::move(l));
  attached_files_.insert(file);
  sys_enter_attached_ = true;
  return Attach::kAttached;
}

bool TlsProgram::shareMapsWith(bpf_object* other, std::string& error) const {
  if (skel_ == nullptr) {
    error = "tls: the TLS programs are not loaded";
    return false;
  }
  // The maps of tls_common.bpf.h, by name: part of its contract.
  const std::pair<const char*, bpf_map*> shared[] = {
      {"tls_events", skel_->maps.tls_events},     {"tls_streams", skel_->maps.tls_streams},
      {"tls_sockets", skel_->maps.tls_sockets},   {"tls_pids", skel_->maps.tls_pids},
      {"tls_counters", skel_->maps.tls_counters},
  };
  for (const auto& [name, map] : shared) {
    bpf_map* theirs = bpf_object__find_map_by_name(other, name);
    if (theirs == nullptr) continue;
    const int err = bpf_map__reuse_fd(theirs, bpf_map__fd(map));
    if (err != 0) {
      error = std::string("tls: sharing the map ") + name + ": " + errnoText(err);
      return false;
    }
  }
  return true;
}

TlsProgram::Attach TlsProgram::attachGo(const std::string& path, const GoTlsTarget& target,
                                        std::string& error) {
  const QuietLibbpf quiet(true);
  if (skel_ == nullptr) {
    error = path + ": the TLS programs are not loaded";
    return Attach::kFailed;
  }
  if (!go_) {
    auto go = std::make_unique<GoTlsProbes>();
    bpf_object* object = go->open(error);
    if (object == nullptr || !shareMapsWith(object, error) ||
        !go->load(filter_pids_, wakeup_bytes_, error)) {
      error = path + ": " + error;
      return Attach::kFailed;
    }
    go_ = std::move(go);
  }
  switch (go_->attach(path, target, error)) {
    case GoTlsProbes::Result::kAttached:
      return Attach::kAttached;
    case GoTlsProbes::Result::kAlready:
      return Attach::kAlready;
    case GoTlsProbes::Result::kFailed:
      break;
  }
  return Attach::kFailed;
}

int TlsProgram::ringFd() const {
  return skel_ == nullptr ? -1 : bpf_map__fd(skel_->maps.tls_events);
}

TlsProgramCounters TlsProgram::counters() const {
  TlsProgramCounters c;
  if (skel_ == nullptr) return c;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return c;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  uint64_t sums[L7TAP_TLS_CNT_MAX] = {};
  for (uint32_t i = 0; i < L7TAP_TLS_CNT_MAX; ++i) {
    if (bpf_map__lookup_elem(skel_->maps.tls_counters, &i, sizeof(i), per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0) != 0)
      continue;
    for (uint64_t v : per_cpu) sums[i] += v;
  }
  c.events = sums[L7TAP_TLS_CNT_EVENTS];
  c.lost = sums[L7TAP_TLS_CNT_LOST];
  c.lost_bytes = sums[L7TAP_TLS_CNT_LOST_BYTES];
  c.chunked = sums[L7TAP_TLS_CNT_CHUNKED];
  c.truncated = sums[L7TAP_TLS_CNT_TRUNCATED];
  c.read_faults = sums[L7TAP_TLS_CNT_READ_FAULTS];
  c.no_socket = sums[L7TAP_TLS_CNT_NO_SOCKET];
  c.not_tcp = sums[L7TAP_TLS_CNT_NOT_TCP];
  c.no_entry = sums[L7TAP_TLS_CNT_NO_ENTRY];
  c.state_full = sums[L7TAP_TLS_CNT_STATE_FULL];
  c.closes = sums[L7TAP_TLS_CNT_CLOSES];
  c.execs = sums[L7TAP_TLS_CNT_EXECS];
  c.fd_inferred = sums[L7TAP_TLS_CNT_FD_INFERRED];
  c.fd_ambiguous = sums[L7TAP_TLS_CNT_FD_AMBIGUOUS];
  return c;
}

void TlsProgram::unload() {
  go_.reset();     // its maps are this object's: detach it first
  links_.clear();  // detach before the programs go
  attached_files_.clear();
  filter_pids_ = false;
  sys_enter_attached_ = false;
  if (skel_ != nullptr) {
    l7tap_openssl__destroy(skel_);
    skel_ = nullptr;
  }
}

}  // namespace l7tap
