#include "daemon/xdp_attachment.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/prog_dispatcher.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace l7tap {

namespace {

// The dispatcher runs its programs in ascending priority (libxdp's default
// is 50) and goes on to the next one after XDP_PASS. l7tap runs last, so it
// sees what the stack will receive, as the TC ingress program would: not
// what an earlier program dropped, redirected or sent back.
constexpr unsigned int kRunPriority = 1000;

// The function of libxdp's dispatcher whose slot the extension is verified
// against at load time (every slot has this signature).
constexpr const char* kTemplateSlot = "prog0";

// libxdp's own messages: warnings only, prefixed like ours.
int libxdpPrint(libxdp_print_level level, const char* format, va_list args) {
  if (level != LIBXDP_WARN) return 0;
  std::fputs("l7tap: libxdp: ", stderr);
  return std::vfprintf(stderr, format, args);
}

void quietLibxdp() {
  static const bool done = [] {
    libxdp_set_print(libxdpPrint);
    return true;
  }();
  (void)done;
}

std::string errnoText(long err) { return std::strerror(static_cast<int>(err < 0 ? -err : err)); }

// The bpffs directory under which libxdp pins its dispatchers' links.
std::string libxdpPinDir() {
  const char* base = std::getenv(XDP_BPFFS_ENVVAR);
  return std::string(base && *base ? base : "/sys/fs/bpf") + "/xdp";
}

bpf_prog_info progInfo(int fd) {
  bpf_prog_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) std::memset(&info, 0, sizeof info);
  return info;
}

uint32_t progId(int fd) { return progInfo(fd).id; }

// Removes the pins of the dispatcher(s) of a vanished interface `ifindex`
// that hold l7tap's program `prog_id`: they alone keep that dead dispatcher's
// programs loaded (libxdp removes only the pins of dispatchers it detaches).
// The program id is what makes the directory ours: ifindexes repeat across
// network namespaces that share a bpffs, program ids do not.
void removePinsOfVanishedInterface(int ifindex, uint32_t prog_id) {
  const std::string dir = libxdpPinDir();
  const std::string prefix = "dispatch-" + std::to_string(ifindex) + "-";
  std::vector<std::string> ours;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::string(e->d_name).rfind(prefix, 0) != 0) continue;
      const std::string path = dir + "/" + e->d_name;
      bool holds_ours = false;
      if (DIR* p = opendir(path.c_str())) {
        while (dirent* f = readdir(p)) {
          const std::string name = f->d_name;
          if (name.size() < 5 || name.compare(name.size() - 5, 5, "-prog") != 0) continue;
          const int fd = bpf_obj_get((path + "/" + name).c_str());
          if (fd < 0) continue;
          holds_ours = holds_ours || progId(fd) == prog_id;
          close(fd);
        }
        closedir(p);
      }
      if (holds_ours) ours.push_back(path);
    }
    closedir(d);
  }
  for (const std::string& path : ours) {
    if (DIR* p = opendir(path.c_str())) {
      while (dirent* f = readdir(p)) {
        if (std::strcmp(f->d_name, ".") != 0 && std::strcmp(f->d_name, "..") != 0) {
          unlink((path + "/" + f->d_name).c_str());
        }
      }
      closedir(p);
    }
    rmdir(path.c_str());
  }
}

}  // namespace

// --- XdpExtensionTarget -----------------------------------------------------------

bool XdpExtensionTarget::prepare(bpf_program* prog, std::string& error) {
  quietLibxdp();
  release();
  xdp_program* d = xdp_program__find_file("xdp-dispatcher.o", nullptr, nullptr);
  if (long err = libxdp_get_error(d); err || d == nullptr) {
    error = "libxdp's xdp-dispatcher.o: " + errnoText(err ? err : ENOENT) +
            " (installed by libxdp1; LIBXDP_OBJECT_PATH overrides its directory)";
    return false;
  }
  dispatcher_ = d;
  bpf_object* obj = xdp_program__bpf_obj(d);
  // Configured as libxdp configures a dispatcher of one program, so that the
  // slot is a verified, reachable function. Best effort: the slot exists
  // whatever the configuration.
  if (bpf_map* rodata = bpf_object__next_map(obj, nullptr)) {
    xdp_dispatcher_config conf;
    std::memset(&conf, 0, sizeof conf);
    conf.magic = XDP_DISPATCHER_MAGIC;
    conf.dispatcher_version = XDP_DISPATCHER_VERSION;
    conf.num_progs_enabled = 1;
    conf.chain_call_actions[0] = (1u << XDP_PASS) | (1u << XDP_DISPATCHER_RETVAL);
    conf.run_prios[0] = kRunPriority;
    bpf_map__set_initial_value(rodata, &conf, sizeof conf);
  }
  if (int err = bpf_object__load(obj); err != 0) {
    error = "loading libxdp's dispatcher as the extension's target: " + errnoText(err);
    release();
    return false;
  }
  bpf_program* main = bpf_object__next_program(obj, nullptr);
  const int fd = main ? bpf_program__fd(main) : -1;
  if (fd < 0) {
    error = "libxdp's dispatcher has no program";
    release();
    return false;
  }
  int err = bpf_program__set_type(prog, BPF_PROG_TYPE_EXT);
  if (!err) err = bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(0));
  if (!err) err = bpf_program__set_attach_target(prog, fd, kTemplateSlot);
  if (err) {
    error = "making the XDP program an extension: " + errnoText(err);
    release();
    return false;
  }
  return true;
}

void XdpExtensionTarget::release() {
  if (dispatcher_) xdp_program__close(dispatcher_);
  dispatcher_ = nullptr;
}

