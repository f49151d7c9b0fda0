#include "endpoint/http_endpoint.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <string_view>

namespace l7tap {
namespace {

constexpr std::string_view kPlainText = "text/plain; charset=utf-8";

bool parsePort(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

// HOST:PORT, [v6]:PORT or :PORT into its host (empty: every address) and port.
bool splitAddress(const std::string& address, std::string& host, uint16_t& port, std::string& why) {
  std::string_view rest;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      why = "expected [IPv6]:PORT";
      return false;
    }
    host = address.substr(1, close - 1);
    if (host.empty()) {
      why = "empty IPv6 address in brackets";
      return false;
    }
    rest = std::string_view(address).substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      why = "expected HOST:PORT, [IPv6]:PORT or :PORT";
      return false;
    }
    host = address.substr(0, colon);
    if (host.find(':') != std::string::npos) {
      why = "an IPv6 address goes in brackets ([::1]:PORT)";
      return false;
    }
    rest = std::string_view(address).substr(colon + 1);
  }
  if (!parsePort(rest, port)) {
    why = "port '" + std::string(rest) + "' is not a number from 0 to 65535";
    return false;
  }
  return true;
}

struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) close(fd);
  }
  int release() {
    const int f = fd;
    fd = -1;
    return f;
  }
};

std::string describeSocket(int fd, uint16_t& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return {};
  }
  parsePort(serv, port);
  return ss.ss_family == AF_INET6 ? "[" + std::string(host) + "]:" + serv
                                  : std::string(host) + ":" + serv;
}

MHD_Result onRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                     const char* /*version*/, const char* /*upload_data*/,
                     size_t* /*upload_data_size*/, void** /*con_cls*/) {
  const auto* endpoint = static_cast<const HttpEndpoint*>(cls);
  const char* accept = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Accept");
  HttpEndpoint::Response r;
  try {
    r = endpoint->respond(method, url, accept);
  } catch (const std::exception& e) {
    // Most likely bad_alloc rendering a large registry: the scrape fails,
    // the daemon does not.
    r = {MHD_HTTP_INTERNAL_SERVER_ERROR, std::string(kPlainText), std::string(e.what()) + "\n"};
  }
  // Copied: the body is gone when this returns, the response is sent later.
  MHD_Response* response =
      MHD_create_response_from_buffer(r.body.size(), r.body.data(), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
  MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (r.status == MHD_HTTP_METHOD_NOT_ALLOWED) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  }
  const MHD_Result queued = MHD_queue_response(connection, r.status, response);
  MHD_destroy_response(response);
  return queued;
}

}  // namespace

bool HttpEndpoint::bind(const std::string& address, std::string& error) {
  if (fd_ >= 0 || daemon_ != nullptr) {
    error = address + ": already bound to " + bound_;
    return false;
  }
  std::string host;
  uint16_t port = 0;
  std::string why;
  if (!splitAddress(address, host, port, why)) {
    error = address + ": " + why;
    return false;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool all = host.empty();
  if (all) {
    // Every address: IPv6's wildcard takes IPv4 too (V6ONLY off below); a
    // host without IPv6 gets IPv4's.
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons(port);
    len = sizeof *in6;
  } else {
    // Numeric only: a daemon's start must not wait on DNS, and a name
    // with several addresses would leave which one is bound to chance.
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
    addrinfo* found = nullptr;
    const int rc =
        getaddrinfo(host == "localhost" ? "127.0.0.1" : host.c_str(), "0", &hints, &found);
    if (rc != 0 || found == nullptr) {
      error = address + ": '" + host + "' is not a numeric IPv4 or IPv6 address";
      return false;
    }
    std::memcpy(&ss, found->ai_addr, found->ai_addrlen);
    len = found->ai_addrlen;
    freeaddrinfo(found);
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
    }
  }
  FdGuard fd{socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0 && all && errno == EAFNOSUPPORT) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    *in = {};
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    in->sin_port = htons(port);
    len = sizeof *in;
    all = false;
    fd.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  }
  if (fd.fd < 0) {
    error = address + ": socket: " + std::strerror(errno);
    return false;
  }
  // A restarted daemon rebinds at once despite its predecessor's
  // TIME_WAIT connections; another listener still makes bind fail.
  const int one = 1;
  setsockopt(fd.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (all) {
    const int zero = 0;
    setsockopt(fd.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  }
  if (::bind(fd.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      listen(fd.fd, limits_.listen_backlog) != 0) {
    error = address + ": " + std::strerror(errno);
    return false;
  }
  bound_ = describeSocket(fd.fd, port_);
  fd_ = fd.release();
  return true;
}

bool HttpEndpoint::start(Handlers handlers, std::string& error) {
  if (daemon_ != nullptr) {
    error = "already serving on " + bound_;
    return false;
  }
  if (fd_ < 0) {
    error = "not bound";
    return false;
  }
  handlers_ = std::move(handlers);
  // Signals are the caller's event loop's (attach takes SIGINT and SIGTERM
  // through a signalfd, blocked only in its own thread): the server's
  // thread starts with every signal blocked, or a SIGTERM delivered to it
  // would kill the process instead of stopping it cleanly.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // One thread polls (epoll) and answers: scrapes are rare and cheap next
  // to the pipeline, and a thread per connection would be unbounded.
  daemon_ = MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC, 0, nullptr, nullptr, &onRequest, this,
      MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(fd_), MHD_OPTION_CONNECTION_LIMIT,
      limits_.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, limits_.max_connections_per_ip,
      MHD_OPTION_CONNECTION_TIMEOUT, limits_.connection_timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, limits_.connection_memory_bytes, MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (daemon_ == nullptr) {
    error = bound_ + ": libmicrohttpd could not start serving";
    return false;
  }
  fd_ = -1;  // the server's now: MHD_stop_daemon closes it
  return true;
}

void HttpEndpoint::stop() {
  if (daemon_ != nullptr) {
    MHD_stop_daemon(daemon_);
    daemon_ = nullptr;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

HttpEndpoint::Response HttpEndpoint::respond(const char* method, const char* path,
                                             const char* accept) const {
  const std::string_view p = path ? path : "";
  const bool metrics = p == "/metrics";
  const bool ready = p == "/readyz";
  const bool healthy = p == "/healthz";
  if (!metrics && !ready && !healthy) {
    return {MHD_HTTP_NOT_FOUND, std::string(kPlainText),
            "not found: try /metrics, /healthz or /readyz\n"};
  }
  const std::string_view m = method ? method : "";
  // HEAD: libmicrohttpd sends the headers of the GET response without its body.
  if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD) {
    return {MHD_HTTP_METHOD_NOT_ALLOWED, std::string(kPlainText), "method not allowed\n"};
  }
  if (metrics) {
    const metrics::ExpositionFormat format = metrics::negotiateFormat(accept ? accept : "");
    if (!handlers_.metrics) {
      return {MHD_HTTP_SERVICE_UNAVAILABLE, std::string(kPlainText), "no metrics\n"};
    }
    return {MHD_HTTP_OK, std::string(metrics::contentType(format)), handlers_.metrics(format)};
  }
  const auto& check = ready ? handlers_.ready : handlers_.healthy;
  std::string why;
  if (!check || check(why)) return {MHD_HTTP_OK, std::string(kPlainText), "ok\n"};
  if (why.empty()) why = ready ? "not ready" : "not healthy";
  return {MHD_HTTP_SERVICE_UNAVAILABLE, std::string(kPlainText), why + "\n"};
}

}  // namespace l7tap
