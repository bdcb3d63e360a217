#!/usr/bin/env python3
"""Request handling edges of a single flipd node (test_srv_requests.sh),
over raw frames: the answers docs/protocol.md gives to malformed ids, keys
and paging, type mismatches of each stored type, a reused request id, a
connection that closes with requests in flight, a flood of state-hash
requests, and the size budget (early and at apply).

usage: srvcheck.py ADDR PID   (the node, process PID, runs with
                               --max-store-bytes 1048576, --max-inflight
                               1000 and --max-frame 131072)
       srvcheck.py ADDR stuck N (N lists of the b. flags never read)

Prints one "ok:"/"FAILED:" line per check; exit status 1 if any failed.
Every read has a timeout and every loop a bound.
"""
import os
import signal
import struct
import sys
import time

from conformance import (answer, call, connect, err_of, field_bytes, field_varint, flag_of, frame,
                         parse, result, st, sval)
from rawclient import STATUS

FAILED = []
NODE_PID = 0
STATUS.setdefault(15, "TYPE_MISMATCH")
STATUS.setdefault(16, "STORE_FULL")
SET, DELETE, GET, LIST, STATUS = 11, 12, 13, 14, 15
BUDGET_MSG = ("the store is at its size budget (--max-store-bytes); "
              "delete flags to make room")


def check(cond, what):
    print(("ok: " if cond else "FAILED: ") + what, flush=True)
    if not cond:
        FAILED.append(what)
    return cond


def check_err(resp, status, message, what):
    e = err_of(resp)
    got = (e["status"], e["message"]) if e else (st(resp), None)
    return check(got == (status, message), f"{what}: {got}")


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def ival(n):
    return field_varint(2, zigzag(n))


def dval(x):
    return bytes([3 << 3 | 1]) + struct.pack("<d", x)


def jval(text):
    return field_bytes(5, text)


def rid(client_id, seq):
    return field_bytes(1, client_id) + field_varint(2, seq)


def set_req(req_id, key, value, extra=b""):
    return frame(field_varint(1, req_id) +
                 field_bytes(SET, field_bytes(1, key) + field_bytes(2, value) + extra))


def get_value(c, req_id, key):
    r = call(c, req_id, GET, field_bytes(1, key))
    if st(r) != "OK":
        return st(r), None
    return "OK", flag_of(result(r, GET)[1][0])


def check_types(addr):
    """TYPE_MISMATCH names the stored type, for each type."""
    c = connect(addr, b"srvcheck")
    n = 10
    for key, first, name in ((b"t.int", ival(5), "int"), (b"t.dbl", dval(1.5), "double"),
                             (b"t.json", jval(b'{"a":1}'), "json")):
        r = call(c, n, SET, field_bytes(1, key) + field_bytes(2, first))
        check(st(r) == "OK", f"set {key!r} as {name}")
        r = call(c, n + 1, SET, field_bytes(1, key) + field_bytes(2, sval(b"x")))
        e = parse(r[2][0]) if r is not None and 2 in r else {}
        check(st(r) == "TYPE_MISMATCH" and e.get(7, [b""])[0] == name.encode(),
              f"string over {name}: {st(r)}, current_type {e.get(7)}")
        n += 2
    # change_type present but false is no type change; true is
    r = call(c, n, SET, field_bytes(1, b"t.int") + field_bytes(2, sval(b"x")) +
             field_varint(7, 0))
    check(st(r) == "TYPE_MISMATCH", f"change_type false: {st(r)}")
    r = call(c, n + 1, SET, field_bytes(1, b"t.chg") + field_bytes(2, ival(1)))
    r = call(c, n + 2, SET, field_bytes(1, b"t.chg") + field_bytes(2, sval(b"x")) +
             field_varint(7, 1))
    got = get_value(c, n + 3, b"t.chg")
    check(st(r) == "OK" and got[1]["value"] == {4: [b"x"]}, f"change_type true: {got}")
    c.s.close()


