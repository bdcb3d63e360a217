#!/usr/bin/env bash
# After a kill -9 of the leader, the follower whose election timer fires
# first asks the other for a (pre-)vote. libraft refuses votes while it
# still names a leader, however long that leader has been silent; flipd's
# node gives a leader silent for an election timeout up when a peer asks
# (raft/node.c, give_up_silent_leader), so the election does not wait for
# the second follower's own timer. Checked on the nodes' logs, not on the
# clock: a survivor logs that it gave the dead leader up, and the new
# leader is one of the survivors. Two followers can time out within a
# heartbeat of each other (then neither names a leader when asked, and
# nothing is given up), so up to three kills are tried.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

# A long election timeout against a short heartbeat: the followers' last
# messages from the leader are far closer together than their timers.
FLIPD_ARGS=(--election-ms 1000 --heartbeat-ms 20)
cluster_start 3
gave_up=0
for attempt in 1 2 3; do
    leader=$(wait_leader 30) || fail "no leader before kill $attempt"
    node_kill "$leader"
    new=$(wait_leader 30) || fail "no new leader after kill $attempt"
    [ "$new" != "$leader" ] || fail "the killed node is still named leader"
    for n in 1 2 3; do
        [ "$n" = "$leader" ] && continue
        if grep -q "leader $leader has been silent for .* giving it up" "$(node_log "$n")"; then
            say "kill $attempt: node $n gave leader $leader up when asked for a vote; node $new leads"
            gave_up=1
        fi
    done
    [ "$gave_up" = 1 ] && break
    say "kill $attempt: the followers timed out together; trying again"
    node_start "$leader"
done
[ "$gave_up" = 1 ] || fail "no follower gave a silent leader up when asked for a vote (3 kills)"
expect_rc 0 fctl set fo.after true --type bool
