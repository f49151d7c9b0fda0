#!/usr/bin/env python3
"""Writes the committed seeds of fuzz_go_binary, fuzz_function_targets and
fuzz_tls_events.

fuzz_go_binary and fuzz_function_targets: tiny hand-built x86-64 ELF
executables with a .go.buildinfo section (native ones: without its magic,
with USDT notes), a symbol table naming crypto/tls.(*Conn).Write/Read/Close
(or main.handle*, handle_*) and a .text whose functions end in RET (a
real Go binary is megabytes; the fuzzer grows the rest). fuzz_tls_events: ring samples (uprobes/bpf/tls_abi.h)
split on \\x01PKT: an HTTP/1 exchange both ways and a close.

    tests/fuzz/make_uprobe_seeds.py tests/fuzz/corpus
"""
import os
import struct
import sys

MAGIC = b"\x01PKT"


TLS_FUNCS = [
    (b"crypto/tls.(*Conn).Write", b"\x55\x48\x89\xe5\x5d\xc3\x90\xc3"),
    (b"crypto/tls.(*Conn).Read", b"\x48\x31\xc0\xc3"),
    (b"crypto/tls.(*Conn).Close", b"\x90\xc3"),
]


def stapsdt_notes(probes, base):
    out = b""
    for provider, name in probes:
        desc = struct.pack("<QQQ", base + 0x78, 0, 0) + provider + b"\0" + name + b"\0" + b"\0"
        desc += b"\0" * (-len(desc) % 4)
        out += struct.pack("<III", 8, len(desc), 3) + b"stapsdt\0" + desc
    return out


def go_elf(version=b"go1.21.0", inline=True, pie=False, with_syms=True, itab=True,
           functions=TLS_FUNCS, buildinfo=True, usdt=()):
    """buildinfo=False: a native program (.data in the build info's place, without
    the magic); usdt: (provider, name) pairs, as .note.stapsdt notes."""
    base = 0x400000
    text = b""
    funcs = {}
    for name, body in functions:
        funcs[name] = (len(text), len(body))
        text += body
    if inline:
        bi = b"\xff Go buildinf:" + bytes([8, 2]) + b"\0" * 16
        bi += bytes([len(version)]) + version + bytes([0])
    else:
        # Before Go 1.18: a pointer to a Go string header, here right after
        # the build info header, and its bytes after it.
        bi_addr = base + 0x40 + 0x38 + len(text)
        bi = b"\xff Go buildinf:" + bytes([8, 0]) + struct.pack("<QQ", bi_addr + 32, 0)
        bi += struct.pack("<QQ", bi_addr + 48, len(version)) + version
    if not buildinfo:
        bi = b"\0" * len(bi)
    notes = stapsdt_notes(usdt, base)
    bi_name = b".go.buildinfo" if buildinfo else b".data"
    shstr = b"\0.text\0" + bi_name + b"\0.symtab\0.strtab\0.shstrtab\0"
    if usdt:
        shstr += b".note.stapsdt\0"
    strtab = b"\0"
    syms = [b"\0" * 24]
    names = list(funcs)
    if itab:
        names.append(b"go:itab.*net.TCPConn,net.Conn")
    text_off = 0x40 + 0x38
    for n in names:
        off = len(strtab)
        strtab += n + b"\0"
        if n in funcs:
            value, size = base + text_off + funcs[n][0], funcs[n][1]
            info = 0x12  # GLOBAL FUNC
        else:
            value, size, info = base + text_off + len(text), 8, 0x11
        syms.append(struct.pack("<IBBHQQ", off, info, 0, 1, value, size))
    symtab = b"".join(syms) if with_syms else b""
    body = bytearray()
    layout = {}
    cur = text_off
    for key, data in [("text", text), ("bi", bi), ("symtab", symtab), ("strtab", strtab),
                      ("shstr", shstr), ("notes", notes)]:
        layout[key] = (cur, len(data))
        body += data
        cur += len(data)
    shoff = (cur + 7) & ~7
    body += b"\0" * (shoff - cur)
    sections = 7 if usdt else 6
    file_size = shoff + 64 * sections
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + b"\0" * 9,
                       3 if pie else 2, 62, 1, base + text_off, 0x40, shoff, 0, 64, 0x38, 1, 64,
                       sections, 5)
    phdr = struct.pack("<IIQQQQQQ", 1, 7, 0, base, base, file_size, file_size, 0x1000)

    def sh(name, typ, flags, key, link=0, info=0, align=1, entsize=0):
        off, size = layout[key]
        addr = base + off if flags & 2 else 0
        return struct.pack("<IIQQQQIIQQ", shstr.index(name), typ, flags, addr, off, size, link,
                           info, align, entsize)

    shdrs = b"\0" * 64
    shdrs += sh(b".text\0", 1, 6, "text", align=16)
    shdrs += sh(bi_name + b"\0", 1, 3, "bi", align=16)
    shdrs += sh(b".symtab\0", 2 if with_syms else 1, 0, "symtab", link=4, info=1, align=8,
                entsize=24)
    shdrs += sh(b".strtab\0", 3, 0, "strtab")
    shdrs += sh(b".shstrtab\0", 3, 0, "shstr")
    if usdt:
        shdrs += sh(b".note.stapsdt\0", 7, 0, "notes", align=4)
    return ehdr + phdr + bytes(body) + shdrs


