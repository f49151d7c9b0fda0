#include "metrics/record_metrics.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "metrics/naming.h"
#include "parsers/common/records.h"

namespace l7tap::metrics {

namespace {

// The record fields metrics read, by name (../shared/DESIGN.md); identity/'s
// names included.
enum Field : uint8_t {
  kType,
  kVersion,
  kMethod,
  kPath,
  kStatus,
  kServerAddress,
  kServerPort,
  kClientAddress,
  kRpcSystem,
  kRpcService,
  kRpcMethod,
  kGrpcStatus,
  kRequestBody,
  kResponseBody,
  kDuration,
  kExchangeClientRetransmits,
  kExchangeServerRetransmits,
  kSide,
  kNamespace,
  kWorkload,
  kPod,
  kPeerNamespace,
  kPeerWorkload,
  kPeerPod,
  kProtocol,
  kConnRecord,
  kHistory,
  kCloseReason,
  kHandshakeRtt,
  kClientPackets,
  kClientBytes,
  kServerPackets,
  kServerBytes,
  kClientRetransmits,
  kServerRetransmits,
  kClientZeroWindows,
  kServerZeroWindows,
  kFieldCount,
};

struct FieldName {
  std::string_view name;
  Field field;
};

constexpr FieldName kFieldNames[] = {
    {"type", kType},
    {"network.protocol.version", kVersion},
    {"http.request.method", kMethod},
    {"url.path", kPath},
    {"http.response.status_code", kStatus},
    {"server.address", kServerAddress},
    {"server.port", kServerPort},
    {"client.address", kClientAddress},
    {"rpc.system", kRpcSystem},
    {"rpc.service", kRpcService},
    {"rpc.method", kRpcMethod},
    {"rpc.grpc.status_code", kGrpcStatus},
    {"http.request.body.size", kRequestBody},
    {"http.response.body.size", kResponseBody},
    {"l7tap.duration_ms", kDuration},
    {"l7tap.exchange.client.retransmitted_segments", kExchangeClientRetransmits},
    {"l7tap.exchange.server.retransmitted_segments", kExchangeServerRetransmits},
    {"l7tap.observed.side", kSide},
    {"k8s.namespace.name", kNamespace},
    // A pod has at most one workload (identity/ names the top owner).
    {"k8s.deployment.name", kWorkload},
    {"k8s.replicaset.name", kWorkload},
    {"k8s.statefulset.name", kWorkload},
    {"k8s.daemonset.name", kWorkload},
    {"k8s.job.name", kWorkload},
    {"k8s.pod.name", kPod},
    {"l7tap.peer.k8s.namespace.name", kPeerNamespace},
    {"l7tap.peer.k8s.deployment.name", kPeerWorkload},
    {"l7tap.peer.k8s.replicaset.name", kPeerWorkload},
    {"l7tap.peer.k8s.statefulset.name", kPeerWorkload},
    {"l7tap.peer.k8s.daemonset.name", kPeerWorkload},
    {"l7tap.peer.k8s.job.name", kPeerWorkload},
    {"l7tap.peer.k8s.pod.name", kPeerPod},
    {"l7tap.protocol", kProtocol},
    {"l7tap.conn.record", kConnRecord},
    {"l7tap.conn.history", kHistory},
    {"l7tap.conn.close_reason", kCloseReason},
    {"l7tap.conn.handshake_rtt_ms", kHandshakeRtt},
    {"l7tap.conn.client.packets", kClientPackets},
    {"l7tap.conn.client.bytes", kClientBytes},
    {"l7tap.conn.server.packets", kServerPackets},
    {"l7tap.conn.server.bytes", kServerBytes},
    {"l7tap.conn.client.retransmitted_segments", kClientRetransmits},
    {"l7tap.conn.server.retransmitted_segments", kServerRetransmits},
    {"l7tap.conn.client.zero_window_events", kClientZeroWindows},
    {"l7tap.conn.server.zero_window_events", kServerZeroWindows},
};

// The names in an open-addressing table (a tenth full) hashed on their size
// and three of their bytes: a visited name that is none of ours almost
// always lands on an empty slot, one of ours on its own slot, checked by
// inline word compares (a memcmp call per field was a third of the sink's
// cost: every record visits 30-odd fields).
struct FieldIndex {
  static constexpr size_t kSlots = 512;
  struct Slot {
    uint8_t size = 0;  // 0: empty
    uint8_t name = 0;  // index into kFieldNames
  };
  std::array<Slot, kSlots> slots{};

