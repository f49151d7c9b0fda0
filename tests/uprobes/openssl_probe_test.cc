// The OpenSSL probes on the libssl this test process maps: a TLS server
// thread and a client over loopback exchange known messages, with the pid
// filter set to this process, and the ring must hold exactly those bytes, in
// order, on the right socket tuples and roles, and a close per session.
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/support/privileged.h"
#include "uprobes/tls_program.h"

namespace l7tap {
namespace {

struct Event {
  l7tap_tls_event header;  // data[] unused: the bytes are in `data`
  std::vector<uint8_t> data;
};

int collect(void* ctx, void* sample, size_t size) {
  auto* events = static_cast<std::vector<std::unique_ptr<Event>>*>(ctx);
  auto e = std::make_unique<Event>();
  if (size < L7TAP_TLS_EVENT_HEADER_SIZE) return 0;
  std::memcpy(&e->header, sample, L7TAP_TLS_EVENT_HEADER_SIZE);
  // Samples come in size classes: the bytes are `captured`, not the size.
  EXPECT_LE(L7TAP_TLS_EVENT_HEADER_SIZE + e->header.captured, size);
  const auto* bytes = static_cast<const uint8_t*>(sample) + L7TAP_TLS_EVENT_HEADER_SIZE;
  e->data.assign(bytes,
                 bytes + std::min<size_t>(e->header.captured, size - L7TAP_TLS_EVENT_HEADER_SIZE));
  events->push_back(std::move(e));
  return 0;
}

// A throwaway EC key and self-signed certificate, in memory.
struct Credentials {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  Credentials() {
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("l7to.test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
  }
  ~Credentials() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

// A server context with a fresh certificate and a client context; `ok` once
// both are set up.
struct Contexts {
  Credentials creds;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> server{SSL_CTX_new(TLS_server_method()),
                                                           SSL_CTX_free};
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> client{SSL_CTX_new(TLS_client_method()),
                                                           SSL_CTX_free};
  bool ok = creds.key != nullptr && server && client &&
            SSL_CTX_use_certificate(server.get(), creds.cert) == 1 &&
            SSL_CTX_use_PrivateKey(server.get(), creds.key) == 1;
};

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + (i * 7 + i / 251) % 61);
  return s;
}

// Writes all of `s` in one call: SSL_write or SSL_write_ex.
bool writeAll(SSL* ssl, const std::string& s, bool ex) {
  if (ex) {
    size_t written = 0;
    return SSL_write_ex(ssl, s.data(), s.size(), &written) == 1 && written == s.size();
  }
  return SSL_write(ssl, s.data(), static_cast<int>(s.size())) == static_cast<int>(s.size());
}

std::string readExactly(SSL* ssl, size_t n, bool ex) {
  std::string out;
  char buf[8192];
  while (out.size() < n) {
    const size_t want = std::min(sizeof(buf), n - out.size());
    if (ex) {
      size_t got = 0;
      if (SSL_read_ex(ssl, buf, want, &got) != 1) break;
      out.append(buf, got);
    } else {
      const int got = SSL_read(ssl, buf, static_cast<int>(want));
      if (got <= 0) break;
      out.append(buf, static_cast<size_t>(got));
    }
  }
  return out;
}

// The socket as tc/'s key has it: IPv4 (and IPv4-mapped IPv6) as family 4.
l7tap_flow_key keyOf(int fd) {
  sockaddr_storage local{}, remote{};
  socklen_t len = sizeof(local);
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  len = sizeof(remote);
  getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &len);
  l7tap_flow_key k{};
  auto put = [&k](const sockaddr_storage& ss, uint8_t* addr, uint16_t& port) {
    if (ss.ss_family == AF_INET) {
      const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
      addr[10] = addr[11] = 0xff;
      std::memcpy(addr + 12, &a.sin_addr, 4);
      port = ntohs(a.sin_port);
      k.family = 4;
    } else {
      const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
      std::memcpy(addr, &a.sin6_addr, 16);
      port = ntohs(a.sin6_port);
      k.family = IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) ? 4 : 6;
    }
  };
  put(local, k.saddr, k.sport);
  put(remote, k.daddr, k.dport);
  return k;
}

