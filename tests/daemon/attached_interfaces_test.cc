// Following interfaces with their locks, without BPF: a fake attacher on
// the loopback device, which every network namespace has. Root, for the
// lock files in /run/l7tap.
#include "daemon/attached_interfaces.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/file.h>
#include <unistd.h>

#include "tests/support/privileged.h"

namespace l7tap {
namespace {

using testing::missingRoot;

struct FakeAttacher final : Attacher {
  struct Handle final : Attached {
    explicit Handle(int& live) : live_(live) { ++live_; }
    ~Handle() override { --live_; }
    const char* description() const override { return "fake"; }
    int& live_;
  };
  std::unique_ptr<Attached> attach(const InterfaceEvent& iface, std::string& error) override {
    attempts.push_back(iface.name);
    if (fail) {
      error = "refused";
      return nullptr;
    }
    return std::make_unique<Handle>(live);
  }
  std::vector<std::string> attempts;
  bool fail = false;
  int live = 0;  // attached now
};

// ctest runs every test in a process of its own, two at a time: the tests
// that take lo's interface lock take turns through a lock of their own, or
// one would find lo held by another test.
class OnLoopback : public ::testing::Test {
 protected:
  void SetUp() override {
    turn_ = ::open("/tmp/l7tap-attached-interfaces-test.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    ASSERT_GE(turn_, 0);
    ASSERT_EQ(::flock(turn_, LOCK_EX), 0);
  }
  void TearDown() override {
    if (turn_ >= 0) ::close(turn_);
  }

 private:
  int turn_ = -1;
};

TEST_F(OnLoopback, AttachesWhatMatchesAndDetachesOnClear) {
  L7TAP_SKIP_UNLESS(missingRoot());
  FakeAttacher attacher;
  AttachedInterfaces ifaces({"lo", "l7tap-test-absent*"}, attacher);
  std::string error;
  ASSERT_TRUE(ifaces.start(error)) << error;
  EXPECT_EQ(attacher.attempts, std::vector<std::string>{"lo"});
  EXPECT_EQ(ifaces.size(), 1u);
  EXPECT_EQ(attacher.live, 1);
  EXPECT_GE(ifaces.fd(), 0);
  ifaces.clear();
  EXPECT_EQ(ifaces.size(), 0u);
  EXPECT_EQ(attacher.live, 0);
}

// Two daemons on one interface would each report its traffic, or the
// second would remove the first's filters: the second start is refused.
TEST_F(OnLoopback, AStartOnAnInterfaceAnotherHoldsIsRefused) {
  L7TAP_SKIP_UNLESS(missingRoot());
  FakeAttacher first_attacher, second_attacher;
  AttachedInterfaces first({"lo"}, first_attacher);
  std::string error;
  ASSERT_TRUE(first.start(error)) << error;
  AttachedInterfaces second({"l?"}, second_attacher);
  EXPECT_FALSE(second.start(error));
  EXPECT_EQ(error, "lo (ifindex " + std::to_string(if_nametoindex("lo")) +
                       ") is captured by another l7tap (pid " + std::to_string(getpid()) +
                       "); one l7tap per interface: stop it first or leave this interface out");
  EXPECT_TRUE(second_attacher.attempts.empty());
  // Once the first lets go, the interface is free.
  first.clear();
  AttachedInterfaces third({"lo"}, second_attacher);
  EXPECT_TRUE(third.start(error)) << error;
  EXPECT_EQ(second_attacher.live, 1);
}

// An interface that cannot be attached to is reported, not fatal, and its
// lock is not kept.
TEST_F(OnLoopback, AFailedAttachIsNotFatalAndKeepsNoLock) {
  L7TAP_SKIP_UNLESS(missingRoot());
  FakeAttacher failing;
  failing.fail = true;
  AttachedInterfaces ifaces({"lo"}, failing);
  std::string error;
  EXPECT_TRUE(ifaces.start(error)) << error;
  EXPECT_EQ(ifaces.size(), 0u);
  FakeAttacher working;
  AttachedInterfaces other({"lo"}, working);
  EXPECT_TRUE(other.start(error)) << error;
  EXPECT_EQ(working.live, 1);
}

}  // namespace
}  // namespace l7tap
