#!/usr/bin/env python3
"""Exact subscription-stream checks, frame by frame, over the raw protocol.

The writes a test makes go through this helper too, so it knows every
change's revision (the truth, kept in an ACKED file of JSON lines). A
stream is then checked against that truth exactly (verify()): each CHANGE
must be the next revision after the subscriber's position that holds a
matching change, with exactly the matching changes of it (key, value or
deletion, revision, create_revision, reason); a snapshot must hold exactly
the state at its revision, in key order; a heartbeat must not pass a
matching change that was never sent. A skipped revision, a repeated one,
a change outside the prefixes, a dropped deletion or a silent gap fails.

usage:
  streamcheck.py write ADDR ACKED BATCHES
      BATCHES is JSON [[OP, ...], ...]; each batch is sent in one write, so
      the leader groups it into entries (different keys share one; a key
      repeated in the batch starts the next entry, at the next index). OP
      is ["set", KEY, VALUE] or ["set", KEY, VALUE, REASON] or ["del", KEY]
      or ["del", KEY, REASON]. Every answer must be OK. Appends one line per
      change to ACKED; prints the revisions of each batch.
  streamcheck.py reads ADDR N
      N linearizable gets one after another: N read-barrier log entries.
  streamcheck.py check ADDR ACKED --expect MODE [--prefix P]...
                 [--from R]... [--from-range A B] [--leader ADDR --live BATCHES]
      One subscriber per from-revision (--from-range: every R in A..B, B =
      "top" for the node's applied revision), all open at once. MODE:
        snapshot  no from_revision: a snapshot of the state, then live
        catchup   exactly the changes after R, then live (no snapshot)
        resync    an explicit resync snapshot, then live (R is compacted)
        ahead     R is ahead of the node: AHEAD_OF_NODE (id 0), then close
        wait      R is ahead of the node: the --live writes are made at
                  once; the node waits for them and sends what is after R
      With --live (not "ahead"), once every subscriber is live the batches
      are written to --leader and each subscriber must get exactly them.
  streamcheck.py follow ADDR [--prefix P]... [--from R]
      A long-lived subscriber: one JSON line per frame on stdout.
  streamcheck.py verify LOG ACKED [--prefix P]... [--from R]
                 [--resyncs N] [--applied REV]
      Checks a follow log against ACKED exactly; N resync snapshots are
      expected (default 0) and the log must be live at REV or later.

Exit status 0 when every check holds, 1 otherwise (one line says why).
Every socket operation has a timeout; every loop is bounded."""
import json
import socket
import sys
import time

from rawclient import STATUS, Conn, field_bytes, field_varint, frame, hello, parse

EVENT_TYPES = {1: "begin", 2: "item", 3: "end", 4: "change", 5: "heartbeat"}
READ_S = 20.0  # longest wait for one frame (AHEAD_OF_NODE takes >= 2 s)


class Failed(Exception):
    pass


# ---- the truth: every acknowledged change ----------------------------------


class Truth:
    """The acknowledged changes, replayed in revision order."""

    def __init__(self, path):
        self.changes = []  # (rev, key, value or None, reason, create_rev)
        rows = []
        try:
            for line in open(path):
                if line.strip():
                    rows.append(json.loads(line))
        except FileNotFoundError:
            pass
        rows.sort(key=lambda r: r["rev"])
        live = {}  # key -> create revision
        for r in rows:
            key = r["key"]
            if r["value"] is None:
                create = live.pop(key, None)
                if create is None:
                    raise Failed(f"ACKED deletes {key} at {r['rev']}, which did not exist")
            else:
                create = live.setdefault(key, r["rev"])
            self.changes.append((r["rev"], key, r["value"], r.get("reason"), create))
        self.top = self.changes[-1][0] if self.changes else 0

    def revisions_after(self, rev, prefixes):
        """Sorted revisions > rev holding a change under the prefixes."""
        return sorted({c[0] for c in self.changes if c[0] > rev and matches(c[1], prefixes)})

    def change_at(self, rev, prefixes):
        """{key: (value or None, reason, create_rev)} of the matching changes at rev."""
        return {c[1]: (c[2], c[3], c[4]) for c in self.changes if c[0] == rev and matches(c[1], prefixes)}

    def state_at(self, rev, prefixes):
        """{key: (value, reason, revision, create_rev)} as of rev."""
        state = {}
        for (r, key, value, reason, create) in self.changes:
            if r > rev:
                break
            if value is None:
                state.pop(key, None)
            else:
                state[key] = (value, reason, r, create)
        return {k: v for k, v in state.items() if matches(k, prefixes)}


