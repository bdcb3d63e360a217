#!/usr/bin/env python3
"""flipd chaos suite: real processes, real faults, a history checker.

  tests/chaos/run.py BUILD_DIR [--quick] [--seed N] [--scenario NAME...]
                     [--keep] [--out DIR]

For every scenario: a fresh 3-node cluster on loopback (raft links through
tests/chaos/proxy.py so links can be cut), writers, linearizable readers and
one subscriber per node (the client library, tests/chaos/chaos_sub.c),
a seeded fault schedule (printed, so a failure replays with --seed), then
heal everything, wait for one leader and for every node to catch up, read
every key on every node, and run tests/chaos/checker/check.py on the
history. Prints a summary per scenario and the closing line
"N passed, N failed". A failing scenario keeps its folder (history, node
logs, data dirs, seed) and prints how to replay it.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from client import Client  # noqa: E402
from cluster import Cluster, port_free  # noqa: E402
from proxy import LinkProxy  # noqa: E402
from workload import KEYS, Reader, Subscriber, Writer  # noqa: E402

CHECKER = os.path.join(HERE, "checker", "check.py")


def now_ns():
    return time.monotonic_ns()


class Run:
    """One scenario: cluster, proxy, workload, nemesis log."""

    def __init__(self, build, outdir, seed, flipd_args):
        self.build = build
        self.out = outdir
        self.rng = random.Random(seed)
        self.seed = seed
        base = self._pick_base()
        self.cluster = Cluster(build, outdir, 3, base, base + 50, flipd_args)
        self.proxy = LinkProxy(self.cluster.ids(), base + 50)
        self.nemesis = open(os.path.join(outdir, "nemesis.jsonl"), "a")
        self.faults = {}
        self.writers = []
        self.readers = []
        self.subs = []
        self.expect_install = None  # node that must have installed a snapshot

    def _pick_base(self):
        for _ in range(200):
            base = 41000 + random.randrange(0, 150) * 60
            if all(port_free("127.0.0.1", base + i) for i in range(1, 4)) and \
                    all(port_free(f"127.0.1.{i}", base + 50) for i in range(1, 4)) and \
                    all(port_free(f"127.0.2.{i}", base + 50) for i in range(1, 4)):
                return base
        raise RuntimeError("no free port range")

    def node_of(self, addr):
        if addr is None:
            return None
        for i in self.cluster.ids():
            if self.cluster.client_addr(i) == addr:
                return i
        return None

    def log(self, fault, action, nodes, **extra):
        rec = {"t_ns": now_ns(), "fault": fault, "action": action, "nodes": nodes}
        rec.update(extra)
        self.nemesis.write(json.dumps(rec) + "\n")
        self.nemesis.flush()
        self.faults[fault] = self.faults.get(fault, 0) + (1 if action == "start" else 0)
        print(f"  {time.strftime('%H:%M:%S')} nemesis {fault} {action} {nodes}", flush=True)

    # ---- lifecycle --------------------------------------------------------

    def start(self, writers=3):
        self.proxy.start()
        self.cluster.start_all()
        if self.cluster.leader(20) is None:
            raise RuntimeError("no leader at start")
        eps = self.cluster.endpoints()
        for w in range(writers):
            self.writers.append(Writer(w, eps, self.node_of, self.out, random.Random(self.seed * 31 + w)))
        self.readers.append(Reader(0, eps, self.node_of, self.out, random.Random(self.seed * 17)))
        for i in self.cluster.ids():
            order = [i] + [j for j in self.cluster.ids() if j != i]
            self.subs.append(Subscriber(self.build, i, self.cluster.endpoints(order), self.out))
        time.sleep(1.0)
        for t in self.writers + self.readers:
            t.start()

    def heal(self):
        self.proxy.set_blocked(set())
        for s in self.subs:
            s.signal(signal.SIGCONT)
        for i in self.cluster.ids():
            if i in self.cluster.stopped:
                self.cluster.signal(i, signal.SIGCONT)
            if not self.cluster.alive(i):
                self.cluster.start(i)
        self.log("all", "stop", self.cluster.ids())

    def finish(self, converge_s=15):
        """Stops the workload, waits for one leader and full catch-up, reads
        every key on every node, stops the subscribers."""
        healed = now_ns()
        leader = self.cluster.leader(30)
        for t in self.writers + self.readers:
            t.stop_ev.set()
        for t in self.writers + self.readers:
            t.join(10)
        reads = {}
        ok = leader is not None
        if ok:
            commit = self.cluster.statuses().get(leader, {}).get("commit", 0)
            ok = self.cluster.wait_applied(commit, 30)
        for i in self.cluster.ids():
            c = Client([self.cluster.client_addr(i)], "chaos-final", op_timeout=3)
            reads[i] = {}
            for k in KEYS:
                outcome, _, value, rev = c.get(k, stale=True)
                if outcome == "ok":
                    reads[i][k] = None if value is None else {"value": value, "revision": rev}
            c.close()
        reads_done = now_ns()
        # let subscribers converge (bounded), then stop them
        time.sleep(min(converge_s, 3))
        for s in self.subs:
            s.stop()
        with open(os.path.join(self.out, "final.json"), "w") as f:
            json.dump({"reads": {str(i): r for i, r in reads.items()}, "healed_ns": healed,
                       "reads_done_ns": reads_done, "leader": leader}, f)
        self.convert_subs()
        return ok

    def convert_subs(self):
        """chaos_sub lines -> the checker's subscriber records."""
        for s in self.subs:
            with open(os.path.join(self.out, f"subs.{s.id}.jsonl"), "w") as f:
                for e in s.events():
                    t = e.get("type")
                    rec = {"sub": e["sub"], "t_ns": e["t_ns"], "revision": e.get("revision", 0),
                           "node": self.node_of(e.get("node"))}
                    if t in ("begin", "item", "end", "change"):
                        rec["type"] = t
                        if e.get("resync"):
                            rec["resync"] = True
                        if "flags" in e:
                            rec["flags"] = e["flags"]
                    elif t == "state":
                        st = e.get("state")
                        if st == "stale":
                            rec["type"] = "heartbeat"
                            rec["stale"] = True
                        elif st in ("connecting", "disconnected"):
                            rec["type"] = "disconnect"
                        else:
                            continue
                    else:
                        continue
                    f.write(json.dumps(rec) + "\n")

    def close(self):
        for t in self.writers + self.readers:
            t.stop_ev.set()
        for s in self.subs:
            s.stop()
        self.cluster.stop_all()
        self.proxy.stop()
        self.nemesis.close()

    # ---- faults --------------------------------------------------------------

    def kill_leader(self):
        leader = self.cluster.leader(10)
        if leader is None:
            return None
        self.log("kill-leader", "start", [leader])
        self.cluster.kill(leader)
        return leader

    def restart(self, node):
        self.cluster.start(node)
        self.log("kill-leader", "stop", [node])

    def isolate(self, node, fault):
        self.proxy.set_blocked(self.proxy.isolate(node))
        others = [i for i in self.cluster.ids() if i != node]
        self.log(fault, "start", [node], minority=[node], majority=others)

    def unblock(self, fault, nodes):
        self.proxy.set_blocked(set())
        self.log(fault, "stop", nodes)

    def pause(self, node, seconds, fault="pause"):
        self.log(fault, "start", [node])
        self.cluster.signal(node, signal.SIGSTOP)
        time.sleep(seconds)
        self.cluster.signal(node, signal.SIGCONT)
        self.log(fault, "stop", [node])