def check_bad_input(addr):
    """Malformed request ids, keys and paging keys: INVALID_ARGUMENT with
    the reason; nothing is written."""
    c = connect(addr, b"srvcheck")
    r = call(c, 2, SET, field_bytes(1, b"r.a") + field_bytes(2, sval(b"v")) +
             field_bytes(6, rid(b"abc", 1)))
    check_err(r, "INVALID_ARGUMENT", "request_id.client_id must be exactly 16 bytes",
              "set with a 3-byte client id")
    r = call(c, 3, DELETE, field_bytes(1, b"r.a") + field_bytes(5, rid(b"C" * 16, 0)))
    check_err(r, "INVALID_ARGUMENT", "request_id.seq must be at least 1",
              "delete with seq 0")
    r = call(c, 4, DELETE, field_bytes(1, b"bad key"))
    check_err(r, "INVALID_ARGUMENT", "key may only contain A-Z a-z 0-9 . _ - / :",
              "delete of a bad key")
    r = call(c, 5, GET, field_bytes(1, b""))
    check_err(r, "INVALID_ARGUMENT", "key is empty", "get of an empty key")
    r = call(c, 6, LIST, field_bytes(1, b"r.") + field_bytes(3, b"bad key"))
    check_err(r, "INVALID_ARGUMENT", "key may only contain A-Z a-z 0-9 . _ - / :",
              "list after a bad key")
    check(get_value(c, 7, b"r.a")[0] == "NOT_FOUND", "the refused set wrote nothing")
    c.s.close()


def list_keys(c, req_id, body):
    r = call(c, req_id, LIST, body)
    if st(r) != "OK":
        return st(r), None, None
    res = result(r, LIST)
    return "OK", [flag_of(f)["key"] for f in res.get(1, [])], res.get(3, [0])[0]


def check_list(addr):
    """Paging: an empty start_after is no start; limit 0 (or none) is the
    default 1000; a limit above 10000 is cut to 10000, not refused; no
    prefix is every key."""
    c = connect(addr, b"srvcheck")
    for i, k in enumerate((b"l.a", b"l.b", b"l.c")):
        check(st(call(c, 10 + i, SET, field_bytes(1, k) + field_bytes(2, sval(b"v")))) == "OK",
              f"set {k!r}")
    want = ("OK", ["l.a", "l.b", "l.c"], 0)
    check(list_keys(c, 20, field_bytes(1, b"l.") + field_bytes(3, b"")) == want,
          "list with an empty start_after")
    check(list_keys(c, 21, field_bytes(1, b"l.") + field_varint(4, 0)) == want,
          "list with limit 0")
    check(list_keys(c, 22, field_bytes(1, b"l.") + field_varint(4, 20000)) == want,
          "list with limit 20000")
    check(list_keys(c, 23, field_bytes(1, b"l.") + field_varint(4, 2)) ==
          ("OK", ["l.a", "l.b"], 1), "list with limit 2: more")
    check(list_keys(c, 25, field_bytes(1, b"l.") + field_varint(2, 0)) == want,
          "list with stale false")
    r = call(c, 26, GET, field_bytes(1, b"l.b") + field_varint(2, 0))
    check(st(r) == "OK" and flag_of(result(r, GET)[1][0])["key"] == "l.b",
          "get with stale false")
    got = list_keys(c, 24, b"")
    check(got[0] == "OK" and [k for k in got[1] if k.startswith("l.")] == want[1],
          f"list without a prefix: {got}")
    # 1001 flags: limit 0 (and none) is the default 1000, limit 20000 all
    keys = [b"d.%04d" % i for i in range(1001)]
    for lo in range(0, len(keys), 500):
        c.send(b"".join(set_req(1000 + i, keys[i], sval(b"1"))
                        for i in range(lo, min(lo + 500, len(keys)))))
        for i in range(lo, min(lo + 500, len(keys))):
            if st(answer(c, 1000 + i)) != "OK":
                check(False, f"set {keys[i]!r}")
    names = [k.decode() for k in keys]
    check(list_keys(c, 30, field_bytes(1, b"d.") + field_varint(4, 0)) ==
          ("OK", names[:1000], 1), "1001 flags, limit 0: the first 1000, more")
    check(list_keys(c, 31, field_bytes(1, b"d.")) == ("OK", names[:1000], 1),
          "1001 flags, no limit: the first 1000, more")
    check(list_keys(c, 32, field_bytes(1, b"d.") + field_varint(4, 20000)) ==
          ("OK", names, 0), "1001 flags, limit 20000: all")
    c.s.close()


