#include "daemon/capture_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "daemon/xdp_attachment.h"
#include "l7tap_tc.skel.h"

namespace l7tap {

namespace {

// libbpf's own messages: warnings and errors only, prefixed like ours.
int libbpfPrint(libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || level == LIBBPF_INFO) return 0;
  // Most of libbpf's lines name it already.
  std::fputs(std::strncmp(format, "libbpf: ", 8) == 0 ? "l7tap: " : "l7tap: libbpf: ", stderr);
  return std::vfprintf(stderr, format, args);
}

}  // namespace

const char* kernelCounterName(int index) {
  static constexpr const char* kNames[L7TAP_CNT_MAX] = {
      "packets",
      "tcp",
      "unparsable",
      "not_tcp",
      "fragments",
      "filtered",
      "not_owner",
      "events",
      "ringbuf_full",
      "flow_map_full",
      "payload_bytes",
      "copied_bytes",
      "skipped_bytes",
      "l4_only",
      "walked",
      "walk_lost",
      "ringbuf_full_bytes",
      "not_owner_paired",
      "tunnel_flows",
  };
  return index >= 0 && index < L7TAP_CNT_MAX ? kNames[index] : "?";
}

CaptureProgram::~CaptureProgram() { unload(); }

void CaptureProgram::unload() {
  if (skel_) l7tap_tc__destroy(skel_);
  skel_ = nullptr;
}

bool CaptureProgram::open(const LiveConfig& config, std::string& error) {
  skel_ = l7tap_tc__open();
  if (!skel_) {
    error = std::string("opening the BPF program: ") + std::strerror(errno);
    return false;
  }
  l7tap_config& cfg = const_cast<l7tap_config&>(skel_->rodata->l7tap_cfg);
  cfg.window = config.window;
  cfg.wakeup_bytes = config.wakeup_bytes;
  for (size_t i = 0; i < config.ports.size(); ++i) cfg.ports[i] = config.ports[i];
  for (size_t i = 0; i < config.cidrs.size(); ++i) {
    std::memcpy(cfg.cidrs[i].addr, config.cidrs[i].addr, 16);
    cfg.cidrs[i].prefix_len = config.cidrs[i].prefix_len;
  }
  cfg.num_cidrs = static_cast<uint8_t>(config.cidrs.size());
  cfg.frame_walk = config.capture_control ? 1 : 0;
  bpf_map__set_max_entries(skel_->maps.events, config.ring_bytes);
  bpf_map__set_max_entries(skel_->maps.flows, config.flow_entries);
  const bool xdp = config.mode == AttachMode::kXdp;
  bpf_program__set_autoload(skel_->progs.l7tap_xdp, xdp);
  bpf_program__set_autoload(skel_->progs.l7tap_ingress, !xdp);
  bpf_program__set_autoload(skel_->progs.l7tap_egress, !xdp);
  return true;
}

bool CaptureProgram::load(const LiveConfig& config, std::string& error) {
  unload();
  libbpf_set_print(libbpfPrint);
  if (!checkLiveConfig(config, error)) return false;
  const bool xdp = config.mode == AttachMode::kXdp;
  if (xdp) {
    // First as an freplace extension, which libxdp's dispatcher can share
    // with other XDP programs (see xdp_attachment.h). Kernels or security
    // policies that refuse extension programs get the plain XDP program,
    // attached alone through an XDP link.
    if (!open(config, error)) return false;
    XdpExtensionTarget target;
    std::string why;
    if (target.prepare(skel_->progs.l7tap_xdp, why)) {
      libbpf_set_print(nullptr);  // a refusal is expected on some kernels: reported below
      const int rc = l7tap_tc__load(skel_);
      libbpf_set_print(libbpfPrint);
      if (rc == 0) return true;
      why = std::string("the kernel refused it as an freplace extension: ") + std::strerror(-rc);
    }
    std::fprintf(stderr,
                 "l7tap: XDP: no libxdp dispatcher (%s); the XDP program is attached alone, "
                 "through an XDP link: no other XDP program can share the interface\n",
                 why.c_str());
    unload();
  }
  if (!open(config, error)) return false;
  if (int rc = l7tap_tc__load(skel_); rc != 0) {
    error = std::string("loading the BPF program: ") + std::strerror(-rc) +
            (geteuid() != 0 ? " (run as root)" : "") +
            (xdp ? " (XDP mode needs Linux 5.18 or later)" : "");
    unload();
    return false;
  }
  return true;
}

AttachPrograms CaptureProgram::programs() const {
  AttachPrograms progs;
  if (!skel_) return progs;
  progs.tc_ingress_fd = bpf_program__fd(skel_->progs.l7tap_ingress);
  progs.tc_egress_fd = bpf_program__fd(skel_->progs.l7tap_egress);
  progs.xdp_fd = bpf_program__fd(skel_->progs.l7tap_xdp);
  return progs;
}

CaptureMaps CaptureProgram::maps() const {
  CaptureMaps m;
  if (!skel_) return m;
  m.events = bpf_map__fd(skel_->maps.events);
  m.flows = bpf_map__fd(skel_->maps.flows);
  m.capture_ctl = bpf_map__fd(skel_->maps.capture_ctl);
  m.frame_walk = bpf_map__fd(skel_->maps.frame_walk);
  m.tunnels = bpf_map__fd(skel_->maps.tunnels);
  m.counters = bpf_map__fd(skel_->maps.counters);
  return m;
}

KernelCounters CaptureProgram::counters() const {
  KernelCounters total;
  if (!skel_) return total;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return total;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  const int fd = bpf_map__fd(skel_->maps.counters);
  for (uint32_t i = 0; i < L7TAP_CNT_MAX; ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) total.value[i] += v;
  }
  return total;
}

void CaptureProgram::readCaptureStats(CaptureStats& out) const {
  const KernelCounters k = counters();
  static_assert(sizeof out.value == sizeof k.value);
  std::memcpy(out.value, k.value, sizeof out.value);
}

}  // namespace l7tap
