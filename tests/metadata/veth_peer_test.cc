// The unprivileged parts of veth_peer (the rest is in live_test.cc).
#include "metadata/veth_peer.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace l7tap::metadata {
namespace {

TEST(VethPeer, OwnNetnsInodeMatchesProc) {
  const std::optional<uint64_t> own = ownNetnsInode();
  ASSERT_TRUE(own);
  EXPECT_EQ(own, readNetnsInode("/proc/self/ns/net"));
}

TEST(VethPeer, NotANamespaceFdHasNoId) {
  const int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(netnsIdOf(fd));
  close(fd);
}

}  // namespace
}  // namespace l7tap::metadata