// --- XdpAttachment ------------------------------------------------------------------

XdpAttachment::XdpAttachment(XdpAttachment&& other) noexcept { *this = std::move(other); }

XdpAttachment& XdpAttachment::operator=(XdpAttachment&& other) noexcept {
  if (this != &other) {
    detach();
    ifindex_ = std::exchange(other.ifindex_, 0);
    mode_ = other.mode_;
    prog_ = std::exchange(other.prog_, nullptr);
    link_fd_ = std::exchange(other.link_fd_, -1);
  }
  return *this;
}

const char* XdpAttachment::description() const {
  if (link_fd_ >= 0) return mode_ == XDP_MODE_SKB ? "xdp generic, link" : "xdp native, link";
  return mode_ == XDP_MODE_SKB ? "xdp generic, dispatcher" : "xdp native, dispatcher";
}

bool XdpAttachment::attachLink(int ifindex, int prog_fd, std::string& error) {
  int fd = -1;
  int err = 0;
  int mode = XDP_MODE_NATIVE;
  for (int m : {XDP_MODE_NATIVE, XDP_MODE_SKB}) {
    mode = m;
    LIBBPF_OPTS(bpf_link_create_opts, opts);
    opts.flags = m == XDP_MODE_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
    fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
    if (fd >= 0) break;
    err = errno;
    // Another program holds the interface: generic mode cannot help.
    if (err == EBUSY || err == EEXIST) break;
  }
  if (fd < 0) {
    error = "XDP link: " + errnoText(err);
    if (err == EBUSY || err == EEXIST) {
      error += " (another XDP program is attached; without a dispatcher l7tap cannot share it)";
    }
    return false;
  }
  ifindex_ = ifindex;
  mode_ = mode;
  link_fd_ = fd;
  return true;
}

bool XdpAttachment::attach(int ifindex, int prog_fd, std::string& error) {
  quietLibxdp();
  detach();
  // Loaded as plain XDP (the kernel refused the extension): a link of its
  // own, which the kernel removes when the process exits, kill -9 included.
  if (progInfo(prog_fd).type != BPF_PROG_TYPE_EXT) return attachLink(ifindex, prog_fd, error);
  if (const int n = removeStale(ifindex)) {
    std::fprintf(stderr,
                 "l7tap: ifindex %d: removed %d l7tap XDP program(s) left by an earlier run\n",
                 ifindex, n);
  }
  xdp_program* prog = xdp_program__from_fd(prog_fd);
  if (long err = libxdp_get_error(prog); err || prog == nullptr) {
    error = "libxdp: " + errnoText(err ? err : EINVAL);
    return false;
  }
  xdp_program__set_run_prio(prog, kRunPriority);
  // A dispatcher already on the interface keeps its mode; veth and most
  // drivers have native XDP, the others get generic (skb) mode.
  int err = -EINVAL;
  int mode = XDP_MODE_NATIVE;
  for (int m : {XDP_MODE_NATIVE, XDP_MODE_SKB}) {
    mode = m;
    err = xdp_program__attach(prog, ifindex, static_cast<xdp_attach_mode>(m), 0);
    if (err == 0) break;
  }
  if (err != 0) {
    error = "XDP attach through libxdp's dispatcher failed: " + errnoText(err);
    if (err == -EOPNOTSUPP || err == -ENOENT) {
      error += " (the dispatcher needs freplace support and a bpffs at " + libxdpPinDir() +
               ": mount -t bpf bpf /sys/fs/bpf, or set LIBXDP_BPFFS or LIBXDP_BPFFS_AUTOMOUNT=1)";
    }
    xdp_program__close(prog);
    return false;
  }
  ifindex_ = ifindex;
  mode_ = mode;
  prog_ = prog;
  return true;
}

void XdpAttachment::detach() {
  if (ifindex_ == 0) return;
  if (link_fd_ >= 0) {
    close(link_fd_);
    link_fd_ = -1;
    ifindex_ = 0;
    return;
  }
  // Regenerates the dispatcher without l7tap's program, or removes it when
  // l7tap's was the only one. Fails when the interface is gone: then the
  // dispatcher went with it and only its pins are left to remove.
  const int err = xdp_program__detach(prog_, ifindex_, static_cast<xdp_attach_mode>(mode_), 0);
  char name[IF_NAMESIZE];
  if (err != 0 && if_indextoname(static_cast<unsigned>(ifindex_), name) == nullptr) {
    removePinsOfVanishedInterface(ifindex_, progId(xdp_program__fd(prog_)));
  }
  xdp_program__close(prog_);
  prog_ = nullptr;
  ifindex_ = 0;
}

int XdpAttachment::removeStale(int ifindex) {
  quietLibxdp();
  xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(ifindex);
  if (libxdp_get_error(mp) || mp == nullptr) return 0;
  int removed = 0;
  if (!xdp_multiprog__is_legacy(mp)) {
    std::vector<xdp_program*> ours;
    for (xdp_program* p = xdp_multiprog__next_prog(nullptr, mp); p && !libxdp_get_error(p);
         p = xdp_multiprog__next_prog(p, mp)) {
      if (std::strcmp(xdp_program__name(p), kXdpProgramName) == 0) ours.push_back(p);
    }
    if (!ours.empty() && xdp_program__detach_multi(ours.data(), ours.size(), ifindex,
                                                   xdp_multiprog__attach_mode(mp), 0) == 0) {
      removed = static_cast<int>(ours.size());
    }
  }
  xdp_multiprog__close(mp);
  return removed;
}

}  // namespace l7tap
