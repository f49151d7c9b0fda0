// After `l7tap attach` has loaded its program and attached: give up every
// capability the rest of the run does not use, and optionally become an
// unprivileged user. What "the rest of the run" uses is the caller's to say
// (StillNeeded); privileges/README.md has what each capability is for and
// what was measured without it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace l7tap::privileges {

/// What the daemon still does after start, each mapped to the capabilities
/// it takes. Measured on Linux 6.18 (privileges/README.md): reading the ring
/// buffer and reading, updating and deleting map entries through fds opened
/// before the drop take none, and neither does a tcx link of a program
/// loaded before it.
struct StillNeeded {
  /// CAP_NET_ADMIN: clsact mode attaches cls_bpf filters (netlink) to
  /// interfaces that appear later and removes them at exit. Also for auto
  /// mode, which falls back to clsact before Linux 6.6.
  bool clsact_filters = true;
  /// CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON: XDP mode, where libxdp loads a
  /// dispatcher and an freplace extension (BPF_PROG_TYPE_EXT: PERFMON) for
  /// each interface it attaches to.
  bool load_programs = false;
  /// CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH: pod identity reads other users'
  /// /proc/PID/ns/net (a ptrace access check) and lists /proc/PID/fd
  /// (a directory only its owner may read).
  bool read_other_processes = true;
  /// CAP_SYS_ADMIN + CAP_SYS_PTRACE + CAP_DAC_READ_SEARCH: TLS uprobes
  /// attach to libraries and executables found later. perf_event_open of a
  /// uprobe takes SYS_ADMIN (measured on 6.18: PERFMON alone gets EACCES,
  /// privileges/README.md); the files are found through other users'
  /// /proc/PID/maps and opened through their /proc/PID/root (both ptrace
  /// access checks).
  bool attach_uprobes = false;
};

struct DropRequest {
  StillNeeded needed;
  /// Empty: stay the current user (capabilities are dropped all the same).
  std::string user;
  /// Directories the daemon keeps creating and removing files in (the
  /// interface locks): given to `user` with what is in them, since the
  /// capabilities that would bypass their permissions are gone.
  std::vector<std::string> owned_directories;
};

/// What the process holds after a successful drop.
struct DropOutcome {
  uid_t uid = 0;
  gid_t gid = 0;
  /// Capability names ("cap_bpf", ...) left in the effective and permitted
  /// sets, in the order of their numbers.
  std::vector<std::string> kept;
  /// Whether the bounding set was cut to `kept` (it takes cap_setpcap).
  bool bounding_dropped = false;
  /// What the bounding set holds afterwards.
  std::vector<std::string> bounding;
};

/// "privileges: uid U, gid G, capabilities a,b; no_new_privs" for the log.
std::string describe(const DropOutcome& outcome);

/// The capabilities `needed` maps to, by name, in the order of their numbers.
std::vector<std::string> capabilitiesFor(const StillNeeded& needed);

/// Drops every capability outside `request.needed` from the effective,
/// permitted, inheritable, ambient and (with cap_setpcap) bounding sets,
/// switches to
/// `request.user` (its primary and supplementary groups) when given, and
/// sets no_new_privs. Capabilities the process does not hold are not
/// asked for. Must run while the process has one thread: capabilities are
/// per thread. On failure returns false with `error`; the process may then
/// hold fewer privileges than before, never more, and should exit.
bool dropPrivileges(const DropRequest& request, DropOutcome& outcome, std::string& error);

}  // namespace l7tap::privileges