# ---- scenarios ----------------------------------------------------------------

def scenario_kill_leader(run, seconds):
    """kill -9 the leader every ~8 s, restart it 2 s later."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(run.rng.uniform(4, 6))
        victim = run.kill_leader()
        time.sleep(2)
        if victim is not None:
            run.restart(victim)


def scenario_isolate_leader(run, seconds):
    """isolate the leader 6 s on / 4 s off; one SIGSTOP of a follower 5 s."""
    end = time.monotonic() + seconds
    paused = False
    while time.monotonic() < end:
        leader = run.cluster.leader(10)
        if leader is not None:
            run.isolate(leader, "isolate-leader")
            time.sleep(6)
            run.unblock("isolate-leader", [leader])
        time.sleep(4)
        if not paused:
            leader = run.cluster.leader(10)
            follower = next(i for i in run.cluster.ids() if i != leader)
            run.pause(follower, 5, "pause-follower")
            paused = True


def scenario_subscriber_and_install(run, seconds):
    """SIGSTOP a subscriber 5 s during flips; isolate a follower until the
    leader has snapshotted past it, then heal (snapshot install)."""
    sub = run.rng.choice(run.subs)
    run.log("pause-subscriber", "start", [], subs=[sub.id])
    sub.signal(signal.SIGSTOP)
    time.sleep(5)
    sub.signal(signal.SIGCONT)
    run.log("pause-subscriber", "stop", [], subs=[sub.id])
    leader = run.cluster.leader(10)
    follower = next(i for i in run.cluster.ids() if i != leader)
    run.isolate(follower, "isolate-follower")
    time.sleep(max(5, seconds - 12))
    run.unblock("isolate-follower", [follower])
    time.sleep(3)
    run.expect_install = follower


def scenario_kill_random(run, seconds):
    """kill -9 a random node (the leader included) every 5-8 s."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(run.rng.uniform(3, 5))
        victim = run.rng.choice(run.cluster.ids())
        run.log("kill-random", "start", [victim])
        run.cluster.kill(victim)
        time.sleep(run.rng.uniform(1, 3))
        run.cluster.start(victim)
        run.log("kill-random", "stop", [victim])


