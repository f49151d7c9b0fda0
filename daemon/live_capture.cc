#include "daemon/live_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "l7tap_tc.skel.h"

namespace l7tap {

namespace {

bool isLoopback(const std::string& name) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  const bool loopback = ioctl(fd, SIOCGIFFLAGS, &req) == 0 && (req.ifr_flags & IFF_LOOPBACK);
  close(fd);
  return loopback;
}

constexpr uint64_t kNsPerSec = 1000ull * 1000 * 1000;
// Kernel flow entries: ended ones are removed after this (late ACKs and
// retransmitted FINs still find them), idle ones after the reassembly's
// idle timeout.
constexpr uint64_t kEndedFlowGraceNs = 30 * kNsPerSec;  // well past the close delay
constexpr uint64_t kIdleFlowNs = 300 * kNsPerSec;
constexpr uint32_t kMaxSweepPerRound = 65536;

uint64_t clockNs(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

// libbpf's own messages: warnings and errors only, prefixed like ours.
int libbpfPrint(libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || level == LIBBPF_INFO) return 0;
  std::fputs("l7tap: libbpf: ", stderr);
  return std::vfprintf(stderr, format, args);
}

// Closes a file descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

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
  };
  return index >= 0 && index < L7TAP_CNT_MAX ? kNames[index] : "?";
}

LiveCapture::LiveCapture() = default;

LiveCapture::~LiveCapture() { stop(); }

void LiveCapture::stop() {
  attached_.clear();  // each attachment detaches itself
  locks_.clear();
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
  if (skel_) l7tap_tc__destroy(skel_);
  skel_ = nullptr;
}

bool LiveCapture::start(const LiveConfig& config, std::string& error) {
  config_ = config;
  libbpf_set_print(libbpfPrint);
  if (config.window == 0 || config.window > L7TAP_MAX_EVENT_PAYLOAD) {
    error = "the window must be 1.." + std::to_string(L7TAP_MAX_EVENT_PAYLOAD) + " bytes live";
    return false;
  }
  if (config.ports.size() > L7TAP_MAX_FILTER_PORTS ||
      config.cidrs.size() > L7TAP_MAX_FILTER_CIDRS) {
    error = "at most " + std::to_string(L7TAP_MAX_FILTER_PORTS) + " ports and " +
            std::to_string(L7TAP_MAX_FILTER_CIDRS) + " CIDRs";
    return false;
  }
  const bool xdp = config.mode == AttachMode::kXdp;
  // XDP mode loads the XDP program alone, the other modes the TC programs.
  auto open = [&]() -> bool {
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
    bpf_program__set_autoload(skel_->progs.l7tap_xdp, xdp);
    bpf_program__set_autoload(skel_->progs.l7tap_ingress, !xdp);
    bpf_program__set_autoload(skel_->progs.l7tap_egress, !xdp);
    return true;
  };
  bool loaded = false;
  if (xdp) {
    // First as an freplace extension, which libxdp's dispatcher can share
    // with other XDP programs (see xdp_attachment.h). Kernels or security
    // policies that refuse extension programs get the plain XDP program,
    // attached alone through an XDP link.
    if (!open()) return false;
    XdpExtensionTarget target;
    std::string why;
    if (target.prepare(skel_->progs.l7tap_xdp, why)) {
      libbpf_set_print(nullptr);  // a refusal is expected on some kernels: reported below
      const int rc = l7tap_tc__load(skel_);
      libbpf_set_print(libbpfPrint);
      loaded = rc == 0;
      if (!loaded)
        why = std::string("the kernel refused it as an freplace extension: ") + std::strerror(-rc);
    }
    if (!loaded) {
      std::fprintf(stderr,
                   "l7tap: XDP: no libxdp dispatcher (%s); the XDP program is attached alone, "
                   "through an XDP link: no other XDP program can share the interface\n",
                   why.c_str());
      l7tap_tc__destroy(skel_);
      skel_ = nullptr;
    }
  }
  if (!loaded) {
    if (!open()) return false;
    if (int rc = l7tap_tc__load(skel_); rc != 0) {
      error = std::string("loading the BPF program: ") + std::strerror(-rc) +
              (geteuid() != 0 ? " (run as root)" : "") +
              (xdp ? " (XDP mode needs Linux 5.18 or later)" : "");
      return false;
    }
  }
  ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), onRingEvent, this, nullptr);
  if (!ring_) {
    error = std::string("ring buffer: ") + std::strerror(errno);
    return false;
  }
  mono_to_real_ns_ = static_cast<int64_t>(clockNs(CLOCK_REALTIME)) -
                     static_cast<int64_t>(clockNs(CLOCK_MONOTONIC));
  watcher_ = std::make_unique<InterfaceWatcher>(config.interfaces);
  if (!watcher_->start(error)) return false;
  // Two daemons on one interface would each report its traffic (tcx), or
  // the second would remove the first's filters (clsact): a start on an
  // interface another l7tap captures is refused as a whole.
  const std::vector<InterfaceEvent> now = watcher_->current();
  std::map<int, InterfaceLock> taken;
  for (const InterfaceEvent& ev : now) {
    if (!ev.present) continue;
    pid_t holder = 0;
    std::string why;
    InterfaceLock lock;
    switch (lock.acquire(ev.ifindex, holder, why)) {
      case InterfaceLock::Result::kTaken:
        taken.emplace(ev.ifindex, std::move(lock));
        break;
      case InterfaceLock::Result::kBusy:
        error = ev.name + " (ifindex " + std::to_string(ev.ifindex) +
                ") is captured by another l7tap" +
                (holder ? " (pid " + std::to_string(holder) + ")" : std::string()) +
                "; one l7tap per interface: stop it first or leave this interface out";
        return false;
      case InterfaceLock::Result::kError:
        std::fprintf(stderr, "l7tap: %s: cannot lock it (%s); attaching without the lock\n",
                     ev.name.c_str(), why.c_str());
        break;
    }
  }
  for (const InterfaceEvent& ev : now) {
    auto it = taken.find(ev.ifindex);
    attachTo(ev, it == taken.end() ? InterfaceLock{} : std::move(it->second));
  }
  if (attached_.empty()) {
    std::fprintf(stderr, "l7tap: no interface matches yet; waiting for one to appear\n");
  }
  return true;
}

