#!/usr/bin/env bash
# A leader that stops answering without dying (SIGSTOP: its raft port
# still accepts connections, as a stalled or CPU-starved leader's does)
# is not declared dead: no follower logs that its process is gone. Its
# followers still replace it once it has been silent for an election
# timeout: the follower whose timer fires first asks the other for a
# (pre-)vote, and libraft, which refuses votes while it still names a
# leader however long that leader has been silent, would make the
# election wait for the second follower's own timer; flipd's node gives a
# leader silent for an election timeout up when a peer asks
# (raft/node.c, give_up_silent_leader). Checked on the nodes' logs, not on
# the clock. Two followers can time out within a heartbeat of each other
# (then neither names a leader when asked, and nothing is given up), so up
# to three stops are tried.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

# A long election timeout against a short heartbeat: the followers' last
# messages from the leader are far closer together than their timers.
FLIPD_ARGS=(--election-ms 1000 --heartbeat-ms 20)
cluster_start 3
gave_up=0
for attempt in 1 2 3; do
    leader=$(wait_leader 30) || fail "no leader before stop $attempt"
    node_kill "$leader" STOP
    new=$(wait_leader 30) || fail "no new leader while n$leader is stopped ($attempt)"
    [ "$new" != "$leader" ] || fail "the stopped node is still named leader"
    for n in 1 2 3; do
        [ "$n" = "$leader" ] && continue
        if grep -q "leader $leader .*its process is gone" "$(node_log "$n")"; then
            fail "n$n declared stopped leader $leader's process gone (its port still accepts)"
        fi
        if grep -q "leader $leader has been silent for .* giving it up" "$(node_log "$n")"; then
            say "stop $attempt: n$n gave leader $leader up when asked for a vote; n$new leads"
            gave_up=1
        fi
    done
    node_kill "$leader" CONT
    [ "$gave_up" = 1 ] && break
    say "stop $attempt: the followers timed out together; trying again"
done
[ "$gave_up" = 1 ] || fail "no follower gave a silent leader up when asked for a vote (3 stops)"
expect_rc 0 fctl set fo.after true --type bool
