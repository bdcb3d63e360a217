#!/usr/bin/env python3
"""Checks of docs/protocol.md against a live cluster, one per answer the
document gives to a question the 2026-12-07 conformance review asked (its
D1-D5 and A1-A21), over raw frames (rawclient.py).

usage: conformance.py LEADER_ADDR FOLLOWER_ADDR MAX_FRAME

Prints one "ok:"/"FAILED:" line per check; exit status 1 if any failed.
Every read has a timeout and every loop a bound.
"""
import socket
import struct
import sys
import time

from rawclient import (Conn, STATUS, field_bytes, field_varint, frame, hello, parse, varint)

FAILED = []


def check(cond, what):
    print(("ok: " if cond else "FAILED: ") + what, flush=True)
    if not cond:
        FAILED.append(what)
    return cond


class Raw(Conn):
    """A connection that tells a quiet socket from a closed one."""

    def __init__(self, addr):
        super().__init__(addr)
        self.largest = 0

    def recv_raw(self, timeout=5.0):
        """Next frame as (payload length, dict), or (None, None) at EOF or
        reset; TimeoutError when nothing came within `timeout`."""
        deadline = time.monotonic() + timeout
        self.s.settimeout(0.5)
        while True:
            try:
                return self.recv_sized(max(0.0, deadline - time.monotonic()))
            except socket.timeout:
                if time.monotonic() > deadline:
                    raise TimeoutError("no frame")
            except (ConnectionResetError, BrokenPipeError):
                return None, None


def rid(resp):
    return resp.get(1, [None])[0] if resp is not None else None


def err_of(resp):
    if resp is None or 2 not in resp:
        return None
    e = parse(resp[2][0])
    return {"status": STATUS.get(e.get(1, [0])[0], "?"),
            "message": e.get(2, [b""])[0].decode(errors="replace"),
            "resume": e.get(6, [None])[0]}


def st(resp):
    if resp is None:
        return "EOF"
    e = err_of(resp)
    return e["status"] if e else "OK"


def call(c, req_id, op, body, timeout=5.0):
    """Sends Request{id, op: body} and returns the Response with that id."""
    c.send(frame(field_varint(1, req_id) + field_bytes(op, body)))
    return answer(c, req_id, timeout)