void LiveCapture::attachTo(const InterfaceEvent& ev, InterfaceLock lock) {
  if (!ev.present) {
    if (attached_.erase(ev.ifindex)) {
      std::fprintf(stderr, "l7tap: %s (ifindex %d) is gone\n", ev.name.c_str(), ev.ifindex);
    }
    locks_.erase(ev.ifindex);
    return;
  }
  if (attached_.count(ev.ifindex)) return;  // already attached; a state change
  if (!lock.held()) {
    pid_t holder = 0;
    std::string why;
    switch (lock.acquire(ev.ifindex, holder, why)) {
      case InterfaceLock::Result::kTaken:
        break;
      case InterfaceLock::Result::kBusy:
        std::fprintf(stderr,
                     "l7tap: %s (ifindex %d) is captured by another l7tap (pid %d); not attached\n",
                     ev.name.c_str(), ev.ifindex, static_cast<int>(holder));
        return;
      case InterfaceLock::Result::kError:
        std::fprintf(stderr, "l7tap: %s: cannot lock it (%s); attaching without the lock\n",
                     ev.name.c_str(), why.c_str());
        break;
    }
  }
  InterfaceAttachment attachment;
  AttachPrograms progs;
  // Every packet on a loopback device passes its egress and then its
  // ingress hook: attached to both, each would be reported twice.
  const bool loopback = isLoopback(ev.name);
  progs.tc_ingress_fd = loopback ? -1 : bpf_program__fd(skel_->progs.l7tap_ingress);
  progs.tc_egress_fd = bpf_program__fd(skel_->progs.l7tap_egress);
  progs.xdp_fd = bpf_program__fd(skel_->progs.l7tap_xdp);
  std::string error;
  if (!attachment.attach(ev.ifindex, progs, config_.mode, error)) {
    std::fprintf(stderr, "l7tap: %s: %s\n", ev.name.c_str(), error.c_str());
    return;
  }
  std::fprintf(stderr, "l7tap: attached to %s (ifindex %d, %s)\n", ev.name.c_str(), ev.ifindex,
               attachment.description());
  attached_.emplace(ev.ifindex, std::move(attachment));
  if (lock.held()) locks_[ev.ifindex] = std::move(lock);
}

