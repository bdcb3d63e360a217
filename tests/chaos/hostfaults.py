"""Host faults for the chaos suite: clock skew and a full disk
(each fault and what it must not break is described below).

Clock: every node of a "clock" run starts under libfaketime
(LD_PRELOAD) with its own timestamp file holding its wall-clock offset;
writing "+3600" or "-3600" there jumps that running node's CLOCK_REALTIME
at its next clock read (FAKETIME_NO_CACHE=1), while DONT_FAKE_MONOTONIC=1
keeps its monotonic clock real, as a real wall-clock step would. A node
restarted "skewed" runs its whole clock, CLOCK_MONOTONIC and libuv's timers
included, 4x fast or 2x slow (FAKETIME="+0 x4"): the skew that matters to
Raft (a fast node times out and campaigns early, a slow one notices a dead
leader late). The rate can only be chosen at start: changing "x4" in the
timestamp file of a running process recomputes its clock from process
start, a jump of its monotonic clock that no real clock makes.

Disk: one node's data dir is a small tmpfs mounted before its first start
(root only); a balloon file fills it (writes until ENOSPC, topped up while
the fault lasts, as the node frees space), then is removed. Every mount is
unmounted by Run.close(), and by an atexit hook if the harness dies on an
exception or Ctrl-C first.

The checker uses the harness's monotonic clock only, never node
timestamps, so skewed nodes do not disturb it.

CHAOS_DISK_TRACE=1 adds LIBRAFT_TRACE=1 to the disk node: libraft reports
its own I/O errors (a failed segment rewrite, a snapshot write retried on
ENOSPC) only there. LIBRAFT_TRACE=1 in the harness's environment traces
every node.
"""
import atexit
import errno
import os
import shutil
import signal
import subprocess
import time


class Skip(Exception):
    """The scenario cannot run on this machine; run.py prints why and does
    not count it as a failure."""


# ---- clock ------------------------------------------------------------------

def libfaketime():
    """Path of libfaketime.so.1 ($CHAOS_LIBFAKETIME, or from `dpkg -L
    libfaketime`), or None."""
    env = os.environ.get("CHAOS_LIBFAKETIME")
    if env:
        return env if os.path.exists(env) else None
    try:
        out = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if line.endswith("/libfaketime.so.1") and os.path.exists(line):
            return line
    return None


class Clocks:
    """libfaketime on every node of a run (see the module docstring)."""

    def __init__(self, run, lib):
        self.run = run
        self.lib = lib
        self.files = {i: os.path.join(run.cluster.workdir, f"clock.n{i}")
                      for i in run.cluster.ids()}
        self.skewed = {}   # node -> rate it was restarted with
        self.jumped = {}   # node -> wall offset in seconds
        for i in run.cluster.ids():
            self._write(i, 0)
            self._set_env(i, None)

    def _set_env(self, node, rate):
        """Node's environment for its next start; keeps what others set."""
        env = {k: v for k, v in self.run.cluster.node_env.get(node, {}).items()
               if not k.startswith("FAKETIME") and k != "DONT_FAKE_MONOTONIC"}
        env.update(self._env(node, rate))
        self.run.cluster.node_env[node] = env

    def _env(self, node, rate):
        env = {"LD_PRELOAD": " ".join(p for p in (self.lib, os.environ.get("LD_PRELOAD")) if p),
               # an ASan build insists on being first in the preload order
               "ASAN_OPTIONS": ":".join(p for p in (os.environ.get("ASAN_OPTIONS"),
                                                    "verify_asan_link_order=0") if p)}
        if rate is None:
            env.update({"FAKETIME_TIMESTAMP_FILE": self.files[node], "FAKETIME_NO_CACHE": "1",
                        "DONT_FAKE_MONOTONIC": "1"})
        else:
            env["FAKETIME"] = f"+0 x{rate:g}"
        return env

    def _write(self, node, offset_s):
        # write then rename: a node must never read a half-written file
        tmp = self.files[node] + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{offset_s:+d}\n")
        os.replace(tmp, self.files[node])

    def restart_skewed(self, node, rate):
        """kill -9 the node and start it with its clock at `rate` x real."""
        run = self.run
        run.log("clock-restart", "start", [node], rate=rate)
        run.cluster.kill(node)
        self._set_env(node, rate)
        run.cluster.start(node)
        self.skewed[node] = rate

    def restart_real(self, node):
        run = self.run
        run.cluster.kill(node)
        self._set_env(node, None)
        run.cluster.start(node)
        self.skewed.pop(node, None)
        run.log("clock-restart", "stop", [node])

    def jump(self, node, offset_s):
        self.run.log("clock-jump", "start", [node], offset_s=offset_s)
        self._write(node, offset_s)
        self.jumped[node] = offset_s

    def unjump(self, node):
        self._write(node, 0)
        self.jumped.pop(node, None)
        self.run.log("clock-jump", "stop", [node])

    def heal(self):
        for node in list(self.jumped):
            self.unjump(node)
        for node in list(self.skewed):
            self.restart_real(node)


