#include "daemon/attachment.h"

namespace l7tap {

bool InterfaceAttachment::attach(int ifindex, const AttachPrograms& progs, AttachMode mode,
                                 std::string& error) {
  detach();
  if (mode == AttachMode::kXdp) {
    if (progs.xdp_fd < 0) {
      error = "the XDP program is not loaded";
      return false;
    }
    if (!xdp_.attach(ifindex, progs.xdp_fd, error)) return false;
    used_ = AttachMode::kXdp;
    return true;
  }
  return tc_.attach(ifindex, progs.tc_ingress_fd, progs.tc_egress_fd, mode, used_, error);
}

void InterfaceAttachment::detach() {
  tc_.detach();
  xdp_.detach();
}

const char* InterfaceAttachment::description() const {
  return used_ == AttachMode::kXdp ? xdp_.description() : toString(used_);
}

}  // namespace l7tap
