#!/usr/bin/env python3
"""flipd chaos-history checker (Python 3.11, standard library only).

    check.py HISTORY_DIR [--json] [--read-search-budget N]
             [--converge-bound-ms MS] [--stale-bound-ms MS]
             [--cut-bound-ms MS] [--partition-grace-ms MS] [--unique-revisions]
             [--live-lag-bound-ms MS] [--max-report N]

Exit status: 0 valid, 1 invalid or unknown (a property could not be decided,
e.g. the read search ran out of budget: counts as a failure), 2 usage error
or malformed history (the message names FILE:LINE).

It reads a history written by the chaos harness and verifies the properties
listed in README.md beside this file (W1-W4, R1/R2, S1-S9, L1's
"a minority acks nothing").  For every violated property it names the first
counter-example (earliest in time) with times, keys, values, revisions,
proc/sub ids and the FILE:LINE of every record involved.

==========================================================================
HISTORY FORMAT (what the harness writes into HISTORY_DIR)
==========================================================================

General rules
-------------
* JSON Lines (one JSON object per line, UTF-8); blank lines are ignored.
  Every writer process writes its OWN files so lines never interleave; the
  checker reads every file matching the patterns below, in any number.
* Every time is an integer in NANOSECONDS from ONE clock: CLOCK_MONOTONIC
  of the machine running the harness (all processes on a machine share it;
  Python: time.monotonic_ns()).  Never use node-side or wall-clock times.
* Node ids, proc ids and sub ids may be numbers or strings; they are
  compared as strings ("1" == 1).
* Values written by the harness must be UNIQUE across the whole run (e.g.
  the string "w3:17" = writer 3, sequence 17), must not be JSON null, and
  two ops never write the same value (a resend with the same request id is
  the same op; a retry as a new write gets a new value), so a value seen at
  two revisions is one write applied twice (ONCE).  Values are compared as JSON (any JSON type works;
  strings are recommended).  Two writes with the same value are a history
  error (exit 2).
* The cluster starts EMPTY (fresh data dirs): every key is absent before
  the first write.

ops.*.jsonl  (client operations; one file per client process)
-------------------------------------------------------------
One line per COMPLETED operation ("type" may be omitted, default
"complete"):

  {"proc": "w3", "seq": 17, "op": "set", "key": "k2", "value": "w3:17",
   "invoke_ns": 1200000000, "complete_ns": 1203000000,
   "outcome": "ok", "revision": 42, "node": 1}

  op                 "set" | "cas" | "del" | "get"   ("delete" = "del")
  key                the flag key
  value              set/cas: the value written (required, unique)
  expected_revision  cas (and optionally del): the compare-and-set revision;
                     0 = "only if absent".  A "set" carrying it is a cas.
  invoke_ns          just before the request is sent (required)
  complete_ns        when the answer (or the give-up) happened; required for
                     outcome ok/fail, optional for unknown
  outcome            "ok"      the server acknowledged it
                     "fail"    DEFINITELY not applied: NOT_LEADER/UNAVAILABLE/
                               NO_SPACE/connection refused before the request
                               was fully sent, CAS_CONFLICT, NOT_FOUND (del),
                               INVALID_ARGUMENT, TOO_LARGE
                     "unknown" may or may not have applied, now or LATER:
                               timeout or connection lost after sending,
                               LEADERSHIP_LOST, INTERNAL ("info" accepted)
                     Gets: only "ok" gets are checked; failed gets are counted.
  revision           ok set/cas/del: the revision acknowledged (required);
                     ok get that found the flag: the flag's revision
  read_value         ok get: the value read, or null when NOT_FOUND
  applied_revision   ok get (optional): GetResult.applied_revision
  linearizable       get: true (default) for a linearizable get, false for a
                     stale (any-node) get
  node               the node that answered (after redirects), if known;
                     needed for the minority-ack check P
  current_revision   fail cas with CAS_CONFLICT (optional): the flag's
                     revision the server reported (0 = absent)
  error              free text (optional, shown in reports)

Optionally an invoke line may be written before sending:
  {"type": "invoke", "proc": "w3", "seq": 17, "op": "set", "key": "k2",
   "value": "w3:17", "invoke_ns": 1200000000}
A completion line is matched to it by (proc, seq) (or, without seq, to the
oldest pending invoke of that proc).  An invoke that never completes (the
client crashed or the run ended) is treated as a write with outcome
"unknown" (a get is dropped).  Completion lines alone are enough.

subs.*.jsonl  (subscribers; one file per subscriber process)
-------------------------------------------------------------
One line per event the subscriber received or did, in the order it
happened (records of one sub are merged across files and stably sorted by
t_ns):

  {"sub": "s1", "node": 2, "t_ns": ..., "type": TYPE, ...}

  type "subscribe"   opened a connection WITHOUT from_revision (fresh
                     snapshot expected).  Optional: a "begin" with
                     resync=false that is not preceded by one also opens a
                     fresh session.
       "resume"      opened a connection with from_revision = "revision"
       "begin"       SNAPSHOT_BEGIN: "revision" S, "resync": bool
       "item"        SNAPSHOT_ITEM: "flags": [FLAG] (or "flag": FLAG)
       "end"         SNAPSHOT_END: "revision" S
       "change"      CHANGE: "revision" R, "flags": [FLAG, ...]
       "heartbeat"   HEARTBEAT: "applied" (applied_revision; "revision" is
                     accepted too), "stale": bool, optional "leader_id"
       "disconnect"  the connection ended (closed, reset, client gave up)
       "error"       the server sent an error (e.g. "status":
                     "AHEAD_OF_NODE", "SLOW_CONSUMER"); the session ended
       "stop"        the harness stopped this subscriber on purpose; it is
                     exempt from the convergence check
  A record whose "node" differs from the current session's node starts a
  new session on that node, resumed from the subscriber's position (for
  clients that move between nodes by themselves, like the library's watch).
  FLAG = {"key": K, "value": V, "revision": r}  or
         {"key": K, "deleted": true, "revision": r}
  "prefixes": [..]   on any record (the first one seen counts): the
                     subscription's prefixes; absent, [] or [""] = all keys.

final.json  (written once after healing and the final barrier reads)
--------------------------------------------------------------------
  {"healed_ns": t,                    # when every fault was healed
   "reads": {node_id: {key: {"value": V, "revision": r} | null}},
                                      # barrier read of every key on every
                                      # node; null = NOT_FOUND; omit a node
                                      # that could not be read
   "subscribers_final": {sub_id: {key: value}},   # optional: each
                                      # subscriber's local copy at the end
                                      # (absent key or null = absent)
   "reads_done_ns": t,                # optional: when the final reads were
                                      # done (else: after everything)
   "leader_changes": [...]}           # optional, informational

nemesis.jsonl  (fault injection)
--------------------------------
  {"t_ns": t, "fault": KIND, "nodes": [ids], "action": "start"|"stop",
   "minority": [ids], "cut": [[sub, node], ...], "id": optional}
  A "stop" closes the open fault with the same "id", else the most recent
  open fault of the same kind and nodes, else the most recent of the same
  kind; fault "heal" or "all" (either action) closes every open fault.  Faults still
  open at healed_ns end there.  A fault with a non-empty "minority" is a
  partition: those nodes are cut from the majority.  "cut" (optional)
  lists the subscribers the partition cuts from a minority node (a
  partition that cuts clients too, as the harness's netns mode does): that
  node cannot tell them anything.  Faults whose kind
  contains kill, crash, restart, power, wipe, lose or corrupt restart the
  listed nodes (a stale read may legitimately go back across a restart).

==========================================================================
PROPERTIES (each names its first counter-example)
==========================================================================

The "committed history" is the table (key, revision) -> value|deleted built
from every ok ack, every get that returned a revision, every subscriber
change and snapshot item, and every final read: each of those is a
committed change.  An "unknown" write is committed iff its value was
observed; observed deletions are matched to delete ops.  G(t) is the
highest raft index known committed before time t (any ack, read revision or
applied_revision, event, snapshot or heartbeat revision seen before t); all
indexes <= G(t) were committed before t.

W1   lost ack: on every node's final read, each key's revision >= the
     highest committed revision of that key (ok acks and observations); a
     key read as absent must have a committed (or possible unobserved
     unknown) delete after its last committed set.
W2   phantom: every value seen (gets, events, snapshot items, final reads,
     subscribers' final copies) was written to THAT key by a set/cas that
     was not "fail", and was invoked before it was seen; every observed
     deletion is matched to a non-failed delete on that key.
W3   one value per (key, revision) across all sources; a write is seen at
     one revision only, and an ok write at exactly its acked revision.
     Different keys may share a revision (group commit puts concurrent
     writes in one raft entry); --unique-revisions forbids that.
ONCE exactly once: a written value seen at two revisions (applied twice);
     a write answered "fail" whose value is seen (applied despite the
     refusal; a CAS conflict naming the write's own revision is called out);
     a deletion only a refused delete of the key explains.
W4   real time: a write with a known revision (ok, or observed unknown)
     must have revision > G(its invoke): if any index >= it was committed
     before the write was sent, the order is broken (covers "ok A completed
     before ok B invoked => rev(A) < rev(B)").
R    reads.  Fast path for every ok get: a linearizable get that returned
     revision r must have r >= the last committed change of the key at or
     below G(invoke) (stale read); a get with applied_revision A must show
     the key's latest committed change <= A; stale gets never go back per
     node between restarts; an ok cas/conditional delete must have found
     the expected revision (the key's previous committed change).  A key
     with a linearizable NOT_FOUND get or a get without revision is then
     searched: Wing-Gong-Lowe (depth-first, memoised on (linearized set,
     value)) over the key's committed writes (in revision order), its
     possible unobserved unknown deletes (which may apply at any time after
     invoke, or never) and its linearizable gets.  More than
     --read-search-budget explored states per key = "unknown" = failure.
     A failing search names the first get (by invoke) that cannot be
     linearized.
S-order   per subscriber: change revisions strictly increase within a
     session and across resumes (a change <= the last change, snapshot or
     heartbeat revision), no change inside a snapshot, a resync snapshot
     never below the resume point.
S-dup     a change revision delivered twice to one subscriber.
S-gap     a committed change of a watched key, with a revision between two
     consecutive positions of the subscriber (change, heartbeat, resume),
     was never delivered and no snapshot covered it; also a resume from a
     revision beyond what the subscriber had received.
S-resync  snapshot contents (resync or fresh) differ from the committed
     state at S: an item older than the key's last change <= S, a key
     missing, an item newer than S, a key twice, begin/end mismatch.
S-filter  an event for a key outside the subscription's prefixes.
CONV after healing: all nodes' final reads agree; every subscriber (except
     stopped ones) holds the final value of every watched key, and its last
     change to its copy arrived within --converge-bound-ms (default 10000)
     of max(healed_ns, last write invoke).
P    the minority acknowledges nothing: an ok write or ok linearizable get
     answered by a node in a partition's minority, invoked at least
     --partition-grace-ms (default 0) after the partition started and
     completed before it ended.
L    leaderless nodes tell their subscribers: a session on a minority node
     during a partition must get a heartbeat with stale=true, or end, within
     --stale-bound-ms (default 2000) of max(partition start, session start),
     unless the partition ended first.  A session the partition cuts from
     its node ("cut") must end instead, within --cut-bound-ms (default
     4000: the client library gives up after 3 silent 1 s heartbeats).
LIVE a live subscriber is not behind an ack: a subscriber is live on a node
     from a heartbeat with stale=false until a stale heartbeat, disconnect,
     error, stop, subscribe, resume, snapshot begin or a record from another
     node.  For every ok write of a watched key (revision R, completed at
     A): at D = max(A, live start) + --live-lag-bound-ms (default 5000), if
     still live on that node, the subscriber's position (highest change,
     snapshot end or heartbeat revision) must be >= R.
"""

