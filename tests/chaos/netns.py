"""Network-namespace mode of the chaos suite: partitions are real packet
drops in the kernel, not a paused proxy.

Layout of one run. T = "flc<pid of the outer run.py>", so parallel runs
never collide and a dead run's leftovers can be told apart:

  T-sw    the switch: bridge br0, one veth port per host (n1.., drv, c1..)
  T-n<i>  node i: eth0 10.213.7.<i>/24; flipd --client and --raft on it
  T-d     the driver: eth0 10.213.7.100/24, the control address (status
          polls, final reads), plus 10.213.7.<100+h>/24 for each home node h:
          the source address of the writers and readers homed at h.
          run.py re-executes itself in here.
  T-c<h>  the subscriber host of home node h: eth0 10.213.7.<110+h>/24
          (chaos_sub cannot pick a source address, so it gets a host)

The root namespace gets no interface and no address, no namespace has a
default route, and only 10.213.7.0/24 exists in them: nothing leaves.

Client sides. A real partition cuts clients too: an application next to an
isolated node reaches only that node, and those on the majority side cannot
reach it. So every workload client has a home node and shares its network
fate: when the link (src, dst) is cut, neither src nor any client homed at
src reaches dst, and dst's clients hear nothing from src. Writers and
readers on a minority side keep asking the minority (which must acknowledge
nothing), and its subscribers stay there (they must be told it is stale).
The control address is never cut: the harness must see every node, as a
Jepsen control node does. (The proxy mode cannot cut client links; there
every client reaches every node.)

Faults are iptables rules in the receiving namespace's INPUT chain only: a
DROP in OUTPUT fails local sends at once with EPERM instead of losing the
packet. Each namespace's filter table is replaced by one iptables-restore,
which is atomic. Loss is the xtables `statistic` match; delay is
tests/chaos/nfq/nfqdelay behind an NFQUEUE rule (this kernel has no netem).

The outer run.py (run_outer) creates the namespaces, runs the real run in
the driver namespace and always removes every namespace of its tag, and the
processes in them, also on failure, Ctrl-C or SIGTERM. A run killed with
SIGKILL leaves its namespaces; the next run removes those of dead runs.
tests/chaos/netns_check.py (test_netns.sh, in `make test`) checks all of
this with real packets.
"""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import time

SUBNET = "10.213.7"
CONTROL = f"{SUBNET}.100"
PREFIX = "flc"
ENV = "FLIPD_CHAOS_NETNS"  # "TAG:NODES", set for the run inside the driver
MAX_NODES = 9              # home addresses are .101-.109 and .111-.119
QUEUE = 7                  # NFQUEUE number (per namespace)
EMPTY_TABLE = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
STALE_RE = re.compile(rf"^{PREFIX}(\d+)-")
PR_SET_PDEATHSIG = 1


def node_ip(i):
    return f"{SUBNET}.{i}"


def home_ip(h):
    """The driver's source address for the writers and readers homed at h."""
    return f"{SUBNET}.{100 + h}"


def sub_ip(h):
    return f"{SUBNET}.{110 + h}"


def ns_names(tag, nodes):
    return {"sw": f"{tag}-sw", "d": f"{tag}-d",
            "n": {i: f"{tag}-n{i}" for i in range(1, nodes + 1)},
            "c": {h: f"{tag}-c{h}" for h in range(1, nodes + 1)}}


def _run(cmd, stdin=None, timeout=10):
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip() or p.returncode}")
    return p.stdout


def _ip(*args):
    return _run(["ip"] + list(args))


def list_netns():
    try:
        out = _run(["ip", "netns", "list"])
    except (RuntimeError, OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(ns):
    try:
        return [int(p) for p in _run(["ip", "netns", "pids", ns]).split()]
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError):
        return []


def remove_namespaces(names, timeout=10):
    """Kills every process in `names`, then deletes them. A namespace lives
    on while a process is in it, and no process of ours may outlive the run.
    Returns the names still present."""
    deadline = time.monotonic() + timeout
    for _ in range(200):
        pids = [p for ns in names for p in netns_pids(ns)]
        if not pids or time.monotonic() > deadline:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    for ns in names:
        try:
            _ip("netns", "del", ns)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            pass
    present = set(list_netns())
    return [ns for ns in names if ns in present]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep_stale():
    """Removes the namespaces of runs whose outer process is gone (killed
    with SIGKILL, which no handler sees). Returns what it removed."""
    dead = [ns for ns in list_netns()
            if (m := STALE_RE.match(ns)) and not _pid_alive(int(m.group(1)))]
    if dead:
        remove_namespaces(dead)
    return dead


