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
burst_then_depose wu.c
node_kill "$OLD" CONT
burst_verify wu.c
counts_at_least OK=100 LEADERSHIP_LOST=1
proxy_set heal
wait_leader 20 >/dev/null || fail "no leader after the heal"
say "unresolved writes answered LEADERSHIP_LOST, never OK"