int LiveCapture::onRingEvent(void* ctx, void* data, size_t size) {
  return static_cast<LiveCapture*>(ctx)->handleEvent(data, size);
}

int LiveCapture::handleEvent(const void* data, size_t size) {
  events_read_++;
  if (size < sizeof(l7tap_event_header)) {
    malformed_events_++;
    return 0;
  }
  const auto* hdr = static_cast<const l7tap_event_header*>(data);
  const auto* ev = static_cast<const l7tap_segment_event*>(data);
  if (hdr->kind != L7TAP_EVENT_SEGMENT || size < L7TAP_SEGMENT_EVENT_HEADER_SIZE ||
      ev->captured_len > L7TAP_MAX_EVENT_PAYLOAD ||
      size < L7TAP_SEGMENT_EVENT_HEADER_SIZE + ev->captured_len) {
    malformed_events_++;
    return 0;
  }
  // The sample is borrowed for this call only; the pipeline copies what it keeps.
  SegmentEvent seg;
  seg.ts_ns = static_cast<uint64_t>(static_cast<int64_t>(hdr->ts_ns) + mono_to_real_ns_);
  seg.ifindex = hdr->ifindex;
  seg.key = ev->key;
  seg.seq = ev->seq;
  seg.ack = ev->ack;
  seg.payload_len = ev->payload_len;
  seg.payload_offset = ev->data_offset;
  seg.tcp_window = ev->tcp_window;
  seg.tcp_flags = ev->tcp_flags;
  seg.capture_flags = ev->capture_flags;
  seg.payload = {ev->data, ev->captured_len};
  pipeline_->onSegment(seg);
  return 0;
}

void LiveCapture::sweepFlows(uint64_t now_mono_ns) {
  const int fd = bpf_map__fd(skel_->maps.flows);
  l7tap_flow_key key, next;
  l7tap_flow_counters value;
  std::vector<l7tap_flow_key> stale;
  bool first = true;
  for (uint32_t n = 0; n < kMaxSweepPerRound; ++n) {
    if (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) != 0) break;
    first = false;
    key = next;
    if (bpf_map_lookup_elem(fd, &key, &value) != 0) continue;
    const uint64_t age = now_mono_ns > value.last_ns ? now_mono_ns - value.last_ns : 0;
    if ((value.ended && age > kEndedFlowGraceNs) || age > kIdleFlowNs) stale.push_back(key);
  }
  for (const auto& k : stale) bpf_map_delete_elem(fd, &k);
}

bool LiveCapture::run(Pipeline& pipeline, std::string& error,
                      const std::function<bool(std::string&)>& healthy) {
  pipeline_ = &pipeline;
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  Fd sig{signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)};
  Fd timer{timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)};
  Fd ep{epoll_create1(EPOLL_CLOEXEC)};
  if (sig.fd < 0 || timer.fd < 0 || ep.fd < 0) {
    error = std::string("event loop: ") + std::strerror(errno);
    return false;
  }
  const long interval_ns = static_cast<long>(config_.drain_interval_ms) * 1000000L;
  itimerspec its{};
  its.it_interval.tv_sec = interval_ns / 1000000000L;
  its.it_interval.tv_nsec = interval_ns % 1000000000L;
  its.it_value = its.it_interval;
  timerfd_settime(timer.fd, 0, &its, nullptr);
  const int ring_fd = ring_buffer__epoll_fd(ring_);
  for (int fd : {sig.fd, timer.fd, ring_fd, watcher_->fd()}) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    epoll_ctl(ep.fd, EPOLL_CTL_ADD, fd, &e);
  }
  uint64_t next_housekeeping = clockNs(CLOCK_MONOTONIC) + kNsPerSec;
  uint64_t next_interim = clockNs(CLOCK_MONOTONIC) + config_.interim_interval_ns;
  for (bool running = true; running;) {
    epoll_event events[8];
    const int n = epoll_wait(ep.fd, events, 8, 1000);
    if (n < 0 && errno != EINTR) {
      error = std::string("epoll: ") + std::strerror(errno);
      return false;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == sig.fd) {
        running = false;
      } else if (fd == timer.fd) {
        uint64_t expirations;
        while (read(timer.fd, &expirations, sizeof expirations) > 0) {
        }
      } else if (fd == watcher_->fd()) {
        watcher_->drain([this](const InterfaceEvent& ev) { attachTo(ev); });
      }
    }
    // Wake-ups are batched (BPF_RB_NO_WAKEUP below a byte threshold), so the
    // timer drains whatever is queued whether or not the ring woke us.
    ring_buffer__consume(ring_);
    if (healthy && !healthy(error)) return false;
    const uint64_t now = clockNs(CLOCK_MONOTONIC);
    if (now >= next_housekeeping) {
      next_housekeeping = now + kNsPerSec;
      pipeline.expire(static_cast<uint64_t>(static_cast<int64_t>(now) + mono_to_real_ns_));
      sweepFlows(now);
    }
    if (config_.interim_interval_ns && now >= next_interim) {
      next_interim = now + config_.interim_interval_ns;
      pipeline.reportInterim(static_cast<uint64_t>(static_cast<int64_t>(now) + mono_to_real_ns_),
                             config_.interim_interval_ns);
    }
  }
  ring_buffer__consume(ring_);  // what was queued before the signal
  return true;
}