def probe():
    """None if this process can run the netns mode, else why not."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"{tool} not found (deploy/install-deps.sh installs iproute2 and iptables)"
    ns = f"{PREFIX}{os.getpid()}-probe"
    if ns in list_netns():  # left by a dead process that had our pid
        remove_namespaces([ns])
    try:
        _ip("netns", "add", ns)
        _run(["ip", "netns", "exec", ns, "iptables-restore"], stdin=EMPTY_TABLE + "COMMIT\n")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return f"cannot create a namespace with iptables in it: {e}"
    finally:
        remove_namespaces([ns])
    return None


# ---- the outer run: namespaces, the run inside them, teardown ----------------

class Lab:
    """Creates and removes one run's namespaces (see the module docstring)."""

    def __init__(self, tag, nodes):
        self.tag = tag
        self.nodes = nodes
        self.ns = ns_names(tag, nodes)

    def create(self):
        sw = self.ns["sw"]
        _ip("netns", "add", sw)
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "dev", "br0", "up")
        _ip("-n", sw, "link", "set", "dev", "lo", "up")
        self._host(self.ns["d"], "drv", [CONTROL] + [home_ip(h) for h in range(1, self.nodes + 1)])
        for i in range(1, self.nodes + 1):
            self._host(self.ns["n"][i], f"n{i}", [node_ip(i)])
            self._host(self.ns["c"][i], f"c{i}", [sub_ip(i)])

    def _host(self, ns, port, addrs):
        """A namespace with eth0 on the bridge (its switch port is named
        `port`; both ends are made inside their namespaces, so names never
        collide with the host's or another run's)."""
        _ip("netns", "add", ns)
        _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
            "netns", self.ns["sw"])
        _ip("-n", self.ns["sw"], "link", "set", "dev", port, "master", "br0")
        _ip("-n", self.ns["sw"], "link", "set", "dev", port, "up")
        for a in addrs:
            _ip("-n", ns, "addr", "add", f"{a}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "dev", "lo", "up")
        _ip("-n", ns, "link", "set", "dev", "eth0", "up")

    def destroy(self):
        """Removes every namespace of this run's tag (also any a partial
        create() left) and the processes in them; returns what is left."""
        mine = [ns for ns in list_netns() if ns.startswith(self.tag + "-")]
        return remove_namespaces(mine)


def _die_with_parent():
    # runs in the child between fork and exec: if the outer run dies by
    # SIGKILL, the inner one gets SIGTERM and stops its processes
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_outer(script, argv, nodes=MAX_NODES, grace_s=6):
    """Creates the namespaces, runs `script argv` inside the driver namespace
    and returns its exit status; always tears everything down. On SIGINT or
    SIGTERM it passes the signal on, waits `grace_s` for the inner run to stop
    its processes, then kills what is left. SIGINT is not passed on: a
    terminal's Ctrl-C reaches the inner run already (same process group), and
    a second one could cut its cleanup short."""
    tag = f"{PREFIX}{os.getpid()}"
    for ns in sweep_stale():
        print(f"chaos: removed namespace {ns} of a dead run", flush=True)
    lab = Lab(tag, nodes)
    child = None
    got = []

    def on_signal(signum, _frame):
        got.append(signum)
        if signum != signal.SIGINT and child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    rc = 1
    try:
        lab.create()
        env = dict(os.environ)
        env[ENV] = f"{tag}:{nodes}"
        cmd = ["ip", "netns", "exec", lab.ns["d"], sys.executable, script] + list(argv)
        child = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)
        rc = _wait_child(child, got, grace_s)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print(f"chaos: netns setup failed: {e}", flush=True)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait(5)
        left = lab.destroy()
        if left:
            print(f"chaos: could not remove namespaces {left}", flush=True)
            rc = rc or 1
        else:
            print(f"chaos: removed namespaces {tag}-*", flush=True)
        for s, h in old.items():
            signal.signal(s, h)
    if got:
        return 128 + got[0]
    return rc


