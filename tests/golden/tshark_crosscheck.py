#!/usr/bin/env python3
"""Cross-checks l7tap against tshark on every fixture in pcaps/.

For each capture, every HTTP request and final response that tshark
dissects must appear in l7tap's records with the same connection (client
port), method, target and status (and stream id for HTTP/2). tshark is the
independent reference: it shares no code with l7tap.
"""
import argparse
import collections
import glob
import json
import os
import subprocess
import sys


def l7tap_records(l7tap, capture):
    out = subprocess.run([l7tap, "replay", "--quiet", capture], check=True,
                         capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line]


def tshark(capture, args):
    cmd = ["tshark", "-n", "-r", capture, "-o", "tcp.reassemble_out_of_order:TRUE"] + args
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {res.stderr.strip()}")
    return [line.split("\t") for line in res.stdout.splitlines() if line]


def client_port(pkt_src, pkt_dst, server_ports):
    return pkt_dst if pkt_src in server_ports else pkt_src


def check(capture, l7tap):
    records = l7tap_records(l7tap, capture)
    conns = [r for r in records if r["type"] == "conn"]
    http = [r for r in records if r["type"] == "http"]
    h1_ports = {str(c["server.port"]) for c in conns if c["l7tap.protocol"] == "http/1"}
    h2_ports = {str(c["server.port"]) for c in conns if c["l7tap.protocol"] == "h2"}
    ours_req = collections.Counter()
    ours_resp = collections.Counter()
    for r in http:
        cport = str(r["client.port"])
        stream = str(r.get("l7tap.http2.stream_id", ""))
        if "http.request.method" in r:
            target = r.get("url.path", "") + ("?" + r["url.query"] if "url.query" in r else "")
            ours_req[(cport, stream, r["http.request.method"], target)] += 1
        if "http.response.status_code" in r:
            ours_resp[(cport, stream, str(r["http.response.status_code"]))] += 1

    theirs_req = collections.Counter()
    theirs_resp = collections.Counter()
    decode = []
    for port in sorted(h1_ports):
        decode += ["-d", f"tcp.port=={port},http"]
    if h1_ports:
        for src, dst, method, uri, code in tshark(capture, decode + [
                "-Y", "http.request || http.response", "-T", "fields",
                "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "http.request.method",
                "-e", "http.request.uri", "-e", "http.response.code"]):
            cport = client_port(src, dst, h1_ports)
            if method:
                theirs_req[(cport, "", method, uri)] += 1
            if code and not code.startswith("1"):
                theirs_resp[(cport, "", code)] += 1
    decode = []
    for port in sorted(h2_ports):
        decode += ["-d", f"tcp.port=={port},http2"]
    if h2_ports:
        for row in tshark(capture, decode + [
                "-Y", "http2.type == 1", "-T", "fields", "-E", "occurrence=a",
                "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "http2.streamid",
                "-e", "http2.headers.method", "-e", "http2.headers.path",
                "-e", "http2.headers.status", "-e", "http2.type"]):
            src, dst, streams, methods, paths, statuses, _ = row
            cport = client_port(src, dst, h2_ports)
            # tshark lists one value per HEADERS frame that has the field;
            # HEADERS frames in one packet come from different streams.
            streams = streams.split(",")
            if methods:
                # Requests come from the client only: pair them in order
                # with the HEADERS frames that carry a :method.
                for s, m, p in zip([s for s in streams if s != "0"], methods.split(","),
                                   paths.split(",")):
                    theirs_req[(cport, s, m, p)] += 1
            if statuses:
                for s, st in zip([s for s in streams if s != "0"], statuses.split(",")):
                    if not st.startswith("1"):
                        theirs_resp[(cport, s, st)] += 1
    missing = (theirs_req - ours_req) + (theirs_resp - ours_resp)
    seen = sum(theirs_req.values()) + sum(theirs_resp.values())
    return seen, missing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--l7tap", required=True)
    ap.add_argument("--pcaps", required=True)
    args = ap.parse_args()
    captures = sorted(glob.glob(os.path.join(args.pcaps, "*.pcap")) +
                      glob.glob(os.path.join(args.pcaps, "*.pcapng")))
    passed = failed = 0
    for capture in captures:
        seen, missing = check(capture, args.l7tap)
        name = os.path.basename(capture)
        if missing:
            failed += 1
            print(f"FAIL {name}: tshark saw {seen} messages; l7tap lacks {dict(missing)}")
        else:
            passed += 1
            print(f"ok   {name}: all {seen} messages tshark dissects agree")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
