// Attaching the XDP program to one interface: through libxdp's
// multi-program dispatcher where the kernel allows it, so that l7tap
// coexists with other XDP programs there; else alone, through an XDP link.
//
// How the dispatcher takes a program loaded from the skeleton: libxdp puts
// an XDP dispatcher on each interface (attached through netlink) and links
// every component program into one of its slots as an freplace extension
// (BPF_PROG_TYPE_EXT). A program loaded as plain XDP cannot be linked into a
// slot (libxdp then falls back to attaching it alone, through netlink), and
// libxdp loads a program itself only from a bpf_object it loads whole. So
// the daemon loads l7tap_xdp from the skeleton as an extension: before the
// load, XdpExtensionTarget loads a template dispatcher (libxdp's own
// xdp-dispatcher.o, attached nowhere) as the target the kernel verifies the
// extension against. After the load, xdp_program__from_fd() hands the
// extension to libxdp, which links it into the dispatcher of each interface
// (the kernel re-attaches an extension to another target of the same
// signature, 5.10+; the template is released at the first link).
//
// Where the kernel refuses extension programs (a kernel without BPF
// trampolines, or a security policy: on the project's CI machines loading
// any BPF_PROG_TYPE_EXT or tracing program fails with EPERM, and libxdp's
// own dispatcher check fails the same way), LiveCapture loads l7tap_xdp as
// a plain XDP program and attach() gives it an XDP link of its own (5.9+):
// no other XDP program can share the interface meanwhile (attaching fails
// rather than replace one that is there), and the link goes away with the
// process, kill -9 included.
//
// What a kill -9 leaves with the dispatcher: libxdp pins each dispatcher's
// links in bpffs ($LIBXDP_BPFFS/xdp, default /sys/fs/bpf/xdp/
// dispatch-IFINDEX-ID), so the dispatcher and l7tap's extension stay
// attached and running (into a ring buffer nobody reads) until the next
// start removes them: attach() first takes every program named l7tap_xdp
// out of the interface's dispatcher (removeStale()), as TcAttachment does
// for stale clsact filters. Where the bpffs dies with the process (a private
// mount namespace, as under `ip netns exec` with LIBXDP_BPFFS_AUTOMOUNT=1),
// the links go with it and what stays is an empty dispatcher, which passes
// every packet. Without any bpffs libxdp cannot use a dispatcher at all.
#pragma once

#include <cstdint>
#include <string>

struct bpf_program;
struct xdp_program;

namespace l7tap {

/// The name the kernel reports for l7tap's XDP program (its function name).
inline constexpr const char* kXdpProgramName = "l7tap_xdp";

/// Makes the skeleton's XDP program an freplace extension of a template
/// dispatcher before the object is loaded; keep it until the load is done.
class XdpExtensionTarget {
 public:
  XdpExtensionTarget() = default;
  ~XdpExtensionTarget() { release(); }
  XdpExtensionTarget(const XdpExtensionTarget&) = delete;
  XdpExtensionTarget& operator=(const XdpExtensionTarget&) = delete;

  /// Loads the template dispatcher and sets `prog`'s type and attach target.
  bool prepare(bpf_program* prog, std::string& error);
  /// After the load: the extension holds the template as long as it needs it.
  void release();

 private:
  xdp_program* dispatcher_ = nullptr;
};

/// l7tap's XDP program on one interface: linked into its dispatcher, or
/// attached alone through a link. Detaches in the destructor (an RAII owner,
/// like TcAttachment).
class XdpAttachment {
 public:
  XdpAttachment() = default;
  ~XdpAttachment() { detach(); }
  XdpAttachment(XdpAttachment&& other) noexcept;
  XdpAttachment& operator=(XdpAttachment&& other) noexcept;
  XdpAttachment(const XdpAttachment&) = delete;
  XdpAttachment& operator=(const XdpAttachment&) = delete;

  /// An extension `prog_fd` is linked into `ifindex`'s dispatcher (created
  /// when missing), a plain XDP program gets a link of its own: native mode
  /// where the driver has it, else generic (skb) mode, or the mode of a
  /// dispatcher already there. On failure returns false with `error` set and
  /// leaves nothing attached.
  bool attach(int ifindex, int prog_fd, std::string& error);
  void detach();
  bool attached() const { return ifindex_ != 0; }
  /// "xdp native" or "xdp generic", then ", dispatcher" or ", link".
  const char* description() const;

  /// Takes the l7tap_xdp programs that a previous, killed daemon left in
  /// `ifindex`'s dispatcher out of it. Returns how many.
  static int removeStale(int ifindex);

 private:
  bool attachLink(int ifindex, int prog_fd, std::string& error);

  int ifindex_ = 0;
  int mode_ = 0;                 // enum xdp_attach_mode
  xdp_program* prog_ = nullptr;  // dispatcher: the extension as libxdp knows it
  int link_fd_ = -1;             // no dispatcher: the XDP link
};

}  // namespace l7tap
