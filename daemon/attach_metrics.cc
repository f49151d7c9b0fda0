#include "daemon/attach_metrics.h"

#include <array>
#include <cstdio>
#include <span>
#include <utility>

#include "metrics/exposition.h"

namespace l7tap {
namespace {

int64_t monotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The loop comes round at least every second (its epoll timeout); this
// much silence means it is stuck, not idle.
constexpr int64_t kPipelineStallNs = 30LL * 1000000000;

}  // namespace

AttachMetrics::AttachMetrics(const metrics::MetricsOptions& options)
    : address_(options.address), registry_(options.limits), heartbeat_ns_(monotonicNs()) {
  if (options.enabled()) {
    sink_.emplace(registry_, options);
    self_.emplace(registry_);
  }
}

void AttachMetrics::watch(const Pipeline& pipeline, const LiveCapture& live,
                          const JsonLinesSink* json, const JournaldSink* journal) {
  pipeline_ = &pipeline;
  live_ = &live;
  json_ = json;
  journal_ = journal;
}

void AttachMetrics::watchFunctions(const AppCapture& apptrace) {
  if (!self_) return;
  apptrace_ = &apptrace;
  functions_.emplace(registry_);
}

void AttachMetrics::watchPolicy(const RecordPolicySink& policy) {
  if (!self_) return;
  policy_ = &policy;
  policy_dropped_ = &registry_.counter(
      {"l7tap.records.dropped_by_policy",
       "{record}",
       "HTTP exchange records not written because of --records (metrics count them).",
       {},
       {}});
}

bool AttachMetrics::bind(std::string& error) {
  if (address_.empty() || endpoint_.bind(address_, error)) return true;
  error = "--metrics-addr " + error;
  return false;
}

bool AttachMetrics::serve(std::function<bool(std::string& why)> settled, std::string& error) {
  settled_ = std::move(settled);
  ready_ = true;
  if (address_.empty()) return true;
  if (!endpoint_.start(handlers(), error)) {
    error = "--metrics-addr " + error;
    return false;
  }
  std::fprintf(stderr, "l7tap: metrics on http://%s/metrics\n", endpoint_.boundAddress().c_str());
  return true;
}

HttpEndpoint::Handlers AttachMetrics::handlers() {
  HttpEndpoint::Handlers handlers;
  handlers.metrics = [this](metrics::ExpositionFormat format) {
    return metrics::render(registry_, format);
  };
  handlers.ready = [this](std::string& why) {
    if (!ready_) {
      why = "not attached";
      return false;
    }
    return !settled_ || settled_(why);
  };
  handlers.healthy = [this](std::string& why) {
    const int64_t quiet_ns = monotonicNs() - heartbeat_ns_.load(std::memory_order_relaxed);
    if (quiet_ns < kPipelineStallNs) return true;
    why = "pipeline thread stalled for " + std::to_string(quiet_ns / 1000000000) + " s";
    return false;
  };
  return handlers;
}

// Self-metrics once a second: a scrape every 15 s or more cannot tell, and
// the kernel's per-CPU counters are a system call each.
void AttachMetrics::drained() {
  heartbeat_ns_.store(monotonicNs(), std::memory_order_relaxed);
  if (!self_ || std::chrono::steady_clock::now() < next_self_update_) return;
  updateSelf();
}

void AttachMetrics::updateSelf() {
  if (!self_) return;
  next_self_update_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  const PipelineStats p = pipeline_->stats();
  const LiveCapture::Stats l = live_->stats();
  std::array<metrics::SinkCounts, 3> used{};
  size_t n = 0;
  if (json_) used[n++] = {"json", json_->recordsWritten(), json_->recordsLost()};
  if (journal_) used[n++] = {"journald", journal_->sent(), journal_->failures()};
  used[n++] = {"metrics", sink_->recordsCounted(), 0};
  const metrics::SelfStats::Tls tls{
      .events_read = l.tls_capture.events_read,
      .lost_events = l.tls_capture.kernel.lost,
      .files_attached = l.tls_capture.discovery.attached,
      .files_refused = l.tls_capture.discovery.refused,
  };
  self_->update({.flows = &p.flows,
                 .sessions = &p.sessions,
                 .capture = l.kernel.value,
                 .events_read = l.ring.events_read,
                 .has_events_read = true,
                 .sinks = std::span(used.data(), n),
                 .tls = l.tls ? &tls : nullptr,
                 .attached_interfaces = attached_interfaces_});
  if (policy_) policy_dropped_->setTotal({}, policy_->dropped());
  if (apptrace_ && apptrace_->running()) {
    functions_->update(apptrace_->functions(), apptrace_->readStats());
  }
}

}  // namespace l7tap