import argparse
import bisect
import glob
import json
import os
import re
import sys

INF = float("inf")
WRITE_OPS = ("set", "cas", "del")
PROPERTIES = [
    ("W1", "no acknowledged write lost"),
    ("W2", "no value that was never written"),
    ("W3", "one value per (key, revision)"),
    ("W4", "real-time order of writes"),
    ("ONCE", "no write applied twice or despite a refusal"),
    ("R", "reads linearizable / consistent"),
    ("S-order", "subscriber revisions strictly increase"),
    ("S-dup", "no duplicate event"),
    ("S-gap", "no silent gap"),
    ("S-resync", "snapshot/resync contents = committed state"),
    ("S-filter", "events only for watched keys"),
    ("CONV", "convergence after healing"),
    ("P", "minority acknowledges nothing"),
    ("L", "leaderless node tells its subscribers"),
    ("LIVE", "a live subscriber is not behind an ack"),
]
RESTART_RE = re.compile(r"kill|crash|restart|power|wipe|lose|corrupt", re.I)


class HistoryError(Exception):
    """Malformed history (exit 2)."""


def vkey(v):
    """Canonical comparable form of a JSON value."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def show(vk):
    return "<deleted>" if vk is None else vk


def sid(x):
    return None if x is None else str(x)


# --------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------


class Op:
    __slots__ = ("idx", "proc", "seq", "op", "key", "vk", "expected", "invoke",
                 "complete", "outcome", "revision", "read_vk", "found",
                 "applied", "node", "lin", "src", "current_rev", "error",
                 "bound_rev", "gave_up")

    def is_write(self):
        return self.op in WRITE_OPS

    def desc(self, c):
        s = "%s proc %s %s %s" % (self.src, self.proc, self.op, self.key)
        if self.op in ("set", "cas"):
            s += "=%s" % self.vk
        if self.expected is not None:
            s += " if-rev %d" % self.expected
        if self.op == "get":
            s += " (%s)" % ("linearizable" if self.lin else "stale")
        s += " %s" % self.outcome
        if self.op == "get" and self.outcome == "ok":
            s += " -> %s" % ("NOT_FOUND" if not self.found else "%s rev %s" % (
                self.read_vk, self.revision))
            if self.applied is not None:
                s += " applied %d" % self.applied
        elif self.revision is not None:
            s += " rev %d" % self.revision
        if self.node is not None:
            s += " node %s" % self.node
        s += " [%s .. %s]" % (c.ft(self.invoke), c.ft(self.gave_up))
        return s


class SubRec:
    __slots__ = ("sub", "node", "t", "type", "revision", "resync", "flags",
                 "stale", "applied", "prefixes", "src", "status", "order")

    def desc(self, c):
        s = "%s sub %s node %s %s" % (self.src, self.sub, self.node, self.type)
        if self.type == "heartbeat":
            s += " applied %s stale %s" % (self.applied, self.stale)
        elif self.revision is not None:
            s += " rev %d" % self.revision
        if self.type == "begin":
            s += " resync %s" % self.resync
        if self.flags:
            s += " [%s]" % ", ".join("%s=%s@%s" % (k, show(v), r)
                                     for k, v, r in self.flags)
        s += " at %s" % c.ft(self.t)
        return s


def _int(rec, name, src, required=False):
    v = rec.get(name)
    if v is None:
        if required:
            raise HistoryError("%s: missing %r" % (src, name))
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise HistoryError("%s: %r must be an integer, got %r" % (src, name, v))
    return v


def _read_jsonl(path):
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            src = "%s:%d" % (name, n)
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise HistoryError("%s: bad JSON: %s" % (src, e))
            if not isinstance(rec, dict):
                raise HistoryError("%s: not a JSON object" % src)
            yield src, rec


# --------------------------------------------------------------------------
# Wing-Gong-Lowe search over one key
# --------------------------------------------------------------------------


class SOp:
    """One op of a single-key search: kind 'w' (value or None=delete) or
    'r' (expects value or None=absent)."""
    __slots__ = ("kind", "val", "call", "ret", "must", "chain", "ref")

    def __init__(self, kind, val, call, ret, must, chain, ref):
        self.kind, self.val, self.call, self.ret = kind, val, call, ret
        self.must, self.chain, self.ref = must, chain, ref


def wgl_search(ops, budget):
    """Returns ("ok"|"fail"|"unknown", states explored)."""
    n = len(ops)
    evs = []
    for i, o in enumerate(ops):
        evs.append((o.call, 0, i))
        evs.append((o.ret, 1, i))
    evs.sort(key=lambda e: (e[0], e[1], e[2]))
    m = len(evs)
    nxt = list(range(1, m + 2))
    nxt[m] = -1
    prv = list(range(-1, m))
    kind = [0] * (m + 1)
    opi = [0] * (m + 1)
    callp = [0] * n
    retp = [0] * n
    for p, (_, k, i) in enumerate(evs, 1):
        kind[p], opi[p] = k, i
        if k == 0:
            callp[i] = p
        else:
            retp[i] = p

    def lift(i):
        for p in (callp[i], retp[i]):
            nxt[prv[p]] = nxt[p]
            if nxt[p] != -1:
                prv[nxt[p]] = prv[p]

    def unlift(i):
        for p in (retp[i], callp[i]):
            nxt[prv[p]] = p
            if nxt[p] != -1:
                prv[nxt[p]] = p

    # Optional deletes (unknown outcome, never seen) are interchangeable:
    # same effect, may apply any time after invoke or never.  Among those
    # callable at one point only the first is tried (symmetry reduction).
    optdel = [o.kind == "w" and o.val is None and not o.must and o.chain is None
              and o.ret == INF for o in ops]
    must_left = sum(1 for o in ops if o.must)
    state, lin, chain_next, steps = None, 0, 0, 0
    cache = set()
    stack = []
    entry = nxt[0]
    skip_optdel = False
    while True:
        if must_left == 0:
            return "ok", steps
        if entry == -1:  # cannot happen: every call has a later return
            return "fail", steps
        if kind[entry] == 0:
            i = opi[entry]
            o = ops[i]
            if optdel[i] and skip_optdel:
                entry = nxt[entry]
                continue
            if o.kind == "w":
                ok = o.chain is None or o.chain == chain_next
                new = o.val
            else:
                ok = state == o.val
                new = state
            if ok:
                nl = lin | (1 << i)
                ck = (nl, new)
                if ck not in cache:
                    steps += 1
                    if steps > budget:
                        return "unknown", steps
                    cache.add(ck)
                    stack.append((entry, state, chain_next, skip_optdel))
                    skip_optdel = False
                    lin, state = nl, new
                    if o.chain is not None:
                        chain_next += 1
                    if o.must:
                        must_left -= 1
                    lift(i)
                    entry = nxt[0]
                    continue
            if optdel[i]:
                skip_optdel = True  # an equivalent configuration was explored
            entry = nxt[entry]
        else:
            if not stack:
                return "fail", steps
            entry, state, chain_next, skip_optdel = stack.pop()
            i = opi[entry]
            if optdel[i]:
                skip_optdel = True
            lin &= ~(1 << i)
            if ops[i].must:
                must_left += 1
            unlift(i)
            entry = nxt[entry]


# --------------------------------------------------------------------------
# the checker
# --------------------------------------------------------------------------


class Checker:
    def __init__(self, hdir, search_budget=500000, converge_bound_ms=10000,
                 stale_bound_ms=2000, partition_grace_ms=0, cut_bound_ms=4000,
                 unique_revisions=False, live_lag_bound_ms=5000):
        self.hdir = hdir
        self.budget = search_budget
        self.conv_bound = converge_bound_ms * 1000000
        self.stale_bound = stale_bound_ms * 1000000
        self.cut_bound = cut_bound_ms * 1000000
        self.live_bound = live_lag_bound_ms * 1000000
        self.grace = partition_grace_ms * 1000000
        self.unique_revs = unique_revisions
        self.violations = {p: [] for p, _ in PROPERTIES}
        self.unknowns = []
        self.stats = {}
        self.t0 = 0

    # ---- helpers --------------------------------------------------------

    def ft(self, t):
        if t is None:
            return "?"
        if t == INF:
            return "inf"
        return "+%.6fs" % ((t - self.t0) / 1e9)

    def violate(self, prop, t, msg, **details):
        v = {"property": prop, "t_ns": None if t in (None, INF) else t,
             "time": self.ft(t), "message": msg}
        v.update(details)
        v["_sort"] = INF if t is None else t
        self.violations[prop].append(v)

    def unknown(self, prop, msg, **details):
        d = {"property": prop, "message": msg}
        d.update(details)
        self.unknowns.append(d)

    # ---- loading --------------------------------------------------------

    def load(self):
        if not os.path.isdir(self.hdir):
            raise HistoryError("%s: not a directory" % self.hdir)
        self.ops = []
        self.ignored_ops = 0
        pending = {}
        files = sorted(set(glob.glob(os.path.join(self.hdir, "ops*.jsonl"))))
        for path in files:
            for src, rec in _read_jsonl(path):
                typ = rec.get("type", "complete")
                proc = sid(rec.get("proc"))
                if proc is None:
                    raise HistoryError("%s: missing 'proc'" % src)
                seq = rec.get("seq")
                if typ == "invoke":
                    pending.setdefault((proc, seq), []).append((src, rec))
                    continue
                if typ != "complete":
                    raise HistoryError("%s: unknown type %r" % (src, typ))
                lst = pending.get((proc, seq))
                if lst:
                    lst.pop(0)
                self._add_op(src, rec, complete=True)
        for lst in pending.values():
            for src, rec in lst:
                self._add_op(src, rec, complete=False)
        for i, o in enumerate(self.ops):
            o.idx = i

        self.subrecs = {}
        self.sub_prefixes = {}
        order = 0
        for path in sorted(glob.glob(os.path.join(self.hdir, "subs*.jsonl"))):
            for src, rec in _read_jsonl(path):
                r = self._sub_rec(src, rec)
                r.order = order
                order += 1
                self.subrecs.setdefault(r.sub, []).append(r)
                if r.prefixes is not None and r.sub not in self.sub_prefixes:
                    self.sub_prefixes[r.sub] = r.prefixes
        for recs in self.subrecs.values():
            recs.sort(key=lambda r: (r.t, r.order))

        self.final = None
        fp = os.path.join(self.hdir, "final.json")
        if os.path.exists(fp):
            try:
                with open(fp, encoding="utf-8") as f:
                    self.final = json.load(f)
            except ValueError as e:
                raise HistoryError("final.json: bad JSON: %s" % e)
            if not isinstance(self.final, dict):
                raise HistoryError("final.json: not an object")

        self.nemesis = []
        np_ = os.path.join(self.hdir, "nemesis.jsonl")
        for path in sorted(glob.glob(os.path.join(self.hdir, "nemesis*.jsonl"))):
            for src, rec in _read_jsonl(path):
                t = _int(rec, "t_ns", src, required=True)
                act = rec.get("action")
                if act not in ("start", "stop"):
                    raise HistoryError("%s: action must be start or stop" % src)
                self.nemesis.append({
                    "t": t, "fault": str(rec.get("fault", "?")),
                    "nodes": [sid(x) for x in rec.get("nodes") or []],
                    "minority": [sid(x) for x in rec.get("minority") or []],
                    "cut": {(sid(p[0]), sid(p[1])) for p in rec.get("cut") or []
                            if isinstance(p, list) and len(p) == 2},
                    "subs": [sid(x) for x in rec.get("subs") or []],
                    "action": act, "id": rec.get("id"), "src": src})
        del np_
        self.nemesis.sort(key=lambda r: r["t"])

        times = [o.invoke for o in self.ops]
        times += [r.t for recs in self.subrecs.values() for r in recs]
        times += [n["t"] for n in self.nemesis]
        self.t0 = min(times) if times else 0
        self.healed = None
        if self.final is not None and self.final.get("healed_ns") is not None:
            self.healed = self.final["healed_ns"]

    def _add_op(self, src, rec, complete):
        o = Op()
        o.src = src
        o.proc = sid(rec.get("proc"))
        o.seq = rec.get("seq")
        op = rec.get("op")
        if op == "delete":
            op = "del"
        if op not in ("set", "cas", "del", "get"):
            self.ignored_ops += 1
            return
        o.key = rec.get("key")
        if not isinstance(o.key, str):
            raise HistoryError("%s: missing or non-string 'key'" % src)
        o.expected = _int(rec, "expected_revision", src)
        if op == "set" and o.expected is not None:
            op = "cas"
        if op == "cas" and o.expected is None:
            raise HistoryError("%s: cas without expected_revision" % src)
        o.op = op
        o.invoke = _int(rec, "invoke_ns", src, required=True)
        outcome = rec.get("outcome") if complete else "unknown"
        if outcome == "info":
            outcome = "unknown"
        if outcome not in ("ok", "fail", "unknown"):
            raise HistoryError("%s: outcome must be ok, fail or unknown" % src)
        o.outcome = outcome
        o.gave_up = _int(rec, "complete_ns", src) if complete else None
        if outcome == "unknown":
            o.complete = INF  # may take effect at any time after invoke
        else:
            o.complete = _int(rec, "complete_ns", src, required=True)
            if o.complete < o.invoke:
                raise HistoryError("%s: complete_ns before invoke_ns" % src)
            o.gave_up = o.complete
        o.vk = None
        if op in ("set", "cas"):
            if rec.get("value") is None:
                raise HistoryError("%s: %s without a (non-null) value" % (src, op))
            o.vk = vkey(rec["value"])
        o.revision = _int(rec, "revision", src)
        if o.is_write() and outcome == "ok" and o.revision is None:
            raise HistoryError("%s: ok %s without 'revision'" % (src, op))
        o.found = False
        o.read_vk = None
        o.lin = bool(rec.get("linearizable", True))
        if op == "get" and outcome == "ok":
            rv = rec.get("read_value")
            o.found = rv is not None
            o.read_vk = vkey(rv) if o.found else None
            if not o.found:
                o.revision = None
        o.applied = _int(rec, "applied_revision", src)
        o.node = sid(rec.get("node"))
        o.current_rev = _int(rec, "current_revision", src)
        o.error = rec.get("error")
        o.bound_rev = o.revision if (o.is_write() and outcome == "ok") else None
        if op == "get" and outcome != "ok":
            pass  # counted, not checked
        self.ops.append(o)

    def _sub_rec(self, src, rec):
        r = SubRec()
        r.src = src
        r.sub = sid(rec.get("sub"))
        if r.sub is None:
            raise HistoryError("%s: missing 'sub'" % src)
        r.node = sid(rec.get("node"))
        r.t = _int(rec, "t_ns", src, required=True)
        r.type = rec.get("type")
        if r.type not in ("subscribe", "resume", "begin", "item", "end",
                          "change", "heartbeat", "disconnect", "error", "stop"):
            raise HistoryError("%s: unknown subscriber record type %r" % (src, r.type))
        r.revision = _int(rec, "revision", src)
        r.applied = _int(rec, "applied", src)
        if r.type == "heartbeat" and r.applied is None:
            r.applied = r.revision
        if r.type in ("resume", "begin", "end", "change") and r.revision is None:
            raise HistoryError("%s: %s without 'revision'" % (src, r.type))
        r.resync = bool(rec.get("resync", False))
        r.stale = bool(rec.get("stale", False))
        r.status = rec.get("status")
        p = rec.get("prefixes")
        r.prefixes = None if p is None else [str(x) for x in p]
        flags = rec.get("flags")
        if flags is None and rec.get("flag") is not None:
            flags = [rec["flag"]]
        r.flags = []
        for f in flags or []:
            if not isinstance(f, dict) or not isinstance(f.get("key"), str):
                raise HistoryError("%s: bad flag %r" % (src, f))
            rev = _int(f, "revision", src)
            if rev is None:
                rev = r.revision if r.type == "change" else None
            if rev is None:
                raise HistoryError("%s: flag without revision" % src)
            if f.get("deleted"):
                r.flags.append((f["key"], None, rev))
            else:
                if f.get("value") is None:
                    raise HistoryError("%s: flag without value (and not deleted)" % src)
                r.flags.append((f["key"], vkey(f["value"]), rev))
        if r.type in ("item", "change") and not r.flags:
            raise HistoryError("%s: %s without flags" % (src, r.type))
        return r

    # ---- committed history --------------------------------------------

    def build_table(self):
        """(key, rev) -> value table from every source, W2/W3 on the way."""
        self.table = {}       # key -> {rev: (vk|None, src, t)}
        self.rev_key = {}     # rev -> (key, src)
        self.value_rev = {}   # vk -> (rev, src)
        self.value_op = {}    # vk -> write op
        self.dels = {}        # key -> [del ops]
        self.bad_keys = set()  # keys with W2/W3 trouble (search skipped)
        for o in self.ops:
            if o.op in ("set", "cas"):
                if o.vk in self.value_op:
                    raise HistoryError(
                        "%s: value %s already written by %s; values must be unique"
                        % (o.src, o.vk, self.value_op[o.vk].src))
                self.value_op[o.vk] = o
            elif o.op == "del":
                self.dels.setdefault(o.key, []).append(o)
        self.obs_count = 0
        self.phantom = set()  # (key, rev) of W2 phantoms (W1 ignores them)
        self.seen_norev = set()  # values seen without a revision
        self.del_obs = {}  # (key, rev) -> (t, src) for deletions not acked

        for o in self.ops:  # acks first: they are the preferred sources
            if o.outcome == "ok" and o.is_write():
                self.record(o.key, o.revision, None if o.op == "del" else o.vk,
                            o.complete, o.desc(self), ack=o)
        for o in self.ops:
            if o.outcome == "ok" and o.op == "get" and o.found:
                self.record(o.key, o.revision, o.read_vk, o.complete,
                            o.desc(self), no_rev=o.revision is None)
        for recs in self.subrecs.values():
            for r in recs:
                if r.type in ("change", "item"):
                    for k, v, rev in r.flags:
                        self.record(k, rev, v, r.t, r.desc(self))
        # when the final reads were seen: writes may run until they begin
        reads_t = self.final.get("reads_done_ns") if self.final is not None else None
        healed_t = INF if reads_t is None else reads_t
        if self.final is not None:
            for node, keys in (self.final.get("reads") or {}).items():
                if keys is None:
                    continue
                for k, fr in keys.items():
                    if fr is None:
                        continue
                    rev = _int(fr, "revision", "final.json reads[%s][%s]" % (node, k))
                    if fr.get("value") is None:
                        raise HistoryError("final.json: reads[%s][%s] without value" % (node, k))
                    self.record(k, rev, vkey(fr["value"]), healed_t,
                                "final.json read of %s on node %s -> %s rev %s"
                                % (k, node, vkey(fr["value"]), rev),
                                no_rev=rev is None)
            for s, view in (self.final.get("subscribers_final") or {}).items():
                for k, v in (view or {}).items():
                    if v is not None:
                        self.record(k, None, vkey(v), healed_t,
                                    "final.json subscribers_final[%s][%s] = %s"
                                    % (s, k, vkey(v)), no_rev=True)

        # committed unknown writes
        for k, revs in self.table.items():
            for rev, (vk, src, t) in revs.items():
                if vk is not None:
                    o = self.value_op.get(vk)
                    if o is not None and o.key == k and o.outcome == "unknown" \
                            and o.bound_rev is None:
                        o.bound_rev = rev
        # match observed deletions to delete ops
        for k in sorted(set(k for k, _ in self.del_obs)):
            obs = sorted((rev, t, src) for (kk, rev), (t, src) in self.del_obs.items()
                         if kk == k)
            cands = sorted((d for d in self.dels.get(k, [])
                            if d.outcome == "unknown"), key=lambda d: d.invoke)
            for rev, t, src in obs:
                pick = None
                for d in cands:
                    if d.bound_rev is None and d.invoke < t:
                        pick = d
                        break
                refused = [d for d in self.dels.get(k, []) if d.outcome == "fail"
                           and d.invoke < t and d.bound_rev is None]
                if pick is None and refused:
                    refused[0].bound_rev = rev
                    self.bad_keys.add(k)
                    self.phantom.add((k, rev))
                    self.violate("ONCE", t, "applied despite a refusal: deletion of %s at rev "
                                 "%d that only a refused delete explains: %s; seen in %s"
                                 % (k, rev, refused[0].desc(self), src), key=k, revision=rev,
                                 proc=refused[0].proc)
                elif pick is None:
                    self.bad_keys.add(k)
                    self.phantom.add((k, rev))
                    self.violate("W2", t, "deletion of %s at rev %d that no pending "
                                 "delete explains (no ok delete acked at that revision, "
                                 "no unknown delete of the key invoked before it was seen)"
                                 % (k, rev), key=k, revision=rev, seen=src)
                else:
                    pick.bound_rev = rev
        self.sorted_revs = {k: sorted(v) for k, v in self.table.items()}
        self.unknown_sets = {}
        self.acks = {}
        for o in self.ops:
            if o.op in ("set", "cas") and o.outcome == "unknown":
                self.unknown_sets.setdefault(o.key, []).append(o)
            if o.is_write() and o.outcome == "ok":
                self.acks[(o.key, o.revision)] = o

    def record(self, k, rev, vk, t, src, ack=None, no_rev=False):
        """One observation (or ack) of key k at revision rev with value vk
        (None = deleted)."""
        self.obs_count += 1
        if vk is not None and ack is None:
            o = self.value_op.get(vk)
            why = None
            if o is None:
                why = "no set/cas ever wrote this value"
            elif o.key != k:
                why = "it was written to key %s (%s)" % (o.key, o.src)
            elif o.outcome == "fail":
                self.refused_seen(o, k, rev, t, src)
            elif t < o.invoke:
                why = "it was seen before its write was invoked (%s)" % o.desc(self)
            if why:
                self.bad_keys.add(k)
                self.phantom.add((k, rev))
                self.violate("W2", t, "phantom value %s of key %s%s: %s; seen in %s"
                             % (vk, k, "" if rev is None else " (rev %d)" % rev, why, src),
                             key=k, value=vk, revision=rev, seen=src)
            elif o.outcome == "ok" and rev is not None and o.revision != rev:
                self.bad_keys.add(k)
                self.violate("W3", t, "write acked at rev %d seen at rev %d: %s; seen in %s"
                             % (o.revision, rev, o.desc(self), src),
                             key=k, value=vk, revision=rev)
        if rev is None or no_rev:
            if vk is not None:
                self.seen_norev.add(vk)
            return
        revs = self.table.setdefault(k, {})
        old = revs.get(rev)
        if old is None:
            revs[rev] = (vk, src, t)
            if vk is None and ack is None:
                # a deletion seen (acks come first, so not an acked one)
                self.del_obs[(k, rev)] = (t, src)
        elif old[0] != vk:
            self.bad_keys.add(k)
            self.violate("W3", max(t, old[2]) if t != INF else old[2],
                         "two values for %s at rev %d: %s (%s) vs %s (%s)"
                         % (k, rev, show(old[0]), old[1], show(vk), src),
                         key=k, revision=rev)
        prev = self.rev_key.get(rev)
        if prev is None:
            self.rev_key[rev] = (k, src)
        elif prev[0] != k and self.unique_revs:
            self.violate("W3", t, "revision %d used by two keys: %s (%s) and %s (%s)"
                         % (rev, prev[0], prev[1], k, src), revision=rev)
            self.rev_key[rev] = (k, src)  # report each pair once-ish
        if vk is not None:
            pv = self.value_rev.get(vk)
            if pv is None:
                self.value_rev[vk] = (rev, src)
            elif pv[0] != rev:
                self.bad_keys.add(k)
                self.violate("ONCE", t, "applied twice: write %s of %s seen at two "
                             "revisions: %d (%s) and %d (%s)"
                             % (vk, k, pv[0], pv[1], rev, src), key=k, value=vk)

    def refused_seen(self, o, k, rev, t, src):
        """ONCE: write o was answered "fail" (definitely not applied), yet
        its value was seen."""
        self.bad_keys.add(k)
        self.phantom.add((k, rev))
        what = o.error or "fail"
        extra = ""
        if o.current_rev is not None and rev is not None and o.current_rev == rev:
            extra = " (the conflict named the write's own revision as the current one)"
        self.violate("ONCE", t, "applied despite a refusal: %s was told %s, yet its value "
                     "is in the history%s%s; seen in %s"
                     % (o.desc(self), what, "" if rev is None else " at rev %d" % rev,
                        extra, src), key=k, value=o.vk, revision=rev, proc=o.proc)

    def latest_le(self, k, x):
        """(rev, vk) of the last committed change of k with rev <= x."""
        revs = self.sorted_revs.get(k)
        if not revs or x is None:
            return None
        i = bisect.bisect_right(revs, x)
        if i == 0:
            return None
        r = revs[i - 1]
        return r, self.table[k][r][0]

    def changes_between(self, k, lo, hi):
        """Revisions of committed changes of k with lo < rev < hi."""
        revs = self.sorted_revs.get(k, [])
        return revs[bisect.bisect_right(revs, lo):bisect.bisect_left(revs, hi)]

    def compute_coverage(self):
        """Which unseen unknown writes can be ruled out.

        A subscriber "covers" key k up to revision P when it watched k from
        a snapshot that ended before any write of k was invoked, and then
        moved only by changes, heartbeats and resumes from its own position
        (no later snapshot, no fresh re-subscribe) up to P: it was owed every
        change of k in between.  An unknown write committed before time T
        has an index below that of any write invoked after T; so if such a
        write B has rev(B) <= P, a change of k committed before T would have
        been delivered (else S-gap is violated anyway): an unseen unknown
        write of k did not apply before T and cannot explain a read that
        completed at T.  Likewise when the final read of k found revision
        rf <= P: no change of k ever committed above rf."""
        self.cov = {}  # key -> (P, sub)
        first_write = {}
        for o in self.ops:
            if o.is_write():
                first_write[o.key] = min(first_write.get(o.key, INF), o.invoke)
        for sub, recs in self.subrecs.items():
            pos = s0_t = None
            ok = True
            for r in recs:
                if r.type == "subscribe":
                    ok = ok and s0_t is None
                elif r.type == "begin":
                    if s0_t is not None or pos is not None:
                        ok = False
                elif r.type == "end":
                    if s0_t is None:
                        s0_t = r.t
                    pos = r.revision
                elif r.type == "change":
                    if pos is None:
                        ok = False
                    else:
                        pos = max(pos, r.revision)
                elif r.type == "heartbeat":
                    if pos is not None and r.applied is not None:
                        pos = max(pos, r.applied)
                elif r.type == "resume":
                    if pos is None or r.revision > pos:
                        ok = False
                    else:
                        pos = r.revision
            if not ok or s0_t is None or pos is None:
                continue
            for k, t in first_write.items():
                if t > s0_t and self.watched(sub, k) and pos > self.cov.get(k, (-1,))[0]:
                    self.cov[k] = (pos, sub)
        # next_rev[i]: lowest known revision of a write invoked at or after
        # wr_inv[i]
        ws = sorted((o.invoke, o.bound_rev) for o in self.ops
                    if o.is_write() and o.bound_rev is not None)
        self.wr_inv = [w[0] for w in ws]
        self.next_rev = [0] * len(ws)
        low = INF
        for i in range(len(ws) - 1, -1, -1):
            low = min(low, ws[i][1])
            self.next_rev[i] = low

    def ruled_out(self, k, t):
        """True when no unseen unknown write of k can have applied before
        time t (see compute_coverage)."""
        c = self.cov.get(k)
        if c is None:
            return False
        fin = self.final_by_key.get(k)
        if fin is not None and fin[1] is not None and fin[1] <= c[0]:
            return True  # a later hidden change would show in the final read
        i = bisect.bisect_right(self.wr_inv, t)
        return i < len(self.wr_inv) and self.next_rev[i] <= c[0]

    def hidden_del(self, k, before_t, exclude=None):
        """An unknown delete of k, not matched to any observed deletion,
        invoked before before_t: it may have applied unseen."""
        if self.ruled_out(k, before_t):
            return None
        for d in self.dels.get(k, []):
            if d.outcome == "unknown" and d.bound_rev is None and d.invoke < before_t \
                    and d is not exclude:
                return d
        return None

    def hidden_set(self, k, before_t):
        """An unknown set/cas of k never seen: it may have applied unseen."""
        if self.ruled_out(k, before_t):
            return None
        for o in self.unknown_sets.get(k, []):
            if o.bound_rev is None and o.invoke < before_t:
                return o
        return None

    # ---- G(t): highest index known committed before t -------------------

    def build_evidence(self):
        """(time, index, source, keys changed at that index it shows)."""
        ev = []
        for o in self.ops:
            if o.outcome == "ok":
                if o.is_write():
                    ev.append((o.complete, o.revision, o.desc(self), (o.key,)))
                elif o.op == "get":
                    if o.revision is not None:
                        ev.append((o.complete, o.revision, o.desc(self), (o.key,)))
                    if o.applied is not None:
                        ev.append((o.complete, o.applied, o.desc(self), ()))
            elif o.outcome == "fail" and o.current_rev:
                ev.append((o.complete, o.current_rev, o.desc(self), (o.key,)))
        for recs in self.subrecs.values():
            for r in recs:
                if r.type == "change":
                    ev.append((r.t, r.revision, r.desc(self), tuple(k for k, _, _ in r.flags)))
                elif r.type in ("begin", "end") and r.revision is not None:
                    ev.append((r.t, r.revision, r.desc(self), ()))
                elif r.type == "heartbeat" and r.applied is not None:
                    ev.append((r.t, r.applied, r.desc(self), ()))
                if r.type == "item":
                    for k, _, rev in r.flags:
                        ev.append((r.t, rev, r.desc(self), (k,)))
        ev.sort(key=lambda e: e[0])
        self.ev_t = [e[0] for e in ev]
        self.ev_max = []
        best = (-1, None, None, ())
        for t, rev, src, keys in ev:
            if rev > best[0]:
                best = (rev, src, t, keys)
            self.ev_max.append(best)

    def G(self, t):
        """(index, src, time, keys): the highest index known committed
        strictly before t, or (-1, None, None, ())."""
        i = bisect.bisect_left(self.ev_t, t)
        if i == 0:
            return (-1, None, None, ())
        return self.ev_max[i - 1]

    # ---- W4 ---------------------------------------------------------------

    def check_w4(self):
        for o in self.ops:
            if not o.is_write() or o.bound_rev is None or o.outcome == "fail":
                continue
            g, src, gt, keys = self.G(o.invoke)
            if g < o.bound_rev:
                continue
            if g == o.bound_rev and o.key in keys:
                continue  # its own change seen before invoke: W2 reports it
            self.violate("W4", o.invoke,
                         "write got rev %d but index %d was already committed before "
                         "it was invoked (seen in %s at %s): %s"
                         % (o.bound_rev, g, src, self.ft(gt), o.desc(self)),
                         key=o.key, revision=o.bound_rev)

    # ---- W1 and final agreement ---------------------------------------

    def final_state(self):
        """key -> (vk|None, rev|None) consensus of the final reads."""
        self.final_by_key = {}
        if self.final is None:
            self.unknown("W1", "no final.json: lost acks cannot be checked")
            return
        reads = self.final.get("reads") or {}
        per_key = {}
        for node, keys in reads.items():
            if keys is None:
                continue
            for k, fr in keys.items():
                val = None if fr is None else (vkey(fr["value"]), fr.get("revision"))
                per_key.setdefault(k, []).append((sid(node), val))
        for k, lst in sorted(per_key.items()):
            answers = {}
            for node, val in lst:
                answers.setdefault(val, []).append(node)
            best = max(answers.items(),
                       key=lambda a: (len(a[1]), -1 if a[0] is None else (a[0][1] or 0)))
            self.final_by_key[k] = best[0]
            if len(answers) > 1:
                self.violate("CONV", self.healed,
                             "nodes disagree after healing on %s: %s" % (k, "; ".join(
                                 "nodes %s read %s" % (",".join(ns), "NOT_FOUND" if a is None
                                                       else "%s rev %s" % a)
                                 for a, ns in answers.items())), key=k)
        self.final_reads = per_key

    def check_w1(self):
        if self.final is None:
            return
        keys = set(k for k in self.table) | set(o.key for o in self.ops if o.is_write()
                                                and o.outcome == "ok")
        for k in sorted(keys):
            lst = self.final_reads.get(k)
            if not lst:
                if any(kk == k for kk, _ in self.acks):
                    self.unknown("W1", "key %s has acked writes but no final read" % k, key=k)
                continue
            revs = [r for r in self.sorted_revs.get(k, []) if (k, r) not in self.phantom]
            if not revs:
                continue
            for node, val in lst:
                if val is not None and val[1] is not None:
                    frev = val[1]
                    later = revs[bisect.bisect_right(revs, frev):]
                    if later:
                        self._lost(k, later[0], "node %s's final read is %s rev %d"
                                   % (node, val[0], frev), len(later))
                elif val is None:
                    last = revs[-1]
                    if self.table[k][last][0] is not None:
                        d = self.hidden_del(k, INF)
                        if d is None:
                            self._lost(k, last, "node %s's final read is NOT_FOUND and no "
                                       "delete after it" % node, 1)

    def _lost(self, k, rev, why, n):
        vk, src, t = self.table[k][rev]
        ack = self.acks.get((k, rev))
        if ack is not None:
            self.violate("W1", ack.complete, "lost ack: %s; %s (%d later committed "
                         "change(s) of %s missing)" % (ack.desc(self), why, n, k),
                         key=k, revision=rev, value=vk, proc=ack.proc)
        else:
            self.violate("W1", t, "lost committed change %s=%s rev %d (seen in %s); %s"
                         % (k, show(vk), rev, src, why), key=k, revision=rev, value=vk)

    # ---- R ----------------------------------------------------------------

    def check_reads(self):
        self.search_keys = set()
        gets = [o for o in self.ops if o.op == "get" and o.outcome == "ok"]
        self.n_lin = sum(1 for o in gets if o.lin)
        self.n_stale = len(gets) - self.n_lin
        for o in gets:
            k = o.key
            # applied_revision consistency (any get)
            if o.applied is not None:
                if o.found and o.revision is not None:
                    if o.revision > o.applied:
                        self.violate("R", o.complete, "flag revision beyond the node's "
                                     "applied revision: %s" % o.desc(self), key=k)
                    else:
                        mid = self.changes_between(k, o.revision, o.applied + 1)
                        if mid:
                            self._stale_violation(o, mid[0], "its node had applied %d"
                                                  % o.applied)
                elif not o.found:
                    last = self.latest_le(k, o.applied)
                    if last is not None and last[1] is not None and \
                            self.hidden_del(k, o.complete) is None:
                        self._stale_violation(o, last[0], "its node had applied %d"
                                              % o.applied)
            if not o.lin:
                continue
            g, gsrc, gt, _ = self.G(o.invoke)
            last = self.latest_le(k, g)
            why = "index %d was committed before the get was invoked (seen in %s at %s)" \
                % (g, gsrc, self.ft(gt))
            if o.found:
                if o.revision is None:
                    self.search_keys.add(k)
                elif last is not None and last[0] > o.revision:
                    self._stale_violation(o, last[0], why)
            else:
                self.search_keys.add(k)
                if last is not None and last[1] is not None:
                    # a set was committed before invoke: some delete after it
                    # must be able to precede the get's completion
                    ok = self.hidden_del(k, o.complete) is not None
                    for r in self.sorted_revs[k]:
                        if r > last[0] and self.table[k][r][0] is None:
                            ok = True
                            break
                    if not ok:
                        self._stale_violation(o, last[0], why)
        self.check_stale_monotonic(gets)
        self.check_cas()
        self.search()

    def _stale_violation(self, o, rev, why):
        vk, src, _ = self.table[o.key][rev]
        if self.ruled_out(o.key, o.complete):
            why += "; no unseen unknown write explains it: sub %s was owed every change " \
                "of %s up to rev %d" % (self.cov[o.key][1], o.key, self.cov[o.key][0])
        self.violate("R", o.complete if o.complete != INF else o.invoke,
                     "stale read: %s; but %s=%s rev %d (%s) was already committed: %s"
                     % (o.desc(self), o.key, show(vk), rev, src, why),
                     key=o.key, revision=o.revision, missed_revision=rev, proc=o.proc)

    def _restarts(self):
        res = {}
        for n in self.nemesis:
            if RESTART_RE.search(n["fault"]):
                for node in n["nodes"]:
                    res.setdefault(node, []).append(n["t"])
        for v in res.values():
            v.sort()
        return res

    def check_stale_monotonic(self, gets):
        restarts = self._restarts()
        by_node = {}
        for o in gets:
            if o.lin or o.node is None:
                continue
            rs = restarts.get(o.node, [])
            e1 = bisect.bisect_right(rs, o.invoke)
            e2 = bisect.bisect_right(rs, o.complete)
            if e1 != e2:
                continue
            by_node.setdefault((o.node, e1), []).append(o)
        for (node, _), lst in by_node.items():
            done = sorted(lst, key=lambda o: o.complete)
            cts = [o.complete for o in done]
            best_app = []
            best_key = []
            ba, bk = None, {}
            for o in done:
                if o.applied is not None and (ba is None or o.applied > ba.applied):
                    ba = o
                best_app.append(ba)
                if o.found and o.revision is not None:
                    cur = bk.get(o.key)
                    if cur is None or o.revision > cur.revision:
                        bk = dict(bk)
                        bk[o.key] = o
                best_key.append(bk)
            for o in sorted(lst, key=lambda o: o.invoke):
                i = bisect.bisect_left(cts, o.invoke)
                if i == 0:
                    continue
                a = best_app[i - 1]
                if a is not None and o.applied is not None and o.applied < a.applied:
                    self.violate("R", o.complete, "stale reads on node %s went back: "
                                 "applied %d after %d (%s): %s"
                                 % (node, o.applied, a.applied, a.desc(self), o.desc(self)),
                                 key=o.key, node=node)
                    continue
                p = best_key[i - 1].get(o.key)
                if p is not None:
                    if not o.found:
                        if self.hidden_del(o.key, o.complete) is None and not any(
                                r > p.revision and self.table[o.key][r][0] is None
                                for r in self.sorted_revs.get(o.key, [])):
                            self.violate("R", o.complete, "stale reads on node %s went "
                                         "back: %s after %s" % (node, o.desc(self),
                                                                 p.desc(self)), key=o.key)
                    elif o.revision is not None and o.revision < p.revision:
                        self.violate("R", o.complete, "stale reads on node %s went back: "
                                     "%s after %s" % (node, o.desc(self), p.desc(self)),
                                     key=o.key, node=node)

    def check_cas(self):
        for o in self.ops:
            if not o.is_write() or o.outcome != "ok":
                continue
            if o.op in ("set",):
                continue
            k, r = o.key, o.revision
            revs = self.sorted_revs.get(k, [])
            i = bisect.bisect_left(revs, r)
            prev = (revs[i - 1], self.table[k][revs[i - 1]][0]) if i > 0 else None
            E = o.expected
            bad = None
            if E is None:  # plain delete: the key must have existed
                if (prev is None or prev[1] is None) and self.hidden_set(k, o.complete) is None:
                    bad = "the key did not exist (previous change: %s)" % (
                        "none" if prev is None else "delete at rev %d" % prev[0])
            elif E == 0:
                if prev is not None and prev[1] is not None and \
                        self.hidden_del(k, o.complete) is None:
                    bad = "expected absent but %s=%s rev %d existed" % (k, prev[1], prev[0])
            else:
                if prev is not None and prev[0] > E:
                    bad = "expected rev %d but %s changed at rev %d (%s)" % (
                        E, k, prev[0], show(prev[1]))
                elif prev is not None and prev[0] == E and prev[1] is None:
                    bad = "expected rev %d but that change deleted %s" % (E, k)
                elif prev is None or prev[0] < E:
                    other = self.rev_key.get(E)
                    if other is not None and other[0] != k and self.unique_revs:
                        bad = "expected rev %d is a change of key %s" % (E, other[0])
                    elif self.hidden_set(k, o.complete) is None and \
                            self.hidden_del(k, o.complete) is None:
                        bad = "no change of %s at the expected rev %d" % (k, E)
            if bad:
                self.violate("R", o.complete, "compare-and-set applied against the wrong "
                             "state: %s: %s" % (o.desc(self), bad), key=k, revision=r,
                             proc=o.proc)

    def _search_ops(self, k, reads):
        sops = []
        chain = 0
        for rev in self.sorted_revs.get(k, []):
            vk = self.table[k][rev][0]
            op = None
            if vk is not None:
                op = self.value_op.get(vk)
            else:
                for d in self.dels.get(k, []):
                    if d.bound_rev == rev:
                        op = d
                        break
            if op is None:
                return None
            sops.append(SOp("w", vk, op.invoke, op.complete, True, chain, op))
            chain += 1
        for o in self.unknown_sets.get(k, []):
            # seen (without revision) but not in the table: committed somewhere
            if o.bound_rev is None and o.vk in self.seen_norev:
                sops.append(SOp("w", o.vk, o.invoke, INF, True, None, o))
        last_read = max((o.complete for o in reads), default=-1)
        last_done = max((o.complete for o in reads), default=-1)
        no_hidden = self.ruled_out(k, last_done)
        for d in ([] if no_hidden else self.dels.get(k, [])):
            # an unseen unknown delete may apply at any time after invoke, or
            # never; one sent after every read completed affects no read
            if d.outcome == "unknown" and d.bound_rev is None and d.invoke < last_read:
                sops.append(SOp("w", None, d.invoke, INF, False, None, d))
        for o in reads:
            sops.append(SOp("r", o.read_vk if o.found else None, o.invoke, o.complete,
                            True, None, o))
        return sops

    def search(self):
        self.n_searched = 0
        self.search_states = 0
        for k in sorted(self.search_keys):
            reads = sorted((o for o in self.ops if o.op == "get" and o.outcome == "ok"
                            and o.lin and o.key == k), key=lambda o: (o.invoke, o.idx))
            self.n_searched += len(reads)
            if k in self.bad_keys:
                continue  # W2/W3 already failed this key
            sops = self._search_ops(k, reads)
            if sops is None:
                continue
            res, steps = wgl_search(sops, self.budget)
            self.search_states += steps
            if res == "ok":
                continue
            if res == "unknown":
                self.unknown("R", "linearizability search of key %s gave up after %d "
                             "states (--read-search-budget %d): %d ops, %d reads"
                             % (k, steps, self.budget, len(sops), len(reads)), key=k)
                continue
            # find the first read whose inclusion breaks it
            lo, hi = 0, len(reads)  # reads[:hi] fails
            culprit_known = True
            while lo < hi:
                mid = (lo + hi) // 2
                r2, s2 = wgl_search(self._search_ops(k, reads[:mid]), self.budget)
                self.search_states += s2
                if r2 == "fail":
                    hi = mid
                elif r2 == "ok":
                    lo = mid + 1
                else:
                    culprit_known = False
                    break
            if culprit_known and hi >= 1:
                o = reads[hi - 1]
                self.violate("R", o.complete,
                             "not linearizable: %s cannot be placed in any order of the "
                             "writes of %s consistent with real time (with the %d gets "
                             "of the key invoked before it)" % (o.desc(self), k, hi - 1),
                             key=k, proc=o.proc)
            else:
                self.violate("R", reads[0].complete if reads else None,
                             "history of key %s is not linearizable (%d ops)"
                             % (k, len(sops)), key=k)

    # ---- subscribers ----------------------------------------------------

    def watched(self, sub, k):
        ps = self.sub_prefixes.get(sub)
        if not ps:
            return True
        return any(k.startswith(p) for p in ps)

    def check_subs(self):
        self.sessions = []
        self.n_events = 0
        self.sub_views = {}
        self.sub_conv = {}
        self.sub_stopped = set()
        all_keys = sorted(set(self.table) | set(o.key for o in self.ops) |
                          set(getattr(self, "final_by_key", {}) or {}))
        for sub, recs in sorted(self.subrecs.items()):
            wkeys = [k for k in all_keys if self.watched(sub, k)]
            wset = set(wkeys)
            wrevs = sorted(r for k in wkeys for r in self.table.get(k, {}))
            at_rev = {}
            for k in wkeys:
                for r in self.table.get(k, {}):
                    at_rev.setdefault(r, set()).add(k)
            final = getattr(self, "final_by_key", {})
            view = {}
            mism = set(k for k in wkeys if k in final and final[k] is not None)
            conv_t = None if mism else self.t0
            pos = None
            delivered = {}
            snap = None
            sess = None
            last_pos_src = None

            def close(t):
                nonlocal sess
                if sess is not None:
                    sess["end"] = t
                    self.sessions.append(sess)
                    sess = None

            def open_(r, kind):
                nonlocal sess
                close(r.t)
                sess = {"sub": sub, "node": r.node, "start": r.t, "end": INF,
                        "kind": kind, "data": False, "stale": [], "src": r.src,
                        "live": None}

            def matches(k, val):
                if k not in final:
                    return True  # no final read of k: nothing to compare
                fv = final[k]
                return val is None if fv is None else fv[0] == val

            def setv(k, val, rev, t):
                # conv_t: time of the last change to the copy, if the copy
                # now equals the final state (None while it does not)
                nonlocal conv_t
                old = view.pop(k, None)
                if val is not None:
                    view[k] = (val, rev)
                if (old[0] if old else None) == val:
                    return
                if matches(k, val):
                    mism.discard(k)
                else:
                    mism.add(k)
                conv_t = None if mism else t

            def gap(lo, hi, inclusive, r, what):
                i = bisect.bisect_right(wrevs, lo)
                j = bisect.bisect_right(wrevs, hi) if inclusive else bisect.bisect_left(wrevs, hi)
                if i < j:
                    g = wrevs[i]
                    ks = sorted(at_rev[g])
                    vk, src, _ = self.table[ks[0]][g]
                    self.violate("S-gap", r.t, "silent gap: sub %s %s, but the committed "
                                 "change %s=%s rev %d (%s) was never delivered (%d "
                                 "missed); last position %d (%s)"
                                 % (sub, what, ks[0], show(vk), g, src, j - i, lo,
                                    last_pos_src), sub=sub, key=ks[0], revision=g)

            # (R, keys, record) of the change being received; any other
            # record ends it
            cur = None

            def finish_change():
                nonlocal cur
                if cur is None:
                    return
                R, keys, cr = cur
                cur = None
                missing = at_rev.get(R, set()) - keys
                if missing:
                    k = sorted(missing)[0]
                    self.violate("S-gap", cr.t, "silent gap: sub %s got the change at rev %d "
                                 "without watched key %s=%s (%s): %s"
                                 % (sub, R, k, show(self.table[k][R][0]),
                                    self.table[k][R][1], cr.desc(self)),
                                 sub=sub, key=k, revision=R)

            for r in recs:
                self.n_events += 1
                t = r.t
                if r.type != "change":
                    finish_change()
                if r.type in ("subscribe", "resume"):
                    if snap is not None:
                        snap = None
                    open_(r, r.type)
                    if r.type == "resume":
                        R = r.revision
                        if pos is not None and R > pos:
                            gap(pos, R, True, r, "resumed from %d" % R)
                        pos = R
                        last_pos_src = r.src
                    else:
                        pos = None
                    continue
                if sess is not None and r.node is not None and sess["node"] is not None \
                        and r.node != sess["node"] and r.type not in ("disconnect", "error"):
                    # the client moved to another node without logging it:
                    # a new session there, resumed from its position
                    open_(r, "implicit")
                if r.type in ("disconnect", "error", "stop"):
                    close(t)
                    snap = None
                    if r.type == "stop":
                        self.sub_stopped.add(sub)
                    continue
                for k, _, _ in r.flags:
                    if k not in wset and not self.watched(sub, k):
                        self.violate("S-filter", t, "sub %s got an event for key %s outside "
                                     "its prefixes %s: %s" % (sub, k, self.sub_prefixes.get(sub),
                                                             r.desc(self)), sub=sub, key=k)
                if r.type == "begin":
                    if r.resync and sess is None:
                        open_(r, "implicit")  # the client resumed; a resync came
                    elif sess is None or (sess["data"] and not r.resync):
                        open_(r, "subscribe")  # a fresh subscription
                        pos = None
                    sess["data"] = True
                    if snap is not None:
                        self.violate("S-order", t, "sub %s: snapshot begins inside another "
                                     "snapshot: %s" % (sub, r.desc(self)), sub=sub)
                    if r.resync and pos is not None and r.revision < pos:
                        self.violate("S-order", t, "sub %s: resync snapshot at rev %d is "
                                     "below its position %d (%s): %s"
                                     % (sub, r.revision, pos, last_pos_src, r.desc(self)),
                                     sub=sub, revision=r.revision)
                    snap = {"S": r.revision, "items": {}, "src": r.src, "resync": r.resync}
                elif r.type == "item":
                    if snap is None:
                        self.violate("S-order", t, "sub %s: snapshot item outside a snapshot: "
                                     "%s" % (sub, r.desc(self)), sub=sub)
                        continue
                    for k, v, rev in r.flags:
                        if k in snap["items"]:
                            self.violate("S-resync", t, "sub %s: key %s twice in the snapshot "
                                         "at %d: %s" % (sub, k, snap["S"], r.desc(self)),
                                         sub=sub, key=k)
                        if v is None:
                            self.violate("S-resync", t, "sub %s: deleted flag %s as a snapshot "
                                         "item: %s" % (sub, k, r.desc(self)), sub=sub, key=k)
                        snap["items"][k] = (v, rev, r)
                elif r.type == "end":
                    if snap is None:
                        self.violate("S-order", t, "sub %s: snapshot end without begin: %s"
                                     % (sub, r.desc(self)), sub=sub)
                        continue
                    S = snap["S"]
                    if r.revision != S:
                        self.violate("S-resync", t, "sub %s: snapshot began at %d but ended "
                                     "at %d: %s" % (sub, S, r.revision, r.desc(self)), sub=sub)
                    self.check_snapshot(sub, wkeys, snap, r)
                    for k in list(view):
                        if k not in snap["items"]:
                            setv(k, None, S, t)
                    for k, (v, rev, _) in snap["items"].items():
                        setv(k, v, rev, t)
                    pos = S
                    last_pos_src = r.src
                    snap = None
                    if sess is not None and sess["live"] is None:
                        sess["live"] = t
                elif r.type == "change":
                    if sess is None:
                        open_(r, "implicit")
                    sess["data"] = True
                    R = r.revision
                    if snap is not None:
                        self.violate("S-order", t, "sub %s: change inside a snapshot (begun "
                                     "at %s): %s" % (sub, snap["src"], r.desc(self)), sub=sub)
                    elif pos is None and sess["kind"] == "subscribe":
                        self.violate("S-order", t, "sub %s: change before the snapshot of a "
                                     "fresh subscription (%s): %s"
                                     % (sub, sess["src"], r.desc(self)), sub=sub)
                    for k, v, rev in r.flags:
                        if rev != R:
                            self.violate("S-order", t, "sub %s: flag %s revision %d differs "
                                         "from the change's %d: %s"
                                         % (sub, k, rev, R, r.desc(self)), sub=sub, key=k)
                    if cur is not None and cur[0] == R and \
                            not (cur[1] & set(k for k, _, _ in r.flags)):
                        # the rest of one raft entry's changes (a client
                        # library may hand them over one flag at a time)
                        cur[1].update(k for k, _, _ in r.flags)
                        for k, v, rev in r.flags:
                            setv(k, v, R, t)
                        continue
                    finish_change()
                    if pos is not None and R <= pos:
                        if R in delivered:
                            self.violate("S-dup", t, "duplicate event: sub %s got rev %d "
                                         "again (first: %s); %s"
                                         % (sub, R, delivered[R], r.desc(self)),
                                         sub=sub, revision=R)
                        else:
                            self.violate("S-order", t, "out-of-order event: sub %s got rev %d "
                                         "after position %d (%s): %s"
                                         % (sub, R, pos, last_pos_src, r.desc(self)),
                                         sub=sub, revision=R)
                        continue
                    if pos is not None:
                        gap(pos, R, False, r, "jumped to rev %d" % R)
                    cur = (R, set(k for k, _, _ in r.flags), r)
                    for k, v, rev in r.flags:
                        setv(k, v, R, t)
                    delivered.setdefault(R, r.src)
                    if sess["live"] is None:
                        sess["live"] = t
                    pos = R
                    last_pos_src = r.src
                elif r.type == "heartbeat":
                    if sess is None:
                        open_(r, "implicit")
                    if sess["live"] is None:
                        sess["live"] = t
                    if r.stale:
                        sess["stale"].append(t)
                    A = r.applied
                    if A is not None and pos is not None and snap is None:
                        if A > pos:
                            gap(pos, A, True, r, "got a heartbeat at applied %d" % A)
                            pos = A
                            last_pos_src = r.src
            finish_change()
            close(INF)
            self.sub_views[sub] = view
            self.sub_conv[sub] = conv_t

    def check_snapshot(self, sub, wkeys, snap, r):
        S = snap["S"]
        items = snap["items"]
        what = "resync snapshot" if snap["resync"] else "snapshot"
        for k, (v, rev, ir) in sorted(items.items()):
            if rev > S:
                self.violate("S-resync", ir.t, "sub %s: %s at %d holds %s=%s at rev %d > %d: "
                             "%s" % (sub, what, S, k, show(v), rev, S, ir.desc(self)),
                             sub=sub, key=k)
                continue
            last = self.latest_le(k, S)
            if last is not None and last[0] > rev:
                self.violate("S-resync", r.t, "wrong %s contents: sub %s got %s=%s rev %d "
                             "in the %s at %d, but %s was %s at rev %d (%s) <= %d"
                             % (what, sub, k, show(v), rev, what, S, k, show(last[1]),
                                last[0], self.table[k][last[0]][1], S),
                             sub=sub, key=k, revision=S)
        for k in wkeys:
            if k in items:
                continue
            last = self.latest_le(k, S)
            if last is not None and last[1] is not None and \
                    self.hidden_del(k, r.t) is None:
                self.violate("S-resync", r.t, "wrong %s contents: sub %s's %s at %d lacks "
                             "%s, which was %s at rev %d (%s) (%s)"
                             % (what, sub, what, S, k, last[1], last[0],
                                self.table[k][last[0]][1], r.desc(self)),
                             sub=sub, key=k, revision=S)

    def check_conv(self):
        if self.final is None:
            return
        final = self.final_by_key
        last_w = max([o.invoke for o in self.ops if o.is_write()] or [0])
        deadline = None
        if self.healed is not None:
            deadline = max(self.healed, last_w) + self.conv_bound
        reported = self.final.get("subscribers_final") or {}
        for sub in sorted(self.subrecs):
            if sub in self.sub_stopped:
                continue
            view = self.sub_views.get(sub, {})
            mine = {k: v[0] for k, v in view.items()}
            if sub in reported:
                rep = {k: vkey(v) for k, v in (reported[sub] or {}).items() if v is not None}
                for k in sorted(set(rep) | set(mine)):
                    if not self.watched(sub, k):
                        continue
                    if rep.get(k) != mine.get(k):
                        self.violate("CONV", self.healed, "sub %s's reported final copy has "
                                     "%s=%s but its events gave %s" % (
                                         sub, k, rep.get(k) or "(absent)",
                                         mine.get(k) or "(absent)"),
                                     sub=sub, key=k)
                        break
                mine = rep
            bad = None
            for k in sorted(set(final) | set(mine)):
                if not self.watched(sub, k) or k not in final:
                    continue
                fv = final[k][0] if final[k] is not None else None
                if mine.get(k) != fv:
                    bad = k
                    break
            if bad is not None:
                fv = final[bad]
                held = mine.get(bad)
                self.violate("CONV", deadline, "sub %s did not converge: holds %s, final "
                             "value is %s" % (sub, "%s=%s" % (bad, held) if held is not None
                                              else "no %s" % bad,
                                              "NOT_FOUND" if fv is None
                                              else "%s rev %s" % fv), sub=sub, key=bad)
            elif deadline is not None and self.sub_conv.get(sub) is not None \
                    and self.sub_conv[sub] > deadline:
                self.violate("CONV", self.sub_conv[sub], "sub %s converged at %s, after the "
                             "bound %s (healed %s + %d ms)"
                             % (sub, self.ft(self.sub_conv[sub]), self.ft(deadline),
                                self.ft(self.healed), self.conv_bound // 1000000), sub=sub)

    # ---- nemesis: P and L --------------------------------------------

    def intervals(self):
        open_ = []
        out = []
        end_all = self.healed if self.healed is not None else INF
        for n in self.nemesis:
            if n["fault"] in ("heal", "all"):
                for f in open_:
                    f["end"] = n["t"]
                    out.append(f)
                open_ = []
                continue
            if n["action"] == "start":
                open_.append(dict(n, start=n["t"], end=INF))
                continue
            match = None
            for f in reversed(open_):
                if n["id"] is not None and f["id"] == n["id"]:
                    match = f
                    break
            if match is None and n["id"] is None:
                for f in reversed(open_):
                    if f["fault"] == n["fault"] and sorted(f["nodes"]) == sorted(n["nodes"]):
                        match = f
                        break
                if match is None:
                    for f in reversed(open_):
                        if f["fault"] == n["fault"]:
                            match = f
                            break
            if match is not None:
                match["end"] = n["t"]
                open_.remove(match)
                out.append(match)
        for f in open_:
            f["end"] = end_all
            out.append(f)
        out.sort(key=lambda f: f["start"])
        return out

    def check_nemesis(self):
        ivs = self.intervals()
        self.n_faults = len(ivs)
        parts = [f for f in ivs if f["minority"]]
        self.n_partitions = len(parts)
        for f in parts:
            mino = set(f["minority"])
            for o in self.ops:
                if o.outcome != "ok" or o.node not in mino:
                    continue
                if not (o.is_write() or (o.op == "get" and o.lin)):
                    continue
                if o.invoke >= f["start"] + self.grace and o.complete < f["end"]:
                    self.violate("P", o.complete, "the minority acknowledged: %s, while node "
                                 "%s was in the minority of %s (%s, from %s to %s)"
                                 % (o.desc(self), o.node, f["fault"], f["src"],
                                    self.ft(f["start"]), self.ft(f["end"])),
                                 node=o.node, key=o.key, proc=o.proc)
            for s in self.sessions:
                if s["node"] not in mino:
                    continue
                if s["live"] is None:
                    continue  # never live (e.g. waiting to catch up): no heartbeats due
                if s["end"] <= f["start"] or s["live"] >= f["end"]:
                    continue
                t0 = max(f["start"], s["live"])
                if (s["sub"], s["node"]) in f["cut"]:
                    self.check_cut_session(f, s, t0)
                    continue
                deadline = t0 + self.stale_bound
                if f["end"] <= deadline or s["end"] <= deadline:
                    continue
                if any(t0 <= t <= deadline for t in s["stale"]):
                    continue
                self.violate("L", deadline, "sub %s on node %s (session live from %s, %s) was "
                             "not told its node lost the leader: no stale heartbeat within %d "
                             "ms of %s (fault %s, %s, minority %s, until %s)"
                             % (s["sub"], s["node"], self.ft(s["start"]), s["src"],
                                self.stale_bound // 1000000, self.ft(t0), f["fault"], f["src"],
                                sorted(mino), self.ft(f["end"])),
                             sub=s["sub"], node=s["node"])

    def check_cut_session(self, f, s, t0):
        """L for a subscriber the partition cut from its node: nothing the
        node says reaches it, so it must notice the silence and leave."""
        deadline = t0 + self.cut_bound
        if f["end"] <= deadline or s["end"] <= deadline:
            return
        self.violate("L", deadline, "sub %s on node %s (session live from %s, %s) was cut "
                     "from its node by %s (%s, from %s until %s) and still held the session "
                     "%d ms later" % (s["sub"], s["node"], self.ft(s["start"]), s["src"],
                                      f["fault"], f["src"], self.ft(f["start"]),
                                      self.ft(f["end"]), self.cut_bound // 1000000),
                     sub=s["sub"], node=s["node"])

    # ---- LIVE: a live subscriber is not behind -----------------------------

    def live_intervals(self, recs):
        """[(start, end, node, [(t, pos)...])]: the spans in which the
        subscriber was live on one node (from a heartbeat with stale=false,
        or the client library's "live" state logged as one, until a stale
        heartbeat, a disconnect, an error, a stop, a new subscription, a
        snapshot or a move to another node), each with the subscriber's
        position (highest revision it holds: change, snapshot end,
        heartbeat) over time."""
        out = []
        cur = None
        pos = None
        for r in recs:
            if r.type in ("change", "end") and r.revision is not None:
                pos = r.revision if pos is None else max(pos, r.revision)
            elif r.type == "heartbeat" and r.applied is not None:
                pos = r.applied if pos is None else max(pos, r.applied)
            elif r.type == "resume":
                pos = r.revision
            elif r.type == "subscribe":
                pos = None
            ends = r.type in ("disconnect", "error", "stop", "subscribe", "resume", "begin") \
                or (r.type == "heartbeat" and r.stale) \
                or (cur is not None and r.node is not None and cur[2] is not None
                    and r.node != cur[2])
            if cur is not None and ends:
                out.append((cur[0], r.t, cur[2], cur[3]))
                cur = None
            if cur is None and r.type == "heartbeat" and not r.stale:
                cur = (r.t, None, r.node, [])
            if cur is not None and pos is not None:
                cur[3].append((r.t, pos))
        if cur is not None:
            out.append((cur[0], INF, cur[2], cur[3]))
        return out

    def check_live(self):
        """LIVE: while a subscriber is live on a node, every acknowledged
        write of a watched key reaches it within --live-lag-bound-ms: at
        max(ack, live start) + bound, if the subscriber is still live there,
        its position must be >= the write's revision. A node that serves
        "live" (not stale) while it is behind the acknowledged history
        beyond the bound (e.g. restored from an old copy and not catching
        up) fails this. The bound must exceed the time a subscriber needs to
        notice a silent node (3 heartbeats) and a follower's normal lag."""
        # a subscriber the harness paused itself (fault with "subs") reads
        # its backlog late: not a node's fault
        held = {}
        for f in self.intervals():
            for sub in f.get("subs") or []:
                held.setdefault(sub, []).append((f["start"], f["end"] + self.live_bound))
        acks = sorted(((o.complete, o.revision, o) for o in self.ops
                       if o.is_write() and o.outcome == "ok" and o.revision is not None),
                      key=lambda a: (a[0], a[1]))
        for sub, recs in sorted(self.subrecs.items()):
            done = False
            for start, end, node, timeline in self.live_intervals(recs):
                times = [x[0] for x in timeline]
                for ta, rev, o in acks:
                    if not self.watched(sub, o.key) or (o.key, rev) in self.phantom:
                        continue
                    due = max(ta, start) + self.live_bound
                    if due >= end:
                        continue
                    i = bisect.bisect_right(times, due)
                    pos = timeline[i - 1][1] if i else None
                    if pos is not None and pos >= rev:
                        continue
                    if any(a <= due <= b for a, b in held.get(sub, ())):
                        continue
                    self.violate("LIVE", due, "sub %s was live on node %s from %s until %s "
                                 "but %d ms after %s was acknowledged at %s it held only rev "
                                 "%s: a node behind the acknowledged history served it as live"
                                 % (sub, node, self.ft(start), self.ft(end),
                                    self.live_bound // 1000000, o.desc(self), self.ft(ta),
                                    pos), sub=sub, node=node, key=o.key, revision=rev)
                    done = True
                    break  # one report per sub is enough
                if done:
                    break

    # ---- driver -----------------------------------------------------------

    def run(self):
        self.load()
        self.build_table()
        self.build_evidence()
        self.final_state()
        self.compute_coverage()
        self.check_w4()
        self.check_w1()
        self.check_reads()
        self.check_subs()
        self.check_conv()
        self.check_nemesis()
        self.check_live()
        return self.result()

    def result(self):
        by = {}
        for o in self.ops:
            d = by.setdefault(o.op, {"ok": 0, "fail": 0, "unknown": 0})
            d[o.outcome] += 1
        nsub_changes = sum(1 for recs in self.subrecs.values() for r in recs
                           if r.type == "change")
        stats = {
            "ops": by,
            "ops_ignored": self.ignored_ops,
            "unknown_writes_committed": sum(1 for o in self.ops if o.is_write() and
                                            o.outcome == "unknown" and o.bound_rev is not None),
            "reads": {"linearizable": self.n_lin, "stale": self.n_stale,
                      "fast_path": self.n_lin - self.n_searched,
                      "searched": self.n_searched,
                      "searched_keys": len(self.search_keys),
                      "search_states": self.search_states},
            "subscribers": len(self.subrecs),
            "sessions": len(self.sessions),
            "subscriber_records": self.n_events,
            "subscriber_changes": nsub_changes,
            "committed_changes": sum(len(v) for v in self.table.values()),
            "keys": len(self.table),
            "keys_covered_by_a_subscriber": len(self.cov),
            "max_revision": max(self.rev_key) if self.rev_key else 0,
            "faults": self.n_faults,
            "partitions": self.n_partitions,
        }
        props = {}
        nviol = 0
        for p, title in PROPERTIES:
            vs = sorted(self.violations[p], key=lambda v: v["_sort"])
            for v in vs:
                v.pop("_sort", None)
            nviol += len(vs)
            unk = [u for u in self.unknowns if u["property"] == p]
            props[p] = {"title": title, "ok": not vs and not unk, "violations": len(vs),
                        "first": vs[0] if vs else None, "all": vs, "unknown": unk}
        verdict = "invalid" if nviol else ("unknown" if self.unknowns else "valid")
        return {"history": self.hdir, "verdict": verdict, "valid": verdict == "valid",
                "stats": stats, "properties": props, "unknowns": self.unknowns}


