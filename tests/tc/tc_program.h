// Loads the real TC program from its embedded skeleton and runs it on built
// frames with BPF_PROG_TEST_RUN (Katran's BpfTester, in small): set the
// load-time config, run a frame through l7tap_ingress or l7tap_egress (or the
// XDP program, l7tap_xdp, loaded here as a plain XDP program), drain the ring
// buffer, read the counters and the flows map.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tc/l7tap_abi.h"
// The skeleton refers to struct l7tap_config: include it after the ABI.
#include "l7tap_tc.skel.h"

namespace l7tap::testing {

/// One ring-buffer record, copied out of the borrowed sample.
struct Event {
  uint8_t kind = 0;
  size_t sample_size = 0;
  l7tap_segment_event segment{};  // kind == L7TAP_EVENT_SEGMENT (data up to captured_len)
  std::vector<uint8_t> data;      // segment: the captured bytes

  const l7tap_segment_event& seg() const { return segment; }
};

struct TcConfig {
  uint32_t window = 1024;
  uint32_t wakeup_bytes = 0;
  std::vector<uint16_t> ports;
  std::vector<std::pair<std::string, uint8_t>> cidrs;  // address, prefix of its own family
  uint32_t ring_bytes = 0;                             // 0: the program's default
  bool load_xdp = true;  // also load l7tap_xdp (its autoload is off by default)
  // l7tap_config.frame_walk: arm the HTTP/2 frame walk on a direction's first
  // payload when it starts HTTP/2 (the daemon sets it with capture control).
  bool frame_walk = false;
};

class TcProgram {
 public:
  /// Opens, configures and loads the skeleton; null with `error` set on
  /// failure.
  static std::unique_ptr<TcProgram> load(const TcConfig& cfg, std::string* error) {
    std::unique_ptr<TcProgram> p(new TcProgram);
    p->skel_ = l7tap_tc__open();
    if (p->skel_ == nullptr) {
      *error = "l7tap_tc__open: " + std::string(strerror(errno));
      return nullptr;
    }
    l7tap_config& c = p->skel_->rodata->l7tap_cfg;
    c.window = cfg.window;
    c.wakeup_bytes = cfg.wakeup_bytes;
    c.frame_walk = cfg.frame_walk ? 1 : 0;
    for (size_t i = 0; i < cfg.ports.size() && i < L7TAP_MAX_FILTER_PORTS; ++i) {
      c.ports[i] = cfg.ports[i];
    }
    for (const auto& [addr, prefix] : cfg.cidrs) {
      auto& slot = c.cidrs[c.num_cidrs++];
      std::memset(slot.addr, 0, sizeof(slot.addr));
      if (inet_pton(AF_INET, addr.c_str(), slot.addr + 12) == 1) {
        slot.addr[10] = slot.addr[11] = 0xff;
        slot.prefix_len = static_cast<uint8_t>(96 + prefix);
      } else if (inet_pton(AF_INET6, addr.c_str(), slot.addr) == 1) {
        slot.prefix_len = prefix;
      } else {
        *error = "bad CIDR address " + addr;
        return nullptr;
      }
    }
    if (cfg.ring_bytes != 0) bpf_map__set_max_entries(p->skel_->maps.events, cfg.ring_bytes);
    bpf_program__set_autoload(p->skel_->progs.l7tap_xdp, cfg.load_xdp);
    if (int err = l7tap_tc__load(p->skel_); err != 0) {
      *error = "l7tap_tc__load: " + std::string(strerror(-err));
      return nullptr;
    }
    p->ring_ = ring_buffer__new(bpf_map__fd(p->skel_->maps.events), &TcProgram::onSample, p.get(),
                                nullptr);
    if (p->ring_ == nullptr) {
      *error = "ring_buffer__new: " + std::string(strerror(errno));
      return nullptr;
    }
    return p;
  }

  ~TcProgram() {
    if (ring_ != nullptr) ring_buffer__free(ring_);
    if (skel_ != nullptr) l7tap_tc__destroy(skel_);
  }
  TcProgram(const TcProgram&) = delete;
  TcProgram& operator=(const TcProgram&) = delete;

  struct RunResult {
    int err = 0;          // bpf_prog_test_run_opts' result
    uint32_t retval = 0;  // the program's return value
  };

