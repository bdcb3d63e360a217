#!/usr/bin/env python3
"""Raw-socket probes of flipd's client port for the bad-input tests.

Speaks just enough protobuf by hand (no protobuf runtime needed) to send
well-formed, malformed and hostile frames and to read the node's answer.
Every socket operation has a timeout; every probe is bounded.

usage: rawclient.py HOST:PORT PROBE     (prints one result line; exit 0 when
the node behaved as the probe expects, 1 otherwise)
"""
import os
import socket
import struct
import sys
import time

TIMEOUT = 5.0


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, val):
    return varint(num << 3) + varint(val)


def field_bytes(num, data):
    return varint((num << 3) | 2) + varint(len(data)) + data


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def hello(req_id=1):
    return frame(field_varint(1, req_id) + field_bytes(10, field_varint(1, 1) + field_bytes(2, b"rawclient")))


def parse(buf):
    """Parses one protobuf message into {field: [values]} (bytes or int)."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = read_varint(buf, i)
        elif wt == 2:
            ln, i = read_varint(buf, i)
            val = buf[i:i + ln]
            i += ln
        elif wt == 1:
            val = buf[i:i + 8]
            i += 8
        elif wt == 5:
            val = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("bad wire type")
        out.setdefault(num, []).append(val)
    return out


def read_varint(buf, i):
    shift = 0
    n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


STATUS = {0: "OK", 1: "NOT_LEADER", 2: "NOT_FOUND", 3: "CAS_CONFLICT", 4: "INVALID_ARGUMENT",
          5: "TOO_LARGE", 6: "UNAVAILABLE", 7: "UNSUPPORTED_VERSION", 8: "UNKNOWN_TYPE",
          9: "LEADERSHIP_LOST", 10: "PROTOCOL_ERROR", 11: "NO_SPACE", 12: "INTERNAL",
          13: "SLOW_CONSUMER", 14: "AHEAD_OF_NODE"}


class Conn:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def recv_frame(self):
        """Returns the next Response as a dict, or None at EOF."""
        return self.recv_sized()[1]

    def recv_sized(self, timeout=TIMEOUT):
        """Returns (payload length, Response dict), or (None, None) at EOF;
        remembers the largest frame seen in self.largest."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    msg = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    self.largest = max(getattr(self, "largest", 0), n)
                    return n, parse(msg)
            if time.monotonic() > deadline:
                raise TimeoutError("no response")
            chunk = self.s.recv(65536)
            if not chunk:
                return None, None
            self.buf += chunk

    def closed_by_peer(self):
        """True when the server closes the connection (within TIMEOUT)."""
        try:
            while True:
                if self.recv_frame() is None:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (TimeoutError, socket.timeout):
            return False


def status_of(resp):
    if resp is None:
        return "EOF"
    if 2 not in resp:
        return "OK"
    err = parse(resp[2][0])
    return STATUS.get(err.get(1, [0])[0], "?")


def resp_id(resp):
    return None if resp is None else resp.get(1, [0])[0]


def answers(addr):
    """True when a new connection to addr gets Hello and a status answered."""
    try:
        c = Conn(addr)
        c.send(hello(1))
        if status_of(c.recv_frame()) != "OK":
            return False
        c.send(frame(field_varint(1, 2) + field_bytes(15, b"")))
        ok = status_of(c.recv_frame()) == "OK"
        c.s.close()
        return ok
    except OSError:
        return False


def expect(cond, what):
    print(("ok: " if cond else "FAILED: ") + what)
    return 0 if cond else 1


EVENT_TYPES = {1: "begin", 2: "item", 3: "end", 4: "change", 5: "heartbeat"}


