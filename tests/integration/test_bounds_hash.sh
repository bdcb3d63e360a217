#!/usr/bin/env bash
# 60 pipelined `status include_hash` requests on a leader holding ~48 MB
# are all answered with the same hash the followers compute, while the
# leader keeps its term and answers another client's writes (the walk used
# to run on the event loop: 60 walks stalled the leader past its election
# timeout and it was deposed); a stop during the walks exits cleanly.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/boundlib.sh"

# a generous election timeout: only a stalled loop, not a busy machine,
# may cost the leader its term
FLIPD_ARGS=(--election-ms 1000 --heartbeat-ms 30)
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
python3 "$BOUNDCLIENT" fill "$(client_addr "$leader")" 800 hash. >"$TMP/fill.out" 2>&1 ||
    fail "fill failed: $(cat "$TMP/fill.out")"
grep -q '^filled 800 of 800' "$TMP/fill.out" || fail "fill: $(cat "$TMP/fill.out")"
term0=$(term_of "$leader")

python3 "$BOUNDCLIENT" hashes "$(client_addr "$leader")" 60 >"$TMP/hashes.out" 2>&1 &
client=$!
NODE_PIDS+=("$client")
for i in $(seq 1 10); do
    fctl_node "$leader" set hash.other "$i" >/dev/null || fail "write $i not answered"
done
wait "$client" || fail "hash client failed"
cat "$TMP/hashes.out" >&2
grep -q '^hashed 60 busy 0 of 60' "$TMP/hashes.out" || fail "not every hash was answered"
assert_eq "$(term_of "$leader")" "$term0" "leader term while hashing"
# the walk off the loop reads a consistent view: replicas agree
hashes_agree() {
    fctl --json status --hash | python3 -c '
import json, sys
v = json.load(sys.stdin)
v = v.get("nodes", v) if isinstance(v, dict) else v
sys.exit(0 if len({n.get("state_hash") for n in v}) == 1 and v[0].get("state_hash") else 1)'
}
wait_until 20 hashes_agree || fail "replicas report different state hashes"

# A stop while walks are in progress waits for them: the store closes with
# raft, after the last walk left it (a sanitizer build reports otherwise).
python3 "$BOUNDCLIENT" hashes "$(client_addr "$leader")" 60 >"$TMP/hashes2.out" 2>&1 &
client=$!
NODE_PIDS+=("$client")
wait_until 20 grep -q '^sent' "$TMP/hashes2.out" || fail "second hash client did not send"
node_stop "$leader" || fail "the leader did not stop cleanly while hashing"
wait "$client" || true
say "hashes answered off the loop; leader kept term $term0"
