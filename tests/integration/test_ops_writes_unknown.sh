#!/usr/bin/env bash
# Writes in flight when leadership is lost and nothing tells their fate
# (docs/protocol.md sections 5 and 6): a client keeps 128 writes with request
# ids in flight to the leader; the leader's raft links are cut (a proxy) so
# it proposes writes it cannot commit, it is paused (SIGSTOP) while the
# others elect a leader, and it is continued still cut off. It steps down
# and, its entries neither committed nor overwritten within an election
# timeout, answers them LEADERSHIP_LOST (outcome unknown); every write
# answered OK is stored with the acknowledged revision, every one answered
# NOT_LEADER or UNAVAILABLE is not applied, nothing else is answered.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/opslib.sh"

FLIPD_ARGS=(--election-ms 500 --heartbeat-ms 30)
proxy_cluster 3
old=$(wait_leader 20) || fail "no leader"

burst_start "$old" wu.c
wait_until 30 burst_acks 100 || fail "the burst got no acks: $(cat "$TMP/burst.err")"
proxy_set "isolate $old"
sleep 0.2 # it proposes what it reads meanwhile, alone
node_kill "$old" STOP
wait_until 20 other_leader "$old" || fail "no new leader while n$old is paused"
node_kill "$old" CONT
burst_verify wu.c
counts_at_least OK=100 LEADERSHIP_LOST=1
proxy_set heal
wait_leader 20 >/dev/null || fail "no leader after the heal"
say "unresolved writes answered LEADERSHIP_LOST, never OK"
