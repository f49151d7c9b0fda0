// The Go crypto/tls probes (uprobes/bpf/go_tls.bpf.c) of every Go executable
// attached: one BPF object, whose ring, stream and socket state are those of
// the OpenSSL object (shared by map fd, TlsProgram::shareMapsWith), and per Go file the uprobes at
// the entries and RET instructions that uprobes/go_binary found. TlsProgram owns one of these; see
// TlsProgram::attachGo.
#pragma once

#include <sys/types.h>

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "uprobes/go_binary.h"

struct bpf_link;
struct bpf_object;
struct l7tap_go_tls;

namespace l7tap {

class GoTlsProbes {
 public:
  enum class Result { kAttached, kAlready, kFailed };

  GoTlsProbes() = default;
  ~GoTlsProbes();  // detaches and unloads
  GoTlsProbes(const GoTlsProbes&) = delete;
  GoTlsProbes& operator=(const GoTlsProbes&) = delete;

  /// Opens the Go object; its maps of tls_common.bpf.h are to be shared
  /// (TlsProgram::shareMapsWith) before load(). Null with a one-line `error`.
  bpf_object* open(std::string& error);
  /// Loads the opened object. `filter_pids`: only the tgids in the shared
  /// tls_pids map are traced; `wakeup_bytes` as TlsProgramConfig's. False with a one-line `error`.
  bool load(bool filter_pids, uint32_t wakeup_bytes, std::string& error);

  /// Uprobes on `path` (for every process that maps the file) at the places
  /// `target` names, once per file (st_dev, st_ino). kFailed: `error` is one
  /// line, and nothing of this file stays attached.
  Result attach(const std::string& path, const GoTlsTarget& target, std::string& error);

 private:
  struct LinkDestroy {
    void operator()(bpf_link* link) const;
  };
  using Link = std::unique_ptr<bpf_link, LinkDestroy>;

  l7tap_go_tls* skel_ = nullptr;
  bool loaded_ = false;
  std::vector<Link> links_;
  std::set<std::pair<dev_t, ino_t>> attached_files_;
  uint32_t binaries_ = 0;  // next index in go_binaries, the uprobes' cookie
};

}  // namespace l7tap
