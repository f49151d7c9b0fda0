#include "uprobes/tls_capture.h"

#include <bpf/libbpf.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace l7tap {

TlsCapture::~TlsCapture() { stop(); }

void TlsCapture::stop() {
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
  discovery_.reset();
  streams_.reset();
  program_.unload();
}

bool TlsCapture::start(const TlsCaptureConfig& config, Pipeline& pipeline, int64_t mono_to_real_ns,
                       std::string& error) {
  stop();
  TlsProgramConfig program;
  program.ring_bytes = config.ring_bytes;
  program.wakeup_bytes = config.wakeup_bytes;
  program.quiet_load = config.quiet_load;
  program.pids = config.pids;
  if (!program_.load(program, error)) {
    error = "TLS uprobes: " + error + " (--no-tls-uprobes goes without them)";
    return false;
  }
  ring_ = ring_buffer__new(program_.ringFd(), onSample, this, nullptr);
  if (!ring_) {
    error = std::string("TLS uprobes: ring buffer: ") + std::strerror(errno);
    program_.unload();
    return false;
  }
  all_namespaces_ = config.all_namespaces;
  streams_ = std::make_unique<PlaintextStreams>(pipeline, mono_to_real_ns, config.streams);
  LibraryDiscovery::Options options;
  options.proc = config.proc;
  options.pids = config.pids;
  options.full_scan_interval_ns = config.full_scan_interval_ns;
  if (!all_namespaces_) {
    options.in_scope = [this, proc = config.proc](uint32_t pid) {
      struct stat st;
      const std::string ns = proc + "/" + std::to_string(pid) + "/ns/net";
      return stat(ns.c_str(), &st) == 0 && allowed_netns_.contains(st.st_ino);
    };
  }
  discovery_ =
      std::make_unique<LibraryDiscovery>(static_cast<TlsFileAttacher&>(*this), std::move(options));
  for (const std::string& path : config.binaries) discovery_->addFile(path);
  return true;
}

int TlsCapture::fd() const { return ring_ ? ring_buffer__epoll_fd(ring_) : -1; }

void TlsCapture::consume() {
  if (ring_) ring_buffer__consume(ring_);
}

void TlsCapture::housekeeping(uint64_t mono_now_ns) {
  if (!ring_) return;
  discovery_->tick(mono_now_ns);
  streams_->expire(mono_now_ns);
}

TlsFileAttacher::Result TlsCapture::attach(TlsFileKind kind, const MappedFile& file,
                                           std::string& error) {
  TlsProgram::Attach attached;
  if (kind == TlsFileKind::kGo) {
    GoTlsTarget target;
    if (!analyseGoBinary(file.open_path, target, error)) {
      return target.without_crypto_tls ? Result::kSkipped : Result::kFailed;
    }
    attached = program_.attachGo(file.open_path, target, error);
  } else {
    attached = program_.attachOpenSsl(file.open_path, error);
  }
  switch (attached) {
    case TlsProgram::Attach::kAttached:
      return Result::kAttached;
    case TlsProgram::Attach::kAlready:
      return Result::kAlready;
    case TlsProgram::Attach::kFailed:
      break;
  }
  // The program names the path it opened (/proc/PID/root/...); the line
  // names the file as the process maps it.
  if (error.starts_with(file.open_path + ": ")) error.erase(0, file.open_path.size() + 2);
  return Result::kFailed;
}

int TlsCapture::onSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<TlsCapture*>(ctx);
  self->stats_.events_read++;
  // The sample is borrowed for this call only; the streams copy what they hold.
  TlsEvent event;
  const TlsEventKind kind = decodeTlsEvent(data, size, event);
  switch (kind) {
    case TlsEventKind::kData:
    case TlsEventKind::kClose:
      // The probes fire in every process that maps the library; the
      // records are of the namespaces the capture observes.
      if (!self->all_namespaces_ && !self->allowed_netns_.contains(event.netns_ino)) {
        self->stats_.out_of_scope++;
        break;
      }
      self->streams_->onEvent(kind, event);
      break;
    case TlsEventKind::kExec:
      // The old image's TLS sessions are gone; the new one may map libssl.
      self->stats_.execs++;
      self->streams_->endProcess(event.tgid, event.ts_ns);
      self->discovery_->onExec(event.tgid, event.ts_ns);
      break;
    case TlsEventKind::kMalformed:
      self->stats_.malformed++;
      break;
    case TlsEventKind::kOtherKind:
      self->stats_.other_kinds++;
      break;
  }
  return 0;
}

void TlsCapture::allowNetns(uint32_t ifindex, uint64_t netns_inode) {
  forgetInterface(ifindex);
  netns_of_interface_[ifindex] = netns_inode;
  if (allowed_netns_[netns_inode]++ == 0 && discovery_) discovery_->rescanSoon();
}

void TlsCapture::forgetInterface(uint32_t ifindex) {
  auto it = netns_of_interface_.find(ifindex);
  if (it == netns_of_interface_.end()) return;
  auto allowed = allowed_netns_.find(it->second);
  if (allowed != allowed_netns_.end() && --allowed->second == 0) allowed_netns_.erase(allowed);
  netns_of_interface_.erase(it);
}

TlsCaptureStats TlsCapture::stats() const {
  TlsCaptureStats s = stats_;
  if (ring_) {
    s.kernel = program_.counters();
    s.streams = streams_->stats();
    s.discovery = discovery_->stats();
  }
  return s;
}

}  // namespace l7tap
