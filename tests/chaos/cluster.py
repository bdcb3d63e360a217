"""Real flipd processes for the chaos suite.

Addresses come from the network of the run (`net`, see run.py --net):
  proxy (proxy.LinkProxy, also net=None): node i's clients on
    127.0.0.1:(base + i); raft advertised as 127.0.2.i:RAFT_PORT (the link
    proxy) and bound to 127.0.1.i:RAFT_PORT.
  netns (netns.NetnsNet): node i runs in its own network namespace (`ip
    netns exec` execs, so the pid is still flipd's) with clients on
    10.213.7.i:(base + i) and raft on 10.213.7.i:RAFT_PORT.
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
    def __init__(self, build, workdir, n, base_port, raft_port, extra_args=(), net=None):
        self.build = build
        self.net = net
        self.workdir = workdir
        self.n = n
        self.base = base_port
        self.raft_port = raft_port
        self.extra = list(extra_args)
        self.procs = {}
        self.logs = {}
        self.stopped = set()  # SIGSTOPped nodes
        # Per-node hooks for host faults (tests/chaos/hostfaults.py): extra
        # environment (e.g. LD_PRELOAD of libfaketime) and a command prefix
        # (e.g. a wrapper program); read at every start(), so a fault that
        # restarts a node changes them first.
        self.node_env = {}   # id -> {name: value}
        self.node_wrap = {}  # id -> [argv prefix]
        # Processes that ended on their own (not by kill()/stop_all()), also
        # those replaced by a restart since: {"node", "code", "log",
        # "log_from"}: "log" is that process's part of n<i>.log (the run
        # judges why), "log_from" where it begins (names the process).
        self.exits = []
        self.log_from = {}   # id -> offset in n<i>.log where its process began
        # nodes allowed to stay down for the rest of the run (a node that
        # refused to start on purpose, tests/chaos/statefaults.py): not
        # restarted by heal, not waited for, not read at the end
        self.retired = set()

    def client_addr(self, i):
        host = self.net.client_host(i) if self.net else "127.0.0.1"
        return f"{host}:{self.base + i}"

    def raft_addr(self, i):
        if self.net:
            return self.net.raft_addr(i, self.raft_port)
        return f"127.0.2.{i}:{self.raft_port}"

    def endpoints(self, nodes=None):
        return [self.client_addr(i) for i in (nodes or self.ids())]

    def ids(self):
        return list(range(1, self.n + 1))

    def spec(self):
        return ",".join(f"{i}={self.raft_addr(i)}/{self.client_addr(i)}" for i in self.ids())

    def data_dir(self, i):
        return os.path.join(self.workdir, f"n{i}")

    def start(self, i):
        self._reap(i)
        data = self.data_dir(i)
        log = open(os.path.join(self.workdir, f"n{i}.log"), "a")
        log.write(f"=== {time.strftime('%H:%M:%S')} start n{i}\n")
        log.flush()
        self.log_from[i] = log.tell()
        cmd = [os.path.join(self.build, "flipd"), "--id", str(i), "--data", data,
               "--client", self.client_addr(i), "--raft", self.raft_addr(i),
               "--cluster", self.spec()] + self.extra
        bind = self.net.raft_bind(i, self.raft_port) if self.net else \
            f"127.0.1.{i}:{self.raft_port}"
        if bind:
            cmd += ["--raft-bind", bind]
        # the namespace outermost: any wrapper then runs inside it too
        prefix = self.net.node_prefix(i) if self.net else []
        cmd = list(prefix) + list(self.node_wrap.get(i, [])) + cmd
        env = None
        if self.node_env.get(i):
            env = dict(os.environ)
            env.update(self.node_env[i])
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         env=env)
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

    def _reap(self, i):
        """Before node i's process is replaced or killed: records it in
        self.exits if it has already ended by itself (a restart would
        otherwise hide a crash), and closes our handle on its log."""
        p = self.procs.get(i)
        if p is None or p.poll() is None or getattr(p, "reaped", False):
            return
        p.reaped = True
        # 0: a clean stop; SIGKILL: ours (kill(), stop_all())
        if p.returncode not in (0, -signal.SIGKILL):
            self.exits.append({"node": i, "code": p.returncode, "log": self.process_log(i),
                               "log_from": self.log_from.get(i)})
        log = self.logs.pop(i, None)
        if log is not None:
            log.close()

    def process_log(self, i):
        """The log text written by node i's latest process (its last 256 KiB:
        why a process ended is at the end)."""
        path = os.path.join(self.workdir, f"n{i}.log")
        try:
            with open(path, errors="replace") as f:
                f.seek(max(self.log_from.get(i, 0), os.path.getsize(path) - (256 << 10)))
                return f.read()
        except OSError:
            return ""

    def own_exits(self):
        """self.exits plus current processes that have ended by themselves."""
        out = list(self.exits)
        for i, p in self.procs.items():
            code = p.poll()
            if code not in (None, 0, -signal.SIGKILL) and not getattr(p, "reaped", False):
                out.append({"node": i, "code": code, "log": self.process_log(i),
                            "log_from": self.log_from.get(i)})
        return out

    def kill(self, i):
        p = self.procs.get(i)
        if p is None:
            return
        self._reap(i)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        self.stopped.discard(i)

    def stop(self, i, timeout=15):
        """A clean stop (SIGTERM, as a supervisor does); SIGKILL after
        `timeout` s."""
        p = self.procs.get(i)
        if p is None:
            return
        self._reap(i)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
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
            if not self.alive(i) or i in self.stopped or i in self.retired:
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
            if len(sts) == self.n - len(self.retired) and \
                    all(st["applied"] >= index for st in sts.values()):
                return True
            time.sleep(0.1)
        return False