def matches(key, prefixes):
    return not prefixes or any(key.startswith(p) for p in prefixes)


# ---- wire ------------------------------------------------------------------


def value_of(raw):
    v = parse(raw)
    if 4 in v:
        return v[4][0].decode()
    return {"other-type": sorted(v)}


def decode_flag(raw):
    f = parse(raw)
    out = {"key": f.get(1, [b""])[0].decode(), "revision": f.get(3, [None])[0],
           "create_revision": f.get(4, [None])[0], "deleted": bool(f.get(8, [0])[0])}
    if 2 in f:
        out["value"] = value_of(f[2][0])
    if 6 in f:
        out["reason"] = f[6][0].decode()
    return out


def decode_response(resp):
    """One Response as a JSON-able dict."""
    if resp is None:
        return {"type": "eof"}
    if 2 in resp:
        err = parse(resp[2][0])
        return {"type": "error", "id": resp.get(1, [0])[0],
                "status": STATUS.get(err.get(1, [0])[0], "?"),
                "message": err.get(2, [b""])[0].decode(errors="replace")}
    if 16 in resp:
        res = parse(resp[16][0])
        return {"type": "subscribed", "id": resp.get(1, [0])[0], "applied": res.get(2, [0])[0]}
    if 17 not in resp:
        return {"type": "other", "fields": sorted(resp)}
    ev = parse(resp[17][0])
    rec = {"type": EVENT_TYPES.get(ev.get(1, [0])[0], "?"), "revision": ev.get(2, [0])[0],
           "has_id": 1 in resp}
    if 4 in ev and ev[4][0]:
        rec["resync"] = True
        rec["reason"] = ev.get(5, [b""])[0].decode()
    if 3 in ev:
        rec["flags"] = [decode_flag(f) for f in ev[3]]
    if 6 in ev:
        hb = parse(ev[6][0])
        rec["applied"] = hb.get(2, [0])[0]
    return rec


def connect(addr):
    c = Conn(addr)
    c.send(hello())
    r = c.recv_frame()
    if r is None or 2 in r:
        raise Failed(f"{addr}: hello failed")
    return c


def read_event(c, timeout=READ_S):
    try:
        return decode_response(c.recv_sized(timeout)[1])
    except (ConnectionResetError, BrokenPipeError):
        return {"type": "eof"}
    except (TimeoutError, socket.timeout):
        raise Failed(f"no frame within {timeout} s")


def set_req(req_id, key, value, reason=None):
    body = field_bytes(1, key.encode()) + field_bytes(2, field_bytes(4, value.encode()))
    if reason is not None:
        body += field_bytes(3, reason.encode())
    return frame(field_varint(1, req_id) + field_bytes(11, body))


def del_req(req_id, key, reason=None):
    body = field_bytes(1, key.encode())
    if reason is not None:
        body += field_bytes(2, reason.encode())
    return frame(field_varint(1, req_id) + field_bytes(12, body))


def op_reason(op):
    """The REASON of ["set", KEY, VALUE, REASON] or ["del", KEY, REASON]."""
    n = 4 if op[0] == "set" else 3
    return op[n - 1] if len(op) >= n else None


