#!/usr/bin/env python3
"""Helper of bench/overhead.sh.

  overhead_report.py pct H2LOAD_LOG     p50 and p99 in microseconds of an
                                        h2load --log-file (successful requests)
  overhead_report.py rate OUT FRACTION  FRACTION of the median wrk req/s of
                                        configuration (a) in OUT/runs.tsv (the
                                        fixed rate); exit 1 without such runs
  overhead_report.py report OUT_DIR     the tables, in Markdown, from the raw
                                        outputs and runs.tsv overhead.sh wrote
"""
import csv
import json
import os
import re
import statistics
import sys

NAN = float("nan")
CONFIG_NAMES = {
    "a": "a: nothing attached",
    "b": "b: l7tap, all records (json)",
    "s": "s: l7tap, sampled records (json)",
    "c": "c: sidecar proxy hop",
    "j": "j: l7tap, all records (journald)",
}
ATTACHED = "bsj"  # configurations where l7tap runs
WORKLOADS = (("wrk", "wrk (HTTP/1.1) at saturation"), ("h2load", "h2load (h2c) at saturation"),
             ("rate", "fixed rate (h2load --h1 --rps), HTTP/1.1"))


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return NAN
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
        return NAN
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


def parse_bpf(tag):
    """Each kernel program's run time and runs during the run: (type, name) -> [ns, runs]."""
    def snapshot(path):
        progs = {}
        if os.path.exists(path):
            for line in open(path):
                cols = line.rstrip("\n").split("\t")
                if len(cols) == 5:
                    progs[cols[0]] = (cols[1], cols[2], int(cols[3]), int(cols[4]))
        return progs
    before, after = snapshot(tag + ".bpf0"), snapshot(tag + ".bpf1")
    out = {}
    for pid, (ptype, name, ns, cnt) in after.items():
        ns0, cnt0 = before.get(pid, (0, 0, 0, 0))[2:]
        d = out.setdefault((ptype, name), [0, 0])
        d[0] += ns - ns0
        d[1] += cnt - cnt0
    return out


def num(text):
    try:
        return float(text)
    except ValueError:
        return NAN


