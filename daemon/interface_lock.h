// One l7tap per interface: a lock file per (network namespace, ifindex),
// held with flock() while l7tap's programs are attached there. The kernel
// drops the lock when the process ends, kill -9 included, so a lock never
// outlives its daemon.
#pragma once

#include <sys/types.h>

#include <string>

namespace l7tap {

class InterfaceLock {
 public:
  /// Where the lock files live by default (created on first use); every
  /// l7tap of a node must use the same directory for the lock to hold.
  static constexpr const char* kDirectory = "/run/l7tap";

  enum class Result {
    kTaken,  ///< this process holds the interface now
    kBusy,   ///< another running l7tap holds it (`holder`: its pid, 0 if unknown)
    kError,  ///< no lock could be made (`error` says why)
  };

  InterfaceLock() = default;
  ~InterfaceLock() { release(); }
  InterfaceLock(InterfaceLock&& other) noexcept;
  InterfaceLock& operator=(InterfaceLock&& other) noexcept;
  InterfaceLock(const InterfaceLock&) = delete;
  InterfaceLock& operator=(const InterfaceLock&) = delete;

  /// Takes the lock of interface `ifindex` of this process's network namespace.
  Result acquire(int ifindex, pid_t& holder, std::string& error,
                 const std::string& directory = kDirectory);
  void release();
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace l7tap