def write_batches(addr, acked_path, batches):
    """Writes each batch in one send; returns [[rev, ...], ...]."""
    c = connect(addr)
    out = []
    req_id = 100
    with open(acked_path, "a") as acked:
        for batch in batches:
            data = b""
            ids = {}
            for op in batch:
                req_id += 1
                ids[req_id] = op
                data += set_req(req_id, op[1], op[2], op_reason(op)) if op[0] == "set" else del_req(req_id, op[1], op_reason(op))
            c.send(data)
            revs = {}
            for _ in range(len(batch)):
                resp = c.recv_frame()
                if resp is None:
                    raise Failed("the node closed the connection during a write")
                rid = resp.get(1, [0])[0]
                op = ids.get(rid)
                if op is None:
                    raise Failed(f"answer to unknown request id {rid}")
                if 2 in resp:
                    st = decode_response(resp)
                    raise Failed(f"{op} answered {st['status']}: {st['message']}")
                res = parse(resp[11 if op[0] == "set" else 12][0])
                revs[rid] = res.get(1, [0])[0]
                if op[0] == "del" and not res.get(2, [0])[0]:
                    raise Failed(f"{op}: the flag did not exist")
            for rid, op in ids.items():
                acked.write(json.dumps({"rev": revs[rid], "key": op[1],
                                        "value": op[2] if op[0] == "set" else None,
                                        "reason": op_reason(op)}) + "\n")
            out.append([revs[rid] for rid in ids])
    c.s.close()
    return out


def reads(addr, n):
    c = connect(addr)
    for i in range(n):
        c.send(frame(field_varint(1, 1000 + i) + field_bytes(13, field_bytes(1, b"streamcheck.none"))))
        st = decode_response(c.recv_frame())
        if st.get("status") != "NOT_FOUND":
            raise Failed(f"linearizable get {i}: {st}")
    c.s.close()


# ---- the exact check --------------------------------------------------------


def flag_view(f):
    """What a CHANGE flag says, in the Truth.change_at form."""
    if f["deleted"]:
        if "value" in f:
            return ("deleted flag with a value",)
        return (None, f.get("reason"), f["create_revision"])
    if "value" not in f:
        return ("neither value nor deleted",)
    return (f["value"], f.get("reason"), f["create_revision"])


def verify(events, truth, prefixes, from_rev, resyncs=0):
    """Checks a sequence of events (decode_response dicts, after the
    SubscribeResult) exactly; raises Failed. Returns the last position."""
    pos = from_rev  # None: a snapshot must come first
    seen_resyncs = 0
    i = 0
    while i < len(events):
        ev = events[i]
        t = ev["type"]
        where = f"event {i} ({t} {ev.get('revision')})"
        if ev.get("has_id"):
            raise Failed(f"{where} carries a request id")
        if t == "begin":
            if ev.get("resync"):
                seen_resyncs += 1
                if not ev.get("reason"):
                    raise Failed(f"{where}: a resync without a reason")
            elif pos is not None:
                raise Failed(f"{where}: a snapshot not marked resync after position {pos}")
            s = ev["revision"]
            items = []
            i += 1
            while i < len(events) and events[i]["type"] == "item":
                if events[i]["revision"] != s:
                    raise Failed(f"item at {events[i]['revision']} inside the snapshot at {s}")
                items.append(events[i]["flags"][0])
                i += 1
            if i == len(events) or events[i]["type"] != "end" or events[i]["revision"] != s:
                raise Failed(f"snapshot at {s} does not end with SNAPSHOT_END({s})")
            keys = [f["key"] for f in items]
            if keys != sorted(keys) or len(set(keys)) != len(keys):
                raise Failed(f"snapshot at {s}: keys not in order or repeated: {keys}")
            if pos is not None and s < pos:
                raise Failed(f"resync snapshot at {s} goes back from {pos}")
            got = {f["key"]: (f.get("value"), f.get("reason"), f["revision"], f["create_revision"]) for f in items}
            if any(f["deleted"] for f in items):
                raise Failed(f"snapshot at {s} holds a deleted flag")
            want = truth.state_at(s, prefixes)
            if got != want:
                raise Failed(f"snapshot at {s}: got {got}, want {want}")
            pos = s
        elif t == "change":
            if pos is None:
                raise Failed(f"{where}: a change before any snapshot")
            nxt = truth.revisions_after(pos, prefixes)
            r = ev["revision"]
            if not nxt or r != nxt[0]:
                raise Failed(f"{where}: after {pos} the next matching change is at "
                             f"{nxt[0] if nxt else 'none'}, got {r}")
            if any(f["revision"] != r for f in ev["flags"]):
                raise Failed(f"{where}: a flag's revision differs from the event's")
            got = {}
            for f in ev["flags"]:
                if f["key"] in got:
                    raise Failed(f"{where}: key {f['key']} twice")
                got[f["key"]] = flag_view(f)
            want = truth.change_at(r, prefixes)
            if got != want:
                raise Failed(f"{where}: got {got}, want {want}")
            pos = r
        elif t == "heartbeat":
            if pos is None:
                raise Failed(f"{where}: a heartbeat before the snapshot")
            missed = [r for r in truth.revisions_after(pos, prefixes) if r <= ev["applied"]]
            if missed:
                raise Failed(f"{where}: heartbeat at {ev['applied']} but matching changes at "
                             f"{missed} were never sent after {pos} (silent gap)")
            pos = max(pos, ev["applied"])
        else:
            raise Failed(f"{where}: {ev}")
        i += 1
    if seen_resyncs != resyncs:
        raise Failed(f"{seen_resyncs} resync snapshots, want {resyncs}")
    return pos


