#!/usr/bin/env bash
# A cluster driven to its store budget (--max-store-bytes) refuses further
# sets with STORE_FULL on every node alike instead of aborting (H3/F2 of
# the reviews: a full LMDB map aborted every replica for good); deletes
# still work and make room; every node stays up, also across a restart,
# and the replicas hold the same state.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

FLIPD_ARGS+=(--max-store-bytes 1048576)
cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"

big=$(head -c 60000 /dev/zero | tr '\0' 'v')
full=""
for i in $(seq 1 60); do
    if ! out=$(fctl set "b.$i" "$big" --type string 2>&1); then
        full=$i
        break
    fi
done
[ -n "$full" ] || fail "60 sets of 60 KB fit in a 1 MiB budget"
say "set $full refused: $out"
case "$out" in *"size budget"*) ;; *) fail "not a budget refusal: $out" ;; esac
[ "$full" -gt 5 ] || fail "refused too early (set $full)"
for i in 1 2 3; do node_alive "$i" || fail "node $i died"; done

fctl set b.3 "${big/v/w}" >/dev/null || fail "replacing a value refused on a full store"
fctl del b.1 >/dev/null || fail "delete refused on a full store"
fctl del b.2 >/dev/null || fail "second delete refused"
fctl set "b.$full" "$big" --type string >/dev/null || fail "no room after deletes"

for i in 1 2 3; do node_restart "$i"; done
wait_leader 20 >/dev/null || fail "no leader after restarts"
fctl set b.after small --type string >/dev/null || fail "write after restart"
for i in 1 2 3; do
    wait_until 20 bash -c "[ \"\$('$FLIPCTL' --endpoints $(client_addr "$i") get b.after --stale 2>/dev/null)\" = small ]" ||
        fail "node $i did not catch up"
    expect_rc 3 fctl_node "$i" get b.1 --stale
done
say "ok"
