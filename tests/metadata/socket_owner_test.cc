// The owners of listening sockets: the /proc/net/tcp{,6} row parser on
// text (real, hostile and garbled rows), and the resolution on a /proc built
// by the test (which container serves which port, shared sockets, bounds).
#include "metadata/socket_owner.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "metadata/interface_identity.h"
#include "tests/metadata/fake_proc.h"

namespace l7tap::metadata {
namespace {

using testing::FakeProc;

const std::string kUid = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const std::string kPause = "a000000000000000000000000000000000000000000000000000000000000000";
const std::string kApp = "b000000000000000000000000000000000000000000000000000000000000000";
const std::string kSidecar = "c000000000000000000000000000000000000000000000000000000000000000";

std::string pod(const std::string& id) {
  return "0::/kubepods/besteffort/pod" + kUid + "/" + id + "\n";
}

TEST(TcpRow, KernelIpv4Row) {
  const auto row = parseTcpRow(
      "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
      "624 1 00000000e1148cee 100 0 0 10 0                       ");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->local_port, 8080);
  EXPECT_EQ(row->state, kTcpListen);
  EXPECT_EQ(row->inode, 624u);
}

TEST(TcpRow, KernelIpv6RowAndEstablished) {
  const auto row = parseTcpRow(
      "   3: 0000000000000000FFFF00000100007F:A2B4 0000000000000000FFFF00000100007F:1F90 01 "
      "00000000:00000000 02:000A7F1C 00000000  1000        0 98765432 2 ffff8881 20 4 30 10 -1");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->local_port, 0xA2B4);
  EXPECT_EQ(row->state, 0x01);
  EXPECT_EQ(row->inode, 98765432u);
}

TEST(TcpRow, HeaderAndGarbageAreNotRows) {
  for (const std::string& line : {
           std::string(FakeProc::kTcpHeader),
           std::string(FakeProc::kTcp6Header),
           std::string(),
           std::string("   "),
           std::string("0: 00000000:1F90 00000000:0000 0A"),                  // cut after the state
           std::string("x: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 7"),  // slot
           std::string("0 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 7"),   // no colon
           std::string("0: 0000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 7"),   // 7 hex digits
           std::string("0: 0000000G:1F90 00000000:0000 0A 0:0 0:0 0 0 0 7"),  // not hex
           std::string("0: 00000000:11F90 00000000:0000 0A 0:0 0:0 0 0 0 7"),  // 5-digit port
           std::string("0: 00000000 00000000:0000 0A 0:0 0:0 0 0 0 7"),        // no port
           std::string("0: 00000000:1F90 00000000:0000 A 0:0 0:0 0 0 0 7"),    // 1-digit state
           std::string("0: 00000000:1F90 00000000:0000 0Z 0:0 0:0 0 0 0 7"),   // state not hex
           std::string("0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 -7"),  // negative inode
           std::string("0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 7x"),  // inode suffix
           std::string("0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 99999999999999999999999"),
           std::string("0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0"),  // no inode
           std::string("\x01\xff\x00garbage", 10),
       }) {
    EXPECT_FALSE(parseTcpRow(line)) << line;
  }
  // Minimal separators and trailing fields are fine.
  EXPECT_TRUE(parseTcpRow("0: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 7"));
}