  static size_t hash(std::string_view n) {
    const size_t size = n.size();
    const auto at = [&](size_t i) { return static_cast<size_t>(static_cast<uint8_t>(n[i])); };
    return (size * 131 + at(size - 1) * 31 + at(size - 2) * 7 + at(size / 2)) % kSlots;
  }

  FieldIndex() {
    for (size_t i = 0; i < std::size(kFieldNames); ++i) {
      size_t at = hash(kFieldNames[i].name);
      while (slots[at].size != 0) at = (at + 1) % kSlots;
      slots[at] = {static_cast<uint8_t>(kFieldNames[i].name.size()), static_cast<uint8_t>(i)};
    }
  }

  // kFieldCount when the name is none of ours.
  Field find(std::string_view name) const {
    if (name.size() < 2 || name.size() > 255) return kFieldCount;
    for (size_t at = hash(name);; at = (at + 1) % kSlots) {
      const Slot slot = slots[at];
      if (slot.size == 0) return kFieldCount;
      if (slot.size != name.size()) continue;
      const FieldName& f = kFieldNames[slot.name];
      if (equalNames(f.name.data(), name.data(), name.size())) return f.field;
    }
  }

  static bool equalNames(const char* a, const char* b, size_t n) {
    if (n < 8) {
      for (size_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) return false;
      }
      return true;
    }
    uint64_t x, y;
    for (size_t i = 0; i + 8 < n; i += 8) {
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      if (x != y) return false;
    }
    std::memcpy(&x, a + n - 8, 8);
    std::memcpy(&y, b + n - 8, 8);
    return x == y;
  }
};

// Built before main; a function-local static would test its guard on every field.
const FieldIndex kFieldIndex;

const FieldIndex& fieldIndex() { return kFieldIndex; }

// Decimal text of `n` into `buf`, without snprintf's format parsing.
std::string_view decimal(uint64_t n, std::array<char, 24>& buf) {
  char* end = buf.data() + buf.size();
  char* p = end;
  do {
    *--p = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  return {p, static_cast<size_t>(end - p)};
}

// Writes a cache key; `ok` false once it would not fit.
struct CacheKey {
  char* p;
  char* end;
  bool ok = true;
  void bytes(const void* data, size_t n) {
    if (!ok || static_cast<size_t>(end - p) < n) {
      ok = false;
      return;
    }
    if (n != 0) std::memcpy(p, data, n);
    p += n;
  }
  void byte(uint8_t b) { bytes(&b, 1); }
  // Length first, so that ("ab", "c") and ("a", "bc") differ.
  void text(std::string_view s) {
    if (s.size() > 255) {
      ok = false;
      return;
    }
    byte(static_cast<uint8_t>(s.size()));
    bytes(s.data(), s.size());
  }
};

// 16 bytes a round into two lanes whose multiplies do not wait for each
// other, then one mix: keys are 40-100 bytes, equal keys are compared
// anyway, so latency matters more than quality (a single multiply chain
// was a sixth of the sink's cost).
uint64_t hashKey(std::string_view k) {
  uint64_t a = 0x9e3779b97f4a7c15ull ^ k.size(), b = 0xc2b2ae3d27d4eb4full;
  size_t i = 0;
  for (; i + 16 <= k.size(); i += 16) {
    uint64_t w0, w1;
    std::memcpy(&w0, k.data() + i, 8);
    std::memcpy(&w1, k.data() + i + 8, 8);
    a += w0 * 0xff51afd7ed558ccdull;
    b += w1 * 0xc4ceb9fe1a85ec53ull;
  }
  uint64_t tail[2] = {0, 0};
  std::memcpy(tail, k.data() + i, k.size() - i);
  a += tail[0] * 0xff51afd7ed558ccdull;
  b += tail[1] * 0xc4ceb9fe1a85ec53ull;
  uint64_t h = (a ^ (b << 31 | b >> 33)) * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

const std::vector<double>& handshakeRttBuckets() {
  // SYN to SYN-ACK as the capture point sees it: tens of microseconds on a
  // node's veths, milliseconds across zones, a second or more after a lost SYN.
  static const std::vector<double> buckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                              0.025,  0.05,    0.1,    0.25,  0.5,    1,     3};
  return buckets;
}

// The label names, in the order the label values are built below.
const std::vector<std::string> kHttpLabelNames = {
    "http.request.method",
    "http.response.status_code",
    "http.route",
    "network.protocol.version",
    "server.address",
    "server.port",
    "k8s.namespace.name",
    "k8s.workload.name",
    "l7tap.peer.k8s.namespace.name",
    "l7tap.peer.k8s.workload.name",
    "l7tap.retransmitted",
};
const std::vector<std::string> kRpcLabelNames = {
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
    "server.address",
    "server.port",
    "k8s.namespace.name",
    "k8s.workload.name",
    "l7tap.peer.k8s.namespace.name",
    "l7tap.peer.k8s.workload.name",
};
constexpr size_t kPairLabels = 8;
const std::vector<std::string> kPairLabelNames = {
    "l7tap.protocol",
    "l7tap.client.k8s.namespace.name",
    "l7tap.client.k8s.workload.name",
    "client.address",
    "l7tap.server.k8s.namespace.name",
    "l7tap.server.k8s.workload.name",
    "server.address",
    "server.port",
};

std::vector<std::string> pairLabelsAnd(std::string_view extra) {
  std::vector<std::string> names = kPairLabelNames;
  if (!extra.empty()) names.emplace_back(extra);
  return names;
}

}  // namespace

// What one record shows, by Field: views valid during onRecord only.
struct MetricsSink::Fields final : FieldVisitor {
  // A string_view without its zeroing constructor: a Fields is made per
  // record, and zeroing every slot (600 bytes) was half of onRecord's own
  // time. Only slots whose `present` bit is set are read.
  struct Text {
    const char* data;
    size_t size;
    Text& operator=(std::string_view v) {
      data = v.data();
      size = v.size();
      return *this;
    }
    operator std::string_view() const { return {data, size}; }
  };
  static_assert(std::is_trivially_default_constructible_v<Text>);

