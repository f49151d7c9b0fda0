#!/usr/bin/python3
"""HTTP/1.1 load that lasts until the test is done with it.

The end-to-end tests need traffic that overlaps an event (a kill -9, an
interface going away, a full ring buffer) whatever the speed of the machine:
a load of N requests may finish before the event on a fast machine. This one
runs until it is told to stop, so the test decides when it ends.

Two modes, both on keep-alive connections that are never reopened (a
connection that breaks is an error, not a reason to reconnect: the tests
check that traffic carried on untouched):

  loop     --connections C: each connection requests PATH again and again
           until SIGTERM/SIGINT or end of standard input. A progress line
           `progress <requests ok> <time.time()>` goes to standard output at
           most every 0.1 s; at the end one line `summary <json>`.
  command  one connection, driven by lines on standard input:
           `req N [PATH SIZE]` makes N requests (for PATH, of SIZE body
           bytes) one after the other and answers `done <ok> <failed>`; `close` closes the connection and answers
           `closed`; end of input ends the program (`summary <json>` last).

Every response must have status 200 and --size body bytes (when given).
"""

import argparse
import http.client
import json
import signal
import sys
import threading
import time

STOP = threading.Event()
LOCK = threading.Lock()
STATS = {"ok": 0, "failed": 0, "errors": [], "first_ok": None, "last_ok": None,
         "connections": 0}
MAX_ERRORS = 10  # kept for the summary


def note(ok, error=None):
    now = time.time()
    with LOCK:
        if ok:
            STATS["ok"] += 1
            STATS["first_ok"] = STATS["first_ok"] or now
            STATS["last_ok"] = now
        else:
            STATS["failed"] += 1
            if len(STATS["errors"]) < MAX_ERRORS:
                STATS["errors"].append(f"{now:.3f} {error}")


def request(conn, args, path=None, size=None):
    """One request on conn (for args.path, or path with size bytes); True
    if it got the expected response."""
    if path is None:
        path, size = args.path, args.size
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as e:
        note(False, f"{type(e).__name__}: {e}")
        return False
    if resp.status != 200 or (size is not None and len(body) != size):
        note(False, f"status {resp.status}, {len(body)} bytes")
        return False
    note(True)
    return True


def connect(args):
    conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
    conn.auto_open = 0  # a closed connection is an error, never silently reopened
    conn.connect()
    with LOCK:
        STATS["connections"] += 1
    return conn


def loop_worker(args):
    try:
        conn = connect(args)
    except OSError as e:
        note(False, f"connect: {e}")
        return
    while not STOP.is_set():
        if not request(conn, args):
            break  # a broken connection is not reopened
    conn.close()


def run_loop(args):
    workers = [threading.Thread(target=loop_worker, args=(args,), daemon=True)
               for _ in range(args.connections)]
    for w in workers:
        w.start()
    threading.Thread(target=lambda: (sys.stdin.read(), STOP.set()), daemon=True).start()
    last = -1
    while not STOP.is_set() and any(w.is_alive() for w in workers):
        with LOCK:
            ok = STATS["ok"]
        if ok != last:
            print(f"progress {ok} {time.time():.6f}", flush=True)
            last = ok
        STOP.wait(0.1)
    STOP.set()
    # A request in flight on a connection whose link is gone would hold the
    # summary for its whole timeout: it is left out, unfinished.
    deadline = time.time() + 5
    for w in workers:
        w.join(timeout=max(0.1, deadline - time.time()))
    with LOCK:
        STATS["unfinished"] = sum(1 for w in workers if w.is_alive())


def run_commands(args):
    conn = connect(args)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "req":
            ok = failed = 0
            other = (words[2], int(words[3])) if len(words) == 4 else (None, None)
            for _ in range(int(words[1])):
                if request(conn, args, *other):
                    ok += 1
                else:
                    failed += 1
                    break
            print(f"done {ok} {failed}", flush=True)
        elif words[0] == "close":
            conn.close()
            print("closed", flush=True)
        else:
            print(f"unknown command {words[0]!r}", flush=True)
    conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--size", type=int, help="expected response body bytes")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--mode", choices=["loop", "command"], default="loop")
    ap.add_argument("--timeout", type=float, default=60, help="per request, seconds")
    args = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: STOP.set())
    if args.mode == "loop":
        run_loop(args)
    else:
        run_commands(args)
    with LOCK:
        print("summary " + json.dumps(STATS), flush=True)


if __name__ == "__main__":
    main()
