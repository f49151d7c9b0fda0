// For the loaders of uprobe programs (uprobes/ and apptrace/): libbpf's own
// lines off while the caller reports a refusal in one line itself (on a
// node, files l7tap cannot attach to are expected).
#pragma once

#include <bpf/libbpf.h>

namespace l7tap {

class QuietLibbpf {
 public:
  explicit QuietLibbpf(bool quiet) : quiet_(quiet) {
    if (quiet_) previous_ = libbpf_set_print(nullptr);
  }
  ~QuietLibbpf() {
    if (quiet_) libbpf_set_print(previous_);
  }
  QuietLibbpf(const QuietLibbpf&) = delete;
  QuietLibbpf& operator=(const QuietLibbpf&) = delete;

 private:
  bool quiet_;
  libbpf_print_fn_t previous_ = nullptr;
};

}  // namespace l7tap
