#!/usr/bin/env python3
"""Hostile-but-legal clients for the resource-bound tests (test_bounds_*).

Each mode is bounded in time and count and prints result lines the test
greps. Coordination with the test script is by files: a mode that must
hold its state until the test has measured the node waits for GO_FILE.

usage:
  boundclient.py pipeline ADDR N PREFIX GO_FILE   N linearizable lists, not
        read until GO_FILE exists; then reads every answer: "answered A of N"
  boundclient.py hold ADDR N STOP_FILE [SETS]     N Hello'd connections held
        until STOP_FILE: "held H refused R"; with SETS, first writes SETS
        60 KB values over the first one: "sets OK of SETS"
  boundclient.py partial ADDR                     half a frame after Hello:
        "closed STATUS" when the node closes it
  boundclient.py partials ADDR N BYTES            N connections each sending
        BYTES of a larger frame after Hello: "closed C of N STATUSES"
  boundclient.py idle ADDR                        Hello, then nothing:
        "closed STATUS"
  boundclient.py hashes ADDR N                    N pipelined status with
        include_hash: "hashed H busy B of N"
  boundclient.py fill ADDR N PREFIX               N sets of 60 KB values,
        pipelined 32 at a time: "filled OK of N"
  boundclient.py bigsub ADDR N COUNT LEN STOP_FILE  N subscriptions of COUNT
        prefixes of LEN bytes each, held until STOP_FILE: "subscribed S
        refused R STATUS"
  boundclient.py stallsub ADDR N PREFIX STOP_FILE  N subscriptions that never
        read (tiny receive buffers), held until STOP_FILE: "subscribed S"
"""
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawclient import (Conn, field_bytes, field_varint, frame, hello,  # noqa: E402
                       parse, status_of)

WAIT_S = 120


def request(req_id, field, body):
    return frame(field_varint(1, req_id) + field_bytes(field, body))


def wait_file(path):
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def hello_conn(addr):
    c = Conn(addr)
    c.send(hello())
    r = c.recv_frame()
    return c, status_of(r)


def pipeline(addr, n, prefix, go):
    c, st = hello_conn(addr)
    if st != "OK":
        print("hello failed:", st)
        return 1
    body = field_bytes(1, prefix.encode())
    reqs = b"".join(request(i + 2, 14, body) for i in range(n))
    c.send(reqs)
    print("sent", n, flush=True)
    wait_file(go)
    # Read raw frames fast: only the id and the error matter.
    c.s.settimeout(30)
    seen = set()
    errors = {}
    buf = bytearray()
    deadline = time.monotonic() + WAIT_S
    while len(seen) < n and time.monotonic() < deadline:
        chunk = c.s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 4:
            (ln,) = struct.unpack(">I", buf[:4])
            if len(buf) < 4 + ln:
                break
            resp = parse(bytes(buf[4:4 + ln]))  # top level only: cheap
            rid = resp.get(1, [0])[0]
            st = status_of(resp)
            if st != "OK":
                errors[st] = errors.get(st, 0) + 1
            seen.add(rid)
            del buf[:4 + ln]
    print("answered %d of %d errors %s" % (len(seen), n, errors))
    return 0


def keep(conns, c, st):
    """Keeps an accepted connection; returns 1 (and closes it) if not."""
    if st == "OK":
        conns.append(c)
        return 0
    c.s.close()
    return 1


def hold_until(conns, refused, what, stop):
    print("%s %d refused %d" % (what, len(conns), refused), flush=True)
    wait_file(stop)
    for c in conns:
        c.s.close()
    return 0


def hold(addr, n, stop, sets):
    conns = []
    refused = 0
    for _ in range(n):
        try:
            c, st = hello_conn(addr)
        except OSError:
            refused += 1
            continue
        refused += keep(conns, c, st)
    print("held %d refused %d" % (len(conns), refused), flush=True)
    if sets and conns:
        ok = 0
        c = conns[0]
        c.s.settimeout(30)
        val = field_bytes(4, b"v" * 60000)
        for i in range(sets):
            body = field_bytes(1, b"fd.k%d" % (i % 10)) + field_bytes(2, val)
            try:
                c.send(request(100 + i, 11, body))
                ok += status_of(c.recv_frame()) == "OK"
            except OSError:
                break
        print("sets %d of %d" % (ok, sets), flush=True)
    return hold_until(conns, refused, "held", stop)


