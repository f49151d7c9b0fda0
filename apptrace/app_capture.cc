#include "apptrace/app_capture.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace l7tap {

AppCapture::AppCapture(RecordSink& next) : linker_(next, tracer_.functions()) {
  linker_.setCatchUp([this] { tracer_.consume(); });
}

bool AppCapture::start(const AppCaptureConfig& config, int64_t mono_to_real_ns,
                       std::string& error) {
  config_ = config;
  mono_to_real_ns_ = mono_to_real_ns;
  TraceProgramConfig program;
  program.mode = TraceProgramConfig::Mode::kPerCall;
  program.emit_entries = true;  // an exchange may end before its call returns
  program.wakeup_bytes = config.wakeup_bytes;
  const auto on_call = [this](const CallEvent& call) {
    if (call.entry) {
      linker_.onCallEntry(call);
    } else {
      linker_.onCall(call);
    }
  };
  if (!tracer_.start(program, mono_to_real_ns, on_call, error)) {
    error = "--trace-config: " + error;
    return false;
  }
  return true;
}

void AppCapture::scanNow() {
  DIR* dir = opendir(config_.proc.c_str());
  if (!dir) return;
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid > 0 && *end == '\0' && !seen_.count(static_cast<pid_t>(pid))) {
      consider(static_cast<pid_t>(pid));
    }
  }
  closedir(dir);
}

bool AppCapture::inScope(pid_t pid) const {
  struct stat st;
  const std::string ns = config_.proc + "/" + std::to_string(pid) + "/ns/net";
  return stat(ns.c_str(), &st) == 0 && allowed_netns_.count(static_cast<uint64_t>(st.st_ino));
}

void AppCapture::consider(pid_t pid) {
  if (!inScope(pid)) return;  // looked at again once its namespace is in scope
  const std::string exe_link = config_.proc + "/" + std::to_string(pid) + "/exe";
  char buf[4096];
  const ssize_t n = readlink(exe_link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return;  // a kernel thread, or gone
  const std::string_view exe(buf, static_cast<size_t>(n));
  seen_.insert(pid);
  for (const TraceConfig::Entry& wanted : config_.traces.traces) {
    if (!traceEntryMatches(wanted, exe)) continue;
    // Opened through /proc/PID/exe: the container's file, whatever the
    // path means on the host.
    struct stat st;
    std::string error;
    if (stat(exe_link.c_str(), &st) != 0) return;
    const auto key = std::make_pair(st.st_dev, st.st_ino);
    auto it = files_.find(key);
    bool ok = true;
    if (it == files_.end()) {
      TracedFile file;
      ok = AppTracer::resolve(exe_link, wanted.functions, wanted.usdt, file.targets, error);
      if (ok) it = files_.emplace(key, std::move(file)).first;
    }
    if (ok) ok = tracer_.attach(exe_link, pid, it->second.targets, it->second.rows, error);
    if (ok) {
      ++traced_;
      traced_pids_.insert(pid);
      std::fprintf(stderr, "l7tap: apptrace: tracing %zu functions of pid %d (%.*s)\n",
                   it->second.targets.size(), pid, static_cast<int>(exe.size()), exe.data());
    } else {
      ++refused_;
      const std::string line = std::string(exe) + ": " + error;
      if (refusals_said_.insert(line).second) {
        std::fprintf(stderr, "l7tap: apptrace: %s\n", line.c_str());
      }
    }
    return;
  }
}

void AppCapture::housekeeping(uint64_t mono_now_ns) {
  linker_.expire(static_cast<uint64_t>(static_cast<int64_t>(mono_now_ns) + mono_to_real_ns_));
  if (mono_now_ns < next_scan_ns_) return;
  next_scan_ns_ = mono_now_ns + config_.scan_interval_ns;
  // Processes that exited leave their pid to be reused.
  for (auto it = seen_.begin(); it != seen_.end();) {
    if (access((config_.proc + "/" + std::to_string(*it)).c_str(), F_OK) == 0) {
      ++it;
      continue;
    }
    // Its probes go with it: a node's pods come and go for months.
    if (traced_pids_.erase(*it)) tracer_.detachProcess(*it);
    it = seen_.erase(it);
  }
  scanNow();
}

void AppCapture::allowNetns(uint32_t ifindex, uint64_t netns_inode) {
  if (netns_of_interface_.emplace(ifindex, netns_inode).second) ++allowed_netns_[netns_inode];
  next_scan_ns_ = 0;  // the scope grew
}

void AppCapture::forgetInterface(uint32_t ifindex) {
  const auto it = netns_of_interface_.find(ifindex);
  if (it == netns_of_interface_.end()) return;
  const auto ns = allowed_netns_.find(it->second);
  if (ns != allowed_netns_.end() && --ns->second == 0) allowed_netns_.erase(ns);
  netns_of_interface_.erase(it);
}

AppCaptureStats AppCapture::stats() const {
  return {.tracer = tracer_.stats(),
          .linker = linker_.stats(),
          .processes_traced = traced_,
          .processes_refused = refused_};
}

}  // namespace l7tap
