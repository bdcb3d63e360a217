#!/usr/bin/env python3
"""Self-test of the chaos suite's netns mode (tests/chaos/netns.py), run by
test_netns.sh: the faults do what they claim, measured with real packets,
and nothing is left behind, also when the outer run gets SIGTERM.

  netns_check.py BUILD_DIR    exit 0 ok, 1 failed, 77 skipped (not root,
                              no `ip netns`, no iptables)

Takes a few seconds; every wait is bounded.
"""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import netns  # noqa: E402

# Counts the UDP datagrams that reach ADDR:5001 within SECONDS, then prints it.
SINK = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5001))
print("ready", flush=True)
n, end = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        s.recv(64)
        n += 1
    except OSError:
        pass
print(n, flush=True)
"""
# Sends COUNT datagrams to ADDR:5001 from SOURCE (or any address).
SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if sys.argv[3] != "-":
    s.bind((sys.argv[3], 0))
for _ in range(int(sys.argv[2])):
    s.sendto(b"x", (sys.argv[1], 5001))
    time.sleep(0.001)
"""
# Accepts TCP connections on ADDR:5002.
ECHO = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5002))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""
# Round-trip time of TCP connects to ADDR:5002 from SOURCE (median of up to
# 3, ms; -1: the first one timed out).
CONNECT = """
import socket, sys, time
rtts = []
for _ in range(3):
    s = socket.socket()
    s.settimeout(0.4)
    if sys.argv[2] != "-":
        s.bind((sys.argv[2], 0))
    t = time.monotonic()
    try:
        s.connect((sys.argv[1], 5002))
        rtts.append((time.monotonic() - t) * 1000)
    except OSError:
        break  # cut: once is enough
    finally:
        s.close()
rtts.sort()
print(rtts[len(rtts) // 2] if rtts else -1)
"""


