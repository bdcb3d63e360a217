#!/usr/bin/env python3
"""Helpers of bench/run.sh (python3 standard library only).

  report.py leader flipd|etcd ENDPOINTS < status-json
      Prints the leader's node number (1-based position in ENDPOINTS) when
      every node answered, exactly one leader is agreed on and all applied
      the same index; prints nothing otherwise. Input: `flipctl --json
      status` or `etcdctl endpoint status -w json`.

  report.py dups flipd|etcd HISTORY LAST_REVISION
      Reads a key's history (`flipctl --json watch --from-revision` or
      `etcdctl watch --rev -w json`) written by a kvbench writer, whose
      values are unique flip numbers, and prints {"changes", "duplicates",
      "dup_values", "resync", "complete"} as JSON: a value seen twice is a
      flip applied twice; "complete" says the history reached the writer's
      last acked revision.

  report.py snaplog LOG SKIP_LINES
      Reads a flipd node log past its first SKIP_LINES lines and prints the
      snapshots it wrote off the loop as JSON: {"count", "max_ms",
      "last_ms", "last_bytes", "max_bytes"} (from "fsm: snapshot of index
      ... N bytes, written off the loop in M ms").

  report.py table RESULTS_DIR
      Prints the markdown report from run.sh's results directory. Exit
      status 1 if a figure is missing for a system that was benchmarked.
"""
import base64
import collections
import json
import os
import re
import statistics
import sys


# ---- leader / dups -----------------------------------------------------------

def cmd_leader(system, endpoints):
    eps = endpoints.split(",")
    data = json.load(sys.stdin)
    if system == "flipd":
        nodes = [d for d in data if d.get("reachable")]
        if len(nodes) != len(eps):
            return
        leaders = [d for d in nodes if d.get("role") == "leader"]
        applied = {d.get("applied_revision") for d in nodes}
        if len(leaders) != 1 or len(applied) != 1:
            return
        if len({d.get("leader_id") for d in nodes}) != 1:
            return
        addr = leaders[0].get("client_address")
        if addr in eps:
            print(eps.index(addr) + 1)
        return
    if len(data) != len(eps):
        return
    leaders = {d["Status"].get("leader") for d in data}
    applied = {d["Status"].get("raftAppliedIndex") for d in data}
    if len(leaders) != 1 or len(applied) != 1 or 0 in leaders:
        return
    lead = leaders.pop()
    for d in data:
        if d["Status"]["header"].get("member_id") == lead:
            addr = d["Endpoint"].replace("http://", "")
            if addr in eps:
                print(eps.index(addr) + 1)
            return


def cmd_dups(system, path, last_rev):
    values = []
    resync = False
    top = 0
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if system == "flipd":
                ev = d.get("event")
                if ev == "resync":
                    resync = True
                if ev == "change" and "value" in d:
                    values.append(str(d["value"]))
                    top = max(top, int(d.get("revision") or 0))
            else:
                for e in d.get("Events") or []:
                    kv = e.get("kv") or {}
                    if e.get("type") in (None, "PUT", 0) and "value" in kv:
                        values.append(base64.b64decode(kv["value"]).decode(
                            "utf-8", "replace"))
                        top = max(top, int(kv.get("mod_revision") or 0))
    c = collections.Counter(values)
    dups = sorted(v for v, n in c.items() if n > 1)
    print(json.dumps({"changes": len(values),
                      "duplicates": sum(n - 1 for n in c.values() if n > 1),
                      "dup_values": dups[:20], "resync": resync,
                      "complete": top >= last_rev}))


def cmd_snaplog(path, skip):
    pat = re.compile(r"fsm: snapshot of index \d+ \(raft \d+\), (\d+) "
                     r"bytes, written off the loop in (\d+) ms")
    snaps = []
    with open(path, errors="replace") as f:
        for i, line in enumerate(f):
            if i < skip:
                continue
            m = pat.search(line)
            if m:
                snaps.append((int(m.group(1)), int(m.group(2))))
    out = {"count": len(snaps)}
    if snaps:
        out.update({"max_ms": max(ms for _, ms in snaps),
                    "last_ms": snaps[-1][1], "last_bytes": snaps[-1][0],
                    "max_bytes": max(b for b, _ in snaps)})
    print(json.dumps(out))


# ---- table -------------------------------------------------------------------

