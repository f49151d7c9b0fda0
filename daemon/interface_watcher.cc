#include "daemon/interface_watcher.h"

#include <fnmatch.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace l7tap {

InterfaceWatcher::~InterfaceWatcher() {
  if (fd_ >= 0) close(fd_);
}

bool InterfaceWatcher::matches(const std::string& name) const {
  for (const std::string& p : patterns_) {
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

bool InterfaceWatcher::start(std::string& error) {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) {
    error = std::string("rtnetlink socket: ") + std::strerror(errno);
    return false;
  }
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_LINK;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    error = std::string("rtnetlink bind: ") + std::strerror(errno);
    close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

std::vector<InterfaceEvent> InterfaceWatcher::current() const {
  std::vector<InterfaceEvent> out;
  struct if_nameindex* list = ::if_nameindex();
  if (!list) return out;
  for (struct if_nameindex* i = list; i->if_index != 0; ++i) {
    if (matches(i->if_name)) out.push_back({static_cast<int>(i->if_index), i->if_name, true});
  }
  if_freenameindex(list);
  return out;
}

void InterfaceWatcher::drain(const std::function<void(const InterfaceEvent&)>& report) {
  alignas(nlmsghdr) char buf[16384];
  for (;;) {
    const ssize_t got = recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) return;  // EAGAIN: nothing more (ENOBUFS: we lost some; the next ones come)
    int n = static_cast<int>(got);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) continue;
      auto* info = static_cast<ifinfomsg*>(NLMSG_DATA(h));
      InterfaceEvent ev;
      ev.ifindex = info->ifi_index;
      ev.present = h->nlmsg_type == RTM_NEWLINK;
      int len = static_cast<int>(IFLA_PAYLOAD(h));
      for (auto* a = IFLA_RTA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_IFNAME) {
          ev.name.assign(static_cast<const char*>(RTA_DATA(a)),
                         strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
        }
      }
      if (!ev.name.empty() && matches(ev.name)) report(ev);
    }
  }
}

}  // namespace l7tap
