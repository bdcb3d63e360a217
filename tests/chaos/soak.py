"""Soak mode of the chaos suite: `run.py BUILD --soak MINUTES` (make soak).

One cluster (5 nodes by default) runs for MINUTES. A seeded nemesis
starts a fault every 10-20 s, its kind drawn from MIX: one episode of the
run.py scenario of that name (run with 1 s of budget, which is one round
of its loop). Kinds the machine cannot do (no libfaketime, not root, no
network namespaces) are left out, with the reason printed.

The run is cut into epochs (MINUTES / 10, at least 2, or --epochs). At the
end of each: heal everything, stop the workload, wait for convergence,
read every key on every node, run the checker on that epoch's folder
(epoch-NN/). The next epoch writes fresh keys under its own prefix
(chaos.e<N>.) with fresh subscribers, on the same cluster, so each
history stays small enough for the checker. An epoch fails on a checker
`invalid`, a node exiting by itself, no convergence, or a broken
expectation a fault reports (run.failures, e.g. a node that does not catch
up once its disk is freed); a checker `unknown` is a warning, since a long
run may leave a read without its final value. Closing line:
"soak: N passed, N failed", N counting epochs.
"""
import math
import os
import shutil
import tempfile
import time

from hostfaults import Skip

# Fault kinds, by run.py scenario name. Names not in run.SCENARIOS (the
# network-namespace ones, before they exist) are skipped.
MIX = ["kill-random", "kill-leader", "pause-leader", "isolate-leader", "split", "ring",
       "clock", "disk-full", "one-way", "net-quality"]
# Longest one episode of a kind takes, in s, so that no fault starts that
# would run into the epoch's checking phase (default: DEFAULT_EPISODE_S).
EPISODE_S = {"isolate-leader": 20, "clock": 32, "disk-full": 50}
DEFAULT_EPISODE_S = 16
# Heal, converge, final reads and the checker, per epoch: a first guess,
# then what the last epoch took plus a margin.
CHECK_S = 20
FLIPD_ARGS = ["--election-ms", "500", "--heartbeat-ms", "50",
              # snapshot installs happen, and a node fits its 24 MiB tmpfs
              "--snapshot-threshold", "512", "--snapshot-trailing", "256",
              "--segment-size", "1048576"]


def plan(minutes, epochs):
    """(number of epochs, seconds per epoch)."""
    n = epochs or max(2, math.ceil(minutes / 10))
    return n, minutes * 60 / n


def prepare_mix(run, h):
    """The fault kinds this machine can do; their host setup done."""
    mix = []
    for name in MIX:
        if name not in h.SCENARIOS:
            continue
        prep = h.PREPARE.get(name)
        try:
            if prep is not None:
                if name == "disk-full":
                    prep(run, 24)
                else:
                    prep(run)
        except Skip as e:
            print(f"soak: no {name} faults: {e}", flush=True)
            continue
        mix.append(name)
    return mix


def nemesis(run, h, mix, end):
    """Starts a fault every 10-20 s until `end` (monotonic s). Returns the
    kinds that broke the harness (dropped from the mix)."""
    broken = []
    for _ in range(100000):  # bounded; each round sleeps at least 1 s
        left = end - time.monotonic()
        fits = [m for m in mix if EPISODE_S.get(m, DEFAULT_EPISODE_S) < left]
        if not fits:
            time.sleep(max(0.0, min(left, 60)))
            if time.monotonic() >= end:
                break
            continue
        t0 = time.monotonic()
        name = run.rng.choice(fits)
        try:
            h.SCENARIOS[name][0](run, 1)
        except Exception as e:  # noqa: BLE001 - a harness bug, not a node's
            print(f"  harness error in {name}: {e!r}; dropping it from the mix", flush=True)
            broken.append(name)
            mix.remove(name)
            run.heal()
        wait = t0 + run.rng.uniform(10, 20) - time.monotonic()
        time.sleep(max(1.0, min(wait, end - time.monotonic())))
    return broken


def check_epoch(run, h, edir, exits_seen):
    """Heals, reads, checks one epoch. Returns (ok, verdict, summary)."""
    run.heal()
    ok = run.finish()
    if not ok:
        print("  cluster did not converge after healing", flush=True)
    recs = run.cluster.own_exits()[exits_seen:]
    if h.bad_exits(run, recs):
        ok = False
    ok = h.print_notes(run) and ok
    _, summary = h.run_checker(edir)
    verdict = summary.get("verdict", "FAILED")
    if verdict == "unknown":
        print("  warning: checker verdict unknown (search budget ran out)", flush=True)
    return ok and verdict in ("valid", "unknown"), verdict, summary


def run_soak(a, h):
    """`a`: run.py's parsed arguments; `h`: the run.py module."""
    build = os.path.abspath(a.build)
    seed = a.seed if a.seed is not None else int(time.time()) % 100000
    n_epochs, epoch_s = plan(a.soak, a.epochs)
    root = a.out or tempfile.mkdtemp(prefix="flipd-soak-")
    print(f"soak: seed {seed}, {a.nodes} nodes, {n_epochs} epochs of {epoch_s:.0f} s, "
          f"in {root}", flush=True)
    with open(os.path.join(root, "seed"), "w") as f:
        f.write(f"{seed}\n")
    run = h.Run(build, root, seed, FLIPD_ARGS, nodes=a.nodes)
    passed = failed = 0
    try:
        mix = prepare_mix(run, h)
        print(f"soak: faults {', '.join(mix)}", flush=True)
        run.start(workload=False)
        t_start = time.monotonic()
        check_s = CHECK_S
        for e in range(1, n_epochs + 1):
            t0 = time.monotonic()
            # epochs end on a fixed schedule, so the soak lasts MINUTES
            t_end = t_start + e * epoch_s
            edir = os.path.join(root, f"epoch-{e:02d}")
            os.makedirs(edir, exist_ok=True)
            print(f"== epoch {e}/{n_epochs} (keys chaos.e{e}.*)", flush=True)
            exits_seen = len(run.cluster.exits)
            try:
                run.begin_epoch(edir, f"chaos.e{e}.", seed * 1000 + e)
                nemesis(run, h, mix, max(t0 + 30.0, t_end - check_s))
                t_check = time.monotonic()
                ok, verdict, summary = check_epoch(run, h, edir, exits_seen)
                check_s = time.monotonic() - t_check + 5
            except Exception as ex:  # noqa: BLE001 - report, try the next epoch
                print(f"  harness error: {ex!r}", flush=True)
                ok, verdict, summary = False, "not checked", {}
                run.heal()
            _, line = h.summary_line(run, verdict, summary, time.monotonic() - t0)
            print(f"  epoch {e}/{n_epochs} {'ok' if ok else 'FAILED'}: {line}", flush=True)
            if ok:
                passed += 1
            else:
                failed += 1
                print(f"  FAILED: kept {edir}; replay the fault order: tests/chaos/run.py "
                      f"{a.build} --soak {a.soak:g} --nodes {a.nodes} --seed {seed}", flush=True)
    finally:
        run.close()
    if failed == 0 and not a.keep and not a.out:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"histories in {root}", flush=True)
    print(f"soak: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1
