#!/usr/bin/env bash
# Disaster recovery: a cluster rebuilt from scratch numbers its history
# anew. A client whose last-known-good file came from the old cluster, at
# a revision the new cluster has since passed, must not resume by that
# revision (it would miss the new cluster's earlier changes and serve the
# old value as live): it sees another cluster id, says so, takes a fresh
# snapshot, and serves the new cluster's value.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

cid_of() { { fctl_node 1 --json status 2>/dev/null || true; } | json_get 0 cluster_id; }
has_cid() { [ "$(cid_of | wc -c)" -eq 33 ]; }

# The old cluster: t.a=true, then more writes to reach revision ~20.
cluster_start 1
wait_leader 20 >/dev/null || fail "no leader"
fctl set t.a true --type bool >/dev/null || fail "set t.a"
for i in $(seq 1 15); do
    fctl set pad.k "$i" >/dev/null || fail "pad $i"
done
wait_until 20 has_cid || fail "old cluster never reported a cluster id"
old_cid=$(cid_of)
"$FLIPCTL" --endpoints "$(endpoints)" watch t. --cache "$TMP/lkg" \
    --until-revision 999999 --timeout 2000 >/dev/null 2>&1 || true
[ -s "$TMP/lkg" ] || fail "no last-known-good file written"
old_rev=$({ fctl_node 1 --json status || true; } | json_get 0 applied_revision)
say "old cluster $old_cid at revision $old_rev (the client's copy at most that)"

# Rebuild: a new cluster in an empty data directory, t.a=false early,
# then enough writes to pass the old client's revision.
node_stop 1 || true
rm -rf "$TMP/n1"
node_start 1
wait_leader 20 >/dev/null || fail "no leader in the new cluster"
fctl set t.a false --type bool >/dev/null || fail "set t.a in the new cluster"
top=0
for ((i = 1; i <= 200 && top <= old_rev + 3; i++)); do
    top=$(fctl set pad.k "n$i") || fail "pad $i"
done
wait_until 20 has_cid || fail "new cluster never reported a cluster id"
new_cid=$(cid_of)
[ "$new_cid" != "$old_cid" ] || fail "the rebuilt cluster kept the old id"
[ "$top" -gt "$old_rev" ] || fail "new cluster at $top, not past $old_rev"
say "new cluster $new_cid at revision $top"

# The old client: must not serve the old value as live.
out=$("$FLIPCTL" --endpoints "$(endpoints)" --json eval t.a --type bool \
    --default true --cache "$TMP/lkg" --wait-ms 5000 --min-revision "$top" \
    2>"$TMP/eval.err") || fail "eval failed: $(cat "$TMP/eval.err")"
say "eval: $out"
assert_eq "$(echo "$out" | json_get reason)" live "reason"
assert_eq "$(echo "$out" | json_get value)" false "value from the new cluster"

# A watch with the old file says why it drops its resume point, and
# rewrites the file for the new cluster.
"$FLIPCTL" --endpoints "$(endpoints)" watch t. --cache "$TMP/lkg" \
    --until-revision 999999 --timeout 2000 >"$TMP/watch.out" 2>"$TMP/watch.err" || true
grep -q "belongs to cluster $new_cid, but our copy (revision [0-9]*) came from cluster $old_cid" \
    "$TMP/watch.err" || fail "watch did not say it met another cluster: $(cat "$TMP/watch.err")"
grep -q "^resync" "$TMP/watch.out" || fail "no resync snapshot: $(cat "$TMP/watch.out")"
"$FLIPCTL" --endpoints "$(endpoints)" watch t. --cache "$TMP/lkg" \
    --until-revision 999999 --timeout 1500 >/dev/null 2>"$TMP/watch2.err" || true
grep -q "belongs to cluster" "$TMP/watch2.err" &&
    fail "the file still holds the old cluster after a watch rewrote it"
say "pass"
