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

  report.py table RESULTS_DIR
      Prints the markdown report from run.sh's results directory. Exit
      status 1 if a figure is missing for a system that was benchmarked.
"""
import base64
import collections
import json
import os
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
    # etcd over native gRPC: the same rows for a and b, as a reference.
    g = {k: load(res, "etcd-grpc-%s.json" % k)
         for k in ("seq", "idle", "load32", "load128")}
    if "etcd" in systems and g["seq"] is not None and \
            not g["seq"].get("unavailable"):
        gt = Table(["flipd", "etcd"])
        fsys = {k: load(res, "flipd-%s.json" % k)
                for k in ("seq", "idle", "load32", "load128")}
        for name, label in (("seq", "sequential, back to back"),
                            ("idle", "sequential, 100 ms idle")):
            if g[name] is None:
                continue
            for k in ("p50", "p99", "max"):
                gt.row("%s, %s (ms)" % (label, k),
                       {"flipd": get(fsys[name], k + "_ms"),
                        "etcd": get(g[name], k + "_ms")}, "lower",
                       required=False)
        for k in (32, 128):
            n = "load%d" % k
            gt.row("%d in flight: flips/s" % k,
                   {"flipd": get(fsys[n], "throughput_ops_s"),
                    "etcd": get(g[n], "throughput_ops_s")}, "higher",
                   required=False)
            for q in ("p50", "p99"):
                gt.row("%d in flight: latency %s (ms)" % (k, q),
                       {"flipd": get(fsys[n], q + "_ms"),
                        "etcd": get(g[n], q + "_ms")}, "lower",
                       required=False)
        out.append("etcd over its native gRPC API instead of the JSON gateway "
                   "(reference, bench/etcd_grpc.c through gRPC core's C API: "
                   "one HTTP/2 connection per node with the calls "
                   "multiplexed, as etcd's own clientv3 does; flipd column "
                   "repeated from above):")
        out.append("")
        out.append(gt.markdown().replace("| etcd |", "| etcd gRPC |", 1)
                   .replace("| flipd/etcd |", "| flipd/etcd gRPC |", 1))
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
        b = f("etcd", "grpc-seq", "p50_ms")
        if b is not None:
            check("  same against etcd over native gRPC",
                  None if a is None else a <= b / 2)
        a, b = (f("flipd", "load128", "throughput_ops_s"),
                f("etcd", "load128", "throughput_ops_s"))
        check("throughput at 128 in flight >= 5x etcd's",
              None if a is None or b is None else a >= 5 * b)
        b = f("etcd", "grpc-load128", "throughput_ops_s")
        if b is not None:
            check("  same against etcd over native gRPC",
                  None if a is None else a >= 5 * b)
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
               "fan-out: bench/fanout.c and bench/etcd_fanout.c). Sequential "
               "flips go to the leader (flipd's client is redirected there; "
               "etcd's is given it). In flight K = K connections, one flip "
               "each, round-robin over the three nodes; flipd's followers "
               "redirect (NOT_LEADER), etcd's forward. Fan-out: one "
               "connection per subscriber (etcd: one HTTP watch each), the "
               "writer on the leader, %s ms + 0..%s ms between flips. "
               "Failover writer: one flip in flight, a 1 s deadline per "
               "flip, retries only where the system guarantees nothing was "
               "applied (see bench/README.md)." % (20, 50))
    anomalies = []
    try:
        with open(os.path.join(res, "anomalies.txt")) as fh:
            anomalies = [a.strip() for a in fh if a.strip()]
    except OSError:
        pass
    if t.missing:
        anomalies.extend("missing figure: " + m for m in t.missing)
    out.append("")
    if anomalies:
        out.append("Anomalies:")
        out.extend("- " + a for a in anomalies)
    else:
        out.append("Anomalies: none.")
    print("\n".join(out))
    return 1 if t.missing else 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "leader":
        cmd_leader(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "dups":
        cmd_dups(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "table":
        return cmd_table(sys.argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
