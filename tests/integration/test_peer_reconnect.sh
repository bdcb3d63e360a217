#!/usr/bin/env bash
# A stopped follower, started again, is reached by its leader within a
# retry delay of listening: the leader tries to connect every retry delay
# (a tenth of the election timeout, at least a heartbeat; raft_uv's own
# default was 1 s, so a restarted follower heard its leader 0-1000 ms after
# it could, issue 9's cold restart). Checked on events, not the clock: the
# leader's log says how many connects the follower refused and over how
# long, and the attempts must have come at most a few retry delays apart
# on average (1 s apart before, 30 times the delay these timeouts give).
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

# shellcheck disable=SC2034 # read by lib.sh
FLIPD_ARGS=(--election-ms 300 --heartbeat-ms 30)
cluster_start 3
leader=$(wait_leader 60) || fail "no leader"
expect_rc 0 fctl set rc.before true --type bool
f=$((leader % 3 + 1))
node_stop "$f" || fail "n$f did not stop cleanly"
# down for a few of raft_uv's old retry delays, so that the leader's
# attempts are counted over a span the old delay would show in
sleep 2
expect_rc 0 fctl set rc.down true --type bool
node_start "$f"
log=$(node_log "$leader")
wait_until 60 bash -c "grep -q 'raft: peer $f reached after' '$log'" ||
    fail "the leader never logged reaching n$f again"
line=$(grep "raft: peer $f reached after" "$log" | tail -n 1)
say "leader: $line"
read -r refused waited delay < <(
    sed -E 's/.*after ([0-9]+) refused connects in ([0-9]+) ms \(retry delay ([0-9]+) ms\).*/\1 \2 \3/' <<<"$line"
)
[ "$delay" -le 30 ] || fail "retry delay $delay ms, expected the heartbeat (30 ms) here"
[ "$refused" -ge 1 ] || fail "no refused connect counted"
# mean gap between attempts = waited / refused; at most 4 retry delays
[ $((waited)) -le $((4 * delay * refused)) ] ||
    fail "attempts $((waited / refused)) ms apart on average, retry delay $delay ms"
wait_until 60 bash -c "'$FLIPCTL' --endpoints '$(client_addr "$f")' get rc.down --stale 2>/dev/null | grep -q true" ||
    fail "restarted n$f never applied the write made while it was down"