// Where the test's OpenSSL is: the libssl it maps, or, built against the
// static libraries, this executable itself.
std::string openSslFile() {
#ifdef L7TAP_TEST_STATIC_OPENSSL
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
#else
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash != std::string::npos && line.find("libssl.so", slash) != std::string::npos)
      return line.substr(slash);
  }
  return {};
#endif
}

// Loads `program` for this process alone and attaches it to this process's
// libssl; false with `error`.
bool loadForThisProcess(TlsProgram& program, uint32_t ring_bytes, std::string& error) {
  const std::string libssl = openSslFile();
  if (libssl.empty()) {
    error = "no OpenSSL found in this process";
    return false;
  }
  TlsProgramConfig config;
  config.pids = {static_cast<uint32_t>(getpid())};
  if (ring_bytes) config.ring_bytes = ring_bytes;
  return program.load(config, error) &&
         program.attachOpenSsl(libssl, error) == TlsProgram::Attach::kAttached;
}

struct Side {
  SSL* ssl = nullptr;
  uint64_t id = 0;  // the SSL*, as conn_id
  int fd = -1;
  l7tap_flow_key key{};
  std::string sent, received;
};

// The listener's address: IPv4, IPv6, and IPv4 on a dual-stack IPv6 socket
// (whose key must be the IPv4 one that TC sees on the wire).
enum class Family { kIpv4, kIpv6, kIpv4Mapped };

// A TLS session over loopback: request i goes client -> server, then
// response i back (none when its size is 0). Even rounds use
// SSL_write/SSL_read on the client and the _ex forms on the server, odd
// rounds the other way round. Both SSLs are freed before it returns.
void exchange(Family family, const std::vector<size_t>& requests,
              const std::vector<size_t>& responses, Side& client, Side& server) {
  const Contexts contexts;
  ASSERT_TRUE(contexts.ok);
  SSL_CTX* server_ctx = contexts.server.get();
  SSL_CTX* client_ctx = contexts.client.get();

  sockaddr_storage addr{};
  socklen_t alen = 0;
  if (family == Family::kIpv4) {
    auto& a = reinterpret_cast<sockaddr_in&>(addr);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    alen = sizeof(a);
  } else {
    auto& a = reinterpret_cast<sockaddr_in6&>(addr);
    a.sin6_family = AF_INET6;
    if (family == Family::kIpv6) {
      a.sin6_addr = in6addr_loopback;
    } else {
      inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr);
    }
    alen = sizeof(a);
  }
  const int listener = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  if (addr.ss_family == AF_INET6) {
    const int off = 0;
    setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  }
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), alen), 0) << strerror(errno);
  ASSERT_EQ(listen(listener, 1), 0);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &alen);

  bool server_ok = false;
  std::thread server_thread([&] {
    server.fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (server.fd < 0) return;
    server.key = keyOf(server.fd);
    server.ssl = SSL_new(server_ctx);
    // A socket BIO rather than SSL_set_fd: only the syscalls inside
    // SSL_accept can tell the probes which socket this SSL is on.
    SSL_set_bio(server.ssl, BIO_new_socket(server.fd, BIO_NOCLOSE),
                BIO_new_socket(server.fd, BIO_NOCLOSE));
    if (SSL_accept(server.ssl) != 1) return;
    for (size_t i = 0; i < requests.size(); ++i) {
      const bool ex = i % 2 == 0;
      const std::string got = readExactly(server.ssl, requests[i], ex);
      server.received += got;
      if (got.size() != requests[i]) return;
      if (responses[i] == 0) continue;
      const std::string response = pattern(responses[i], 'a' + static_cast<char>(i));
      if (!writeAll(server.ssl, response, ex)) return;
      server.sent += response;
    }
    readExactly(server.ssl, 1, false);  // the client's close_notify: returns 0
    server_ok = true;
  });

  client.fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool connected = connect(client.fd, reinterpret_cast<sockaddr*>(&addr), alen) == 0;
  bool client_ok = connected;
  if (connected) {
    client.key = keyOf(client.fd);
    client.ssl = SSL_new(client_ctx);
    SSL_set_fd(client.ssl, client.fd);
    client_ok = SSL_connect(client.ssl) == 1;
    for (size_t i = 0; client_ok && i < requests.size(); ++i) {
      const bool ex = i % 2 == 1;
      const std::string request = pattern(requests[i], 'A' + static_cast<char>(i));
      client_ok = writeAll(client.ssl, request, ex);
      client.sent += request;
      if (responses[i] != 0) client.received += readExactly(client.ssl, responses[i], ex);
    }
    SSL_shutdown(client.ssl);
  }
  // Unblocks the server's accept or read when the client failed.
  shutdown(client.fd, SHUT_RDWR);
  server_thread.join();
  client.id = reinterpret_cast<uint64_t>(client.ssl);
  server.id = reinterpret_cast<uint64_t>(server.ssl);
  SSL_free(client.ssl);
  SSL_free(server.ssl);
  close(client.fd);
  close(server.fd);
  close(listener);
  ASSERT_TRUE(connected) << strerror(errno);
  ASSERT_TRUE(client_ok);
  ASSERT_TRUE(server_ok);
  // The traced program's own view is untouched.
  EXPECT_EQ(server.received, client.sent);
  EXPECT_EQ(client.received, server.sent);
}

