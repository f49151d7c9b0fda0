// attach's metrics: the registry and its MetricsSink beside the record
// sinks, the self-metrics the pipeline's thread keeps current, and the
// endpoint that serves /metrics, /readyz and /healthz.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "apptrace/histograms.h"
#include "daemon/journald_sink.h"
#include "daemon/json_sink.h"
#include "daemon/live_capture.h"
#include "daemon/pipeline.h"
#include "endpoint/http_endpoint.h"
#include "metrics/options.h"
#include "metrics/record_metrics.h"
#include "metrics/registry.h"
#include "metrics/self_metrics.h"
#include "records/record_policy.h"

namespace l7tap {

/// The metrics of one attach run. Everything but the endpoint's handlers
/// runs on the pipeline's thread, which alone writes the registry.
class AttachMetrics {
 public:
  explicit AttachMetrics(const metrics::MetricsOptions& options);
  AttachMetrics(const AttachMetrics&) = delete;
  AttachMetrics& operator=(const AttachMetrics&) = delete;

  /// The sink to add to the record sinks; null when metrics are off.
  metrics::MetricsSink* sink() { return sink_ ? &*sink_ : nullptr; }
  /// What the self-metrics read; the outputs not in use are null. All must
  /// outlive the last finished().
  void watch(const Pipeline& pipeline, const LiveCapture& live, const JsonLinesSink* json,
             const JournaldSink* journal);
  /// The functions --trace-config times: their in-kernel histograms are
  /// exported with the self-metrics (l7tap_app_function_*).
  void watchFunctions(const AppCapture& apptrace);
  /// --records: its dropped exchange records are exported
  /// (l7tap_records_dropped_by_policy_total).
  /// Before serve(): the metric is registered here.
  void watchPolicy(const RecordPolicySink& policy);
  /// Binds --metrics-addr, if any, starting no thread; false with `error`
  /// naming the flag.
  bool bind(std::string& error);
  /// Ready from now on, once `settled` also says so (the pod names), and
  /// serving (the endpoint's thread starts here: after the privilege drop);
  /// false with `error` naming the flag. `settled` runs on the endpoint's
  /// thread.
  bool serve(std::function<bool(std::string& why)> settled, std::string& error);
  /// An interface was attached (true) or detached (false).
  void interfaceChanged(bool attached) { attached_interfaces_ += attached ? 1 : -1; }
  /// At every drain: the heartbeat, and the self-metrics when due.
  void drained();
  /// Not ready any more: detaching.
  void detaching() { ready_ = false; }
  /// The self-metrics' last update, after the pipeline's last records.
  void finished() { updateSelf(); }
  void stop() { endpoint_.stop(); }

 private:
  void updateSelf();
  HttpEndpoint::Handlers handlers();

  const std::string address_;
  // Served by the endpoint; written by the pipeline's thread only.
  metrics::MetricsRegistry registry_;
  std::optional<metrics::MetricsSink> sink_;
  std::optional<metrics::SelfMetrics> self_;
  const Pipeline* pipeline_ = nullptr;
  const LiveCapture* live_ = nullptr;
  const JsonLinesSink* json_ = nullptr;
  const JournaldSink* journal_ = nullptr;
  const AppCapture* apptrace_ = nullptr;
  const RecordPolicySink* policy_ = nullptr;
  metrics::Metric* policy_dropped_ = nullptr;
  std::optional<HistogramExporter> functions_;
  int64_t attached_interfaces_ = 0;
  std::chrono::steady_clock::time_point next_self_update_{};
  // /readyz: the programs are attached (and not yet detaching), and
  // settled_ (the pod names) agrees. /healthz:
  // the pipeline thread came round its loop recently; a stuck sink or a
  // wedged loop shows there, and the kubelet restarts the pod.
  std::atomic<bool> ready_{false};
  std::function<bool(std::string& why)> settled_;
  std::atomic<int64_t> heartbeat_ns_;
  // Last: its thread reads the members above until it is stopped.
  HttpEndpoint endpoint_;
};

}  // namespace l7tap
