#include "apptrace/trace_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "uprobes/quiet_libbpf.h"

// The skeleton names the ABI's types: include it after the ABI. Its kconfig
// struct declares usdt.bpf.h's LINUX_HAS_BPF_COOKIE as a C `_Bool`, which
// g++ takes as an extension and clang++ (the fuzz build) does not.
#ifdef __clang__
#define _Bool bool
#endif
#include "l7tap_apptrace.skel.h"
#ifdef __clang__
#undef _Bool
#endif

namespace l7tap {
namespace {

std::string errnoText(int err) { return std::strerror(err < 0 ? -err : err); }

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

uint8_t kindOf(FunctionTarget::Kind kind) {
  switch (kind) {
    case FunctionTarget::Kind::kGo:
      return L7TAP_APP_FUNC_GO;
    case FunctionTarget::Kind::kUsdt:
      return L7TAP_APP_FUNC_USDT;
    case FunctionTarget::Kind::kNative:
      break;
  }
  return L7TAP_APP_FUNC_NATIVE;
}

}  // namespace

void TraceProgram::LinkDestroy::operator()(bpf_link* link) const { bpf_link__destroy(link); }

TraceProgram::TraceProgram() : skel_(nullptr, l7tap_apptrace__destroy) {}

TraceProgram::~TraceProgram() { unload(); }

bool TraceProgram::load(const TraceProgramConfig& config, std::string& error) {
  const QuietLibbpf quiet(config.quiet_load);
  unload();
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  if (config.ring_bytes < page || (config.ring_bytes & (config.ring_bytes - 1)) != 0) {
    error = "trace: ring size " + std::to_string(config.ring_bytes) +
            " is not a power of two of at least a page";
    return false;
  }
  skel_.reset(l7tap_apptrace__open());
  if (!skel_) {
    error = "trace: opening the BPF object: " + errnoText(errno);
    return false;
  }
  skel_->rodata->l7tap_app_histograms = config.mode == TraceProgramConfig::Mode::kHistograms;
  skel_->rodata->l7tap_app_emit_entries = config.emit_entries ? 1 : 0;
  skel_->rodata->l7tap_app_wakeup_bytes = config.wakeup_bytes;
  int err = bpf_map__set_max_entries(skel_->maps.app_events, config.ring_bytes);
  if (err != 0) {
    error = "trace: sizing the ring: " + errnoText(err);
    unload();
    return false;
  }
  err = l7tap_apptrace__load(skel_.get());
  if (err != 0) {
    error = "trace: loading the BPF programs: " + errnoText(err);
    unload();
    return false;
  }
  const std::pair<bpf_program*, const char*> tracepoints[] = {
      {skel_->progs.l7tap_app_sys_enter, "sys_enter"},
      {skel_->progs.l7tap_app_sys_exit, "sys_exit"},
  };
  for (const auto& [prog, name] : tracepoints) {
    bpf_link* link = bpf_program__attach_raw_tracepoint(prog, name);
    if (link == nullptr) {
      error = std::string("trace: attaching the raw tracepoint ") + name + ": " + errnoText(errno);
      unload();
      return false;
    }
    links_.emplace_back(0, link);
  }
  return true;
}

bool TraceProgram::attach(const std::string& path, pid_t pid, const FunctionTarget& target,
                          uint16_t& index, std::string& error) {
  const QuietLibbpf quiet(true);
  if (!skel_) {
    error = target.name + ": the trace programs are not loaded";
    return false;
  }
  if (functions_ >= L7TAP_APP_MAX_FUNCTIONS) {
    error = target.name + ": too many functions (at most " +
            std::to_string(L7TAP_APP_MAX_FUNCTIONS) + ")";
    return false;
  }
  const uint32_t row = functions_;
  l7tap_app_function fn{};
  fn.kind = kindOf(target.kind);
  fn.goid_offset = target.kind == FunctionTarget::Kind::kGo ? target.goid_offset : 0;
  if (bpf_map__update_elem(skel_->maps.app_functions, &row, sizeof(row), &fn, sizeof(fn), 0) != 0) {
    error = target.name + ": writing its config: " + errnoText(errno);
    return false;
  }
  // The row starts at zero: a failed attach before may have left counts
  // from probes that fired under this index before they were removed.
  const int cpus = libbpf_num_possible_cpus();
  if (cpus > 0) {
    const std::vector<l7tap_app_stats> zeros(static_cast<size_t>(cpus));
    bpf_map__update_elem(skel_->maps.app_stats, &row, sizeof(row), zeros.data(),
                         zeros.size() * sizeof(l7tap_app_stats), 0);
  }
  const uint64_t no_max = 0;
  bpf_map__update_elem(skel_->maps.app_interval_max, &row, sizeof(row), &no_max, sizeof(no_max), 0);
  if (!attachRow(path, pid, target, row, error)) return false;
  index = static_cast<uint16_t>(row);
  ++functions_;
  return true;
}

bool TraceProgram::attachAgain(const std::string& path, pid_t pid, const FunctionTarget& target,
                               uint16_t index, std::string& error) {
  const QuietLibbpf quiet(true);
  if (!skel_ || index >= functions_) {
    error = target.name + ": no such function row " + std::to_string(index);
    return false;
  }
  return attachRow(path, pid, target, index, error);
}

void TraceProgram::detachProcess(pid_t pid) {
  if (pid <= 0) return;
  std::erase_if(links_, [pid](const auto& link) { return link.first == pid; });
  if (skel_) {
    const uint32_t tgid = static_cast<uint32_t>(pid);
    bpf_map__delete_elem(skel_->maps.app_tgids, &tgid, sizeof(tgid), 0);
  }
}

bool TraceProgram::attachRow(const std::string& path, pid_t pid, const FunctionTarget& target,
                             uint32_t row, std::string& error) {
  std::vector<std::unique_ptr<bpf_link, LinkDestroy>> made;
  const auto uprobe = [&](bpf_program* prog, uint64_t offset, bool retprobe) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = row, .retprobe = retprobe);
    bpf_link* link = bpf_program__attach_uprobe_opts(prog, pid, path.c_str(),
                                                     static_cast<size_t>(offset), &opts);
    if (link == nullptr) {
      error = target.name + ": the kernel refused the " + (retprobe ? "uretprobe" : "uprobe") +
              " at offset " + hex(offset) + ": " + errnoText(errno);
      return false;
    }
    made.emplace_back(link);
    return true;
  };
  const auto usdt = [&](bpf_program* prog, const std::string& probe) {
    LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = row);
    bpf_link* link = bpf_program__attach_usdt(prog, pid, path.c_str(), target.usdt_provider.c_str(),
                                              probe.c_str(), &opts);
    if (link == nullptr) {
      error = target.name + ": attaching the USDT probe " + target.usdt_provider + ":" + probe +
              ": " + errnoText(errno);
      return false;
    }
    made.emplace_back(link);
    return true;
  };

  switch (target.kind) {
    case FunctionTarget::Kind::kNative:
      if (!uprobe(skel_->progs.l7tap_app_enter, target.entry_offset, false) ||
          !uprobe(skel_->progs.l7tap_app_return, target.entry_offset, true))
        return false;
      break;
    case FunctionTarget::Kind::kGo:
      if (target.return_offsets.empty()) {
        error = target.name + ": no RET instruction to end its calls at";
        return false;
      }
      // The RETs first: an entry seen without them would leave a frame
      // that only a later call's return clears.
      for (uint64_t offset : target.return_offsets) {
        if (!uprobe(skel_->progs.l7tap_app_go_return, offset, false)) return false;
      }
      if (!uprobe(skel_->progs.l7tap_app_enter, target.entry_offset, false)) return false;
      break;
    case FunctionTarget::Kind::kUsdt:
      if (!usdt(skel_->progs.l7tap_app_usdt_end, target.usdt_end) ||
          !usdt(skel_->progs.l7tap_app_usdt_start, target.usdt_start))
        return false;
      break;
  }
  // One process: its syscalls are followed from now on, not from its first
  // traced call (that call's own I/O and the request it serves count).
  if (pid > 0) {
    const uint32_t tgid = static_cast<uint32_t>(pid);
    const uint32_t is_go = target.kind == FunctionTarget::Kind::kGo ? 1 : 0;
    bpf_map__update_elem(skel_->maps.app_tgids, &tgid, sizeof(tgid), &is_go, sizeof(is_go),
                         BPF_ANY);
  }
  for (auto& link : made) links_.emplace_back(pid, std::move(link));
  return true;
}

