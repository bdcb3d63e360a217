#!/usr/bin/env bash
# tier: check
# subcheck.py, the checker behind every subscription test, can fail: fed
# hand-written event logs, it passes a correct stream (a resync included)
# and flags each defect it exists to catch: a gap after a resync, a gap
# before one, a resync snapshot older than an acked write, a value of the
# wrong type, a key outside the subscription's prefixes, a duplicate, and
# an unexpected resync without --allow-resync.
#   test_subcheck_self.sh BUILD_DIR (unused: no node is started)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flipd-test_subcheck_self.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
printf '%s\n' "5 p.k1 1" "6 p.k2 2" "10 p.k1 3" "11 p.k2 4" "12 p.k1 5" "13 p.k2 6" >acked
python3 - <<'PY'
import json
def log(name, evs):
    with open(name, "w") as f:
        for e in evs:
            f.write(json.dumps(e) + "\n")
def flag(r, k, v, t="int"):
    return {"key": k, "revision": r, "value": v, "vtype": t}
def item(r, k, v):
    return {"type": "item", "revision": 0, "flags": [flag(r, k, v)]}
def change(r, k, v, t="int"):
    return {"type": "change", "revision": r, "flags": [flag(r, k, v, t)]}
sub = {"type": "subscribed", "status": "OK", "prefixes": ["p."]}
head = [sub, {"type": "begin", "revision": 4}, {"type": "end", "revision": 4}]
def resync(k1):
    return [{"type": "begin", "revision": 10, "resync": True}, k1,
            item(6, "p.k2", 2), {"type": "end", "revision": 10}]
# each key is written again after every event a defect drops, so that the
# final values alone cannot show the defect
good = head + [change(5, "p.k1", 1), change(6, "p.k2", 2)] + \
    resync(item(10, "p.k1", 3)) + [change(11, "p.k2", 4), change(12, "p.k1", 5),
                                   change(13, "p.k2", 6)]
log("good", good)
log("gap-after-resync", [e for e in good if e.get("revision") != 11])
log("gap-before-resync", [e for e in good if not (e["type"] == "change" and e["revision"] == 5)])
log("stale-resync", head + [change(5, "p.k1", 1), change(6, "p.k2", 2)] +
    resync(item(5, "p.k1", 1)) + [change(11, "p.k2", 4), change(12, "p.k1", 5),
                                  change(13, "p.k2", 6)])
plain = head + [change(r, k, v) for (r, k, v) in
                [(5, "p.k1", 1), (6, "p.k2", 2), (10, "p.k1", 3), (11, "p.k2", 4)]]
tail = [change(13, "p.k2", 6)]
log("plain", plain + [change(12, "p.k1", 5)] + tail)
log("wrong-type", plain + [change(12, "p.k1", "5", "string")] + tail)
log("outside-prefix", plain + [{"type": "change", "revision": 12, "flags": [
    flag(12, "p.k1", 5), flag(12, "q.other", 1)]}] + tail)
log("duplicate", plain + [change(11, "p.k2", 4), change(12, "p.k1", 5)] + tail)
PY
check() { # WANT(ok|FAILED) LOG [ARGS]
    local want=$1 f=$2 out
    shift 2
    out=$(python3 "$HERE/subcheck.py" acked "$f" --prefix p. "$@" || true)
    case "$out" in
    "$want:"*) echo "as expected: $out" ;;
    *)
        echo "FAIL: subcheck on $f $*: want $want, got: $out" >&2
        exit 1
        ;;
    esac
}
check ok good --allow-resync
check ok plain
check FAILED good
check FAILED gap-after-resync --allow-resync
check FAILED gap-before-resync --allow-resync
check FAILED stale-resync --allow-resync
check FAILED wrong-type
check FAILED outside-prefix
check FAILED duplicate
echo "subcheck flags every defect it is meant to catch"
