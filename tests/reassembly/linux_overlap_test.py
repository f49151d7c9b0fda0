#!/usr/bin/python3
"""Privileged check that l7tap resolves overlapping TCP segments as Linux does.

A real TCP server (python3, in network namespace h6o<pid>s) receives, from a
peer namespace (h6o<pid>c), segment sequences crafted to overlap with
different bytes: each case is its own connection, handshake included, made
by this script with AF_PACKET on the peer's end of a veth (that end has no
IP address, so its own kernel neither answers nor resets). The frames sent
and received are written to a pcap, `l7tap replay` reads it, and the request
target in each HTTP record must be the one the server's recv() returned,
flagged `ambiguous` exactly where the copies differed.

Usage: linux_overlap_test.py --l7tap PATH [-v]

Without root or network namespaces it skips with the reason; with
L7TAP_REQUIRE_PRIVILEGED set (non-empty, not "0") that is a failure. Every
namespace, interface and process it makes is removed on exit and failure.
"""

import argparse
import ctypes
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from privileged_suite import cannot_run  # noqa: E402
from netns import delete_namespace, remove_stale_namespaces  # noqa: E402

PID = os.getpid()
NS_SERVER, NS_CLIENT = f"h6o{PID}s", f"h6o{PID}c"
IF_SERVER, IF_CLIENT = f"h6o{PID}s"[:15], f"h6o{PID}c"[:15]
SERVER_IP, CLIENT_IP = "10.216.0.2", "10.216.0.1"
PORT = 8080
T_EVENT = 30  # bounds a wait for something that must happen (shared CPUs)

# The request every case sends, whose path (stream bytes 5..20) the crafted
# segments fight over; letters only, so that redaction leaves it alone.
REQUEST = b"GET /abcdefghijklmnop HTTP/1.1\r\nHost: h6o\r\n\r\n"
R = REQUEST

# Each case: segments as (stream offset, bytes), sent in this order, then a
# FIN. `conflict`: copies of some bytes differ while both are in memory (the
# record must be flagged ambiguous).
CASES = [
    # An in-order segment is delivered whole over buffered bytes.
    ("in_order_covers_buffered", [(8, b"XXXX"), (0, R)], True),
    # Out of order, same start, reaching further: replaces the queued one.
    ("same_start_longer_replaces", [(8, b"XXXX"), (8, R[8:14]), (0, R[:8]), (14, R[14:])], True),
    # A new segment covering a queued one from before its start removes it.
    ("covering_removes_queued", [(10, b"YY"), (8, R[8:14]), (0, R[:8]), (14, R[14:])], True),
    # A new segment wholly inside a queued one is dropped.
    ("inside_queued_dropped", [(8, R[8:14]), (10, b"YY"), (0, R[:8]), (14, R[14:])], True),
    # Partial overlap, the earlier in sequence second: it wins.
    ("partial_earlier_second", [(11, b"WWWW"), (8, R[8:13]), (0, R[:8]), (15, R[15:])], True),
    # Partial overlap, the earlier in sequence first: it wins.
    ("partial_earlier_first", [(8, b"VVVVV"), (11, R[11:15]), (0, R[:8]), (15, R[15:])], True),
    # Bytes already delivered are not replaced by a retransmission.
    ("delivered_not_replaced", [(0, R[:12]), (0, b"GET /QQQQQQQQQQQ"), (16, R[16:])], False),
]

# Every connection first carries a plain request, answered before the crafted
# one is sent: l7tap's session holds a connection's first bytes until it knows
# the protocol, and a conflict counted while they are held cannot flag the
# record that begins after (see StreamReassembler). The crafted request is the
# second, whose record the check reads.
FIRST = b"GET /first HTTP/1.1\r\nHost: h6o\r\n\r\n"

SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("listening", flush=True)
for _ in range(int(sys.argv[3])):
    c, peer = s.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        data += c.recv(65536)
    first, _, data = data.partition(b"\r\n\r\n")
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    while True:
        b = c.recv(65536)
        if not b:
            break
        data += b
    print(peer[1], data.hex(), flush=True)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    c.close()