def decode_flag(raw):
    f = parse(raw)
    out = {"key": f.get(1, [b""])[0].decode()}
    if 2 in f:
        # "vtype" keeps what the JSON form loses: a string and a JSON text
        # are both str here, an int and a bool both numbers.
        v = parse(f[2][0])
        if 1 in v:
            out["value"], out["vtype"] = bool(v[1][0]), "bool"
        elif 2 in v:
            n = v[2][0]
            out["value"], out["vtype"] = (n >> 1) ^ -(n & 1), "int"
        elif 3 in v:
            out["value"], out["vtype"] = struct.unpack("<d", v[3][0])[0], "double"
        elif 4 in v:
            out["value"], out["vtype"] = v[4][0].decode(), "string"
        elif 5 in v:
            out["value"], out["vtype"] = v[5][0].decode(), "json"
    if 3 in f:
        out["revision"] = f[3][0]
    if 8 in f and f[8][0]:
        out["deleted"] = True
    return out


def subscribe(addr, prefixes, from_rev, seconds, out, until_rev=None, pause_after=None):
    """Subscribes and writes one JSON line per event to `out` until
    `seconds` pass (or a change at revision >= until_rev arrives)."""
    import json
    c = Conn(addr)
    c.send(hello())
    if status_of(c.recv_frame()) != "OK":
        raise SystemExit("hello failed")
    body = b"".join(field_bytes(1, p.encode()) for p in prefixes)
    if from_rev is not None:
        body += field_varint(2, from_rev)
    c.send(frame(field_varint(1, 2) + field_bytes(16, body)))
    deadline = time.monotonic() + seconds
    c.s.settimeout(0.5)
    first = True
    while time.monotonic() < deadline:
        try:
            resp = c.recv_frame()
        except (TimeoutError, socket.timeout):
            continue
        except (ConnectionResetError, BrokenPipeError):
            resp = None
        if resp is None:
            out.write(json.dumps({"type": "eof"}) + "\n")
            out.flush()
            return 0
        if first:
            first = False
            st = status_of(resp)
            out.write(json.dumps({"type": "subscribed", "status": st, "prefixes": list(prefixes)}) + "\n")
            out.flush()
            if st != "OK":
                return 0
            continue
        if 2 in resp:
            err = parse(resp[2][0])
            out.write(json.dumps({"type": "error", "status": STATUS.get(err.get(1, [0])[0]),
                                  "message": err.get(2, [b""])[0].decode()}) + "\n")
            out.flush()
            continue
        ev = parse(resp[17][0])
        rec = {"type": EVENT_TYPES.get(ev.get(1, [0])[0], "?"), "revision": ev.get(2, [0])[0],
               "t": time.time()}
        if 4 in ev and ev[4][0]:
            rec["resync"] = True
        if 3 in ev:
            rec["flags"] = [decode_flag(f) for f in ev[3]]
        if 6 in ev:
            hb = parse(ev[6][0])
            rec["applied"] = hb.get(2, [0])[0]
            rec["leader"] = hb.get(3, [0])[0]
            rec["leaderless_ms"] = hb.get(5, [0])[0]
            rec["stale"] = bool(hb.get(6, [0])[0])
            rec["leader_commit"] = hb.get(9, [0])[0]
            rec["lag"] = hb.get(10, [0])[0]
            rec["catching_up"] = bool(hb.get(11, [0])[0])
        out.write(json.dumps(rec) + "\n")
        out.flush()
        if until_rev is not None and rec["type"] == "change" and rec["revision"] >= until_rev:
            return 0
    return 0