class Check:
    def __init__(self, build):
        self.tag = f"{netns.PREFIX}{os.getpid()}"
        self.lab = netns.Lab(self.tag, 2)
        self.build = build
        self.failures = 0
        self.procs = []

    def ok(self, what, cond, detail=""):
        print(f"  {'ok  ' if cond else 'FAIL'} {what} {detail}", flush=True)
        if not cond:
            self.failures += 1

    def in_ns(self, ns, code, *args, timeout=20):
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code] +
                              [str(a) for a in args], capture_output=True, text=True,
                              timeout=timeout).stdout.strip()

    def daemon(self, ns, code, *args):
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code] +
                             [str(a) for a in args], stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        p.stdout.readline()  # "ready"
        return p

    def udp(self, src_ns, dst, count=200, source="-"):
        """How many of `count` datagrams from src_ns reach dst."""
        dst_ns = self.lab.ns["n"][int(dst.rsplit(".", 1)[1])]
        sink = self.daemon(dst_ns, SINK, dst, 0.8)
        self.in_ns(src_ns, SEND, dst, count, source)
        out = sink.stdout.readline().strip()
        sink.wait(5)
        return int(out or -1)

    def rtt(self, src_ns, dst, source="-"):
        return float(self.in_ns(src_ns, CONNECT, dst, source) or -1)

    def faults(self):
        ns = self.lab.ns
        n1, n2, drv = ns["n"][1], ns["n"][2], ns["d"]
        ip1, ip2 = netns.node_ip(1), netns.node_ip(2)
        os.environ[netns.ENV] = f"{self.tag}:2"
        net = netns.NetnsNet([1, 2], self.build)
        net.start()
        for i in (1, 2):
            self.daemon(ns["n"][i], ECHO, netns.node_ip(i))
        self.ok("n1 -> n2", self.rtt(n1, ip2) >= 0)
        self.ok("driver -> n2", self.rtt(drv, ip2) >= 0)
        self.ok("subscriber host 1 -> n2", self.rtt(ns["c"][1], ip2) >= 0)

        net.set_blocked(net.isolate(2))
        self.ok("isolate(2): n1 -> n2 cut", self.rtt(n1, ip2) < 0)
        self.ok("isolate(2): control -> n2 open", self.rtt(drv, ip2) >= 0)
        self.ok("isolate(2): clients homed at 1 -> n2 cut",
                self.rtt(drv, ip2, netns.home_ip(1)) < 0 and self.rtt(ns["c"][1], ip2) < 0)
        self.ok("isolate(2): clients homed at 2 -> n2 open",
                self.rtt(drv, ip2, netns.home_ip(2)) >= 0 and self.rtt(ns["c"][2], ip2) >= 0)
        self.ok("isolate(2): clients homed at 2 -> n1 cut",
                self.rtt(drv, ip1, netns.home_ip(2)) < 0)

        net.set_blocked(net.one_way(2, [1]))
        self.ok("one_way(2, [1]): n1 -> n2 dropped", self.udp(n1, ip2) == 0)
        got = self.udp(n2, ip1)
        self.ok("one_way(2, [1]): n2 -> n1 delivered", got == 200, f"({got}/200)")

        net.heal()
        net.set_quality([2], loss=0.5)
        got = self.udp(n1, ip2)
        self.ok("loss 0.5 on n2: about half of n1 -> n2 lost", 50 <= got <= 150, f"({got}/200)")
        net.heal()
        got = self.udp(n1, ip2)
        self.ok("healed: n1 -> n2 all delivered", got == 200, f"({got}/200)")

        if net.can_delay():
            net.set_quality([2], delay_ms=40, jitter_ms=10)
            time.sleep(0.2)
            r = self.rtt(n1, ip2)
            self.ok("delay 40+U(0,10) ms on n2: connect RTT >= 80 ms", r >= 80, f"({r:.1f} ms)")
            net.heal()
            r = self.rtt(n1, ip2)
            self.ok("healed: connect RTT < 20 ms", 0 <= r < 20, f"({r:.1f} ms)")
        else:
            print("  skip delay: tests/chaos/nfq/nfqdelay not built", flush=True)
        net.stop()
        del os.environ[netns.ENV]

    def run(self):
        try:
            self.lab.create()
            self.faults()
        finally:
            for p in self.procs:
                p.kill()
                p.wait(5)
            left = self.lab.destroy()
        self.ok("teardown: no namespace left", not left and not self.mine(self.tag), str(left))
        self.outer_sigterm()
        return self.failures

    def mine(self, tag):
        return [ns for ns in netns.list_netns() if ns.startswith(tag + "-")]

    def outer_sigterm(self):
        """run_outer under SIGTERM: the inner process and its children die,
        every namespace goes, within the grace period."""
        sleeper = os.path.join(HERE, "netns_check.py")
        p = subprocess.Popen([sys.executable, "-c",
                              "import sys; sys.path.insert(0, sys.argv[1]); import netns; "
                              "sys.exit(netns.run_outer(sys.argv[2], ['--sleep'], 2, grace_s=2))",
                              HERE, sleeper], stdout=subprocess.PIPE, text=True)
        tag = f"{netns.PREFIX}{p.pid}"
        for _ in range(100):  # up once the inner run and its child are in place
            if netns.netns_pids(f"{tag}-d") and netns.netns_pids(f"{tag}-n1"):
                break
            time.sleep(0.05)
        self.ok("run_outer: inner run started in the driver namespace, its child in n1",
                bool(netns.netns_pids(f"{tag}-d") and netns.netns_pids(f"{tag}-n1")))
        pids = netns.netns_pids(f"{tag}-d") + netns.netns_pids(f"{tag}-n1")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        took = time.monotonic() - t0
        self.ok("run_outer: SIGTERM stops it within 8 s", took < 8, f"({took:.1f} s)")
        self.ok("run_outer: no namespace left after SIGTERM", not self.mine(tag))
        alive = pids
        for _ in range(40):  # SIGKILL and reaping by init take a moment
            alive = [pid for pid in alive if running(pid)]
            if not alive:
                break
            time.sleep(0.05)
        self.ok("run_outer: no process left (the inner run's child included)",
                len(pids) >= 2 and not alive, f"(of {pids}: {alive})")


def running(pid):
    """Neither gone nor a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sleep_inside():
    """The stand-in for an inner run: a child in a node namespace, then
    waits to be stopped."""
    tag, _ = netns.inner_lab()
    child = subprocess.Popen(["ip", "netns", "exec", f"{tag}-n1", "sleep", "60"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leaves the child behind on purpose
    child.wait(60)


def main():
    if sys.argv[1:] == ["--sleep"]:
        sleep_inside()
        return 0
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    why = netns.probe()
    if why is not None:
        print(f"netns_check: skipped: {why}")
        return 77
    build = os.path.abspath(sys.argv[1])
    failures = Check(build).run()
    print(f"netns_check: {'ok' if failures == 0 else f'{failures} failed'}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
