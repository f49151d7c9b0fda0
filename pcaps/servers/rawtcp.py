#!/usr/bin/python3
"""Raw-socket helpers for l7tap fixtures (pcaps/record.sh).

  rawtcp.py echo-server ADDR PORT    echo every byte back until the peer closes (one client).
  rawtcp.py echo-client ADDR PORT    send fixed non-HTTP binary messages, read the echoes.
  rawtcp.py pipeline ADDR PORT HOST  send 3 HTTP/1.1 GET requests in one send(), read all
                                     3 responses (the last request says Connection: close).
"""
import socket
import sys

# A made-up binary protocol: 4-byte magic, 2-byte length, payload.
MESSAGES = [b"L7FX\x00\x10" + bytes(range(16)),
            b"L7FX\x01\x00" + bytes((i * 7) & 0xFF for i in range(256)),
            b"\x00\x01\x02\x03\xff\xfe\xfd\xfcGET-but-not-http\r\n"]


def echo_server(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(4)
    while True:
        c, _ = s.accept()
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            break
        buf += d
    return buf


def echo_client(addr, port):
    s = socket.create_connection((addr, port))
    for m in MESSAGES:
        s.sendall(m)
        back = recv_exact(s, len(m))
        print("sent %d bytes, echoed %d bytes, equal=%s" % (len(m), len(back), back == m))
    s.shutdown(socket.SHUT_WR)
    rest = s.recv(100)
    print("after shutdown: %d bytes, closed=%s" % (len(rest), rest == b""))
    s.close()


def pipeline(addr, port, host):
    reqs = [b"GET /index.html HTTP/1.1\r\nHost: %s\r\nUser-Agent: l7fx-pipeline\r\n\r\n",
            b"GET /small.txt HTTP/1.1\r\nHost: %s\r\nUser-Agent: l7fx-pipeline\r\n\r\n",
            b"GET /missing HTTP/1.1\r\nHost: %s\r\nUser-Agent: l7fx-pipeline\r\n"
            b"Connection: close\r\n\r\n"]
    data = b"".join(r % host.encode() for r in reqs)
    s = socket.create_connection((addr, port))
    s.sendall(data)
    print("sent 3 requests in one send(): %d bytes" % len(data))
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    # Split responses by Content-Length (nginx always sends it for these).
    pos = 0
    while pos < len(buf):
        end = buf.index(b"\r\n\r\n", pos) + 4
        head = buf[pos:end].decode("latin-1").split("\r\n")
        clen = 0
        for h in head[1:]:
            if h.lower().startswith("content-length:"):
                clen = int(h.split(":", 1)[1])
        print("response: %s, body %d bytes" % (head[0], clen))
        pos = end + clen
    print("received %d bytes in total, then the server closed" % len(buf))


def main():
    cmd = sys.argv[1]
    if cmd == "echo-server":
        echo_server(sys.argv[2], int(sys.argv[3]))
    elif cmd == "echo-client":
        echo_client(sys.argv[2], int(sys.argv[3]))
    elif cmd == "pipeline":
        pipeline(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