def load(res, name):
    try:
        with open(os.path.join(res, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(d, *path):
    for p in path:
        if d is None:
            return None
        if isinstance(d, dict):
            d = d.get(p)
        elif isinstance(d, list) and isinstance(p, int) and p < len(d):
            d = d[p]
        else:
            return None
    return d


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return "{:,}".format(v) + unit
    a = abs(v)
    if a >= 1000:
        s = "{:,.0f}".format(v)
    elif a >= 100:
        s = "{:.0f}".format(v)
    elif a >= 10:
        s = "{:.1f}".format(v)
    elif a >= 1:
        s = "{:.2f}".format(v)
    else:
        s = "{:.3f}".format(v)
    return s + unit


def ratio(f, e, better):
    """flipd/etcd, and which way it goes. better: 'lower' or 'higher'."""
    if not isinstance(f, (int, float)) or not isinstance(e, (int, float)):
        return "-"
    if f <= 0 or e <= 0:
        return "-"
    r = f / e
    if better == "lower":
        good = r < 1
        x = 1 / r if good else r
    else:
        good = r > 1
        x = r if good else 1 / r
    if abs(r - 1) < 0.05:
        return "{:.2f} (even)".format(r)
    return "{:.2f} ({:.1f}x {})".format(r, x, "better" if good else "worse")


class Table:
    def __init__(self, systems):
        self.systems = systems
        self.rows = []
        self.missing = []

    def section(self, title):
        self.rows.append(("**" + title + "**", "", "", "", ""))

    def row(self, name, values, better="lower", floor="", unit="",
            required=True, cells=None):
        """values: {system: number or None}; cells overrides the text."""
        cells = cells or {}
        out = []
        for s in ("flipd", "etcd"):
            if s not in self.systems:
                out.append("not run")
                continue
            v = values.get(s)
            if s in cells:
                out.append(cells[s])
                continue
            if v is None and required:
                self.missing.append("%s: %s" % (s, name))
            out.append(fmt(v, unit))
        r = ratio(values.get("flipd"), values.get("etcd"), better) \
            if better else "-"
        self.rows.append((name, out[0], out[1], r, floor))

    def markdown(self):
        lines = ["| figure | flipd | etcd | flipd/etcd | floor |",
                 "|---|---|---|---|---|"]
        for r in self.rows:
            lines.append("| " + " | ".join(r) + " |")
        return "\n".join(lines)


# The targets of the documented time promises (flipd's defaults).
ELECTION_MS = 500      # flipd --election-ms default (README)
RAFT_POLL_MS = 20      # raft's timer tick (--heartbeat-ms 10) + the node's poll
HEARTBEAT_MS = 1000    # flipd --sub-heartbeat-ms default (protocol.md 15)
SLOW_CLOSE_MS = 6000   # protocol.md 15: let go 5 s after, checked each second
FAILOVER_MS = 200      # README: "within 0.1-0.2 s another node leads"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def verdict(ok):
    return "-" if ok is None else ("met" if ok else "NOT met")


def read_anomalies(res):
    try:
        with open(os.path.join(res, "anomalies.txt")) as fh:
            return [a.strip() for a in fh if a.strip()]
    except OSError:
        return []


# ---- issue 9: large store, subscriber flood ----------------------------------

PUBSUB_MAX_SNAPSHOTS = 512  # server/pubsub.h: snapshots streaming at once
STALL_TARGET_MS = 10        # issue 9: no loop stall over 10 ms


def issue9_table(res, meta, systems):
    """The large-store and flood rows: (markdown lines, missing figures)."""
    sizes = [int(n) for n in meta.get("big_sizes", "").split()]
    value = meta.get("big_value", 1024)
    t = Table(systems)
    na = {"etcd": "n/a"}
    checks = []

    def f(s, name, *path):
        return get(load(res, "%s-%s.json" % (s, name)), *path)

    def mib_cells(name, key="rss_kb", only=None):
        out, tot = {}, {}
        for s in systems:
            kb = f(s, name, key)
            if only and s not in only:
                out[s], tot[s] = "n/a", None
                continue
            if not kb:
                out[s], tot[s] = "-", None
                continue
            out[s] = " / ".join("%.0f" % (k / 1024.0) if k > 0 else "down"
                                for k in kb)
            tot[s] = sum(k for k in kb if k > 0) / 1024.0
        return out, tot

    for i, n in enumerate(sizes):
        tag = "big%d" % n
        with_etcd = i == 0 and "etcd" in systems
        cells = {} if with_etcd else {"etcd": "not run"}
        t.section("Large store: %s flags of %s bytes on a fresh cluster "
                  "(flipd: --max-store-bytes 1 GiB, else defaults; etcd: "
                  "defaults)" % (fmt(n), fmt(value)))

        def row(name, vals, better="lower", floor="", only_flipd=False,
                required=True):
            c = dict(na if only_flipd else cells)
            t.row(name, vals, better if not only_flipd and with_etcd
                  else None, floor, cells=c,
                  required=required)
        row("fill, 32 writers: time (s)",
            {s: f(s, tag + "-fill", "seconds") for s in systems})
        row("  writes/s", {s: f(s, tag + "-fill", "writes_s")
                           for s in systems}, "higher")
        probe = lambda name, *p: f("flipd", tag + "-" + name, "probe", *p)
        if f("flipd", tag + "-fill-snaps", "count"):
            # writes in flight together share a raft entry: a small fill
            # may take no snapshot
            row("  leader's snapshots during the fill: longest, written "
                "off the loop (ms)", {"flipd": f("flipd", tag + "-fill-snaps",
                                                 "max_ms")},
                only_flipd=True, floor="%s snapshots" % fmt(
                    f("flipd", tag + "-fill-snaps", "count")))
        row("  leader probe during the fill: max (ms)",
            {"flipd": probe("fill", "max_ms")}, only_flipd=True,
            floor="loop turns over 10 ms: %s (node's own: %s)" % (
                fmt(probe("fill", "loop_turns_over_10ms")),
                fmt(probe("fill", "loop_stalls_over_10ms"))))
        snap_ms = f("flipd", tag + "-churn-snaps", "last_ms")
        snap_b = f("flipd", tag + "-churn-snaps", "last_bytes")
        row("snapshot of the whole store on the leader (ms)",
            {"flipd": snap_ms, "etcd": f("etcd", tag + "-snapsave", "ms")},
            floor="flipd: raft snapshot written off the loop, %s MiB "
            "(node log); etcd: `etcdctl snapshot save`, %s MiB" % (
                fmt(snap_b / 1048576.0) if snap_b else "-",
                fmt(f("etcd", tag + "-snapsave", "bytes") / 1048576.0)
                if f("etcd", tag + "-snapsave", "bytes") else "-"))
        row("leader loop during those snapshots: probe max (ms)",
            {"flipd": probe("churn", "max_ms")}, only_flipd=True,
            floor="target: no stall over %d ms" % STALL_TARGET_MS)
        row("  loop turns over 10 ms (node's own, no CPU wait)",
            {"flipd": probe("churn", "loop_turns_over_10ms")},
            only_flipd=True, floor="node's own: %s" % fmt(
                probe("churn", "loop_stalls_over_10ms")))
        row("  longest busy turn since start, wall / CPU (ms)",
            {"flipd": probe("churn", "loop_busy_max_ms_since_start")},
            only_flipd=True, floor="CPU %s ms" % fmt(
                probe("churn", "loop_cpu_max_ms_since_start")))
        changes = f("flipd", tag + "-changes", "leader_changes")
        row("leadership changes, fill to catch-up", {"flipd": changes},
            only_flipd=True, floor="target: 0", required=True)
        cu = lambda *p: f("flipd", tag + "-catchup", *p)
        installs = f("flipd", tag + "-installs", "installs")
        if cu("rss_limit_hit"):
            t.row("follower catch-up: restart -> applied the leader's index "
                  "(ms)", {}, None, cells={
                      "etcd": "n/a", "flipd": "not caught up: leader killed "
                      "by the memory guard %s ms after the restart" %
                      fmt(cu("gave_up_ms"))},
                  floor="InstallSnapshots: %s (node log)" % fmt(installs))
        else:
            row("follower catch-up: restart -> applied the leader's index "
                "(ms)", {"flipd": cu("live_ms")}, only_flipd=True,
                floor="InstallSnapshots: %s (node log)" % fmt(installs))
        peak = cu("watch_rss_anon_max_kb")
        row("  leader's anonymous memory meanwhile, largest (RssAnon, MiB)",
            {"flipd": peak / 1024.0 if peak and peak > 0 else None},
            only_flipd=True, floor="guard: the run kills a leader past "
            "it" if cu("rss_limit_hit") else "")
        row("  leader probe meanwhile: max (ms)",
            {"flipd": cu("probe", "max_ms")}, only_flipd=True,
            floor="loop turns over 10 ms: %s (node's own: %s)" % (
                fmt(cu("probe", "loop_turns_over_10ms")),
                fmt(cu("probe", "loop_stalls_over_10ms"))))
        row("cold restart of a follower: start -> live and caught up (ms)",
            {"flipd": f("flipd", tag + "-restart", "live_ms"),
             "etcd": f("etcd", tag + "-restart", "live_ms")},
            floor="etcd: start -> a linearizable range answered there")
        row("  start -> first status / answer (ms)",
            {"flipd": f("flipd", tag + "-restart", "first_answer_ms"),
             "etcd": f("etcd", tag + "-restart", "first_answer_ms")},
            required=False)
        if with_etcd:
            t.row("etcd defrag of the leader (ms)",
                  {"etcd": f("etcd", tag + "-defrag", "ms")}, None,
                  cells={"flipd": "n/a"})
        c, tot = mib_cells(tag + "-rss-fill")
        c.update(cells)
        t.row("RSS per node after the fill (MiB)", tot if with_etcd else
              {"flipd": tot.get("flipd")}, "lower" if with_etcd else None,
              cells=c)
        c, tot = mib_cells(tag + "-rss-catchup", only=("flipd",))
        t.row("RSS per node after the catch-up (MiB)",
              {"flipd": tot.get("flipd")}, None, cells=c)
        c, tot = mib_cells(tag + "-rss-catchup", "anon_kb", only=("flipd",))
        t.row("  of which anonymous memory (RssAnon, MiB)",
              {"flipd": tot.get("flipd")}, None, cells=c)
        c, tot = mib_cells(tag + "-rss-catchup", "hwm_kb", only=("flipd",))
        ce, tote = mib_cells(tag + "-rss-restart", "hwm_kb")
        c["etcd"], tot["etcd"] = ce.get("etcd"), tote.get("etcd")
        c.update(cells)
        t.row("  peak RSS per node (VmHWM; flipd: after the catch-up, etcd: "
              "after the restart; MiB)", tot if with_etcd else
              {"flipd": tot.get("flipd")}, "lower" if with_etcd else None,
              cells=c)
        du = {s: f(s, tag + "-du", "allocated") for s in systems}
        row("leader's data directory (MiB, allocated)",
            {s: du[s] / 1048576.0 if du[s] else None for s in systems})
        stalls = [probe("churn", "loop_stalls_over_10ms"),
                  cu("probe", "loop_stalls_over_10ms")]
        checks.append(("%s flags: no leader loop stall over 10 ms (node's "
                       "own) during the snapshots and the catch-up" % fmt(n),
                       None if None in stalls else sum(stalls) == 0))
        turns = [probe("churn", "loop_turns_over_10ms"),
                 cu("probe", "loop_turns_over_10ms")]
        checks.append(("  nor any turn over 10 ms, CPU wait included",
                       None if None in turns else sum(turns) == 0))
        checks.append(("%s flags: no leadership change" % fmt(n),
                       None if changes is None else changes == 0))
        checks.append(("%s flags: the follower caught up, by InstallSnapshot"
                       % fmt(n), None if installs is None else
                       installs > 0 and cu("live_ms") is not None))

    fn = meta.get("flood_n")
    if fn:
        fl = load(res, "flipd-flood.json")
        t.section("Subscriber flood: %s subscribers connecting at once to "
                  "the leader, each a prefix of 100 flags (snapshots "
                  "streaming at once: at most %d per node, "
                  "server/pubsub.h)" % (fmt(fn), PUBSUB_MAX_SNAPSHOTS))
        attach = get(fl, "attach_s")
        shown = {"etcd": "n/a"}
        if fl is not None and get(fl, "attached") != fn:
            shown["flipd"] = "only %s of %s (%s failed) in %s s" % (
                fmt(get(fl, "attached")), fmt(fn),
                fmt(get(fl, "attach_failed")), fmt(attach))
        t.row("connect -> every subscriber has its snapshot (ms)",
              {"flipd": attach * 1000.0 if attach is not None else None},
              None, cells=shown, required="flipd" not in shown)
        rb = f("flipd", "flood-rss-before", "rss_kb")
        ra = get(fl, "rss_attached", 0, "rss_kb")
        rh = get(fl, "rss_after", 0, "hwm_kb") or \
            get(fl, "rss_attached", 0, "hwm_kb")
        rf = f("flipd", "flood-rss-after", "rss_kb")
        t.row("leader RSS: before / with them attached / after they left "
              "(MiB)", {"flipd": ra / 1024.0 if ra else None}, None,
              cells={"etcd": "n/a", "flipd": " / ".join(
                  fmt(x / 1024.0) if x else "-" for x in (rb, ra, rf))},
              floor="peak (VmHWM) %s MiB" % (fmt(rh / 1024.0) if rh
                                               else "-"))
        t.row("  delivery of a flip to all of them afterwards, p50 (ms)",
              {"flipd": get(fl, "last_after_send_ms", "p50")}, None,
              cells={"etcd": "n/a"}, required=False)
        pr = lambda *p: f("flipd", "flood-probe", "probe", *p)
        t.row("  leader probe during the flood: max (ms)",
              {"flipd": pr("max_ms")}, None, cells={"etcd": "n/a"},
              floor="loop turns over 10 ms: %s (node's own: %s)" % (
                  fmt(pr("loop_turns_over_10ms")),
                  fmt(pr("loop_stalls_over_10ms"))))
        for name, when in (("flood-base", "without the flood"),
                           ("flood-writer", "during the flood")):
            for q in ("p50", "p99", "max"):
                t.row("writer on the leader (a flip every %s ms) %s: %s "
                      "(ms)" % (meta.get("flood_writer_ms", 5), when, q),
                      {"flipd": f("flipd", name, q + "_ms")}, None,
                      cells={"etcd": "n/a"})
        changed = get(fl, "roles_changed")
        t.row("  a node's role changed during the flood (1 = yes)",
              {"flipd": None if changed is None else int(changed)}, None,
              cells={"etcd": "n/a"})
        checks.append(("flood: every subscriber attached",
                       None if fl is None else get(fl, "attached") == fn))
        checks.append(("flood: the leader kept its leadership",
                       None if changed is None else not changed))
    out = [t.markdown(), ""]
    if checks:
        out.append("Targets (issue 9):")
        out.extend("- %s: %s" % (label, verdict(ok)) for label, ok in checks)
        out.append("")
    out.append("Method (issue 9 rows, bench/bigstore.c): the fill is 32 "
               "writers, one write in flight each (flipd: the client "
               "library; etcd: the v3 JSON gateway); the leader is probed "
               "by a status request every 2 ms (its latency bounds a loop "
               "stall, and includes this machine's scheduling) and its "
               "Status loop meter is read. The whole-store snapshot: a "
               "follower stopped, %s small writes (one at a time: one raft "
               "entry each) make the "
               "leader snapshot and drop its log past the follower; the "
               "follower restarted catches up by InstallSnapshot, the "
               "leader's RssAnon watched (past %s MiB the run kills it). "
               "Cold restart, before that: the same follower stopped "
               "(SIGTERM) and started again, caught up at the time."
               % (fmt(meta.get("big_churn", 9000)),
                  fmt(meta.get("big_rss_limit_mb", 6144))))
    return out, t.missing


def cmd_table(res):
    meta = load(res, "meta.json") or {}
    systems = meta.get("systems", "flipd etcd").split()
    sizes = [int(n) for n in meta.get("fan_sizes", "").split()]
    disk = load(res, "disk.json")
    fl = {k: get(disk, "overwrite", k) for k in
          ("p50_ms", "p99_ms", "max_ms")}
    floor_p50 = fl["p50_ms"]
    t = Table(systems)

    def per(name):
        return {s: load(res, "%s-%s.json" % (s, name)) for s in systems}

    def ms(v):
        return fmt(v, " ms") if v is not None else "-"

    # Sequential.
    t.section("Sequential flips, one client, one at a time (ms)")
    for name, label, n in (("seq", "back to back", meta.get("seq_n")),
                           ("idle", "100 ms idle between flips",
                            meta.get("idle_n"))):
        d = per(name)
        for k, pk, fk in (("p50", "p50_ms", "p50_ms"),
                          ("p99", "p99_ms", "p99_ms"),
                          ("max", "max_ms", "max_ms")):
            t.row("%s (n %s), %s" % (label, n, k),
                  {s: get(d[s], pk) for s in systems}, "lower",
                  ms(fl[fk]) + (" fdatasync" if k == "p50" else ""))
    # Throughput.
    t.section("Throughput, flips in flight spread over the 3 nodes "
              "(%s s measured)" % meta.get("load_s"))
    for k in (32, 128):
        d = per("load%d" % k)
        t.row("%d in flight: flips/s" % k,
              {s: get(d[s], "throughput_ops_s") for s in systems}, "higher",
              "%s/s at 1 fdatasync per flip" % fmt(1000.0 / floor_p50)
              if floor_p50 else "")
        t.row("%d in flight: latency p50 (ms)" % k,
              {s: get(d[s], "p50_ms") for s in systems}, "lower", ms(floor_p50))
        t.row("%d in flight: latency p99 (ms)" % k,
              {s: get(d[s], "p99_ms") for s in systems}, "lower",
              ms(fl["p99_ms"]))
    # Fan-out.
    t.section("Fan-out: N subscribers over the 3 nodes, %s flips one at a "
              "time; send -> delivery (kernel receive stamp), ms"
              % meta.get("fan_flips"))
    for n in sizes:
        d = per("fan%d" % n)
        fan_floor = load(res, "floor-fan%d.json" % n)
        cells = {}
        for s in systems:
            if d[s] is not None and d[s].get("attach_complete") is False:
                cells[s] = "only %s of %d attached in %.0f s" % (
                    d[s].get("attached"), n, d[s].get("attach_s", 0))
            elif d[s] is None:
                cells[s] = "failed (no result)"
        for k, path, label in (
                ("p50", ("last_after_send_ms", "p50"), "last subscriber p50"),
                ("p99", ("last_after_send_ms", "p99"), "last subscriber p99"),
                ("max", ("last_after_send_ms", "max"), "last subscriber max"),
                ("sp50", ("sub_after_send_ms", "p50"), "per subscriber p50"),
                ("sp99", ("sub_after_send_ms", "p99"), "per subscriber p99")):
            vals = {}
            shown = {}
            for s in systems:
                if cells.get(s):
                    shown[s] = cells[s] if k == "p50" else "-"
                    vals[s] = None
                else:
                    vals[s] = get(d[s], *path)
            floor_path = ("sub_after_send_ms" if k.startswith("s") else
                          "last_after_send_ms",
                          k[1:] if k.startswith("s") else k)
            t.row("N=%d: %s" % (n, label), vals, "lower",
                  ms(get(fan_floor, *floor_path)), cells=shown,
                  required=not shown)
    # Failover.
    t.section("Failover: a writer flipping every %s ms, 1 s deadline per "
              "flip" % meta.get("writer_interval_ms"))
    kt = int(meta.get("kill_trials", 0))
    tt = int(meta.get("term_trials", 0))
    kill = {s: [load(res, "%s-kill%d.json" % (s, i)) for i in
                range(1, kt + 1)] for s in systems}
    term = {s: [load(res, "%s-term%d.json" % (s, i)) for i in
                range(1, tt + 1)] for s in systems}

    def vals_of(runs, key):
        return [get(r, key) for r in runs if r is not None]

    def dups_of(s, kind, trials):
        tot = 0
        seen = False
        for i in range(1, trials + 1):
            d = load(res, "%s-%s%d.dups.json" % (s, kind, i))
            if d and "duplicates" in d and not d.get("resync") and \
                    d.get("complete"):
                tot += d["duplicates"]
                seen = True
        return tot if seen else None

    rec = {s: vals_of(kill[s], "recovery_ms") for s in systems}
    t.row("kill -9 leader -> next flip acked, median of %d (ms)" % kt,
          {s: median(rec[s]) for s in systems}, "lower")
    t.row("kill -9 leader -> next flip acked, max of %d (ms)" % kt,
          {s: max([x for x in rec[s] if x is not None], default=None)
           for s in systems}, "lower")
    t.row("kill -9: failed flips, all %d trials" % kt,
          {s: sum(vals_of(kill[s], "flips_failed")) if kill[s] and
           all(kill[s]) else None for s in systems}, "lower")
    t.row("SIGTERM leader: failed flips, all %d trials" % tt,
          {s: sum(vals_of(term[s], "flips_failed")) if term[s] and
           all(term[s]) else None for s in systems}, "lower")
    t.row("SIGTERM leader: longest gap between acks, max (ms)",
          {s: max([x for x in vals_of(term[s], "longest_gap_ms")
                   if x is not None], default=None) for s in systems},
          "lower")
    t.row("kill -9: flips applied twice (key history), all %d trials" % kt,
          {s: dups_of(s, "kill", kt) for s in systems}, None)
    t.row("SIGTERM: flips applied twice (key history), all %d trials" % tt,
          {s: dups_of(s, "term", tt) for s in systems}, None)
    # The documents' time promises: flipd alone, each beside its target
    # (bench/promises.py; the nodes run flipd's defaults, election 500 ms).
    promise_cells = {"etcd": "n/a"}
    st = int(meta.get("stale_trials", 0))
    t.section("Documented time promises (flipd, default flags; the target "
              "in the last column)")
    stale = [get(load(res, "flipd-stale%d.json" % i), "stale_ms")
             for i in range(1, st + 1)]
    stale = [x for x in stale if x is not None]
    stale_target = 2 * ELECTION_MS + RAFT_POLL_MS
    t.row("leader lost -> subscriber told stale, median of %d (ms)" % st,
          {"flipd": median(stale)}, None,
          "<= %s: 2 election timeouts + %d ms (protocol.md 15)"
          % (fmt(stale_target), RAFT_POLL_MS), cells=promise_cells)
    t.row("leader lost -> subscriber told stale, max of %d (ms)" % st,
          {"flipd": max(stale, default=None)}, None,
          "<= %s" % fmt(stale_target), cells=promise_cells)
    noleader = [get(load(res, "flipd-stale%d.json" % i), "no_leader_ms")
                for i in range(1, st + 1)]
    noleader = [x for x in noleader if x is not None]
    noleader_target = stale_target
    t.row("  told it has no leader (stale, leader 0), max of %d (ms)" % st,
          {"flipd": max(noleader, default=None)}, None,
          "<= %s: the same (protocol.md 15)"
          % fmt(noleader_target), cells=promise_cells)
    slow = get(load(res, "flipd-slow.json"), "cutoff_to_close_ms")
    t.row("slow consumer not reading: cut off -> connection let go (ms)",
          {"flipd": slow}, None, "<= %s (protocol.md 15)"
          % fmt(SLOW_CLOSE_MS), cells=promise_cells)
    t.row("kill -9 leader -> next flip acked, median (ms; row above)",
          {"flipd": median(rec.get("flipd", []))}, None,
          "<= %s (README: 0.1-0.2 s)" % fmt(FAILOVER_MS), cells=promise_cells)
    fs = get(load(res, "flipd-failstatic.json"), "eval_ms")
    t.row("fail-static: flipctl eval, every node down -> cached value (ms)",
          {"flipd": fs}, None, "at once: no network wait (README)",
          cells=promise_cells)
    promises_met = [
        ("stale notice within 2 election timeouts + %d ms, every trial"
         % RAFT_POLL_MS,
         None if not stale else max(stale) <= stale_target),
        ("  the no-leader heartbeat within the same, every trial",
         None if not noleader else max(noleader) <= noleader_target),
        ("slow consumer let go within %s ms" % fmt(SLOW_CLOSE_MS),
         None if slow is None else slow <= SLOW_CLOSE_MS),
        ("failover (kill -9, median) within %s ms" % fmt(FAILOVER_MS),
         None if not rec.get("flipd") else
         median(rec["flipd"]) <= FAILOVER_MS),
    ]
    # Resources.
    t.section("Resources")
    idle = per("rss-idle")
    big = max(sizes) if sizes else None
    fanbig = per("fan%d" % big) if big else {s: None for s in systems}

    def rss_cells(d, key):
        out = {}
        tot = {}
        for s in systems:
            r = get(d[s], key) if d[s] else None
            if not r:
                out[s], tot[s] = "-", None
                continue
            kb = [x["rss_kb"] if isinstance(x, dict) else x for x in r]
            out[s] = " / ".join("%.1f" % (k / 1024.0) for k in kb)
            tot[s] = sum(kb) / 1024.0 if all(k > 0 for k in kb) else None
        return out, tot

    cells, tot = rss_cells(idle, "rss_kb")
    t.row("RSS per node after the load runs, no subscriber (MiB)", tot,
          "lower", cells=cells)
    cells, tot = rss_cells(fanbig, "rss_attached")
    for s in systems:
        if fanbig.get(s) is not None and \
                fanbig[s].get("attach_complete") is False:
            cells[s] = "(%s attached) %s" % (fanbig[s].get("attached"),
                                             cells[s])
    t.row("RSS per node with %s subscribers attached (MiB)" % big, tot,
          "lower", cells=cells)
    du = per("du")
    t.row("bytes on disk after %s flips, 3 nodes (MiB, allocated)"
          % fmt(meta.get("fill")),
          {s: sum(get(du[s], "allocated")) / 1048576.0
           if get(du[s], "allocated") else None for s in systems}, "lower")
    t.row("  same, apparent size (MiB)",
          {s: sum(get(du[s], "apparent")) / 1048576.0
           if get(du[s], "apparent") else None for s in systems}, "lower")
    fill = per("fill")
    t.row("  time to write them, 128 in flight (s)",
          {s: get(fill[s], "seconds") for s in systems}, "lower")

    # ---- output ----
    out = []
    title = {"full": "", "quick": " (QUICK: reduced sizes)",
             "smoke": " (SMOKE: flipd only, tiny sizes)"}
    out.append("# flipd vs etcd, %s%s" % (meta.get("date", "?"),
                                          title.get(meta.get("mode"), "")))
    out.append("")
    out.append("Machine: %s cores (%s), %s GiB RAM, kernel %s, %s; data "
               "directories on %s (%s), loopback only. Load average %s at "
               "the start, %s at the end; run took %s s. flipd %s (default "
               "flags), etcd %s (Debian etcd-server, default flags)."
               % (meta.get("cores"), meta.get("cpu"), meta.get("ram_gib"),
                  meta.get("kernel"), meta.get("os"), meta.get("fs"),
                  meta.get("fs_dev"), meta.get("load_start"),
                  meta.get("load_end"), meta.get("elapsed_s"),
                  meta.get("flipd_rev"), meta.get("etcd_version")))
    out.append("")
    out.append("Disk floor (%s x 4 KiB write + fdatasync, overwriting a "
               "written file, in the data directory): p50 %s, p99 %s, max "
               "%s; appending instead: p50 %s, p99 %s; O_DIRECT|O_DSYNC "
               "overwrite, as libraft writes its log: p50 %s, p99 %s."
               % (get(disk, "overwrite", "n"), ms(fl["p50_ms"]),
                  ms(fl["p99_ms"]), ms(fl["max_ms"]),
                  ms(get(disk, "append", "p50_ms")),
                  ms(get(disk, "append", "p99_ms")),
                  ms(get(disk, "direct", "p50_ms")) if get(disk, "direct", "n")
                  else "n/a", ms(get(disk, "direct", "p99_ms"))
                  if get(disk, "direct", "n") else "n/a"))
    out.append("")
    out.append("flipd/etcd: below 1 is better for flipd in times, bytes and "
               "failures; above 1 is better for flipd in flips/s. The floor "
               "column: for writes, one 4 KiB write + fdatasync on this "
               "disk, the bound a durable flip cannot beat; for fan-out, "
               "bench/fanout_floor: the same N subscriber connections fed "
               "one small frame each by 3 processes that do nothing else "
               "(no raft, no store, no encoding), the bound any server "
               "with one TCP connection per subscriber meets on this "
               "machine.")
    out.append("")
    out.append(t.markdown())
    out.append("")
    out.append("Per trial, kill -9 -> next ack (ms): " + "; ".join(
        "%s %s" % (s, ", ".join(fmt(x) for x in rec[s]) or "-")
        for s in systems) + ". SIGTERM recovery (ms): " + "; ".join(
        "%s %s" % (s, ", ".join(fmt(x) for x in
                                vals_of(term[s], "recovery_ms")) or "-")
        for s in systems) + ".")
    out.append("")
    # flipd fan-out by node: the leader's subscribers vs the followers'.
    lines = []
    for n in sizes:
        d = load(res, "flipd-fan%d.json" % n)
        eps = get(d, "endpoints") or []
        cells = ["%s %s %s / %s" % (e.get("addr", "?").split(":")[-1],
                                    e.get("role", "?"),
                                    fmt(get(e, "last_after_ack_ms", "p50")),
                                    fmt(get(e, "last_after_ack_ms", "max")))
                 for e in eps]
        if cells:
            lines.append("N=%d: %s" % (n, "; ".join(cells)))
    if lines:
        out.append("flipd fan-out by node, last subscriber after the ack, "
                   "p50 / max ms (port, role): " + ". ".join(lines) + ".")
        out.append("")
    # Targets of issue 5, where both figures exist.
    f = lambda s, name, *p: get(load(res, "%s-%s.json" % (s, name)), *p)
    if "etcd" in systems:
        checks = []

        def check(label, ok):
            checks.append("- %s: %s" % (label, "-" if ok is None else
                                         ("met" if ok else "NOT met")))
        a, b = f("flipd", "seq", "p50_ms"), f("etcd", "seq", "p50_ms")
        check("sequential p50 <= half of etcd's",
              None if a is None or b is None else a <= b / 2)
        a, b = (f("flipd", "load128", "throughput_ops_s"),
                f("etcd", "load128", "throughput_ops_s"))
        check("throughput at 128 in flight >= 5x etcd's",
              None if a is None or b is None else a >= 5 * b)
        if 1000 in sizes:
            a = f("flipd", "fan1000", "last_after_send_ms", "p99")
            b = f("etcd", "fan1000", "last_after_send_ms", "p99")
            check("fan-out p99 to 1000 subscribers <= 1/5 of etcd's",
                  None if a is None or b is None else a <= b / 5)
        if 10000 in sizes:
            a = f("flipd", "fan10000", "last_after_send_ms", "p99")
            fp = get(load(res, "floor-fan10000.json"), "last_after_send_ms",
                     "p99")
            check("fan-out p99 to 10000 subscribers < 20 ms" +
                  ("" if fp is None else
                   " (this machine's loopback floor: %s)" % ms(fp)),
                  None if a is None else a < 20)
        a, b = median(rec.get("flipd", [])), median(rec.get("etcd", []))
        check("failover (kill -9, median) <= half of etcd's",
              None if a is None or b is None else a <= b / 2)
        check("failover (kill -9, median) <= 500 ms and <= 0.25x etcd's "
              "(issue 9)",
              None if a is None or b is None else a <= 500 and a <= b / 4)
        a = sum(vals_of(term["flipd"], "flips_failed")) \
            if term["flipd"] and all(term["flipd"]) else None
        check("planned leader stop with zero failed flips",
              None if a is None else a == 0)
        a = (lambda k, t: None if k is None and t is None else
             (k or 0) + (t or 0))(dups_of("flipd", "kill", kt),
                                  dups_of("flipd", "term", tt))
        check("(and no flip applied twice in the failover trials)",
              None if a is None else a == 0)
        out.append("Targets (issue 5):")
        out.extend(checks)
        out.append("")
    out.append("Documented time promises (tests assert order and content, "
               "never a time; these rows are where time is held to the "
               "documents):")
    out.extend("- %s: %s" % (label, "-" if ok is None else
                             ("met" if ok else "NOT met"))
               for label, ok in promises_met)
    out.append("")
    out.append("Method: one C client model for both (bench/kvbench.c: flipd "
               "raw protocol, etcd v3 JSON gateway over keep-alive HTTP/1.1; "
               "fan-out: bench/fanout.c). Sequential "
               "flips go to the leader (flipd's client is redirected there; "
               "etcd's is given it). In flight K = K connections, one flip "
               "each, round-robin over the three nodes; flipd's followers "
               "redirect (NOT_LEADER), etcd's forward. Fan-out: one "
               "connection per subscriber (etcd: one HTTP watch each), the "
               "writer on the leader, %s ms + 0..%s ms between flips. "
               "Failover writer: one flip in flight, a 1 s deadline per "
               "flip, retries only where the system guarantees nothing was "
               "applied (see bench/README.md)." % (20, 50))
    big_lines, big_missing = issue9_table(res, meta, systems)
    out.append("")
    out.append("Large store and subscriber flood (issue 9):")
    out.append("")
    out.extend(big_lines)
    anomalies = read_anomalies(res)
    missing = t.missing + big_missing
    if missing:
        anomalies.extend("missing figure: " + m for m in missing)
    out.append("")
    if anomalies:
        out.append("Anomalies:")
        out.extend("- " + a for a in anomalies)
    else:
        out.append("Anomalies: none.")
    print("\n".join(out))
    return 1 if missing else 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "leader":
        cmd_leader(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "dups":
        cmd_dups(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "snaplog":
        cmd_snaplog(sys.argv[2], int(sys.argv[3]))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "table":
        return cmd_table(sys.argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
