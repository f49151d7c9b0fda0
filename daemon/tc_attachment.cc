#include "daemon/tc_attachment.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace l7tap {

namespace {

// Debian bookworm's uapi headers predate tcx; the values are fixed ABI.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;

// l7tap's cls_bpf filters are recognised by this handle and priority, so a
// restart can remove what a killed daemon left, and nothing else.
constexpr uint32_t kClsactHandle = 0x17a9;
constexpr uint32_t kClsactPriority = 0x17a9;

bpf_tc_hook hookFor(int ifindex, bpf_tc_attach_point point) {
  bpf_tc_hook hook;
  std::memset(&hook, 0, sizeof hook);
  hook.sz = sizeof hook;
  hook.ifindex = ifindex;
  hook.attach_point = point;
  return hook;
}

bpf_tc_opts optsFor(int prog_fd) {
  bpf_tc_opts opts;
  std::memset(&opts, 0, sizeof opts);
  opts.sz = sizeof opts;
  opts.handle = kClsactHandle;
  opts.priority = kClsactPriority;
  opts.prog_fd = prog_fd;
  return opts;
}

std::string errnoText(int err) { return std::strerror(err < 0 ? -err : err); }

}  // namespace

const char* toString(AttachMode m) {
  switch (m) {
    case AttachMode::kAuto:
      return "auto";
    case AttachMode::kTcx:
      return "tcx";
    case AttachMode::kClsact:
      return "clsact";
    case AttachMode::kXdp:
      return "xdp";
  }
  return "?";
}

TcAttachment::TcAttachment(TcAttachment&& other) noexcept { *this = std::move(other); }

TcAttachment& TcAttachment::operator=(TcAttachment&& other) noexcept {
  if (this != &other) {
    detach();
    ifindex_ = std::exchange(other.ifindex_, 0);
    mode_ = other.mode_;
    link_fd_[0] = std::exchange(other.link_fd_[0], -1);
    link_fd_[1] = std::exchange(other.link_fd_[1], -1);
  }
  return *this;
}

bool TcAttachment::attach(int ifindex, int ingress_fd, int egress_fd, AttachMode mode,
                          AttachMode& used, std::string& error) {
  detach();
  if (mode == AttachMode::kXdp) {
    error = "XDP is attached by XdpAttachment";
    return false;
  }
  // ingress_fd < 0: egress only (see the header).
  const bool with_ingress = ingress_fd >= 0;
  if (mode == AttachMode::kAuto || mode == AttachMode::kTcx) {
    constexpr int kSkipped = -1000;  // no ingress link asked for
    const int in = with_ingress
                       ? bpf_link_create(ingress_fd, ifindex,
                                         static_cast<bpf_attach_type>(kBpfTcxIngress), nullptr)
                       : kSkipped;
    const int out = (in < 0 && in != kSkipped)
                        ? in
                        : bpf_link_create(egress_fd, ifindex,
                                          static_cast<bpf_attach_type>(kBpfTcxEgress), nullptr);
    if ((in >= 0 || in == kSkipped) && out >= 0) {
      ifindex_ = ifindex;
      mode_ = used = AttachMode::kTcx;
      link_fd_[0] = in;
      link_fd_[1] = out;
      return true;
    }
    if (in >= 0) close(in);
    if (mode == AttachMode::kTcx) {
      error = "tcx attach failed: " + errnoText(out < 0 ? out : in);
      return false;
    }
    // Kernels before 6.6 do not know tcx: fall back to clsact.
  }
  removeStaleClsactFilters(ifindex);
  for (auto [point, fd] :
       {std::pair{BPF_TC_INGRESS, ingress_fd}, std::pair{BPF_TC_EGRESS, egress_fd}}) {
    if (fd < 0) continue;  // egress only
    bpf_tc_hook hook = hookFor(ifindex, point);
    int rc = bpf_tc_hook_create(&hook);  // creates the clsact qdisc if missing
    if (rc < 0 && rc != -EEXIST) {
      error = "clsact qdisc: " + errnoText(rc);
      detach();
      return false;
    }
    bpf_tc_opts opts = optsFor(fd);
    rc = bpf_tc_attach(&hook, &opts);
    if (rc < 0) {
      error = std::string("cls_bpf ") + (point == BPF_TC_INGRESS ? "ingress" : "egress") +
              " filter: " + errnoText(rc);
      ifindex_ = ifindex;
      mode_ = AttachMode::kClsact;
      detach();
      return false;
    }
    ifindex_ = ifindex;
    mode_ = AttachMode::kClsact;
  }
  used = AttachMode::kClsact;
  return true;
}

void TcAttachment::detach() {
  if (ifindex_ == 0) return;
  if (mode_ == AttachMode::kTcx) {
    for (int& fd : link_fd_) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
  } else {
    // The interface may be gone already; then so are its filters.
    removeStaleClsactFilters(ifindex_);
  }
  ifindex_ = 0;
}

int TcAttachment::removeStaleClsactFilters(int ifindex) {
  int removed = 0;
  for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
    bpf_tc_hook hook = hookFor(ifindex, point);
    bpf_tc_opts opts = optsFor(0);
    opts.prog_fd = 0;
    if (bpf_tc_query(&hook, &opts) == 0) {
      bpf_tc_opts del = optsFor(0);
      del.prog_fd = 0;
      if (bpf_tc_detach(&hook, &del) == 0) ++removed;
    }
  }
  return removed;
}

}  // namespace l7tap