void LiveCapture::skip(const CanonicalFlowKey& k, uint32_t dir, uint32_t begin, uint32_t end) {
  if (!skel_) return;
  const int fd = bpf_map__fd(skel_->maps.capture_ctl);
  l7tap_capture_ctl ctl{};
  bpf_map_lookup_elem(fd, &k, &ctl);  // keep the other direction's range
  ctl.skip_start[dir & 1] = begin;
  ctl.skip_end[dir & 1] = end;
  if (bpf_map_update_elem(fd, &k, &ctl, BPF_ANY) != 0) capture_control_failures_++;
}

void LiveCapture::countOnly(const CanonicalFlowKey& k) {
  if (!skel_) return;
  l7tap_capture_ctl ctl{};
  ctl.l4_only = 1;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.capture_ctl), &k, &ctl, BPF_ANY) != 0) {
    capture_control_failures_++;
  }
}

void LiveCapture::walkFrames(const CanonicalFlowKey& key, uint32_t dir, uint32_t frame_seq) {
  if (!skel_) return;
  // The direction's own entry: the kernel updates the other direction's
  // walk in place, so it is never written from here while it runs.
  l7tap_frame_walk_key wk{};
  wk.flow = key;
  wk.dir = dir & 1;
  l7tap_frame_walk walk{};
  walk.state = L7TAP_WALK_ARMED;
  walk.next_hdr = frame_seq;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.frame_walk), &wk, &walk, BPF_ANY) != 0) {
    capture_control_failures_++;
    return;
  }
  const int fd = bpf_map__fd(skel_->maps.capture_ctl);
  l7tap_capture_ctl ctl{};
  bpf_map_lookup_elem(fd, &wk.flow, &ctl);
  if (ctl.frame_walk) return;
  ctl.frame_walk = 1;
  if (bpf_map_update_elem(fd, &wk.flow, &ctl, BPF_ANY) != 0) capture_control_failures_++;
}

void LiveCapture::forget(const CanonicalFlowKey& k) {
  if (!skel_) return;
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.capture_ctl), &k);
  l7tap_frame_walk_key wk{};
  wk.flow = k;
  for (wk.dir = 0; wk.dir < 2; ++wk.dir) {
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.frame_walk), &wk);
  }
}

bool LiveCapture::onClosing(const CanonicalFlowKey& key, uint32_t orig_dir,
                            ConnectionInfo::KernelCounts& kernel) {
  if (!skel_) return false;
  l7tap_flow_counters c;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.flows), &key, &c) != 0) return false;
  for (uint32_t side = 0; side < 2; ++side) {
    const uint32_t dir = orig_dir ^ side;
    kernel.packets[side] = c.packets[dir];
    kernel.bytes[side] = c.bytes[dir];
    kernel.retransmits[side] = c.retransmits[dir];
    kernel.zero_windows[side] = c.zero_windows[dir];
  }
  return true;
}

KernelCounters LiveCapture::counters() const {
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

}  // namespace l7tap
