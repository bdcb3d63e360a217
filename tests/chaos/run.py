#!/usr/bin/env python3
"""flipd chaos suite: real processes, real faults, a history checker.

  tests/chaos/run.py BUILD_DIR [--quick] [--seed N] [--scenario NAME...]
                     [--keep] [--out DIR] [--net auto|netns|proxy]

For every scenario: a fresh 3-node cluster, writers, linearizable readers
and one subscriber per node (the client library, tests/chaos/chaos_sub.c),
a seeded fault schedule (printed, so a failure replays with --seed), then
heal everything, wait for one leader and for every node to catch up, read
every key on every node, read every node's whole change history (a
subscription from revision 0, recorded as subscriber hist<i>: a write
applied twice shows there even when no subscriber was connected), and run
tests/chaos/checker/check.py on the history. Prints a summary per scenario and the closing line
"chaos: N passed, N failed, N skipped". A failing scenario keeps its folder (history, node
logs, data dirs, seed) and prints how to replay it.

The network (--net; the header line says which one a run uses):
  netns  (auto picks it when root and a network namespace with iptables can
         be made; tests/chaos/netns.py) every node in its own network
         namespace on a bridge in a namespace of its own, 10.213.7.0/24 only,
         no default route: nothing leaves. run.py makes the namespaces, runs
         itself again inside a driver namespace on the same bridge, and
         always removes every namespace and process it made (failure,
         Ctrl-C and SIGTERM included; after a SIGKILL the next run removes
         them). Partitions are iptables DROP rules (real packet loss),
         clients included: each client has a home node and stays on its
         side of a partition.
  proxy  (otherwise) 127.0.0.1, raft links through a per-link TCP proxy
         (tests/chaos/proxy.py) that pauses cut links; client links are
         never cut.
The scenarios are the same in both, except these netns-only ones (full run
only; with the proxy they print "skipped: ..." and are not failures):
  one-way      INPUT-only drops: the leader stops hearing its followers, the
               followers stop hearing the leader, or one node one peer.
  net-quality  loss (iptables statistic) on one node; delay 50 ms + U(0,30)
               and 5% loss on the leader; delay 10 ms + U(0,10) and 2% loss
               on every node (tests/chaos/nfq/nfqdelay, an NFQUEUE helper,
               as this kernel has no netem; without it loss only).

Host-fault scenarios (full run only, tests/chaos/hostfaults.py):
  clock      every node under libfaketime; one node restarted 4x fast and
             another 2x slow (monotonic clock included), alternating with
             wall-clock jumps of +-1 h on running nodes. Prints "skipped:
             libfaketime not installed" (not a failure) without it.
  disk-full  one node's data dir on a 16 MiB tmpfs (root only, else
             skipped); while it follows, a balloon file fills it (ENOSPC)
             for 11-18 s, the last 3 s with n // 2 other followers paused
             so that commits need it. Then either the disk is freed and the
             node must catch up (restarted only if it stopped), or every
             unpaused node is killed -9 and the full node restarts with the
             paused ones as the new majority (an entry it acked but never
             wrote is then lost: W1). Only that node may exit by itself,
             and only saying why in its log ("no space left", or an I/O
             error while its disk was full). Mounts are always removed
             (Ctrl-C and SIGTERM included).

State scenarios (full run only, tests/chaos/statefaults.py, which
describes them): deposed-limbo (H1: a deposed leader catches up by
snapshot while its writes are in limbo), crash-reboot (H2: crash loops
with a simulated reboot that discards the store, then the node wins an
election), lose-data (a node's data directory deleted), old-backup (a node
restored from an old copy of it), store-full (a 1 MiB --max-store-bytes
budget, big values, deletes).

Writers send a request id with every write and resend an ambiguous one
with the same id until their 5 s deadline (client.py); --no-request-ids
resends the same way without ids, to show the double applies the ids
prevent (the checker's ONCE must then fail).
The closing line is "chaos: N passed, N failed, N skipped"; every skipped
scenario is listed above it with the reason.

  tests/chaos/run.py BUILD_DIR --soak MINUTES [--nodes 5] [--epochs N]
runs one long-lived cluster (5 nodes) under a seeded mix of every fault,
one every 10-20 s, checked in epochs (tests/chaos/soak.py; make soak).
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
import netns  # noqa: E402
from workload import KEYS, Reader, Subscriber, Writer, epoch_keys  # noqa: E402
from hostfaults import (Skip, excused_exit, prepare_clock, prepare_disk_full,  # noqa: E402
                        scenario_clock, scenario_disk_full)
from statefaults import (LIMBO_ARGS, SMALL_SNAPSHOTS, prepare_deposed_limbo, prepare_store_full,  # noqa: E402
                         refused,
                         scenario_crash_reboot, scenario_deposed_limbo, scenario_lose_data,
                         scenario_old_backup, scenario_store_full)

CHECKER = os.path.join(HERE, "checker", "check.py")


def now_ns():
    return time.monotonic_ns()


class Run:
    """One scenario: cluster, proxy, workload, nemesis log."""

    def __init__(self, build, outdir, seed, flipd_args, nodes=3, request_ids=True):
        self.build = build
        self.request_ids = request_ids  # the writers' (client.py); False: --no-request-ids
        self.out = outdir
        self.rng = random.Random(seed)
        self.seed = seed
        base = self._pick_base(nodes)
        ids = list(range(1, nodes + 1))
        # the network: real namespaces when this is the run main() started
        # inside them, else the loopback proxy (same fault interface)
        self.proxy = netns.NetnsNet(ids, build, outdir) if netns.inner_lab() else \
            LinkProxy(ids, base + 50)
        self.cluster = Cluster(build, outdir, nodes, base, base + 50, flipd_args, net=self.proxy)
        self.nemesis = open(os.path.join(outdir, "nemesis.jsonl"), "a")
        self.faults = {}
        self.writers = []
        self.readers = []
        self.subs = []
        self.expect_install = None  # node that must have installed a snapshot
        self.keys = KEYS          # the workload's keys (soak epochs rotate them)
        self.prefix = "chaos."    # the subscribers' prefix
        self.host = {}            # host-fault controllers (hostfaults.py) by kind
        self.healers = []         # undo host faults, called by heal()
        self.cleanups = []        # after the nodes are stopped (unmounts), by close()
        self.notes = []           # warnings for the summary (not failures)
        self.failures = []        # expectations a scenario saw broken (fail the run)
        self.excused = {}         # node -> why its own exit is accepted (statefaults.py)
        self.writer_args = {}     # extra Writer arguments a scenario sets (statefaults.py)
        self.extra_writers = []   # Writer arguments of more writers, on every node, never cut

    def _pick_base(self, nodes):
        ids = range(1, nodes + 1)
        for _ in range(200):
            base = 41000 + random.randrange(0, 150) * 60
            if all(port_free("127.0.0.1", base + i) for i in ids) and \
                    all(port_free(f"127.0.1.{i}", base + 50) for i in ids) and \
                    all(port_free(f"127.0.2.{i}", base + 50) for i in ids):
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
        if action == "start" and extra.get("minority"):
            # netns mode: subscribers the partition cuts from a minority
            # node cannot be told it is stale; the checker expects them to
            # leave it instead
            cut = [[s.id, m] for s in self.subs for m in extra["minority"]
                   if self.proxy.cut_off(s.home, m)]
            if cut:
                rec["cut"] = cut
        self.nemesis.write(json.dumps(rec) + "\n")
        self.nemesis.flush()
        self.faults[fault] = self.faults.get(fault, 0) + (1 if action == "start" else 0)
        print(f"  {time.strftime('%H:%M:%S')} nemesis {fault} {action} {nodes}", flush=True)

    # ---- lifecycle --------------------------------------------------------

    def start(self, writers=3, workload=True):
        self.proxy.start()
        self.cluster.start_all()
        if self.cluster.leader(20) is None:
            raise RuntimeError("no leader at start")
        if workload:  # soak starts its workload per epoch (begin_epoch)
            self.start_workload(writers)

    def home_first(self, home):
        ids = self.cluster.ids()
        return self.cluster.endpoints([home] + [j for j in ids if j != home])

    def start_workload(self, writers=3, seed=None):
        """Every client has a home node: it asks that node first, and in
        the netns mode it sits on that node's side of a partition
        (netns.py, "Client sides")."""
        seed = self.seed if seed is None else seed
        ids = self.cluster.ids()
        for w in range(writers):
            home = ids[w % len(ids)]
            self.writers.append(Writer(w, self.home_first(home), self.node_of, self.out,
                                       random.Random(seed * 31 + w), keys=self.keys,
                                       source=self.proxy.client_source(home),
                                       request_ids=self.request_ids, **self.writer_args))
        for spec in self.extra_writers:
            # from the control address (netns: never cut), any node first
            w = len(self.writers)
            self.writers.append(Writer(w, self.cluster.endpoints(), self.node_of, self.out,
                                       random.Random(seed * 31 + w), keys=self.keys,
                                       request_ids=self.request_ids, **spec))
        home = ids[writers % len(ids)]
        self.readers.append(Reader(0, self.home_first(home), self.node_of, self.out,
                                   random.Random(seed * 17), keys=self.keys,
                                   source=self.proxy.client_source(home)))
        for i in ids:
            self.subs.append(Subscriber(self.build, i, self.home_first(i), self.out,
                                        prefix=self.prefix, cmd_prefix=self.proxy.sub_prefix(i)))
            self.subs[-1].home = i
        time.sleep(1.0)
        for t in self.writers + self.readers:
            t.start()

    def begin_epoch(self, outdir, prefix, seed):
        """Soak: the next epoch's history goes to `outdir`, with fresh
        writers, readers and subscribers on keys under `prefix`; the
        cluster keeps running."""
        self.nemesis.close()
        self.out = outdir
        self.nemesis = open(os.path.join(outdir, "nemesis.jsonl"), "a")
        self.faults = {}
        self.notes = []
        self.failures = []
        self.writers, self.readers, self.subs = [], [], []
        self.prefix = prefix
        self.keys = epoch_keys(prefix)
        self.start_workload(seed=seed)

    def heal(self):
        for h in self.healers:
            h()
        self.proxy.heal()  # links, and in netns mode loss and delay too
        for s in self.subs:
            s.signal(signal.SIGCONT)
        for i in self.cluster.ids():
            if i in self.cluster.stopped:
                self.cluster.signal(i, signal.SIGCONT)
            if not self.cluster.alive(i) and i not in self.cluster.retired:
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
            # A linearizable get runs a raft barrier on the leader, which
            # decides every entry a former leader left in the log. Without
            # it such a write (answered LEADERSHIP_LOST) can commit after
            # the final reads and look lost (seen after healing net faults).
            c = Client(self.cluster.endpoints(), "chaos-barrier", op_timeout=10)
            c.get(self.keys[0])
            c.close()
            leader = self.cluster.leader(10) or leader
            commit = self.cluster.statuses().get(leader, {}).get("commit", 0)
            ok = self.cluster.wait_applied(commit, 30)
        live = [i for i in self.cluster.ids() if i not in self.cluster.retired]
        for i in live:
            c = Client([self.cluster.client_addr(i)], "chaos-final", op_timeout=3)
            reads[i] = {}
            for k in self.keys:
                outcome, _, value, rev = c.get(k, stale=True)
                if outcome == "ok":
                    reads[i][k] = None if value is None else {"value": value, "revision": rev}
            c.close()
        reads_done = now_ns()
        for i in live:
            self.change_history(i)
        # let subscribers converge (bounded), then stop them
        time.sleep(min(converge_s, 3))
        for s in self.subs:
            s.stop()
        with open(os.path.join(self.out, "final.json"), "w") as f:
            json.dump({"reads": {str(i): r for i, r in reads.items()}, "healed_ns": healed,
                       "reads_done_ns": reads_done, "leader": leader}, f)
        self.convert_subs()
        return ok

    def change_history(self, i):
        """Node i's whole change history of the workload's keys (a
        subscription from revision 0, read until its first heartbeat: the
        catch-up is then complete) as subscriber "hist<i>", stopped at the
        end: the checker sees every change the node applied, so a write
        applied twice shows even where no subscriber was connected."""
        c = Client([self.cluster.client_addr(i)], "chaos-history", op_timeout=10)
        sub = f"hist{i}"
        with open(os.path.join(self.out, f"subs.{sub}.jsonl"), "w") as f:
            def put(rec):
                rec.update({"sub": sub, "node": i})
                f.write(json.dumps(rec) + "\n")
            put({"type": "resume", "revision": 0, "t_ns": now_ns(), "prefixes": [self.prefix]})
            try:
                for ev in c.change_history(self.prefix):
                    ev["t_ns"] = now_ns()
                    put(ev)
            except (OSError, TimeoutError, ConnectionError) as e:
                self.notes.append(f"change history of n{i} incomplete: {e!r}")
                put({"type": "disconnect", "t_ns": now_ns()})
            finally:
                c.close()
            put({"type": "stop", "t_ns": now_ns()})

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
                        elif st == "live":
                            # the library holds the state at `revision`
                            # and trusts its node: the checker's LIVE
                            rec["type"] = "heartbeat"
                            rec["stale"] = False
                            rec["applied"] = rec["revision"]
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
        try:
            self.cluster.stop_all()
            self.proxy.stop()
            self.nemesis.close()
        finally:
            # every cleanup runs (each unmounts something), whatever fails
            for c in self.cleanups:
                try:
                    c()
                except Exception as e:  # noqa: BLE001
                    print(f"  cleanup failed: {e!r}", flush=True)
            self.cleanups = []

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

    def kill_random(self):
        """kill -9 a random node, restart it 1-3 s later."""
        victim = self.rng.choice(self.cluster.ids())
        self.log("kill-random", "start", [victim])
        self.cluster.kill(victim)
        time.sleep(self.rng.uniform(1, 3))
        self.cluster.start(victim)
        self.log("kill-random", "stop", [victim])

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
        run.kill_random()


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
        if len(ids) > 3:
            # 5 nodes: a minority of 1 or 2 (3 nodes keep the old draws,
            # so their seeds replay as before)
            extra = [i for i in ids if i not in minority]
            minority += run.rng.sample(extra, run.rng.randint(0, (len(ids) - 1) // 2 - 1))
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


# ---- netns-only scenarios (real packets; proxy mode skips them) -------------

def needs_netns(run):
    if "one-way" not in run.proxy.features:
        raise Skip("needs the netns mode (root, `ip netns`, iptables): the proxy cannot "
                   "drop one direction or lose and delay packets")


def scenario_one_way(run, seconds):
    """One-way drops, INPUT only (netns): the leader stops hearing its
    followers while they still hear it (deaf-leader), the followers stop
    hearing the leader while it hears them (unheard-leader), or one node
    stops hearing one peer (deaf-link). TCP needs both directions, so the
    links stall soon, but not at once and not symmetrically. In the first
    two the old leader can commit nothing: it is the minority."""
    for kind in episodes(run, ["deaf-leader", "unheard-leader", "deaf-link"], seconds):
        ids = run.cluster.ids()
        leader = run.cluster.leader(5)
        if leader is None:
            continue
        others = [i for i in ids if i != leader]
        extra = {"minority": [leader], "majority": others}
        if kind == "deaf-leader":
            pairs = run.proxy.one_way(leader, others)
        elif kind == "unheard-leader":
            pairs = set().union(*(run.proxy.one_way(o, [leader]) for o in others))
        else:
            # either node can still form a majority with the rest
            dst, src = run.rng.sample(ids, 2)
            pairs = run.proxy.one_way(dst, [src])
            extra = {}
        fault = f"one-way-{kind}"
        run.proxy.set_blocked(pairs)
        run.log(fault, "start", ids, dropped=sorted([s, d] for s, d in pairs), **extra)
        time.sleep(run.rng.uniform(4, 8))
        run.unblock(fault, ids)


def scenario_net_quality(run, seconds):
    """Bad links (netns): 5-15% loss on one node; the leader's packets
    delayed 50 ms + U(0, 30) with 5% loss; every node's packets delayed
    10 ms + U(0, 10) with 2% loss (a packet between two nodes waits twice).
    No partition: progress is expected, and every property must hold.
    Without tests/chaos/nfq/nfqdelay (libnetfilter-queue-dev) only the
    loss is injected, with a note."""
    note = "tests/chaos/nfq/nfqdelay not built: net-quality injected loss only, no delay"
    if not run.proxy.can_delay() and note not in run.notes:
        run.notes.append(note)
    for kind in episodes(run, ["loss-one", "slow-leader", "slow-all"], seconds):
        ids = run.cluster.ids()
        if kind == "loss-one":
            nodes, loss, delay, jitter = [run.rng.choice(ids)], run.rng.uniform(0.05, 0.15), 0, 0
        elif kind == "slow-leader":
            leader = run.cluster.leader(5)
            nodes, loss, delay, jitter = [leader or run.rng.choice(ids)], 0.05, 50, 30
        else:
            nodes, loss, delay, jitter = ids, 0.02, 10, 10
        if not run.proxy.can_delay():
            delay = jitter = 0
        fault = f"net-{kind}"
        run.proxy.set_quality(nodes, loss, delay, jitter)
        run.log(fault, "start", nodes, loss=round(loss, 3), delay_ms=delay, jitter_ms=jitter)
        time.sleep(run.rng.uniform(6, 10))
        run.proxy.set_quality([])
        run.log(fault, "stop", nodes)


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
    "clock": (scenario_clock, 90, []),
    # 1 MiB raft segments (3 are preallocated) and frequent snapshots keep
    # a node's data dir well inside the 16 MiB tmpfs until the balloon
    "disk-full": (scenario_disk_full, 90,
                  ["--segment-size", "1048576", "--snapshot-threshold", "256",
                   "--snapshot-trailing", "128"]),
    # netns mode only (skipped, not failed, with the proxy)
    "one-way": (scenario_one_way, 90, []),
    "net-quality": (scenario_net_quality, 90, []),
    # a node's state (tests/chaos/statefaults.py)
    "deposed-limbo": (scenario_deposed_limbo, 60, LIMBO_ARGS),
    "crash-reboot": (scenario_crash_reboot, 60, SMALL_SNAPSHOTS),
    "lose-data": (scenario_lose_data, 40, SMALL_SNAPSHOTS),
    "old-backup": (scenario_old_backup, 40, SMALL_SNAPSHOTS),
    "store-full": (scenario_store_full, 40, ["--max-store-bytes", "1048576"]),
}
# Host setup a scenario needs before its cluster starts; raises Skip when
# the machine cannot do it.
PREPARE = {
    "clock": prepare_clock,
    "disk-full": prepare_disk_full,
    "one-way": needs_netns,
    "net-quality": needs_netns,
    "deposed-limbo": prepare_deposed_limbo,
    "store-full": prepare_store_full,
}
QUICK = ["kill-leader", "isolate-leader", "subscriber-install"]


def print_notes(run):
    """Prints what the scenario noted and what it found wrong; False if
    it found something wrong."""
    for note in run.notes:
        print(f"  note: {note}", flush=True)
    for why in run.failures:
        print(f"  failed: {why}", flush=True)
    return not run.failures


def summary_line(run, verdict, summary, seconds):
    """(ops by outcome, the one-line summary of a checked run)."""
    counts = {}
    for t in run.writers + run.readers:
        for k, v in t.counts.items():
            counts[k] = counts.get(k, 0) + v
    st = summary.get("stats", {})
    viol = sum(d.get("violations", 0) for d in summary.get("properties", {}).values())
    return counts, (f"ops {counts}, faults {run.faults}, {seconds:.0f} s; checker "
                    f"{verdict}: {st.get('subscribers', '?')} subscribers, "
                    f"{st.get('subscriber_changes', '?')} events, "
                    f"{st.get('reads', {}).get('linearizable', '?')} linearizable reads, "
                    f"violations {viol}")


def episodes(run, kinds, seconds):
    """Kinds of fault, in turn from a seeded start, one per 2-4 s pause, for
    `seconds` (at least one: soak gives 1 s)."""
    first = run.rng.randrange(len(kinds))
    end = time.monotonic() + seconds
    for k in range(1000):
        if k and time.monotonic() >= end:
            return
        time.sleep(run.rng.uniform(2, 4))
        yield kinds[(first + k) % len(kinds)]


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


def prepare(run, name):
    """The scenario's host setup (PREPARE) before its cluster starts;
    returns why it cannot run here, or None."""
    prep = PREPARE.get(name)
    try:
        if prep is not None:
            prep(run)
    except Skip as e:
        for c in run.cleanups:
            c()
        run.nemesis.close()
        return str(e)
    return None


def bad_exits(run, records):
    """Node processes that ended by themselves count as failures, except a
    node that stopped with a clear log line on the disk we made full, or
    one that refused to start on a lost or old data directory
    (statefaults.refused)."""
    bad = []
    for rec in records:
        tail = " | ".join(rec.get("log", "").strip().splitlines()[-2:])
        if excused_exit(run, rec):
            print(f"  node {rec['node']} stopped on its full disk (exit {rec['code']}), "
                  f"allowed: {tail}", flush=True)
        elif refused(run, rec):
            print(f"  node {rec['node']} refused to start on {run.excused[rec['node']]} "
                  f"(exit {rec['code']}), allowed: {tail}", flush=True)
        else:
            bad.append(rec["node"])
            print(f"  node {rec['node']} exited on its own (code {rec['code']}): {tail}",
                  flush=True)
    return bad


def pick_net(choice):
    """("netns" | "proxy", why) for --net `choice`; (None, why) when netns
    was asked for and is not possible."""
    if netns.inner_lab() is not None:
        return "netns", None
    if choice == "proxy":
        return "proxy", "--net proxy"
    why = netns.probe()
    if why is None:
        return "netns", None
    if choice == "netns":
        return None, why
    return "proxy", f"no netns: {why}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--scenario", action="append")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--no-request-ids", action="store_true",
                    help="writers resend ambiguous writes without request ids: shows the "
                    "double applies the ids prevent (the checker's ONCE must fail)")
    ap.add_argument("--soak", type=float, metavar="MINUTES",
                    help="soak mode (tests/chaos/soak.py): one cluster, mixed faults, "
                    "checked in epochs")
    ap.add_argument("--nodes", type=int, default=5, help="soak: cluster size")
    ap.add_argument("--epochs", type=int, help="soak: number of checked epochs")
    ap.add_argument("--net", choices=("auto", "netns", "proxy"), default="auto",
                    help="netns: every node in its own network namespace, real packet drops "
                    "(root); proxy: 127.0.0.1 and a per-link TCP proxy; auto (default): "
                    "netns when possible")
    a = ap.parse_args()
    unknown = [n for n in a.scenario or [] if n not in SCENARIOS]
    if unknown:  # before any namespace is made
        ap.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    net, why = pick_net(a.net)
    if net is None:
        print(f"chaos: --net netns is not possible here: {why}", flush=True)
        return 2
    if net == "netns" and netns.inner_lab() is None:
        # make the namespaces, run this same command inside them, always
        # tear them down (netns.run_outer)
        nodes = a.nodes if a.soak is not None else 3
        return netns.run_outer(os.path.abspath(__file__), sys.argv[1:], nodes)
    if net == "netns":
        print(f"chaos: net netns: each node in its own network namespace, bridged, "
              f"{netns.SUBNET}.0/24, partitions by iptables (namespaces "
              f"{netns.inner_lab()[0]}-*)", flush=True)
    else:
        print(f"chaos: net proxy: 127.0.0.1, partitions by a per-link TCP proxy, client "
              f"links never cut ({why})", flush=True)
    if a.soak is not None:
        import soak  # here: soak.py uses this module's Run and scenarios
        return soak.run_soak(a, sys.modules[__name__])
    build = os.path.abspath(a.build)
    seed = a.seed if a.seed is not None else int(time.time()) % 100000
    names = a.scenario or (QUICK if a.quick else list(SCENARIOS))
    # --quick: the same fault kinds, shorter, so `make test` can afford it
    scale = 0.7 if a.quick else float(os.environ.get("CHAOS_SCALE", "1.0"))
    print(f"chaos: seed {seed}, scenarios {', '.join(names)}", flush=True)
    root = a.out or tempfile.mkdtemp(prefix="flipd-chaos-")
    passed = failed = 0
    skipped = []
    totals = {"ops": {}, "faults": {}, "events": 0}
    for idx, name in enumerate(names):
        fn, seconds, args = SCENARIOS[name]
        seconds = int(seconds * scale)
        outdir = os.path.join(root, name)
        os.makedirs(outdir, exist_ok=True)
        with open(os.path.join(outdir, "seed"), "w") as f:
            f.write(f"{seed + idx}\n")
        print(f"== {name} ({seconds} s of faults, seed {seed + idx})", flush=True)
        run = Run(build, outdir, seed + idx, ["--election-ms", "500", "--heartbeat-ms", "50"] + args,
                  request_ids=not a.no_request_ids)
        why = prepare(run, name)
        if why is not None:
            print(f"  skipped: {why}", flush=True)
            skipped.append((name, why))
            continue
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
        crashed = bad_exits(run, run.cluster.own_exits())
        if crashed:
            print(f"  nodes exited on their own: {crashed}", flush=True)
            ok = False
        ok = print_notes(run) and ok
        checked, summary = run_checker(outdir)
        ok = ok and checked
        if run.expect_install is not None:
            log = open(os.path.join(outdir, f"n{run.expect_install}.log")).read()
            if "restored snapshot" not in log:
                print(f"  node {run.expect_install} was never caught up by snapshot "
                      "install: the scenario did not exercise it", flush=True)
                ok = False
        counts, line = summary_line(run, summary.get(
            "verdict", "FAILED" if not checked else "ok"), summary, time.monotonic() - t0)
        print(f"  {line}", flush=True)
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
                  f"--scenario {name} --seed {seed + idx}"
                  f"{' --no-request-ids' if a.no_request_ids else ''}", flush=True)
    print(f"summary: ops {totals['ops']}, faults {totals['faults']}", flush=True)
    for name, why in skipped:
        print(f"skipped {name}: {why}", flush=True)
    if failed == 0 and not a.keep and not a.out:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"histories in {root}", flush=True)
    print(f"chaos: {passed} passed, {failed} failed, {len(skipped)} skipped", flush=True)
    return 0 if failed == 0 else 1


def _interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so every Run.close() runs: processes
    # stopped, tmpfs mounts gone
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("chaos: interrupted", flush=True)
        sys.exit(130)
