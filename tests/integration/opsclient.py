#!/usr/bin/env python3
"""Raw-protocol clients for the operation tests (test_ops_*): exact
statuses, frame and connection limits, reads and writes around a lost
leader. Every socket has a timeout and every loop is bounded; each mode
prints JSON (one object per line) that the test script checks.

usage:
  opsclient.py req ADDR OP KEY [VALUE] [--cas N] [--stale]
        one request (OP: set, del, get, list; list takes KEY as prefix) on
        a fresh Hello'd connection: {"status", "revision", "current_revision",
        "leader_id", "leader_address", "value", "keys", ...}
  opsclient.py status ADDR
        the node's status: {"status", "role", "leader_id", "term", "applied"}
  opsclient.py frame ADDR SIZE [--prefix-first]
        a valid Status request padded (unknown field) to a payload of
        exactly SIZE bytes: {"status", "id", "closed"}. --prefix-first:
        send the length and 64 bytes, and the rest only if no answer came
        within 10 s (a node answers an oversized frame on its prefix)
  opsclient.py conns ADDR KEEP
        KEEP Hello'd connections (retried while refused), then one more that
        sends nothing: {"kept", "extra", "extra_id", "extra_closed"}; then
        one of the KEEP is closed and a new connection must be accepted
        again (bounded retries): {"after_close"}
  opsclient.py pipe ADDR KEY GO_FILE
        Hello, print {"ready"}, wait for GO_FILE, then send in one write:
        status, linearizable get KEY, linearizable list KEY, stale get KEY;
        print {"sent"} and then every answer: {"status": {...}, "get": {...},
        "list": {...}, "stale": {...}}
  opsclient.py unread ADDR N PREFIX GO_FILE
        N stale lists of PREFIX sent at once, none read until GO_FILE
        exists: {"sent"}, then {"answered", "of", "statuses"} (each id once)
  opsclient.py same ADDR KEY N
        N writes of one key pipelined (each its own log entry):
        {"ok", "of"}
  opsclient.py burst ADDR CONNS WINDOW PREFIX STOP_FILE PROGRESS_FILE
        CONNS connections each keep WINDOW writes with request ids in
        flight to distinct keys PREFIX<c>.<seq> until STOP_FILE exists,
        then wait (bounded) for the outstanding answers; one line per
        write: {"key", "value", "status", "revision"} ("NONE": no answer).
        Once STOP_FILE.extra exists, one more connection sends WINDOW
        writes at once and STOP_FILE.extra.sent is written
  opsclient.py verify RESULTS ENDPOINTS PREFIX [--forbid STATUS,...]
        reads every flag under PREFIX linearizably (following redirects)
        and checks each write of RESULTS: OK must be there with its value
        and revision, NOT_LEADER / UNAVAILABLE must be absent (not applied),
        LEADERSHIP_LOST / NONE may be either; any other status fails.
        Prints {"counts", "violations"}; exit 1 on a violation
  opsclient.py proxy PORT NODES CONTROL
        tests/chaos/proxy.py's LinkProxy in front of the raft ports of
        NODES (comma-separated ids): CONTROL holds "heal", "isolate I"
        (node I's links paused) or "reset I" (closed, and every new one,
        so nothing sent across the cut arrives later), "mute I" or
        "mute-reset I" (the same for what the others send to I only: I's
        own messages still arrive); each change is
        applied, then copied to CONTROL.ack; CONTROL.links lists the links
        open end to end, one "SRC>DST" per line
"""
import json
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rawclient import (STATUS, Conn, decode_flag, field_bytes,  # noqa: E402
                       field_varint, frame, hello, parse, varint)

WAIT_S = 30
STATUS[15] = "TYPE_MISMATCH"
STATUS[16] = "STORE_FULL"
OPS = {"set": 11, "del": 12, "get": 13, "list": 14, "status": 15}


