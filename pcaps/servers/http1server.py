#!/usr/bin/python3
"""Tiny HTTP/1 server for l7tap fixtures (pcaps/record.sh).

Usage: http1server.py MODE ADDR PORT

MODE v11: HTTP/1.1 with keep-alive.
  GET /chunked        -> 200, Transfer-Encoding: chunked, 4 chunks written one by one
                         (one chunk carries a chunk extension), then a trailer field.
  GET /small          -> 200 with Content-Length.
  POST|PUT /upload    -> 201 with a short text body naming the number of body bytes read
                         (Content-Length or chunked request body; Expect: 100-continue is
                         answered with an interim "100 Continue" by http.server).
MODE v10: HTTP/1.0, no Content-Length: the body ends when the server closes the connection.
  GET /close          -> 200, body written in 3 pieces, then close.

Date headers are fixed so that re-recordings differ as little as possible.
"""
import http.server
import socketserver
import sys
import time

FIXED_DATE = "Mon, 01 Jan 2024 00:00:00 GMT"
CHUNKS = [b"first chunk of a chunked response\n", b"x" * 1000 + b"\n",
          b"third chunk\n", b"last data chunk\n"]


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "l7fx-http1/1.0"
    sys_version = ""

    def date_time_string(self, timestamp=None):
        return FIXED_DATE

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def _simple(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            total = 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                total += len(self.rfile.read(size))
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length", "0"))
        return len(self.rfile.read(n)) if n else 0

    def do_GET(self):
        if self.path == "/chunked" and self.protocol_version == "HTTP/1.1":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Chunk-Count")
            self.end_headers()
            for i, c in enumerate(CHUNKS):
                ext = b";note=ext" if i == 2 else b""
                self.wfile.write(b"%x%s\r\n%s\r\n" % (len(c), ext, c))
                self.wfile.flush()
                time.sleep(0.02)
            self.wfile.write(b"0\r\nX-Chunk-Count: %d\r\n\r\n" % len(CHUNKS))
            self.wfile.flush()
        elif self.path == "/close" and self.protocol_version == "HTTP/1.0":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for i in range(3):
                self.wfile.write(b"close-delimited body part %d\n" % i + b"y" * 500 + b"\n")
                self.wfile.flush()
                time.sleep(0.02)
            self.close_connection = True
        elif self.path == "/small":
            self._simple(200, b"small body\n")
        else:
            self._simple(404, b"not found\n")

    def do_POST(self):
        if self.path == "/upload":
            n = self._read_body()
            self._simple(201, b"received %d bytes\n" % n)
        else:
            self._read_body()
            self._simple(404, b"not found\n")

    do_PUT = do_POST


class V10(Handler):
    protocol_version = "HTTP/1.0"


class V11(Handler):
    protocol_version = "HTTP/1.1"


class Server(socketserver.TCPServer):
    allow_reuse_address = True


class Server6(Server):
    import socket
    address_family = socket.AF_INET6


def main():
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    handler = V11 if mode == "v11" else V10
    cls = Server6 if ":" in addr else Server
    with cls((addr, port), handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