def check_actor_and_rid(addr):
    """Without an actor or a Hello name the peer address is the actor; a
    request id resent for another change is refused at apply; resent for
    the same change it answers the first outcome."""
    c = connect(addr, name=b"")
    me = "%s:%d" % c.s.getsockname()
    r = call(c, 2, SET, field_bytes(1, b"a.peer") + field_bytes(2, sval(b"v")))
    check(st(r) == "OK", "set without actor")
    got = get_value(c, 3, b"a.peer")
    check(got[0] == "OK" and got[1]["actor"] == me, f"actor is the peer address: {got}")
    cid = b"R" * 16
    r1 = call(c, 4, SET, field_bytes(1, b"a.x") + field_bytes(2, sval(b"1")) +
              field_bytes(6, rid(cid, 1)))
    rev = result(r1, SET).get(1, [None])[0]
    check(st(r1) == "OK" and rev is not None, "set with a request id")
    r2 = call(c, 5, SET, field_bytes(1, b"a.x") + field_bytes(2, sval(b"1")) +
              field_bytes(6, rid(cid, 1)))
    check(st(r2) == "OK" and result(r2, SET).get(1, [None])[0] == rev,
          "same change resent: first revision")
    r3 = call(c, 6, SET, field_bytes(1, b"a.y") + field_bytes(2, sval(b"2")) +
              field_bytes(6, rid(cid, 1)))
    check_err(r3, "INVALID_ARGUMENT", "the change was rejected by the state machine",
              "request id reused for another key")
    check(get_value(c, 7, b"a.y")[0] == "NOT_FOUND", "the reused id wrote nothing")
    c.s.close()


def check_closed_in_flight(addr):
    """A connection closed with a write, a read and a state hash in flight:
    the write still commits, the node keeps serving. The node is stopped
    (SIGSTOP) meanwhile, so that it finds the requests and the close
    together."""
    c = connect(addr, b"srvcheck")
    os.kill(NODE_PID, signal.SIGSTOP)
    try:
        c.send(set_req(2, b"f.k", sval(b"kept"), field_bytes(6, rid(b"F" * 16, 1))) +
               frame(field_varint(1, 3) + field_bytes(GET, field_bytes(1, b"f.k"))) +
               frame(field_varint(1, 4) + field_bytes(STATUS, field_varint(1, 1))))
        c.s.close()
    finally:
        os.kill(NODE_PID, signal.SIGCONT)
    c = connect(addr, b"srvcheck")
    got = None
    for n in range(100):
        got = get_value(c, 10 + n, b"f.k")
        if got[0] == "OK":
            break
        time.sleep(0.05)
    check(got[0] == "OK" and got[1]["value"] == {4: [b"kept"]},
          f"write of the closed connection: {got}")
    c.s.close()


def check_hash_flood(addr):
    """300 state-hash requests in one write: one walk runs, 256 wait for
    the next, the 43 beyond get UNAVAILABLE; the rest one equal hash."""
    c = connect(addr, b"srvcheck")
    n = 300
    c.send(b"".join(frame(field_varint(1, 100 + i) + field_bytes(STATUS, field_varint(1, 1)))
                    for i in range(n)))
    answers = {}
    deadline = time.monotonic() + 30
    while len(answers) < n and time.monotonic() < deadline:
        _, resp = c.recv_raw(max(0.1, deadline - time.monotonic()))
        if resp is None:
            break
        answers[resp.get(1, [0])[0]] = resp
    check(sorted(answers) == list(range(100, 100 + n)), f"{len(answers)} of {n} answered")
    refused = [i for i, r in sorted(answers.items()) if st(r) != "OK"]
    check(refused == list(range(100 + 257, 100 + n)), f"refused ids {refused[:3]}...")
    check(all(err_of(answers[i]) == {"status": "UNAVAILABLE", "resume": None,
                                     "message": "too many state hashes waiting; retry"}
              for i in refused), "refusals: UNAVAILABLE, retry")
    hashes = {result(r, STATUS).get(13, [None])[0] for r in answers.values() if st(r) == "OK"}
    check(len(hashes) == 1 and None not in hashes, f"one hash: {hashes}")
    c.s.close()


