#!/usr/bin/python3
"""HTTP/1 server that answers any request method, and an HTTP/0.9 client, for
l7tap fixtures (pcaps/record.sh, "issue 16: methods and HTTP/0.9").

Usage: methodserver.py server ADDR PORT
         HTTP/1.1 with keep-alive; every method is answered (http.server alone
         answers 501 to a method it has no do_<METHOD> for):
           PROPFIND, PROPPATCH, SEARCH -> 207 with a small XML body
           MKCOL                       -> 201, empty body
           LOCK                        -> 200 with a Lock-Token and an XML body
           BREW                        -> 418 (RFC 2324)
           anything else               -> 200, a text body naming the method, the
                                          path and the request body bytes read
         A version-less request line (`GET /path CRLF`) is HTTP/0.9 to
         http.server: the answer is the body alone, then the close.
       methodserver.py get09 ADDR PORT PATH
         Sends `GET PATH CRLF`, half-closes, prints what comes back until the
         server closes (what `printf 'GET PATH\\r\\n' | nc -N ADDR PORT` does).
"""
import http.server
import socket
import socketserver
import sys
import time

FIXED_DATE = "Mon, 01 Jan 2024 00:00:00 GMT"
HELLO = b"".join(b"hello from an HTTP/0.9 answer, line %02d\n" % i for i in range(1, 9))
MULTISTATUS = (b'<?xml version="1.0" encoding="utf-8"?>\n'
               b'<D:multistatus xmlns:D="DAV:"><D:response><D:href>%s</D:href>'
               b"<D:status>HTTP/1.1 200 OK</D:status></D:response></D:multistatus>\n")


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "l7fx-methods/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def date_time_string(self, timestamp=None):
        return FIXED_DATE

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def __getattr__(self, name):
        # handle_one_request looks up do_<METHOD>: every method gets one.
        if name.startswith("do_"):
            return self.answer
        raise AttributeError(name)

    def _read_body(self):
        n = int(self.headers.get("Content-Length", "0") or "0")
        return len(self.rfile.read(n)) if n else 0

    def _send(self, code, body, ctype="text/plain", extra=()):
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer(self):
        if self.request_version == "HTTP/0.9":
            # http.server writes no status line nor headers for 0.9; two
            # writes, so the body spans segments, then the close.
            self.wfile.write(HELLO[: len(HELLO) // 2])
            self.wfile.flush()
            time.sleep(0.05)
            self.wfile.write(HELLO[len(HELLO) // 2:])
            return
        got = self._read_body()
        path = self.path.encode()
        if self.command in ("PROPFIND", "PROPPATCH", "SEARCH"):
            self._send(207, MULTISTATUS % path, "application/xml; charset=utf-8")
        elif self.command == "MKCOL":
            self._send(201, b"")
        elif self.command == "LOCK":
            token = "<opaquelocktoken:l7fx-0001>"
            body = (b'<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:">'
                    b"<D:lockdiscovery><D:activelock><D:locktoken><D:href>%s</D:href>"
                    b"</D:locktoken></D:activelock></D:lockdiscovery></D:prop>\n" % token.encode())
            self._send(200, body, "application/xml; charset=utf-8", [("Lock-Token", token)])
        elif self.command == "BREW":
            self._send(418, b"I'm a teapot: short and stout (%d bytes of order)\n" % got)
        else:
            self._send(200, b"%s %s: %d request body bytes\n" % (self.command.encode(), path, got))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def get09(addr, port, path):
    with socket.create_connection((addr, int(port))) as s:
        s.sendall(b"GET %s\r\n" % path.encode())
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    sys.stdout.write(got.decode("utf-8", "replace"))
    print("[%d bytes, then the server closed]" % len(got))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "server":
        Server((sys.argv[2], int(sys.argv[3])), Handler).serve_forever()
    elif len(sys.argv) == 5 and sys.argv[1] == "get09":
        get09(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
