"""A small synchronous flipd client for the chaos workload: Hello, set,
compare-and-set, delete and get, following NOT_LEADER redirects, every call
bounded by a deadline. Outcomes are classified for the checker:

  ok       the node answered with a result
  fail     definitely not applied (refused before it was proposed: no
           leader, not the leader, CAS conflict, NOT_FOUND on a delete,
           STORE_FULL, invalid)
  unknown  may or may not be applied (timeout or connection lost after the
           request was sent, LEADERSHIP_LOST)

Writes carry a request id (docs/protocol.md section 6), as the C library
does: a random 16-byte client id per Client object and a seq per write. An
outcome-unknown attempt (no answer within `attempt_timeout`, connection lost
after sending, LEADERSHIP_LOST, INTERNAL) is resent with the SAME id, on
any node, until the call's deadline; the cluster applies an id at most once
and answers a resend with the recorded outcome. Only a write still unknown
at the deadline is "unknown". After an ambiguous attempt a refusal that
proves nothing about the earlier attempt (NOT_LEADER, UNAVAILABLE,
NO_SPACE) keeps the write unknown; a final answer (OK, CAS_CONFLICT,
NOT_FOUND, STORE_FULL, ...) is the id's real outcome.

request_ids=False resends exactly the same way but without an id: what
the ids prevent. The cluster cannot tell such a resend from a new write, so
a first attempt that did apply is applied again, which the checker must
catch (ONCE: one value at two revisions; a CAS told CONFLICT with its own
revision; a delete told NOT_FOUND).
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from rawclient import field_bytes, field_varint, frame, parse, STATUS  # noqa: E402

# statuses added with request ids and the store budget (proto/flip.proto)
STATUSES = dict(STATUS)
STATUSES.update({15: "TYPE_MISMATCH", 16: "STORE_FULL", 17: "REQUEST_EXPIRED"})
# answers that say this attempt was not proposed, and nothing about earlier
# ones
NOT_PROPOSED = ("UNAVAILABLE", "NOT_LEADER", "NO_SPACE")


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
    def __init__(self, endpoints, name, op_timeout=2.0, source=None, request_ids=True,
                 attempt_timeout=1.5):
        self.endpoints = list(endpoints)
        self.name = name
        self.request_ids = request_ids
        self.client_id = os.urandom(16)  # one per Client, as the C library's handle
        self.write_seq = 0
        self.attempt_timeout = attempt_timeout
        self.resends = 0  # writes resent with their id after an ambiguous attempt
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
        status = None
        ambiguous = False  # an earlier attempt of this write may have applied
        resend = is_write
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
                wait = min(deadline, time.monotonic() + self.attempt_timeout) if resend \
                    else deadline
                while True:
                    resp = self._recv(wait)
                    if resp.get(1, [0])[0] == req_id:
                        break
            except (OSError, TimeoutError, ConnectionError):
                self.close(abort=True)
                if sent and is_write:
                    ambiguous = True
                    status = "LOST"
                    self.resends += 1
                    self.rr += 1  # the resend tries the next node first
                time.sleep(0.02)
                continue
            if 2 not in resp:
                return "ok", self.addr, resp, "OK"
            err = parse(resp[2][0])
            status = STATUSES.get(err.get(1, [0])[0], "?")
            if status == "NOT_LEADER" and 3 in err:
                target = err[3][0].decode()
                continue
            if status in NOT_PROPOSED:
                time.sleep(0.02)
                self.close()
                continue
            if status in ("LEADERSHIP_LOST", "INTERNAL") and is_write:
                ambiguous = True
                self.resends += 1
                time.sleep(0.05)
                self.close()
                continue
            if status == "LEADERSHIP_LOST":
                continue
            return "fail", self.addr, resp, status
        if ambiguous:
            # the deadline passed while an attempt's fate was open
            return "unknown", self.addr, None, status
        # every attempt was refused before it was proposed
        return "fail", self.addr, None, status or "TIMEOUT"

    def write(self, op_field, body, id_field):
        """A set (op_field 11) or delete (12) with a request id in field
        id_field (unless ids are off): (outcome, node, revision, status);
        the revision is the acked one, or on CAS_CONFLICT the one the
        server found (0: absent), which the checker holds the refused value
        against."""
        if self.request_ids:
            self.write_seq += 1
            body += field_bytes(id_field, field_bytes(1, self.client_id) +
                                field_varint(2, self.write_seq))
        outcome, node, resp, status = self.call(op_field, body, True)
        rev = None
        if outcome == "ok":
            rev = parse(resp[op_field][0]).get(1, [0])[0]
        elif status == "CAS_CONFLICT" and resp is not None:
            rev = parse(resp[2][0]).get(5, [0])[0]
        return outcome, node, rev, status

    # ---- operations ------------------------------------------------------

    def set(self, key, value, expected=None):
        body = field_bytes(1, key.encode()) + field_bytes(2, field_bytes(4, value.encode()))
        if expected is not None:
            body += field_varint(5, expected)
        return self.write(11, body, 6)

    def delete(self, key):
        return self.write(12, field_bytes(1, key.encode()), 5)

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

    def change_history(self, prefix, timeout=20.0):
        """Subscribes to `prefix` from revision 0 on this client's first
        endpoint and returns the events up to the first heartbeat (the node
        sends it once the catch-up is done) as checker subscriber records
        without sub, node and time: changes, or a resync snapshot when the
        node's change log no longer reaches back (docs/protocol.md section
        15). Raises on a lost connection or an error."""
        deadline = time.monotonic() + timeout
        self._connect(self.endpoints[0], deadline)
        self._send(field_varint(1, 2) + field_bytes(16, field_bytes(1, prefix.encode()) +
                                                   field_varint(2, 0)))
        out = []
        for _ in range(10000000):
            resp = self._recv(deadline)
            if 2 in resp:
                err = parse(resp[2][0])
                raise ConnectionError("subscribe: " + STATUSES.get(err.get(1, [0])[0], "?"))
            if 17 not in resp:
                continue  # the SubscribeResult
            ev = parse(resp[17][0])
            typ = {1: "begin", 2: "item", 3: "end", 4: "change", 5: "heartbeat"}.get(
                ev.get(1, [0])[0])
            rec = {"type": typ, "revision": ev.get(2, [0])[0]}
            if typ == "heartbeat":
                hb = parse(ev[6][0])
                rec.update({"applied": hb.get(2, [0])[0], "stale": bool(hb.get(6, [0])[0])})
                out.append(rec)
                return out
            if ev.get(4, [0])[0]:
                rec["resync"] = True
            flags = []
            for raw in ev.get(3, []):
                f = parse(raw)
                fl = {"key": f[1][0].decode(), "revision": f.get(3, [rec["revision"]])[0]}
                if f.get(8, [0])[0]:
                    fl["deleted"] = True
                else:
                    fl["value"] = _value_text(parse(f[2][0])) if 2 in f else None
                flags.append(fl)
            if flags:
                rec["flags"] = flags
            if typ is not None:
                out.append(rec)
        return out

    def status(self):
        outcome, node, resp, _ = self.call(15, b"", False)
        if outcome != "ok":
            return None
        st = parse(resp[15][0])
        return {"id": st.get(1, [0])[0], "role": st.get(2, [b""])[0].decode(),
                "leader": st.get(4, [0])[0], "applied": st.get(6, [0])[0],
                "commit": st.get(7, [0])[0]}
