// The parts of the privilege drop that run without root: what each need maps
// to, and the refusals that come before anything is changed.
#include "privileges/privilege_drop.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace l7tap::privileges {
namespace {

using Names = std::vector<std::string>;

TEST(PrivilegesNeeded, AutoModeWithPodIdentityKeepsNetAdminPtraceAndDacReadSearch) {
  EXPECT_EQ(capabilitiesFor(StillNeeded{}),
            (Names{"cap_dac_read_search", "cap_net_admin", "cap_sys_ptrace"}));
}

TEST(PrivilegesNeeded, TcxKeepsNoAttachCapability) {
  EXPECT_EQ(capabilitiesFor({.clsact_filters = false}),
            (Names{"cap_dac_read_search", "cap_sys_ptrace"}));
}

TEST(PrivilegesNeeded, XdpKeepsWhatLoadingTakes) {
  EXPECT_EQ(
      capabilitiesFor({.clsact_filters = false, .load_programs = true}),
      (Names{"cap_dac_read_search", "cap_net_admin", "cap_sys_ptrace", "cap_perfmon", "cap_bpf"}));
}

TEST(PrivilegesNeeded, TlsUprobesKeepSysAdminAndTheProcReaders) {
  EXPECT_EQ(capabilitiesFor(
                {.clsact_filters = false, .read_other_processes = false, .attach_uprobes = true}),
            (Names{"cap_dac_read_search", "cap_sys_ptrace", "cap_sys_admin"}));
}

TEST(PrivilegesNeeded, NothingLeftWithoutPodIdentityInTcxMode) {
  EXPECT_TRUE(capabilitiesFor({.clsact_filters = false, .read_other_processes = false}).empty());
}

TEST(PrivilegesDropRefuses, AnUnknownUserBeforeChangingAnything) {
  DropOutcome outcome;
  std::string error;
  EXPECT_FALSE(dropPrivileges({.user = "i11p-no-such-user"}, outcome, error));
  EXPECT_NE(error.find("no such user"), std::string::npos) << error;
  EXPECT_TRUE(outcome.kept.empty());
}

TEST(PrivilegesDropRefuses, AProcessWithASecondThread) {
  // Capabilities are per thread: dropping them in one would leave the other
  // holding everything.
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::thread other([&] {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done; });
  });
  DropOutcome outcome;
  std::string error;
  const bool dropped = dropPrivileges({}, outcome, error);
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_one();
  other.join();
  EXPECT_FALSE(dropped);
  EXPECT_NE(error.find("threads"), std::string::npos) << error;
}

}  // namespace
}  // namespace l7tap::privileges