TEST(TcpTable, KeepsListenersCountsGarbageStopsAtAConnection) {
  TcpTable table;
  const std::string text = std::string(FakeProc::kTcpHeader) + FakeProc::tcpRow(0, 80, 0x0A, 11) +
                           "garbage line\n" + FakeProc::tcpRow(1, 0, 0x0A, 12) +  // port 0
                           FakeProc::tcpRow(2, 81, 0x0A, 0) +  // no inode (closing)
                           FakeProc::tcpRow(3, 443, 0x0A, 14) +
                           FakeProc::tcpRow(4, 41230, 0x01, 13) + FakeProc::tcpRow(5, 22, 0x0A, 15);
  EXPECT_FALSE(parseListenRows(text, 100, &table));
  EXPECT_EQ(table.rows, 4u);
  EXPECT_EQ(table.garbled, 1u);
  EXPECT_FALSE(table.truncated);
  ASSERT_EQ(table.listening.size(), 2u);
  EXPECT_EQ(table.listening[0].port, 80);
  EXPECT_EQ(table.listening[0].inode, 11u);
  EXPECT_EQ(table.listening[1].port, 443);

  // Fed in pieces, with one budget for two tables.
  TcpTable pieces;
  EXPECT_TRUE(parseListenRows(std::string(FakeProc::kTcpHeader) + FakeProc::tcpRow(0, 80, 0x0A, 11),
                              3, &pieces));
  EXPECT_TRUE(parseListenRows(FakeProc::tcpRow(1, 81, 0x0A, 12), 3, &pieces));
  EXPECT_TRUE(parseListenRows(
      std::string(FakeProc::kTcp6Header) + FakeProc::tcpRow(0, 8080, 0x0A, 13, true), 3, &pieces));
  EXPECT_FALSE(parseListenRows(FakeProc::tcpRow(1, 8081, 0x0A, 14, true), 3, &pieces));
  EXPECT_TRUE(pieces.truncated);
  EXPECT_EQ(pieces.rows, 3u);
  EXPECT_EQ(pieces.listening.size(), 3u);
}

TEST(SocketLink, OnlySocketInodes) {
  EXPECT_EQ(parseSocketLink("socket:[12345]"), 12345u);
  EXPECT_FALSE(parseSocketLink("socket:[]"));
  EXPECT_FALSE(parseSocketLink("socket:[12x]"));
  EXPECT_FALSE(parseSocketLink("socket:[-1]"));
  EXPECT_FALSE(parseSocketLink("socket:[99999999999999999999999]"));
  EXPECT_FALSE(parseSocketLink("socket:[12"));
  EXPECT_FALSE(parseSocketLink("pipe:[12345]"));
  EXPECT_FALSE(parseSocketLink("/dev/null"));
  EXPECT_FALSE(parseSocketLink(""));
}

NetnsScan scanOf(const FakeProc& proc, uint64_t inode, MetadataLimits limits = {}) {
  return NetnsScanner(proc.root(), limits).scan(inode);
}

class TablePeers final : public PeerNetnsSource {
 public:
  Peer peerOf(uint32_t ifindex) override {
    const auto it = table.find(ifindex);
    return it == table.end() ? Peer{} : it->second;
  }
  std::map<uint32_t, Peer> table;
};

TEST(Listeners, EachPortNamesItsContainer) {
  FakeProc proc;
  proc.add(10, 1001, "pause", pod(kPause));
  proc.add(11, 1001, "checkout", pod(kApp));
  proc.add(12, 1001, "envoy", pod(kSidecar));
  // The tables are the namespace's: every process shows the same ones.
  const std::string tcp = std::string(FakeProc::kTcpHeader) + FakeProc::tcpRow(0, 8080, 0x0A, 501) +
                          FakeProc::tcpRow(1, 15001, 0x0A, 502) +
                          FakeProc::tcpRow(2, 8080, 0x01, 503);
  const std::string tcp6 =
      std::string(FakeProc::kTcp6Header) + FakeProc::tcpRow(0, 9090, 0x0A, 504, true);
  for (const int pid : {10, 11, 12}) proc.setTcp(pid, tcp, tcp6);
  proc.addFd(10, 0, "/dev/null");
  proc.addFd(11, 0, "/dev/null");
  proc.addFd(11, 3, "socket:[501]");
  proc.addFd(11, 4, "socket:[503]");  // the accepted connection
  proc.addFd(11, 5, "socket:[504]");
  proc.addFd(12, 3, "pipe:[77]");
  proc.addFd(12, 7, "socket:[502]");

  NetnsScanner scanner(proc.root());
  TablePeers peers;
  peers.table[7] = {IdentityStatus::kResolved, 1001, 2};
  InterfaceIdentityResolver resolver(peers, scanner);
  const InterfaceIdentity id = resolver.lookup(7);
  ASSERT_EQ(id.status, IdentityStatus::kResolved);
  EXPECT_FALSE(id.truncated);
  ASSERT_EQ(id.pod.listeners.size(), 3u);
  EXPECT_EQ(id.pod.listeners[0].port, 8080);
  EXPECT_EQ(id.pod.listeners[0].pid, 11u);
  EXPECT_EQ(id.pod.listeners[0].process_name, "checkout");
  EXPECT_EQ(id.pod.listeners[0].container_id, kApp);
  EXPECT_EQ(id.pod.listeners[1].port, 9090);
  EXPECT_EQ(id.pod.listeners[1].container_id, kApp);
  EXPECT_EQ(id.pod.listeners[2].port, 15001);
  EXPECT_EQ(id.pod.listeners[2].pid, 12u);
  EXPECT_EQ(id.pod.listeners[2].process_name, "envoy");
  EXPECT_EQ(id.pod.listeners[2].container_id, kSidecar);
}

