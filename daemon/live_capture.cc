#include "daemon/live_capture.h"

#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "daemon/event_loop.h"
#include "metadata/veth_peer.h"

namespace l7tap {

void LiveCapture::stop() {
  tls_.stop();
  if (apptrace_) apptrace_->stop();
  interfaces_.reset();  // each attachment detaches itself
  attacher_.reset();
  ring_.close();
  if (pipeline_) {
    pipeline_->setCloseHook(nullptr);
    pipeline_->setCaptureControl(nullptr);
    pipeline_->setCaptureStatsSource(nullptr);
  }
  hints_.reset();
  flows_.reset();
  program_.unload();
}

LiveCapture::Stats LiveCapture::stats() const {
  Stats s;
  s.kernel = program_.counters();
  s.ring = ring_.stats();
  s.hint_failures = hints_ ? hints_->failures() : 0;
  s.tls = tls_.running();
  s.tls_capture = tls_.stats();
  s.apptrace = apptrace_ && apptrace_->running();
  if (s.apptrace) s.apptrace_capture = apptrace_->stats();
  return s;
}

bool LiveCapture::start(const LiveConfig& config, Pipeline& pipeline, std::string& error,
                        AttachedInterfaces::Listener on_interface) {
  stop();
  config_ = config;
  pipeline_ = &pipeline;
  if (!program_.load(config, error)) return false;
  const CaptureMaps maps = program_.maps();
  mono_to_real_ns_ = monoToRealNs();
  if (!ring_.open(maps.events, pipeline, mono_to_real_ns_, error, maps.tunnels)) return false;
  pipeline.setCaptureStatsSource(&program_);
  flows_ = std::make_unique<KernelFlows>(maps.flows, config.idle_flow_ns);
  pipeline.setCloseHook(flows_.get());
  if (config.capture_control) {
    hints_ = std::make_unique<KernelCaptureHints>(maps.capture_ctl, maps.frame_walk);
    pipeline.setCaptureControl(hints_.get());
  }
  if (config.tls_uprobes && !startTls(config, pipeline, error)) return false;
  if (apptrace_) {
    apptrace_config_.wakeup_bytes = config.wakeup_bytes;
    apptrace_config_.proc = config.tls_proc;
    if (!apptrace_->start(apptrace_config_, mono_to_real_ns_, error)) return false;
  }
  attacher_ = std::make_unique<ProgramAttacher>(program_.programs(), config.mode);
  // TLS plaintext is reported for the namespaces the attached interfaces carry.
  auto follow = [this, on_interface = std::move(on_interface)](const InterfaceEvent& iface,
                                                               bool attached) {
    const uint32_t ifindex = static_cast<uint32_t>(iface.ifindex);
    if (attached) {
      const uint64_t inode = tls_.running() || apptrace_ ? carriedNetns(ifindex) : 0;
      if (inode && tls_.running()) tls_.allowNetns(ifindex, inode);
      if (inode && apptrace_) apptrace_->allowNetns(ifindex, inode);
    } else {
      if (tls_.running()) tls_.forgetInterface(ifindex);
      if (apptrace_) apptrace_->forgetInterface(ifindex);
    }
    if (on_interface) on_interface(iface, attached);
  };
  interfaces_ = std::make_unique<AttachedInterfaces>(config.interfaces, *attacher_, config.lock_dir,
                                                     std::move(follow));
  if (!interfaces_->start(error)) return false;
  // The attached interfaces made the TLS scope: what it maps is attached
  // before the caller says it is running.
  if (tls_.running()) tls_.scanNow(clockNs(CLOCK_MONOTONIC));
  if (apptrace_) apptrace_->scanNow();
  return true;
}

uint64_t LiveCapture::carriedNetns(uint32_t ifindex) const {
  // A veth's traffic is its peer's namespace's (a pod's); any other
  // interface's is this namespace's.
  const std::optional<metadata::LinkPeer> peer = metadata::queryLinkPeer(ifindex, nullptr);
  if (peer && peer->peer_netnsid) {
    const metadata::NetnsScanner scanner(config_.tls_proc);
    return metadata::netnsInodeOfNsid(*peer->peer_netnsid, scanner).value_or(0);
  }
  struct stat st;
  return stat("/proc/self/ns/net", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

bool LiveCapture::startTls(const LiveConfig& config, Pipeline& pipeline, std::string& error) {
  TlsCaptureConfig tls;
  tls.pids = config.tls_pids;
  tls.binaries = config.tls_binaries;
  tls.proc = config.tls_proc;
  tls.wakeup_bytes = config.wakeup_bytes;
  tls.all_namespaces = config.tls_all_processes || !config.tls_pids.empty();
  const bool asked_by_name = !config.tls_pids.empty() || !config.tls_binaries.empty();
  tls.quiet_load = !asked_by_name;
  std::string why;
  if (tls_.start(tls, pipeline, mono_to_real_ns_, why)) return true;
  // Asked for by name: the operator wants them. On by default: an agent
  // without the permission (CAP_PERFMON to load them) keeps doing what it did before.
  if (asked_by_name) {
    error = why;
    return false;
  }
  std::fprintf(stderr, "l7tap: tls: off: %s\n", why.c_str());
  return true;
}

bool LiveCapture::run(std::string& error, const std::function<bool(std::string&)>& healthy) {
  LoopFds loop;
  if (!loop.open(config_.drain_interval_ms, {ring_.fd(), interfaces_->fd()}, error)) return false;
  if (tls_.running()) loop.add(tls_.fd());
  if (apptrace_) loop.add(apptrace_->fd());
  uint64_t next_housekeeping = clockNs(CLOCK_MONOTONIC) + kNsPerSec;
  uint64_t next_interim = clockNs(CLOCK_MONOTONIC) + config_.interim_interval_ns;
  for (bool running = true; running;) {
    epoll_event events[8];
    const int n = epoll_wait(loop.ep.fd, events, 8, 1000);
    if (n < 0 && errno != EINTR) {
      error = std::string("epoll: ") + std::strerror(errno);
      return false;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == loop.sig.fd) {
        running = false;
      } else if (fd == loop.timer.fd) {
        loop.ackTimer();
      } else if (fd == interfaces_->fd()) {
        interfaces_->onReadable();
      }
    }
    // Wake-ups are batched (BPF_RB_NO_WAKEUP below a byte threshold), so the
    // timer drains whatever is queued whether or not the ring woke us.
    // Segments first: a TLS session's handshake (SYN, ClientHello) is queued
    // before its plaintext, and an exchange the plaintext completes in this
    // drain is written with the connection's interface and SNI. The
    // segments that end a connection cannot get ahead of its last
    // plaintext: a closing connection lingers (close_delay_ns).
    // Calls before both: a call's entry is queued before the response it
    // writes, so an exchange that ends while its call still runs finds the
    // call in flight in the linker, and waits for its return there.
    if (apptrace_) apptrace_->consume();
    ring_.consume();
    tls_.consume();
    const uint64_t now = clockNs(CLOCK_MONOTONIC);
    if (now >= next_housekeeping) {
      next_housekeeping = now + kNsPerSec;
      pipeline_->expire(wallClock(now));
      flows_->sweep(now);
      tls_.housekeeping(now);
      if (apptrace_) apptrace_->housekeeping(now);
    }
    if (config_.interim_interval_ns && now >= next_interim) {
      next_interim = now + config_.interim_interval_ns;
      pipeline_->reportInterim(wallClock(now), config_.interim_interval_ns);
    }
    // Last: a sink that buffers flushes here, what expiry wrote included.
    if (healthy && !healthy(error)) return false;
  }
  if (apptrace_) apptrace_->consume();  // what was queued before the signal
  ring_.consume();
  tls_.consume();
  return true;
}

}  // namespace l7tap
