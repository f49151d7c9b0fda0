// /metrics, /healthz and /readyz over HTTP, served by libmicrohttpd from one
// internal thread. Binding and serving are separate steps so that the port
// is taken (and a port in use reported) before `attach` drops its
// privileges, while the server's thread starts only after the drop, which
// refuses to run beside other threads (privileges/README.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "metrics/exposition.h"

struct MHD_Daemon;

namespace l7tap {

/// Every bound of the server: a scrape is a handful of small requests, so
/// anything larger or slower is a client to shed, not to serve.
struct EndpointLimits {
  /// Open connections at once (Prometheus keeps one alive per target; the
  /// kubelet's probes add one each).
  unsigned max_connections = 16;
  /// Open connections from one address.
  unsigned max_connections_per_ip = 8;
  /// Idle seconds before a connection is closed.
  unsigned connection_timeout_s = 10;
  /// Per-connection memory for the request line and headers (the response
  /// body is held separately); larger requests get 431/413.
  size_t connection_memory_bytes = 16 * 1024;
  /// listen(2) backlog.
  int listen_backlog = 16;
};

class HttpEndpoint {
 public:
  struct Handlers {
    /// The body for /metrics in the negotiated format (metrics::render on
    /// the registry). Called on the server's thread.
    std::function<std::string(metrics::ExpositionFormat)> metrics;
    /// /readyz and /healthz: true = 200 "ok\n"; false = 503 with `why`.
    /// Called on the server's thread.
    std::function<bool(std::string& why)> ready;
    std::function<bool(std::string& why)> healthy;
  };

  explicit HttpEndpoint(EndpointLimits limits = {}) : limits_(limits) {}
  ~HttpEndpoint() { stop(); }
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  /// Binds and listens on `address` (HOST:PORT with a numeric HOST or
  /// `localhost`, [v6]:PORT, :PORT for every
  /// address; port 0 = any free port), starting no thread. false with
  /// `error` ("0.0.0.0:9464: Address already in use") on a bad address or
  /// a failed bind; the caller names its flag in front of it.
  bool bind(const std::string& address, std::string& error);
  /// The bound port (the one the kernel chose for port 0); 0 before bind().
  uint16_t port() const { return port_; }
  /// The bound address as HOST:PORT ([v6]:PORT), the port resolved.
  const std::string& boundAddress() const { return bound_; }

  /// Starts serving on the bound socket (one libmicrohttpd thread).
  bool start(Handlers handlers, std::string& error);
  /// Stops the thread and closes the socket; idempotent.
  void stop();

  /// The request handling, for the libmicrohttpd callback.
  struct Response {
    unsigned status;
    std::string content_type;
    std::string body;
  };
  Response respond(const char* method, const char* path, const char* accept) const;

 private:
  EndpointLimits limits_;
  int fd_ = -1;  // bound, owned until start() hands it to the server
  uint16_t port_ = 0;
  std::string bound_;
  Handlers handlers_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace l7tap