std::vector<std::unique_ptr<Event>> drain(const TlsProgram& program) {
  std::vector<std::unique_ptr<Event>> events;
  ring_buffer* rb = ring_buffer__new(program.ringFd(), collect, &events, nullptr);
  if (rb != nullptr) {
    ring_buffer__consume(rb);
    ring_buffer__free(rb);
  }
  return events;
}

// The data events of one session, per direction, in ring order.
std::map<uint8_t, std::vector<const Event*>> streamsOf(
    const std::vector<std::unique_ptr<Event>>& events, uint64_t id) {
  std::map<uint8_t, std::vector<const Event*>> streams;
  for (const auto& e : events) {
    if (e->header.conn_id == id && e->header.kind == L7TAP_TLS_EVENT_DATA &&
        e->header.tgid == static_cast<uint32_t>(getpid()))
      streams[e->header.direction].push_back(e.get());
  }
  return streams;
}

void expectStream(const std::vector<const Event*>& events, const std::string& bytes,
                  const char* what) {
  SCOPED_TRACE(what);
  uint64_t offset = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& h = events[i]->header;
    EXPECT_EQ(h.seq, i);
    EXPECT_EQ(h.stream_offset, offset);
    EXPECT_LE(h.captured, h.len);
    EXPECT_LE(h.captured, static_cast<uint32_t>(L7TAP_TLS_MAX_CHUNK));
    ASSERT_LE(offset + h.captured, bytes.size());
    EXPECT_TRUE(std::memcmp(events[i]->data.data(), bytes.data() + offset, h.captured) == 0)
        << "bytes differ in the event at offset " << offset;
    offset += h.len;
  }
  EXPECT_EQ(offset, bytes.size());
}

class OpenSslExchange : public ::testing::TestWithParam<Family> {};

TEST_P(OpenSslExchange, PlaintextOfBothSidesOnTheirSockets) {
  L7TAP_SKIP_UNLESS(l7tap::testing::missingRoot());
  TlsProgram program;
  std::string error;
  ASSERT_TRUE(loadForThisProcess(program, 0, error)) << error;
  EXPECT_EQ(program.attachOpenSsl(openSslFile(), error), TlsProgram::Attach::kAlready);

  // 16385 crosses one chunk, 100 KiB all of them.
  Side client, server;
  exchange(GetParam(), {5, 16385, 100 * 1024, 3}, {2, 16385, 100 * 1024, 7}, client, server);
  if (HasFatalFailure()) return;

  // Every event was written before the call it describes returned.
  const auto events = drain(program);
  struct Expected {
    const Side& side;
    uint8_t role;
    const char* name;
  };
  for (const Expected& x : {Expected{client, L7TAP_TLS_ROLE_CLIENT, "client"},
                            Expected{server, L7TAP_TLS_ROLE_SERVER, "server"}}) {
    SCOPED_TRACE(x.name);
    size_t closes = 0;
    bool data_after_close = false;
    for (const auto& e : events) {
      const auto& h = e->header;
      if (h.conn_id != x.side.id || h.tgid != static_cast<uint32_t>(getpid())) continue;
      if (h.kind == L7TAP_TLS_EVENT_CLOSE) {
        ++closes;
        continue;
      }
      ASSERT_EQ(h.kind, L7TAP_TLS_EVENT_DATA);
      data_after_close |= closes > 0;
      EXPECT_EQ(h.library, L7TAP_TLS_LIB_OPENSSL);
      EXPECT_EQ(h.role, x.role);
      EXPECT_EQ(h.fd, x.side.fd);
      ASSERT_EQ(h.tuple_known, 1);
      EXPECT_EQ(std::memcmp(&h.key, &x.side.key, sizeof(h.key)), 0)
          << "port " << h.key.sport << " -> " << h.key.dport << ", expected " << x.side.key.sport
          << " -> " << x.side.key.dport;
      EXPECT_NE(h.netns_ino, 0u);
    }
    EXPECT_EQ(closes, 1u);
    EXPECT_FALSE(data_after_close);
    auto streams = streamsOf(events, x.side.id);
    expectStream(streams[L7TAP_TLS_WRITE], x.side.sent, "write");
    expectStream(streams[L7TAP_TLS_READ], x.side.received, "read");
  }

  const TlsProgramCounters c = program.counters();
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.read_faults, 0u);
  EXPECT_EQ(c.no_socket, 0u);
  EXPECT_GE(c.chunked, 4u);    // 16385 and 100 KiB, written by both sides
  EXPECT_GE(c.truncated, 2u);  // 100 KiB > 4 chunks, both sides
  EXPECT_EQ(c.closes, 2u);
  EXPECT_EQ(c.events, events.size());
}

