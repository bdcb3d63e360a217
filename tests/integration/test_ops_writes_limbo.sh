#!/usr/bin/env bash
# Writes in flight when leadership is lost, committed by the next leader
# (docs/protocol.md section 6): a client keeps 128 writes with request ids
# in flight to the leader; a proxy stops what the followers send it (their
# acknowledgements), so its entries reach them but it never learns that
# they committed; it is paused (SIGSTOP), those links are closed (the held
# acknowledgements are lost), the others elect a leader, which commits the
# old leader's entries, and the old leader is continued once the new one
# reconnected. It learns of the commits as a follower and answers those
# writes OK with the revision they got (limbo, raft/propose.c): every write
# answered OK is stored with it, every one answered NOT_LEADER is not
# applied, nothing else but LEADERSHIP_LOST is answered.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/opslib.sh"

FLIPD_ARGS=(--election-ms 500 --heartbeat-ms 30)
proxy_cluster 3
burst_then_depose wo.c mute
proxy_set "mute-reset $OLD"
proxy_set heal
# the new leader reconnects (libraft retries once a second) before the old
# one runs again: its entries then reach it within the limbo bound
wait_until 20 proxy_link_up "$NEW" "$OLD" || fail "n$NEW did not reconnect to n$OLD"
node_kill "$OLD" CONT
burst_verify wo.c
counts_at_least OK=100
say "writes committed by the next leader answered OK by the old one"