def format_text(res, max_report=1):
    out = []
    s = res["stats"]
    out.append("flipd chaos checker: %s" % res["history"])
    ops = "; ".join("%s ok %d fail %d unknown %d" % (k, v["ok"], v["fail"], v["unknown"])
                    for k, v in sorted(s["ops"].items()))
    out.append("ops: %s (%d unknown writes seen committed)"
               % (ops or "none", s["unknown_writes_committed"]))
    r = s["reads"]
    out.append("reads: %d linearizable (%d fast path, %d searched in %d keys, %d states), "
               "%d stale" % (r["linearizable"], r["fast_path"], r["searched"],
                             r["searched_keys"], r["search_states"], r["stale"]))
    out.append("subscribers: %d, %d sessions, %d records, %d changes"
               % (s["subscribers"], s["sessions"], s["subscriber_records"],
                  s["subscriber_changes"]))
    out.append("committed history: %d changes on %d keys (%d covered by a "
               "subscriber), max revision %d; faults %d (%d partitions)"
               % (s["committed_changes"], s["keys"], s["keys_covered_by_a_subscriber"],
                  s["max_revision"], s["faults"], s["partitions"]))
    for p, d in res["properties"].items():
        if d["ok"]:
            out.append("  %-9s %-46s ok" % (p, d["title"]))
            continue
        if d["violations"]:
            out.append("  %-9s %-46s FAIL (%d)" % (p, d["title"], d["violations"]))
            for v in d["all"][:max_report]:
                out.append("      %s %s" % (v["time"], v["message"]))
        for u in d["unknown"]:
            out.append("  %-9s %-46s UNKNOWN: %s" % (p, d["title"], u["message"]))
    out.append("verdict: %s%s" % (res["verdict"], "" if res["valid"] else " (%s)" % ", ".join(
        p for p, d in res["properties"].items() if not d["ok"])))
    return "\n".join(out)