// A ring of one page holds the small events (header + 256: one size class)
// but no 16 KiB chunk: the 100 KiB request is lost on both sides, and the
// small request after it shows the loss as a seq jump at the right offset.
TEST(OpenSslProbe, FullRingIsASeqJumpAtTheRightOffset) {
  L7TAP_SKIP_UNLESS(l7tap::testing::missingRoot());
  TlsProgram program;
  std::string error;
  ASSERT_TRUE(loadForThisProcess(program, static_cast<uint32_t>(sysconf(_SC_PAGESIZE)), error))
      << error;

  constexpr size_t kLarge = 100 * 1024;
  Side client, server;
  exchange(Family::kIpv4, {5, kLarge, 3}, {2, 0, 0}, client, server);
  if (HasFatalFailure()) return;
  const auto events = drain(program);

  for (auto [side, direction, name] : {std::tuple{&client, L7TAP_TLS_WRITE, "client write"},
                                       std::tuple{&server, L7TAP_TLS_READ, "server read"}}) {
    SCOPED_TRACE(name);
    const auto stream = streamsOf(events, side->id)[direction];
    ASSERT_EQ(stream.size(), 2u);
    EXPECT_EQ(stream[0]->header.seq, 0u);
    EXPECT_EQ(stream[0]->header.stream_offset, 0u);
    EXPECT_EQ(stream[0]->header.len, 5u);
    EXPECT_GE(stream[1]->header.seq, 2u);  // at least one event lost between
    EXPECT_EQ(stream[1]->header.stream_offset, 5 + kLarge);
    EXPECT_EQ(stream[1]->header.len, 3u);
    const std::string& bytes = side == &client ? client.sent : server.received;
    EXPECT_EQ(std::string(stream[1]->data.begin(), stream[1]->data.end()),
              bytes.substr(5 + kLarge));
  }
  const TlsProgramCounters c = program.counters();
  EXPECT_EQ(c.lost_bytes, 2 * kLarge);  // the client's write and the server's reads
  EXPECT_GE(c.lost, 5u);                // 4 chunks of the write, at least 1 read
  EXPECT_EQ(c.events, events.size());
}

INSTANTIATE_TEST_SUITE_P(Families, OpenSslExchange,
                         ::testing::Values(Family::kIpv4, Family::kIpv6, Family::kIpv4Mapped),
                         [](const ::testing::TestParamInfo<Family>& info) {
                           switch (info.param) {
                             case Family::kIpv4:
                               return "Ipv4";
                             case Family::kIpv6:
                               return "Ipv6";
                             case Family::kIpv4Mapped:
                               return "Ipv4MappedOnDualStack";
                           }
                           return "";
                         });

