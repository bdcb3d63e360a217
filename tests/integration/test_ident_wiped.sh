#!/usr/bin/env bash
# A member that starts late for the first time bootstraps and catches up,
# the cluster records every member as joined under one cluster id, and a
# member whose data directory was wiped and restarted with the same flags
# refuses to start (non-zero exit, a message saying to restore its backup
# or replace the member) instead of joining empty and serving as live.
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

# Nodes 1 and 2 of a 3-node cluster first; node 3 comes later.
CLUSTER_SIZE=3
node_start 1
node_start 2
leader=$(wait_leader 20) || fail "no leader"
for i in 1 2 3 4 5; do
    fctl set ident.k$i "v$i" >/dev/null || fail "set $i failed"
done

status_field() { # NODE FIELD: from node NODE's own status row
    { fctl_node "$1" --json status 2>/dev/null || true; } | json_get 0 "$2"
}
has_cid() { [ "$(status_field "$1" cluster_id | wc -c)" -eq 33 ]; }
wait_until 20 has_cid 1 || fail "node 1 never reported a cluster id"
cid=$(status_field 1 cluster_id)
say "cluster id $cid"

# A late first start: nobody recorded node 3, so it bootstraps.
node_start 3
wait_port 3 20 || fail "late node 3 did not start"
wait_until 20 has_cid 3 || fail "node 3 never learnt the cluster id"
assert_eq "$(status_field 3 cluster_id)" "$cid" "node 3's cluster id"
grep -q "never recorded this node\|none holds data of this node" "$TMP/n3.log" ||
    fail "node 3 did not log why it bootstrapped"

joined3() {
    { fctl_node 1 --json status 2>/dev/null || true; } >"$TMP/st.json"
    python3 - "$TMP/st.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
sys.exit(0 if any(r["id"] == 3 and r["joined"] for r in rows) else 1)
PY
}
wait_until 20 joined3 || fail "the cluster never recorded node 3 as joined"

# Wipe node 3 and restart it with the same flags: it must refuse.
node_stop 3 || true
rm -rf "$TMP/n3"
node_start 3
node_reap 3 20 3>&2
rc=${NODE_RC[3]}
say "wiped node 3 exited with $rc"
[ "$rc" -ne 0 ] || fail "wiped node 3 started (exit 0)"
grep -q "refusing to bootstrap" "$TMP/n3.log" || fail "no refusal message"
grep -q "Restore this node's backup" "$TMP/n3.log" ||
    fail "the refusal does not say what to do"
grep -q "bootstrapped a 3-node cluster" <(sed -n '/lib: n3 exited/,$p' "$TMP/n3.log" | tail -n +2) &&
    fail "wiped node 3 bootstrapped"
# It never served: nobody can subscribe to it.
expect_rc 1 fctl_node 3 get ident.k1 --stale
# The others still work.
fctl set ident.after wipe >/dev/null || fail "write after the refusal failed"
say "pass"