  /// Runs one frame through the ingress or egress program. ifindex 0 (or 1)
  /// is the loopback device; any other must exist in this network namespace.
  /// ingress_ifindex: the interface the skb came in on (a forwarded one's,
  /// on egress); 0 on ingress: ifindex.
  RunResult run(uint8_t direction, const std::vector<uint8_t>& frame, uint32_t ifindex = 0,
                uint32_t gso_segs = 0, int repeat = 1, uint32_t ingress_ifindex = 0) {
    bpf_program* prog =
        direction == L7TAP_DIR_INGRESS ? skel_->progs.l7tap_ingress : skel_->progs.l7tap_egress;
    __sk_buff ctx{};
    ctx.ifindex = ifindex;
    ctx.ingress_ifindex =
        ingress_ifindex == 0 && direction == L7TAP_DIR_INGRESS ? ifindex : ingress_ifindex;
    ctx.gso_segs = gso_segs;
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<__u32>(frame.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof(ctx);
    opts.repeat = repeat;
    RunResult r;
    r.err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
    if (r.err != 0) r.err = -errno;
    r.retval = opts.retval;
    return r;
  }

  /// Runs one frame through the XDP program. ifindex 0 is the loopback
  /// device (BPF_PROG_TEST_RUN's default receive queue); any other must exist
  /// in this network namespace.
  RunResult runXdp(const std::vector<uint8_t>& frame, uint32_t ifindex = 0) {
    xdp_md ctx{};
    ctx.data_end = static_cast<__u32>(frame.size());
    ctx.ingress_ifindex = ifindex;
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<__u32>(frame.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof(ctx);
    opts.repeat = 1;
    RunResult r;
    r.err = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.l7tap_xdp), &opts);
    if (r.err != 0) r.err = -errno;
    r.retval = opts.retval;
    return r;
  }

  /// Consumes every record in the ring buffer.
  std::vector<Event> drain() {
    events_.clear();
    ring_buffer__consume(ring_);
    return std::move(events_);
  }

  /// Waits up to timeout_ms for a wakeup, then consumes what the wakeup
  /// announced (nothing when the program asked for no wakeup).
  std::vector<Event> poll(int timeout_ms) {
    events_.clear();
    ring_buffer__poll(ring_, timeout_ms);
    return std::move(events_);
  }

