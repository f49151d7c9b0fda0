#include "privileges/privilege_drop.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <type_traits>

namespace l7tap::privileges {

namespace {

struct CapFree {
  void operator()(void* p) const { cap_free(p); }
};
using CapState = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

/// Bounds of what is read from the system while resolving the user.
struct Limits {
  /// getpwnam_r's buffer; a passwd line is far shorter.
  static constexpr size_t kPasswdBuffer = 16384;
  /// Supplementary groups of the user (the kernel's NGROUPS_MAX is 65536;
  /// a service user has a handful).
  static constexpr int kMaxGroups = 256;
};

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::vector<cap_value_t> valuesFor(const StillNeeded& needed) {
  std::vector<cap_value_t> values;
  if (needed.clsact_filters) values.push_back(CAP_NET_ADMIN);
  if (needed.load_programs) {
    values.push_back(CAP_NET_ADMIN);
    values.push_back(CAP_BPF);
    values.push_back(CAP_PERFMON);
  }
  if (needed.attach_uprobes) {
    values.push_back(CAP_SYS_ADMIN);
    values.push_back(CAP_DAC_READ_SEARCH);
    values.push_back(CAP_SYS_PTRACE);
  }
  if (needed.read_other_processes) {
    values.push_back(CAP_DAC_READ_SEARCH);
    values.push_back(CAP_SYS_PTRACE);
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

std::string nameOf(cap_value_t value) {
  char* name = cap_to_name(value);
  if (name == nullptr) return "cap_" + std::to_string(value);
  std::string out = name;
  cap_free(name);
  return out;
}

bool holds(cap_t state, cap_value_t value, cap_flag_t flag) {
  cap_flag_value_t v = CAP_CLEAR;
  return cap_get_flag(state, value, flag, &v) == 0 && v == CAP_SET;
}

// capset() changes the calling thread only: a second thread would keep
// everything.
bool singleThreaded(std::string& error) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/task"), closedir);
  if (!dir) {
    error = errnoText("/proc/self/task");
    return false;
  }
  int threads = 0;
  while (const dirent* e = readdir(dir.get())) {
    if (e->d_name[0] != '.') ++threads;
  }
  if (threads != 1) {
    error = "the process has " + std::to_string(threads) +
            " threads; capabilities are per thread, so they must be dropped before any starts";
    return false;
  }
  return true;
}

struct Account {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

bool resolveUser(const std::string& user, Account& account, std::string& error) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buffer(Limits::kPasswdBuffer);
  const int rc = getpwnam_r(user.c_str(), &pw, buffer.data(), buffer.size(), &found);
  if (found == nullptr) {
    error = "--user " + user + ": " + (rc != 0 ? std::strerror(rc) : "no such user");
    return false;
  }
  account.uid = pw.pw_uid;
  account.gid = pw.pw_gid;
  int count = Limits::kMaxGroups;
  account.groups.resize(static_cast<size_t>(count));
  if (getgrouplist(pw.pw_name, pw.pw_gid, account.groups.data(), &count) < 0) {
    error = "--user " + user + ": more than " + std::to_string(Limits::kMaxGroups) + " groups";
    return false;
  }
  account.groups.resize(static_cast<size_t>(count));
  return true;
}

// The directory and what is in it (one level: the lock files), created when
// missing, since the new user may not create it where it belongs (/run).
bool giveDirectory(const std::string& path, const Account& account, std::string& error) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    error = errnoText(path);
    return false;
  }
  const int dir_fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd < 0) {
    error = errnoText(path);
    return false;
  }
  std::unique_ptr<DIR, int (*)(DIR*)> dir(fdopendir(dir_fd), closedir);
  if (!dir) {
    close(dir_fd);
    error = errnoText(path);
    return false;
  }
  if (fchown(dir_fd, account.uid, account.gid) != 0) {
    error = errnoText("chown " + path);
    return false;
  }
  while (const dirent* e = readdir(dir.get())) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    // Only lock files: never through a symbolic link, and never a file with
    // a second name, which a previous run as `user` could have linked to a
    // file elsewhere (where fs.protected_hardlinks is off) to have this run,
    // as root, hand it over.
    struct stat st {};
    if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        st.st_nlink != 1) {
      continue;
    }
    if (fchownat(dir_fd, e->d_name, account.uid, account.gid, AT_SYMLINK_NOFOLLOW) != 0 &&
        errno != ENOENT) {
      error = errnoText("chown " + path + "/" + e->d_name);
      return false;
    }
  }
  return true;
}

bool switchUser(const Account& account, std::string& error) {
  // Without KEEPCAPS, leaving uid 0 empties the permitted set.
  if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0) {
    error = errnoText("prctl(PR_SET_KEEPCAPS)");
    return false;
  }
  if (setgroups(account.groups.size(), account.groups.data()) != 0) {
    error = errnoText("setgroups");
    return false;
  }
  // glibc applies both to every thread of the process.
  if (setresgid(account.gid, account.gid, account.gid) != 0) {
    error = errnoText("setresgid");
    return false;
  }
  if (setresuid(account.uid, account.uid, account.uid) != 0) {
    error = errnoText("setresuid");
    return false;
  }
  if (prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0) {
    error = errnoText("prctl(PR_SET_KEEPCAPS, 0)");
    return false;
  }
  return true;
}

}  // namespace