def probe(addr, name):
    c = Conn(addr)
    if name == "oversized":
        c.send(struct.pack(">I", 64 * 1024 * 1024) + b"x" * 100)
        st = status_of(c.recv_frame())
        return expect(st == "TOO_LARGE" and c.closed_by_peer(), f"oversized frame -> {st} + close")
    if name == "garbage":
        c.send(frame(bytes([0xFF, 0xFF, 0xFF, 0x0F, 0x07, 0x07])))
        st = status_of(c.recv_frame())
        return expect(st == "PROTOCOL_ERROR" and c.closed_by_peer(), f"garbage frame -> {st} + close")
    if name == "random-bytes":
        # a plausible length, then bytes with invalid wire types: not a
        # Request, so PROTOCOL_ERROR (protocol.md section 1), then the close
        c.send(frame(bytes([0x0F, 0x17, 0x27, 0x37, 0x47, 0x57, 0x67, 0x77] * 8)))
        resp = c.recv_frame()
        st = status_of(resp)
        return expect(st == "PROTOCOL_ERROR" and resp_id(resp) == 0 and c.closed_by_peer(),
                      f"random bytes -> {st} (id {resp_id(resp)}) + close")
    if name == "truncated-hello":
        # a Hello cut short, then the client goes away: the node must stay
        # up and serve the next connection
        whole = hello()
        c.send(whole[:-3])
        c.s.close()
        return expect(answers(addr), "truncated Hello then disconnect; a new connection is served")
    if name == "truncated":
        # after Hello, a frame left unfinished: the node answers
        # PROTOCOL_ERROR (id 0) and closes once --frame-timeout-ms passes
        # (protocol.md section 10), and meanwhile serves others. The wait
        # is a generous bound, not a measurement: FRAME_TIMEOUT_MS (the
        # node's flag) plus 30 s.
        limit = int(os.environ.get("FRAME_TIMEOUT_MS", "30000")) / 1000 + 30
        c.send(hello())
        if status_of(c.recv_frame()) != "OK":
            return expect(False, "hello")
        whole = frame(field_varint(1, 9) + field_bytes(15, b""))
        c.send(whole[:-1])
        served = answers(addr)
        try:
            n, resp = c.recv_sized(timeout=limit)
        except (TimeoutError, socket.timeout):
            return expect(False, f"truncated frame: no answer within {limit:.0f} s")
        except (ConnectionResetError, BrokenPipeError):
            n, resp = None, None
        st = status_of(resp)
        c.s.settimeout(limit)
        return expect(served and st == "PROTOCOL_ERROR" and resp_id(resp) == 0 and c.closed_by_peer(),
                      f"truncated frame -> {st} (id {resp_id(resp)}) + close; others served meanwhile: {served}")
    if name == "no-hello":
        c.send(frame(field_varint(1, 7) + field_bytes(13, field_bytes(1, b"k"))))
        st = status_of(c.recv_frame())
        c.send(hello(8))
        st2 = status_of(c.recv_frame())
        return expect(st == "INVALID_ARGUMENT" and st2 == "OK", f"request before Hello -> {st}, then Hello -> {st2}")
    if name == "bad-version":
        c.send(frame(field_varint(1, 1) + field_bytes(10, field_varint(1, 99))))
        st = status_of(c.recv_frame())
        return expect(st == "UNSUPPORTED_VERSION", f"protocol version 99 -> {st}")
    c.send(hello())
    if status_of(c.recv_frame()) != "OK":
        return expect(False, "hello")
    if name == "unknown-type":
        c.send(frame(field_varint(1, 5) + field_varint(99, 1)))
        st = status_of(c.recv_frame())
        # the connection stays usable
        c.send(frame(field_varint(1, 6) + field_bytes(15, b"")))
        st2 = status_of(c.recv_frame())
        return expect(st == "UNKNOWN_TYPE" and st2 == "OK", f"unknown type -> {st}; then status -> {st2}")
    if name == "invalid-key":
        value = field_bytes(4, b"v")
        bad = [b"", b"has space", b"x" * 300, b"\xff\xfe"]
        results = []
        for i, k in enumerate(bad):
            c.send(frame(field_varint(1, 10 + i) + field_bytes(11, field_bytes(1, k) + field_bytes(2, value))))
            results.append(status_of(c.recv_frame()))
        # protocol.md section 10: a length limit gives TOO_LARGE, a bad
        # character or missing key INVALID_ARGUMENT
        want = ["INVALID_ARGUMENT", "INVALID_ARGUMENT", "TOO_LARGE", "INVALID_ARGUMENT"]
        return expect(results == want, f"invalid keys -> {results}, want {want}")
    if name == "invalid-value":
        cases = [b"", field_bytes(5, b"{not json"), field_bytes(4, b"y" * (65 * 1024)),
                 varint((3 << 3) | 1) + struct.pack("<d", float("nan"))]
        results = []
        for i, v in enumerate(cases):
            c.send(frame(field_varint(1, 20 + i) + field_bytes(11, field_bytes(1, b"bad.value") + field_bytes(2, v))))
            results.append(status_of(c.recv_frame()))
        want = ["INVALID_ARGUMENT", "INVALID_ARGUMENT", "TOO_LARGE", "INVALID_ARGUMENT"]
        return expect(results == want, f"invalid values -> {results}, want {want}")
    if name == "wrong-type":
        # a SetRequest whose key field carries a varint instead of a string
        c.send(frame(field_varint(1, 30) + field_bytes(11, field_varint(1, 5))))
        st = status_of(c.recv_frame())
        return expect(st == "PROTOCOL_ERROR" and c.closed_by_peer(), f"wrong wire type -> {st} + close")
    if name == "pipeline":
        reqs = b"".join(frame(field_varint(1, 100 + i) + field_bytes(15, b"")) for i in range(200))
        c.send(reqs)
        ids = []
        for _ in range(200):
            r = c.recv_frame()
            ids.append(r[1][0])
        return expect(ids == list(range(100, 300)), "200 pipelined requests answered with their ids")
    if name.startswith("sub-"):
        return sub_probe(c, name)
    return expect(False, f"unknown probe {name}")


