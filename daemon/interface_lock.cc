#include "daemon/interface_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace l7tap {

namespace {

// A holder that releases unlinks the file; one that opened it just before
// then locks a file no longer on disk. Trying again finds the new one.
constexpr int kMaxAttempts = 4;

pid_t readPid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? static_cast<pid_t>(std::strtol(buf, nullptr, 10)) : 0;
}

}  // namespace

InterfaceLock::InterfaceLock(InterfaceLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

InterfaceLock& InterfaceLock::operator=(InterfaceLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

InterfaceLock::Result InterfaceLock::acquire(int ifindex, pid_t& holder, std::string& error,
                                             const std::string& directory) {
  release();
  holder = 0;
  struct stat ns;
  if (::stat("/proc/self/ns/net", &ns) != 0) {
    error = std::string("/proc/self/ns/net: ") + std::strerror(errno);
    return Result::kError;
  }
  if (::mkdir(directory.c_str(), 0755) != 0 && errno != EEXIST) {
    error = directory + ": " + std::strerror(errno);
    return Result::kError;
  }
  const std::string path =
      directory + "/net-" + std::to_string(ns.st_ino) + "-if-" + std::to_string(ifindex) + ".lock";
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      error = path + ": " + std::strerror(errno);
      return Result::kError;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) holder = readPid(fd);
      ::close(fd);
      if (err == EWOULDBLOCK) return Result::kBusy;
      error = path + ": " + std::strerror(err);
      return Result::kError;
    }
    struct stat locked, named;
    if (::fstat(fd, &locked) != 0 || ::stat(path.c_str(), &named) != 0 ||
        locked.st_ino != named.st_ino) {
      ::close(fd);
      continue;
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // The lock holds without the pid; only the message of a refused
      // second daemon would lack it.
    }
    fd_ = fd;
    path_ = path;
    return Result::kTaken;
  }
  error = path + ": replaced again and again while locking it";
  return Result::kError;
}

void InterfaceLock::release() {
  if (fd_ < 0) return;
  // Unlinked while still locked, so no one locks the file being removed
  // (see kMaxAttempts).
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

}  // namespace l7tap
