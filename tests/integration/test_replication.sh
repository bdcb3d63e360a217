#!/usr/bin/env bash
# 1000 writes spread over all three nodes' client ports (followers redirect
# to the leader) end identical on every node, and a linearizable get from
# each node returns the last acknowledged value of every key.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
say "leader is node $leader"

# Three concurrent writers, one per node, on overlapping keys.
writer() {
    local node=$1 n=$2 i key val rev
    for ((i = 1; i <= n; i++)); do
        key="rep.k$((i % 25))"
        val="w$node-$i"
        if rev=$(fctl_node "$node" set "$key" "$val" --type string); then
            echo "$rev $key $val"
        fi
    done >"$TMP/acked.$node"
}
writer 1 334 &
p1=$!
writer 2 333 &
p2=$!
writer 3 333 &
p3=$!
wait $p1 $p2 $p3
acked=$(cat "$TMP"/acked.* | wc -l)
assert_eq "$acked" 1000 "acknowledged writes"

# One write per (revision, key): concurrent writes to different keys may
# share a revision (group commit puts them in one raft entry), writes to one
# key never do. The last acked value of each key is what every node holds.
dups=$(cat "$TMP"/acked.* | awk '{print $1, $2}' | sort | uniq -d | wc -l)
assert_eq "$dups" 0 "two acked writes to one key at one revision"
sort -n "$TMP"/acked.* | awk '{last[$2]=$3} END {for (k in last) print k, last[k]}' |
    sort >"$TMP/expected"

top=$(sort -n "$TMP"/acked.* | tail -1 | awk '{print $1}')
applied_on() {
    { fctl_node "$1" status --json || true; } | json_get 0 applied_revision
}
caught_up() {
    [ "$(applied_on "$1")" -ge "$top" ]
}
for n in 1 2 3; do
    wait_until 20 caught_up "$n" || fail "node $n did not apply up to $top"
done

for n in 1 2 3; do
    fctl_node "$n" list rep. --stale --json >"$TMP/list.$n"
done
cmp -s "$TMP/list.1" "$TMP/list.2" || fail "node 1 and node 2 differ"
cmp -s "$TMP/list.1" "$TMP/list.3" || fail "node 1 and node 3 differ"
assert_eq "$(wc -l <"$TMP/list.1")" 25 "flags listed"

python3 - "$TMP/list.1" "$TMP/expected" <<'PY' || fail "stored values differ from the last acked writes"
import json, sys
got = {}
for line in open(sys.argv[1]):
    f = json.loads(line)
    got[f["key"]] = f["value"]
want = dict(l.split() for l in open(sys.argv[2]))
bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
if bad:
    print("mismatch:", bad)
    sys.exit(1)
PY

# Linearizable reads through every node.
while read -r key val; do
    for n in 1 2 3; do
        got=$(fctl_node "$n" get "$key") || fail "get $key via node $n"
        assert_eq "$got" "$val" "linearizable get $key via node $n"
    done
done < <(head -5 "$TMP/expected")
say "1000 writes, identical state on 3 nodes"
