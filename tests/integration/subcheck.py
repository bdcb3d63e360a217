#!/usr/bin/env python3
"""Checks subscriber event logs (rawclient.py subscribe output, one JSON
object per line) against the writes a test acknowledged.

usage: subcheck.py ACKED_FILE SUB_FILE [SUB_FILE...] [--prefix P]
                   [--value-type T] [--allow-resync]

ACKED_FILE has lines "REVISION KEY VALUE" for acknowledged writes, VALUE
being the text of a value of type T (int by default; string, bool,
double or json). For each subscriber log it verifies:
- revisions strictly increasing, no duplicate event;
- no silent gap: when a CHANGE at R arrives, every acked write under the
  prefix after the subscriber's position and before R has arrived; the
  position starts at the first snapshot's end (or a test-written
  {"type": "resume", "revision": F} marker). A resync snapshot (accepted
  only with --allow-resync) moves the position to its end revision E: the
  acked writes up to E are in its state, and gaps after it are detected as
  before. Acked writes missing before a resync are still a gap;
- every snapshot (first or resync) holds, for each acked key, the last
  acked write at or before its end revision, or a later one (an unacked
  write that committed), never an older one;
- nothing outside the subscription's prefixes (read from the log's
  "subscribed" line; none means every key) is ever sent;
- the subscriber's final view of every key equals the last acked value,
  compared exactly: same type, same text.
Prints one line per subscriber and exits 1 on the first violation."""
import json
import sys

TYPES = ("int", "string", "bool", "double", "json")


def typed(text, vtype):
    """The (type, value) an acked VALUE text stands for."""
    if vtype == "int":
        return ("int", int(text))
    if vtype == "bool":
        if text not in ("true", "false"):
            raise ValueError(f"bad bool {text!r}")
        return ("bool", text == "true")
    if vtype == "double":
        return ("double", float(text))
    return (vtype, text)


def got_typed(flag):
    if flag.get("deleted") or "vtype" not in flag:
        return None
    return (flag["vtype"], flag["value"])


def load_acked(path, prefix, vtype):
    acked = []
    for line in open(path):
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        rev, key, val = int(parts[0]), parts[1], parts[2].rstrip("\n")
        if key.startswith(prefix):
            acked.append((rev, key, typed(val, vtype)))
    acked.sort()
    return acked


def show(tv):
    return "absent" if tv is None else f"{tv[0]} {tv[1]!r}"


def check_snapshot(acked, end, items):
    """items: key -> (revision, typed value) as the snapshot at `end` sent
    them. The last acked write at or before `end` of each key, or a later
    committed write, must be there."""
    last = {}
    for (r, k, v) in acked:
        if r <= end:
            last[k] = (r, v)
    for k, (r, v) in last.items():
        item = items.get(k)
        if item is None:
            return f"snapshot at {end} lacks {k} (acked at {r})"
        irev, iv = item
        if irev > end:
            return f"snapshot at {end} holds {k} at revision {irev}, after its end"
        if irev < r:
            return f"snapshot at {end} holds {k} from revision {irev}, older than the write acked at {r}"
        if irev == r and iv != v:
            return f"snapshot at {end}: {k} is {show(iv)}, acked {show(v)} at {r}"
    return None


def check(acked, path, allow_resync):
    view = {}
    pos = None      # every acked write up to here is accounted for
    last = 0        # the last revision the stream reached
    seen = set()
    prefixes = None
    snap = None     # (resync, items) while inside a snapshot
    acked_revs = sorted(r for (r, k, v) in acked)

    def gap(lo, hi):
        """Acked revisions in (lo, hi) not received."""
        return [r for r in acked_revs if lo < r < hi and r not in seen]

    def outside(key):
        return prefixes and not any(key.startswith(p) for p in prefixes)

    for line in open(path):
        ev = json.loads(line)
        t = ev["type"]
        if t == "subscribed":
            prefixes = ev.get("prefixes") or []
        elif t == "begin":
            if snap is not None:
                return f"snapshot at {ev['revision']} begins inside another"
            if ev.get("resync") and not allow_resync:
                return f"unexpected resync at {ev['revision']}"
            if not ev.get("resync") and pos is not None:
                return f"a second snapshot at {ev['revision']} not marked as resync"
            snap = {}
        elif t == "item":
            if snap is None:
                return "snapshot item outside a snapshot"
            f = ev["flags"][0]
            if outside(f["key"]):
                return f"snapshot item {f['key']} outside the prefixes {prefixes}"
            snap[f["key"]] = (f.get("revision", 0), got_typed(f))
        elif t == "end":
            if snap is None:
                return f"snapshot end at {ev['revision']} without a begin"
            e = ev["revision"]
            if e < last:
                return f"snapshot at {e} goes back from {last}"
            err = check_snapshot(acked, e, snap)
            if err:
                return err
            if pos is not None:
                missing = gap(pos, last + 1)
                if missing:
                    return f"missing revisions before the resync at {e} (silent gap): {missing[:10]}"
            view = {k: v for k, (r, v) in snap.items()}
            snap = None
            pos = last = e
        elif t == "change":
            if snap is not None:
                return f"change at {ev['revision']} inside a snapshot"
            r = ev["revision"]
            if r <= last or r in seen:
                return f"revision {r} after {last}: duplicate or out of order"
            if pos is None:
                return f"change at {r} before any snapshot or resume point"
            missing = gap(pos, r)
            if missing:
                return f"missing revisions before {r} (silent gap): {missing[:10]}"
            seen.add(r)
            pos = last = r
            for f in ev["flags"]:
                if outside(f["key"]):
                    return f"change at {r} carries {f['key']}, outside the prefixes {prefixes}"
                if f.get("deleted"):
                    view.pop(f["key"], None)
                else:
                    view[f["key"]] = got_typed(f)
        elif t == "resume":
            # a test-written marker: the subscriber resumed from here
            if pos is None:
                pos = last = ev["revision"]
    if snap is not None:
        return "log ends inside a snapshot"
    if pos is None:
        pos = 0
    missing = gap(pos, float("inf"))
    if missing:
        return f"missing revisions (silent gap): {missing[:10]}{'...' if len(missing) > 10 else ''}"
    final = {}
    for (r, k, v) in acked:
        final[k] = v
    for k, v in final.items():
        got = view.get(k)
        if got != v or (got is not None and type(got[1]) is not type(v[1])):
            return f"key {k}: subscriber ends on {show(got)}, last acked {show(v)}"
    return None


def main():
    args = sys.argv[1:]
    prefix = ""
    vtype = "int"
    allow = False
    if "--prefix" in args:
        i = args.index("--prefix")
        prefix = args[i + 1]
        del args[i:i + 2]
    if "--value-type" in args:
        i = args.index("--value-type")
        vtype = args[i + 1]
        del args[i:i + 2]
        if vtype not in TYPES:
            sys.exit(f"subcheck: --value-type must be one of {TYPES}")
    if "--allow-resync" in args:
        args.remove("--allow-resync")
        allow = True
    acked = load_acked(args[0], prefix, vtype)
    rc = 0
    for path in args[1:]:
        err = check(acked, path, allow)
        print(f"{'ok' if err is None else 'FAILED'}: {path}: {err or 'all %d acked writes seen in order' % len(acked)}")
        if err:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