def fill(c, req_id, prefix, size, bound):
    """Sets of `size` bytes until one is refused; returns (sets that fit,
    the refusal, the next request id)."""
    for i in range(bound):
        r = call(c, req_id, SET, field_bytes(1, b"%s.%d" % (prefix, i)) +
                 field_bytes(2, sval(b"v" * size)))
        req_id += 1
        if st(r) != "OK":
            return i, r, req_id
    return bound, None, req_id


def check_budget(addr):
    """Sets of 60 KB fill the 1 MiB budget: apply refuses the first whose
    flag and change-log row do not fit (also one pipelined behind another
    write); a list of them is cut at the frame size; once smaller sets
    have filled the flags up to the budget, a big set cannot fit even with
    the whole change log dropped and is refused before it is proposed."""
    c = connect(addr, b"srvcheck")
    n, r, req_id = fill(c, 10, b"b", 60000, 40)
    check(n > 5, f"{n} sets of 60 KB fit")
    check_err(r, "STORE_FULL", BUDGET_MSG, f"set {n} of 60 KB refused")
    c.send(set_req(1000, b"s.small", sval(b"s"), field_bytes(6, rid(b"B" * 16, 1))) +
           set_req(1001, b"s.big", sval(b"v" * 60000), field_bytes(6, rid(b"B" * 16, 2))))
    check(st(answer(c, 1000)) == "OK", "small set pipelined first")
    check_err(answer(c, 1001), "STORE_FULL", BUDGET_MSG, "big set behind it, refused at apply")
    # --max-frame 131072: two 60 KB flags fill a list answer, "more" says so
    check(list_keys(c, 1002, field_bytes(1, b"b.")) == ("OK", ["b.0", "b.1"], 1),
          "a list answer cut at the frame size")
    for size, prefix in ((4000, b"m"), (400, b"n"), (40, b"o")):
        n, r, req_id = fill(c, req_id, prefix, size, 400)
        check_err(r, "STORE_FULL", BUDGET_MSG, f"set {n} of {size} bytes refused")
    # a set that does not grow the live state goes ahead on a full store
    r = call(c, req_id, SET, field_bytes(1, b"b.0") + field_bytes(2, sval(b"w" * 59000)))
    check(st(r) == "OK", "a smaller value still replaces one on a full store")
    r = call(c, req_id + 1, SET, field_bytes(1, b"p.big") + field_bytes(2, sval(b"v" * 60000)))
    check_err(r, "STORE_FULL", BUDGET_MSG, "a new 60 KB set refused early")
    c.s.close()


def stuck(addr, n):
    """A client that asks for n lists of the b. flags and never reads the
    answers; prints "sent", then holds the connection (at most 60 s)."""
    c = connect(addr, b"stuck")
    c.send(b"".join(frame(field_varint(1, 10 + i) + field_bytes(LIST, field_bytes(1, b"b.")))
                    for i in range(n)))
    print("sent", flush=True)
    time.sleep(60)
    return 0


def main():
    global NODE_PID
    addr = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "stuck":
        return stuck(addr, int(sys.argv[3]))
    NODE_PID = int(sys.argv[2])
    for fn in (check_types, check_bad_input, check_list, check_actor_and_rid,
               check_closed_in_flight, check_hash_flood, check_budget):
        try:
            fn(addr)
        except (OSError, TimeoutError, KeyError, IndexError, AssertionError) as e:
            check(False, f"{fn.__name__}: {e!r}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