// gRPC core's pattern (TSI): each SSL object on a BIO pair, so its calls make
// no syscall; the program moves the ciphertext between the BIO and the
// socket itself, on the same thread: receive, then SSL_read/handshake; SSL_write/
// handshake, then send. One thread drives both ends of two such sessions,
// with plain traffic on a third connection between the steps, and every
// data event must carry its own session's socket.
struct BioEnd {
  SSL* ssl = nullptr;
  BIO* net = nullptr;  // the program's end of the pair: ciphertext
  int fd = -1;
  l7tap_flow_key key{};
  std::string sent, received;
};

// Sends all the ciphertext `e` has produced; returns its size.
size_t flushTo(BioEnd& e) {
  size_t total = 0;
  char buf[16384];
  for (int n; (n = BIO_read(e.net, buf, sizeof(buf))) > 0; total += static_cast<size_t>(n))
    if (send(e.fd, buf, static_cast<size_t>(n), 0) != n) return 0;
  return total;
}

// Receives exactly n bytes of ciphertext and feeds them to `e`'s BIO.
bool feed(BioEnd& e, size_t n) {
  char buf[16384];
  while (n > 0) {
    const ssize_t got = recv(e.fd, buf, std::min(sizeof(buf), n), 0);
    if (got <= 0 || BIO_write(e.net, buf, static_cast<int>(got)) != got) return false;
    n -= static_cast<size_t>(got);
  }
  return true;
}

// Plain bytes over an unrelated connection, between the TLS steps.
void decoy(int a, int b) {
  char c = 'x';
  ASSERT_EQ(send(a, &c, 1, 0), 1);
  ASSERT_EQ(recv(b, &c, 1, 0), 1);
}

// Connected TCP pair over IPv4 loopback: {client, server}.
std::pair<int, int> tcpPair() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bind(listener, reinterpret_cast<sockaddr*>(&a), alen);
  listen(listener, 1);
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &alen);
  const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(c, reinterpret_cast<sockaddr*>(&a), alen) != 0) return {-1, -1};
  const int s = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  return {c, s};
}

void pairUp(SSL_CTX* ctx, BioEnd& e, int fd, bool client) {
  e.ssl = SSL_new(ctx);
  BIO* internal = nullptr;
  BIO_new_bio_pair(&internal, 1 << 17, &e.net, 1 << 17);
  SSL_set_bio(e.ssl, internal, internal);
  client ? SSL_set_connect_state(e.ssl) : SSL_set_accept_state(e.ssl);
  e.fd = fd;
  e.key = keyOf(fd);
}

// One step of `from` (handshake, or writing `msg`), its ciphertext sent and
// received and fed to `to`, which then handshakes or reads all it can.
bool step(BioEnd& from, BioEnd& to, const std::string& msg, int decoy_a, int decoy_b) {
  if (msg.empty()) {
    SSL_do_handshake(from.ssl);
  } else {
    if (SSL_write(from.ssl, msg.data(), static_cast<int>(msg.size())) !=
        static_cast<int>(msg.size()))
      return false;
    from.sent += msg;
  }
  const size_t n = flushTo(from);
  decoy(decoy_a, decoy_b);
  if (n == 0) return true;
  if (!feed(to, n)) return false;
  if (!SSL_is_init_finished(to.ssl)) {
    SSL_do_handshake(to.ssl);
    return true;
  }
  char buf[16384];
  for (int got; (got = SSL_read(to.ssl, buf, sizeof(buf))) > 0;)
    to.received.append(buf, static_cast<size_t>(got));
  return true;
}