int TraceProgram::ringFd() const { return skel_ ? bpf_map__fd(skel_->maps.app_events) : -1; }

std::vector<FunctionStats> TraceProgram::readStats() const {
  std::vector<FunctionStats> out(functions_);
  if (!skel_) return out;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return out;
  std::vector<l7tap_app_stats> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t i = 0; i < functions_; ++i) {
    if (bpf_map__lookup_elem(skel_->maps.app_stats, &i, sizeof(i), per_cpu.data(),
                             per_cpu.size() * sizeof(l7tap_app_stats), 0) != 0)
      continue;
    FunctionStats& s = out[i];
    for (const auto& c : per_cpu) {
      s.calls += c.calls;
      s.sum_ns += c.sum_ns;
      s.bytes_sent += c.bytes_sent;
      s.bytes_received += c.bytes_received;
      for (int b = 0; b < L7TAP_APP_HIST_BUCKETS; ++b) s.buckets[b] += c.buckets[b];
    }
  }
  return out;
}

void TraceProgram::resetExemplars() {
  if (!skel_) return;
  const uint64_t zero = 0;
  for (uint32_t i = 0; i < functions_; ++i) {
    bpf_map__update_elem(skel_->maps.app_interval_max, &i, sizeof(i), &zero, sizeof(zero), 0);
  }
}

TraceProgramCounters TraceProgram::counters() const {
  TraceProgramCounters out;
  if (!skel_) return out;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return out;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  const auto sum = [&](uint32_t idx) {
    uint64_t total = 0;
    if (bpf_map__lookup_elem(skel_->maps.app_counters, &idx, sizeof(idx), per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0) == 0) {
      for (uint64_t v : per_cpu) total += v;
    }
    return total;
  };
  out.events = sum(L7TAP_APP_CNT_EVENTS);
  out.lost = sum(L7TAP_APP_CNT_LOST);
  out.no_entry = sum(L7TAP_APP_CNT_NO_ENTRY);
  out.state_full = sum(L7TAP_APP_CNT_STATE_FULL);
  out.nested = sum(L7TAP_APP_CNT_NESTED);
  out.io_syscalls = sum(L7TAP_APP_CNT_IO_SYSCALLS);
  out.stale = sum(L7TAP_APP_CNT_STALE);
  return out;
}

void TraceProgram::unload() {
  links_.clear();
  skel_.reset();
  functions_ = 0;
}

}  // namespace l7tap