std::string describe(const DropOutcome& outcome) {
  std::string caps;
  for (const std::string& name : outcome.kept) caps += (caps.empty() ? "" : ",") + name;
  std::string text = "privileges: uid " + std::to_string(outcome.uid) + ", gid " +
                     std::to_string(outcome.gid) + ", capabilities " +
                     (caps.empty() ? "none" : caps) + "; no_new_privs";
  if (!outcome.bounding_dropped) {
    text += "; bounding set left as it was (no cap_setpcap): " +
            std::to_string(outcome.bounding.size()) + " capabilities";
  }
  return text;
}

std::vector<std::string> capabilitiesFor(const StillNeeded& needed) {
  std::vector<std::string> names;
  for (const cap_value_t v : valuesFor(needed)) names.push_back(nameOf(v));
  return names;
}

bool dropPrivileges(const DropRequest& request, DropOutcome& outcome, std::string& error) {
  if (!singleThreaded(error)) return false;
  Account account;
  const bool switching = !request.user.empty();
  if (switching && !resolveUser(request.user, account, error)) return false;

  CapState before(cap_get_proc());
  if (!before) {
    error = errnoText("cap_get_proc");
    return false;
  }
  // Asking for a capability the process lacks would fail cap_set_proc: keep
  // what is both needed and held (a unit may already have withheld some).
  std::vector<cap_value_t> keep;
  for (const cap_value_t v : valuesFor(request.needed)) {
    if (holds(before.get(), v, CAP_PERMITTED)) keep.push_back(v);
  }
  const auto kept = [&keep](cap_value_t v) {
    return std::find(keep.begin(), keep.end(), v) != keep.end();
  };

  if (switching) {
    for (const std::string& dir : request.owned_directories) {
      if (!giveDirectory(dir, account, error)) return false;
    }
  }
  // The bounding set first: dropping from it takes CAP_SETPCAP, which goes
  // with the rest below. Without it (a unit or container that withheld it)
  // the bounding set stays as it was: with no_new_privs and nothing
  // inheritable it can give nothing back, so that is no reason to stop.
  outcome.bounding_dropped = holds(before.get(), CAP_SETPCAP, CAP_EFFECTIVE);
  for (cap_value_t v = 0; outcome.bounding_dropped && v < cap_value_t(cap_max_bits()); ++v) {
    if (kept(v) || cap_get_bound(v) != 1) continue;
    if (cap_drop_bound(v) != 0) {
      error = errnoText("dropping " + nameOf(v) + " from the bounding set");
      return false;
    }
  }
  if (switching && !switchUser(account, error)) return false;

  // Inheritable cleared too, which also empties the ambient set.
  CapState after(cap_init());
  if (!after ||
      (!keep.empty() &&
       (cap_set_flag(after.get(), CAP_EFFECTIVE, int(keep.size()), keep.data(), CAP_SET) != 0 ||
        cap_set_flag(after.get(), CAP_PERMITTED, int(keep.size()), keep.data(), CAP_SET) != 0))) {
    error = errnoText("cap_set_flag");
    return false;
  }
  if (cap_set_proc(after.get()) != 0) {
    error = errnoText("cap_set_proc");
    return false;
  }
  if (CAP_AMBIENT_SUPPORTED() && cap_reset_ambient() != 0) {
    error = errnoText("cap_reset_ambient");
    return false;
  }
  // No execve could gain anything back (setuid binaries, file capabilities).
  if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
    error = errnoText("prctl(PR_SET_NO_NEW_PRIVS)");
    return false;
  }

  // What the kernel now says, not what was asked for.
  CapState now(cap_get_proc());
  if (!now) {
    error = errnoText("cap_get_proc");
    return false;
  }
  outcome.kept.clear();
  for (cap_value_t v = 0; v < static_cast<cap_value_t>(cap_max_bits()); ++v) {
    const bool e = holds(now.get(), v, CAP_EFFECTIVE);
    const bool p = holds(now.get(), v, CAP_PERMITTED);
    const bool b = cap_get_bound(v) == 1;
    if (e != kept(v) || p != kept(v) || (outcome.bounding_dropped && b != kept(v))) {
      error = "after the drop, " + nameOf(v) + " is " + (kept(v) ? "missing" : "still held");
      return false;
    }
    if (e) outcome.kept.push_back(nameOf(v));
    if (b) outcome.bounding.push_back(nameOf(v));
  }
  uid_t r = 0, e = 0, s = 0;
  getresuid(&r, &e, &s);
  outcome.uid = e;
  outcome.gid = getegid();
  if (switching && (r != account.uid || e != account.uid || s != account.uid)) {
    error = "after the switch, the user ids are " + std::to_string(r) + "/" + std::to_string(e) +
            "/" + std::to_string(s);
    return false;
  }
  return true;
}

}  // namespace l7tap::privileges