def prepare_clock(run):
    """Before the cluster starts: every node under libfaketime."""
    lib = libfaketime()
    if lib is None:
        raise Skip("libfaketime not installed")
    run.host["clock"] = Clocks(run, lib)
    run.healers.append(run.host["clock"].heal)


def clock_rate_episode(run, hold_s):
    """One node 4x fast and another 2x slow for hold_s, then both real."""
    clocks = run.host["clock"]
    fast, slow = run.rng.sample(run.cluster.ids(), 2)
    for node, rate in ((fast, 4), (slow, 0.5)):
        clocks.restart_skewed(node, rate)
        # let it rejoin before the next restart, so a majority stays up
        time.sleep(1.5)
    time.sleep(hold_s)
    for node in (fast, slow):
        clocks.restart_real(node)
        time.sleep(1.5)


def clock_jump_episode(run, hold_s):
    """A node's wall clock jumps +-1 h, a second node's the other way while
    the first is off (2 h apart), then both come back."""
    clocks = run.host["clock"]
    a, b = run.rng.sample(run.cluster.ids(), 2)
    sign = run.rng.choice((1, -1))
    clocks.jump(a, sign * 3600)
    time.sleep(hold_s / 2)
    clocks.jump(b, -sign * 3600)
    time.sleep(hold_s / 2)
    clocks.unjump(a)
    clocks.unjump(b)


def scenario_clock(run, seconds):
    """Clock skew: one node x4 and one x0.5 (restarted so), alternating
    with wall-clock jumps of +-1 h on running nodes."""
    end = time.monotonic() + seconds
    rate_next = run.rng.random() < 0.5
    for _ in range(1000):  # bounded; each episode takes at least 10 s
        if time.monotonic() >= end:
            break
        time.sleep(run.rng.uniform(2, 4))
        if rate_next:
            clock_rate_episode(run, run.rng.uniform(12, 20))
        else:
            clock_jump_episode(run, run.rng.uniform(8, 14))
        rate_next = not rate_next


# ---- disk -------------------------------------------------------------------

MOUNTS = set()  # mount points this process still has to unmount


def _unmount_all_at_exit():
    for path in list(MOUNTS):
        umount(path)


atexit.register(_unmount_all_at_exit)


def umount(path):
    """Unmounts `path`, retrying while a dying process still holds a file
    there, lazily as a last resort; never leaves the mount behind."""
    for _ in range(20):
        p = subprocess.run(["umount", path], capture_output=True, text=True, timeout=30)
        if p.returncode == 0 or not os.path.ismount(path):
            MOUNTS.discard(path)
            return True
        time.sleep(0.25)
    p = subprocess.run(["umount", "-l", path], capture_output=True, text=True, timeout=30)
    MOUNTS.discard(path)
    if p.returncode != 0:
        print(f"  could not unmount {path}: {p.stderr.strip()}", flush=True)
        return False
    return True


