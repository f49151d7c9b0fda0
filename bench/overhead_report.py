#!/usr/bin/env python3
"""Helper of bench/overhead.sh.

  overhead_report.py pct H2LOAD_LOG     p50 and p99 in microseconds of an
                                        h2load --log-file (successful requests)
  overhead_report.py report OUT_DIR     the tables, in Markdown, from the raw
                                        outputs and runs.tsv overhead.sh wrote
"""
import csv
import json
import os
import re
import statistics
import sys

CONFIG_NAMES = {"a": "a: nothing attached", "b": "b: l7tap attached", "c": "c: sidecar proxy hop"}


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def pct(path):
    durations = []
    with open(path) as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) >= 3 and cols[1] != "-1":
                durations.append(int(cols[2]))
    durations.sort()
    print(percentile(durations, 50), percentile(durations, 99))


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[m.group(2)]


def parse_wrk(text):
    r = {}
    r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    r["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    r["p50"] = to_us(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    r["p99"] = to_us(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    r["errors"] = errors
    return r


def parse_h2load(text):
    r = {}
    r["rps"] = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    r["requests"] = int(m.group(4))
    r["errors"] = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
    return r


def parse_iperf(text):
    j = json.loads(text)
    end = j["end"]
    return {"gbps": end["sum_received"]["bits_per_second"] / 1e9,
            "bytes": end["sum_received"]["bytes"],
            "retransmits": end["sum_sent"].get("retransmits", 0)}


def parse_l7tap(path):
    r = {}
    if not os.path.exists(path):
        return r
    text = open(path).read()
    m = re.search(r"l7tap: (\d+) events read, (\d+) connections, (\d+) HTTP records", text)
    if m:
        r["events"], r["connections"], r["http_records"] = (int(x) for x in m.groups())
    m = re.search(r"l7tap: kernel: (.*)", text)
    if m:
        for item in m.group(1).split(", "):
            name, value = item.rsplit(" ", 1)
            r["k_" + name] = int(value)
    return r


def load(out):
    runs = []
    with open(os.path.join(out, "runs.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            tag = os.path.join(out, "raw", f"r{row['round']}-{row['workload']}-{row['config']}")
            text = open(tag + ".out").read()
            run = {"round": int(row["round"]), "wl": row["workload"], "cfg": row["config"]}
            hz = int(row["hz"])
            run["wall"] = float(row["wall_s"])
            run["daemon_cpu"] = int(row["daemon_ticks"]) / hz
            run["proxy_cpu"] = int(row["proxy_ticks"]) / hz
            run["server_cpu"] = int(row["server_ticks"]) / hz
            run["bpf_ns"] = int(row["bpf_ns"])
            run["bpf_cnt"] = int(row["bpf_cnt"])
            total = int(row["total"])
            run["busy"] = int(row["busy"]) / total if total else float("nan")
            run["steal"] = int(row["steal"]) / total if total else float("nan")
            if row["workload"] == "wrk":
                run.update(parse_wrk(text))
            elif row["workload"] in ("h2load", "rate"):
                run.update(parse_h2load(text))
                run["p50"] = float(row["p50_us"])
                run["p99"] = float(row["p99_us"])
            elif row["workload"] == "iperf":
                run.update(parse_iperf(text))
            run.update(parse_l7tap(tag + ".l7tap"))
            run["client_cpu"] = float("nan")
            if os.path.exists(tag + ".time"):
                fields = open(tag + ".time").read().split()
                if len(fields) >= 2:
                    run["client_cpu"] = float(fields[-2]) + float(fields[-1])
            # CPU the machine spent besides the bed's processes: softirq work
            # not charged to them, and whatever else runs on the machine.
            ncpu = os.cpu_count() or 1
            run["rest_vcpu"] = (run["busy"] * ncpu * run["wall"] - run["client_cpu"] - run["server_cpu"]
                                - run["proxy_cpu"] - run["daemon_cpu"]) / run["wall"]
            runs.append(run)
    return runs


def med(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def fmt(v, spec=".0f"):
    return "-" if v is None or v != v else format(v, spec)


def rng(values, spec):
    values = [v for v in values if v == v]
    if not values:
        return "-"
    return f"{format(med(values), spec)} ({format(min(values), spec)}-{format(max(values), spec)})"


def per_1000(run):
    """Daemon CPU-seconds and kernel-program CPU-seconds per 1000 requests."""
    req = run.get("requests", 0)
    if not req:
        return float("nan"), float("nan")
    return run["daemon_cpu"] / req * 1000, run["bpf_ns"] / 1e9 / req * 1000


def report(out):
    runs = load(out)
    meta = open(os.path.join(out, "meta.txt")).read()
    print("# l7tap overhead on a veth test bed\n")
    print("```\n" + meta.strip() + "\n```\n")
    by = {}
    for r in runs:
        by[(r["wl"], r["cfg"], r["round"])] = r
    rounds = sorted({r["round"] for r in runs if r["wl"] != "rate"})

    for wl, label in (("wrk", "wrk (HTTP/1.1)"), ("h2load", "h2load (h2c)")):
        if not any(r["wl"] == wl for r in runs):
            continue
        print(f"## {label}, per round\n")
        print("| round | config | req/s | p50 µs | p99 µs | req/s ratio | p50 ratio | p99 ratio "
              "| errors | machine busy | steal | other vCPU | l7tap CPU s /1000 req | BPF ns/run | BPF runs/req "
              "| ringbuf_full | events/req | HTTP records/req | proxy CPU s /1000 req |")
        print("|" + "---|" * 19)
        for rd in rounds:
            base = by.get((wl, "a", rd))
            for cfg in "abc":
                r = by.get((wl, cfg, rd))
                if not r:
                    continue
                ratio = lambda k: r[k] / base[k] if base and base.get(k) else float("nan")
                d, k = per_1000(r)
                ns_run = r["bpf_ns"] / r["bpf_cnt"] if r["bpf_cnt"] else float("nan")
                runs_req = r["bpf_cnt"] / r["requests"] if cfg == "b" and r["requests"] else float("nan")
                recs = (r["http_records"] / r["requests"]) if cfg == "b" and "http_records" in r else float("nan")
                evs = (r["events"] / r["requests"]) if cfg == "b" and "events" in r else float("nan")
                proxy = r["proxy_cpu"] / r["requests"] * 1000 if cfg == "c" else float("nan")
                print(f"| {rd} | {cfg} | {r['rps']:.0f} | {r['p50']:.0f} | {r['p99']:.0f} "
                      f"| {fmt(ratio('rps'), '.3f') if cfg != 'a' else ''} "
                      f"| {fmt(ratio('p50'), '.3f') if cfg != 'a' else ''} "
                      f"| {fmt(ratio('p99'), '.3f') if cfg != 'a' else ''} "
                      f"| {r['errors']} | {100 * r['busy']:.0f}% | {100 * r['steal']:.0f}% | {r['rest_vcpu']:.2f} "
                      f"| {fmt(d, '.4f') if cfg == 'b' else ''} | {fmt(ns_run, '.0f')} "
                      f"| {fmt(runs_req, '.1f')} | {r.get('k_ringbuf_full', '') if cfg == 'b' else ''} "
                      f"| {fmt(evs, '.2f')} | {fmt(recs, '.3f')} | {fmt(proxy, '.4f')} |")
        print()

    print("## Summary: medians over rounds (range in brackets), ratios are medians of per-round ratios to (a)\n")
    print("| workload | config | req/s | p50 µs | p99 µs | req/s ratio | p50 ratio | p99 ratio "
          "| l7tap daemon CPU-s per 1000 req | BPF ns per run | BPF CPU-s per 1000 req "
          "| ringbuf_full (sum) | proxy CPU-s per 1000 req |")
    print("|" + "---|" * 13)
    for wl in ("wrk", "h2load"):
        for cfg in "abc":
            rs = [by[(wl, cfg, rd)] for rd in rounds if (wl, cfg, rd) in by]
            if not rs:
                continue
            cells = [rng([r["rps"] for r in rs], ".0f"), rng([r["p50"] for r in rs], ".0f"),
                     rng([r["p99"] for r in rs], ".0f")]
            for key in ("rps", "p50", "p99"):
                if cfg == "a":
                    cells.append("1")
                else:
                    cells.append(rng([by[(wl, cfg, rd)][key] / by[(wl, "a", rd)][key] for rd in rounds
                                      if (wl, cfg, rd) in by and (wl, "a", rd) in by], ".3f"))
            if cfg == "b":
                cells.append(rng([per_1000(r)[0] for r in rs], ".4f"))
                cells.append(rng([r["bpf_ns"] / r["bpf_cnt"] if r["bpf_cnt"] else float("nan")
                                  for r in rs], ".0f"))
                cells.append(rng([per_1000(r)[1] for r in rs], ".4f"))
                cells.append(str(sum(r.get("k_ringbuf_full", 0) for r in rs)))
            else:
                cells += ["", "", "", ""]
            cells.append(rng([r["proxy_cpu"] / r["requests"] * 1000 for r in rs], ".4f")
                         if cfg == "c" else "")
            print(f"| {wl} | {CONFIG_NAMES[cfg]} | " + " | ".join(cells) + " |")
    print()

    ip = [(by.get(("iperf", "a", rd)), by.get(("iperf", "b", rd))) for rd in rounds]
    ip = [(a, b) for a, b in ip if a and b]
    if ip:
        print("## iperf3 (one TCP stream, pod-a to pod-b)\n")
        print("| round | a Gbit/s | b Gbit/s | b/a | b: l7tap CPU s | b: BPF ns/run | b: BPF runs "
              "| b: ringbuf_full | retransmits a / b |")
        print("|" + "---|" * 9)
        for rd, (a, b) in zip(rounds, ip):
            print(f"| {rd} | {a['gbps']:.2f} | {b['gbps']:.2f} | {b['gbps'] / a['gbps']:.3f} "
                  f"| {b['daemon_cpu']:.2f} | {fmt(b['bpf_ns'] / b['bpf_cnt'] if b['bpf_cnt'] else float('nan'))} "
                  f"| {b['bpf_cnt']} | {b.get('k_ringbuf_full', '')} | {a['retransmits']} / {b['retransmits']} |")
        print(f"\nmedian: a {med([a['gbps'] for a, _ in ip]):.2f} Gbit/s, "
              f"b {med([b['gbps'] for _, b in ip]):.2f} Gbit/s, "
              f"median of per-round ratios b/a {med([b['gbps'] / a['gbps'] for a, b in ip]):.3f}\n")

    rate = [r for r in runs if r["wl"] == "rate"]
    if rate:
        print("## Fixed rate (h2load --h1 -c 20 --rps), HTTP/1.1\n")
        print("| round | config | achieved req/s | p50 µs | p99 µs | errors | l7tap vCPU per 1000 req/s "
              "| BPF vCPU per 1000 req/s | ringbuf_full | events | HTTP records/req | proxy vCPU per 1000 req/s |")
        print("|" + "---|" * 12)
        for r in rate:
            d, k = per_1000(r)
            recs = r["http_records"] / r["requests"] if "http_records" in r and r["requests"] else float("nan")
            print(f"| {r['round']} | {r['cfg']} | {r['rps']:.0f} | {r['p50']:.0f} | {r['p99']:.0f} "
                  f"| {r['errors']} | {fmt(d, '.4f') if r['cfg'] == 'b' else ''} "
                  f"| {fmt(k, '.4f') if r['cfg'] == 'b' else ''} "
                  f"| {r.get('k_ringbuf_full', '') if r['cfg'] == 'b' else ''} | {r.get('events', '')} "
                  f"| {fmt(recs, '.3f')} "
                  f"| {fmt(r['proxy_cpu'] / r['requests'] * 1000, '.4f') if r['cfg'] == 'c' else ''} |")
        print()

    # Against issue 4's targets.
    print("## Against the targets (issue 4)\n")
    print("| target | measured | met |")
    print("|---|---|---|")
    for wl in ("wrk", "h2load"):
        pairs = [(by[(wl, "a", rd)], by[(wl, "b", rd)]) for rd in rounds
                 if (wl, "a", rd) in by and (wl, "b", rd) in by]
        if not pairs:
            continue
        t = med([b["rps"] / a["rps"] for a, b in pairs])
        p = med([b["p99"] / a["p99"] for a, b in pairs])
        print(f"| {wl}: throughput with l7tap within 3% | median ratio {t:.3f} | {'yes' if t >= 0.97 else 'no'} |")
        print(f"| {wl}: p99 with l7tap within 5% | median ratio {p:.3f} | {'yes' if p <= 1.05 else 'no'} |")
        cs = [(by[(wl, "c", rd)], by[(wl, "a", rd)]) for rd in rounds if (wl, "c", rd) in by and (wl, "a", rd) in by]
        if cs:
            print(f"| {wl}: sidecar hop beside it | req/s ratio {med([c['rps'] / a['rps'] for c, a in cs]):.3f}, "
                  f"p99 ratio {med([c['p99'] / a['p99'] for c, a in cs]):.3f} | (reference) |")
        d = med([per_1000(b)[0] for _, b in pairs])
        if cs:
            tot = med([sum(per_1000(b)) for _, b in pairs])
            px = med([c["proxy_cpu"] / c["requests"] * 1000 for c, _ in cs])
            print(f"| {wl}: CPU per 1000 req, l7tap (daemon + BPF) beside the proxy | {tot:.4f} vs {px:.4f} "
                  f"vCPU-s ({tot / px:.2f} of the proxy's) | (reference) |")
        print(f"| {wl}: daemon CPU < 0.02 vCPU per 1000 req/s | {d:.4f} at the maximum rate "
              f"(+ {med([per_1000(b)[1] for _, b in pairs]):.4f} in the kernel program) | {'yes' if d < 0.02 else 'no'} |")
    rate_rounds = sorted({r["round"] for r in rate})
    rb = {(r["cfg"], r["round"]): r for r in rate}
    for cfg in "bc":
        pr = [(rb[("a", rd)], rb[(cfg, rd)]) for rd in rate_rounds if ("a", rd) in rb and (cfg, rd) in rb]
        if pr:
            print(f"| fixed rate ({CONFIG_NAMES[cfg]}): latency beside (a) | p50 ratio "
                  f"{med([x['p50'] / a['p50'] for a, x in pr]):.3f}, p99 ratio "
                  f"{med([x['p99'] / a['p99'] for a, x in pr]):.3f} (median of {len(pr)}) | (reference) |")
    for r in rate:
        if r["cfg"] != "b":
            continue
        drops = r.get("k_ringbuf_full", "?")
        d, k = per_1000(r)
        print(f"| zero ring-buffer drops at {r['rps'] / 1000:.1f} k req/s (round {r['round']}) | "
              f"ringbuf_full {drops}; daemon {d:.4f} vCPU per 1000 req/s | {'yes' if drops == 0 else 'no'} |")
    print()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "pct":
        pct(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)