def answer(c, req_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, resp = c.recv_raw(max(0.1, deadline - time.monotonic()))
        if resp is None:
            return None
        if 17 not in resp and rid(resp) == req_id:
            return resp
    raise TimeoutError(f"no answer to request {req_id}")


def connect(addr, name=b"conformance"):
    c = Raw(addr)
    r = call(c, 1, 10, field_varint(1, 1) + field_bytes(2, name))
    assert st(r) == "OK", "hello failed"
    return c


def sval(text):
    return field_bytes(4, text)


def jval(text):
    return field_bytes(5, text)


def set_body(key, value, actor=None, reason=None):
    body = field_bytes(1, key) + field_bytes(2, value)
    if reason is not None:
        body += field_bytes(3, reason)
    if actor is not None:
        body += field_bytes(4, actor)
    return body


def result(resp, op):
    return parse(resp[op][0]) if resp is not None and op in resp else {}


def flag_of(raw):
    f = parse(raw)
    out = {}
    names = {1: "key", 3: "revision", 4: "create_revision", 5: "actor", 6: "reason",
             7: "time_ms", 8: "deleted"}
    for num, name in names.items():
        if num in f:
            v = f[num][0]
            out[name] = v.decode() if isinstance(v, bytes) else v
    if 2 in f:
        out["value"] = parse(f[2][0])
    return out


def get_flag(c, req_id, key):
    r = call(c, req_id, 13, field_bytes(1, key) + field_varint(2, 1))
    if st(r) != "OK":
        return st(r), None
    return "OK", flag_of(result(r, 13)[1][0])


def events(c, until, timeout=10.0):
    """Reads event frames until until(list_so_far) is true; returns them."""
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(out):
        try:
            n, resp = c.recv_raw(max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if resp is None:
            out.append({"type": "eof"})
            break
        if 17 not in resp:
            out.append({"type": "response", "id": rid(resp), "status": st(resp),
                        "error": err_of(resp), "has_id": 1 in resp})
            continue
        ev = parse(resp[17][0])
        rec = {"type": {1: "begin", 2: "item", 3: "end", 4: "change", 5: "heartbeat"}
               .get(ev.get(1, [0])[0], "?"), "revision": ev.get(2, [0])[0], "size": n,
               "has_id": 1 in resp, "flags": [flag_of(f) for f in ev.get(3, [])],
               "resync": bool(ev.get(4, [0])[0]),
               "reason": ev.get(5, [b""])[0].decode(errors="replace")}
        if 6 in ev:
            hb = parse(ev[6][0])
            rec["hb"] = {k: hb.get(n_, [None])[0] for k, n_ in
                         (("node_id", 1), ("applied", 2), ("leader", 3), ("leaderless_ms", 5),
                          ("stale", 6))}
        out.append(rec)
    return out


def subscribe(addr, prefixes, from_rev=None):
    c = connect(addr)
    body = b"".join(field_bytes(1, p) for p in prefixes)
    if from_rev is not None:
        body += field_varint(2, from_rev)
    r = call(c, 2, 16, body)
    return c, r


def has_type(t):
    return lambda evs: any(e["type"] == t for e in evs)


# ---- D1 / F12: NUL inside a string ---------------------------------------

def check_nul(leader):
    c = connect(leader)
    cases = [
        ("string value", set_body(b"nul.s", sval(b"a\x00b"))),
        ("string value starting with NUL", set_body(b"nul.s", sval(b"\x00ab"))),
        ("json value", set_body(b"nul.j", jval(b"{}\x00zz"))),
        ("key", set_body(b"nul.k\x00zz", sval(b"v"))),
        ("actor", set_body(b"nul.a", sval(b"v"), actor=b"x\x00y")),
        ("reason", set_body(b"nul.r", sval(b"v"), reason=b"r\x00r")),
    ]
    for i, (what, body) in enumerate(cases):
        r = call(c, 10 + i, 11, body)
        check(st(r) == "INVALID_ARGUMENT" and "NUL" in err_of(r)["message"],
              f"D1: NUL inside the {what} -> {st(r)} (INVALID_ARGUMENT, nothing stored)")
    for i, key in enumerate([b"nul.s", b"nul.j", b"nul.k", b"nul.a", b"nul.r"]):
        s, _ = get_flag(c, 20 + i, key)
        check(s == "NOT_FOUND", f"D1: nothing stored under {key.decode()} ({s})")
    r = call(c, 30, 14, field_bytes(1, b"nul\x00"))
    check(st(r) == "INVALID_ARGUMENT", f"D1: NUL in a list prefix -> {st(r)}")
    # Encodings other runtimes may produce are still accepted: an unknown
    # field holding zero bytes, a value sent twice (the last wins), a
    # JSON text with an escaped U+0000 (stored byte for byte).
    body = set_body(b"nul.ok", sval(b"first")) + field_bytes(2, sval(b"second")) + \
        field_bytes(99, b"\x00\x00\x00")
    r = call(c, 31, 11, body)
    s, f = get_flag(c, 32, b"nul.ok")
    check(st(r) == "OK" and f is not None and f["value"].get(4) == [b"second"],
          f"D1: repeated field and unknown field with NUL bytes accepted ({st(r)}, {f and f['value']})")
    r = call(c, 33, 11, set_body(b"nul.esc", jval(b'"a\\u0000b"')))
    s, f = get_flag(c, 34, b"nul.esc")
    check(st(r) == "OK" and f["value"].get(5) == [b'"a\\u0000b"'],
          "D1: JSON \\u0000 escape accepted and stored byte for byte")
    # A Hello with a NUL in client_name, before any Hello: refused, the
    # connection stays open, and a good Hello then works.
    h = Raw(leader)
    r = call(h, 1, 10, field_varint(1, 1) + field_bytes(2, b"nul\x00name"))
    r2 = call(h, 2, 10, field_varint(1, 1) + field_bytes(2, b"fine"))
    check(st(r) == "INVALID_ARGUMENT" and st(r2) == "OK",
          f"D1: Hello.client_name with NUL -> {st(r)}, a good Hello then -> {st(r2)}")


# ---- D2: a live CHANGE carries the same fields as a replayed one ----------

def check_create_revision(leader, follower):
    sub, r = subscribe(follower, [b"cr."])
    evs = events(sub, has_type("heartbeat"))
    check(st(r) == "OK" and any(e["type"] == "heartbeat" for e in evs), "D2: live subscription")
    c = connect(leader, b"cr-writer")
    revs = []
    for i, body in enumerate([set_body(b"cr.k", sval(b"one"), reason=b"create"),
                              set_body(b"cr.k", sval(b"two")),
                              set_body(b"cr.other", jval(b"[1]"))]):
        revs.append(result(call(c, 10 + i, 11, body), 11).get(1, [0])[0])
    d = call(c, 20, 12, field_bytes(1, b"cr.k") + field_bytes(2, b"gone"))
    revs.append(result(d, 12).get(1, [0])[0])
    live = [e for e in events(sub, lambda evs: sum(e["type"] == "change" for e in evs) >= 4)
            if e["type"] == "change"]
    rep, _ = subscribe(leader, [b"cr."], revs[0] - 1)
    replayed = [e for e in events(rep, lambda evs: has_type("heartbeat")(evs))
                if e["type"] == "change"]
    check([e["revision"] for e in live] == revs and [e["revision"] for e in replayed] == revs,
          f"D2: live {[e['revision'] for e in live]} and replayed "
          f"{[e['revision'] for e in replayed]} revisions are the writes' {revs}")
    same = [a["flags"] == b["flags"] for a, b in zip(live, replayed)]
    check(len(same) == 4 and all(same), f"D2: live and replayed CHANGE flags are identical ({same})")
    ok = all("create_revision" in f for e in live for f in e["flags"])
    check(ok and live[1]["flags"][0]["create_revision"] == revs[0]
          and live[3]["flags"][0]["create_revision"] == revs[0]
          and live[3]["flags"][0].get("deleted") == 1,
          "D2: live CHANGE flags carry create_revision (kept across an update, on a delete too)")
    # A1: events carry no id; A18: heartbeats carry node_id.
    check(all(not e["has_id"] for e in live), "A1: event frames carry no id field")
    hb = [e for e in events(sub, has_type("heartbeat"), 5) if e["type"] == "heartbeat"]
    check(hb and hb[0]["hb"]["node_id"] is not None, "A18: Heartbeat.node_id is sent")


# ---- D3: no event frame passes --max-frame ----------------------------------

def check_event_frames(leader, follower, max_frame):
    sub, _ = subscribe(follower, [b"big."])
    events(sub, has_type("heartbeat"))
    c = connect(leader, b"big-writer")
    value = sval(b"v" * 65536)
    grouped = None
    keys = []
    for attempt in range(3):
        batch = []
        for i in range(8):
            key = b"big.a%d.k%d" % (attempt, i)
            keys.append(key)
            batch.append(frame(field_varint(1, 100 + 10 * attempt + i) +
                               field_bytes(11, set_body(key, value))))
        c.send(b"".join(batch))  # one send: the writes reach one loop turn
        revs = [result(answer(c, 100 + 10 * attempt + i, 15), 11).get(1, [0])[0]
                for i in range(8)]
        dup = [r for r in set(revs) if revs.count(r) > 1]
        if dup:
            grouped = min(dup)
            break
    if not check(grouped is not None, "D3: two 64 KiB writes shared one revision (group commit)"):
        return
    last = max(revs)
    evs = events(sub, lambda evs: any(e["type"] == "end" and e["revision"] >= last
                                      for e in evs), 20)
    begins = [e for e in evs if e["type"] == "begin"]
    check(begins and begins[0]["resync"] and "frame" in begins[0]["reason"],
          f"D3: the oversized CHANGE became a resync snapshot ({begins[:1]})")
    state = {}
    for e in evs:
        if e["type"] in ("item", "change"):
            for f in e["flags"]:
                state[f["key"]] = f
    check(all(k.decode() in state and state[k.decode()]["value"].get(4) == [b"v" * 65536]
              for k in keys),
          f"D3: the subscriber holds all {len(keys)} large flags after the resync")
    check(sub.largest <= max_frame, f"D3: largest event frame {sub.largest} <= --max-frame {max_frame}")
    rep, _ = subscribe(leader, [b"big."], grouped - 1)
    evs = events(rep, has_type("end"), 20)
    check(any(e["type"] == "begin" and e["resync"] for e in evs) and rep.largest <= max_frame,
          f"D3: catch-up over the oversized revision resyncs too (largest frame {rep.largest})")
    # A get of one largest flag fits, and HelloResult says the limit.
    s, f = get_flag(c, 300, keys[0])
    check(s == "OK", f"D3: a get of a 64 KiB flag fits in a {max_frame}-byte frame ({s})")
    h = Raw(leader)
    r = call(h, 1, 10, field_varint(1, 1))
    check(result(r, 10).get(3, [0])[0] == max_frame, "D3: HelloResult.max_frame is the node's limit")
    # A8: a page is cut to fit a frame, with more = true; a page that
    # ends exactly at the last key says more = false.
    r = call(c, 301, 14, field_bytes(1, b"big.a%d" % attempt) + field_varint(2, 1) +
             field_varint(4, 100))
    page = result(r, 14)
    check(st(r) == "OK" and 0 < len(page.get(1, [])) < 8 and page.get(3, [0])[0] == 1,
          f"A8: list of 8 x 64 KiB cut to {len(page.get(1, []))} to fit the frame, more=true")
    r = call(c, 302, 14, field_bytes(1, b"big.a%d" % attempt) + field_varint(2, 1) +
             field_varint(4, 1) + field_bytes(3, b"big.a%d.k6" % attempt))
    page = result(r, 14)
    check(len(page.get(1, [])) == 1 and page.get(3, [0])[0] == 0,
          "A8: a page that ends exactly at the last key says more=false")


# ---- the doc gaps -----------------------------------------------------------

def check_hello_rules(leader):
    # A10: before Hello, INVALID_ARGUMENT wins over UNKNOWN_TYPE, for an
    # empty frame too; A12: the server keeps the connection open after
    # UNSUPPORTED_VERSION, and an absent version is unsupported.
    c = Raw(leader)
    c.send(frame(b""))
    r0 = answer(c, 0)
    r1 = call(c, 2, 99, b"")
    r2 = call(c, 3, 10, b"")
    r3 = call(c, 4, 10, field_varint(1, 2))
    r4 = call(c, 5, 10, field_varint(1, 1) + field_bytes(2, b"first"))
    check(st(r0) == "INVALID_ARGUMENT" and st(r1) == "INVALID_ARGUMENT",
          f"A10: before Hello an empty frame -> {st(r0)}, an unknown op -> {st(r1)}")
    check(st(r2) == "UNSUPPORTED_VERSION" and st(r3) == "UNSUPPORTED_VERSION" and st(r4) == "OK",
          f"A12: no version -> {st(r2)}, version 2 -> {st(r3)}, connection open, v1 -> {st(r4)}")
    # A14: an empty frame after Hello is UNKNOWN_TYPE with id 0 (absent
    # and 0 are the same), and the connection stays open.
    c.send(frame(b""))
    r5 = answer(c, 0)
    r6 = call(c, 6, 15, b"")
    check(st(r5) == "UNKNOWN_TYPE" and rid(r5) == 0 and st(r6) == "OK",
          f"A14: empty frame after Hello -> {st(r5)} id {rid(r5)}, connection open")
    # A11: a second Hello succeeds and replaces the default actor.
    r = call(c, 7, 11, set_body(b"hello.k", sval(b"1")))
    _, f1 = get_flag(c, 8, b"hello.k")
    r7 = call(c, 9, 10, field_varint(1, 1) + field_bytes(2, b"second"))
    call(c, 10, 11, set_body(b"hello.k", sval(b"2")))
    _, f2 = get_flag(c, 11, b"hello.k")
    check(st(r7) == "OK" and f1["actor"] == "first" and f2["actor"] == "second",
          f"A11: second Hello -> {st(r7)}, actor {f1['actor']} then {f2['actor']}")
    # A13: an empty actor is absent (client_name is used); an empty
    # client_name is absent (ip:port is used).
    call(c, 12, 11, set_body(b"hello.e", sval(b"1"), actor=b""))
    _, f3 = get_flag(c, 13, b"hello.e")
    d = Raw(leader)
    call(d, 1, 10, field_varint(1, 1) + field_bytes(2, b""))
    call(d, 2, 11, set_body(b"hello.e", sval(b"2")))
    _, f4 = get_flag(d, 3, b"hello.e")
    check(f3["actor"] == "second" and f4["actor"].startswith("127.0.0.1:"),
          f"A13: empty actor -> {f3['actor']!r}, empty client_name -> {f4['actor']!r}")
    # A2: client_name over 128 bytes is INVALID_ARGUMENT (not TOO_LARGE).
    e = Raw(leader)
    r = call(e, 1, 10, field_varint(1, 1) + field_bytes(2, b"n" * 129))
    check(st(r) == "INVALID_ARGUMENT", f"A2: 129-byte client_name -> {st(r)}")


def check_limits(leader):
    c = connect(leader)
    # A3: an empty key is a missing field.
    r = call(c, 10, 11, set_body(b"", sval(b"v")))
    check(st(r) == "INVALID_ARGUMENT", f"A3: empty key -> {st(r)}")
    # A4: subscription prefixes: any violation is INVALID_ARGUMENT; a list
    # prefix over 256 bytes is TOO_LARGE.
    s1, r1 = subscribe(leader, [b"p" * 257])
    s2, r2 = subscribe(leader, [b"p%d" % i for i in range(257)])
    r3 = call(c, 11, 14, field_bytes(1, b"p" * 257))
    check(st(r1) == "INVALID_ARGUMENT" and st(r2) == "INVALID_ARGUMENT" and st(r3) == "TOO_LARGE",
          f"A4: 257-byte sub prefix -> {st(r1)}, 257 prefixes -> {st(r2)}, "
          f"257-byte list prefix -> {st(r3)}")
    # A20: JSON edge cases.
    cases = [(b"[" * 64 + b"]" * 64, "OK"), (b"[" * 65 + b"]" * 65, "INVALID_ARGUMENT"),
             (b"1e999", "OK"), (b'{"a":1,"a":2}', "OK"), (b'"\\ud800"', "OK"),
             (b"\xef\xbb\xbf{}", "INVALID_ARGUMENT")]
    got = [st(call(c, 20 + i, 11, set_body(b"json.e%d" % i, jval(t)))) for i, (t, _) in
           enumerate(cases)]
    check(got == [w for _, w in cases], f"A20: JSON depth 64/65, 1e999, duplicate keys, "
          f"lone surrogate escape, BOM -> {got}")


def check_revisions(leader, follower):
    # A15: SubscribeResult.applied_revision counts like a heartbeat's (the
    # store's), so on an idle node it is the snapshot's S, and it is a
    # from_revision another node accepts.
    sub, r = subscribe(follower, [b"rev."])
    evs = events(sub, has_type("end"))
    applied = result(r, 16).get(2, [0])[0]
    begin = [e for e in evs if e["type"] == "begin"]
    check(begin and begin[0]["revision"] == applied,
          f"A15: SubscribeResult.applied_revision {applied} == SNAPSHOT_BEGIN "
          f"{begin[0]['revision'] if begin else None}")
    other, r2 = subscribe(leader, [b"rev."], applied)
    evs = events(other, has_type("heartbeat"))
    check(any(e["type"] == "heartbeat" for e in evs), "A15: that revision resumes on another node")
    # A16: on an idle leader a write is followed by one more raft entry
    # (a barrier that changes no flag): StatusResult.applied_revision, a
    # raft index, moves past the write's revision; a heartbeat's, the
    # store's, stays at it.
    c = connect(leader)
    rev = result(call(c, 40, 11, set_body(b"rev.k", sval(b"1"))), 11).get(1, [0])[0]
    raft_applied = 0
    for i in range(50):
        raft_applied = result(call(c, 41 + i, 15, b""), 15).get(6, [0])[0]
        if raft_applied > rev:
            break
        time.sleep(0.1)
    hbs = [e for e in events(sub, lambda evs: any(e["type"] == "heartbeat" and e["hb"]["applied"] >= rev
                                                  for e in evs), 5)
           if e["type"] == "heartbeat"]
    check(raft_applied == rev + 1 and hbs and hbs[-1]["hb"]["applied"] == rev,
          f"A16: write at {rev}: raft applied {raft_applied}, heartbeat applied "
          f"{hbs[-1]['hb']['applied'] if hbs else None}")
    # A7: a from_revision ahead of the node -> AHEAD_OF_NODE (id 0), "applied".
    ahead, r3 = subscribe(follower, [b"rev."], applied + 100000)
    evs = events(ahead, has_type("eof"), 15)
    errs = [e for e in evs if e["type"] == "response" and e["status"] == "AHEAD_OF_NODE"]
    check(errs and errs[0]["id"] == 0 and "applied" in errs[0]["error"]["message"]
          and evs[-1]["type"] == "eof",
          f"A7: from_revision ahead -> AHEAD_OF_NODE id 0 ('applied'), then closed ({errs[:1]})")


def shutdown_probe(addr, ready):
    """A9: a node that shuts down tells every client UNAVAILABLE (id 0),
    subscribers too, and then closes."""
    c = connect(addr)
    sub, _ = subscribe(addr, [b"down."])
    events(sub, has_type("heartbeat"))
    open(ready, "w").close()
    got = []
    for conn in (c, sub):
        evs = events(conn, has_type("eof"), 30)
        got.append([e["status"] if e["type"] == "response" else e["type"]
                    for e in evs if e["type"] in ("response", "eof")])
        errs = [e for e in evs if e["type"] == "response"]
        check(errs and errs[-1]["status"] == "UNAVAILABLE" and errs[-1]["id"] == 0
              and evs[-1]["type"] == "eof", f"A9: shutdown -> {got[-1]} (UNAVAILABLE id 0, close)")
    return 1 if FAILED else 0


def main():
    if sys.argv[1] == "shutdown-probe":
        return shutdown_probe(sys.argv[2], sys.argv[3])
    leader, follower, max_frame = sys.argv[1], sys.argv[2], int(sys.argv[3])
    check_nul(leader)
    check_create_revision(leader, follower)
    check_event_frames(leader, follower, max_frame)
    check_hello_rules(leader)
    check_limits(leader)
    check_revisions(leader, follower)
    print(f"{len(FAILED)} check(s) failed" if FAILED else "all checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