"""


def run(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", options=b""):
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, 65535, 0, 0)
    tcp += options + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


class Wire:
    """The client end: AF_PACKET on its veth, every frame kept for the pcap."""

    def __init__(self, ifname, src_mac, dst_mac):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        self.sock.bind((ifname, 0))
        self.eth = dst_mac + src_mac + b"\x08\x00"
        self.frames = []  # (time, frame)

    def send(self, ip):
        frame = self.eth + ip
        self.sock.send(frame)
        self.frames.append((time.time(), frame))

    def receive(self, sport, want_flags, deadline):
        """The next TCP frame from the server to `sport` with all `want_flags`."""
        while time.time() < deadline:
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            frame, addr = self.sock.recvfrom(65535)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            ip = frame[14:]
            if len(ip) < 40 or ip[9] != 6 or socket.inet_ntoa(ip[12:16]) != SERVER_IP:
                continue
            self.frames.append((time.time(), frame))
            tcp = ip[(ip[0] & 15) * 4:]
            dport, seq = struct.unpack("!HI", tcp[2:8])
            flags = tcp[13]
            length = struct.unpack("!H", ip[2:4])[0] - (ip[0] & 15) * 4 - (tcp[12] >> 4) * 4
            if dport == sport and flags & want_flags == want_flags:
                return seq, length
        raise RuntimeError(f"no answer with flags {want_flags:#x} to port {sport}")

    def write_pcap(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for ts, frame in self.frames:
                f.write(struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), len(frame), len(frame)))
                f.write(frame)


def send_case(wire, sport, segments):
    isn = 1_000_000 + sport * 1000
    wire.send(ipv4_tcp(CLIENT_IP, SERVER_IP, sport, PORT, isn, 0, 0x02,
                       options=b"\x02\x04\x05\xb4"))
    server_isn, _ = wire.receive(sport, 0x12, time.time() + T_EVENT)
    ack = server_isn + 1
    seq = isn + 1
    wire.send(ipv4_tcp(CLIENT_IP, SERVER_IP, sport, PORT, seq, ack, 0x10))
    wire.send(ipv4_tcp(CLIENT_IP, SERVER_IP, sport, PORT, seq, ack, 0x18, FIRST))
    seq += len(FIRST)
    rsp_seq, length = wire.receive(sport, 0x18, time.time() + T_EVENT)
    ack = rsp_seq + length
    wire.send(ipv4_tcp(CLIENT_IP, SERVER_IP, sport, PORT, seq, ack, 0x10))
    end = 0
    for offset, data in segments:
        wire.send(ipv4_tcp(CLIENT_IP, SERVER_IP, sport, PORT, seq + offset, ack, 0x18, data))
        end = max(end, offset + len(data))
    wire.send(ipv4_tcp(CLIENT_IP, SERVER_IP, sport, PORT, seq + end, ack, 0x11))
    # The server answers once it read to the end; its FIN, acknowledged, ends the case.
    fin_seq, length = wire.receive(sport, 0x01, time.time() + T_EVENT)
    wire.send(ipv4_tcp(CLIENT_IP, SERVER_IP, sport, PORT, seq + end + 1, fin_seq + length + 1,
                       0x10))


def setns(fd):
    """Moves this thread into the network namespace `fd` refers to (os.setns
    is Python 3.12's; bookworm has 3.11)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns")


def mac_of(ns, ifname):
    out = run("ip", "-n", ns, "-j", "link", "show", ifname).stdout
    return bytes.fromhex(json.loads(out)[0]["address"].replace(":", ""))


def setup():
    run("ip", "netns", "add", NS_SERVER)
    run("ip", "netns", "add", NS_CLIENT)
    run("ip", "link", "add", IF_SERVER, "netns", NS_SERVER, "type", "veth", "peer", "name",
        IF_CLIENT, "netns", NS_CLIENT)
    for ns, ifname in ((NS_SERVER, IF_SERVER), (NS_CLIENT, IF_CLIENT)):
        run("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1")
        run("ip", "netns", "exec", ns, "ethtool", "-K", ifname, "tso", "off", "gso", "off",
            "gro", "off", check=False)
        run("ip", "-n", ns, "link", "set", ifname, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
    run("ip", "-n", NS_SERVER, "addr", "add", f"{SERVER_IP}/24", "dev", IF_SERVER)
    run("ip", "-n", NS_SERVER, "neigh", "add", CLIENT_IP, "lladdr",
        mac_of(NS_CLIENT, IF_CLIENT).hex(":"), "dev", IF_SERVER, "nud", "permanent")


def cleanup():
    delete_namespace(NS_SERVER)
    delete_namespace(NS_CLIENT)


def check(l7tap, verbose):
    setup()
    server = subprocess.Popen(["ip", "netns", "exec", NS_SERVER, sys.executable, "-c", SERVER,
                               SERVER_IP, str(PORT), str(len(CASES))],
                              stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "listening":
            raise RuntimeError("the server did not start")
        client_mac, server_mac = mac_of(NS_CLIENT, IF_CLIENT), mac_of(NS_SERVER, IF_SERVER)
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        client_ns = os.open(f"/run/netns/{NS_CLIENT}", os.O_RDONLY)
        try:
            setns(client_ns)
            wire = Wire(IF_CLIENT, client_mac, server_mac)  # the socket stays in NS_CLIENT
        finally:
            setns(own)
            os.close(client_ns)
            os.close(own)
        read = {}
        for i, (_, segments, _) in enumerate(CASES):
            send_case(wire, 40000 + i, segments)
        for _ in CASES:
            port, data = server.stdout.readline().split()
            read[int(port)] = bytes.fromhex(data)
        server.wait(T_EVENT)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    with tempfile.TemporaryDirectory(prefix="h6o") as tmp:
        pcap, out = os.path.join(tmp, "overlap.pcap"), os.path.join(tmp, "records.jsonl")
        wire.write_pcap(pcap)
        r = subprocess.run([l7tap, "replay", "-o", out, pcap], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"l7tap replay: {r.stderr}")
        with open(out) as f:
            records = [json.loads(line) for line in f if line.strip()]
    http = {rec["client.port"]: rec for rec in records
            if rec.get("type") == "http" and rec.get("url.path") != "/first"}
    failures = 0
    for i, (name, segments, conflict) in enumerate(CASES):
        port = 40000 + i
        server_read = read.get(port, b"")
        linux_path = server_read.split(b" ")[1].decode() if b" " in server_read else "?"
        rec = http.get(port, {})
        got_path = rec.get("url.path", "?")
        flags = rec.get("l7tap.flags", [])
        flags = flags.split(",") if isinstance(flags, str) else flags
        ok = got_path == linux_path and ("ambiguous" in flags) == conflict
        failures += not ok
        if verbose or not ok:
            print(f"{'ok  ' if ok else 'FAIL'} {name}: Linux read {linux_path}, "
                  f"l7tap {got_path}, flags {flags}")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--l7tap", required=True)
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    reason = ""
    if os.geteuid() != 0:
        reason = "needs root (network namespaces, AF_PACKET)"
    elif not os.access(args.l7tap, os.X_OK):
        reason = f"no l7tap program at {args.l7tap}"
    elif run("ip", "netns", "add", f"h6o{PID}p", check=False).returncode != 0:
        reason = "network namespaces not available"
    else:
        run("ip", "netns", "del", f"h6o{PID}p", check=False)
    status = cannot_run("Linux overlap check", len(CASES), reason)
    if status is not None:
        return status
    remove_stale_namespaces(r"h6o(\d+)[scp]", print)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    try:
        failures = check(args.l7tap, args.v)
    except Exception as e:  # noqa: BLE001 -- reported as a failure, after cleanup
        print(f"FAIL: {e}")
        failures = len(CASES)
    finally:
        cleanup()
    print(f"{len(CASES) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
