"""Chaos workload: writers, linearizable readers and subscribers, each
recording its history (tests/chaos/checker/check.py documents the format)
with CLOCK_MONOTONIC nanoseconds shared by every process on the machine."""
import json
import os
import random
import subprocess
import threading
import time

from client import Client

KEYS = [f"chaos.k{i}" for i in range(8)]


def epoch_keys(prefix):
    """The 8 keys of one soak epoch, under their own prefix, so each
    epoch's history (and its subscribers' snapshots) stays separate."""
    return [f"{prefix}k{i}" for i in range(8)]


class Recorder:
    """One JSON-lines file per recording thread: no interleaving."""

    def __init__(self, path):
        self.f = open(path, "a")
        self.lock = threading.Lock()

    def write(self, rec):
        with self.lock:
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()

    def close(self):
        self.f.close()


class Writer(threading.Thread):
    """Sets (a share of them compare-and-set) and optionally deletes of
    random keys, each with a unique value "w<proc>:<seq>" (padded to
    `value_size` bytes when given: (lo, hi), drawn per write).

    request_ids (default): every write carries a request id and an
    ambiguous attempt is resent with it until a 5 s deadline (client.py);
    False: resent the same way without an id, so a first attempt that
    applied is applied again (what the ids prevent; the checker's ONCE).
    deadline_s / attempt_s override the call's deadline and how long one
    attempt waits for its answer (a patient client waits out a paused
    node and hears its answer)."""

    def __init__(self, proc, endpoints, node_of, outdir, rng, pause_s=0.05, cas_ratio=0.15,
                 keys=KEYS, source=None, request_ids=True, del_ratio=0.0, value_size=None,
                 deadline_s=None, attempt_s=1.5):
        super().__init__(daemon=True)
        self.proc = proc
        self.keys = list(keys)
        # source: the address of the writer's home side (netns mode)
        if deadline_s is None:
            deadline_s = 5.0
        self.client = Client(endpoints, f"chaos-w{proc}", op_timeout=deadline_s,
                             source=source, request_ids=request_ids, attempt_timeout=attempt_s)
        self.del_ratio = del_ratio
        self.value_size = value_size
        self.node_of = node_of
        self.rec = Recorder(os.path.join(outdir, f"ops.w{proc}.jsonl"))
        self.rng = rng
        self.pause = pause_s
        self.cas_ratio = cas_ratio
        self.stop_ev = threading.Event()
        self.seq = 0
        self.known_rev = {}
        self.counts = {"ok": 0, "fail": 0, "unknown": 0}
        self.status_counts = {}  # answers by status, plus "del:OK"

    def run(self):
        while not self.stop_ev.is_set():
            key = self.rng.choice(self.keys)
            self.seq += 1
            if self.del_ratio and self.rng.random() < self.del_ratio:
                self.write_op(key, None, None)
            else:
                value = f"w{self.proc}:{self.seq}"
                if self.value_size:
                    n = self.rng.randint(*self.value_size)
                    value = (value + ":").ljust(n, "v")
                cas = self.rng.random() < self.cas_ratio
                self.write_op(key, value, self.known_rev.get(key, 0) if cas else None)
            self.stop_ev.wait(self.pause * (0.5 + self.rng.random()))
        self.client.close()
        self.rec.close()

    def write_op(self, key, value, expected):
        """One set (value, expected None), cas (expected) or delete (value
        None), recorded."""
        resends = self.client.resends
        t0 = time.monotonic_ns()
        if value is None:
            outcome, node, rev, status = self.client.delete(key)
            op = "del"
        else:
            outcome, node, rev, status = self.client.set(key, value, expected)
            op = "set" if expected is None else "cas"
        t1 = time.monotonic_ns()
        rec = {"proc": f"w{self.proc}", "seq": self.seq, "op": op, "key": key,
               "invoke_ns": t0, "complete_ns": t1, "outcome": outcome,
               "node": self.node_of(node), "status": status,
               "resends": self.client.resends - resends}
        if value is not None:
            rec["value"] = value
        if expected is not None:
            rec["expected_revision"] = expected
        if outcome == "ok":
            rec["revision"] = rev
            self.known_rev[key] = 0 if op == "del" else rev  # 0: absent
        elif op == "del" and status == "NOT_FOUND":
            self.known_rev[key] = 0
        elif status == "CAS_CONFLICT" and rev is not None:
            rec["current_revision"] = rev
        if outcome != "ok":
            rec["error"] = status
        self.counts[outcome] += 1
        for k in (status, f"{op}:{status}"):
            self.status_counts[k] = self.status_counts.get(k, 0) + 1
        self.rec.write(rec)


class Reader(threading.Thread):
    """Linearizable gets through a random node (redirected to the leader)."""

    def __init__(self, proc, endpoints, node_of, outdir, rng, pause_s=0.1, keys=KEYS,
                 source=None):
        super().__init__(daemon=True)
        self.proc = proc
        self.keys = list(keys)
        self.source = source
        self.endpoints = endpoints
        self.node_of = node_of
        self.rec = Recorder(os.path.join(outdir, f"ops.r{proc}.jsonl"))
        self.rng = rng
        self.pause = pause_s
        self.stop_ev = threading.Event()
        self.counts = {"ok": 0, "fail": 0, "unknown": 0}

    def run(self):
        clients = [Client([e], f"chaos-r{self.proc}", op_timeout=1.5, source=self.source)
                   for e in self.endpoints]
        while not self.stop_ev.is_set():
            key = self.rng.choice(self.keys)
            c = self.rng.choice(clients)
            t0 = time.monotonic_ns()
            outcome, node, value, rev = c.get(key)
            t1 = time.monotonic_ns()
            rec = {"proc": f"r{self.proc}", "op": "get", "key": key, "invoke_ns": t0,
                   "complete_ns": t1, "outcome": outcome, "node": self.node_of(node),
                   "linearizable": True}
            if outcome == "ok":
                rec["read_value"] = value
                rec["revision"] = rev
            self.counts[outcome] += 1
            self.rec.write(rec)
            self.stop_ev.wait(self.pause)
        for c in clients:
            c.close()
        self.rec.close()


class Subscriber:
    """A chaos_sub process (the client library's watch) attached first to
    `node`, failing over to the others by itself. cmd_prefix: where it runs
    (netns mode: `ip netns exec` into its home side's host, which execs, so
    signals still reach chaos_sub)."""

    def __init__(self, build, sub_id, endpoints, outdir, prefix="chaos.", cmd_prefix=()):
        self.id = sub_id
        self.raw = os.path.join(outdir, f"raw.sub{sub_id}.jsonl")
        err = open(os.path.join(outdir, f"sub{sub_id}.err"), "a")
        self.proc = subprocess.Popen(
            list(cmd_prefix) +
            [os.path.join(build, "tests", "chaos", "chaos_sub"), "--id", str(sub_id),
             "--endpoints", ",".join(endpoints), "--prefix", prefix, "--out", self.raw],
            stdout=err, stderr=err, stdin=subprocess.DEVNULL)
        err.close()

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def events(self):
        out = []
        if not os.path.exists(self.raw):
            return out
        for line in open(self.raw):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out
