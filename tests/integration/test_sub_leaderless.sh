#!/usr/bin/env bash
# A subscriber on a node that loses its leader is told so in the stream
# (heartbeat stale=true) as soon as raft gives the leader up (after one to
# two election timeouts of silence, or sooner when the dead leader's port
# refuses connections: docs/protocol.md section 18), not a further
# election timeout later; and hears when the leader is back. Checked on
# the heartbeats' own fields, not on the wall clock: the stale heartbeat
# that names no leader has leaderless_ms below one election timeout
# (the old rule, "leaderless for longer than an election timeout", made
# the signal take up to three). The election timeout is 1 s here, so that
# bound is 20 times the expected 50 ms, not a race with a loaded machine.
# The heartbeat naming no leader is sent when raft gives the leader up,
# not with the next regular heartbeat: the regular period is 60 s here,
# longer than the 30 s this test waits for it. How long the notices take
# after the leader dies is a `make bench` row.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS=(--election-ms 1000 --heartbeat-ms 50 --sub-heartbeat-ms 60000)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
watched=$(((leader % 3) + 1))
sub_start w "$watched"
wait_until 10 grep -q '"heartbeat"' "$TMP/sub.w" || fail "no heartbeat"
# SIGSTOP, not kill: the stopped nodes' ports still accept, so the
# watched node learns nothing from them and raft's own timeout decides
# (a killed leader's refused port would end the wait sooner).
for n in 1 2 3; do
    [ "$n" = "$watched" ] || node_kill "$n" STOP
done
leaderless_seen() {
    python3 -c 'import json, sys
sys.exit(0 if any(e.get("stale") and e.get("leader") == 0
                  for e in map(json.loads, open(sys.argv[1]))) else 1)' "$TMP/sub.w"
}
wait_until 30 leaderless_seen ||
    fail "never told the node has no leader (stale, leader 0) before the next regular heartbeat"
# The first stale heartbeat either still names the old leader with
# catching_up (live means caught up, section 17: nothing heard from the
# leader for an election timeout; the quicker signal), or names no leader
# with leaderless_ms below an election timeout (raft gave the leader up; a
# node without a leader is not live, section 17, so this notice may come
# before the 50 ms that debounce a leader change's own heartbeat).
first=$(python3 - "$TMP/sub.w" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("stale"):
        print(e["leader"], e["leaderless_ms"], int(bool(e.get("catching_up")))); break
PY
)
read -r named_leader leaderless catching <<<"$first"
say "first stale heartbeat: leader $named_leader, leaderless_ms $leaderless, catching_up $catching (election timeout 1000 ms)"
if [ "$named_leader" != 0 ]; then
    assert_eq "$catching" 1 "a stale heartbeat naming a leader says catching_up"
else
    [ "$leaderless" -lt 1000 ] ||
        fail "stale only after $leaderless ms without a leader: a whole election timeout on top of raft's"
fi
for n in 1 2 3; do
    [ "$n" = "$watched" ] || node_kill "$n" CONT
done
wait_leader 20 >/dev/null || fail "no leader after restart"
wait_until 30 bash -c "tail -1 '$TMP/sub.w' | grep -q '\"stale\": false'" ||
    fail "never told the leader is back"
say "leaderless node told its subscribers ${leaderless} ms after raft gave the leader up"
