#!/usr/bin/env python3
"""Builds seed inputs for every fuzz target from the capture fixtures in
pcaps/ and from hand-built messages, in each target's input format (see the
comment at the top of each fuzz_<target>.cc).

    make_corpus.py OUT_DIR            # OUT_DIR/<target>/<seed>, every seed
    make_corpus.py --small OUT_DIR    # small seeds only (what is committed
                                      # in tests/fuzz/corpus/)
"""
import argparse
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PCAPS = os.path.join(HERE, "..", "..", "pcaps")
MAGIC = b"\x01PKT"
SERVER, GAP, END = 0x01, 0x02, 0x04
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10


def read_pcap(path):
    """(timestamp, frame) of a classic pcap file with Ethernet frames."""
    data = open(path, "rb").read()
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        e = ">"
    else:
        return []  # pcapng: the pcap target gets it whole
    if struct.unpack(e + "I", data[20:24])[0] != 1:
        return []
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(e + "IIII", data[off:off + 16])
        out.append(data[off + 16:off + 16 + caplen])
        off += 16 + caplen
    return out


def tcp_segments(frames):
    """(src, dst, sport, dport, seq, ack, flags, payload) of each TCP frame."""
    for f in frames:
        off, proto = 14, struct.unpack(">H", f[12:14])[0]
        while proto in (0x8100, 0x88A8) and off + 4 <= len(f):
            proto = struct.unpack(">H", f[off + 2:off + 4])[0]
            off += 4
        if proto == 0x0800 and off + 20 <= len(f):
            ihl = (f[off] & 0x0F) * 4
            if f[off + 9] != 6:
                continue
            total = struct.unpack(">H", f[off + 2:off + 4])[0]
            src, dst = f[off + 12:off + 16], f[off + 16:off + 20]
            end = off + total if total else len(f)
            off += ihl
        elif proto == 0x86DD and off + 40 <= len(f):
            if f[off + 6] != 6:
                continue
            plen = struct.unpack(">H", f[off + 4:off + 6])[0]
            src, dst = f[off + 8:off + 24], f[off + 24:off + 40]
            end = off + 40 + plen
            off += 40
        else:
            continue
        if off + 20 > len(f):
            continue
        sport, dport, seq, ack = struct.unpack(">HHII", f[off:off + 12])
        doff = (f[off + 12] >> 4) * 4
        flags = f[off + 13]
        yield (src, dst, sport, dport, seq, ack, flags, f[off + doff:min(end, len(f))])


def conversations(path):
    """Per capture: the segments with each one's role (0 client, 1 server)."""
    segs = list(tcp_segments(read_pcap(path)))
    if not segs:
        return []
    client = None
    for s in segs:
        if s[6] & SYN and not s[6] & ACK:
            client = (s[0], s[2])
            break
    if client is None:  # joined mid-way: the higher port is the client's
        s = segs[0]
        client = (s[0], s[2]) if s[2] > s[3] else (s[1], s[3])
    return [(0 if (s[0], s[2]) == client else 1, s) for s in segs]


def chunks(conv, limit):
    out = bytearray()
    for role, s in conv:
        flags, payload = s[6], s[7]
        if payload:
            out += MAGIC + bytes([role]) + payload
        if flags & (FIN | RST):
            out += MAGIC + bytes([role | END | (GAP if flags & RST else 0)])
        if len(out) > limit:
            break
    return bytes(out)


def reassembly_seed(conv, limit):
    if not conv:
        return b""
    base = [None, None]
    for role, s in conv:
        if base[role] is None:
            base[role] = s[4]
    base = [b if b is not None else 0 for b in base]
    out = bytearray([0]) + struct.pack("<II", base[0], base[1])
    for role, s in conv:
        _, _, _, _, seq, ack, flags, payload = s
        ctl = role
        for bit, rbit in ((SYN, 0x02), (RST, 0x04), (FIN, 0x08), (ACK, 0x10)):
            if flags & bit:
                ctl |= rbit
        rec = struct.pack("<BIIHBB", ctl, (seq - base[role]) & 0xFFFFFFFF,
                          (ack - base[1 - role]) & 0xFFFFFFFF, min(len(payload), 0x0FFF), 255, 0)
        out += rec
        if len(out) > limit:
            break
    return bytes(out)


def frame_walk_seed(stream, arm, seg_len, limit):
    stream = stream[:limit]
    n = (len(stream) + seg_len - 1) // seg_len
    n = min(n, 64)
    out = bytearray(struct.pack("<HHIB", 1024, arm, 0xFFFFF000, n))
    for i in range(n):
        out += struct.pack("<BHH", 0, i * seg_len, seg_len)
    return bytes(out + stream)


def client_hello(sni, alpn):
    def u16(x):
        return struct.pack(">H", x)
    sn = u16(len(sni) + 3) + b"\x00" + u16(len(sni)) + sni
    lst = b"".join(bytes([len(p)]) + p for p in alpn)
    ext = u16(0) + u16(len(sn)) + sn + u16(16) + u16(len(lst) + 2) + u16(len(lst)) + lst
    hello = b"\x03\x03" + b"\x07" * 32 + b"\x00" + u16(2) + b"\x13\x01" + b"\x01\x00"
    hello += u16(len(ext)) + ext
    hs = b"\x01\x00" + u16(len(hello)) + hello
    return b"\x16\x03\x01" + u16(len(hs)) + hs


