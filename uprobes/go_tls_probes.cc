#include "uprobes/go_tls_probes.h"

#include <bpf/libbpf.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "uprobes/bpf/go_tls_abi.h"
// clang-format off: the skeleton needs the ABI types first
#include "l7tap_go_tls.skel.h"
#include "uprobes/bpf/tls_abi.h"
// clang-format on

namespace l7tap {
namespace {

std::string errnoText(int err) { return std::strerror(err < 0 ? -err : err); }

}  // namespace

void GoTlsProbes::LinkDestroy::operator()(bpf_link* link) const { bpf_link__destroy(link); }

GoTlsProbes::~GoTlsProbes() {
  links_.clear();
  l7tap_go_tls__destroy(skel_);
}

bpf_object* GoTlsProbes::open(std::string& error) {
  if (skel_ == nullptr) skel_ = l7tap_go_tls__open();
  if (skel_ == nullptr) {
    error = "go crypto/tls program: open failed: " + errnoText(errno);
    return nullptr;
  }
  return skel_->obj;
}

bool GoTlsProbes::load(bool filter_pids, uint32_t wakeup_bytes, std::string& error) {
  if (skel_ == nullptr) {
    error = "go crypto/tls program: not opened";
    return false;
  }
  if (loaded_) return true;
  skel_->rodata->l7tap_tls_filter_pids = filter_pids ? 1 : 0;
  skel_->rodata->l7tap_tls_wakeup_bytes = wakeup_bytes;
  if (int err = l7tap_go_tls__load(skel_); err != 0) {
    error = "go crypto/tls program: load failed: " + errnoText(err);
    return false;
  }
  loaded_ = true;
  return true;
}

GoTlsProbes::Result GoTlsProbes::attach(const std::string& path, const GoTlsTarget& target,
                                        std::string& error) {
  if (!loaded_) {
    error = path + ": the go crypto/tls program is not loaded";
    return Result::kFailed;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    error = path + ": " + errnoText(errno);
    return Result::kFailed;
  }
  if (attached_files_.contains({st.st_dev, st.st_ino})) return Result::kAlready;
  if (binaries_ >= L7TAP_GO_MAX_BINARIES) {
    error =
        path + ": more than " + std::to_string(L7TAP_GO_MAX_BINARIES) + " Go executables attached";
    return Result::kFailed;
  }
  const uint32_t index = binaries_;
  const l7tap_go_offsets offsets{.conn_conn = target.offsets.conn_conn,
                                 .conn_is_client = target.offsets.conn_is_client,
                                 .net_conn_fd = target.offsets.net_conn_fd,
                                 .netfd_pfd = target.offsets.netfd_pfd,
                                 .pollfd_sysfd = target.offsets.pollfd_sysfd,
                                 .tcpconn_itab = target.tcpconn_itab};
  if (bpf_map__update_elem(skel_->maps.go_binaries, &index, sizeof(index), &offsets,
                           sizeof(offsets), BPF_ANY) != 0) {
    error = path + ": go_binaries: " + errnoText(errno);
    return Result::kFailed;
  }

  std::vector<Link> links;
  auto probe = [&](bpf_program* program, uint64_t offset) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = index);
    bpf_link* link = bpf_program__attach_uprobe_opts(program, -1, path.c_str(), offset, &opts);
    if (link == nullptr) {
      error = path + ": uprobe at file offset " + std::to_string(offset) + ": " + errnoText(errno);
      return false;
    }
    links.emplace_back(link);
    return true;
  };
  bool ok = probe(skel_->progs.l7tap_go_write_enter, target.write.entry_offset) &&
            probe(skel_->progs.l7tap_go_read_enter, target.read.entry_offset) &&
            probe(skel_->progs.l7tap_go_close_enter, target.close.entry_offset);
  // Write reports its plaintext at its entry (go_tls.bpf.c): only Read's
  // RETs are probed.
  for (uint64_t offset : target.read.return_offsets) {
    ok = ok && probe(skel_->progs.l7tap_go_read_return, offset);
  }
  if (!ok) return Result::kFailed;  // `links` detaches what was attached
  for (Link& link : links) links_.push_back(std::move(link));
  attached_files_.insert({st.st_dev, st.st_ino});
  ++binaries_;
  return Result::kAttached;
}

}  // namespace l7tap
