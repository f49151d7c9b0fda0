// The interfaces live capture is attached to: every one that matches the
// patterns now, and those that appear later (and forgotten when they
// vanish), each held with its interface lock while attached.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/attachment.h"
#include "daemon/interface_lock.h"
#include "daemon/interface_watcher.h"

namespace l7tap {

/// What is attached to one interface; destroying it detaches.
class Attached {
 public:
  virtual ~Attached() = default;
  /// How it is attached, for the log ("tcx", "clsact", ...).
  virtual const char* description() const = 0;
};

/// Puts something on one interface.
class Attacher {
 public:
  virtual ~Attacher() = default;
  /// Null with `error` set when it could not.
  virtual std::unique_ptr<Attached> attach(const InterfaceEvent& iface, std::string& error) = 0;
};

/// l7tap's loaded programs, in `mode` (InterfaceAttachment). A loopback
/// device gets no ingress program: every packet there passes its egress
/// and then its ingress hook, and would be reported twice.
class ProgramAttacher final : public Attacher {
 public:
  ProgramAttacher(const AttachPrograms& programs, AttachMode mode)
      : programs_(programs), mode_(mode) {}
  std::unique_ptr<Attached> attach(const InterfaceEvent& iface, std::string& error) override;

 private:
  AttachPrograms programs_;
  AttachMode mode_;
};

class AttachedInterfaces {
 public:
  /// Told of every interface once attached (`attached` true) and once it is
  /// gone again (false); called on the thread that drives this.
  using Listener = std::function<void(const InterfaceEvent& iface, bool attached)>;

  /// Follows the interfaces that match `patterns`, attaching with
  /// `attacher` (which must outlive this); the locks live in `lock_dir`.
  AttachedInterfaces(std::vector<std::string> patterns, Attacher& attacher,
                     std::string lock_dir = InterfaceLock::kDirectory, Listener listener = {});
  ~AttachedInterfaces();
  AttachedInterfaces(const AttachedInterfaces&) = delete;
  AttachedInterfaces& operator=(const AttachedInterfaces&) = delete;

  /// Watches for interfaces and attaches to those that match now. Fails as a
  /// whole when one of them is captured by another l7tap (two daemons on one
  /// interface would each report its traffic, or the second would remove
  /// the first's clsact filters). No match is fine: one may appear later.
  bool start(std::string& error);
  /// The descriptor to wait on for interfaces that come and go.
  int fd() const;
  /// Attaches to interfaces that appeared, forgets those that are gone.
  void onReadable();
  /// Detaches from every interface (also done by the destructor).
  void clear();
  size_t size() const { return attached_.size(); }

 private:
  /// Attaches to a present interface (taking its lock unless `lock` holds
  /// it already), forgets a gone one.
  void follow(const InterfaceEvent& ev, InterfaceLock lock = {});

  std::unique_ptr<InterfaceWatcher> watcher_;
  Attacher* attacher_;
  std::string lock_dir_;
  Listener listener_;
  // By ifindex. An attachment goes before its lock: declared after the locks.
  std::map<int, InterfaceLock> locks_;
  std::map<int, std::unique_ptr<Attached>> attached_;
};

}  // namespace l7tap