def http1_exchanges():
    """Hand-built conversations for what the fixtures lack (as the unit tests
    build them): pipelining, CONNECT, h2c and WebSocket upgrades, chunked
    bodies with extensions and trailers, HEAD, 1xx, unknown methods, HTTP/0.9."""
    c = lambda b: MAGIC + b"\x00" + b
    s = lambda b: MAGIC + b"\x01" + b
    return {
        "pipelined": c(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        + s(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 404 Not Found\r\n"
            b"Content-Length: 0\r\n\r\n"),
        "connect": c(b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n")
        + s(b"HTTP/1.1 200 Connection established\r\n\r\n") + c(b"\x16\x03\x01\x00\x05hello"),
        "h2c-upgrade": c(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                         b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
        + s(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
        "websocket": c(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        + s(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
        "chunked-trailers": c(b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n")
        + s(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
        "head-gap": c(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET /big HTTP/1.1\r\n\r\n")
        + s(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        + s(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nxy") + MAGIC + b"\x03\x10\x00"
        + MAGIC + b"\x05",
        # Methods llhttp does not know (given GET in their place), one and two
        # byte tokens, a token and a line cut across segments, lower case.
        "unknown-methods": c(b"BREW /pot HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcX /1 HTTP/1.1\r\n\r\nMK")
        + c(b" /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nX-CUS")
        + c(b"TOM-1 /c?a=1 HTTP/1.0\r\n\r\nget /l HTT") + c(b"P/1.1\r\n\r\nPROPFIND / HTTP/1.1\r\n\r\n")
        + s(b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 1\r\n\r\nt"
            b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        + s(b"HTTP/1.1 200 OK\r\n\r\n"),
        # HTTP/0.9: the answer is raw bytes until the close, a gap in it.
        "http09": c(b"GET /hello.txt\r\n") + MAGIC + b"\x04"
        + s(b"hello\nHTTP/1.1 200 OK\r\n") + MAGIC + b"\x03\x10\x00" + s(b"world\n")
        + MAGIC + b"\x05",
    }


def redaction_seeds():
    """fuzz_redaction inputs: a policy byte, a 2-byte bound, then chunks (0 a
    path pattern, 1 an allowed query key, 2 a query, 3 an authority, 4 a
    target, 5 a record's path, 0x15 a CONNECT's)."""
    k = lambda kind, b: MAGIC + bytes([kind]) + b
    patterns = k(0, b"/reset-password/*") + k(0, b"/users/*/tokens/*") + k(0, b"/files/**")
    return {
        "paths": b"\x00\x00\x00" + patterns + k(1, b"page")
        + k(2, b"token=s3cr3t&page=2&x") + k(3, b"alice:pa55@h:8080")
        + k(4, b"/users/42/tokens/t0k") + k(4, b"http://u:p@h/files/a/b?x=1")
        + k(5, b"/reset-password/abc") + k(0x15, b"u:p@h:443"),
        "bound": b"\x00\x20\x00" + k(0, b"/f/**") + k(4, b"/f/a/b/c/d/e/f/g")
        + k(2, b"a=1&b=2&c=3&d=4"),
        "keep-query-invalid-patterns": b"\x01\x00\x00" + k(0, b"x") + k(0, b"/a//*")
        + k(0, b"/a/**/b") + k(0, b"/REDACTED/*") + k(0, b"/*/c") + k(4, b"/REDACTED/c")
        + k(2, b"token=s3cr3t"),
    }


def route_seeds():
    """fuzz_route inputs: max_route_bytes (2 bytes), max_route_segments,
    max_route_patterns, then chunks (0 a pattern, else a target)."""
    k = lambda kind, b: MAGIC + bytes([kind]) + b
    return {
        "defaults": b"\x80\x00\x10\xff" + k(0, b"/api/users/{id}/orders") + k(0, b"/static/**")
        + k(1, b"/api/users/42/orders") + k(1, b"/api/v1/items/123e4567-e89b-12d3-a456-426614174000")
        + k(1, b"http://h:8080/a/2026-12-05?x=1#f") + k(1, b"*") + k(1, b"//a//b/")
        + k(1, b"/grpc.health.v1.Health/Check") + k(1, b"/static/css/a.css"),
        "tight": b"\x10\x00\x02\x01" + k(0, b"/a/*") + k(0, b"/b/*")
        + k(1, b"/abcdef/ghijkl/mnopqr/stuvwx") + k(1, b"/a/b/c/d/e/f"),
    }


def tunnel_pcap_seeds():
    """One HTTP/1 exchange per encapsulation and link type the packet parser
    takes off (tc/packet_parse.h): whole classic pcap files."""
    def ip4(src, dst, proto, payload):
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                        bytes(src), bytes(dst))
        return h + payload

    def tcp(sport, dport, seq, ack, flags, data):
        return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data

    def eth(etype, payload):
        return b"\x02\0\0\0\0\x0b\x02\0\0\0\0\x0a" + struct.pack("!H", etype) + payload

    def exchange():
        c, s = [10, 0, 0, 1], [10, 0, 0, 2]
        req, resp = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        return [ip4(c, s, 6, tcp(40000, 80, 999, 0, 0x02, b"")),
                ip4(s, c, 6, tcp(80, 40000, 4999, 1000, 0x12, b"")),
                ip4(c, s, 6, tcp(40000, 80, 1000, 5000, 0x18, req)),
                ip4(s, c, 6, tcp(80, 40000, 5000, 1000 + len(req), 0x18, resp)),
                ip4(c, s, 6, tcp(40000, 80, 1000 + len(req), 5000 + len(resp), 0x11, b"")),
                ip4(s, c, 6, tcp(80, 40000, 5000 + len(resp), 1001 + len(req), 0x11, b""))]

    def outer(proto, payload):
        return eth(0x0800, ip4([198, 51, 100, 1], [198, 51, 100, 2], proto, payload))

    def udp(dport, payload):
        return struct.pack("!HHHH", 49152, dport, 8 + len(payload), 0) + payload

    def nflog(ip):
        tlv = struct.pack("<HH", 4 + len(ip), 9) + ip
        return b"\x02\0\0\x05" + struct.pack("<HH", 8, 1) + b"\x08\0\x03\0" + tlv + b"\0" * (-len(tlv) % 4)

    wraps = {
        "vxlan": (1, lambda ip: outer(17, udp(4789, b"\x08\0\0\0\0\x12\x34\0" + eth(0x0800, ip)))),
        "geneve": (1, lambda ip: outer(17, udp(6081, b"\x01\0\x65\x58\0\0\x07\0" + b"\xaa" * 4 + eth(0x0800, ip)))),
        "gre-key": (1, lambda ip: outer(47, b"\x20\0\x08\0\0\0\0\x2a" + ip)),
        "ipip": (1, lambda ip: outer(4, ip)),
        "pppoe": (1, lambda ip: eth(0x8864, struct.pack("!BBHHH", 0x11, 0, 0x1234, 2 + len(ip), 0x21) + ip)),
        "nflog": (239, nflog),
        "chdlc": (104, lambda ip: b"\x0f\0\x08\0" + ip),
    }
    seeds = {}
    for name, (dlt, wrap) in wraps.items():
        out = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, dlt)
        for i, ip in enumerate(exchange()):
            frame = wrap(ip)
            out += struct.pack("<IIII", 1700000000, i * 1000, len(frame), len(frame)) + frame
        seeds["hand-" + name] = out
    return seeds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="only seeds of at most 4 KB")
    ap.add_argument("out")
    args = ap.parse_args()
    limit = 4096 if args.small else 64 * 1024
    seeds = {t: {} for t in ("pcap", "reassembly", "http1", "http2", "tls", "frame_walk")}
    for name in sorted(os.listdir(PCAPS)):
        path = os.path.join(PCAPS, name)
        if not name.endswith((".pcap", ".pcapng")):
            continue
        stem = name.rsplit(".", 1)[0]
        if os.path.getsize(path) <= (8192 if args.small else 256 * 1024):
            seeds["pcap"][stem] = open(path, "rb").read()
        conv = conversations(path)
        if not conv:
            continue
        if stem.startswith("tcp-") or not args.small:
            seeds["reassembly"][stem] = reassembly_seed(conv, limit)
        if "h2" in stem:
            mode = b"\x01" if stem.startswith("midstream") else b"\x00"
            seeds["http2"][stem] = mode + chunks(conv, limit)
            for role in (0, 1):
                stream = b"".join(s[7] for r, s in conv if r == role)
                arm = 24 if role == 0 and stream.startswith(b"PRI * HTTP/2.0") else 0
                seeds["frame_walk"][f"{stem}-{role}"] = frame_walk_seed(stream, arm, 700, limit)
        elif "http1" in stem or stem.startswith(("midstream-http1", "midstream-body")):
            seeds["http1"][stem] = b"\x00" + chunks(conv, limit)
    for stem, data in http1_exchanges().items():
        seeds["http1"]["hand-" + stem] = b"\x00" + data
    seeds["tls"]["sni-alpn"] = client_hello(b"api.example.test", [b"h2", b"http/1.1"])
    seeds["tls"]["sni-only"] = client_hello(b"a.test", [])
    seeds["pcap"].update(tunnel_pcap_seeds())
    seeds["redaction"] = {"hand-" + k: v for k, v in redaction_seeds().items()}
    seeds["route"] = {"hand-" + k: v for k, v in route_seeds().items()}
    for target, items in seeds.items():
        d = os.path.join(args.out, target)
        os.makedirs(d, exist_ok=True)
        kept = 0
        for stem, data in sorted(items.items()):
            if not data or (args.small and len(data) > limit):
                continue
            hand = stem.startswith("hand-")
            if args.small and kept >= 8 and not hand:
                continue
            with open(os.path.join(d, stem), "wb") as f:
                f.write(data)
            kept += 0 if hand else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