TEST(OpenSslProbe, MemoryBioPairsGetTheirSocketFromTheThreadsSyscalls) {
  L7TAP_SKIP_UNLESS(l7tap::testing::missingRoot());
  TlsProgram program;
  std::string error;
  ASSERT_TRUE(loadForThisProcess(program, 0, error)) << error;

  const Contexts contexts;
  ASSERT_TRUE(contexts.ok);
  SSL_CTX* server_ctx = contexts.server.get();
  SSL_CTX* client_ctx = contexts.client.get();
  const auto [d1, d2] = tcpPair();
  ASSERT_GE(d1, 0);
  BioEnd ends[2][2];  // [session][client, server]
  for (auto& session : ends) {
    const auto [c, s] = tcpPair();
    ASSERT_GE(c, 0);
    pairUp(client_ctx, session[0], c, true);
    pairUp(server_ctx, session[1], s, false);
  }
  // Handshakes and exchanges of both sessions, interleaved.
  for (int round = 0; round < 4; ++round) {
    for (auto& session : ends) {
      ASSERT_TRUE(step(session[0], session[1], "", d1, d2));
      ASSERT_TRUE(step(session[1], session[0], "", d2, d1));
    }
  }
  for (auto& session : ends) {
    ASSERT_TRUE(SSL_is_init_finished(session[0].ssl));
    ASSERT_TRUE(SSL_is_init_finished(session[1].ssl));
  }
  for (size_t i = 0; i < 3; ++i) {
    for (int k = 0; k < 2; ++k) {
      auto& session = ends[k];
      ASSERT_TRUE(step(session[0], session[1], pattern(5 + 700 * i, 'A' + k), d1, d2));
      ASSERT_TRUE(step(session[1], session[0], pattern(3 + 900 * i, 'a' + k), d2, d1));
    }
  }
  const auto events = drain(program);
  for (auto& session : ends) {
    for (int side = 0; side < 2; ++side) {
      BioEnd& e = session[side];
      SCOPED_TRACE(side == 0 ? "client" : "server");
      EXPECT_EQ(session[1 - side].received, e.sent);
      const uint64_t id = reinterpret_cast<uint64_t>(e.ssl);
      // The socket is known from the first exchange in both directions
      // on: the events before it carry none (the daemon holds them until
      // one does), never a wrong one.
      size_t known = 0, unknown = 0;
      for (const auto& ev : events) {
        const auto& h = ev->header;
        if (h.conn_id != id || h.kind != L7TAP_TLS_EVENT_DATA) continue;
        EXPECT_EQ(h.role, side == 0 ? L7TAP_TLS_ROLE_CLIENT : L7TAP_TLS_ROLE_SERVER);
        if (!h.tuple_known) {
          EXPECT_EQ(known, 0u) << "a session's socket is never forgotten";
          ++unknown;
          continue;
        }
        ++known;
        EXPECT_EQ(h.fd, e.fd);
        EXPECT_EQ(std::memcmp(&h.key, &e.key, sizeof(h.key)), 0)
            << "port " << h.key.sport << " -> " << h.key.dport << ", expected " << e.key.sport
            << " -> " << e.key.dport;
      }
      // The client's first write (its send comes after the event), the
      // server's first read and first write.
      EXPECT_EQ(unknown, side == 0 ? 1u : 2u);
      EXPECT_GE(known, 4u);
      auto streams = streamsOf(events, id);
      expectStream(streams[L7TAP_TLS_WRITE], e.sent, "write");
      expectStream(streams[L7TAP_TLS_READ], e.received, "read");
    }
  }
  for (auto& session : ends) {
    for (auto& e : session) {
      SSL_free(e.ssl);
      BIO_free(e.net);
      close(e.fd);
    }
  }
  close(d1);
  close(d2);
  const TlsProgramCounters c = program.counters();
  EXPECT_EQ(c.fd_inferred, 4u);
  EXPECT_EQ(c.fd_ambiguous, 0u);
  EXPECT_EQ(c.no_socket, 2u * 3);  // the unknown events above, both sessions
  EXPECT_EQ(c.lost, 0u);
}

