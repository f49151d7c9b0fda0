#!/usr/bin/env python3
"""A stand-in kubelet for the client tests: GET /pods over HTTPS on
127.0.0.1 with a Bearer token check. Prints its port on the first line of
standard output once it listens, then serves until killed.

Modes: ok (the pod list file), garbage (a body that is not JSON),
hang (reads the request and never answers)."""
import argparse
import http.server
import ssl
import sys
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--pods", required=True)
    ap.add_argument("--mode", choices=["ok", "garbage", "hang"], default="ok")
    args = ap.parse_args()
    with open(args.pods, "rb") as f:
        pods = f.read()
    never = threading.Event()

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

        def do_GET(self):
            if self.headers.get("Authorization") != "Bearer " + args.token:
                self.reply(401, b"Unauthorized\n", "text/plain")
                return
            if self.path != "/pods":
                self.reply(404, b"404 page not found\n", "text/plain")
                return
            if args.mode == "hang":
                never.wait()
            elif args.mode == "garbage":
                self.reply(200, b"\x00\xffnot json {{{ " * 100)
            else:
                self.reply(200, pods)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
