#!/usr/bin/env bash
# tier: check
# Every snapshot finalises raft_uv's open segment, whose AIO context it
# destroys (io_destroy, 30-45 ms in the kernel); on every node none of
# those calls runs on the loop thread while raft runs: each one is handed
# to raft/aiodefer.c's thread and completed there (docs/known-issues.md
# #11). Counted by the module, reported in the line each node logs at stop.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS+=(--snapshot-threshold 32 --snapshot-trailing 64)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
write_flips 100 aio
snapshots() { # node: snapshots it has stored so far
    grep -cE 'fsm: snapshot (at|of) index' "$(node_log "$1")" || true
}
has_snapshots() { [ "$(snapshots "$1")" -ge "$2" ]; } # node want
# 100 entries, a snapshot every 32: the leader takes several. A follower
# snapshots only once node.c's hold after the election has passed (3.6 s
# here) and an entry is applied after that: write on until each has one.
wait_until 30 has_snapshots "$leader" 2 ||
    fail "the leader took $(snapshots "$leader") snapshots, want 2 or more"
for ((round = 0; round < 60; round++)); do
    has_snapshots 1 1 && has_snapshots 2 1 && has_snapshots 3 1 && break
    write_flips 10 aio
done
for n in 1 2 3; do
    has_snapshots "$n" 1 || fail "node $n took no snapshot"
done
for n in 1 2 3; do
    node_stop "$n" || fail "node $n exited with status $?"
done

for n in 1 2 3; do
    line=$({ grep -F 'raft: io_destroy off the loop:' "$(node_log "$n")" || true; } | tail -1)
    [ -n "$line" ] || fail "node $n logged no io_destroy counts at stop"
    say "node $n: ${line#*INFO }"
    deferred=$(sed -nE 's/.*off the loop: ([0-9]+) deferred.*/\1/p' <<<"$line")
    done_=$(sed -nE 's/.* ([0-9]+) done,.*/\1/p' <<<"$line")
    failed=$(sed -nE 's/.* ([0-9]+) failed;.*/\1/p' <<<"$line")
    on_loop=$(sed -nE 's/.*on the loop while running: ([0-9]+) .*/\1/p' <<<"$line")
    # the leader's first snapshot closed its segment long before the stop
    # (a node's last close may fall after it: then it is counted as not
    # armed, never as on the loop)
    if [ "$n" = "$leader" ] && { [ -z "$deferred" ] || [ "$deferred" -lt 1 ]; }; then
        fail "the leader deferred '$deferred' io_destroy calls, want 1 or more"
    fi
    assert_eq "$done_" "$deferred" "node $n: deferred io_destroy calls completed"
    assert_eq "$failed" 0 "node $n: deferred io_destroy calls the kernel refused"
    assert_eq "$on_loop" 0 "node $n: io_destroy calls on the loop thread while raft ran"
done
say "segment closes destroyed their AIO contexts off the loop on every node"