def scenario_kill_all(run, seconds):
    """kill -9 the whole cluster at once, restart it, a few times."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(run.rng.uniform(5, 8))
        run.log("kill-all", "start", run.cluster.ids())
        for i in run.cluster.ids():
            run.cluster.kill(i)
        time.sleep(run.rng.uniform(0.5, 2))
        for i in run.cluster.ids():
            run.cluster.start(i)
        run.log("kill-all", "stop", run.cluster.ids())


def scenario_pause_leader(run, seconds):
    """SIGSTOP the leader 3-8 s: a deposed leader must not serve stale
    linearizable reads or ack anything when it wakes."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(run.rng.uniform(2, 4))
        leader = run.cluster.leader(10)
        if leader is None:
            continue
        run.pause(leader, run.rng.uniform(3, 8), "pause-leader")


def scenario_split(run, seconds):
    """majority/minority split; writers and readers keep going on both
    sides; the minority must acknowledge nothing."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(run.rng.uniform(2, 4))
        leader = run.cluster.leader(10)
        ids = run.cluster.ids()
        # half the time the old leader ends up alone in the minority
        minority = [leader] if leader is not None and run.rng.random() < 0.5 \
            else [run.rng.choice(ids)]
        majority = [i for i in ids if i not in minority]
        run.proxy.set_blocked(run.proxy.split(minority, majority))
        run.log("split", "start", ids, minority=minority, majority=majority)
        time.sleep(run.rng.uniform(4, 8))
        run.unblock("split", ids)


def scenario_ring(run, seconds):
    """n1-n2 and n2-n3 connected, n1-n3 cut (a bridge node)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(run.rng.uniform(2, 4))
        a, b, c = run.rng.sample(run.cluster.ids(), 3)
        run.proxy.set_blocked({(a, c), (c, a)})
        run.log("ring", "start", [a, b, c], cut=[a, c])
        time.sleep(run.rng.uniform(4, 8))
        run.unblock("ring", [a, b, c])


def scenario_combined(run, seconds):
    """kill, partition and pause on a random schedule."""
    end = time.monotonic() + seconds
    faults = [scenario_kill_random, scenario_pause_leader, scenario_split,
              scenario_isolate_leader]
    while time.monotonic() < end:
        fn = run.rng.choice(faults)
        fn(run, min(8, max(1, end - time.monotonic())))


SCENARIOS = {
    "kill-leader": (scenario_kill_leader, 40, []),
    "isolate-leader": (scenario_isolate_leader, 30, []),
        "subscriber-install": (scenario_subscriber_and_install, 30,
                           ["--snapshot-threshold", "64", "--snapshot-trailing", "64"]),
    "kill-random": (scenario_kill_random, 120, []),
    "kill-all": (scenario_kill_all, 120, []),
    "pause-leader": (scenario_pause_leader, 120, []),
    "split": (scenario_split, 120, []),
    "ring": (scenario_ring, 120, []),
    "combined": (scenario_combined, 120,
                 ["--snapshot-threshold", "128", "--snapshot-trailing", "64"]),
}
QUICK = ["kill-leader", "isolate-leader", "subscriber-install"]