def out(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def wait_file(path, seconds=WAIT_S):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.path.exists(path)


def hello_conn(addr):
    c = Conn(addr)
    try:
        c.send(hello())
        r = c.recv_frame()
    except (ConnectionResetError, BrokenPipeError):
        return c, "RESET"
    return c, answer(r)["status"]


def opened(addr):
    """A Hello'd connection, or None (and a HELLO_<status> line)."""
    c, st = hello_conn(addr)
    if st != "OK":
        out({"status": "HELLO_" + st})
        return None
    return c


def request(req_id, op, body):
    return frame(field_varint(1, req_id) + field_bytes(OPS[op], body))


def body_of(op, key, value=None, cas=None, stale=False, rid=None):
    """The body of a set, del, get or list (list: key is the prefix)."""
    b = field_bytes(1, key.encode())
    if op == "set":
        b += field_bytes(2, field_bytes(4, value.encode()))
        if cas is not None:
            b += field_varint(5, cas)
        if rid is not None:
            b += field_bytes(6, rid)
    elif op == "del":
        if cas is not None:
            b += field_varint(4, cas)
        if rid is not None:
            b += field_bytes(5, rid)
    elif stale:
        b += field_varint(2, 1)
    if op == "list":
        b += field_varint(4, 10000)
    return b


def answer(resp):
    """A Response as a flat dict: status, id and the fields tests check."""
    if resp is None:
        return {"status": "EOF"}
    a = {"status": "OK", "id": resp.get(1, [0])[0]}
    if 2 in resp:
        err = parse(resp[2][0])
        a["status"] = STATUS.get(err.get(1, [0])[0], "?")
        a["message"] = err.get(2, [b""])[0].decode(errors="replace")
        if 3 in err:
            a["leader_address"] = err[3][0].decode()
        if 4 in err:
            a["leader_id"] = err[4][0]
        if 5 in err:
            a["current_revision"] = err[5][0]
        return a
    if 11 in resp or 12 in resp:
        res = parse((resp.get(11) or resp.get(12))[0])
        a["revision"] = res.get(1, [0])[0]
    if 13 in resp:
        res = parse(resp[13][0])
        f = decode_flag(res[1][0])
        a["value"] = f.get("value")
        a["revision"] = f.get("revision")
        a["applied"] = res.get(2, [0])[0]
    if 14 in resp:
        res = parse(resp[14][0])
        flags = [decode_flag(f) for f in res.get(1, [])]
        a["keys"] = {f["key"]: [f.get("value"), f.get("revision")] for f in flags}
        a["more"] = bool(res.get(3, [0])[0])
    if 15 in resp:
        res = parse(resp[15][0])
        a["node_id"] = res.get(1, [0])[0]
        a["role"] = res.get(2, [b""])[0].decode()
        a["term"] = res.get(3, [0])[0]
        a["leader_id"] = res.get(4, [0])[0]
        a["applied"] = res.get(6, [0])[0]
    return a


def closed(c, seconds=10):
    """True once the node closes the connection (EOF or reset)."""
    c.s.settimeout(seconds)
    return c.closed_by_peer()


# ---- modes ---------------------------------------------------------------


def mode_req(addr, op, key, rest):
    value = None
    cas = None
    stale = False
    i = 0
    while i < len(rest):
        if rest[i] == "--cas":
            cas = int(rest[i + 1])
            i += 2
        elif rest[i] == "--stale":
            stale = True
            i += 1
        else:
            value = rest[i]
            i += 1
    c = opened(addr)
    if c is None:
        return 1
    c.send(request(2, op, body_of(op, key, value, cas, stale)))
    c.s.settimeout(WAIT_S)
    out(answer(c.recv_frame()))
    return 0


def mode_status(addr):
    c = opened(addr)
    if c is None:
        return 1
    c.send(request(2, "status", b""))
    c.s.settimeout(5)
    out(answer(c.recv_frame()))
    return 0


def mode_frame(addr, size, prefix_first):
    base = field_varint(1, 5) + field_bytes(15, b"")
    tag = varint((99 << 3) | 2)
    pad = size - len(base) - len(tag) - 1
    while pad >= 0 and len(base) + len(tag) + len(varint(pad)) + pad != size:
        pad -= 1
    payload = base + tag + varint(pad) + b"x" * pad
    assert len(payload) == size, (len(payload), size)
    c = opened(addr)
    if c is None:
        return 1
    c.s.settimeout(WAIT_S)
    whole = frame(payload)
    if not prefix_first:
        c.send(whole)
        r = c.recv_frame()
    else:
        # Over the limit the node answers on the length prefix and closes:
        # the rest is not sent, so no reset can destroy its answer.
        c.send(whole[:68])
        try:
            c.s.settimeout(10)
            r = c.recv_frame()
        except (TimeoutError, socket.timeout):
            c.send(whole[68:])  # not refused on the prefix: what then?
            c.s.settimeout(WAIT_S)
            r = c.recv_frame()
    a = answer(r)
    a["closed"] = closed(c, 5) if a["status"] != "OK" else not _alive(c)
    out(a)
    return 0


def _alive(c):
    """The connection still answers a request."""
    try:
        c.send(request(9, "status", b""))
        c.s.settimeout(WAIT_S)
        return answer(c.recv_frame())["status"] == "OK"
    except OSError:
        return False


def mode_conns(addr, keep):
    conns = []
    for _ in range(keep):
        for _attempt in range(100):  # a just-closed probe may still count
            c, st = hello_conn(addr)
            if st == "OK":
                conns.append(c)
                break
            c.s.close()
            time.sleep(0.1)
    res = {"kept": len(conns)}
    extra = Conn(addr)
    extra.s.settimeout(10)
    try:
        a = answer(extra.recv_frame())
    except (TimeoutError, socket.timeout):
        # not refused: does it serve?
        extra.send(hello())
        extra.s.settimeout(WAIT_S)
        a = answer(extra.recv_frame())
        a["unprompted"] = False
    res["extra"] = a["status"]
    res["extra_id"] = a.get("id")
    res["extra_closed"] = closed(extra, 5) if a["status"] != "OK" else False
    conns.pop(0).s.close()
    after = "REFUSED"
    for _attempt in range(100):  # until the node has seen the close
        c, st = hello_conn(addr)
        if st == "OK":
            after = "OK"
            conns.append(c)
            break
        c.s.close()
        time.sleep(0.1)
    res["after_close"] = after
    out(res)
    for c in conns:
        c.s.close()
    return 0


def mode_pipe(addr, key, go):
    c = opened(addr)
    if c is None:
        return 1
    out({"ready": True})
    if not wait_file(go, 120):
        out({"status": "NO_GO"})
        return 1
    names = {2: "status", 3: "get", 4: "list", 5: "stale"}
    c.send(request(2, "status", b"") + request(3, "get", body_of("get", key)) +
           request(4, "list", body_of("list", key)) +
           request(5, "get", body_of("get", key, stale=True)))
    out({"sent": True})
    res = {}
    c.s.settimeout(WAIT_S)
    try:
        while len(res) < len(names):
            a = answer(c.recv_frame())
            if a["status"] == "EOF":
                break
            res[names.get(a.get("id"), "other")] = a
    except (TimeoutError, socket.timeout):
        pass
    out(res)
    return 0


def mode_unread(addr, n, prefix, go):
    c = opened(addr)
    if c is None:
        return 1
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    c.send(b"".join(request(10 + i, "list", body_of("list", prefix, stale=True))
                    for i in range(n)))
    out({"sent": n})
    if not wait_file(go, 120):
        out({"status": "NO_GO"})
        return 1
    seen = {}
    statuses = {}
    c.s.settimeout(WAIT_S)
    try:
        while len(seen) < n:
            a = answer(c.recv_frame())
            if a["status"] == "EOF":
                break
            seen[a.get("id")] = seen.get(a.get("id"), 0) + 1
            statuses[a["status"]] = statuses.get(a["status"], 0) + 1
    except (OSError, TimeoutError) as e:
        statuses[type(e).__name__] = 1
    once = sum(1 for i in range(n) if seen.get(10 + i) == 1)
    out({"answered": once, "of": n, "statuses": statuses,
         "largest": getattr(c, "largest", 0)})
    return 0


def mode_same(addr, key, n):
    c = opened(addr)
    if c is None:
        return 1
    c.send(b"".join(request(10 + i, "set", body_of("set", key, str(i))) for i in range(n)))
    ok = 0
    c.s.settimeout(WAIT_S)
    for _ in range(n):
        ok += answer(c.recv_frame())["status"] == "OK"
    out({"ok": ok, "of": n})
    return 0


class Burst:
    """One connection of the burst: keeps WINDOW writes in flight."""

    def __init__(self, addr, n, prefix, window):
        self.c, st = hello_conn(addr)
        if st != "OK":
            raise SystemExit("hello failed: " + st)
        self.c.s.setblocking(False)
        self.client_id = os.urandom(16)
        self.prefix = "%s%d." % (prefix, n)
        self.window = window
        self.seq = 0
        self.pending = {}  # request id -> key
        self.outbuf = b""
        self.inbuf = b""
        self.open = True

    def fill(self):
        while self.open and len(self.pending) < self.window:
            self.seq += 1
            key = "%s%d" % (self.prefix, self.seq)
            rid = field_bytes(1, self.client_id) + field_varint(2, self.seq)
            self.outbuf += request(self.seq, "set", body_of("set", key, str(self.seq), rid=rid))
            self.pending[self.seq] = key

    def flush(self):
        if self.outbuf and self.open:
            try:
                n = self.c.s.send(self.outbuf)
                self.outbuf = self.outbuf[n:]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.open = False

    def read(self, results):
        try:
            chunk = self.c.s.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.open = False
            return
        self.inbuf += chunk
        while len(self.inbuf) >= 4:
            (ln,) = struct.unpack(">I", self.inbuf[:4])
            if len(self.inbuf) < 4 + ln:
                break
            a = answer(parse(self.inbuf[4:4 + ln]))
            self.inbuf = self.inbuf[4 + ln:]
            key = self.pending.pop(a.get("id"), None)
            if key is None:
                continue  # id 0: the node is closing the connection
            results.append({"key": key, "value": key.rsplit(".", 1)[1],
                            "status": a["status"], "revision": a.get("revision")})


def mode_burst(addr, conns, window, prefix, stop, progress):
    bursts = [Burst(addr, i, prefix, window) for i in range(conns)]
    results = []
    reported = 0
    hard = time.monotonic() + 120
    stopped_at = None
    extra = None
    while time.monotonic() < hard:
        if extra is None and os.path.exists(stop + ".extra"):
            # one more connection, its writes sent after the test cut the
            # node off: the node proposes them alone
            extra = Burst(addr, conns, prefix, window)
            bursts.append(extra)
            extra.fill()
            while extra.outbuf and extra.open:
                extra.c.s.setblocking(True)
                extra.flush()
            extra.c.s.setblocking(False)
            with open(stop + ".extra.sent", "w") as f:
                f.write("sent %d\n" % len(extra.pending))
        stopping = os.path.exists(stop)
        if stopping and stopped_at is None:
            stopped_at = time.monotonic()
        if stopping and (all(not b.pending or not b.open for b in bursts) or
                         time.monotonic() - stopped_at > WAIT_S):
            break
        for b in bursts:
            if not stopping:
                b.fill()
            b.flush()
        rd = [b.c.s for b in bursts if b.open]
        wr = [b.c.s for b in bursts if b.open and b.outbuf]
        if not rd:
            if stopping:
                break
            time.sleep(0.01)
            continue
        r, _, _ = select.select(rd, wr, [], 0.02)
        for b in bursts:
            if b.c.s in r:
                b.read(results)
        ok = sum(1 for x in results if x["status"] == "OK")
        if ok >= reported + 20:
            reported = ok
            with open(progress + ".tmp", "w") as f:
                f.write("acks %d\n" % ok)
            os.replace(progress + ".tmp", progress)
    for b in bursts:
        for key in b.pending.values():
            results.append({"key": key, "value": key.rsplit(".", 1)[1],
                            "status": "NONE", "revision": None})
    for x in results:
        out(x)
    return 0


def linearizable_list(endpoints, prefix):
    """Every flag under prefix, read linearizably, following redirects."""
    deadline = time.monotonic() + WAIT_S
    eps = list(endpoints)
    i = 0
    last = None
    while time.monotonic() < deadline:
        addr = eps[i % len(eps)]
        i += 1
        try:
            c, st = hello_conn(addr)
            if st != "OK":
                continue
            flags = {}
            after = None
            while True:
                body = body_of("list", prefix)
                if after is not None:
                    body += field_bytes(3, after.encode())
                c.send(request(2, "list", body))
                c.s.settimeout(WAIT_S)
                a = answer(c.recv_frame())
                if a["status"] != "OK":
                    break
                flags.update(a["keys"])
                if not a["more"] or not a["keys"]:
                    return flags
                after = max(a["keys"])
            last = a
            if a["status"] == "NOT_LEADER" and a.get("leader_address"):
                eps.insert(i % (len(eps) + 1), a["leader_address"])
                continue
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise SystemExit("no linearizable list within %d s: %s" % (WAIT_S, last))


def mode_verify(results_file, endpoints, prefix, forbid):
    with open(results_file) as f:
        writes = [json.loads(line) for line in f if line.strip()]
    flags = linearizable_list(endpoints.split(","), prefix)
    counts = {}
    bad = []
    for w in writes:
        st = w["status"]
        counts[st] = counts.get(st, 0) + 1
        got = flags.get(w["key"])
        if st in forbid:
            bad.append(dict(w, why="status %s is not allowed here" % st))
        elif st == "OK":
            if got != [w["value"], w["revision"]]:
                bad.append(dict(w, why="acknowledged but stored as %r" % (got,)))
        elif st in ("NOT_LEADER", "UNAVAILABLE"):
            if got is not None:
                bad.append(dict(w, why="answered 'not applied' but stored as %r" % (got,)))
        elif st not in ("LEADERSHIP_LOST", "NONE"):
            bad.append(dict(w, why="unexpected status"))
    out({"counts": counts, "writes": len(writes), "stored": len(flags),
         "violations": len(bad), "examples": bad[:5]})
    return 1 if bad else 0


def mode_proxy(port, nodes, control):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos"))
    from proxy import LinkProxy

    class OneWay(LinkProxy):
        """Blocks (src, dst) pairs one way: libraft sends each node's
        messages on that node's own connection, so a link carries one
        direction of traffic."""

        def _open(self, src, dst):
            return (src, dst) not in self.blocked

        def _apply(self, pairs, reset=False):
            self.blocked = pairs
            self.reset = reset
            for (src, dst, ev, conns) in list(self.links):
                if (src, dst) in pairs:
                    ev.clear()
                    if reset:
                        for w in conns:
                            w.transport.abort()
                else:
                    ev.set()

    p = OneWay(nodes, port)
    p.start()
    applied = None
    with open(control + ".ack", "w") as f:
        f.write("started\n")
    links = None
    while True:
        # the raft links open end to end, "SRC>DST" per line
        now = sorted("%d>%d" % (src, dst) for (src, dst, gate, conns) in list(p.links)
                     if gate.is_set() and len(conns) == 2)
        if now != links:
            links = now
            with open(control + ".links.tmp", "w") as f:
                f.write("".join(x + "\n" for x in links))
            os.replace(control + ".links.tmp", control + ".links")
        try:
            with open(control) as f:
                want = f.read().strip()
        except OSError:
            want = "heal"
        if want != applied:
            words = want.split()
            if words and words[0] in ("isolate", "reset"):
                p.set_blocked(p.isolate(int(words[1])), reset=words[0] == "reset")
            elif words and words[0] in ("mute", "mute-reset"):
                n = int(words[1])
                p.set_blocked({(o, n) for o in nodes if o != n},
                              reset=words[0] == "mute-reset")
            else:
                p.heal()
            time.sleep(0.05)  # set_blocked runs on the proxy's own loop
            applied = want
            with open(control + ".ack.tmp", "w") as f:
                f.write(want + "\n")
            os.replace(control + ".ack.tmp", control + ".ack")
        time.sleep(0.02)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode = argv[1]
    if mode == "req":
        return mode_req(argv[2], argv[3], argv[4], argv[5:])
    if mode == "status":
        return mode_status(argv[2])
    if mode == "frame":
        return mode_frame(argv[2], int(argv[3]), argv[4:] == ["--prefix-first"])
    if mode == "conns":
        return mode_conns(argv[2], int(argv[3]))
    if mode == "pipe":
        return mode_pipe(argv[2], argv[3], argv[4])
    if mode == "unread":
        return mode_unread(argv[2], int(argv[3]), argv[4], argv[5])
    if mode == "same":
        return mode_same(argv[2], argv[3], int(argv[4]))
    if mode == "burst":
        return mode_burst(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6], argv[7])
    if mode == "verify":
        forbid = argv[6].split(",") if len(argv) > 6 and argv[5] == "--forbid" else []
        return mode_verify(argv[2], argv[3], argv[4], forbid)
    if mode == "proxy":
        return mode_proxy(int(argv[2]), [int(x) for x in argv[3].split(",")], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