def load(out):
    runs = []
    with open(os.path.join(out, "runs.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            tag = os.path.join(out, "raw", f"r{row['round']}-{row['workload']}-{row['config']}")
            run = {"round": int(row["round"]), "wl": row["workload"], "cfg": row["config"],
                   "rps": NAN, "p50": NAN, "p99": NAN, "requests": 0, "errors": 0}
            hz = int(row["hz"])
            run["wall"] = float(row["wall_s"])
            run["daemon_cpu"] = int(row["daemon_ticks"]) / hz
            run["proxy_cpu"] = int(row["proxy_ticks"]) / hz
            run["server_cpu"] = int(row["server_ticks"]) / hz
            run["journald_cpu"] = int(row.get("journald_ticks") or 0) / hz
            run["bpf_ns"] = int(row["bpf_ns"])
            run["bpf_cnt"] = int(row["bpf_cnt"])
            run["target_rps"] = num(row.get("target_rps") or "-")
            note = row.get("note") or "-"
            run["note"] = "" if note == "-" else note
            total = int(row["total"])
            run["busy"] = int(row["busy"]) / total if total else NAN
            run["steal"] = int(row["steal"]) / total if total else NAN
            try:
                text = open(tag + ".out").read()
                if row["workload"] == "wrk":
                    run.update(parse_wrk(text))
                elif row["workload"] in ("h2load", "rate"):
                    run.update(parse_h2load(text))
                    run["p50"] = num(row["p50_us"])
                    run["p99"] = num(row["p99_us"])
                elif row["workload"] == "iperf":
                    run.update(parse_iperf(text))
            except (OSError, AttributeError, TypeError, ValueError, KeyError) as e:
                # A failed load run stays in the tables, empty, with why.
                run["note"] += f" output not understood ({type(e).__name__})"
            run.update(parse_l7tap(tag + ".l7tap"))
            run["progs"] = parse_bpf(tag)
            run["client_cpu"] = NAN
            if os.path.exists(tag + ".time"):
                fields = open(tag + ".time").read().split()
                if len(fields) >= 2:
                    run["client_cpu"] = float(fields[-2]) + float(fields[-1])
            # CPU the machine spent besides the bed's processes: softirq work
            # not charged to them, and whatever else runs on the machine.
            ncpu = os.cpu_count() or 1
            run["rest_vcpu"] = (run["busy"] * ncpu * run["wall"] - run["client_cpu"] - run["server_cpu"]
                                - run["proxy_cpu"] - run["daemon_cpu"] - run["journald_cpu"]) / run["wall"]
            runs.append(run)
    return runs


def med(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else NAN


def fmt(v, spec=".0f"):
    return "-" if v is None or v != v else format(v, spec)


def rng(values, spec):
    """Median with the range in brackets when there is more than one value."""
    values = [v for v in values if v == v]
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], spec)
    return f"{format(med(values), spec)} ({format(min(values), spec)}-{format(max(values), spec)})"


def per_exchange(run):
    """CPU microseconds per exchange: daemon, kernel program, journald, proxy."""
    req = run.get("requests", 0)
    if not req:
        return {"daemon": NAN, "kernel": NAN, "journald": NAN, "proxy": NAN, "tax": NAN}
    cpu = {"daemon": run["daemon_cpu"] / req * 1e6, "kernel": run["bpf_ns"] / req / 1e3,
           "journald": run["journald_cpu"] / req * 1e6, "proxy": run["proxy_cpu"] / req * 1e6}
    cpu["tax"] = cpu["daemon"] + cpu["kernel"] + cpu["journald"]
    return cpu


def ratio(a, x, key):
    return x[key] / a[key] if a and a.get(key) and a[key] == a[key] else NAN


def rate_of(out, fraction):
    rs = [r["rps"] for r in load(out) if r["wl"] == "wrk" and r["cfg"] == "a"]
    m = med(rs)
    if m != m:
        sys.exit(1)
    print(round(m * fraction))


def report(out):
    runs = load(out)
    meta = open(os.path.join(out, "meta.txt")).read()
    print("# l7tap overhead on a veth test bed\n")
    print("```\n" + meta.strip() + "\n```\n")
    by = {(r["wl"], r["cfg"], r["round"]): r for r in runs}
    cfgs = [c for c in "abscj" if any(r["cfg"] == c for r in runs)]

    def pairs(wl, cfg):
        """(a, cfg) runs of the same round."""
        rounds = sorted({r["round"] for r in runs if r["wl"] == wl})
        return [(by[(wl, "a", rd)], by[(wl, cfg, rd)]) for rd in rounds
                if (wl, "a", rd) in by and (wl, cfg, rd) in by]

    def med_ratio(wl, cfg, key):
        return med([ratio(a, x, key) for a, x in pairs(wl, cfg)])

    def cpu(wl, cfg, part):
        return med([per_exchange(r)[part] for r in runs if r["wl"] == wl and r["cfg"] == cfg])

    # --- issue 15's targets ------------------------------------------------
    print("## Against the targets (issue 15; medians of per-round ratios to (a))\n")
    print("| what | measured | target | met |")
    print("|---|---|---|---|")

    def row(what, measured, target, ok):
        met = "-" if ok is None else ("yes" if ok else "no")
        print(f"| {what} | {measured} | {target} | {met} |")

    def check(v, ok):
        return None if v != v else ok

    if pairs("wrk", "b"):
        t = med_ratio("wrk", "b", "rps")
        p = med_ratio("wrk", "b", "p99")
        row("wrk at saturation, attached (b) / direct, requests per second", fmt(t, ".3f"), "≥ 0.90",
            check(t, t >= 0.90))
        row("same, p99 attached / direct", fmt(p, ".2f"), "≤ 1.3", check(p, p <= 1.3))
    if pairs("rate", "b"):
        p50 = med_ratio("rate", "b", "p50")
        p99 = med_ratio("rate", "b", "p99")
        target = med([r["target_rps"] for r in runs if r["wl"] == "rate"])
        row(f"fixed rate at half of direct's maximum ({fmt(target / 1000, '.1f')} k req/s), "
            "p50 and p99 attached / direct", f"{fmt(p50, '.3f')} and {fmt(p99, '.3f')}",
            "≤ 1.02 and ≤ 1.10", check(p50 + p99, p50 <= 1.02 and p99 <= 1.10))
    for cfg, label, limit in (("b", "all records written", 1.5), ("s", "with record sampling", 1.0)):
        if not any(r["wl"] == "wrk" and r["cfg"] == cfg for r in runs):
            if cfg == "s":
                skipped = re.search(r"skipped (s: .*)\)", meta)
                row("CPU per HTTP/1 exchange, kernel program + daemon, with record sampling",
                    "not run" + (f" ({skipped.group(1)})" if skipped else ""), "≤ 1.0 µs", None)
            continue
        d, k = cpu("wrk", cfg, "daemon"), cpu("wrk", cfg, "kernel")
        row(f"CPU per HTTP/1 exchange on the veth (wrk), kernel program + daemon, {label} ({cfg})",
            f"{fmt(d + k, '.2f')} µs (daemon {fmt(d, '.2f')}, kernel {fmt(k, '.2f')})", f"≤ {limit} µs",
            check(d + k, d + k <= limit))
    if any(r["wl"] == "wrk" and r["cfg"] == "j" for r in runs):
        d, k, jd = cpu("wrk", "j", "daemon"), cpu("wrk", "j", "kernel"), cpu("wrk", "j", "journald")
        row("same, records to journald (j), journald's CPU counted",
            f"{fmt(d + k + jd, '.2f')} µs (daemon {fmt(d, '.2f')}, kernel {fmt(k, '.2f')}, "
            f"journald {fmt(jd, '.2f')}); req/s ratio {fmt(med_ratio('wrk', 'j', 'rps'), '.3f')}, "
            f"p99 ratio {fmt(med_ratio('wrk', 'j', 'p99'), '.2f')}", "(reference)", None)
    if pairs("wrk", "c"):
        row("sidecar hop (c) beside it, wrk",
            f"req/s ratio {fmt(med_ratio('wrk', 'c', 'rps'), '.3f')}, p99 ratio "
            f"{fmt(med_ratio('wrk', 'c', 'p99'), '.2f')}, proxy {fmt(cpu('wrk', 'c', 'proxy'), '.2f')} µs "
            "per exchange", "(reference)", None)
    drops = sum(r.get("k_ringbuf_full", 0) for r in runs if r["cfg"] in ATTACHED)
    row("ring-buffer drops (ringbuf_full), every attached run", str(drops), "(reference)", None)
    print("\nThe replay, memory and RSS targets are measured by bench/throughput.sh, "
          "bench/memory.sh and bench/attached_memory.sh.\n")

    # --- per configuration: medians ----------------------------------------
    print("## Per configuration: medians over rounds (range in brackets); ratios are medians of "
          "per-round ratios to (a); CPU in µs per exchange\n")
    print("| workload | config | req/s | p50 µs | p99 µs | req/s ratio | p50 ratio | p99 ratio "
          "| daemon | kernel program | journald | l7tap total | proxy | BPF runs per exchange | ns per run "
          "| ringbuf_full (sum) | HTTP records per exchange | errors (sum) |")
    print("|" + "---|" * 18)
    for wl, _ in WORKLOADS:
        for cfg in cfgs:
            rs = [r for r in runs if r["wl"] == wl and r["cfg"] == cfg]
            if not rs:
                continue
            cells = [rng([r["rps"] for r in rs], ".0f"), rng([r["p50"] for r in rs], ".0f"),
                     rng([r["p99"] for r in rs], ".0f")]
            for key in ("rps", "p50", "p99"):
                cells.append("1" if cfg == "a" else rng([ratio(a, x, key) for a, x in pairs(wl, cfg)], ".3f"))
            pe = [per_exchange(r) for r in rs]
            on = cfg in ATTACHED
            cells.append(rng([p["daemon"] for p in pe], ".2f") if on else "")
            cells.append(rng([p["kernel"] for p in pe], ".2f") if on else "")
            cells.append(rng([p["journald"] for p in pe], ".2f") if cfg == "j" else "")
            cells.append(rng([p["tax"] for p in pe], ".2f") if on else "")
            cells.append(rng([p["proxy"] for p in pe], ".2f") if cfg == "c" else "")
            cells.append(rng([r["bpf_cnt"] / r["requests"] if r["requests"] else NAN for r in rs], ".1f")
                         if on else "")
            cells.append(rng([r["bpf_ns"] / r["bpf_cnt"] if r["bpf_cnt"] else NAN for r in rs], ".0f")
                         if on else "")
            cells.append(str(sum(r.get("k_ringbuf_full", 0) for r in rs)) if on else "")
            cells.append(rng([r["http_records"] / r["requests"] if r["requests"] and "http_records" in r
                              else NAN for r in rs], ".3f") if on else "")
            cells.append(str(sum(r["errors"] for r in rs)))
            print(f"| {wl} | {CONFIG_NAMES.get(cfg, cfg)} | " + " | ".join(cells) + " |")
    print()

    # --- each kernel program ---------------------------------------------------
    progs = sorted({p for r in runs if r["cfg"] in ATTACHED for p, v in r["progs"].items() if v[1]})
    if progs:
        print("## Kernel programs: medians over rounds, per exchange\n")
        print("| workload | config | program (type name) | runs per exchange | ns per run | µs per exchange |")
        print("|---|---|---|---|---|---|")
        for wl, _ in WORKLOADS:
            for cfg in cfgs:
                rs = [r for r in runs if r["wl"] == wl and r["cfg"] == cfg and r["requests"]]
                for prog in progs:
                    vs = [(r["progs"].get(prog, [0, 0]), r["requests"]) for r in rs]
                    if not any(v[1] for v, _ in vs):
                        continue
                    print(f"| {wl} | {cfg} | {prog[0]} {prog[1]} | {rng([v[1] / n for v, n in vs], '.2f')} "
                          f"| {rng([v[0] / v[1] if v[1] else NAN for v, _ in vs], '.0f')} "
                          f"| {rng([v[0] / n / 1e3 for v, n in vs], '.3f')} |")
        print()

    # --- every run -----------------------------------------------------------
    print("## Every run\n")
    print("| workload | round | config | req/s | p50 µs | p99 µs | req/s ratio | p99 ratio | errors "
          "| machine busy | steal | other vCPU | daemon µs | kernel µs | journald µs | ringbuf_full "
          "| events per exchange | note |")
    print("|" + "---|" * 18)
    for wl, _ in WORKLOADS:
        for r in sorted((r for r in runs if r["wl"] == wl), key=lambda r: (r["round"], cfgs.index(r["cfg"]))):
            a = by.get((wl, "a", r["round"]))
            on = r["cfg"] in ATTACHED
            pe = per_exchange(r)
            evs = r["events"] / r["requests"] if on and "events" in r and r["requests"] else NAN
            print(f"| {wl} | {r['round']} | {r['cfg']} | {fmt(r['rps'])} | {fmt(r['p50'])} | {fmt(r['p99'])} "
                  f"| {fmt(ratio(a, r, 'rps'), '.3f') if r['cfg'] != 'a' else ''} "
                  f"| {fmt(ratio(a, r, 'p99'), '.2f') if r['cfg'] != 'a' else ''} "
                  f"| {r['errors']} | {fmt(100 * r['busy'])}% | {fmt(100 * r['steal'])}% "
                  f"| {fmt(r['rest_vcpu'], '.2f')} | {fmt(pe['daemon'], '.2f') if on else ''} "
                  f"| {fmt(pe['kernel'], '.2f') if on else ''} "
                  f"| {fmt(pe['journald'], '.2f') if r['cfg'] == 'j' else ''} "
                  f"| {r.get('k_ringbuf_full', '') if on else ''} | {fmt(evs, '.2f')} | {r['note']} |")
    print()

    rounds = sorted({r["round"] for r in runs if r["wl"] == "iperf"})
    ip = [(by.get(("iperf", "a", rd)), by.get(("iperf", "b", rd))) for rd in rounds]
    ip = [(a, b) for a, b in ip if a and b and "gbps" in a and "gbps" in b]
    if ip:
        print("## iperf3 (one TCP stream, pod-a to pod-b)\n")
        print("| round | a Gbit/s | b Gbit/s | b/a | b: l7tap CPU s | b: BPF ns/run | b: BPF runs "
              "| b: ringbuf_full | retransmits a / b |")
        print("|" + "---|" * 9)
        for a, b in ip:
            print(f"| {a['round']} | {a['gbps']:.2f} | {b['gbps']:.2f} | {b['gbps'] / a['gbps']:.3f} "
                  f"| {b['daemon_cpu']:.2f} | {fmt(b['bpf_ns'] / b['bpf_cnt'] if b['bpf_cnt'] else NAN)} "
                  f"| {b['bpf_cnt']} | {b.get('k_ringbuf_full', '')} | {a['retransmits']} / {b['retransmits']} |")
        print(f"\nmedian: a {med([a['gbps'] for a, _ in ip]):.2f} Gbit/s, "
              f"b {med([b['gbps'] for _, b in ip]):.2f} Gbit/s, "
              f"median of per-round ratios b/a {med([b['gbps'] / a['gbps'] for a, b in ip]):.3f}\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "pct":
        pct(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "rate":
        rate_of(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)
