// Which interfaces to attach to: names or globs, matched now and as links
// appear and vanish (rtnetlink link notifications).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace l7tap {

struct InterfaceEvent {
  int ifindex = 0;
  std::string name;
  bool present = true;  ///< false: the link was removed
};

class InterfaceWatcher {
 public:
  explicit InterfaceWatcher(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}
  ~InterfaceWatcher();
  InterfaceWatcher(const InterfaceWatcher&) = delete;
  InterfaceWatcher& operator=(const InterfaceWatcher&) = delete;

  /// True if `name` matches one of the patterns (fnmatch globs).
  bool matches(const std::string& name) const;
  /// Opens the rtnetlink socket; false with `error` set on failure.
  bool start(std::string& error);
  /// The socket to wait on for link notifications.
  int fd() const { return fd_; }
  /// Matching interfaces that exist now.
  std::vector<InterfaceEvent> current() const;
  /// Reads pending notifications and reports those about matching names.
  void drain(const std::function<void(const InterfaceEvent&)>& report);

 private:
  std::vector<std::string> patterns_;
  int fd_ = -1;
};

}  // namespace l7tap
