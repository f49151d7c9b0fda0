#include "apptrace/app_tracer.h"

#include <bpf/libbpf.h>

#include <span>

namespace l7tap {

AppTracer::~AppTracer() { stop(); }

bool AppTracer::start(const TraceProgramConfig& config, int64_t mono_to_real_ns, Handler handler,
                      std::string& error) {
  stop();
  if (!program_.load(config, error)) return false;
  ring_ = ring_buffer__new(program_.ringFd(), onSample, this, nullptr);
  if (!ring_) {
    error = "function tracing: cannot read its ring buffer";
    program_.unload();
    return false;
  }
  handler_ = std::move(handler);
  mono_to_real_ns_ = mono_to_real_ns;
  return true;
}

bool AppTracer::resolve(const std::string& path, const std::vector<std::string>& patterns,
                        const std::vector<std::string>& usdt, std::vector<FunctionTarget>& targets,
                        std::string& error) {
  targets.clear();
  if (!patterns.empty() && !resolveFunctions(path, patterns, targets, error)) return false;
  for (const std::string& spec : usdt) {
    FunctionTarget target;
    if (!resolveUsdt(path, spec, target, error)) return false;
    targets.push_back(std::move(target));
  }
  return true;
}

bool AppTracer::attach(const std::string& path, pid_t pid,
                       const std::vector<FunctionTarget>& targets, std::vector<uint16_t>& rows,
                       std::string& error) {
  const bool again = !rows.empty();
  for (size_t i = 0; i < targets.size(); ++i) {
    const FunctionTarget& target = targets[i];
    if (again) {
      if (i >= rows.size() || !program_.attachAgain(path, pid, target, rows[i], error))
        return false;
      continue;
    }
    uint16_t index = 0;
    if (!program_.attach(path, pid, target, index, error)) return false;
    rows.push_back(index);
    // The program numbers targets in attach order: a name per index.
    if (index >= functions_.size()) functions_.resize(index + 1u);
    functions_[index] = target.name;
  }
  return true;
}

int AppTracer::fd() const { return ring_ ? ring_buffer__epoll_fd(ring_) : -1; }

void AppTracer::consume() {
  if (ring_) ring_buffer__consume(ring_);
}

void AppTracer::stop() {
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
  program_.unload();
}

AppTracerStats AppTracer::stats() const {
  AppTracerStats s = stats_;
  s.kernel = program_.counters();
  return s;
}

int AppTracer::onSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<AppTracer*>(ctx);
  CallEvent call;
  if (!decodeCallEvent(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size),
                       self->mono_to_real_ns_, call) ||
      call.function >= self->functions_.size()) {
    ++self->stats_.malformed;
    return 0;
  }
  ++self->stats_.events_read;
  self->handler_(call);
  return 0;
}

}  // namespace l7tap
