// Attaching the TC programs to one interface, and taking them off again.
#pragma once

#include <cstdint>
#include <string>

namespace l7tap {

enum class AttachMode : uint8_t {
  kAuto,    ///< tcx where the kernel has it (6.6+), else clsact
  kTcx,     ///< bpf_link_create(BPF_TCX_INGRESS/EGRESS): links die with the process
  kClsact,  ///< classic clsact qdisc + cls_bpf filter through libbpf's bpf_tc_*
  kXdp,     ///< XDP, ingress only, through libxdp's dispatcher (XdpAttachment)
};
const char* toString(AttachMode m);

/// The ingress and egress programs attached to one interface. Detaches in the
/// destructor (an RAII owner: nothing is left behind on any exit path).
class TcAttachment {
 public:
  TcAttachment() = default;
  ~TcAttachment() { detach(); }
  TcAttachment(TcAttachment&& other) noexcept;
  TcAttachment& operator=(TcAttachment&& other) noexcept;
  TcAttachment(const TcAttachment&) = delete;
  TcAttachment& operator=(const TcAttachment&) = delete;

  /// Attaches `ingress_fd` and `egress_fd` to `ifindex`; `ingress_fd` -1
  /// attaches egress only (a loopback device passes every packet through
  /// both of its hooks: one is enough). On failure returns
  /// false with `error` set and leaves nothing attached. `mode` kAuto tries
  /// tcx first. Reports the mode used through `used`.
  bool attach(int ifindex, int ingress_fd, int egress_fd, AttachMode mode, AttachMode& used,
              std::string& error);
  void detach();
  bool attached() const { return ifindex_ != 0; }
  int ifindex() const { return ifindex_; }

  /// Removes l7tap's clsact filters that a previous, killed daemon left on
  /// `ifindex` (tcx links cannot be left behind). Returns how many.
  static int removeStaleClsactFilters(int ifindex);

 private:
  int ifindex_ = 0;
  AttachMode mode_ = AttachMode::kAuto;
  int link_fd_[2] = {-1, -1};  // tcx: ingress, egress
};

}  // namespace l7tap
