#!/usr/bin/env python3
"""Checks subscriber event logs (rawclient.py subscribe output, one JSON
object per line) against the writes a test acknowledged.

usage: subcheck.py ACKED_FILE SUB_FILE [SUB_FILE...] [--prefix P] [--allow-resync]

ACKED_FILE has lines "REVISION KEY VALUE" for acknowledged writes. For each
subscriber log it verifies: revisions strictly increasing; no duplicate
event; every acked write under the prefix whose revision is after the
subscriber's starting point arrives (no silent gap; a resync snapshot is
accepted only with --allow-resync and must then hold the committed state);
and the subscriber's final view of every key equals the last acked value.
Prints one line per subscriber and exits 1 on the first violation."""
import json
import sys


def load_acked(path, prefix):
    acked = []
    for line in open(path):
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        rev, key, val = int(parts[0]), parts[1], parts[2].rstrip("\n")
        if key.startswith(prefix):
            acked.append((rev, key, val))
    acked.sort()
    return acked


def check(acked, path, allow_resync):
    view = {}
    start = None
    last = 0
    seen = set()
    resyncs = 0
    in_snapshot = False
    for line in open(path):
        ev = json.loads(line)
        t = ev["type"]
        if t == "begin":
            in_snapshot = True
            if ev.get("resync"):
                resyncs += 1
                if not allow_resync:
                    return f"unexpected resync at {ev['revision']}"
            view = {}
        elif t == "item":
            f = ev["flags"][0]
            view[f["key"]] = f.get("value")
        elif t == "end":
            in_snapshot = False
            if ev["revision"] < last:
                return f"snapshot at {ev['revision']} goes back from {last}"
            last = ev["revision"]
            if start is None:
                start = last
        elif t == "change":
            r = ev["revision"]
            if r <= last:
                return f"revision {r} after {last}: duplicate or out of order"
            if r in seen:
                return f"duplicate revision {r}"
            seen.add(r)
            last = r
            for f in ev["flags"]:
                if f.get("deleted"):
                    view.pop(f["key"], None)
                else:
                    view[f["key"]] = f.get("value")
        elif t == "resume":
            # a test-written marker: the subscriber resumed from here
            if start is None:
                start = ev["revision"]
    if in_snapshot:
        return "log ends inside a snapshot"
    if start is None:
        start = 0
    missing = [r for (r, k, v) in acked if r > start and r not in seen and resyncs == 0]
    if missing:
        return f"missing revisions (silent gap): {missing[:10]}{'...' if len(missing) > 10 else ''}"
    final = {}
    for (r, k, v) in acked:
        final[k] = v
    for k, v in final.items():
        got = view.get(k)
        if str(got).lower() != str(v).lower():
            return f"key {k}: subscriber ends on {got!r}, last acked {v!r}"
    return None


def main():
    args = sys.argv[1:]
    prefix = ""
    allow = False
    if "--prefix" in args:
        i = args.index("--prefix")
        prefix = args[i + 1]
        del args[i:i + 2]
    if "--allow-resync" in args:
        args.remove("--allow-resync")
        allow = True
    acked = load_acked(args[0], prefix)
    rc = 0
    for path in args[1:]:
        err = check(acked, path, allow)
        print(f"{'ok' if err is None else 'FAILED'}: {path}: {err or 'all %d acked writes seen in order' % len(acked)}")
        if err:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
