// The per-record cost of pod names: a record written as a JSON line with and
// without the names of its endpoints (NodeIdentity's snapshot lookup, the
// peer's address lookup in a 1,000-pod list, the join and the extra fields).
// The scans and the pod list fetch are not here: they run on the identity
// thread (bench/metadata, bench/kubelet).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "bench/kubelet/pod_json.h"
#include "daemon/json_sink.h"
#include "identity/enriching_sink.h"
#include "identity/node_identity.h"

namespace l7tap {
namespace {

constexpr int kPods = 1000;

// Twenty fields, about the size of an HTTP exchange record.
struct SampleRecord final : Record {
  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override {
    v.str("type", "http");
    v.num("l7tap.connection_id", conn.id);
    for (int i = 0; i < 9; ++i) v.str("l7tap.sample.field", "GET /api/v1/items?page=2");
    for (int i = 0; i < 9; ++i) v.num("l7tap.sample.number", 123456789);
  }
  void appendMessage(std::string& out, const ConnectionInfo&) const override { out += "GET /"; }
};

class OnePod final : public metadata::PeerNetnsSource {
 public:
  Peer peerOf(uint32_t) override { return {metadata::IdentityStatus::kResolved, 7001, 2}; }
};

class CannedList final : public PodListSource {
 public:
  CannedList() {
    body_ = "{\"kind\":\"PodList\",\"items\":[";
    for (int i = 0; i < kPods; ++i) body_ += (i ? "," : "") + bench::podJson(i);
    body_ += "]}";
  }
  bool fetch(std::string& body, std::string&) override {
    body = body_;
    return true;
  }

 private:
  std::string body_;
};

// A /proc with pod 0's sandbox and app in namespace 7001.
struct FakeProc {
  FakeProc() {
    char pattern[] = "/tmp/l7tap-identity-bench-XXXXXX";
    root = mkdtemp(pattern);
    auto add = [&](int pid, const char* comm, const std::string& id) {
      const auto dir = std::filesystem::path(root) / std::to_string(pid);
      std::filesystem::create_directories(dir / "ns");
      std::filesystem::create_symlink("net:[7001]", dir / "ns" / "net");
      std::ofstream(dir / "comm") << comm << "\n";
      std::ofstream(dir / "cgroup")
          << "0::/kubepods/besteffort/pod" << bench::podUid(0) << "/" << id << "\n";
    };
    add(10, "pause", std::string(64, 'a'));
    add(11, "app", bench::podContainerId(0, 1));
  }
  ~FakeProc() { std::filesystem::remove_all(root); }
  std::string root;
};

ConnectionInfo sampleConnection() {
  ConnectionInfo c;
  c.id = 1;
  c.ifindex = 5;
  // Client: pod 0 (10.1.0.0); server: pod 7 (10.1.0.7), IPv4-mapped.
  const uint8_t client[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 0};
  const uint8_t server[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 7};
  std::memcpy(c.addr[0].data(), client, 16);
  std::memcpy(c.addr[1].data(), server, 16);
  c.port[0] = 41230;
  c.port[1] = 8080;
  return c;
}

void BM_RecordWithoutNames(benchmark::State& state) {
  const int fd = ::open("/dev/null", O_WRONLY);
  JsonLinesSink json(fd, JsonLinesSink::Flush::kBuffered);
  const ConnectionInfo conn = sampleConnection();
  const SampleRecord record;
  for (auto _ : state) json.onRecord(conn, record);
  ::close(fd);
}
BENCHMARK(BM_RecordWithoutNames);

void BM_RecordWithNames(benchmark::State& state) {
  FakeProc proc;
  IdentityConfig config;
  config.host_proc = proc.root;
  config.node_name = "node-1";
  NodeIdentity identity(config, std::make_unique<OnePod>(), std::make_unique<CannedList>());
  identity.attached(5, "veth-bench");
  identity.step(1);
  const int fd = ::open("/dev/null", O_WRONLY);
  JsonLinesSink json(fd, JsonLinesSink::Flush::kBuffered);
  EnrichingSink named(identity, json);
  const ConnectionInfo conn = sampleConnection();
  const SampleRecord record;
  if (!identity.namesOf(conn).peer) state.SkipWithError("the peer was not named");
  for (auto _ : state) named.onRecord(conn, record);
  ::close(fd);
}
BENCHMARK(BM_RecordWithNames);

}  // namespace
}  // namespace l7tap