TEST(Listeners, SharedSocketGoesToTheLowestPid) {
  FakeProc proc;
  // A pre-forked server: the master and two workers hold the same socket,
  // and an IPv6 socket on the same port is held by the last worker only.
  proc.add(30, 1002, "nginx", "0::/system.slice/nginx.service\n");
  proc.add(31, 1002, "nginx-worker", "0::/system.slice/nginx.service\n");
  proc.add(35, 1002, "nginx-worker", "0::/system.slice/nginx.service\n");
  proc.setTcp(31, std::string(FakeProc::kTcpHeader) + FakeProc::tcpRow(0, 80, 0x0A, 600),
              std::string(FakeProc::kTcp6Header) + FakeProc::tcpRow(0, 80, 0x0A, 601, true));
  proc.addFd(35, 3, "socket:[600]");
  proc.addFd(35, 4, "socket:[601]");
  proc.addFd(31, 3, "socket:[600]");
  proc.addFd(30, 6, "socket:[600]");

  // pid 30 has no tables here: the next process's are read.
  const ListenerScan scan = listenersOf(scanOf(proc, 1002), proc.root(), {});
  ASSERT_EQ(scan.listeners.size(), 1u);
  EXPECT_EQ(scan.listeners[0].port, 80);
  EXPECT_EQ(scan.listeners[0].pid, 30u);
  EXPECT_EQ(scan.listeners[0].process_name, "nginx");
  EXPECT_TRUE(scan.listeners[0].container_id.empty());
  EXPECT_EQ(scan.sockets_read, 2u);
}

TEST(Listeners, ReadingStopsAtTheFirstConnection) {
  FakeProc proc;
  proc.add(40, 1003, "app", pod(kApp));
  // The kernel lists its listening hash first; what comes after a
  // connection row is connections, not read.
  proc.setTcp(40, std::string(FakeProc::kTcpHeader) + FakeProc::tcpRow(0, 8080, 0x0A, 700) +
                      FakeProc::tcpRow(1, 8080, 0x01, 701) + FakeProc::tcpRow(2, 22, 0x0A, 702));
  proc.addFd(40, 3, "socket:[700]");
  proc.addFd(40, 4, "socket:[702]");
  const ListenerScan scan = listenersOf(scanOf(proc, 1003), proc.root(), {});
  ASSERT_EQ(scan.listeners.size(), 1u);
  EXPECT_EQ(scan.listeners[0].port, 8080);
  EXPECT_EQ(scan.sockets_read, 1u);
  EXPECT_FALSE(scan.truncated);
}

TEST(Listeners, HostileTablesAndLinks) {
  FakeProc proc;
  proc.add(50, 1004, "app", pod(kApp));
  std::string tcp = std::string(FakeProc::kTcpHeader) + "\x01\x02 not a row\n" +
                    std::string(40000, 'x') + "\n" + FakeProc::tcpRow(0, 8080, 0x0A, 800);
  proc.setTcp(50, tcp, "no header\n" + FakeProc::tcpRow(0, 0, 0x0A, 801, true));
  proc.addFd(50, 3, "socket:[800]");
  proc.addFd(50, 4, "socket:[not-a-number]");
  proc.addFd(50, 5, "socket:[" + std::string(200, '9') + "]");
  proc.addFd(50, 6, std::string(1000, 'y'));
  const ListenerScan scan = listenersOf(scanOf(proc, 1004), proc.root(), {});
  ASSERT_EQ(scan.listeners.size(), 1u);
  EXPECT_EQ(scan.listeners[0].port, 8080);
  EXPECT_EQ(scan.garbled_rows, 3u);
  EXPECT_EQ(scan.fds_examined, 4u);
}