def wait_close(c, seconds=20):
    c.s.settimeout(seconds)
    try:
        while True:
            r = c.recv_frame()
            if r is None:
                return "EOF"
            if r.get(1, [1])[0] == 0:
                st = status_of(r)
                # the close follows the error frame
                c.recv_frame()
                return st
    except (ConnectionResetError, BrokenPipeError):
        return "RESET"
    except (TimeoutError, socket.timeout):
        return "OPEN"


def partial(addr):
    c, st = hello_conn(addr)
    c.send(struct.pack(">I", 100) + b"\x08\x02" + b"\x00" * 8)
    print("closed", wait_close(c))
    return 0


def partials(addr, n, size):
    conns = []
    for _ in range(n):
        c, st = hello_conn(addr)
        try:
            c.send(struct.pack(">I", size + 100) + b"\x08\x02" + b"\x00" * (size - 2))
        except OSError:
            pass
        conns.append(c)
    states = [wait_close(c, 5) for c in conns]
    closed = [s for s in states if s != "OPEN"]
    print("closed %d of %d %s" % (len(closed), n, sorted(closed)))
    return 0


def idle(addr):
    c, st = hello_conn(addr)
    print("closed", wait_close(c))
    return 0


def hashes(addr, n):
    c, st = hello_conn(addr)
    body = field_varint(1, 1)
    c.send(b"".join(request(i + 2, 15, body) for i in range(n)))
    print("sent", n, flush=True)
    hashed = busy = 0
    c.s.settimeout(WAIT_S)
    for _ in range(n):
        try:
            r = c.recv_frame()
        except OSError:
            break
        if r is None:
            break
        st = status_of(r)
        if st == "OK":
            hashed += 1
        elif st == "UNAVAILABLE":
            busy += 1
    print("hashed %d busy %d of %d" % (hashed, busy, n))
    return 0


def fill(addr, n, prefix):
    c, st = hello_conn(addr)
    c.s.settimeout(60)
    val = field_bytes(4, b"f" * 60000)
    ok = sent = got = 0
    while got < n:
        while sent < n and sent - got < 32:
            body = field_bytes(1, b"%s%d" % (prefix.encode(), sent)) + field_bytes(2, val)
            c.send(request(2 + sent, 11, body))
            sent += 1
        ok += status_of(c.recv_frame()) == "OK"
        got += 1
    print("filled %d of %d" % (ok, n))
    return 0


def bigsub(addr, n, count, length, stop):
    rnd = random.Random()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    conns = []
    refused = 0
    st = "-"
    for _ in range(n):
        body = b"".join(
            field_bytes(1, "".join(rnd.choice(alphabet) for _ in range(length)).encode())
            for _ in range(count))
        c, st = hello_conn(addr)
        c.send(request(2, 16, body))
        st = status_of(c.recv_frame())
        refused += keep(conns, c, st)
    print("last status", st)
    return hold_until(conns, refused, "subscribed", stop)


def stallsub(addr, n, prefix, stop):
    host, port = addr.rsplit(":", 1)
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect((host, int(port)))
        c = Conn.__new__(Conn)
        c.s = s
        c.buf = b""
        c.send(hello())
        c.recv_frame()
        c.send(request(2, 16, field_bytes(1, prefix.encode())))
        if status_of(c.recv_frame()) == "OK":
            conns.append(c)
    return hold_until(conns, n - len(conns), "subscribed", stop)


def main():
    a = sys.argv[1:]
    if not a:
        print(__doc__)
        return 2
    if a[0] == "pipeline":
        return pipeline(a[1], int(a[2]), a[3], a[4])
    if a[0] == "hold":
        return hold(a[1], int(a[2]), a[3], int(a[4]) if len(a) > 4 else 0)
    if a[0] == "partial":
        return partial(a[1])
    if a[0] == "partials":
        return partials(a[1], int(a[2]), int(a[3]))
    if a[0] == "idle":
        return idle(a[1])
    if a[0] == "hashes":
        return hashes(a[1], int(a[2]))
    if a[0] == "fill":
        return fill(a[1], int(a[2]), a[3])
    if a[0] == "bigsub":
        return bigsub(a[1], int(a[2]), int(a[3]), int(a[4]), a[5])
    if a[0] == "stallsub":
        return stallsub(a[1], int(a[2]), a[3], a[4])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
