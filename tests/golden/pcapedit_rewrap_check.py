#!/usr/bin/env python3
"""Checks pcapedit's rewrap subcommands (encap, relink, fragment) with tshark.

Each wrapping of a recorded fixture must dissect to the same HTTP messages as
the original, with valid outer checksums, outer addresses that follow the
direction of each inner packet, and (fragment) no IP packet over the MTU.
Bad requests must fail with a message, never write a file.
"""
import argparse
import os
import subprocess
import sys
import tempfile

CLIENT4, SERVER4 = "192.0.2.1", "198.51.100.2"
CLIENT6, SERVER6 = "2001:db8::1", "2001:db8::2"
O4 = ["--outer-src", CLIENT4, "--outer-dst", SERVER4]
O6 = ["--outer-src", CLIENT6, "--outer-dst", SERVER6]


def tshark(capture, *args):
    res = subprocess.run(["tshark", "-n", "-r", capture, "-o", "ip.check_checksum:TRUE",
                          "-o", "udp.check_checksum:TRUE"] + list(args),
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"tshark on {capture}: {res.stderr.strip()}")
    return [line.split("\t") for line in res.stdout.splitlines()]


FIELDS = ["tcp.srcport", "http.request.method", "http.request.uri", "http.response.code",
          "ip.src", "ipv6.src", "ip.len", "ipv6.plen", "ip.checksum.status",
          "udp.checksum.status", "_ws.malformed", "_ws.expert.severity"]
ERROR_SEVERITY = 0x800000  # PI_ERROR


def frames(capture):
    """One dict per frame of FIELDS (first occurrence for addresses: the outer
    header; all occurrences, comma-separated, for the rest). One tshark run."""
    args = ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        args += ["-e", f]
    return [dict(zip(FIELDS, row)) for row in tshark(capture, *args)]


def http_messages(rows):
    return [(r["tcp.srcport"], r["http.request.method"], r["http.request.uri"],
             r["http.response.code"]) for r in rows
            if r["http.request.method"] or r["http.response.code"]]


def broken(rows):
    """Frames with a bad IP or UDP checksum, or that tshark finds malformed."""
    return [r for r in rows
            if "0" in (r["ip.checksum.status"] + "," + r["udp.checksum.status"]).split(",")
            or r["_ws.malformed"]
            or any(int(v) >= ERROR_SEVERITY for v in r["_ws.expert.severity"].split(",") if v)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pcapedit", required=True)
    ap.add_argument("--pcaps", required=True)
    args = ap.parse_args()
    ka = os.path.join(args.pcaps, "http1-keepalive.pcap")
    v6 = os.path.join(args.pcaps, "http1-ipv6.pcap")
    failures = []

    def fail(msg):
        failures.append(msg)
        print("FAIL " + msg)

    base_rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("gre-key", ka, ["encap", "--type", "gre-key", "--id", "1001"] + O4, "gre", 4),
            ("gretap", ka, ["encap", "--type", "gretap", "--id", "7"] + O4, "gre", 4),
            ("ipip", ka, ["encap", "--type", "ipip"] + O4, "ip.proto == 4", 4),
            ("6in4", v6, ["encap", "--type", "6in4"] + O4, "ip.proto == 41", 4),
            ("4in6", ka, ["encap", "--type", "4in6"] + O6, "ipv6.nxt == 4", 6),
            ("6in6", v6, ["encap", "--type", "6in6"] + O6, "ipv6.nxt == 41", 6),
            ("vxlan", ka, ["encap", "--type", "vxlan", "--id", "42"] + O4, "vxlan.vni == 42", 4),
            ("geneve", ka, ["encap", "--type", "geneve", "--id", "42"] + O6, "geneve.vni == 42", 6),
            ("pppoe", ka, ["encap", "--type", "pppoe", "--id", "0x1234"], "pppoe.session_id == 0x1234", 0),
            ("c-hdlc", ka, ["relink", "--dlt", "c-hdlc"], "chdlc", 0),
            ("raw", v6, ["relink", "--dlt", "raw"], "ipv6", 0),
            ("frag4", ka, ["fragment", "--mtu", "300"], "ip.flags.mf == 1", 0),
            ("frag6", v6, ["fragment", "--mtu", "280"], "ipv6.fragment", 0),
            ("frag6-reverse", v6, ["fragment", "--mtu", "280", "--reverse"], "ipv6.fragment", 0),
        ]
        for name, base, cmd, marker, outer in cases:
            out = os.path.join(tmp, name + ".pcap")
            res = subprocess.run([args.pcapedit] + cmd + [base, out], capture_output=True, text=True)
            if res.returncode != 0:
                fail(f"{name}: pcapedit {' '.join(cmd)}: {res.stderr.strip()}")
                continue
            if base not in base_rows:
                base_rows[base] = frames(base)
            rows = frames(out)
            if http_messages(rows) != http_messages(base_rows[base]):
                fail(f"{name}: tshark dissects other HTTP messages than in {os.path.basename(base)}")
            if not tshark(out, "-Y", marker):
                fail(f"{name}: no packet matches '{marker}'")
            if broken(rows):
                fail(f"{name}: {len(broken(rows))} packets with bad checksums or malformed")
            if outer:
                # Outer source is the client side's address exactly on the client's packets.
                client, server = (CLIENT4, SERVER4) if outer == 4 else (CLIENT6, SERVER6)
                inner_client = rows[0]["tcp.srcport"]  # the first packet is the SYN
                for r in rows:
                    src = r["ip.src" if outer == 4 else "ipv6.src"].split(",")[0]
                    want = client if r["tcp.srcport"] == inner_client else server
                    if src != want:
                        fail(f"{name}: outer source {src}, expected {want}")
                        break
            if name.startswith("frag"):
                mtu = int(cmd[2])
                top = max(max([int(v) for v in r["ip.len"].split(",") if v] +
                              [int(v) + 40 for v in r["ipv6.plen"].split(",") if v]) for r in rows)
                if top > mtu:
                    fail(f"{name}: an IP packet of {top} bytes over MTU {mtu}")

        refused = [
            ("6in4 of IPv4", ["encap", "--type", "6in4"] + O4, ka, "carries IPv6"),
            ("mixed families", ["encap", "--type", "gre", "--outer-src", CLIENT4,
                                "--outer-dst", SERVER6], ka, "one family"),
            ("no outer address", ["encap", "--type", "gre"], ka, "--outer-src"),
            ("unknown type", ["encap", "--type", "l2tp"] + O4, ka, "--type"),
            ("snap length", ["encap", "--type", "ipip"] + O4,
             os.path.join(args.pcaps, "http1-offload.pcap"), "not captured whole"),
            ("tiny MTU", ["fragment", "--mtu", "20"], ka, "MTU"),
            ("unknown link type", ["relink", "--dlt", "ppp"], ka, "--dlt"),
        ]
        for name, cmd, base, words in refused:
            out = os.path.join(tmp, "refused.pcap")
            res = subprocess.run([args.pcapedit] + cmd + [base, out], capture_output=True, text=True)
            if res.returncode != 1 or words not in res.stderr or os.path.exists(out):
                fail(f"refused {name}: exit {res.returncode}, '{res.stderr.strip()}'")
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
