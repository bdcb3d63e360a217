"""Chaos scenarios that attack a node's state rather than its network:
the faults that found the exactly-once and store findings of issue 8
(findings H1, H2, H3 of the 2026-12-07 correctness review; the commits
that fixed them say what each one was).

  deposed-limbo   the leader stops hearing its peers (their raft
                  connections to it reset, clients not cut), its
                  writes keep coming and go into limbo; 60 ms later it is
                  paused 5-12 s while the others elect a leader, commit
                  those writes and snapshot past them (small snapshot
                  settings, a 2 s election timeout); the cut heals at once
                  (the peers reconnect to the paused node: the schedule
                  that reproduced H1), late in the pause, or after it
                  resumed and stepped down; it catches up by
                  InstallSnapshot. Its limbo writes must be
                  answered "unknown" (resent with the same id) and applied
                  once. At least one episode must really install a snapshot
                  on the deposed leader, or the scenario did not test it.
  crash-reboot    crash loop with a simulated reboot: kill -9 a node, give
                  its store a different kernel boot id (storage/store.c
                  check_markers then discards data.mdb, as after a power
                  cut), restart it; crash or pause whoever leads until the
                  rebooted node wins an election, then isolate it at once
                  (writes it took as the new leader are uncommitted).
  lose-data       kill -9 a node, delete its whole data directory, restart
                  it with the same flags.
  old-backup      stop a node cleanly, copy its data directory, restart it;
                  later kill -9 it, put the old copy back, restart it.
  store-full      a 1 MiB --max-store-bytes, writers of 12-28 KB values over
                  80 keys and deletes: sets are refused with STORE_FULL
                  ("fail": definitely not applied), deletes keep working and
                  make room; one node is killed and restarted while full.

lose-data and old-backup accept either reaction of the node: it refuses to
start (it exits by itself with a non-zero status and a log line, no crash:
it then stays down and the run goes on with the others) or it rejoins and
catches up. Either way the checker must find no stale value served as live,
no lost and no doubled write.
"""
import os
import shutil
import signal
import time
import uuid

from hostfaults import CRASH_MARKS

# --snapshot-trailing may not go below 64 (server/config.c)
SMALL_SNAPSHOTS = ["--snapshot-threshold", "32", "--snapshot-trailing", "64"]
# deposed-limbo: a deposed leader keeps a write in limbo for one election
# timeout; 2 s (as in the review's demoB) widens the window in which it must
# install the snapshot, the logic is the same as at 500 ms
LIMBO_ARGS = SMALL_SNAPSHOTS + ["--election-ms", "2000"]


def log_size(run, i):
    try:
        return os.path.getsize(os.path.join(run.out, f"n{i}.log"))
    except OSError:
        return 0


