// What the commands that run until a signal wait on (attach, trace):
// SIGINT/SIGTERM as a signalfd, a periodic timer, and their sources, in one
// epoll set.
#pragma once

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

namespace l7tap {

inline constexpr uint64_t kNsPerSec = 1000ull * 1000 * 1000;

inline uint64_t clockNs(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

/// Added to a kernel CLOCK_MONOTONIC time, gives the wall clock.
inline int64_t monoToRealNs() {
  return static_cast<int64_t>(clockNs(CLOCK_REALTIME)) -
         static_cast<int64_t>(clockNs(CLOCK_MONOTONIC));
}

// Closes a file descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

struct LoopFds {
  Fd sig, timer, ep;

  /// Blocks SIGINT and SIGTERM (they arrive on `sig`), arms the timer every
  /// `interval_ms` and watches `sources` for input.
  bool open(uint32_t interval_ms, std::initializer_list<int> sources, std::string& error) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    sig.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    ep.fd = epoll_create1(EPOLL_CLOEXEC);
    if (sig.fd < 0 || timer.fd < 0 || ep.fd < 0) {
      error = std::string("event loop: ") + std::strerror(errno);
      return false;
    }
    const long interval_ns = static_cast<long>(interval_ms) * 1000000L;
    itimerspec its{};
    its.it_interval.tv_sec = interval_ns / 1000000000L;
    its.it_interval.tv_nsec = interval_ns % 1000000000L;
    its.it_value = its.it_interval;
    timerfd_settime(timer.fd, 0, &its, nullptr);
    for (int fd : {sig.fd, timer.fd}) add(fd);
    for (int fd : sources) add(fd);
    return true;
  }

  void add(int fd) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    epoll_ctl(ep.fd, EPOLL_CTL_ADD, fd, &e);
  }

  /// Reads the timer's expirations so it can fire again.
  void ackTimer() {
    uint64_t expirations;
    while (read(timer.fd, &expirations, sizeof expirations) > 0) {
    }
  }
};

}  // namespace l7tap
