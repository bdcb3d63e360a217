"""A small synchronous flipd client for the chaos workload: Hello, set,
compare-and-set and get, following NOT_LEADER redirects, every call bounded
by a deadline. Outcomes are classified for the checker:

  ok       the node answered with a result
  fail     definitely not applied (refused before it was proposed: no
           leader, not the leader, CAS conflict, invalid)
  unknown  may or may not be applied (timeout or connection lost after the
           request was sent, LEADERSHIP_LOST)
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from rawclient import field_bytes, field_varint, frame, parse, STATUS  # noqa: E402


def _value_text(v):
    if 4 in v:
        return v[4][0].decode()
    if 5 in v:
        return v[5][0].decode()
    if 1 in v:
        return bool(v[1][0])
    if 2 in v:
        n = v[2][0]
        return (n >> 1) ^ -(n & 1)
    if 3 in v:
        return struct.unpack("<d", v[3][0])[0]
    return None


class Client:
    def __init__(self, endpoints, name, op_timeout=2.0, source=None):
        self.endpoints = list(endpoints)
        self.name = name
        # the local address to connect from (netns mode: the address of the
        # client's home side, so a partition can cut it); None: any
        self.source = source
        self.op_timeout = op_timeout
        self.sock = None
        self.addr = None
        self.buf = b""
        self.next_id = 1
        self.rr = 0

    def close(self, abort=False):
        """abort: reset the connection (SO_LINGER 0) instead of a graceful
        close. A client that gives up on a request must abort, or its
        kernel keeps retransmitting the request after close() and a cut
        link can deliver it many seconds later, after the final reads."""
        if self.sock is not None:
            try:
                if abort:
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def _connect(self, addr, deadline):
        self.close()
        host, port = addr.rsplit(":", 1)
        left = max(0.05, deadline - time.monotonic())
        src = (self.source, 0) if self.source else None
        self.sock = socket.create_connection((host, int(port)), timeout=min(left, 1.0),
                                             source_address=src)
        self.addr = addr
        self._send(field_varint(1, 0) + field_bytes(10, field_varint(1, 1) + field_bytes(2, self.name.encode())))
        resp = self._recv(deadline)
        if resp is None or 2 in resp:
            raise ConnectionError("hello refused")

    def _send(self, body):
        self.sock.sendall(frame(body))

    def _recv(self, deadline):
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    msg = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return parse(msg)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by node")
            self.buf += chunk

    def call(self, op_field, body, is_write):
        """Returns (outcome, node_addr, response dict or None, status)."""
        deadline = time.monotonic() + self.op_timeout
        target = None
        sent = False
        status = None
        while time.monotonic() < deadline:
            sent = False  # only a request lost in flight is ambiguous
            try:
                if self.sock is None or (target is not None and target != self.addr):
                    addr = target or self.endpoints[self.rr % len(self.endpoints)]
                    self.rr += 1
                    self._connect(addr, deadline)
                target = None
                req_id = self.next_id
                self.next_id += 1
                self._send(field_varint(1, req_id) + field_bytes(op_field, body))
                sent = True
                while True:
                    resp = self._recv(deadline)
                    if resp.get(1, [0])[0] == req_id:
                        break
            except (OSError, TimeoutError, ConnectionError):
                self.close(abort=True)
                if sent and is_write:
                    return "unknown", self.addr, None, "LOST"
                time.sleep(0.02)
                continue
            if 2 not in resp:
                return "ok", self.addr, resp, "OK"
            err = parse(resp[2][0])
            status = STATUS.get(err.get(1, [0])[0], "?")
            if status == "NOT_LEADER" and 3 in err:
                target = err[3][0].decode()
                continue
            if status in ("UNAVAILABLE", "NOT_LEADER"):
                time.sleep(0.02)
                self.close()
                continue
            if status in ("LEADERSHIP_LOST", "INTERNAL") and is_write:
                return "unknown", self.addr, resp, status
            if status == "LEADERSHIP_LOST":
                continue
            return "fail", self.addr, resp, status
        # every attempt was refused before it was proposed (a lost answer
        # returns "unknown" above)
        return "fail", self.addr, None, status or "TIMEOUT"

    # ---- operations ------------------------------------------------------

    def set(self, key, value, expected=None):
        body = field_bytes(1, key.encode()) + field_bytes(2, field_bytes(4, value.encode()))
        if expected is not None:
            body += field_varint(5, expected)
        outcome, node, resp, status = self.call(11, body, True)
        rev = None
        if outcome == "ok":
            rev = parse(resp[11][0]).get(1, [0])[0]
        return outcome, node, rev, status

    def get(self, key, stale=False):
        body = field_bytes(1, key.encode()) + (field_varint(2, 1) if stale else b"")
        outcome, node, resp, status = self.call(13, body, False)
        if outcome == "ok":
            g = parse(resp[13][0])
            f = parse(g[1][0])
            return "ok", node, _value_text(parse(f[2][0])) if 2 in f else None, f.get(3, [0])[0]
        if status == "NOT_FOUND":
            return "ok", node, None, 0
        return outcome, node, None, None

    def status(self):
        outcome, node, resp, _ = self.call(15, b"", False)
        if outcome != "ok":
            return None
        st = parse(resp[15][0])
        return {"id": st.get(1, [0])[0], "role": st.get(2, [b""])[0].decode(),
                "leader": st.get(4, [0])[0], "applied": st.get(6, [0])[0],
                "commit": st.get(7, [0])[0]}