def tls_event(kind, conn_id=0x7f0001, offset=0, seq=0, direction=0, data=b"", length=None,
              fd=5, tuple_known=True, role=1, ts=2_000_000_000, tgid=4242, library=1,
              sport=40000, dport=443):
    length = len(data) if length is None else length
    # IPv4 as v4-mapped (reassembly/segment.h setIpv4); local -> remote.
    key = b"\0" * 10 + b"\xff\xff" + bytes([10, 0, 0, 1])
    key += b"\0" * 10 + b"\xff\xff" + bytes([10, 0, 0, 2])
    key += struct.pack("<HHB3x", sport, dport, 4)
    hdr = struct.pack("<QQQIIIIIiII", ts, conn_id, offset, seq, tgid, tgid, length, len(data), fd,
                      4026531840, 0)
    hdr += struct.pack("<BBBBB3x", kind, direction, library, role, 1 if tuple_known else 0)
    hdr += key + b"curl".ljust(16, b"\0")
    assert len(hdr) == 120
    return hdr + data


def http1_exchange():
    req = b"GET /api/items?id=7 HTTP/1.1\r\nHost: svc\r\nUser-Agent: curl/7.88\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    return [tls_event(1, data=req, ts=2_000_000_000),
            tls_event(1, direction=1, data=resp, ts=2_000_100_000)]


def main():
    out = sys.argv[1]
    gb = os.path.join(out, "go_binary")
    te = os.path.join(out, "tls_events")
    os.makedirs(gb, exist_ok=True)
    os.makedirs(te, exist_ok=True)
    seeds = {
        "go121-inline-buildinfo": go_elf(),
        "go121-pie": go_elf(pie=True, itab=False),
        "go116-too-old": go_elf(version=b"go1.16.15"),
        "go117-buildinfo-pointer": go_elf(version=b"go1.17.13", inline=False),
        "go-stripped": go_elf(with_syms=False),
    }
    for name, b in seeds.items():
        open(os.path.join(gb, name), "wb").write(b)
    ft = os.path.join(out, "function_targets")
    os.makedirs(ft, exist_ok=True)
    handlers = [(b"main.handleGet", b"\x49\x3b\x66\x10\x76\x03\x31\xc0\xc3"
                 b"\xe8\x00\x00\x00\x00\xeb\xf0"),
                (b"main.handlePut", b"\x48\x85\xc0\x74\x01\xc3\x31\xc0\xc3")]
    natives = [(b"handle_get", b"\x8d\x44\x7f\x01\xc3"), (b"handle_set", b"\x89\xf8\xc3")]
    probes = [(b"l7tapt", b"request__start"), (b"l7tapt", b"request__end"),
              (b"l7tapt", b"work_begin"), (b"l7tapt", b"work_finish")]
    seeds = {
        "go-handlers-stack-check": go_elf(functions=handlers + TLS_FUNCS),
        "go-stripped": go_elf(with_syms=False),
        "native-with-usdt": go_elf(functions=natives, buildinfo=False, usdt=probes),
        "native-pie": go_elf(functions=natives, buildinfo=False, pie=True),
        "native-stripped-with-usdt": go_elf(functions=natives, buildinfo=False, with_syms=False,
                                            usdt=probes[:2]),
    }
    for name, b in seeds.items():
        open(os.path.join(ft, name), "wb").write(b)
    ex = http1_exchange()
    req_len = len(ex[0]) - 120
    samples = {
        "http1-exchange": ex,
        "http1-exchange-close": ex + [tls_event(2, offset=req_len, seq=1, ts=2_000_200_000)],
        # The socket is not known at first: held until an event brings it.
        "held-then-tuple": [tls_event(1, data=ex[0][120:], fd=-1, tuple_known=False),
                            tls_event(1, direction=1, data=ex[1][120:], ts=2_000_100_000)],
        # A lost event (seq jumps) and a write longer than captured.
        "lost-and-uncaptured": [ex[0], tls_event(1, offset=req_len + 100, seq=2,
                                                 data=ex[0][120:], length=req_len + 50,
                                                 ts=2_000_300_000)],
        "exec-ends-sessions": ex[:1] + [tls_event(3, ts=2_000_400_000)] + ex[1:],
        "go-server": [tls_event(1, direction=1, data=ex[0][120:], library=2, role=2,
                                sport=443, dport=40000),
                      tls_event(1, data=ex[1][120:], library=2, role=2, sport=443,
                                dport=40000, ts=2_000_100_000)],
    }
    for name, evs in samples.items():
        open(os.path.join(te, name), "wb").write(MAGIC.join(evs))


if __name__ == "__main__":
    main()
