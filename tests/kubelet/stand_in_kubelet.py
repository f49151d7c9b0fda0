#!/usr/bin/env python3
"""A stand-in kubelet for the client and end-to-end tests: GET /pods over
HTTPS on 127.0.0.1 with a Bearer token check. Prints its port on the first
line of standard output once it listens, then serves until killed.

Modes: ok (the pod list file), garbage (a body that is not JSON),
hang (reads the request and never answers). The pod list file is read
again for every request, so a test can change the list while a client
runs. With --control FILE the mode is the first word of FILE, read for
every request (the --mode when FILE is missing, empty or unknown), so a test
can switch it at run time; a kubelet that is down is one whose process the
test stopped. With --log FILE every request appends one line once it is
answered, `<n> <mode> <sha1 of the body>` (`<n> hang -` before a request
that hangs, `<n> unauthorized -` for a bad token): a test waits for lines
there instead of sleeping. --port binds a given port (a restart on the same
port after a stop)."""
import argparse
import hashlib
import http.server
import ssl
import sys
import threading

MODES = ("ok", "garbage", "hang")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--pods", required=True)
    ap.add_argument("--mode", choices=MODES, default="ok")
    ap.add_argument("--control", help="file whose first word is the mode, read per request")
    ap.add_argument("--log", help="file that gets one line per request answered")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    never = threading.Event()
    log_lock = threading.Lock()
    served = [0]

    def mode():
        if args.control:
            try:
                with open(args.control) as f:
                    words = f.read().split()
                if words and words[0] in MODES:
                    return words[0]
            except OSError:
                pass
        return args.mode

    def note(what, body):
        if not args.log:
            return
        with log_lock:
            served[0] += 1
            digest = hashlib.sha1(body).hexdigest() if body is not None else "-"
            with open(args.log, "a") as f:
                f.write(f"{served[0]} {what} {digest}\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, body, ctype="application/json"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def do_GET(self):
            if self.headers.get("Authorization") != "Bearer " + args.token:
                self.reply(401, b"Unauthorized\n", "text/plain")
                note("unauthorized", None)
                return
            if self.path != "/pods":
                self.reply(404, b"404 page not found\n", "text/plain")
                return
            m = mode()
            if m == "hang":
                note("hang", None)
                never.wait()
            elif m == "garbage":
                body = b"\x00\xffnot json {{{ " * 100
                self.reply(200, body)
                note("garbage", body)
            else:
                with open(args.pods, "rb") as f:
                    body = f.read()
                self.reply(200, body)
                note("ok", body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
