"""Real flipd processes for the chaos suite, on loopback only.

Node i: clients on 127.0.0.1:(base + i); raft advertised as
127.0.2.i:RAFT_PORT (the link proxy) and bound to 127.0.1.i:RAFT_PORT.
Every process this module starts is tracked and killed by stop_all().
"""
import os
import signal
import socket
import subprocess
import time

from client import Client


def port_free(host, port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Cluster:
    def __init__(self, build, workdir, n, base_port, raft_port, extra_args=()):
        self.build = build
        self.workdir = workdir
        self.n = n
        self.base = base_port
        self.raft_port = raft_port
        self.extra = list(extra_args)
        self.procs = {}
        self.logs = {}
        self.stopped = set()  # SIGSTOPped nodes

    def client_addr(self, i):
        return f"127.0.0.1:{self.base + i}"

    def endpoints(self, nodes=None):
        return [self.client_addr(i) for i in (nodes or self.ids())]

    def ids(self):
        return list(range(1, self.n + 1))

    def spec(self):
        return ",".join(f"{i}=127.0.2.{i}:{self.raft_port}/{self.client_addr(i)}" for i in self.ids())

    def start(self, i):
        data = os.path.join(self.workdir, f"n{i}")
        log = open(os.path.join(self.workdir, f"n{i}.log"), "a")
        log.write(f"=== {time.strftime('%H:%M:%S')} start n{i}\n")
        log.flush()
        cmd = [os.path.join(self.build, "flipd"), "--id", str(i), "--data", data,
               "--client", self.client_addr(i), "--raft", f"127.0.2.{i}:{self.raft_port}",
               "--raft-bind", f"127.0.1.{i}:{self.raft_port}", "--cluster", self.spec()] + self.extra
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.logs[i] = log
        self.stopped.discard(i)

    def start_all(self):
        for i in self.ids():
            self.start(i)

    def alive(self, i):
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def signal(self, i, sig):
        p = self.procs.get(i)
        if p is None or p.poll() is not None:
            return False
        p.send_signal(sig)
        if sig == signal.SIGSTOP:
            self.stopped.add(i)
        elif sig == signal.SIGCONT:
            self.stopped.discard(i)
        return True

    def kill(self, i):
        p = self.procs.get(i)
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        self.stopped.discard(i)

    def exit_code(self, i):
        p = self.procs.get(i)
        return None if p is None else p.poll()

    def stop_all(self):
        for i, p in self.procs.items():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)
                    p.wait(10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        for log in self.logs.values():
            log.close()

    def statuses(self, timeout=0.5):
        out = {}
        for i in self.ids():
            if not self.alive(i) or i in self.stopped:
                continue
            c = Client([self.client_addr(i)], "chaos-status", op_timeout=timeout)
            try:
                st = c.status()
            finally:
                c.close()
            if st is not None:
                out[i] = st
        return out

    def leader(self, timeout=20):
        """The id of the one node that says it leads and that every other
        answering node names, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sts = self.statuses()
            leaders = [i for i, st in sts.items() if st["role"] == "leader"]
            if len(leaders) == 1 and all(st["leader"] in (0, leaders[0]) for st in sts.values()):
                return leaders[0]
            time.sleep(0.05)
        return None

    def wait_applied(self, index, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sts = self.statuses()
            if len(sts) == self.n and all(st["applied"] >= index for st in sts.values()):
                return True
            time.sleep(0.1)
        return False