// Evidence that names two sockets leaves the session without one, for good:
// here the server's thread receives on another connection between feeding
// its ciphertext and calling SSL_read, so the receive before the read is not
// the session's, and the send after its write is.
TEST(OpenSslProbe, MemoryBioWithConflictingEvidenceGetsNoSocket) {
  L7TAP_SKIP_UNLESS(l7tap::testing::missingRoot());
  TlsProgram program;
  std::string error;
  ASSERT_TRUE(loadForThisProcess(program, 0, error)) << error;

  const Contexts contexts;
  ASSERT_TRUE(contexts.ok);
  SSL_CTX* server_ctx = contexts.server.get();
  SSL_CTX* client_ctx = contexts.client.get();
  const auto [d1, d2] = tcpPair();
  const auto [c, s] = tcpPair();
  ASSERT_GE(d1, 0);
  ASSERT_GE(c, 0);
  BioEnd client, server;
  pairUp(client_ctx, client, c, true);
  pairUp(server_ctx, server, s, false);
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(step(client, server, "", d1, d2));
    ASSERT_TRUE(step(server, client, "", d2, d1));
  }
  ASSERT_TRUE(SSL_is_init_finished(server.ssl));
  // The client's request, fed to the server, then a receive elsewhere.
  const std::string request = pattern(300, 'R');
  ASSERT_EQ(SSL_write(client.ssl, request.data(), static_cast<int>(request.size())),
            static_cast<int>(request.size()));
  const size_t n = flushTo(client);
  ASSERT_TRUE(feed(server, n));
  decoy(d1, d2);
  char buf[4096];
  ASSERT_EQ(SSL_read(server.ssl, buf, sizeof(buf)), static_cast<int>(request.size()));
  for (size_t i = 0; i < 2; ++i) ASSERT_TRUE(step(server, client, pattern(40, 'r'), d2, d1));
  const auto events = drain(program);
  const uint64_t id = reinterpret_cast<uint64_t>(server.ssl);
  size_t data = 0;
  for (const auto& ev : events) {
    if (ev->header.conn_id != id || ev->header.kind != L7TAP_TLS_EVENT_DATA) continue;
    ++data;
    EXPECT_EQ(ev->header.tuple_known, 0);
    EXPECT_EQ(ev->header.fd, -1);
  }
  EXPECT_EQ(data, 3u);
  for (auto* e : {&client, &server}) {
    SSL_free(e->ssl);
    BIO_free(e->net);
    close(e->fd);
  }
  close(d1);
  close(d2);
  const TlsProgramCounters counters = program.counters();
  EXPECT_EQ(counters.fd_ambiguous, 1u);
  EXPECT_EQ(counters.fd_inferred, 1u);  // the client's
}

// Without a pid filter, an exec anywhere is an event with the new tgid and
// comm: the daemon looks at the new program's libraries then.
TEST(OpenSslProbe, ExecIsAnEvent) {
  L7TAP_SKIP_UNLESS(l7tap::testing::missingRoot());
  TlsProgram program;
  std::string error;
  ASSERT_TRUE(program.load(TlsProgramConfig{}, error)) << error;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl("/bin/true", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  std::vector<std::unique_ptr<Event>> events;
  ring_buffer* rb = ring_buffer__new(program.ringFd(), collect, &events, nullptr);
  ASSERT_NE(rb, nullptr);
  ring_buffer__consume(rb);
  ring_buffer__free(rb);
  size_t execs = 0;
  for (const auto& e : events) {
    if (e->header.kind != L7TAP_TLS_EVENT_EXEC || e->header.tgid != static_cast<uint32_t>(child))
      continue;
    ++execs;
    EXPECT_STREQ(e->header.comm, "true");
    EXPECT_EQ(e->header.tid, static_cast<uint32_t>(child));
    EXPECT_EQ(e->header.captured, 0u);
  }
  EXPECT_EQ(execs, 1u);
  EXPECT_GE(program.counters().execs, 1u);
}

TEST(OpenSslProbe, FileWithoutTheSymbolsIsOneClearLine) {
  L7TAP_SKIP_UNLESS(l7tap::testing::missingRoot());
  TlsProgram program;
  std::string error;
  TlsProgramConfig config;
  config.pids = {static_cast<uint32_t>(getpid())};
  ASSERT_TRUE(program.load(config, error)) << error;
  EXPECT_EQ(program.attachOpenSsl("/bin/true", error), TlsProgram::Attach::kFailed);
  EXPECT_EQ(error, "/bin/true: no SSL_write, SSL_read (not OpenSSL or BoringSSL, or stripped)");
  EXPECT_EQ(program.attachOpenSsl("/etc/passwd", error), TlsProgram::Attach::kFailed);
  EXPECT_EQ(error, "/etc/passwd: not an ELF file");
  EXPECT_EQ(program.attachOpenSsl("/nonexistent/libssl.so.3", error), TlsProgram::Attach::kFailed);
  EXPECT_EQ(error, "/nonexistent/libssl.so.3: No such file or directory");
}

TEST(OpenSslProbe, NotLoadedIsAFailureNotACrash) {
  TlsProgram program;
  std::string error;
  EXPECT_EQ(program.attachOpenSsl("/bin/true", error), TlsProgram::Attach::kFailed);
  EXPECT_EQ(program.ringFd(), -1);
  EXPECT_EQ(program.counters().events, 0u);
}

}  // namespace
}  // namespace l7tap