def run_checker(outdir):
    if not os.path.exists(CHECKER):
        print("  checker missing", flush=True)
        return False, {}
    p = subprocess.run([sys.executable, CHECKER, outdir, "--json"], capture_output=True,
                       text=True, timeout=300)
    summary = {}
    try:
        summary = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
    except (ValueError, IndexError):
        summary = {"raw": p.stdout[-2000:]}
    if p.returncode != 0:
        print(p.stdout[-4000:], p.stderr[-2000:], flush=True)
    return p.returncode == 0, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--scenario", action="append")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    seed = a.seed if a.seed is not None else int(time.time()) % 100000
    names = a.scenario or (QUICK if a.quick else list(SCENARIOS))
    # --quick: the same fault kinds, shorter, so `make test` can afford it
    scale = 0.7 if a.quick else float(os.environ.get("CHAOS_SCALE", "1.0"))
    print(f"chaos: seed {seed}, scenarios {', '.join(names)}", flush=True)
    root = a.out or tempfile.mkdtemp(prefix="flipd-chaos-")
    passed = failed = 0
    totals = {"ops": {}, "faults": {}, "events": 0}
    for idx, name in enumerate(names):
        fn, seconds, args = SCENARIOS[name]
        seconds = int(seconds * scale)
        outdir = os.path.join(root, name)
        os.makedirs(outdir, exist_ok=True)
        with open(os.path.join(outdir, "seed"), "w") as f:
            f.write(f"{seed + idx}\n")
        print(f"== {name} ({seconds} s of faults, seed {seed + idx})", flush=True)
        run = Run(build, outdir, seed + idx, ["--election-ms", "500", "--heartbeat-ms", "50"] + args)
        ok = True
        t0 = time.monotonic()
        try:
            run.start()
            fn(run, seconds)
            run.heal()
            ok = run.finish()
            if not ok:
                print("  cluster did not converge after healing", flush=True)
        except Exception as e:  # noqa: BLE001 - report any harness failure
            print(f"  harness error: {e!r}", flush=True)
            ok = False
        finally:
            run.close()
        crashed = [i for i in run.cluster.ids() if run.cluster.exit_code(i) not in (None, -9, 0)]
        if crashed:
            print(f"  nodes exited on their own: {crashed}", flush=True)
            ok = False
        checked, summary = run_checker(outdir)
        ok = ok and checked
        if run.expect_install is not None:
            log = open(os.path.join(outdir, f"n{run.expect_install}.log")).read()
            if "restored snapshot" not in log:
                print(f"  node {run.expect_install} was never caught up by snapshot "
                      "install: the scenario did not exercise it", flush=True)
                ok = False
        counts = {}
        for t in run.writers + run.readers:
            for k, v in t.counts.items():
                counts[k] = counts.get(k, 0) + v
        st = summary.get("stats", {})
        viol = sum(d.get("violations", 0) for d in summary.get("properties", {}).values())
        print(f"  ops {counts}, faults {run.faults}, {time.monotonic() - t0:.0f} s; checker "
              f"{summary.get('verdict', 'FAILED' if not checked else 'ok')}: "
              f"{st.get('subscribers', '?')} subscribers, {st.get('subscriber_changes', '?')} "
              f"events, {st.get('reads', {}).get('linearizable', '?')} linearizable reads, "
              f"violations {viol}", flush=True)
        if not checked:
            # the checker's own text report names the first counter-example
            subprocess.run([sys.executable, CHECKER, outdir], timeout=300)
        for k, v in counts.items():
            totals["ops"][k] = totals["ops"].get(k, 0) + v
        for k, v in run.faults.items():
            totals["faults"][k] = totals["faults"].get(k, 0) + v
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"  FAILED: kept {outdir}; replay: tests/chaos/run.py {a.build} "
                  f"--scenario {name} --seed {seed + idx}", flush=True)
    print(f"summary: ops {totals['ops']}, faults {totals['faults']}", flush=True)
    if failed == 0 and not a.keep and not a.out:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"histories in {root}", flush=True)
    print(f"chaos: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