def check_dir(hdir, **kw):
    return Checker(hdir, **kw).run()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check a flipd chaos history.")
    ap.add_argument("history_dir")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--read-search-budget", type=int, default=500000,
                    help="max states explored per key by the linearizability search "
                         "(default 500000); exhausted = unknown = failure")
    ap.add_argument("--converge-bound-ms", type=int, default=10000)
    ap.add_argument("--stale-bound-ms", type=int, default=2000)
    ap.add_argument("--cut-bound-ms", type=int, default=4000,
                    help="L: how soon a subscriber cut from its minority node must leave it")
    ap.add_argument("--partition-grace-ms", type=int, default=0)
    ap.add_argument("--live-lag-bound-ms", type=int, default=5000,
                    help="LIVE: how long after an ack a live subscriber may still lack it")
    ap.add_argument("--unique-revisions", action="store_true",
                    help="two keys may never share a revision (no group commit)")
    ap.add_argument("--max-report", type=int, default=1,
                    help="violations printed per property (default 1: the first)")
    a = ap.parse_args(argv)
    try:
        res = check_dir(a.history_dir, search_budget=a.read_search_budget,
                        converge_bound_ms=a.converge_bound_ms,
                        stale_bound_ms=a.stale_bound_ms, cut_bound_ms=a.cut_bound_ms,
                        partition_grace_ms=a.partition_grace_ms,
                        unique_revisions=a.unique_revisions,
                        live_lag_bound_ms=a.live_lag_bound_ms)
    except HistoryError as e:
        print("check.py: malformed history: %s" % e, file=sys.stderr)
        return 2
    if a.json:
        for d in res["properties"].values():
            d["all"] = d["all"][:max(a.max_report, 1) * 100]
        print(json.dumps(res, default=str))  # one line
    else:
        print(format_text(res, a.max_report))
    return 0 if res["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
