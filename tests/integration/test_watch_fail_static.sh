#!/usr/bin/env bash
# Fail static: a client started while every node is down serves its
# last-known-good file's values (reason cached), or its code defaults when
# the file is absent (reason default), never hangs; and goes live when the
# cluster comes back.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"
fctl set fs.kill_switch false --type bool >/dev/null || fail "seed"
fctl set fs.limit 42 --type int >/dev/null || fail "seed"

# A watch with a cache file records the last-known-good state.
"$FLIPCTL" --endpoints "$(endpoints)" watch fs. --cache "$TMP/lkg" \
    --until-revision 999999 --timeout 3000 >/dev/null 2>&1 || true
[ -s "$TMP/lkg" ] || fail "no last-known-good file written"

for n in 1 2 3; do
    node_kill "$n"
done
say "whole cluster down"

# Never hangs: a generous bound (how soon it answers is a `make bench`
# row, bench/promises.py); then the content.
out=$(timeout -k 2 60 "$FLIPCTL" --endpoints "$(endpoints)" --json eval fs.kill_switch \
    --default true --type bool --cache "$TMP/lkg" --wait-ms 1000) || fail "eval with cache failed or hung"
assert_eq "$(echo "$out" | json_get value)" false "cached value"
assert_eq "$(echo "$out" | json_get reason)" cached "reason with the cluster down"

out=$(timeout -k 2 60 "$FLIPCTL" --endpoints "$(endpoints)" --json eval fs.kill_switch \
    --default true --type bool --wait-ms 500) || fail "eval without cache failed or hung"
assert_eq "$(echo "$out" | json_get value)" true "default value"
assert_eq "$(echo "$out" | json_get reason)" default "reason without a cache"

# A corrupt cache file is refused, never served as garbage.
head -c 40 "$TMP/lkg" >"$TMP/lkg.bad"
out=$("$FLIPCTL" --endpoints "$(endpoints)" --json eval fs.limit --default 7 \
    --type int --cache "$TMP/lkg.bad" --wait-ms 300 2>/dev/null) || fail "eval with a corrupt cache failed"
assert_eq "$(echo "$out" | json_get value)" 7 "default after a corrupt cache"

for n in 1 2 3; do
    node_start "$n"
done
wait_leader 20 >/dev/null || fail "no leader after restart"
rev=$(fctl set fs.kill_switch true --type bool) || fail "set after restart"
out=$("$FLIPCTL" --endpoints "$(endpoints)" --json eval fs.kill_switch \
    --default false --type bool --cache "$TMP/lkg" --wait-ms 5000 --min-revision "$rev") ||
    fail "eval after restart failed"
assert_eq "$(echo "$out" | json_get value)" true "live value after the cluster came back"
assert_eq "$(echo "$out" | json_get reason)" live "reason after the cluster came back"
say "cached -> default -> live as the cluster went down and came back"