def log_since(run, i, offset):
    try:
        with open(os.path.join(run.out, f"n{i}.log"), errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def episodes(run, seconds, most):
    """Yields episode numbers 0.. for `seconds` (at least one, at most
    `most`), after a seeded 2-4 s pause each."""
    end = time.monotonic() + seconds
    for k in range(most):
        if k and time.monotonic() >= end:
            return
        time.sleep(run.rng.uniform(2, 4))
        yield k


# ---- (a) deposed leader catches up by snapshot with writes in limbo -------------

def prepare_deposed_limbo(run):
    """One more writer, patient: it waits up to 15 s for an attempt's answer
    (20 s per write) from anywhere, so it hears what the deposed leader
    answers for its limbo write instead of giving up first. With request ids
    that answer must be LEADERSHIP_LOST (the resend then gets the real
    outcome); without them (--no-request-ids) the resend of a write that
    did commit applies it again (ONCE)."""
    run.extra_writers = [{"deadline_s": 20.0, "attempt_s": 15.0}]
    # the others resend for 10 s: long enough to outlast the 2 s election
    # and reach the new leader (which commits the limbo writes), so their
    # resends give the real outcome, or without ids apply them again
    run.writer_args = {"deadline_s": 10.0}


def scenario_deposed_limbo(run, seconds):
    installs = 0
    for _ in episodes(run, seconds, 4):
        ids = run.cluster.ids()
        leader = run.cluster.leader(10)
        if leader is None:
            continue
        others = [i for i in ids if i != leader]
        mark = log_size(run, leader)
        pause = run.rng.uniform(5, 12)
        # the cut resets its peers' connections (they reconnect the moment
        # it heals, nothing stale is held back). It heals at once, before
        # the pause (the schedule that reproduced H1 from the outside: on
        # resume it reads the buffered messages, steps down and installs
        # the snapshot within the limbo's election timeout), late in the
        # pause after the others snapshotted past the limbo writes, or
        # after it resumed and stepped down by itself.
        heal = run.rng.choice(["before-pause", "in-pause", "after-resume"])
        heal_before = run.rng.uniform(0.5, 2.0)
        # not a partition for the checker: the leader is paused most of the
        # time and cannot tell its subscribers anything (L does not apply)
        run.log("deposed-limbo", "start", [leader], deaf_from=others, pause_s=round(pause, 2),
                heal=heal)
        run.proxy.set_blocked({(o, leader) for o in others}, reset=True)
        time.sleep(0.06)
        if heal == "before-pause":
            run.proxy.set_blocked(set())
        run.cluster.signal(leader, signal.SIGSTOP)
        if heal == "in-pause":
            time.sleep(pause - heal_before)
            run.proxy.set_blocked(set())
            time.sleep(heal_before)
        else:
            time.sleep(pause)
        run.cluster.signal(leader, signal.SIGCONT)
        if heal == "after-resume":
            # it hears no acks, steps down after an election timeout with
            # its batch in limbo; then the new leader reaches it
            time.sleep(run.rng.uniform(2.5, 3.5))
            run.proxy.set_blocked(set())
        run.log("deposed-limbo", "stop", [leader])
        for _ in range(50):
            if "restored snapshot" in log_since(run, leader, mark):
                installs += 1
                break
            time.sleep(0.2)
    if installs == 0:
        run.failures.append("no deposed leader caught up by snapshot install: the "
                            "scenario did not exercise H1")
    else:
        run.notes.append(f"deposed leaders caught up by snapshot install: {installs}")


# ---- (b) crash loop with a simulated reboot, then the node wins ---------------------

def simulate_reboot(run, i):
    """While node i is down: another kernel boot id in its store's marker
    file and no clean marker, so the next start discards data.mdb."""
    fsm = os.path.join(run.cluster.data_dir(i), "fsm")
    if not os.path.isdir(fsm):
        return False
    with open(os.path.join(fsm, "boot_id"), "w") as f:
        f.write(str(uuid.UUID(int=run.rng.getrandbits(128))) + "\n")
    try:
        os.unlink(os.path.join(fsm, "clean"))
    except FileNotFoundError:
        pass
    return True


DISCARDED = "rebooted without a clean close"  # storage/store.c check_markers


def scenario_crash_reboot(run, seconds):
    won = discarded = 0
    for _ in episodes(run, seconds, 4):
        ids = run.cluster.ids()
        leader = run.cluster.leader(10)
        victim = leader if leader is not None and run.rng.random() < 0.5 else run.rng.choice(ids)
        mark = log_size(run, victim)
        run.log("crash-reboot", "start", [victim])
        for _ in range(run.rng.randint(1, 3)):  # the crash loop
            run.cluster.kill(victim)
            rebooted = simulate_reboot(run, victim)
            time.sleep(run.rng.uniform(0.3, 1.5))
            run.cluster.start(victim)
            time.sleep(run.rng.uniform(0.2, 1.0))
        run.log("crash-reboot", "stop", [victim], rebooted=rebooted)
        discarded += log_since(run, victim, mark).count(DISCARDED)
        # depose whoever leads until the rebooted node wins (bounded)
        for _ in range(6):
            leader = run.cluster.leader(10)
            if leader is None or leader == victim:
                break
            if run.rng.random() < 0.5:
                run.pause(leader, 1.5, "pause-leader")
            else:
                run.log("kill-leader", "start", [leader])
                run.cluster.kill(leader)
                time.sleep(1)
                run.cluster.start(leader)
                run.log("kill-leader", "stop", [leader])
            time.sleep(0.5)
        if run.cluster.leader(5) == victim:
            won += 1
            # cut it off before its first writes as the new leader commit
            run.isolate(victim, "isolate-rebooted-leader")
            time.sleep(run.rng.uniform(1.5, 3))
            run.unblock("isolate-rebooted-leader", [victim])
    if won == 0 or discarded == 0:
        run.failures.append(f"rebooted nodes that won an election: {won}, stores discarded "
                            f"on a simulated reboot: {discarded}: the scenario did not "
                            "exercise H2")
    else:
        run.notes.append(f"stores discarded on a simulated reboot: {discarded}; rebooted "
                         f"nodes that won an election: {won}")


# ---- (c) lost data directory, (d) old copy of it ------------------------------------

def refused(run, rec):
    """Whether node rec["node"]'s own exit is the accepted refusal to start
    on a lost or old data directory: the node we did that to, a plain exit
    with a non-zero status (not a signal: no abort), a log line saying
    something, and no sanitizer report or failed assertion."""
    why = run.excused.get(rec["node"])
    if why is None or rec.get("code") is None or rec["code"] <= 0:
        return False
    log = rec.get("log", "")
    return bool(log.strip()) and not any(m in log for m in CRASH_MARKS)


def settle(run, i, what):
    """After node i was restarted on a lost or old data directory: either
    it refuses to start (exits by itself; it then stays down, retired) or
    it rejoins and catches up with the leader. Returns "refused",
    "rejoined" or None (neither: a failure is recorded)."""
    run.excused[i] = what
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not run.cluster.alive(i):
            tail = run.cluster.process_log(i).strip().splitlines()[-1:] or ["(empty log)"]
            run.cluster.retired.add(i)
            run.log("stays-down", "start", [i], why=what)
            run.notes.append(f"n{i} refused to start on {what} (exit "
                             f"{run.cluster.exit_code(i)}): {tail[0]}")
            return "refused"
        sts = run.cluster.statuses()
        leader = run.cluster.leader(2)
        if leader is not None and i in sts and leader in sts and \
                sts[i]["applied"] >= sts[leader]["commit"] - 64:
            run.notes.append(f"n{i} rejoined after {what} and caught up")
            return "rejoined"
        time.sleep(0.2)
    run.failures.append(f"n{i} neither refused to start nor caught up within 20 s "
                        f"after {what}")
    return None


def scenario_lose_data(run, seconds):
    end = time.monotonic() + seconds
    for k in episodes(run, seconds, 2):
        up = [i for i in run.cluster.ids() if i not in run.cluster.retired]
        if len(up) < len(run.cluster.ids()):
            # one node stays down: no second wipe (keep the majority), the
            # workload runs on with the others
            time.sleep(max(0, end - time.monotonic()))
            return
        leader = run.cluster.leader(10)
        # first a follower, then whoever leads
        victim = leader if k and leader is not None else \
            run.rng.choice([i for i in up if i != leader])
        run.log("wipe-data", "start", [victim])
        run.cluster.kill(victim)
        shutil.rmtree(run.cluster.data_dir(victim), ignore_errors=True)
        time.sleep(run.rng.uniform(0.5, 2))
        run.cluster.start(victim)
        run.log("wipe-data", "stop", [victim])
        settle(run, victim, "a lost data directory")
        time.sleep(run.rng.uniform(3, 6))


def scenario_old_backup(run, seconds):
    ids = run.cluster.ids()
    victim = run.rng.choice(ids)
    backup = os.path.join(run.out, f"n{victim}.backup")
    time.sleep(run.rng.uniform(2, 4))
    run.log("restart-for-backup", "start", [victim])
    run.cluster.stop(victim)
    shutil.copytree(run.cluster.data_dir(victim), backup, symlinks=True)
    run.cluster.start(victim)
    run.log("restart-for-backup", "stop", [victim])
    # writes (and snapshots) go on past the copy
    time.sleep(max(8, seconds - 10))
    run.log("restart-old-backup", "start", [victim])
    run.cluster.kill(victim)
    shutil.rmtree(run.cluster.data_dir(victim), ignore_errors=True)
    shutil.copytree(backup, run.cluster.data_dir(victim), symlinks=True)
    run.cluster.start(victim)
    run.log("restart-old-backup", "stop", [victim])
    settle(run, victim, "an old copy of its data directory")
    time.sleep(3)


# ---- (e) store driven to its budget -------------------------------------------------

STORE_FULL_KEYS = [f"chaos.b{i}" for i in range(80)]


def prepare_store_full(run):
    """Before the cluster starts: 80 keys, values of 12-28 KB, 15% of the
    writes deletes: about 68 keys exist at a time, ~1.3 MB against the
    1 MiB budget, so new keys keep meeting STORE_FULL until deletes make
    room. Slower writers keep the history small."""
    run.keys = STORE_FULL_KEYS
    run.writer_args = {"del_ratio": 0.15, "value_size": (12000, 28000), "cas_ratio": 0.1,
                       "pause_s": 0.15}


def scenario_store_full(run, seconds):
    end = time.monotonic() + seconds
    killed = False
    while time.monotonic() < end:
        time.sleep(min(run.rng.uniform(4, 8), max(0.1, end - time.monotonic())))
        if not killed and time.monotonic() > end - seconds / 2:
            run.kill_random()
            killed = True
    full = dels = 0
    for w in run.writers:
        full += w.status_counts.get("STORE_FULL", 0)
        dels += w.status_counts.get("del:OK", 0)
    run.notes.append(f"STORE_FULL answers {full}, deletes acknowledged {dels}")
    if full == 0:
        run.failures.append("no set was refused with STORE_FULL: the store never "
                            "reached its budget")
    if dels == 0:
        run.failures.append("no delete was acknowledged")
