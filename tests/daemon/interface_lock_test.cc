#include "daemon/interface_lock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/support/privileged.h"

namespace l7tap {
namespace {

using testing::missingRoot;

// An ifindex no interface of this namespace has: the lock is a file only.
constexpr int kIfindex = 2000000000;

TEST(InterfaceLock, OneHolderAtATime) {
  L7TAP_SKIP_UNLESS(missingRoot());
  pid_t holder = -1;
  std::string error;
  InterfaceLock first;
  ASSERT_EQ(first.acquire(kIfindex, holder, error), InterfaceLock::Result::kTaken) << error;
  EXPECT_TRUE(first.held());
  // flock() locks belong to an open file: a second one is refused, even in
  // the same process, and names the holder.
  InterfaceLock second;
  EXPECT_EQ(second.acquire(kIfindex, holder, error), InterfaceLock::Result::kBusy);
  EXPECT_EQ(holder, getpid());
  EXPECT_FALSE(second.held());
  // Another interface is another lock.
  InterfaceLock other;
  EXPECT_EQ(other.acquire(kIfindex + 1, holder, error), InterfaceLock::Result::kTaken) << error;
  // Released (the file is removed), the interface is free again.
  first.release();
  EXPECT_FALSE(first.held());
  EXPECT_EQ(second.acquire(kIfindex, holder, error), InterfaceLock::Result::kTaken) << error;
  // A moved lock is held by its new owner only.
  InterfaceLock moved = std::move(second);
  EXPECT_TRUE(moved.held());
  EXPECT_FALSE(second.held());  // NOLINT(bugprone-use-after-move): what a move leaves
  EXPECT_EQ(first.acquire(kIfindex, holder, error), InterfaceLock::Result::kBusy);
}

}  // namespace
}  // namespace l7tap
