#include "daemon/attached_interfaces.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace l7tap {

namespace {

bool isLoopback(const std::string& name) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  const bool loopback = ioctl(fd, SIOCGIFFLAGS, &req) == 0 && (req.ifr_flags & IFF_LOOPBACK);
  close(fd);
  return loopback;
}

void reportNoLock(const std::string& name, const std::string& why) {
  std::fprintf(stderr, "l7tap: %s: cannot lock it (%s); attaching without the lock\n", name.c_str(),
               why.c_str());
}

}  // namespace

namespace {

class ProgramAttached final : public Attached {
 public:
  explicit ProgramAttached(InterfaceAttachment attachment) : attachment_(std::move(attachment)) {}
  const char* description() const override { return attachment_.description(); }

 private:
  InterfaceAttachment attachment_;
};

}  // namespace

std::unique_ptr<Attached> ProgramAttacher::attach(const InterfaceEvent& iface, std::string& error) {
  AttachPrograms progs = programs_;
  if (isLoopback(iface.name)) progs.tc_ingress_fd = -1;
  InterfaceAttachment attachment;
  if (!attachment.attach(iface.ifindex, progs, mode_, error)) return nullptr;
  return std::make_unique<ProgramAttached>(std::move(attachment));
}

AttachedInterfaces::AttachedInterfaces(std::vector<std::string> patterns, Attacher& attacher,
                                       std::string lock_dir, Listener listener)
    : watcher_(std::make_unique<InterfaceWatcher>(std::move(patterns))),
      attacher_(&attacher),
      lock_dir_(std::move(lock_dir)),
      listener_(std::move(listener)) {}

AttachedInterfaces::~AttachedInterfaces() { clear(); }

void AttachedInterfaces::clear() {
  attached_.clear();  // each attachment detaches itself
  locks_.clear();
}

int AttachedInterfaces::fd() const { return watcher_->fd(); }

bool AttachedInterfaces::start(std::string& error) {
  if (!watcher_->start(error)) return false;
  const std::vector<InterfaceEvent> now = watcher_->current();
  std::map<int, InterfaceLock> taken;
  for (const InterfaceEvent& ev : now) {
    if (!ev.present) continue;
    pid_t holder = 0;
    std::string why;
    InterfaceLock lock;
    switch (lock.acquire(ev.ifindex, holder, why, lock_dir_)) {
      case InterfaceLock::Result::kTaken:
        taken.emplace(ev.ifindex, std::move(lock));
        break;
      case InterfaceLock::Result::kBusy:
        error = ev.name + " (ifindex " + std::to_string(ev.ifindex) +
                ") is captured by another l7tap" +
                (holder ? " (pid " + std::to_string(holder) + ")" : std::string()) +
                "; one l7tap per interface: stop it first or leave this interface out";
        return false;
      case InterfaceLock::Result::kError:
        reportNoLock(ev.name, why);
        break;
    }
  }
  for (const InterfaceEvent& ev : now) {
    auto it = taken.find(ev.ifindex);
    follow(ev, it == taken.end() ? InterfaceLock{} : std::move(it->second));
  }
  if (attached_.empty()) {
    std::fprintf(stderr, "l7tap: no interface matches yet; waiting for one to appear\n");
  }
  return true;
}

void AttachedInterfaces::onReadable() {
  watcher_->drain([this](const InterfaceEvent& ev) { follow(ev); });
}

void AttachedInterfaces::follow(const InterfaceEvent& ev, InterfaceLock lock) {
  if (!ev.present) {
    if (attached_.erase(ev.ifindex)) {
      std::fprintf(stderr, "l7tap: %s (ifindex %d) is gone\n", ev.name.c_str(), ev.ifindex);
      if (listener_) listener_(ev, false);
    }
    locks_.erase(ev.ifindex);
    return;
  }
  if (attached_.count(ev.ifindex)) return;  // already attached; a state change
  if (!lock.held()) {
    pid_t holder = 0;
    std::string why;
    switch (lock.acquire(ev.ifindex, holder, why, lock_dir_)) {
      case InterfaceLock::Result::kTaken:
        break;
      case InterfaceLock::Result::kBusy:
        std::fprintf(stderr,
                     "l7tap: %s (ifindex %d) is captured by another l7tap (pid %d); not attached\n",
                     ev.name.c_str(), ev.ifindex, static_cast<int>(holder));
        return;
      case InterfaceLock::Result::kError:
        reportNoLock(ev.name, why);
        break;
    }
  }
  std::string error;
  std::unique_ptr<Attached> attachment = attacher_->attach(ev, error);
  if (!attachment) {
    std::fprintf(stderr, "l7tap: %s: %s\n", ev.name.c_str(), error.c_str());
    return;
  }
  std::fprintf(stderr, "l7tap: attached to %s (ifindex %d, %s)\n", ev.name.c_str(), ev.ifindex,
               attachment->description());
  attached_.emplace(ev.ifindex, std::move(attachment));
  if (lock.held()) locks_[ev.ifindex] = std::move(lock);
  if (listener_) listener_(ev, true);
}

}  // namespace l7tap
