// l7tap's programs on one interface, whatever the attach mode: the TC
// programs (tcx or clsact, both directions) or the XDP program (ingress only).
#pragma once

#include <string>

#include "daemon/tc_attachment.h"
#include "daemon/xdp_attachment.h"

namespace l7tap {

/// The loaded programs' file descriptors (-1: not loaded).
struct AttachPrograms {
  int tc_ingress_fd = -1;
  int tc_egress_fd = -1;
  int xdp_fd = -1;
};

/// An RAII owner of what one attach() put on one interface.
class InterfaceAttachment {
 public:
  /// Attaches in `mode` (kAuto: tcx, else clsact; kXdp: the XDP program).
  /// On failure returns false with `error` set and leaves nothing attached.
  bool attach(int ifindex, const AttachPrograms& progs, AttachMode mode, std::string& error);
  void detach();
  bool attached() const { return tc_.attached() || xdp_.attached(); }
  /// The mode in use: "tcx", "clsact", "xdp native" or "xdp generic".
  const char* description() const;

 private:
  AttachMode used_ = AttachMode::kAuto;
  TcAttachment tc_;
  XdpAttachment xdp_;
};

}  // namespace l7tap