def _wait_child(child, got, grace_s, max_hours=24):
    """The inner run's exit status; after a signal, at most grace_s more."""
    deadline = None
    for _ in range(int(max_hours * 3600 / 0.2)):
        try:
            return child.wait(0.2)
        except subprocess.TimeoutExpired:
            pass
        if got and deadline is None:
            deadline = time.monotonic() + grace_s
        if deadline is not None and time.monotonic() > deadline:
            child.kill()
            return child.wait(5)
    child.kill()
    return child.wait(5)


# ---- the inner run: addresses and faults, LinkProxy's interface -------------

def inner_lab():
    """(tag, nodes) when this process is the run inside the driver namespace."""
    v = os.environ.get(ENV)
    if not v:
        return None
    tag, nodes = v.rsplit(":", 1)
    return tag, int(nodes)


class NetnsNet:
    """Faults between the nodes of the namespaces inner_lab() names, with
    the interface the scenarios use from proxy.LinkProxy, plus one-way drops
    and link quality."""

    mode = "netns"
    features = ("partition", "one-way", "loss", "delay")

    def __init__(self, nodes, build, logdir=None):
        tag, total = inner_lab()
        self.logdir = logdir  # nfqdelay's reports go there
        self.nodes = list(nodes)
        if max(self.nodes) > total:
            raise RuntimeError(f"{len(self.nodes)} nodes but namespaces for {total}")
        self.ns = ns_names(tag, total)
        self.helper = os.path.join(build, "tests", "chaos", "nfq", "nfqdelay")
        self.blocked = set()
        self.reset = False  # set_blocked(reset=True): raft links reset, clients not cut
        self.quality = {}   # node -> (loss, delay_ms, jitter_ms)
        self.delayers = {}  # node -> (nfqdelay Popen, its (loss, delay, jitter))
        self.applied = {}   # namespace -> rules last loaded
        self.seed = 1

    # ---- addresses (Cluster and the workload ask these) -----------------

    def client_host(self, i):
        return node_ip(i)

    def raft_addr(self, i, port):
        return f"{node_ip(i)}:{port}"

    def raft_bind(self, i, port):
        return None  # each node has its own address: nothing in between

    def node_prefix(self, i):
        return ["ip", "netns", "exec", self.ns["n"][i]]

    def client_source(self, home):
        return home_ip(home)

    def sub_prefix(self, home):
        return ["ip", "netns", "exec", self.ns["c"][home]]

    def cut_off(self, home, node):
        """Whether the faults now keep the clients homed at `home` from
        `node` (either direction is enough: TCP needs both)."""
        return home != node and not self.reset and \
            bool({(home, node), (node, home)} & self.blocked)

    # ---- LinkProxy's interface ---------------------------------------------

    def start(self):
        self.applied = {}
        self._apply()

    def stop(self):
        self.heal()

    def set_blocked(self, pairs, reset=False):
        """Cuts exactly the (src, dst) links in `pairs`: packets from src's
        side to dst's side are dropped (one direction per pair). reset:
        only src's node (its raft connections) is cut, and with a TCP reset
        instead of a drop, so its connections fail at once and reconnect as
        soon as the cut heals, with nothing stale retransmitted."""
        self.blocked = set(pairs)
        self.reset = reset
        self._apply()

    def isolate(self, node):
        others = [n for n in self.nodes if n != node]
        return {(node, o) for o in others} | {(o, node) for o in others}

    def split(self, side_a, side_b):
        return {(a, b) for a in side_a for b in side_b} | {(b, a) for a in side_a for b in side_b}

    # ---- beyond the proxy ----------------------------------------------------

    def one_way(self, dst, srcs):
        """Pairs for set_blocked: dst hears nothing from srcs, they still
        hear dst (only dst's INPUT drops)."""
        return {(s, dst) for s in srcs if s != dst}

    def can_delay(self):
        return os.access(self.helper, os.X_OK)

    def set_quality(self, nodes, loss=0.0, delay_ms=0, jitter_ms=0):
        """Every packet to or from one of `nodes` is lost with probability
        `loss`; every packet such a node sends or receives waits delay_ms +
        U(0, jitter_ms) (a packet between two such nodes waits twice).
        Replaces the previous setting; no nodes clears it."""
        if (delay_ms or jitter_ms) and not self.can_delay():
            raise RuntimeError(f"{self.helper} not built (libnetfilter-queue-dev missing)")
        self.quality = {n: (loss, delay_ms, jitter_ms) for n in nodes}
        self._apply()  # rules first: NFQUEUE rules bypass until a helper binds
        self._delayers()

    def heal(self):
        self.blocked = set()
        self.reset = False
        self.quality = {}
        try:
            self._apply()
        finally:
            self._delayers()  # stopped even if a table could not be loaded

    # ---- rules -------------------------------------------------------------------

    def _rules(self):
        """namespace -> the rule lines of its filter table."""
        out = {ns: [] for ns in self._hosts()}
        drv = self.ns["d"]
        for src, dst in sorted(self.blocked):
            if self.reset:
                out[self.ns["n"][dst]].append(f"-A INPUT -s {node_ip(src)} -p tcp -j REJECT "
                                              "--reject-with tcp-reset")
                continue
            # everything on src's side -> everything on dst's side
            for s in (node_ip(src), home_ip(src), sub_ip(src)):
                out[self.ns["n"][dst]].append(f"-A INPUT -s {s} -j DROP")
            out[self.ns["c"][dst]].append(f"-A INPUT -s {node_ip(src)} -j DROP")
            out[drv].append(f"-A INPUT -s {node_ip(src)} -d {home_ip(dst)} -j DROP")
        lossy = {n: q[0] for n, q in self.quality.items() if q[0] > 0}
        for ns in out:
            me = self._node_of_ns(ns)
            if me in lossy:  # one coin per packet, at the receiver
                out[ns].append(f"-A INPUT -s {SUBNET}.0/24 -m statistic --mode random "
                               f"--probability {lossy[me]:.4f} -j DROP")
                continue
            for n, p in sorted(lossy.items()):
                out[ns].append(f"-A INPUT -s {node_ip(n)} -m statistic --mode random "
                               f"--probability {p:.4f} -j DROP")
        for n, (_, delay, jitter) in self.quality.items():
            if delay or jitter:
                q = f"-j NFQUEUE --queue-num {QUEUE} --queue-bypass"
                out[self.ns["n"][n]] += [f"-A INPUT -s {SUBNET}.0/24 {q}", f"-A OUTPUT -o eth0 {q}"]
        return out

    def _hosts(self):
        return [self.ns["n"][i] for i in self.nodes] + [self.ns["c"][i] for i in self.nodes] + \
            [self.ns["d"]]

    def _node_of_ns(self, ns):
        for i in self.nodes:
            if self.ns["n"][i] == ns:
                return i
        return None

    def _apply(self):
        """Loads every namespace whose rules changed, all at once (each
        table swap is atomic; together they take a few milliseconds)."""
        procs = []
        for ns, rules in self._rules().items():
            text = EMPTY_TABLE + "".join(r + "\n" for r in rules) + "COMMIT\n"
            if self.applied.get(ns) == text:
                continue
            p = subprocess.Popen(["ip", "netns", "exec", ns, "iptables-restore"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            procs.append((ns, text, p))
            p.stdin.write(text)
            p.stdin.close()
        errors = []
        for ns, text, p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            if p.returncode == 0:
                self.applied[ns] = text
            else:
                self.applied.pop(ns, None)
                errors.append(f"{ns}: {p.stderr.read().strip()}")
            p.stderr.close()
        if errors:
            raise RuntimeError("iptables-restore failed: " + "; ".join(errors))

    def _delayers(self):
        """One nfqdelay per node with a delay, with the current setting."""
        want = {n: q for n, q in self.quality.items() if q[1] or q[2]}
        for n in list(self.delayers):
            p, q = self.delayers[n]
            if want.get(n) != q or p.poll() is not None:
                self._stop_delayer(n)
        for n, q in want.items():
            if n in self.delayers:
                continue
            self.seed += 1
            cmd = self.node_prefix(n) + [self.helper, "--queue", str(QUEUE), "--delay", str(q[1]),
                                         "--jitter", str(q[2]), "--seed", str(self.seed)]
            log = subprocess.DEVNULL
            if self.logdir:
                log = open(os.path.join(self.logdir, f"nfqdelay.n{n}.log"), "a")
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if log is not subprocess.DEVNULL:
                log.close()
            self.delayers[n] = (p, q)

    def _stop_delayer(self, n):
        p, _ = self.delayers.pop(n)
        if p.poll() is None:
            p.terminate()  # it accepts every packet it still holds
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
