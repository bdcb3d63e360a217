#!/usr/bin/env bash
# kill -9 of all three nodes at once, then a restart: every acknowledged
# write is there on every node, and the cluster takes writes again. At
# restart libraft applies again every entry after its last snapshot (up to
# 64 + 64 here, so every restart replays some) although the store already
# holds them: each node's state hash (flags, change log, request ids: every
# stored row) must be the same after the restart as before it. This does
# not prove the store's skip of those entries (raft/fsm.c): re-applying
# them in order, with their request ids, ends on the same rows. The unit
# test fsm_skips_replayed_entries does.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

FLIPD_ARGS+=(--snapshot-threshold 64 --snapshot-trailing 64)
cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"

for ((i = 1; i <= 150; i++)); do
    fctl set "ra.k$((i % 30))" "$i" --type int >/dev/null || fail "set $i"
done
fctl set ra.json '{"a":[1,2]}' --type json >/dev/null || fail "set json"
fctl set ra.flag false --reason "incident 42" >/dev/null || fail "set bool"
fctl del ra.k0 >/dev/null || fail "delete"
fctl list ra. --json >"$TMP/before"
top=$({ fctl status --json || true; } | json_get 0 commit_index)
node_hash() { # I: the state hash of node I once it applied `top`
    local out
    out=$({ fctl_node "$1" status --hash --json || true; }) || true
    [ "$(printf '%s' "$out" | json_get 0 applied_revision 2>/dev/null || echo 0)" -ge "$top" ] || return 1
    printf '%s' "$out" | json_get 0 state_hash
}
caught_up() {
    node_hash "$1" >"$TMP/hash.$1"
}
for n in 1 2 3; do
    wait_until 20 caught_up "$n" || fail "node $n did not apply $top before the kill"
    cp "$TMP/hash.$n" "$TMP/hash.before.$n"
done

for n in 1 2 3; do
    node_kill "$n"
done
say "killed all three nodes"
for n in 1 2 3; do
    node_start "$n"
done
wait_leader 20 >/dev/null || fail "no leader after restart"

fctl list ra. --json >"$TMP/after"
cmp -s "$TMP/before" "$TMP/after" || {
    diff "$TMP/before" "$TMP/after" | head -20 >&2
    fail "state differs after restarting the whole cluster"
}
expect_rc 3 fctl get ra.k0
assert_eq "$(fctl get ra.flag --json | json_get reason)" "incident 42" "reason kept"
assert_eq "$(fctl get ra.json)" '{"a":[1,2]}' "json value kept"
for n in 1 2 3; do
    wait_until 20 caught_up "$n" || fail "node $n did not catch up"
    fctl_node "$n" list ra. --stale --json >"$TMP/after.$n"
    cmp -s "$TMP/before" "$TMP/after.$n" || fail "node $n differs after restart"
done
for n in 1 2 3; do
    assert_eq "$(cat "$TMP/hash.$n")" "$(cat "$TMP/hash.before.$n")" "node $n state hash after replay"
    grep -q "applied index" "$(node_log "$n")" || fail "node $n logged no start line"
done
fctl set ra.after yes --type string >/dev/null || fail "write after restart"
say "whole-cluster kill -9 and restart ok"
