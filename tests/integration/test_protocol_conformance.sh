#!/usr/bin/env bash
# docs/protocol.md is the protocol as served: a raw-frame client checks each
# answer the document gives (NUL refused, live CHANGE = replayed CHANGE,
# no event frame over --max-frame, Hello rules, limits and their statuses,
# JSON edge cases, revision kinds, AHEAD_OF_NODE, shutdown), on a cluster
# run at the smallest --max-frame a node accepts.
# tier: check
set -euo pipefail
. "$(dirname "$0")/lib.sh" "$@"

MAXF=131072
# Below the minimum, a node refuses to start (a legal flag would not fit).
expect_rc 2 timeout 10 "$FLIPD" --id 1 --data "$TMP/refused" \
    --client "$(client_addr 1)" --raft "$(raft_addr 1)" \
    --cluster "1=$(raft_addr 1)/$(client_addr 1)" --max-frame 65536

FLIPD_ARGS+=(--max-frame "$MAXF")
cluster_start 3
leader=$(wait_leader 20) || fail "no leader"
follower=$(((leader % 3) + 1))
python3 "$(dirname "$0")/conformance.py" "$(client_addr "$leader")" \
    "$(client_addr "$follower")" "$MAXF" || fail "conformance checks failed"

python3 "$(dirname "$0")/conformance.py" shutdown-probe "$(client_addr "$follower")" \
    "$TMP/probe.ready" >"$TMP/probe.out" 2>&1 &
probe=$!
wait_until 20 test -e "$TMP/probe.ready" || fail "shutdown probe not ready"
node_stop "$follower" || true
wait "$probe" || { cat "$TMP/probe.out"; fail "shutdown probe"; }
cat "$TMP/probe.out"
say "protocol as documented"