TEST(Listeners, SocketOutsideTheNamespaceIsNotNamed) {
  FakeProc proc;
  proc.add(60, 1005, "pause", pod(kPause));
  proc.add(61, 1000, "systemd", "0::/init.scope\n");  // host namespace
  proc.setTcp(60, std::string(FakeProc::kTcpHeader) + FakeProc::tcpRow(0, 53, 0x0A, 900));
  proc.addFd(61, 3, "socket:[900]");  // passed out of the pod (socket activation)
  const ListenerScan scan = listenersOf(scanOf(proc, 1005), proc.root(), {});
  EXPECT_TRUE(scan.listeners.empty());
  EXPECT_EQ(scan.sockets_read, 1u);
}

TEST(Listeners, NoTablesNoProcesses) {
  FakeProc proc;
  proc.add(70, 1006, "app", pod(kApp));
  proc.addFd(70, 3, "socket:[1]");
  EXPECT_TRUE(listenersOf(scanOf(proc, 1006), proc.root(), {}).listeners.empty());
  EXPECT_TRUE(listenersOf(scanOf(proc, 4242), proc.root(), {}).listeners.empty());
}

TEST(Listeners, BoundsCutAndSaySo) {
  FakeProc proc;
  proc.add(80, 1007, "app", pod(kApp));
  proc.add(81, 1007, "sidecar", pod(kSidecar));
  proc.setTcp(80, std::string(FakeProc::kTcpHeader) + FakeProc::tcpRow(0, 80, 0x0A, 1) +
                      FakeProc::tcpRow(1, 81, 0x0A, 2) + FakeProc::tcpRow(2, 82, 0x0A, 3));
  for (int fd = 0; fd < 10; ++fd) proc.addFd(80, fd, "/dev/null");
  proc.addFd(80, 10, "socket:[1]");
  proc.addFd(80, 11, "socket:[2]");
  proc.addFd(81, 3, "socket:[3]");

  const ListenerScan whole = listenersOf(scanOf(proc, 1007), proc.root(), {});
  EXPECT_EQ(whole.listeners.size(), 3u);
  EXPECT_FALSE(whole.truncated);

  MetadataLimits few_rows;
  few_rows.max_listen_sockets_per_netns = 2;
  const ListenerScan rows = listenersOf(scanOf(proc, 1007), proc.root(), few_rows);
  EXPECT_TRUE(rows.truncated);
  EXPECT_EQ(rows.sockets_read, 2u);
  EXPECT_EQ(rows.listeners.size(), 2u);

  MetadataLimits few_fds;
  few_fds.max_fds_per_scan = 5;
  const ListenerScan fds = listenersOf(scanOf(proc, 1007), proc.root(), few_fds);
  EXPECT_TRUE(fds.truncated);
  EXPECT_EQ(fds.fds_examined, 5u);
  EXPECT_LE(fds.listeners.size(), 2u);

  MetadataLimits off;
  off.max_listen_sockets_per_netns = 0;
  const ListenerScan none = listenersOf(scanOf(proc, 1007), proc.root(), off);
  EXPECT_TRUE(none.listeners.empty());
  EXPECT_FALSE(none.truncated);
  EXPECT_EQ(none.fds_examined, 0u);

  // Through the resolver, the cut shows as the identity's `truncated`.
  NetnsScanner scanner(proc.root(), few_fds);
  TablePeers peers;
  peers.table[9] = {IdentityStatus::kResolved, 1007, 2};
  InterfaceIdentityResolver resolver(peers, scanner);
  EXPECT_TRUE(resolver.lookup(9).truncated);
}

}  // namespace
}  // namespace l7tap::metadata