  uint64_t present = 0;  // bit per Field
  Text text[kFieldCount];
  uint64_t number[kFieldCount];
  const uint8_t* address[kFieldCount];
  uint8_t family[kFieldCount];

  bool has(Field f) const { return present >> f & 1; }
  std::string_view str(Field f) const { return has(f) ? text[f] : std::string_view(); }
  uint64_t num(Field f) const { return has(f) ? number[f] : 0; }

  void str(std::string_view name, std::string_view value) override {
    const Field f = fieldIndex().find(name);
    if (f == kFieldCount) return;
    present |= uint64_t{1} << f;
    text[f] = value;
  }
  void num(std::string_view name, uint64_t value) override {
    const Field f = fieldIndex().find(name);
    if (f == kFieldCount) return;
    present |= uint64_t{1} << f;
    number[f] = value;
  }
  void inum(std::string_view name, int64_t value) override {
    num(name, value < 0 ? 0 : static_cast<uint64_t>(value));
  }
  void millis(std::string_view name, uint64_t ns) override { num(name, ns); }
  void time(std::string_view, uint64_t) override {}
  void addr(std::string_view name, const uint8_t* addr16, uint8_t fam) override {
    const Field f = fieldIndex().find(name);
    if (f == kFieldCount) return;
    present |= uint64_t{1} << f;
    address[f] = addr16;
    family[f] = fam;
  }
  void flags(std::string_view, uint32_t, const char* const*, size_t) override {}

