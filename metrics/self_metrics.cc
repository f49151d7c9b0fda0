#include "metrics/self_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string>

#include "metrics/naming.h"

namespace l7tap::metrics {

namespace {

using Labels = std::span<const std::string_view>;

MetricSpec spec(std::string name, std::string unit, std::string help,
                std::vector<std::string> labels = {}) {
  return {std::move(name), std::move(unit), std::move(help), std::move(labels), {}};
}

}  // namespace

uint64_t residentBytes() {
  // statm: size resident shared ... in pages; one read, no parsing library.
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char* end = nullptr;
  std::strtoull(buf, &end, 10);  // size
  const uint64_t resident = std::strtoull(end, nullptr, 10);
  const long page = sysconf(_SC_PAGESIZE);
  return resident * static_cast<uint64_t>(page > 0 ? page : 4096);
}

struct SelfMetrics::TlsMetrics {
  explicit TlsMetrics(MetricsRegistry& registry)
      : events(registry.counter(
            spec("l7tap.tls.events", "{event}", "TLS uprobe events read from their ring buffer."))),
        lost(registry.counter(
            spec("l7tap.tls.lost_events", "{event}",
                 "TLS uprobe events the programs could not write: their ring buffer was full."))),
        attached(registry.counter(spec("l7tap.tls.files_attached", "{file}",
                                       "Libraries and executables the TLS uprobes attached to."))),
        refused(registry.counter(
            spec("l7tap.tls.files_refused", "{file}",
                 "Files the TLS uprobes could not attach to (one line each on stderr)."))) {}
  Metric& events;
  Metric& lost;
  Metric& attached;
  Metric& refused;
};

SelfMetrics::~SelfMetrics() = default;

SelfMetrics::SelfMetrics(MetricsRegistry& registry)
    : registry_(registry),
      events_read_(registry.counter(
          spec("l7tap.events.read", "{event}",
               "Capture events read: ring buffer events live, TCP segments decoded in replay."))),
      ringbuf_lost_(registry.counter(
          spec("l7tap.ringbuf.lost_events", "{event}",
               "Events the kernel program could not write: the ring buffer was full."))),
      ringbuf_lost_bytes_(
          registry.counter(spec("l7tap.ringbuf.lost_payload", "By",
                                "Payload bytes of the events lost to a full ring buffer."))),
      flow_map_full_(registry.counter(
          spec("l7tap.flow_map.full", "{flow}",
               "Flows the kernel program could not track: its flow map was full."))),
      payload_(registry.counter(
          spec("l7tap.capture.payload", "By", "TCP payload bytes of captured flows on the wire."))),
      copied_(registry.counter(
          spec("l7tap.capture.copied", "By", "Payload bytes copied into capture events."))),
      skipped_(registry.counter(spec("l7tap.capture.skipped", "By",
                                     "Payload bytes not copied: capture control skipped them."))),
      gap_(
          registry.counter(spec("l7tap.reassembly.gap", "By",
                                "Bytes handed to parsers as gaps (lost, or outside the window)."))),
      sink_records_(registry.counter(
          spec("l7tap.sink.records", "{record}", "Records written, by sink.", {"l7tap.sink"}))),
      sink_errors_(
          registry.counter(spec("l7tap.sink.errors", "{record}",
                                "Records a sink could not write, by sink.", {"l7tap.sink"}))),
      parser_events_(registry.counter(
          spec("l7tap.parser.events", "{event}",
               "Parser counters (parse errors, desyncs, HPACK errors, bounds reached...), by "
               "protocol, summed as connections close.",
               {"l7tap.protocol", "l7tap.event"}))),
      connections_(registry.counter(spec("l7tap.connections", "{connection}",
                                         "Connections by the protocol detected on them.",
                                         {"l7tap.protocol"}))),
      flows_tracked_(registry.gauge(
          spec("l7tap.flows.tracked", "{flow}", "TCP connections the flow table tracks now."))),
      memory_(registry.gauge(spec("l7tap.memory.resident", "By", "Resident memory of l7tap."))),
      interfaces_(registry.gauge(
          spec("l7tap.interfaces.attached", "{interface}", "Interfaces capture is attached to."))),
      truncated_(registry.counter(spec("l7tap.metrics.truncated_label_values", "{value}",
                                       "Label values cut at max_label_value_bytes, by metric.",
                                       {"metric"}))) {}

void SelfMetrics::update(const SelfStats& s) {
  const Labels none;
  if (s.has_events_read) events_read_.setTotal(none, s.events_read);
  if (s.capture != nullptr) {
    ringbuf_lost_.setTotal(none, s.capture[L7TAP_CNT_RINGBUF_FULL]);
    ringbuf_lost_bytes_.setTotal(none, s.capture[L7TAP_CNT_RINGBUF_FULL_BYTES]);
    flow_map_full_.setTotal(none, s.capture[L7TAP_CNT_FLOW_MAP_FULL]);
    payload_.setTotal(none, s.capture[L7TAP_CNT_PAYLOAD_BYTES]);
    copied_.setTotal(none, s.capture[L7TAP_CNT_COPIED_BYTES]);
    skipped_.setTotal(none, s.capture[L7TAP_CNT_SKIPPED_BYTES]);
  }
  if (s.flows != nullptr) {
    gap_.setTotal(none, s.flows->bytes_in_gaps + s.flows->plaintext_gap_bytes);
    flows_tracked_.set(none, static_cast<double>(s.flows->connections_active));
  }
  for (const SinkCounts& sink : s.sinks) {
    const std::string_view label[] = {sink.name};
    sink_records_.setTotal(label, sink.records);
    sink_errors_.setTotal(label, sink.errors);
  }
  if (s.sessions != nullptr) {
    for (const ProtocolTotals& p : s.sessions->protocols) {
      std::string_view labels[] = {p.name, {}};
      connections_.setTotal(std::span(labels, 1), p.connections);
      for (const ProtocolTotals::Counter& c : p.counters) {
        labels[1] = c.name;
        parser_events_.setTotal(labels, c.value);
      }
    }
    const std::string_view other[] = {"other"};
    connections_.setTotal(other, s.sessions->connections_other);
  }
  if (s.tls != nullptr) {
    if (!tls_) tls_ = std::make_unique<TlsMetrics>(registry_);
    tls_->events.setTotal(none, s.tls->events_read);
    tls_->lost.setTotal(none, s.tls->lost_events);
    tls_->attached.setTotal(none, s.tls->files_attached);
    tls_->refused.setTotal(none, s.tls->files_refused);
  }
  if (s.attached_interfaces >= 0) {
    interfaces_.set(none, static_cast<double>(s.attached_interfaces));
  }
  memory_.set(none, static_cast<double>(residentBytes()));
  // Only metrics that cut a value get a series, so the usual exposition has
  // none; the name is the one Prometheus users see.
  registry_.forEach([&](const Metric& m) {
    const uint64_t n = m.truncatedLabelValues();
    if (n == 0) return;
    std::string name = prometheusFamilyName(m.spec(), m.kind());
    if (m.kind() == MetricKind::kCounter) name += "_total";
    const std::string_view label[] = {name};
    truncated_.setTotal(label, n);
  });
}

}  // namespace l7tap::metrics
