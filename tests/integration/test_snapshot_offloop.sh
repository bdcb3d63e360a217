#!/usr/bin/env bash
# Snapshots written off the loop while writes go on are complete and
# correctly labelled: a follower stopped past the leader's compaction is
# caught up by installing one, and every node ends with the same state
# hash at the same revision (review M3/M4; docs/known-issues.md #11).
# The snapshots are over 4 MiB, so every node frees their buffers on
# raft/bigfree.c's thread, not on its loop (counted in its stop line).
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

FLIPD_ARGS+=(--snapshot-threshold 64 --snapshot-trailing 64)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
follower=$(((leader % 3) + 1))
big=$(head -c 60000 /dev/zero | tr '\0' x)
for ((i = 0; i < 80; i++)); do # about 9.6 MB: flags and change log
    fctl set "big.$i" "$big" --type string >/dev/null || fail "big value $i"
done
write_flips 40 so
node_kill "$follower" STOP
say "follower $follower stopped"
WRITE_NODE=$leader write_flips 250 so
node_kill "$follower" CONT
top=$(acked_top)

node_state() { # node field
    fctl_node "$1" status --hash --json | json_get 0 "$2"
}
caught_up() {
    local n
    for n in 1 2 3; do
        [ "$(node_state "$n" applied_revision)" -ge "$top" ] || return 1
    done
}
wait_until 30 caught_up || fail "the nodes did not all reach revision $top"
# the same revision everywhere (nothing written since), then the same hash
h1=$(node_state 1 state_hash)
for n in 2 3; do
    assert_eq "$(node_state "$n" applied_revision)" "$(node_state 1 applied_revision)" \
        "node $n revision"
    assert_eq "$(node_state "$n" state_hash)" "$h1" "node $n state hash"
done
grep -q "written off the loop" "$(node_log "$leader")" ||
    fail "the leader wrote no snapshot off the loop"
grep -q "restored snapshot" "$(node_log "$follower")" ||
    fail "the follower was not caught up by snapshot install"
for n in 1 2 3; do
    node_stop "$n" || fail "node $n exited with status $?"
done
# the leader freed each snapshot it wrote and the one it sent; the
# follower each it wrote and the one it restored: those of 4 MiB or more
# (raft/bigfree.h; the first, at index 64, is under). The leader sends one
# snapshot since known-issues #19 (before, many copies hid this count).
wrote() {
    sed -nE 's/.* ([0-9]+) bytes, written off the loop.*/\1/p' "$(node_log "$1")" |
        awk '$1 >= 4194304 { n++ } END { print n + 0 }'
}
for n in "$leader" "$follower"; do
    line=$(grep -F 'big buffers freed off the loop:' "$(node_log "$n")" | tail -1)
    freed=$(sed -nE 's/.*off the loop: ([0-9]+) of ([0-9]+)\).*/\1/p' <<<"$line")
    queued=$(sed -nE 's/.*off the loop: ([0-9]+) of ([0-9]+)\).*/\2/p' <<<"$line")
    want=$(($(wrote "$n") + 1))
    say "node $n: ${line#*INFO }, wrote $(wrote "$n") snapshots"
    [ -n "$freed" ] && [ "$freed" -ge "$want" ] ||
        fail "node $n freed '$freed' big buffers off the loop, want $want or more"
    assert_eq "$freed" "$queued" "node $n: big buffers queued and freed"
done
say "snapshots off the loop: all nodes identical at revision $top or later"