def sub_request(req_id, prefixes=(), from_rev=None):
    body = b"".join(field_bytes(1, p) for p in prefixes)
    if from_rev is not None:
        body += field_varint(2, from_rev)
    return frame(field_varint(1, req_id) + field_bytes(16, body))


def sub_probe(c, name):
    if name == "sub-wildcard":
        c.send(sub_request(3, [b"checkout.*"]))
        st = status_of(c.recv_frame())
        return expect(st == "INVALID_ARGUMENT", f"wildcard prefix -> {st}")
    if name == "sub-long-prefix":
        c.send(sub_request(3, [b"p" * 300]))
        st = status_of(c.recv_frame())
        return expect(st == "INVALID_ARGUMENT", f"300-byte prefix -> {st}")
    if name == "sub-many":
        c.send(sub_request(3, [b"p%d" % i for i in range(5000)]))
        st = status_of(c.recv_frame())
        return expect(st == "INVALID_ARGUMENT", f"5000 prefixes -> {st}")
    if name == "sub-absurd":
        c.send(sub_request(3, [], 1 << 63))
        st = status_of(c.recv_frame())
        return expect(st == "INVALID_ARGUMENT", f"from_revision 2^63 -> {st}")
    if name == "sub-twice":
        c.send(sub_request(3, [b"x."]))
        st = status_of(c.recv_frame())
        c.send(sub_request(4, [b"y."]))
        # the stream of the first subscription may interleave
        st2 = None
        for _ in range(50):
            r = c.recv_frame()
            if r is not None and 1 in r and r[1][0] == 4:
                st2 = status_of(r)
                break
        # and the first subscription is still alive: a status request works
        c.send(frame(field_varint(1, 5) + field_bytes(15, b"")))
        st3 = None
        for _ in range(50):
            r = c.recv_frame()
            if r is not None and 1 in r and r[1][0] == 5:
                st3 = status_of(r)
                break
        return expect(st == "OK" and st2 == "INVALID_ARGUMENT" and st3 == "OK",
                      f"subscribe -> {st}, again -> {st2}, then status -> {st3}")
    return expect(False, f"unknown probe {name}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "subscribe":
        import argparse
        ap = argparse.ArgumentParser()
        ap.add_argument("addr")
        ap.add_argument("cmd")
        ap.add_argument("--prefix", action="append", default=[])
        ap.add_argument("--from-revision", type=int)
        ap.add_argument("--seconds", type=float, default=10)
        ap.add_argument("--until-revision", type=int)
        a = ap.parse_args()
        sys.exit(subscribe(a.addr, a.prefix, a.from_revision, a.seconds, sys.stdout, a.until_revision))
    sys.exit(probe(sys.argv[1], sys.argv[2]))
