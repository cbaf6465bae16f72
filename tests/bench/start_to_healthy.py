#!/usr/bin/env python3
"""bench helper: a service's own start-to-healthy and stop times, the floor
for any deployer's health-gated restart of it.

  start_to_healthy.py ADDR PORT ROUNDS -- COMMAND...

Runs COMMAND, polls GET http://ADDR:PORT/health every millisecond (a new
connection each time) until it answers 200, then sends SIGTERM and waits for
the exit. Prints one JSON object: the medians in ms of start-to-healthy and
SIGTERM-to-exit over ROUNDS runs. Bounded: a start gives up after 10 s.
"""
import json
import signal
import socket
import subprocess
import sys
import time


def healthy(addr, port):
    try:
        with socket.create_connection((addr, port), timeout=0.2) as s:
            s.sendall(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
            return _status(s) == 200
    except OSError:
        return False


def _status(s):
    buf = b""
    while b"\r\n" not in buf and len(buf) < 256:
        chunk = s.recv(64)
        if not chunk:
            break
        buf += chunk
    parts = buf.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def one(addr, port, cmd):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not healthy(addr, port):
            if p.poll() is not None or time.monotonic() - t0 > 10:
                raise SystemExit("start_to_healthy: %s never became healthy" % cmd[0])
            time.sleep(0.001)
        up = time.monotonic() - t0
        t1 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        return up * 1000, (time.monotonic() - t1) * 1000
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        raise SystemExit(__doc__)
    addr, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    runs = [one(addr, port, sys.argv[5:]) for _ in range(rounds)]
    med = lambda v: sorted(v)[len(v) // 2]
    print(json.dumps({"start_to_healthy_ms": round(med([r[0] for r in runs]), 2),
                      "stop_ms": round(med([r[1] for r in runs]), 2)}))


if __name__ == "__main__":
    main()
