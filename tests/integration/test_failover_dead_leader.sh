#!/usr/bin/env bash
# kill -9 of the leader: its raft port now refuses connections, and the
# followers, which probe a leader silent for three heartbeats, learn that
# its process is gone and give it up without waiting for their election
# timeouts (raft/node.c, probe_tick). Checked on the nodes' logs, not on
# the clock: a follower logs the refusal, a survivor leads, writes work;
# and the killed node, restarted, is followed again (a leader that
# answers clears what was learnt about it). The election timeout is long
# (3 s), so that the timers are far behind the probe (three heartbeats).
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

FLIPD_ARGS=(--election-ms 3000 --heartbeat-ms 20)
cluster_start 3
leader=$(wait_leader 60) || fail "no leader"
expect_rc 0 fctl set fo.before true --type bool
node_kill "$leader"
new=$(wait_leader 60) || fail "no new leader after kill -9"
[ "$new" != "$leader" ] || fail "the killed node is still named leader"
seen=0
for n in 1 2 3; do
    [ "$n" = "$leader" ] && continue
    if grep -q "leader $leader .*refuses connections: its process is gone" "$(node_log "$n")"; then
        seen=1
    fi
done
[ "$seen" = 1 ] || fail "no follower found the dead leader's port refusing"
say "n$new leads after n$leader's port refused"
expect_rc 0 fctl set fo.after true --type bool
node_start "$leader"
wait_until 60 bash -c "grep -q 'leader is node $new' '$(node_log "$leader")'" ||
    fail "restarted n$leader never followed n$new"
expect_rc 0 fctl set fo.later true --type bool