class Sub:
    def __init__(self, addr, prefixes, from_rev):
        self.prefixes = prefixes
        self.from_rev = from_rev
        self.c = connect(addr)
        body = b"".join(field_bytes(1, p.encode()) for p in prefixes)
        if from_rev is not None:
            body += field_varint(2, from_rev)
        self.c.send(frame(field_varint(1, 7) + field_bytes(16, body)))
        first = read_event(self.c)
        if first["type"] != "subscribed" or first["id"] != 7:
            raise Failed(f"subscribe from {from_rev}: {first}")
        self.applied = first["applied"]
        self.events = []

    def name(self):
        return f"subscriber {self.prefixes or ['']} from {self.from_rev}"

    def read_until(self, done, limit=100000):
        """Appends events until done(ev) (that one included)."""
        for _ in range(limit):
            ev = read_event(self.c)
            self.events.append(ev)
            if ev["type"] in ("error", "eof", "other", "?"):
                raise Failed(f"{self.name()}: {ev}")
            if done(ev):
                return
        raise Failed(f"{self.name()}: no end after {limit} events")


def live_top(leader, batches, acked_path):
    """Writes the batches; returns the highest revision written."""
    revs = write_batches(leader, acked_path, batches)
    return max(max(b) for b in revs)


def check(args):
    truth = Truth(args.acked)
    mode = args.expect
    if args.from_range:
        lo = int(args.from_range[0])
        if args.from_range[1] == "top":
            probe = Sub(args.addr, args.prefix, None)
            hi = probe.applied
            probe.c.s.close()
        else:
            hi = int(args.from_range[1])
        froms = (args.__dict__["from"] or []) + list(range(lo, hi + 1))
    elif mode == "snapshot":
        froms = [None]
    else:
        froms = args.__dict__["from"] or [None]
    subs = [Sub(args.addr, args.prefix, f) for f in froms]
    if mode == "ahead":
        for s in subs:
            if s.applied >= s.from_rev:
                raise Failed(f"{s.name()}: the node is at {s.applied}, not behind")
            ev = read_event(s.c)
            if ev["type"] != "error" or ev["status"] != "AHEAD_OF_NODE" or ev["id"] != 0:
                raise Failed(f"{s.name()}: want AHEAD_OF_NODE with id 0, got {ev}")
            ev = read_event(s.c)
            if ev["type"] != "eof":
                raise Failed(f"{s.name()}: not closed after AHEAD_OF_NODE: {ev}")
        print(f"ok: {len(subs)} subscribers ahead of the node got AHEAD_OF_NODE and were closed")
        return
    if mode == "wait":
        for s in subs:
            if s.applied >= s.from_rev:
                raise Failed(f"{s.name()}: the node is at {s.applied}, not behind")
        top = live_top(args.leader, json.loads(args.live), args.acked)
        truth = Truth(args.acked)
        for s in subs:
            s.read_until(lambda ev: ev["type"] == "heartbeat" and ev["applied"] >= top)
            verify(s.events, truth, s.prefixes, s.from_rev)
            if s.events[0]["type"] == "heartbeat" and s.events[0]["applied"] < s.from_rev:
                raise Failed(f"{s.name()}: live at {s.events[0]['applied']} < from_revision")
        print(f"ok: {len(subs)} waiting subscribers got exactly the changes after their revision")
        return
    for s in subs:
        s.read_until(lambda ev: ev["type"] == "heartbeat")
        if mode == "catchup" and any(e["type"] == "begin" for e in s.events):
            raise Failed(f"{s.name()}: a snapshot instead of the changes after {s.from_rev}")
        if s.events[-1]["applied"] < truth.top:
            raise Failed(f"{s.name()}: live at {s.events[-1]['applied']}, below acked {truth.top}")
        verify(s.events, truth, s.prefixes, s.from_rev, 1 if mode == "resync" else 0)
    n = sum(1 for s in subs for e in s.events if e["type"] == "change")
    print(f"ok: {len(subs)} subscribers ({mode}, from {froms[0]}, .., {froms[-1]}) got exactly "
          f"what they should ({n} change events in all)")
    if args.live:
        top = live_top(args.leader, json.loads(args.live), args.acked)
        truth = Truth(args.acked)
        for s in subs:
            s.read_until(lambda ev: ev["type"] == "heartbeat" and ev["applied"] >= top)
            verify(s.events, truth, s.prefixes, s.from_rev, 1 if mode == "resync" else 0)
        print(f"ok: then each got exactly the live changes up to {top}")


