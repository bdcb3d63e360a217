#!/usr/bin/env bash
# Writes in flight when leadership is lost (docs/protocol.md sections 5
# and 6): a client keeps 128 writes with request ids in flight to the
# leader; the leader's raft links are cut (a proxy) so it proposes writes it
# cannot commit, it is paused (SIGSTOP), the others elect a leader that
# commits 100 entries over the same log indexes, and the old leader is
# continued with its links restored. Every write answered OK is stored with
# the acknowledged revision, every one answered NOT_LEADER is not applied
# (some are: the old leader saw other entries applied at their indexes),
# the others are LEADERSHIP_LOST (outcome unknown) or unanswered; nothing
# else (INTERNAL: an entry "applied without an outcome") is answered.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/opslib.sh"

FLIPD_ARGS=(--election-ms 500 --heartbeat-ms 30)
proxy_cluster 3
burst_then_depose wl.c
a=$(python3 "$OPS" same "$(client_addr "$NEW")" wl.marker 100) || fail "marker writes: $a"
assert_eq "$(json_get ok <<<"$a")" 100 "marker writes on the new leader n$NEW"
proxy_set heal
node_kill "$OLD" CONT
burst_verify wl.c
counts_at_least OK=100 NOT_LEADER=1
say "OK only when committed, NOT_LEADER only when not applied"