class SmallDisk:
    """A tmpfs of size_mb on node `node`'s data dir, and its balloon."""

    def __init__(self, run, node, size_mb):
        self.run = run
        self.node = node
        self.size = size_mb << 20
        self.path = os.path.join(run.cluster.workdir, f"n{node}")
        self.balloon = os.path.join(self.path, "balloon")
        self.died_full = set()  # log offsets (Cluster.log_from) of processes seen
        #                         dead while the balloon was in place

    def mount(self):
        if os.geteuid() != 0:
            raise Skip("mounting a tmpfs needs root")
        if shutil.which("mount") is None or shutil.which("umount") is None:
            raise Skip("no mount/umount command")
        os.makedirs(self.path, exist_ok=True)
        if os.listdir(self.path):
            raise RuntimeError(f"{self.path} is not empty: the node must start on the tmpfs")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755",
                            "flipd-chaos", self.path], capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise Skip(f"mount -t tmpfs failed: {p.stderr.strip()}")
        MOUNTS.add(self.path)

    def fill(self):
        """Writes the balloon until ENOSPC (1 MiB, then 4 KiB steps, bounded
        by the tmpfs size). Called again while full, it takes whatever the
        node freed meanwhile. Returns the bytes added."""
        added = 0
        with open(self.balloon, "ab", buffering=0) as f:
            for step in (1 << 20, 4096):
                buf = b"\0" * step
                for _ in range(self.size // step + 1):
                    try:
                        n = f.write(buf)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
                    added += n or 0
        return added

    def free(self):
        try:
            os.unlink(self.balloon)
        except FileNotFoundError:
            pass

    def usage(self):
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize

    def unmount(self):
        """After the node is stopped: keeps a copy of its data dir for the
        post-mortem (n<i>.disk), then unmounts."""
        if self.path not in MOUNTS:
            return
        self.free()
        try:
            shutil.copytree(self.path, self.path + ".disk", dirs_exist_ok=True)
        except (OSError, shutil.Error) as e:
            print(f"  copying {self.path}: {e}", flush=True)
        umount(self.path)


def prepare_disk_full(run, size_mb=16):
    """Before the cluster starts: one node's data dir on a small tmpfs."""
    node = run.rng.choice(run.cluster.ids())
    disk = SmallDisk(run, node, size_mb)
    disk.mount()
    run.host["disk"] = disk
    run.cleanups.append(disk.unmount)
    run.healers.append(disk.free)
    if os.environ.get("CHAOS_DISK_TRACE"):
        # libraft's own trace in n<node>.log: its I/O errors are not
        # reported to flipd otherwise (see the truncate on a full disk)
        run.cluster.node_env.setdefault(node, {})["LIBRAFT_TRACE"] = "1"
    print(f"  node {node}'s data dir is a {size_mb} MiB tmpfs", flush=True)


def _wait_leader_not(run, node, timeout):
    """A leader other than `node`, or None (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = run.cluster.leader(1)
        if leader is not None and leader != node:
            return leader
    return None


def _make_leader(run, node, tries=3):
    """Tries to have `node` lead: isolates whoever leads instead, until
    another leader is elected (bounded). Returns the leader."""
    leader = run.cluster.leader(10)
    for _ in range(tries):
        if leader is None or leader == node:
            break
        run.isolate(leader, "isolate-leader")
        new = _wait_leader_not(run, leader, 8)
        run.unblock("isolate-leader", [leader])
        leader = new if new is not None else run.cluster.leader(10)
    return leader


def _fill_as_follower(run, disk):
    """Fills the disk of the disk node as a follower. If it leads, it is
    isolated until another node leads, and its disk filled before the
    isolation ends: it then has to truncate its uncommitted tail on a full
    disk (libraft rewrites a segment for that). Returns the leader."""
    node = disk.node
    leader = run.cluster.leader(10)
    led = leader == node
    if led:
        run.isolate(node, "isolate-disk-node")
        leader = _wait_leader_not(run, node, 8)
    run.log("disk-full", "start", [node], was_leader=led)
    disk.fill()
    if led:
        run.unblock("isolate-disk-node", [node])
    return leader


def _caught_up(run, node, timeout):
    """Whether `node` applies the leader's commit index within `timeout`."""
    leader = run.cluster.leader(10)
    if leader is None:
        return False
    commit = run.cluster.statuses().get(leader, {}).get("commit", 0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = run.cluster.statuses().get(node)
        if st is not None and st["applied"] >= commit:
            return True
        time.sleep(0.2)
    return False


def _last_error(text):
    """flipd's last ERROR/WARN line (libraft trace lines are skipped)."""
    lines = [ln for ln in text.splitlines() if " ERROR " in ln or " WARN " in ln]
    return lines[-1].strip() if lines else "(none)"


def disk_full_episode(run, hold_s, crash):
    """Fills the disk node's tmpfs for about hold_s while flips go on (half
    the time it is made leader first, and steps down on the full disk), then
    pauses the other followers for 3 s (n // 2 of them), so that every
    commit needs the full node's ack. Then either (crash=False) resumes
    them, frees the disk and the node must catch up, restarted only if it
    stopped; or (crash=True) kills every node that was not paused, the
    leader and the full node included, frees the disk, resumes the paused
    ones and restarts the full node first: the new majority is the full
    node plus nodes that missed the window, so an entry it acked but did
    not write (a write that failed with ENOSPC; kill -9 keeps what was
    written, so this is not a power-loss test) is lost and the checker
    sees it (W1), and one it wrote at the wrong place shows up (W3)."""
    disk = run.host["disk"]
    node = disk.node
    cl = run.cluster
    if run.rng.random() < 0.5:
        _make_leader(run, node)
    leader = _fill_as_follower(run, disk)
    if leader == node or leader is None:
        print(f"  disk-full: node {node} still leads or no leader; filled anyway", flush=True)
    used, total = disk.usage()
    print(f"  disk-full: node {node}'s tmpfs {used >> 10}/{total >> 10} KiB", flush=True)
    _hold_full(run, disk, hold_s)
    paused = _pause_others(run, node) if cl.alive(node) else []
    time.sleep(3 if paused else 0)
    _hold_full(run, disk, 0)
    if crash and paused:
        _crash_window(run, disk, paused)
    else:
        _resume(run, paused)
        disk.free()
        run.log("disk-full", "stop", [node])
    _recover(run, node)


def _hold_full(run, disk, seconds):
    """Keeps the balloon topped up for `seconds` (0: once), noting when the
    node dies on the full disk."""
    cl = run.cluster
    node = disk.node
    t_end = time.monotonic() + seconds
    for _ in range(int(seconds / 0.5) + 1):  # bounded; ends by time
        disk.fill()
        if cl.log_from.get(node) not in disk.died_full and not cl.alive(node):
            disk.died_full.add(cl.log_from.get(node))
            print(f"  disk-full: node {node} exited ({cl.exit_code(node)}): "
                  f"{_last_error(cl.process_log(node))}", flush=True)
        if time.monotonic() >= t_end:
            break
        time.sleep(0.5)


def _pause_others(run, node):
    """SIGSTOPs n // 2 followers other than `node`, so that the rest, a bare
    majority, needs `node` for every commit. Returns them."""
    leader = run.cluster.leader(2)
    others = [i for i in run.cluster.ids() if i not in (leader, node)]
    victims = run.rng.sample(others, min(len(run.cluster.ids()) // 2, len(others)))
    run.log("pause-follower", "start", victims)
    for v in victims:
        run.cluster.signal(v, signal.SIGSTOP)
    return victims


def _resume(run, paused):
    if not paused:
        return
    for v in paused:
        run.cluster.signal(v, signal.SIGCONT)
    run.log("pause-follower", "stop", paused)


def _crash_window(run, disk, paused):
    """kill -9 every node not in `paused`, free the disk, restart the full
    node with the paused ones as the majority, then the rest."""
    cl = run.cluster
    node = disk.node
    window = [i for i in cl.ids() if i not in paused]
    run.log("disk-crash", "start", window)
    for i in window:
        cl.kill(i)
    disk.free()
    run.log("disk-full", "stop", [node])
    _resume(run, paused)
    cl.start(node)
    # the full node and the paused ones form the majority now
    leader = cl.leader(10)
    print(f"  disk-full: crashed {window}; leader of the rest: {leader}", flush=True)
    for i in window:
        if i != node:
            cl.start(i)
    run.log("disk-crash", "stop", window)


def _recover(run, node):
    """After the balloon is gone: restart the node if it stopped. A live node
    must catch up by itself within 20 s (normally 1-5 s): if not, that is a
    failure, and it is restarted so that the run can go on."""
    cl = run.cluster
    for attempt in range(2):
        if cl.alive(node):
            if _caught_up(run, node, 20):
                return
            why = (f"node {node} alive but not caught up 20 s after its disk was freed"
                   f"{' (after a restart)' if attempt else ''}; last error line: "
                   f"{_last_error(cl.process_log(node))}")
            print(f"  disk-full: {why}", flush=True)
            run.failures.append(why)
            if attempt:
                return
        run.log("disk-restart", "start", [node])
        cl.kill(node)
        cl.start(node)
        run.log("disk-restart", "stop", [node])


def scenario_disk_full(run, seconds):
    """ENOSPC on one follower: its tmpfs data dir is filled during flips
    for 11-18 s, then freed, alternating plain episodes and crash ones
    (disk_full_episode); repeated."""
    end = time.monotonic() + seconds
    crash = run.rng.random() < 0.5
    for _ in range(1000):  # bounded; each episode takes at least 12 s
        if time.monotonic() >= end:
            break
        time.sleep(run.rng.uniform(2, 4))
        disk_full_episode(run, run.rng.uniform(8, 15), crash)
        crash = not crash


# What a node stopping on a full disk must say. LMDB turns a short write
# (the disk filled up in the middle of a commit) into EIO, so "I/O error"
# counts too, but only for a process that died while the disk was full.
NO_SPACE = "no space left"
SHORT_WRITE = "i/o error"
CRASH_MARKS = ("AddressSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
               "Assertion", "LeakSanitizer")


def excused_exit(run, rec):
    """Whether a node's own exit is the accepted reaction to a full disk: the
    node whose disk was made full, a log saying why (no space left; or an I/O
    error while it was full), and no sanitizer report or failed assertion."""
    disk = run.host.get("disk")
    if disk is None or rec["node"] != disk.node:
        return False
    log = rec.get("log", "")
    if any(m in log for m in CRASH_MARKS):
        return False
    low = log.lower()
    return NO_SPACE in low or (SHORT_WRITE in low and rec.get("log_from") in disk.died_full)
