#!/usr/bin/env bash
# A node whose data directory belongs to another cluster (a backup of the
# cluster that was rebuilt since) refuses to start instead of exchanging
# raft messages with the new cluster, and says what to do.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

cid_of() { { fctl_node "$1" --json status 2>/dev/null || true; } | json_get 0 cluster_id; }
has_cid() { [ "$(cid_of "$1" | wc -c)" -eq 33 ]; }

cluster_start 3
wait_leader 20 >/dev/null || fail "no leader"
fctl set fo.a 1 >/dev/null || fail "set in the old cluster"
wait_until 20 has_cid 3 || fail "old cluster: node 3 never learnt the cluster id"
old=$(cid_of 3)
for n in 1 2 3; do node_stop "$n" || true; done
cp -a "$TMP/n3" "$TMP/old-n3"

# The cluster is rebuilt from empty directories.
rm -rf "$TMP/n1" "$TMP/n2" "$TMP/n3"
for n in 1 2 3; do node_start "$n"; done
wait_leader 20 >/dev/null || fail "no leader in the new cluster"
fctl set fo.a 2 >/dev/null || fail "set in the new cluster"
wait_until 20 has_cid 1 || fail "new cluster never reported a cluster id"
new=$(cid_of 1)
[ "$new" != "$old" ] || fail "the rebuilt cluster kept the old id"

# Node 3 gets the old cluster's directory back.
node_stop 3 || true
rm -rf "$TMP/n3"
cp -a "$TMP/old-n3" "$TMP/n3"
node_start 3
node_reap 3 20 3>&2
rc=${NODE_RC[3]}
say "node 3 with cluster $old's data exited with $rc"
[ "$rc" -ne 0 ] || fail "node 3 started with another cluster's data"
grep -q "refusing to start: the data directory .* holds cluster $old, but node [12] .* belongs to cluster $new" \
    "$TMP/n3.log" || fail "no refusal naming both clusters"
assert_eq "$(fctl get fo.a)" 2 "the new cluster's value"
say "pass"
