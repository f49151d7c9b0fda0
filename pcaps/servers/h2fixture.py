#!/usr/bin/python3
"""HTTP/2 cleartext (prior knowledge) server and gRPC client for l7tap fixtures,
built on python3-h2 (Debian package). Run with /usr/bin/python3.

  h2fixture.py server ADDR PORT
      POST /helloworld.Greeter/SayHello (content-type application/grpc): reads one
        gRPC message (5-byte prefix + protobuf HelloRequest{name=1}).
        name != "nobody": HEADERS(:status 200, content-type application/grpc),
          one DATA frame (gRPC prefix + HelloReply{message="Hello <name>"}),
          trailers HEADERS(grpc-status 0, grpc-message OK) with END_STREAM.
        name == "nobody": "Trailers-Only" response: one HEADERS frame with END_STREAM
          carrying :status 200, content-type, grpc-status 5, grpc-message.
      GET /ok       -> 200, body "ok\n"
      GET /partial  -> HEADERS 200, one DATA frame (no END_STREAM), then RST_STREAM
                       INTERNAL_ERROR (2)
      GET /refuse   -> RST_STREAM REFUSED_STREAM (7) without any response
      anything else -> 404
  h2fixture.py grpc-client ADDR PORT NAME...
      one connection, one unary SayHello call per NAME, one after the other; prints
      what it saw per call.
"""
import socket
import sys

import h2.config
import h2.connection
import h2.events
import h2.errors

PATH = b"/helloworld.Greeter/SayHello"


def pb_string(field, s):
    b = s.encode()
    return bytes([(field << 3) | 2, len(b)]) + b


def grpc_frame(msg):
    return b"\x00" + len(msg).to_bytes(4, "big") + msg


def pb_parse_string(field, msg):
    i = 0
    while i < len(msg):
        key = msg[i]
        ln = msg[i + 1]
        if key == (field << 3) | 2:
            return msg[i + 2:i + 2 + ln].decode()
        i += 2 + ln
    return ""


def serve(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(4)
    while True:
        s, _ = ls.accept()
        try:
            handle(s)
        except (ConnectionError, OSError) as e:
            sys.stderr.write("connection error: %s\n" % e)
        finally:
            s.close()


def handle(s):
    cfg = h2.config.H2Configuration(client_side=False, header_encoding=None)
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    reqs = {}
    while True:
        data = s.recv(65536)
        if not data:
            return
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                reqs[ev.stream_id] = {"headers": dict(ev.headers), "body": b""}
            elif isinstance(ev, h2.events.DataReceived):
                reqs[ev.stream_id]["body"] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                respond(conn, ev.stream_id, reqs.pop(ev.stream_id))
            elif isinstance(ev, h2.events.ConnectionTerminated):
                s.sendall(conn.data_to_send())
                return
        out = conn.data_to_send()
        if out:
            s.sendall(out)


def respond(conn, sid, req):
    h = req["headers"]
    path = h.get(b":path", b"")
    if path == PATH:
        name = pb_parse_string(1, req["body"][5:])
        if name == "nobody":
            conn.send_headers(sid, [(b":status", b"200"), (b"content-type", b"application/grpc"),
                                    (b"grpc-status", b"5"),
                                    (b"grpc-message", b"user not found")], end_stream=True)
            return
        conn.send_headers(sid, [(b":status", b"200"), (b"content-type", b"application/grpc")])
        conn.send_data(sid, grpc_frame(pb_string(1, "Hello " + name)))
        conn.send_headers(sid, [(b"grpc-status", b"0"), (b"grpc-message", b"OK")],
                          end_stream=True)
    elif path == b"/ok":
        conn.send_headers(sid, [(b":status", b"200"), (b"content-type", b"text/plain"),
                                (b"content-length", b"3")])
        conn.send_data(sid, b"ok\n", end_stream=True)
    elif path == b"/partial":
        conn.send_headers(sid, [(b":status", b"200"), (b"content-type", b"text/plain")])
        conn.send_data(sid, b"partial body that never ends\n")
        conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
    elif path == b"/refuse":
        conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
    else:
        conn.send_headers(sid, [(b":status", b"404"), (b"content-length", b"10")])
        conn.send_data(sid, b"not found\n", end_stream=True)


def grpc_client(addr, port, names):
    s = socket.create_connection((addr, port))
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    authority = ("%s:%d" % (addr, port)).encode()
    for name in names:
        sid = conn.get_next_available_stream_id()
        body = grpc_frame(pb_string(1, name))
        conn.send_headers(sid, [(b":method", b"POST"), (b":scheme", b"http"),
                                (b":path", PATH), (b":authority", authority),
                                (b"content-type", b"application/grpc"), (b"te", b"trailers"),
                                (b"user-agent", b"l7fx-grpc-client/1.0")])
        conn.send_data(sid, body, end_stream=True)
        s.sendall(conn.data_to_send())
        headers, trailers, data, done = [], [], b"", False
        while not done:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("server closed the connection")
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    headers = ev.headers
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    trailers = ev.headers
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
            out = conn.data_to_send()
            if out:
                s.sendall(out)
        hd = dict(headers)
        td = dict(trailers)
        st = td.get(b"grpc-status", hd.get(b"grpc-status", b"?")).decode()
        reply = pb_parse_string(1, data[5:]) if data else ""
        print("stream %d: POST %s name=%r request body %d bytes -> :status %s, "
              "response body %d bytes (message %r), grpc-status %s, trailers-only=%s"
              % (sid, PATH.decode(), name, len(body), hd.get(b":status", b"?").decode(),
                 len(data), reply, st, not trailers))
    conn.close_connection()
    s.sendall(conn.data_to_send())
    s.close()


def main():
    cmd = sys.argv[1]
    if cmd == "server":
        serve(sys.argv[2], int(sys.argv[3]))
    elif cmd == "grpc-client":
        grpc_client(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