  /// A counter summed over all CPUs.
  uint64_t counter(l7tap_counter idx) const {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> values(static_cast<size_t>(ncpu));
    uint32_t key = idx;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.counters), &key, values.data()) != 0) {
      return ~0ull;
    }
    uint64_t sum = 0;
    for (uint64_t v : values) sum += v;
    return sum;
  }

  std::optional<l7tap_flow_counters> flow(const l7tap_flow_key& canonical) const {
    l7tap_flow_counters fc{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.flows), &canonical, &fc) != 0) {
      return std::nullopt;
    }
    return fc;
  }

  size_t flowCount() const {
    size_t n = 0;
    l7tap_flow_key key{}, next{};
    const int fd = bpf_map__fd(skel_->maps.flows);
    for (const void* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key) {
      key = next;
      ++n;
    }
    return n;
  }

  /// The tunnels map's entry of a flow (outer addresses in canonical order).
  std::optional<l7tap_tunnel> tunnel(const l7tap_flow_key& canonical) const {
    l7tap_tunnel t{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.tunnels), &canonical, &t) != 0) {
      return std::nullopt;
    }
    return t;
  }
  int tunnelsFd() const { return bpf_map__fd(skel_->maps.tunnels); }
  int setCaptureCtl(const l7tap_flow_key& canonical, const l7tap_capture_ctl& ctl) {
    return bpf_map_update_elem(bpf_map__fd(skel_->maps.capture_ctl), &canonical, &ctl, BPF_ANY);
  }

  std::optional<l7tap_capture_ctl> captureCtl(const l7tap_flow_key& canonical) const {
    l7tap_capture_ctl ctl{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.capture_ctl), &canonical, &ctl) != 0) {
      return std::nullopt;
    }
    return ctl;
  }

  /// Writes the HTTP/2 frame walk of one direction of a flow (dir: 0 from
  /// the canonical key's source, as in struct l7tap_flow_counters).
  int setFrameWalk(const l7tap_flow_key& canonical, uint32_t dir, const l7tap_frame_walk& w) {
    const l7tap_frame_walk_key key = frameWalkKey(canonical, dir);
    return bpf_map_update_elem(bpf_map__fd(skel_->maps.frame_walk), &key, &w, BPF_ANY);
  }

  std::optional<l7tap_frame_walk> frameWalk(const l7tap_flow_key& canonical, uint32_t dir) const {
    const l7tap_frame_walk_key key = frameWalkKey(canonical, dir);
    l7tap_frame_walk w{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.frame_walk), &key, &w) != 0) {
      return std::nullopt;
    }
    return w;
  }

  /// Arms the frame walk of one direction at a frame boundary, as the daemon
  /// does: capture control `ctl` with frame_walk set, and the direction's
  /// walk entry armed at `frame_seq`.
  int armFrameWalk(const l7tap_flow_key& canonical, uint32_t dir, uint32_t frame_seq,
                   l7tap_capture_ctl ctl = {}) {
    ctl.frame_walk = 1;
    if (int err = setCaptureCtl(canonical, ctl); err != 0) return err;
    l7tap_frame_walk w{};
    w.state = L7TAP_WALK_ARMED;
    w.next_hdr = frame_seq;
    return setFrameWalk(canonical, dir, w);
  }

  int xdpFd() const { return bpf_program__fd(skel_->progs.l7tap_xdp); }

  int progFd(uint8_t direction) const {
    return bpf_program__fd(direction == L7TAP_DIR_INGRESS ? skel_->progs.l7tap_ingress
                                                          : skel_->progs.l7tap_egress);
  }

 private:
  TcProgram() = default;

  static l7tap_frame_walk_key frameWalkKey(const l7tap_flow_key& canonical, uint32_t dir) {
    l7tap_frame_walk_key key{};
    key.flow = canonical;
    key.dir = dir;
    return key;
  }

  static int onSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<TcProgram*>(ctx);
    Event e;
    e.sample_size = size;
    if (size < sizeof(l7tap_event_header)) return 0;
    e.kind = static_cast<const l7tap_event_header*>(data)->kind;
    if (e.kind == L7TAP_EVENT_SEGMENT && size >= L7TAP_SEGMENT_EVENT_HEADER_SIZE) {
      std::memcpy(&e.segment, data, L7TAP_SEGMENT_EVENT_HEADER_SIZE);
      const size_t n = e.segment.captured_len;
      if (n <= L7TAP_MAX_EVENT_PAYLOAD && L7TAP_SEGMENT_EVENT_HEADER_SIZE + n <= size) {
        const auto* bytes = static_cast<const uint8_t*>(data) + L7TAP_SEGMENT_EVENT_HEADER_SIZE;
        e.data.assign(bytes, bytes + n);
        std::memcpy(e.segment.data, bytes, n);
      }
    }
    self->events_.push_back(std::move(e));
    return 0;
  }

  l7tap_tc* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::vector<Event> events_;
};

/// The canonical form of a key: the endpoint that compares lower (address
/// bytes, then port) is the source. Computed independently of the program.
inline l7tap_flow_key canonicalKey(const l7tap_flow_key& k) {
  const int cmp = std::memcmp(k.saddr, k.daddr, 16);
  if (cmp < 0 || (cmp == 0 && k.sport <= k.dport)) return k;
  l7tap_flow_key c{};
  std::memcpy(c.saddr, k.daddr, 16);
  std::memcpy(c.daddr, k.saddr, 16);
  c.sport = k.dport;
  c.dport = k.sport;
  c.family = k.family;
  return c;
}

inline bool keysEqual(const l7tap_flow_key& a, const l7tap_flow_key& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

// Any device of this network namespace other than the loopback.
inline uint32_t otherIfindex() {
  uint32_t found = 0;
  if (struct if_nameindex* list = if_nameindex()) {
    for (struct if_nameindex* i = list; i->if_index != 0; ++i) {
      if (i->if_index > 1) {
        found = i->if_index;
        break;
      }
    }
    if_freenameindex(list);
  }
  return found;
}

}  // namespace l7tap::testing
