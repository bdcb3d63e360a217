#!/usr/bin/env bash
# A subscriber on a node that loses its leader is told so in the stream
# (heartbeat stale=true) within the documented bound: two election
# timeouts plus one check period; and hears when the leader is back.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
watched=$(((leader % 3) + 1))
sub_start w "$watched"
wait_until 10 grep -q '"heartbeat"' "$TMP/sub.w" || fail "no heartbeat"
t0=$(python3 -c 'import time; print(time.time())')
for n in 1 2 3; do
    [ "$n" = "$watched" ] || node_kill "$n"
done
wait_until 10 grep -q '"stale": true' "$TMP/sub.w" || fail "never told the node is stale"
told=$(python3 - "$TMP/sub.w" "$t0" <<'PY'
import json, sys
t0 = float(sys.argv[2])
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("stale"):
        print(int((e["t"] - t0) * 1000)); break
PY
)
say "told after $told ms (election timeout 300 ms)"
[ "$told" -le 1500 ] || fail "stale notice took $told ms, bound is 2 x 300 ms + 50 ms (+ slack)"
for n in 1 2 3; do
    [ "$n" = "$watched" ] || node_start "$n"
done
wait_leader 20 >/dev/null || fail "no leader after restart"
wait_until 10 bash -c "tail -1 '$TMP/sub.w' | grep -q '\"stale\": false'" ||
    fail "never told the leader is back"
say "leaderless node told its subscribers in $told ms"
