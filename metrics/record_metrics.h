// Records turned into Prometheus series on the pipeline's thread: HTTP and
// gRPC exchanges into duration and body size histograms, final connection
// records into L4 counters by workload pair. A RecordSink placed after
// enrichment (identity/) and redaction, so labels see only what records show.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "metrics/limits.h"
#include "metrics/options.h"
#include "metrics/registry.h"
#include "metrics/route.h"
#include "parsers/common/record.h"
#include "parsers/common/records.h"

namespace l7tap::metrics {

/// Aggregates every record it is given into `registry` (which must outlive
/// it). Per record: one walk of the record's fields (Record::visit, so
/// fields a wrapper adds, such as identity/'s names, count the same as the
/// record's own), a route, and the series lookups; no allocation unless a
/// label set is new.
///
/// Metric names, labels and the rules that pick them: metrics/README.md,
/// "What MetricsSink writes". In short: an exchange is counted as the
/// server's (`http.server.request.duration`) unless the record says the
/// observed pod is its client (`l7tap.observed.side` = client); replay and
/// records without names have no side and count as the server's, since a
/// capture of a service's traffic is most often taken where it is served.
class MetricsSink final : public RecordSink {
 public:
  MetricsSink(MetricsRegistry& registry, const MetricsOptions& options = {});
  void onRecord(const ConnectionInfo& conn, const Record& record) override;

  /// Whether the fast path for a bare HttpRecord (its members, not its
  /// visit) reads what the visit shows. Tests run it over every fixture's
  /// records, so a field added to or changed in HttpRecord::visit that the
  /// fast path misses fails there.
  static bool typedFieldsMatchVisit(const ConnectionInfo& conn, const HttpRecord& record);

  /// Records counted into metrics (HTTP and connection records).
  uint64_t recordsCounted() const { return records_counted_; }

  /// Label values an HTTP exchange's histograms take, in this order.
  static constexpr size_t kHttpLabels = 11;
  /// Of kHttpLabels, the body size histograms take the first ones (not
  /// whether the exchange saw a retransmission: that is about latency).
  static constexpr size_t kBodyLabels = 10;

 private:
  struct Fields;
  // One family of HTTP histograms: server or client.
  struct HttpFamily {
    Metric* duration = nullptr;
    Metric* request_body = nullptr;
    Metric* response_body = nullptr;
    Metric* rpc_duration = nullptr;
  };
  // The series of an exchange's label set, found once and kept in a small
  // direct-mapped cache keyed by what the labels are made from (the raw
  // path, not its route; the address's bytes, not its text): a hit skips
  // templating the route, formatting the address and three series lookups.
  // Entries are overwritten, never freed; the series they point to live as
  // long as the registry.
  static constexpr size_t kCacheEntries = 256;
  static constexpr size_t kCacheKeyBytes = 192;  // longer keys are not cached
  struct CacheEntry {
    uint64_t hash = 0;
    uint32_t key_size = 0;  // 0: empty
    std::array<char, kCacheKeyBytes> key;
    Series* duration = nullptr;
    Series* request_body = nullptr;
    Series* response_body = nullptr;
  };

  void onHttp(const Fields& f);
  void observeHttp(const Fields& f, HttpFamily& fam, Series& duration, Series& request_body,
                   Series& response_body);
  void observeRpc(const Fields& f, HttpFamily& fam, bool server_named);
  void onConn(uint64_t id, const Fields& f, bool interim);
  // The same for a connection's L4 series: a workload pair, its protocol and
  // close reason, and the eleven series they name.
  static constexpr size_t kConnCacheEntries = 64;
  struct ConnCacheEntry {
    uint64_t hash = 0;
    uint32_t key_size = 0;  // 0: empty
    std::array<char, kCacheKeyBytes> key;
    Series* opened = nullptr;
    Series* closed = nullptr;
    Series* handshake_rtt = nullptr;
    Series* by_sender[4][2] = {};  // bytes, packets, retransmits, zero windows x client, server
  };

  RouteTemplater routes_;
  HttpFamily server_;
  HttpFamily client_;
  Metric* opened_;
  Metric* closed_;
  Metric* bytes_;
  Metric* packets_;
  Metric* retransmitted_;
  Metric* zero_windows_;
  Metric* handshake_rtt_;
  std::unique_ptr<CacheEntry[]> cache_;
  std::unique_ptr<ConnCacheEntry[]> conn_cache_;
  // What interim records of a still open connection already counted, by
  // connection id: the next record of it adds only what grew since. Erased
  // at its final record; bounded by max_connections_in_progress.
  struct InProgress {
    uint64_t by_sender[4][2] = {};
  };
  std::unordered_map<uint64_t, InProgress> in_progress_;
  size_t max_in_progress_;
  RouteBuffer route_;
  // Addresses as text, for the last address each label took (inet_ntop is
  // a third of an exchange's label cost otherwise).
  struct AddressText {
    std::array<uint8_t, 16> addr{};
    uint8_t family = 0;  // 0: nothing cached
    std::array<char, 48> text{};
    size_t size = 0;
    std::string_view format(const uint8_t* addr16, uint8_t family);
  };
  AddressText server_address_;
  AddressText client_address_;
  uint64_t records_counted_ = 0;
};

}  // namespace l7tap::metrics
