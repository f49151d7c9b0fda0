#!/usr/bin/python3
"""HTTP/2 captures joined mid-way or with lost segments never report a wrong
:method, :path or :status.

Each capture below was derived (pcaps/derive.sh) from a recorded one by cutting
its start off or dropping segments; client ports and stream ids are kept. For
every HTTP record of the derived capture, the record of the same connection
(client port) and stream id in the original capture must exist, and the
method, the target (url.path + "?" + url.query) and the status must each be
equal to the original's or absent; an absent field needs a flag that says why
(hpack_unknown, hpack_error, gap, no_request, no_response, reset). The
connection record of each derived capture must say that HPACK sync was lost
(l7tap.http2.hpack.*.losses).

It then prints, per capture, how many of the original's exchanges in the
derived capture's stream range were fully decoded (method, target and status
present), and the share with an exact target. Standard library only; prints
"N passed, N failed".
"""
import argparse
import json
import os
import subprocess
import sys

# derived capture -> (original capture, what was done)
CASES = [
    ("midstream-h2-preface", "h2c-hpack-churn", "starts after the client's preface segment"),
    ("midstream-h2-after1", "h2c-hpack-churn", "starts at request 2"),
    ("midstream-h2-after10", "h2c-hpack-churn", "starts at request 11"),
    ("midstream-h2-after100", "h2c-hpack-churn", "starts at request 101"),
    ("midstream-h2-inside-headers", "h2c-hpack-churn",
     "starts inside request 47's HEADERS frame"),
    ("tcp-loss-h2-headers", "h2c-hpack-churn",
     "3 segments inside HEADERS frames lost (requests 27, 47; response 60)"),
    ("midstream-h2", "h2c-many-streams", "starts at h2load's second batch of 20 requests"),
]

EXCUSES = {"hpack_unknown", "hpack_error", "gap", "no_request", "no_response", "reset"}


def replay(l7tap, pcap):
    out = subprocess.run([l7tap, "replay", "--quiet", "--keep-query", pcap], check=True,
                         capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line]


def fields(r):
    target = None
    if "url.path" in r:
        target = r["url.path"] + ("?" + r["url.query"] if "url.query" in r else "")
    return {"method": r.get("http.request.method"), "target": target,
            "status": r.get("http.response.status_code")}


def key(r):
    return (r["client.port"], r.get("l7tap.http2.stream_id"))


def check(l7tap, pcaps, cut, base):
    """Returns (errors, row) for one derived capture."""
    errors = []
    orig = {}
    for r in replay(l7tap, os.path.join(pcaps, base + ".pcap")):
        if r["type"] == "http":
            orig.setdefault(key(r), r)
    records = replay(l7tap, os.path.join(pcaps, cut + ".pcap"))
    http = [r for r in records if r["type"] == "http"]
    conns = [r for r in records if r["type"] == "conn"]
    seen = {}
    for r in http:
        k = key(r)
        if k in seen:
            errors.append(f"stream {k} reported twice")
        seen[k] = r
        o = orig.get(k)
        if o is None:
            errors.append(f"stream {k}: not in {base}")
            continue
        mine, theirs = fields(r), fields(o)
        flags = set(r.get("l7tap.flags", []))
        for name, value in mine.items():
            if value is None:
                if theirs[name] is not None and not flags & EXCUSES:
                    errors.append(f"stream {k}: {name} absent without a flag saying why ({flags})")
            elif value != theirs[name]:
                errors.append(f"stream {k}: {name} {value!r}, {base} says {theirs[name]!r}")
    if not http:
        errors.append("no HTTP records")
    h2 = [c for c in conns if c.get("l7tap.protocol") == "h2"]
    if not h2 or not any(c.get("l7tap.http2.hpack.client.losses", 0) +
                         c.get("l7tap.http2.hpack.server.losses", 0) for c in h2):
        errors.append("no connection record says HPACK sync was lost")

    # The original's exchanges within the derived capture's stream range, per connection.
    ports = {p for p, _ in seen}
    lo = {p: min(s for q, s in seen if q == p) for p in ports}
    hi = {p: max(s for q, s in seen if q == p) for p in ports}
    expected = [k for k in orig if k[0] in ports and lo[k[0]] <= k[1] <= hi[k[0]]]
    full = path = unknown = 0
    for k in expected:
        r = seen.get(k)
        if r is None:
            continue
        f = fields(r)
        full += all(v is not None for v in f.values())
        path += f["target"] is not None and f["target"] == fields(orig[k])["target"]
        unknown += "hpack_unknown" in r.get("l7tap.flags", [])
    resumed = []
    for c in h2:
        for side in ("client", "server"):
            p = f"l7tap.http2.hpack.{side}."
            if not c.get(p + "losses"):
                resumed.append(f"{side} exact")
            elif c.get(p + "resumes"):
                resumed.append(f"{side} after {c[p + 'resumed_after_exchanges']} ex/"
                               f"{c[p + 'resumed_after_bytes']} B")
            else:
                resumed.append(f"{side} never")
    row = (cut, len(expected), full, path, unknown, ", ".join(resumed))
    return errors, row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--l7tap", required=True)
    ap.add_argument("--pcaps", required=True)
    args = ap.parse_args()
    passed = failed = 0
    rows = []
    for cut, base, what in CASES:
        errors, row = check(args.l7tap, args.pcaps, cut, base)
        rows.append(row)
        if errors:
            failed += 1
            print(f"FAIL {cut} ({what}):")
            for e in errors[:20]:
                print(f"     {e}")
        else:
            passed += 1
            print(f"ok   {cut} ({what}): no field differs from {base}")
    print()
    print(f"{'capture':30} {'exchanges':>9} {'full':>5} {'exact path':>16} {'hpack_unknown':>13}"
          "  HPACK exact again")
    for cut, n, full, path, unknown, resumed in rows:
        share = f"{path} ({100.0 * path / n:.1f}%)" if n else "-"
        print(f"{cut:30} {n:9} {full:5} {share:>16} {unknown:13}  {resumed}")
    print()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
