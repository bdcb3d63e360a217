#!/usr/bin/env bash
# The client library's watch (through `flipctl watch`) attached to one node
# survives kill -9 of that node during a flip stream: it fails over and
# resumes on another node with no gap and no duplicate, and ends on the
# last acknowledged value.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
victim=$(((leader % 3) + 1))
others=""
for n in 1 2 3; do
    [ "$n" = "$victim" ] || others+="${others:+,}$(client_addr "$n")"
done
seed_rev=$(fctl set wf.k0 0 --type int) || fail "seed"

# The watch lists the victim first, so it attaches there.
"$FLIPCTL" --endpoints "$(client_addr "$victim"),$others" --json watch wf. \
    >"$TMP/watch.out" 2>"$TMP/watch.err" &
wpid=$!
NODE_PIDS+=("$wpid")
wait_until 10 grep -q 'live:' "$TMP/watch.err" || fail "the watch never went live"

writer() {
    local i rev key
    for ((i = 1; i <= 300; i++)); do
        key="wf.k$((i % 10))"
        if rev=$(fctl_node "$leader" set "$key" "$i" --type int 2>/dev/null); then
            echo "$rev $key $i" >>"$TMP/acked"
        fi
    done
}
writer &
wr=$!
wait_until 20 bash -c "[ \$(wc -l <'$TMP/acked' 2>/dev/null || echo 0) -ge 80 ]" || fail "writer stalled"
node_kill "$victim"
say "killed node $victim under the watch"
wait "$wr"
top=$(acked_top)
watch_has() {
    python3 -c 'import json,sys
want = int(sys.argv[2])
for l in open(sys.argv[1]):
    try: e = json.loads(l)
    except ValueError: continue
    if e.get("revision", 0) >= want: sys.exit(0)
sys.exit(1)' "$TMP/watch.out" "$top"
}
wait_until 20 watch_has || fail "the watch never reached revision $top after failover"
kill "$wpid"
wait "$wpid" || true

# Convert flipctl's JSON lines into the event log subcheck reads. flipctl
# prints no SNAPSHOT_END; the snapshot's end is the revision the node
# served, which the watch states when it goes live ("caught up to revision
# N", from the node's first heartbeat after the snapshot). No write runs
# between the seed and that line, so no change falls between the two.
served=$(sed -n 's/.*live:.*caught up to revision \([0-9][0-9]*\).*/\1/p' "$TMP/watch.err" | head -n 1)
[ -n "$served" ] || fail "the watch's live line names no revision: $(head -n 3 "$TMP/watch.err")"
[ "$served" -ge "$seed_rev" ] || fail "the watch went live at $served, before the seed at $seed_rev"
python3 - "$TMP/watch.out" "$served" >"$TMP/events" <<'PY' || fail "the watch's output does not follow its snapshot"
import json, sys
served = int(sys.argv[2])
def flag(e):
    f = {"key": e["key"], "revision": e["revision"]}
    if e.get("deleted"):
        f["deleted"] = True
    elif e.get("type") is not None:
        f["value"], f["vtype"] = e["value"], e["type"]
    return f
print(json.dumps({"type": "subscribed", "status": "OK", "prefixes": ["wf."]}))
print(json.dumps({"type": "begin", "revision": served}))
snapshot_done = False
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] in ("snapshot", "resync"):
        if snapshot_done:
            sys.exit(f"snapshot item after the snapshot: {l.strip()}")
        if e["revision"] > served:
            sys.exit(f"snapshot item newer than the revision served ({served}): {l.strip()}")
        print(json.dumps({"type": "item", "flags": [flag(e)]}))
        continue
    if not snapshot_done:
        print(json.dumps({"type": "end", "revision": served}))
        snapshot_done = True
    print(json.dumps({"type": "change", "revision": e["revision"], "flags": [flag(e)]}))
if not snapshot_done:
    print(json.dumps({"type": "end", "revision": served}))
PY
grep -q "resync" "$TMP/watch.out" && fail "failover needed a resync (the change log should cover it)"
python3 "$SUBCHECK" "$TMP/acked" "$TMP/events" --prefix wf. || fail "watch missed or repeated a flip"
say "watch failed over from node $victim without gap or duplicate"