def follow(args):
    c = connect(args.addr)
    body = b"".join(field_bytes(1, p.encode()) for p in args.prefix)
    if args.__dict__["from"] is not None:
        body += field_varint(2, args.__dict__["from"])
    c.send(frame(field_varint(1, 7) + field_bytes(16, body)))
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            ev = decode_response(c.recv_sized(1.0)[1])
        except (TimeoutError, socket.timeout):
            continue
        except (ConnectionResetError, BrokenPipeError):
            ev = {"type": "eof"}
        print(json.dumps(ev), flush=True)
        if ev["type"] == "eof":
            return


def verify_log(args):
    truth = Truth(args.acked)
    events = [json.loads(line) for line in open(args.log) if line.strip()]
    if not events or events[0]["type"] != "subscribed":
        raise Failed(f"{args.log}: no SubscribeResult first")
    pos = verify(events[1:], truth, args.prefix, args.__dict__["from"], args.resyncs)
    if args.applied is not None and (pos is None or pos < args.applied):
        raise Failed(f"{args.log}: the stream reached {pos}, not {args.applied}")
    print(f"ok: {args.log}: exact against {len(truth.changes)} acked changes, "
          f"{args.resyncs} resync(s), live at {pos}")


def main():
    import argparse
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    w = sp.add_parser("write")
    w.add_argument("addr")
    w.add_argument("acked")
    w.add_argument("batches")
    r = sp.add_parser("reads")
    r.add_argument("addr")
    r.add_argument("n", type=int)
    for name in ("check", "follow", "verify"):
        p = sp.add_parser(name)
        p.add_argument("log" if name == "verify" else "addr")
        if name != "follow":
            p.add_argument("acked")
        p.add_argument("--prefix", action="append", default=[])
        if name == "check":
            p.add_argument("--from", type=int, action="append")
            p.add_argument("--expect", required=True,
                           choices=["snapshot", "catchup", "resync", "ahead", "wait"])
            p.add_argument("--from-range", nargs=2)
            p.add_argument("--leader")
            p.add_argument("--live")
        else:
            p.add_argument("--from", type=int)
        if name == "follow":
            p.add_argument("--seconds", type=float, default=120)
        if name == "verify":
            p.add_argument("--resyncs", type=int, default=0)
            p.add_argument("--applied", type=int)
    a = ap.parse_args()
    try:
        if a.cmd == "write":
            for revs in write_batches(a.addr, a.acked, json.loads(a.batches)):
                print(" ".join(str(x) for x in revs))
        elif a.cmd == "reads":
            reads(a.addr, a.n)
        elif a.cmd == "check":
            check(a)
        elif a.cmd == "follow":
            follow(a)
        else:
            verify_log(a)
    except Failed as e:
        print(f"FAILED: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
