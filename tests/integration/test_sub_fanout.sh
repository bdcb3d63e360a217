#!/usr/bin/env bash
# Subscribers on all three nodes see every one of 1000 flips in order, with
# no gap and no duplicate, and end on the last acknowledged value.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/sublib.sh"

cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"
fctl set fan.k0 0 --type int >/dev/null || fail "seed"
for n in 1 2 3; do
    sub_start "a$n" "$n" --prefix fan.
    sub_start "b$n" "$n"
done
for n in 1 2 3; do
    wait_until 10 grep -q '"end"' "$TMP/sub.a$n" || fail "no snapshot on node $n"
    wait_until 10 grep -q '"end"' "$TMP/sub.b$n" || fail "no all-keys snapshot on node $n"
done
write_flips 1000 fan
top=$(acked_top)
assert_eq "$(wc -l <"$TMP/acked")" 1000 "acknowledged flips"
for s in a1 a2 a3 b1 b2 b3; do
    sub_wait_rev "$s" "$top" 20 || fail "subscriber $s never saw revision $top"
done
for s in a1 a2 a3 b1 b2 b3; do
    sub_stop "$s"
done
python3 "$SUBCHECK" "$TMP/acked" "$TMP"/sub.a? "$TMP"/sub.b? --prefix fan. ||
    fail "a subscriber missed, repeated or reordered a flip"
say "6 subscribers on 3 nodes saw all 1000 flips in order"
