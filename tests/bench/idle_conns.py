#!/usr/bin/env python3
"""Open N keep-alive HTTP/1.1 connections, make one request on each, keep them idle.

Usage: idle_conns.py HOST PORT N HOLD_SECONDS READY_FILE

Writes the number of connections that got a complete 200 answer to READY_FILE once all
are open, then holds them for at most HOLD_SECONDS (or until killed).
"""
import socket
import sys
import time


def one_request(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            return False
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            return False
        body += chunk
    return head.startswith(b"HTTP/1.1 200")


def main():
    host, port, n, hold, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    deadline = time.monotonic() + hold
    conns = []
    ok = 0
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection((host, port), timeout=5)
            if one_request(s):
                ok += 1
            conns.append(s)
        except OSError as e:
            print(f"connection failed: {e}", file=sys.stderr)
            break
    with open(ready, "w") as f:
        f.write(f"{ok}\n")
    time.sleep(max(0.0, deadline - time.monotonic()))
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