  void fromHttp(const ConnectionInfo& c, const HttpRecord& r);
  // For comparing the two ways: every slot defined.
  void clear() {
    present = 0;
    for (size_t f = 0; f < kFieldCount; ++f) {
      text[f] = std::string_view();
      number[f] = 0;
      address[f] = nullptr;
      family[f] = 0;
    }
  }
  bool operator==(const Fields& o) const;
};
static_assert(kFieldCount <= 64, "Fields::present has a bit per field");

std::string_view MetricsSink::AddressText::format(const uint8_t* addr16, uint8_t fam) {
  if (family == fam && std::memcmp(addr.data(), addr16, addr.size()) == 0) {
    return {text.data(), size};
  }
  std::memcpy(addr.data(), addr16, addr.size());
  family = fam;
  // IPv4 as the dotted quad the records show, not IPv4-mapped IPv6.
  if (inet_ntop(fam == 4 ? AF_INET : AF_INET6, fam == 4 ? addr16 + 12 : addr16, text.data(),
                text.size()) == nullptr) {
    size = 0;
  } else {
    size = std::strlen(text.data());
  }
  return {text.data(), size};
}

MetricsSink::MetricsSink(MetricsRegistry& registry, const MetricsOptions& options)
    : routes_(options.route_patterns, options.limits),
      cache_(new CacheEntry[kCacheEntries]),
      conn_cache_(new ConnCacheEntry[kConnCacheEntries]),
      max_in_progress_(options.limits.max_connections_in_progress) {
  for (bool server : {true, false}) {
    HttpFamily& fam = server ? server_ : client_;
    const std::string role = server ? "server" : "client";
    std::vector<std::string> body_labels(kHttpLabelNames.begin(),
                                         kHttpLabelNames.begin() + kBodyLabels);
    fam.duration = &registry.histogram(
        {"http." + role + ".request.duration", "s",
         "Duration of HTTP " + role + " requests, first request byte to last response byte.",
         kHttpLabelNames, httpDurationBuckets()});
    fam.request_body = &registry.histogram(
        {"http." + role + ".request.body.size", "By",
         "Size of HTTP " + role + " request bodies (after decoding chunked framing).", body_labels,
         bodySizeBuckets()});
    fam.response_body = &registry.histogram({"http." + role + ".response.body.size", "By",
                                             "Size of HTTP " + role + " response bodies.",
                                             body_labels, bodySizeBuckets()});
    fam.rpc_duration =
        // In seconds, not the conventions' ms: Prometheus names base units
        // (promtool's lint refuses _milliseconds), and then the HTTP buckets fit.
        &registry.histogram({"rpc." + role + ".duration", "s",
                             "Duration of gRPC calls seen from the " + role + " side.",
                             kRpcLabelNames, httpDurationBuckets()});
  }
  opened_ = &registry.counter({"tcp.connections.opened",
                               "{connection}",
                               "TCP connections whose handshake was seen, counted when their "
                               "record is written.",
                               pairLabelsAnd({}),
                               {}});
  closed_ = &registry.counter({"tcp.connections.closed",
                               "{connection}",
                               "TCP connections closed, by why their record was written.",
                               pairLabelsAnd("l7tap.conn.close_reason"),
                               {}});
  bytes_ = &registry.counter({"tcp.bytes",
                              "By",
                              "TCP payload bytes, by the side that sent them.",
                              pairLabelsAnd("l7tap.sender"),
                              {}});
  packets_ = &registry.counter({"tcp.packets",
                                "{packet}",
                                "TCP packets, by the side that sent them.",
                                pairLabelsAnd("l7tap.sender"),
                                {}});
  retransmitted_ = &registry.counter({"tcp.retransmitted_segments",
                                      "{segment}",
                                      "TCP segments retransmitted, by the side that sent them.",
                                      pairLabelsAnd("l7tap.sender"),
                                      {}});
  zero_windows_ = &registry.counter({"tcp.zero_window_events",
                                     "{event}",
                                     "Zero windows advertised, by the side that advertised them.",
                                     pairLabelsAnd("l7tap.sender"),
                                     {}});
  handshake_rtt_ =
      &registry.histogram({"tcp.handshake.rtt", "s", "SYN to SYN-ACK as seen where the capture is.",
                           pairLabelsAnd({}), handshakeRttBuckets()});
}

void MetricsSink::Fields::fromHttp(const ConnectionInfo& c, const HttpRecord& r) {
  // What HttpRecord::visit shows of the fields above, in the same
  // conditions; typedFieldsMatchVisit() checks the two agree.
  const auto put = [this](Field f) { present |= uint64_t{1} << f; };
  text[kType] = "http";
  put(kType);
  if (*r.version) {
    text[kVersion] = r.version;
    put(kVersion);
  }
  if (!r.method.empty()) {
    text[kMethod] = httpMethodLabel(r.method);
    put(kMethod);
  }
  if (!r.path.empty()) {
    text[kPath] = r.path;
    put(kPath);
  }
  if (r.status) {
    number[kStatus] = static_cast<uint64_t>(r.status);
    put(kStatus);
  }
  const int client = index(c.client_side);
  const int server = index(opposite(c.client_side));
  address[kClientAddress] = c.addr[client].data();
  family[kClientAddress] = c.family;
  put(kClientAddress);
  address[kServerAddress] = c.addr[server].data();
  family[kServerAddress] = c.family;
  put(kServerAddress);
  number[kServerPort] = c.port[server];
  put(kServerPort);
  if (!r.rpc_service.empty() || !r.rpc_method.empty() || r.grpc_status >= 0) {
    text[kRpcSystem] = "grpc";
    put(kRpcSystem);
    if (!r.rpc_service.empty()) {
      text[kRpcService] = r.rpc_service;
      put(kRpcService);
    }
    if (!r.rpc_method.empty()) {
      text[kRpcMethod] = r.rpc_method;
      put(kRpcMethod);
    }
    if (r.grpc_status >= 0) {
      number[kGrpcStatus] = static_cast<uint64_t>(r.grpc_status);
      put(kGrpcStatus);
    }
  }
  number[kRequestBody] = r.request_body_bytes;
  put(kRequestBody);
  number[kResponseBody] = r.response_body_bytes;
  put(kResponseBody);
  if (r.request_start_ns && r.response_end_ns >= r.request_start_ns) {
    number[kDuration] = r.response_end_ns - r.request_start_ns;
    put(kDuration);
  }
  for (const auto& [side, field] : {std::pair{kExchangeClient, kExchangeClientRetransmits},
                                    std::pair{kExchangeServer, kExchangeServerRetransmits}}) {
    if (const uint64_t n = r.exchange_l4[side].retransmitted_segments) {
      number[field] = n;
      put(field);
    }
  }
}

bool MetricsSink::Fields::operator==(const Fields& o) const {
  if (present != o.present) return false;
  for (size_t f = 0; f < kFieldCount; ++f) {
    if (!(present >> f & 1)) continue;
    if (std::string_view(text[f]) != std::string_view(o.text[f]) || number[f] != o.number[f] ||
        address[f] != o.address[f] || family[f] != o.family[f]) {
      return false;
    }
  }
  return true;
}

bool MetricsSink::typedFieldsMatchVisit(const ConnectionInfo& conn, const HttpRecord& record) {
  Fields visited, typed;
  visited.clear();
  typed.clear();
  record.visit(conn, visited);
  typed.fromHttp(conn, record);
  return visited == typed;
}

void MetricsSink::onRecord(const ConnectionInfo& conn, const Record& record) {
  Fields f;
  // An HttpRecord is read from its members, without the 28 virtual calls
  // of its field walk (two thirds of the sink's cost per record), and only
  // what wrappers add (identity's names) is walked; anything else through
  // its visit.
  if (const Record& inner = record.inner(); typeid(inner) == typeid(HttpRecord)) {
    f.fromHttp(conn, static_cast<const HttpRecord&>(inner));
    record.visitAdded(conn, f);
    onHttp(f);
    return;
  }
  record.visit(conn, f);
  const std::string_view type = f.str(kType);
  if (type == "http") {
    onHttp(f);
  } else if (type == "conn") {
    onConn(conn.id, f, f.str(kConnRecord) == "interim");
  }
}

void MetricsSink::onHttp(const Fields& f) {
  ++records_counted_;
  const bool client_side = f.str(kSide) == "client";
  HttpFamily& fam = client_side ? client_ : server_;
  // The observed pod's names, then the peer's: the server's are the
  // observed ones on the server family, the peer's on the client family.
  const std::string_view ns = f.str(kNamespace);
  const std::string_view workload = f.has(kWorkload) ? f.str(kWorkload) : f.str(kPod);
  const std::string_view peer_ns = f.str(kPeerNamespace);
  const std::string_view peer_workload =
      f.has(kPeerWorkload) ? f.str(kPeerWorkload) : f.str(kPeerPod);
  const bool server_named = client_side ? !peer_workload.empty() : !workload.empty();
  const bool retransmitted =
      f.num(kExchangeClientRetransmits) != 0 || f.num(kExchangeServerRetransmits) != 0;
  const std::string_view path = f.str(kPath);

  // The cache key: everything the labels are computed from.
  std::array<char, kCacheKeyBytes> key;
  CacheKey k{key.data(), key.data() + key.size()};
  k.byte(static_cast<uint8_t>(client_side << 1 | retransmitted));
  k.bytes(&f.number[kStatus], f.has(kStatus) ? sizeof(uint64_t) : 0);
  if (!server_named) {
    if (f.has(kServerAddress)) k.bytes(f.address[kServerAddress], 16);
    k.byte(f.has(kServerAddress) ? f.family[kServerAddress] : 0);
    k.bytes(&f.number[kServerPort], f.has(kServerPort) ? sizeof(uint64_t) : 0);
  }
  k.text(f.str(kMethod));
  k.text(f.str(kVersion));
  k.text(path);
  k.text(ns);
  k.text(workload);
  k.text(peer_ns);
  k.text(peer_workload);
  CacheEntry* entry = nullptr;
  if (k.ok) {
    const std::string_view kv(key.data(), static_cast<size_t>(k.p - key.data()));
    const uint64_t hash = hashKey(kv);
    entry = &cache_[hash % kCacheEntries];
    if (entry->hash != hash || entry->key_size != kv.size() ||
        std::memcmp(entry->key.data(), kv.data(), kv.size()) != 0) {
      entry->key_size = 0;  // filled below
      entry->hash = hash;
      std::memcpy(entry->key.data(), kv.data(), kv.size());
    } else {
      // Hit: labels, route and lookups all skipped.
      observeHttp(f, fam, *entry->duration, *entry->request_body, *entry->response_body);
      if (f.has(kRpcSystem)) observeRpc(f, fam, server_named);
      return;
    }
    entry->key_size = static_cast<uint32_t>(kv.size());
  }

  std::string_view server_address, server_port;
  std::array<char, 24> port_buf, status_buf;
  if (!server_named) {
    if (f.has(kServerAddress)) {
      server_address = server_address_.format(f.address[kServerAddress], f.family[kServerAddress]);
    }
    if (f.has(kServerPort)) server_port = decimal(f.number[kServerPort], port_buf);
  }
  const std::string_view labels[kHttpLabels] = {
      f.has(kMethod) ? httpMethodLabel(f.text[kMethod]) : std::string_view(),
      f.has(kStatus) ? decimal(f.number[kStatus], status_buf) : std::string_view(),
      routes_.route(path, route_),
      f.str(kVersion),
      server_address,
      server_port,
      ns,
      workload,
      peer_ns,
      peer_workload,
      retransmitted ? "true" : "false",
  };
  const std::span<const std::string_view> all(labels);
  Series* duration = fam.duration->find(all);
  Series* request_body = fam.request_body->find(all.first(kBodyLabels));
  Series* response_body = fam.response_body->find(all.first(kBodyLabels));
  if (entry != nullptr) {
    entry->duration = duration;
    entry->request_body = request_body;
    entry->response_body = response_body;
  }
  observeHttp(f, fam, *duration, *request_body, *response_body);
  if (f.has(kRpcSystem)) observeRpc(f, fam, server_named);
}

void MetricsSink::observeHttp(const Fields& f, HttpFamily& fam, Series& duration,
                              Series& request_body, Series& response_body) {
  if (f.has(kDuration))
    fam.duration->observe(duration, static_cast<double>(f.number[kDuration]) * 1e-9);
  // A body size only for the half that was seen.
  if (f.has(kMethod)) {
    fam.request_body->observe(request_body, static_cast<double>(f.num(kRequestBody)));
  }
  if (f.has(kStatus)) {
    fam.response_body->observe(response_body, static_cast<double>(f.num(kResponseBody)));
  }
}

void MetricsSink::observeRpc(const Fields& f, HttpFamily& fam, bool server_named) {
  if (!f.has(kDuration)) return;
  std::string_view server_address, server_port;
  std::array<char, 24> port_buf, grpc_buf;
  if (!server_named) {
    if (f.has(kServerAddress)) {
      server_address = server_address_.format(f.address[kServerAddress], f.family[kServerAddress]);
    }
    if (f.has(kServerPort)) server_port = decimal(f.number[kServerPort], port_buf);
  }
  const std::string_view labels[] = {
      f.str(kRpcSystem),
      f.str(kRpcService),
      f.str(kRpcMethod),
      f.has(kGrpcStatus) ? decimal(f.number[kGrpcStatus], grpc_buf) : std::string_view(),
      server_address,
      server_port,
      f.str(kNamespace),
      f.has(kWorkload) ? f.str(kWorkload) : f.str(kPod),
      f.str(kPeerNamespace),
      f.has(kPeerWorkload) ? f.str(kPeerWorkload) : f.str(kPeerPod),
  };
  fam.rpc_duration->observe(labels, static_cast<double>(f.number[kDuration]) * 1e-9);
}

void MetricsSink::onConn(uint64_t id, const Fields& f, bool interim) {
  // A connection that lives for hours counts while it does: each interim
  // record adds what grew since the last one, the final record the rest.
  // Opened and its handshake count with its first record, closed with its
  // last. With no room to remember it, it counts whole when it closes.
  auto progress = in_progress_.find(id);
  const bool seen_before = progress != in_progress_.end();
  if (interim && !seen_before) {
    if (in_progress_.size() >= max_in_progress_) return;
    progress = in_progress_.try_emplace(id).first;
  }
  ++records_counted_;
  const bool observed_client = f.str(kSide) == "client";
  const std::string_view ns = f.str(kNamespace);
  const std::string_view workload = f.has(kWorkload) ? f.str(kWorkload) : f.str(kPod);
  const std::string_view peer_ns = f.str(kPeerNamespace);
  const std::string_view peer_workload =
      f.has(kPeerWorkload) ? f.str(kPeerWorkload) : f.str(kPeerPod);
  // Without a side the observed pod is taken as the server, as for exchanges.
  const std::string_view client_ns = observed_client ? ns : peer_ns;
  const std::string_view client_workload = observed_client ? workload : peer_workload;
  const std::string_view server_ns = observed_client ? peer_ns : ns;
  const std::string_view server_workload = observed_client ? peer_workload : workload;
  // An address only where no workload names that end: a pair of workloads,
  // not of pods or 5-tuples.
  const bool client_address_label = client_workload.empty() && f.has(kClientAddress);
  const bool server_address_label = server_workload.empty() && f.has(kServerAddress);
  const bool server_port_label = server_workload.empty() && f.has(kServerPort);
  // The client's SYN starts the history ('S'): the connection opened here.
  const bool opened = f.str(kHistory).starts_with('S') && !seen_before;
  const bool handshake = f.has(kHandshakeRtt) && !seen_before;

  std::array<char, kCacheKeyBytes> key;
  CacheKey k{key.data(), key.data() + key.size()};
  k.byte(static_cast<uint8_t>(interim << 5 | handshake << 4 | opened << 3 |
                              client_address_label << 2 | server_address_label << 1 |
                              server_port_label));
  if (client_address_label) k.bytes(f.address[kClientAddress], 16);
  if (server_address_label) k.bytes(f.address[kServerAddress], 16);
  k.byte(server_address_label ? f.family[kServerAddress] : 0);
  k.byte(client_address_label ? f.family[kClientAddress] : 0);
  if (server_port_label) k.bytes(&f.number[kServerPort], sizeof(uint64_t));
  k.text(f.str(kProtocol));
  k.text(f.str(kCloseReason));
  k.text(client_ns);
  k.text(client_workload);
  k.text(server_ns);
  k.text(server_workload);
  ConnCacheEntry* entry = nullptr;
  bool hit = false;
  if (k.ok) {
    const std::string_view kv(key.data(), static_cast<size_t>(k.p - key.data()));
    const uint64_t hash = hashKey(kv);
    entry = &conn_cache_[hash % kConnCacheEntries];
    hit = entry->hash == hash && entry->key_size == kv.size() &&
          std::memcmp(entry->key.data(), kv.data(), kv.size()) == 0;
    if (!hit) {
      entry->hash = hash;
      entry->key_size = static_cast<uint32_t>(kv.size());
      std::memcpy(entry->key.data(), kv.data(), kv.size());
    }
  }
  ConnCacheEntry found;
  if (!hit) {
    std::string_view client_address, server_address, server_port;
    std::array<char, 24> port_buf;
    if (client_address_label) {
      client_address = client_address_.format(f.address[kClientAddress], f.family[kClientAddress]);
    }
    if (server_address_label) {
      server_address = server_address_.format(f.address[kServerAddress], f.family[kServerAddress]);
    }
    if (server_port_label) server_port = decimal(f.number[kServerPort], port_buf);
    std::string_view labels[kPairLabels + 1] = {
        f.str(kProtocol), client_ns,   client_workload,
        client_address,   server_ns,   server_workload,
        server_address,   server_port, {},
    };
    const std::span<const std::string_view> pair(labels, kPairLabels);
    const std::span<const std::string_view> with_extra(labels, kPairLabels + 1);
    // Only a connection that opened here creates an opened series.
    found.opened = opened ? opened_->find(pair) : nullptr;
    // Not for a connection joined mid-way: an empty histogram says nothing.
    found.handshake_rtt = handshake ? handshake_rtt_->find(pair) : nullptr;
    // An interim record has no close reason yet.
    labels[kPairLabels] = f.str(kCloseReason);
    found.closed = interim ? nullptr : closed_->find(with_extra);
    Metric* const by_sender[] = {bytes_, packets_, retransmitted_, zero_windows_};
    for (size_t m = 0; m < 4; ++m) {
      labels[kPairLabels] = "client";
      found.by_sender[m][0] = by_sender[m]->find(with_extra);
      labels[kPairLabels] = "server";
      found.by_sender[m][1] = by_sender[m]->find(with_extra);
    }
    if (entry != nullptr) {
      entry->opened = found.opened;
      entry->closed = found.closed;
      entry->handshake_rtt = found.handshake_rtt;
      std::memcpy(entry->by_sender, found.by_sender, sizeof found.by_sender);
    }
  }
  const ConnCacheEntry& s = hit ? *entry : found;
  if (opened) opened_->add(*s.opened);
  if (!interim) closed_->add(*s.closed);
  // The key says whether there was a handshake, so its series is there.
  if (handshake) {
    handshake_rtt_->observe(*s.handshake_rtt, static_cast<double>(f.number[kHandshakeRtt]) * 1e-9);
  }
  Metric* const by_sender[] = {bytes_, packets_, retransmitted_, zero_windows_};
  const Field client_fields[] = {kClientBytes, kClientPackets, kClientRetransmits,
                                 kClientZeroWindows};
  const Field server_fields[] = {kServerBytes, kServerPackets, kServerRetransmits,
                                 kServerZeroWindows};
  for (size_t m = 0; m < 4; ++m) {
    for (size_t side = 0; side < 2; ++side) {
      const uint64_t total = f.num(side == 0 ? client_fields[m] : server_fields[m]);
      uint64_t counted = 0;
      if (progress != in_progress_.end()) {
        // Live, the final record's counts are the kernel's, which saw
        // packets whose events were lost: they never fall behind the
        // capture's, but a counter never goes down either way.
        counted = progress->second.by_sender[m][side];
        progress->second.by_sender[m][side] = std::max(total, counted);
      }
      if (total > counted) by_sender[m]->add(*s.by_sender[m][side], total - counted);
    }
  }
  if (!interim && progress != in_progress_.end()) in_progress_.erase(progress);
}

}  // namespace l7tap::metrics
