#!/usr/bin/env python3
"""A hostile registry for tests (127.0.0.1 only): answers the OCI
Distribution API in ways that must not hold a pull past its deadline.

  GET /v2/                       200 {}
  GET /v2/endless500/.../...     500 with a body that never ends
  GET /v2/drip/.../...           200 manifest headers, then one byte every
                                 0.2 s, forever (above a 1 byte/s stall limit)
  GET /v2/silent/.../...         accepts, reads the request, never answers
  anything else                  404

Usage: hostile_registry.py PORT_FILE LOG_FILE
Binds an ephemeral port on 127.0.0.1, writes it to PORT_FILE, appends one
line per request to LOG_FILE ("<path> open" / "<path> closed after N bytes")
and serves until killed. Each connection has its own thread; a connection
ends when the client goes away.
"""
import socket
import sys
import threading
import time

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def log(path, line):
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def serve(conn, log_path):
    conn.settimeout(30)
    sent = 0
    target = "?"
    try:
        req = b""
        while b"\r\n\r\n" not in req and len(req) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            req += chunk
        target = req.split(b" ", 2)[1].decode("latin-1", "replace")
        log(log_path, f"{target} open")
        if target in ("/v2/", "/v2"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        elif target.startswith("/v2/endless500/"):
            conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\n"
                         b"Content-Type: text/plain\r\nConnection: close\r\n\r\n")
            block = b"x" * 1024
            while True:  # no Content-Length: the body ends when we close, never
                conn.sendall(block)
                sent += len(block)
                time.sleep(0.001)
        elif target.startswith("/v2/drip/"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + MANIFEST_TYPE.encode() +
                         b"\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n")
            while True:
                conn.sendall(b" ")
                sent += 1
                time.sleep(0.2)
        elif target.startswith("/v2/silent/"):
            while conn.recv(4096):
                pass
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
    except OSError:
        pass
    finally:
        log(log_path, f"{target} closed after {sent} bytes")
        conn.close()


def main():
    port_file, log_path = sys.argv[1], sys.argv[2]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    with open(port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(srv.getsockname()[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, log_path), daemon=True).start()


if __name__ == "__main__":
    main()
