#!/usr/bin/env python3
"""The time promises of the documents, measured (bench/run.sh, flipd only).

Tests assert order and content, never a time; what the documents promise
about time is measured here, and the report puts each figure beside its
documented target.

  promises.py stale WATCHED_ADDR LEADER_PID OTHER_PID
      Subscribes to WATCHED_ADDR, waits for its first heartbeat (live),
      then kill -9 LEADER_PID and OTHER_PID (the watched node is left
      alone, without a quorum) and times the first heartbeat with
      stale = true, and the first that names no leader. Prints
      {"stale_ms", "catching_up", "no_leader_ms", "leaderless_ms"}.
      protocol.md section 15: within two election timeouts plus about
      110 ms after the leader's last message.
  promises.py slow LEADER_ADDR LEADER_LOG
      A subscriber with a tiny receive buffer stops reading; a writer
      pushes 60 KiB flips to the leader until the node logs that it cut
      the subscriber off; then `ss` is polled until the node's side of the
      connection leaves ESTABLISHED (the node let it go). Prints
      {"cutoff_to_close_ms", "pushed_mib", "flips"}. protocol.md section
      15: the node lets the connection go 5 s after the cut-off, checked
      once a second (so within 6 s).
  promises.py failstatic FLIPCTL ENDPOINTS CACHE KEY
      With every node down: `flipctl eval KEY --cache CACHE --wait-ms 0`,
      timed from process start to exit; must answer from the cache.
      Prints {"eval_ms", "reason"}. README: a service started while the
      cluster is down serves its last-known-good values, never hangs.

Every wait is bounded; exit status 1 when the event did not come.
"""
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import rawclient as rc  # noqa: E402  (the tests' hand-written protocol)


def subscribe(addr, rcvbuf=None):
    host, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((host, int(port)))
    c = rc.Conn.__new__(rc.Conn)
    c.s, c.buf = s, b""
    c.send(rc.hello())
    if rc.status_of(c.recv_frame()) != "OK":
        raise SystemExit("promises: hello refused")
    c.send(rc.sub_request(2, [b"bench.promise."]))
    if rc.status_of(c.recv_frame()) != "OK":
        raise SystemExit("promises: subscribe refused")
    return c


def next_heartbeat(c, deadline):
    """The next heartbeat as a dict, skipping other events."""
    while time.monotonic() < deadline:
        n, resp = c.recv_sized(timeout=max(0.1, deadline - time.monotonic()))
        if resp is None:
            raise SystemExit("promises: the node closed the subscription")
        if 17 not in resp:
            continue
        ev = rc.parse(resp[17][0])
        if ev.get(1, [0])[0] == 5 and 6 in ev:
            hb = rc.parse(ev[6][0])
            return {"leader": hb.get(3, [0])[0],
                    "leaderless_ms": hb.get(5, [0])[0],
                    "stale": bool(hb.get(6, [0])[0]),
                    "catching_up": bool(hb.get(11, [0])[0])}
    raise SystemExit("promises: no heartbeat before the deadline")


def cmd_stale(addr, leader_pid, other_pid):
    c = subscribe(addr)
    deadline = time.monotonic() + 30
    while next_heartbeat(c, deadline)["stale"]:
        pass  # wait until the node says it is live
    t0 = time.monotonic()
    os.kill(leader_pid, signal.SIGKILL)
    os.kill(other_pid, signal.SIGKILL)
    out = {}
    while "no_leader_ms" not in out:
        hb = next_heartbeat(c, t0 + 30)
        ms = round((time.monotonic() - t0) * 1000, 1)
        if hb["stale"] and "stale_ms" not in out:
            # the first notice: catching up (the leader it names has been
            # silent for an election timeout) or no leader at all
            out.update(stale_ms=ms, catching_up=hb["catching_up"])
        if hb["stale"] and hb["leader"] == 0:
            # raft gave the leader up: the promise of protocol.md 15
            out.update(no_leader_ms=ms, leaderless_ms=hb["leaderless_ms"])
    print(json.dumps(out))


def log_cutoff_time(path):
    """The node's time (epoch s) of its first slow-consumer cut-off line."""
    try:
        for line in open(path, errors="replace"):
            if "slow subscriber cut off" in line or "SLOW_CONSUMER" in line:
                stamp = line.split()[0]
                t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
                return t.replace(tzinfo=datetime.timezone.utc).timestamp()
    except OSError:
        pass
    return None


def server_side_state(server_port, client_port):
    out = subprocess.run(
        ["ss", "-Htan", "src", f"127.0.0.1:{server_port}", "dst", f"127.0.0.1:{client_port}"],
        capture_output=True, text=True, timeout=5).stdout.split()
    return out[0] if out else "GONE"


def cmd_slow(addr, log):
    sub = subscribe(addr, rcvbuf=4096)
    client_port = sub.s.getsockname()[1]
    server_port = int(addr.rsplit(":", 1)[1])
    w = rc.Conn(addr)
    w.send(rc.hello())
    if rc.status_of(w.recv_frame()) != "OK":
        raise SystemExit("promises: writer hello refused")
    big = b"x" * (60 * 1024)
    flips = 0
    cut = None
    deadline = time.monotonic() + 120
    while cut is None and time.monotonic() < deadline:
        batch = b""
        for i in range(16):
            flips += 1
            value = rc.field_bytes(4, b"%d" % flips + big)
            body = rc.field_bytes(1, b"bench.promise.k%d" % (flips % 8)) + rc.field_bytes(2, value)
            batch += rc.frame(rc.field_varint(1, 100 + flips) + rc.field_bytes(11, body))
        w.send(batch)
        for i in range(16):
            if rc.status_of(w.recv_frame()) != "OK":
                raise SystemExit("promises: a flip failed")
        cut = log_cutoff_time(log)
    if cut is None:
        raise SystemExit("promises: the stalled subscriber was never cut off")
    while time.monotonic() < deadline:
        if server_side_state(server_port, client_port) != "ESTAB":
            break
        time.sleep(0.01)
    else:
        raise SystemExit("promises: the node never let the connection go")
    ms = (time.time() - cut) * 1000
    print(json.dumps({"cutoff_to_close_ms": round(ms, 1),
                      "pushed_mib": round(flips * len(big) / 1048576, 1), "flips": flips}))


def cmd_failstatic(flipctl, endpoints, cache, key):
    t0 = time.monotonic()
    p = subprocess.run([flipctl, "--endpoints", endpoints, "--json", "eval", key,
                        "--default", "true", "--type", "bool", "--cache", cache,
                        "--wait-ms", "0"], capture_output=True, text=True, timeout=60)
    ms = (time.monotonic() - t0) * 1000
    try:
        reason = json.loads(p.stdout).get("reason")
    except ValueError:
        reason = None
    if p.returncode != 0 or reason != "cached":
        raise SystemExit(f"promises: eval exit {p.returncode}, reason {reason}: {p.stderr.strip()}")
    print(json.dumps({"eval_ms": round(ms, 1), "reason": reason}))


def main():
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "stale":
        cmd_stale(a[1], int(a[2]), int(a[3]))
    elif len(a) == 3 and a[0] == "slow":
        cmd_slow(a[1], a[2])
    elif len(a) == 5 and a[0] == "failstatic":
        cmd_failstatic(a[1], a[2], a[3], a[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
