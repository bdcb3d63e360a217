#!/usr/bin/env bash
# One catch-up by InstallSnapshot sends the snapshot once: a follower that
# comes back behind the leader's compaction rejects the heartbeats the
# leader anchors at the snapshot's index until it has read the snapshot,
# and libraft 0.22.1 restarted the send (a new load of the whole file) at
# each rejection: 100+ copies of a 30 MB snapshot before the fix
# (docs/known-issues.md #19). raft/ioshim.c holds those rejections back
# while one snapshot is in flight; this counts the loads and sends on the
# leader and the installs the follower received, and checks that the leader
# did not take the installing follower for one restored from a backup.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
BS=$BUILD/bench/bigstore
[ -x "$BS" ] || skip "$BS is missing (make all)"

# flipd's default heartbeat (every 10 ms: many rejections); an election
# timeout shorter than the install, so that an installing follower's
# answers for index 0 last longer than the restored-backup check waits
# shellcheck disable=SC2034 # read by lib.sh
FLIPD_ARGS=(--election-ms 200 --heartbeat-ms 10 --snapshot-threshold 64
    --snapshot-trailing 64 --max-store-bytes 268435456)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
say "filling 500 values of 60 KB (about 30 MB)"
"$BS" fill --endpoints "$(endpoints)" --n 500 --value-bytes 60000 \
    --threads 8 --max-seconds 60 >/dev/null || fail "fill failed"
f=$((leader % 3 + 1))
# n$f has at most the leader's log; its next snapshot past that plus the
# 64 entries it keeps (and a few in flight) leaves n$f behind its log
top=$({ fctl_node "$leader" status --json || true; } | json_get 0 commit_index)
[ -n "$top" ] || fail "no commit index from n$leader"
snapshot_past() {
    local last
    last=$(sed -nE 's/.*fsm: snapshot of index [0-9]+ \(raft ([0-9]+)\).*/\1/p' \
        "$(node_log "$leader")" | tail -1)
    [ "${last:-0}" -gt $((top + 80)) ]
}
node_stop "$f" || true
say "n$f stopped at index <= $top; 300 small writes (the leader compacts past it)"
"$BS" fill --endpoints "$(endpoints)" --n 300 --keys 16 --value-bytes 16 \
    --prefix tick. --threads 1 --max-seconds 60 >/dev/null || fail "writes failed"
# a loaded leader writes a 30 MB snapshot in seconds: a fixed pause let n$f
# come back before that, and catch up by entries
wait_until 60 snapshot_past || fail "the leader took no snapshot past $((top + 80))"
sleep 2 # libraft compacts once the write is done; heartbeats to n$f queue
node_start "$f"
"$BS" wait --node "$(client_addr "$f")" --leader "$(client_addr "$leader")" \
    --max-seconds 30 >/dev/null || fail "n$f did not catch up"
grep -q "restored snapshot" "$(node_log "$f")" ||
    fail "n$f was not caught up by InstallSnapshot"
# an installing follower answers for index 0; that is no log gone back
# (known-issues #16's check must not hand leadership over for it). Every
# node's log: on a loaded machine leadership may move during the test.
for n in 1 2 3; do
    if grep -q "below the .* it acknowledged" "$(node_log "$n")"; then
        fail "the leader n$n took the installing n$f for a restored node"
    fi
done
for n in 1 2 3; do
    node_stop "$n" || fail "node $n exited with status $?"
done
# the counters of each node's last run, summed: whichever led sent it
loads=0 sent=0
for n in 1 2 3; do
    line=$(grep -F 'raft: InstallSnapshot:' "$(node_log "$n")" | tail -1)
    say "n$n: ${line#*raft: }"
    l=$(sed -nE 's/.* ([0-9]+) snapshots loaded.*/\1/p' <<<"$line")
    s=$(sed -nE 's/.*loaded and ([0-9]+) sent.*/\1/p' <<<"$line")
    [ -n "$l" ] && [ -n "$s" ] || fail "no counters logged by n$n"
    loads=$((loads + l)) sent=$((sent + s))
    if [ "$n" = "$f" ]; then
        got=$(sed -nE 's/.*InstallSnapshot: ([0-9]+) received.*/\1/p' <<<"$line")
    fi
done
[ -n "${got:-}" ] || fail "no counters logged by n$f"
# one, or two when the leader compacted again during the catch-up (or a
# heartbeat tick started the first load, or leadership moved)
[ "$loads" -le 2 ] || fail "the leader loaded the snapshot $loads times for one catch-up"
[ "$sent" -le 2 ] || fail "the leader sent the snapshot $sent times for one catch-up"
[ "$got" -le 2 ] || fail "n$f received $got InstallSnapshot messages for one catch-up"
say "one catch-up: $loads load(s), $sent send(s), $got received"
